package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/oak-engine/oak/core"
	"github.com/oak-engine/oak/sandbox"
)

// Sub-containers. A container run with --spawn holds one capability
// more than others: a descriptor (SpawnFD, named by $OAK_SPAWN_FD), an
// AF_UNIX SOCK_SEQPACKET socket whose other end its supervisor holds.
// The container opens a connection by sending there one end of a stream
// socketpair of its own (SCM_RIGHTS) and speaking HTTP on the other; the
// supervisor forwards what comes on it, requests of the daemon's API,
// to the daemon, marked
// as the spawn of that container (SpawnHeader, which the supervisor sets
// and the daemon believes only of root's connections). The daemon then
// acts for the container as for a tenant of a factory of its own: the
// factory prepareSpawn made for it, whose quota is the container's own
// limits, so that the container and every sub-container it makes share
// them and the kernel bounds their sum. What a sub-container may be
// given is narrowed to what its parent holds (see admitSpawn): the
// parent's image, a subset of its egress grants, nothing of the host's.
// Removing the parent, or revoking its "spawn" grant, withdraws its
// sub-containers. See docs/spawn.md.

const (
	// SpawnFD is the descriptor a --spawn container's command holds its
	// connection to the engine at.
	SpawnFD = 3
	// SpawnEnv names SpawnFD in a --spawn container's environment.
	SpawnEnv = "OAK_SPAWN_FD"
	// SpawnHeader carries, from a supervisor to the daemon, the id of the
	// container a request comes from.
	SpawnHeader = "Oak-Spawn-Parent"
	// SpawnGrant is the name oak revoke and oak grants know the
	// capability by.
	SpawnGrant = "spawn"

	spawnFactoryPrefix = "spawn-"
	// daemonSocket is the daemon's socket under the state root
	// (api.SocketName; the api package imports this one).
	daemonSocket = "oak.sock"
	// spawnRevoked marks, in a container's directory, a spawn
	// capability revoked: the daemon refuses its requests from then on.
	spawnRevoked = "spawn.revoked"
	// revokedDir, in a container's directory, holds one empty file per
	// network grant revoked from it, named by the grant's name in hex:
	// each is written once, atomically, with no lock, and a later start
	// of the container (oak start, a restart) does not give it back.
	revokedDir = "revoked"

	// MaxSpawnDepth bounds the chain of sub-containers: the host's
	// container is at depth 0, its sub-containers at 1, theirs at 2…;
	// one at depth MaxSpawnDepth exists but cannot hold --spawn.
	MaxSpawnDepth = 4
)

// prepareSpawn makes the factory a --spawn run is made from, its quota
// the run's own limits, and returns what undoes it. A run without
// --spawn is left as it is.
func (e *Engine) prepareSpawn(o *RunOptions) (undo func(), err error) {
	undo = func() {}
	if !o.Spawn {
		if o.SpawnDisk != 0 {
			return undo, errors.New("invalid --spawn-disk: only with --spawn (the disk a --spawn container's factory holds)")
		}
		return undo, nil
	}
	// A sub-container's is a sub-factory of its parent's: a part of the
	// parent's quota, never more, nested in its groups.
	var parentFactory string
	if o.Parent != "" {
		pf, err := e.SpawnFactoryOf(o.Parent)
		if err != nil {
			return undo, fmt.Errorf("run: %w", err)
		}
		p, err := e.Get(o.Parent)
		if err != nil {
			return undo, fmt.Errorf("run: %w", err)
		}
		depth, err := e.spawnDepth(p)
		if err != nil {
			return undo, fmt.Errorf("run: %w", err)
		}
		if depth+1 >= MaxSpawnDepth {
			return undo, fmt.Errorf("invalid Spawn: a sub-container at depth %d cannot hold the spawn capability (sub-containers nest at most %d deep)", depth+1, MaxSpawnDepth)
		}
		if o.Factory != "" && o.Factory != pf {
			return undo, fmt.Errorf("invalid --factory %s: a sub-container is made from its parent's factory, %s", o.Factory, pf)
		}
		parentFactory, o.Factory = pf, ""
	} else if o.Tenant != "" {
		// A tenant's is a sub-factory of the tenant's: a part of the
		// tenant's quota, so that its containers and every container
		// under them stay within it together.
		t, err := e.InspectTenant(o.Tenant)
		if err != nil {
			return undo, fmt.Errorf("run: %w", err)
		}
		if o.Factory != "" && o.Factory != t.Factory {
			return undo, fmt.Errorf("invalid --factory %s: a tenant's containers are made from its own factory, %s", o.Factory, t.Factory)
		}
		parentFactory, o.Factory = t.Factory, ""
	}
	switch {
	case o.SpawnDisk < 0:
		return undo, fmt.Errorf("invalid --spawn-disk %d: negative", o.SpawnDisk)
	case o.Factory != "":
		return undo, fmt.Errorf("invalid --factory %s with --spawn: a --spawn container is made from a factory of its own, which its sub-containers share", o.Factory)
	case o.AutoRemove:
		return undo, errors.New("invalid --rm with --spawn: removing a --spawn container withdraws its sub-containers; remove it with oak rm")
	case o.Limits.MemoryBytes == 0 || o.Limits.Pids == 0:
		return undo, errors.New("invalid --spawn: needs a --memory and a --pids limit, which the container shares with its sub-containers")
	}
	name := spawnFactoryPrefix + newFactoryID()
	q := FactoryQuota{MemoryBytes: o.Limits.MemoryBytes, Pids: o.Limits.Pids, CPUMilli: o.Limits.CPUMilli, DiskBytes: o.SpawnDisk}
	if parentFactory != "" {
		var pf Factory
		if err := readJSON(e.factoryPath(parentFactory), &pf); err != nil {
			return undo, fmt.Errorf("run --spawn: factory %s: %w", parentFactory, unwrapPath(err))
		}
		if pf.Quota.CPUMilli > 0 && q.CPUMilli == 0 {
			return undo, fmt.Errorf("invalid --spawn: needs a --cpus limit (NanoCpus): its factory takes a part of %s's, which limits CPU", parentFactory)
		}
		// Under a factory that limits disk, the factory takes a part of
		// it too: by default, what the container's own writable layer
		// needs (its --storage-size), which leaves its sub-containers
		// --read-only ones; --spawn-disk asks for more.
		if q.DiskBytes == 0 && pf.Quota.DiskBytes > 0 {
			q.DiskBytes = o.Limits.WritableBytes
			if q.DiskBytes == 0 {
				q.DiskBytes = sandbox.DefaultWritableBytes
			}
		}
	}
	if _, err := e.CreateFactory(FactoryOptions{Name: name, Parent: parentFactory, Quota: q}); err != nil {
		switch {
		case o.Parent != "":
			return undo, fmt.Errorf("invalid Spawn: more than the parent has left to give: %w", err)
		case o.Tenant != "":
			return undo, fmt.Errorf("run --spawn: more than tenant %s has left to give: %w", o.Tenant, err)
		}
		return undo, fmt.Errorf("run --spawn: %w", err)
	}
	o.Factory = name
	o.Env = append(slices.Clone(o.Env), fmt.Sprintf("%s=%d", SpawnEnv, SpawnFD))
	return func() { e.RemoveFactory(name, true) }, nil
}

// SpawnFactoryOf is the factory the sub-containers of container id are
// made from, if id holds the spawn capability: it was run with --spawn,
// is running, and the capability was not revoked.
func (e *Engine) SpawnFactoryOf(id string) (string, error) {
	c, err := e.Get(id)
	if err != nil {
		return "", err
	}
	switch {
	case !c.Spawn || c.Factory == "":
		return "", fmt.Errorf("container %s holds no spawn capability (run -d --spawn)", ShortID(c.ID))
	case c.Status != StatusRunning:
		return "", fmt.Errorf("container %s is %s: its spawn capability is not usable", ShortID(c.ID), c.Status)
	}
	if _, err := os.Lstat(filepath.Join(e.dir(c.ID), spawnRevoked)); err == nil {
		return "", fmt.Errorf("container %s: its spawn capability was revoked", ShortID(c.ID))
	}
	return c.Factory, nil
}

// spawnDepth is how deep c is in a chain of sub-containers: 0 for the
// host's, 1 for a sub-container of the host's, and so on. A chain longer
// than MaxSpawnDepth (records edited by hand) is an error.
func (e *Engine) spawnDepth(c *Container) (int, error) {
	n := 0
	for p := c.Parent; p != ""; n++ {
		if n > MaxSpawnDepth {
			return n, fmt.Errorf("container %s: corrupt records: its parents nest deeper than %d", ShortID(c.ID), MaxSpawnDepth)
		}
		pc, err := e.Get(p)
		if err != nil {
			return n, fmt.Errorf("container %s: parent %s: %w", ShortID(c.ID), ShortID(p), err)
		}
		p = pc.Parent
	}
	return n, nil
}

// admitSpawn checks a run on behalf of container o.Parent and narrows it
// to what that container may give: made from its factory (or, with
// Spawn, from the sub-factory of it prepareSpawn made), of its image
// (not a host directory unless the parent's is that one), with egress
// grants each a part of one the parent still holds (core.Within), a log
// bounded by the parent's, no published port, no volume and no host
// directory. Its name is kept as FACTORY.NAME, as a tenant's are.
func (e *Engine) admitSpawn(o *RunOptions) error {
	factory, err := e.SpawnFactoryOf(o.Parent)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	p, err := e.Get(o.Parent)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	var ps Spec
	if err := readJSON(e.specPath(p.ID), &ps); err != nil {
		return fmt.Errorf("run: parent %s: spec: %w", ShortID(p.ID), unwrapPath(err))
	}
	switch {
	case o.Tenant != "":
		return errors.New("run: a sub-container is its parent's, not a tenant's")
	case o.Spawn && !e.isSubFactory(o.Factory, factory):
		return fmt.Errorf("invalid Spawn: factory %s is not one made for it of its parent's, %s", o.Factory, factory)
	case !o.Spawn && o.Factory != "" && o.Factory != factory:
		return fmt.Errorf("invalid --factory %s: a sub-container is made from its parent's factory, %s", o.Factory, factory)
	case len(o.Volumes) > 0:
		return fmt.Errorf("invalid -v %s: a sub-container mounts no volume and no host directory", o.Volumes[0])
	case len(o.Publish) > 0 || o.PublishAll:
		return errors.New("invalid -p: a sub-container publishes no port (host ports are the host's)")
	}
	if err := e.sameImage(o.Image, &ps); err != nil {
		return err
	}
	// Its log is the host's disk: no more of it than the parent's.
	if pl := ps.Log; pl.MaxSize > 0 && (o.Log.MaxSize == 0 || o.Log.MaxSize > pl.MaxSize || o.Log.MaxFile > pl.MaxFile) {
		return fmt.Errorf("invalid --log-max-size %s / --log-max-file %d: above the parent's %s / %d; a sub-container's log is bounded by its parent's",
			logSizeText(o.Log.MaxSize), o.Log.MaxFile, logSizeText(pl.MaxSize), pl.MaxFile)
	}
	if _, err := parseGrants(nil, o.Egress); err != nil {
		return err
	}
	if err := e.partOfParent(p.ID, &ps, o.Egress); err != nil {
		return err
	}
	if o.Name != "" {
		if err := checkName(o.Name); err != nil {
			return err
		}
		o.Name = TenantContainerName(factory, o.Name)
		if len(o.Name) > MaxNameLen {
			return fmt.Errorf("invalid --name: at most %d characters for a sub-container", MaxNameLen-len(factory)-1)
		}
	}
	if !o.Spawn {
		o.Factory = factory
	}
	// A tenant's container's sub-containers are the tenant's too: it
	// sees and reaches them, as root does those of its own containers,
	// and no other tenant learns of them.
	o.Parent, o.Tenant = p.ID, p.Tenant
	return nil
}

// partOfParent refuses egress grants that are not each a part of one
// that container parent, of spec ps, still holds.
func (e *Engine) partOfParent(parent string, ps *Spec, egress []string) error {
	held := e.heldEgress(parent, ps)
	for _, g := range egress {
		eg, err := core.ParseEgress(g)
		if err != nil {
			return fmt.Errorf("invalid --egress %s: %w", g, err)
		}
		if !slices.ContainsFunc(held, func(h core.Egress) bool { return core.Within(eg, h) }) {
			return fmt.Errorf("invalid --egress %s: not within a grant the parent holds (%s); a sub-container's rights are a part of its parent's", g, egressText(held))
		}
	}
	return nil
}

// recheckSpawn checks again, under the state root's lock, in the host
// core h, what admitSpawn checked of sub-container c of spec before it:
// that its parent still holds the spawn capability and its egress
// grants are still parts of the parent's. A revocation takes the lock
// to write its marks (revokeGrant, revokeSpawn): a sub-container made
// after that is refused here, and one made before is in the records
// when the revocation looks.
func (e *Engine) recheckSpawn(h *hostCore, c *Container, spec *Spec) error {
	if c.Parent == "" {
		return nil
	}
	if _, ok := h.ctrs[c.Parent].holds("spawn"); !ok {
		return fmt.Errorf("run: container %s: its spawn capability was revoked", ShortID(c.Parent))
	}
	return h.partsOf(c.Parent, spec.Egress)
}

// MadeForSpawn reports whether factory name is one made for a --spawn
// container (by prepareSpawn), which goes with that container: no run
// but its sub-containers' and no factory of a tenant's is made from it.
func MadeForSpawn(name string) bool { return strings.HasPrefix(name, spawnFactoryPrefix) }

// isSubFactory reports whether factory name is a spawn factory made
// under parent.
func (e *Engine) isSubFactory(name, parent string) bool {
	if !MadeForSpawn(name) {
		return false
	}
	var f Factory
	if err := readJSON(e.factoryPath(name), &f); err != nil {
		return false
	}
	return f.Name == name && f.Parent == parent && !f.Removing
}

func egressText(gs []core.Egress) string {
	if len(gs) == 0 {
		return "none"
	}
	var out []string
	for _, g := range gs {
		out = append(out, g.String())
	}
	return strings.Join(out, ", ")
}

func logSizeText(n int64) string {
	if n == 0 {
		return "none (never rotate)"
	}
	return bytesText(n)
}

// sameImage refuses ref unless it is the image the parent runs (spec):
// the same reference, or a stored image of the same id.
func (e *Engine) sameImage(ref string, ps *Spec) error {
	if ref == ps.Image {
		return nil
	}
	refuse := fmt.Errorf("invalid image %q: a sub-container runs its parent's image, %s", ref, ps.Image)
	if ps.ImageID == "" || strings.HasPrefix(ref, "/") || strings.HasPrefix(ref, ".") {
		return refuse
	}
	img, err := e.ResolveImage(ref)
	if err != nil || img.ID != ps.ImageID {
		return refuse
	}
	return nil
}

// withdrawSpawn removes what container c, a --spawn container being
// removed, made: its factory, and every sub-container in it. The
// sub-containers went already (withdrawChildren, before c); what is left
// is the factory's record and groups, and anything made from it since.
func (e *Engine) withdrawSpawn(c *Container) error {
	if !c.Spawn || c.Factory == "" {
		return nil
	}
	if err := e.RemoveFactory(c.Factory, true); err != nil && !errors.Is(err, ErrNoSuchFactory) {
		return fmt.Errorf("rm %s: withdraw its sub-containers: %w", ShortID(c.ID), err)
	}
	return nil
}

// withdrawChildren removes the sub-containers of c, each with its own
// (children before parents: a sub-container's Remove withdraws its own
// first). With seal, c's factory and its sub-factories are first marked
// as being removed, so that nothing new is made from them meanwhile.
func (e *Engine) withdrawChildren(c *Container, seal bool) error {
	if !c.Spawn || c.Factory == "" {
		return nil
	}
	if seal {
		if _, _, err := e.withdrawFactory(c.Factory, true); err != nil && !errors.Is(err, ErrNoSuchFactory) {
			return fmt.Errorf("withdraw the sub-containers of %s: %w", ShortID(c.ID), err)
		}
	}
	// A child whose creation was under way when c's capability went is
	// found by the next round.
	for round := 0; round < 3; round++ {
		cs, err := e.List()
		if err != nil {
			return err
		}
		var errs []error
		n := 0
		for i := len(cs) - 1; i >= 0; i-- { // the latest made first
			if cs[i].Parent != c.ID {
				continue
			}
			n++
			if err := e.Remove(cs[i].ID, true); err != nil && !errors.Is(err, ErrNoSuchContainer) {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("withdraw the sub-containers of %s: %w", ShortID(c.ID), err)
		}
		if n == 0 {
			return nil
		}
	}
	return nil
}

// revokeSpawn withdraws container ref's spawn capability: the daemon
// refuses what it asks from then on, and its sub-containers are
// removed, theirs with them. Its own factory stays (it holds the
// container) until it is removed.
func (e *Engine) revokeSpawn(ref string) error {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	if !c.Spawn {
		return fmt.Errorf("revoke %s %s: the container holds no spawn capability", ref, SpawnGrant)
	}
	if err := e.revokeSpawnInCore(c); err != nil {
		return fmt.Errorf("revoke %s %s: %w", ref, SpawnGrant, err)
	}
	// Its supervisor closes its end: the descriptor answers nothing more.
	// A container that is not running serves none.
	if c.Status == StatusRunning {
		if _, err := e.control(c.ID, "revoke", controlRequest{Revoke: SpawnGrant}); err != nil {
			return err
		}
	}
	if err := e.withdrawChildren(c, false); err != nil {
		return fmt.Errorf("revoke %s %s: %w", ref, SpawnGrant, err)
	}
	return nil
}

// revokeSpawnInCore, under the state root's lock, deletes c's spawn
// right in the host core (its sub-containers' go with it) and marks it
// revoked: a sub-container being made waits for the lock, and then
// finds the right gone.
func (e *Engine) revokeSpawnInCore(c *Container) error {
	unlock, err := e.lock()
	if err != nil {
		return err
	}
	defer unlock()
	h, err := e.lockedCore()
	if err != nil {
		return err
	}
	if err := h.revokeSpawn(c.ID); err != nil && !errors.Is(err, ErrNoSuchContainer) {
		return err
	}
	if err := writeFileAtomic(filepath.Join(e.dir(c.ID), spawnRevoked), nil); err != nil {
		return err
	}
	e.advance() // hostcore_linux.go
	e.keepCore(0, 1)
	return nil
}

// spawnRevokedOf reports whether c's spawn capability was revoked.
func (e *Engine) spawnRevokedOf(c *Container) bool {
	_, err := os.Lstat(filepath.Join(e.dir(c.ID), spawnRevoked))
	return err == nil
}

// spawnProxy is a --spawn container's capability, as its supervisor
// serves it: the other end of the descriptor the command holds, on
// which the supervisor forwards HTTP requests to the daemon, each marked
// as the container's.
type spawnProxy struct {
	theirs *os.File // for the command, at SpawnFD; closed once it has it
	srv    *http.Server
}

// newSpawnProxy makes the capability of container id and serves it
// until close.
func (e *Engine) newSpawnProxy(id string) (*spawnProxy, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("container %s: spawn capability: socketpair: %w", ShortID(id), err)
	}
	ours := os.NewFile(uintptr(fds[0]), "spawn")
	theirs := os.NewFile(uintptr(fds[1]), "spawn")
	conn, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		theirs.Close()
		return nil, fmt.Errorf("container %s: spawn capability: %w", ShortID(id), err)
	}
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		conn.Close()
		theirs.Close()
		return nil, fmt.Errorf("container %s: spawn capability: a %T is no unix socket", ShortID(id), conn)
	}
	sock := filepath.Join(e.Root, daemonSocket)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host, pr.Out.Host = "http", "oak", "oak"
			pr.Out.Header.Del(SpawnHeader) // the container's word counts for nothing
			pr.Out.Header.Set(SpawnHeader, id)
		},
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}},
		FlushInterval: -1,
	}
	sp := &spawnProxy{theirs: theirs, srv: &http.Server{Handler: rp}}
	go sp.srv.Serve(&rightsListener{uc})
	return sp, nil
}

// close stops serving the capability: the command's end is then
// connected to nothing (a send fails with EPIPE).
func (sp *spawnProxy) close() {
	sp.theirs.Close()
	sp.srv.Close()
}

// rightsListener accepts the connections a container opens: each a
// stream socket it sends as SCM_RIGHTS on its end of the capability.
// A message that carries no unix stream socket is skipped.
type rightsListener struct{ uc *net.UnixConn }

func (l *rightsListener) Accept() (net.Conn, error) {
	for {
		var b [1]byte
		oob := make([]byte, unix.CmsgSpace(4*4))
		n, oobn, _, _, err := l.uc.ReadMsgUnix(b[:], oob)
		switch {
		case err != nil:
			return nil, err
		case n == 0 && oobn == 0:
			return nil, net.ErrClosed // every end the container held is closed
		case oobn == 0:
			continue
		}
		var fds []int
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err == nil {
			for i := range msgs {
				if got, err := unix.ParseUnixRights(&msgs[i]); err == nil {
					fds = append(fds, got...)
				}
			}
		}
		for _, fd := range fds[min(len(fds), 1):] {
			unix.Close(fd) // one connection a message
		}
		if len(fds) == 0 {
			continue
		}
		// Only a unix stream socket is a connection: anything else the
		// container holds (a socket of the host's the network service
		// gave it, a file) is closed unread.
		if typ, err := unix.GetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_TYPE); err != nil || typ != unix.SOCK_STREAM {
			unix.Close(fds[0])
			continue
		}
		if dom, err := unix.GetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_DOMAIN); err != nil || dom != unix.AF_UNIX {
			unix.Close(fds[0])
			continue
		}
		unix.CloseOnExec(fds[0])
		f := os.NewFile(uintptr(fds[0]), "spawn-conn")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			continue // not a socket
		}
		return c, nil
	}
}

func (l *rightsListener) Close() error   { return l.uc.Close() }
func (l *rightsListener) Addr() net.Addr { return l.uc.LocalAddr() }

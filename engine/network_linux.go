package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/oak-engine/oak/core"
	"github.com/oak-engine/oak/sandbox"
	"github.com/oak-engine/oak/sandbox/nsinit"
	"github.com/oak-engine/oak/services/netsvc"
)

// The network service of a container with grants is a separate oak process
// (`oak _netsvc`), confined before its Go runtime starts (see
// sandbox/nsinit/service.c): no file system, only CAP_SYS_PTRACE and
// CAP_NET_BIND_SERVICE. It gets the container's seccomp listener as fd 3
// and a control socket as fd 4, over which the supervisor sends the
// container's current grants as one JSON line (netGrants) and the service
// answers each with one line, "ok" or an error, once it applies them.
// The supervisor keeps its own copy of the listener, so when the service
// dies it starts another on the same listener: trapped calls wait in the
// kernel meanwhile, and sockets the container already holds are its own.

// netGrants is the control message: the grants in flag syntax.
type netGrants struct {
	Publish []string `json:"publish"`
	Egress  []string `json:"egress"`
}

// maxControlLine bounds one control message.
const maxControlLine = 1 << 20

// decodeNetGrants parses and checks a control message; it refuses anything
// that is not a well-formed grant list.
func decodeNetGrants(line []byte) (netGrants, error) {
	var g netGrants
	if len(line) > maxControlLine {
		return g, fmt.Errorf("grants message: %d bytes is too long", len(line))
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&g); err != nil {
		return g, fmt.Errorf("grants message: %w", err)
	}
	if dec.More() {
		return g, fmt.Errorf("grants message: trailing data")
	}
	if _, err := parseGrants(g.Publish, g.Egress); err != nil {
		return g, fmt.Errorf("grants message: %w", err)
	}
	return g, nil
}

// grants returns what the space still holds, as a control message.
func (a *authority) grants() netGrants {
	g := netGrants{Publish: []string{}, Egress: []string{}}
	for _, c := range a.caps() {
		switch o := c.Object.(type) {
		case core.Listen:
			if c.Rights.Has(core.RightListen) {
				g.Publish = append(g.Publish, o.String())
			}
		case core.Egress:
			if c.Rights.Has(core.RightConnect) {
				g.Egress = append(g.Egress, o.String())
			}
		}
	}
	return g
}

// RunNetService is the body of `oak _netsvc`: it serves the listener with
// the grants the control socket sends, until the container is gone. It
// counts the calls it answers into counts, the container's counters file
// (see netcounts_linux.go), if that is one.
func RunNetService(listener, control, local, counts *os.File) error {
	var tally *netsvc.Tally
	if counts != nil {
		if nc, err := mapNetCounts(counts, false); err == nil {
			tally = nc.tally // mapped until the service ends
		}
	}
	var current atomic.Pointer[authority]
	first := make(chan error, 1)
	go func() {
		r := bufio.NewReaderSize(control, 64<<10)
		for n := 0; ; n++ {
			line, err := r.ReadSlice('\n')
			if err != nil {
				if n == 0 {
					first <- fmt.Errorf("network service: no grants: %w", err)
				}
				return
			}
			g, err := decodeNetGrants(line)
			var a *authority
			if err == nil {
				a, err = grantAuthority(&Spec{Publish: g.Publish, Egress: g.Egress})
			}
			if err != nil {
				fmt.Fprintf(control, "%s\n", oneLine(err.Error()))
				continue
			}
			current.Store(a)
			if n == 0 {
				first <- nil
			}
			io.WriteString(control, "ok\n")
		}
	}()
	if err := <-first; err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv := &netsvc.Server{Grants: liveGrants{&current}, Log: log, Denials: os.Stderr, Local: local, Tally: tally}
	err := srv.Serve(context.Background(), int(listener.Fd()))
	// Serve uses the bare descriptor: without this, listener's finalizer
	// could close it under Serve after a garbage collection.
	runtime.KeepAlive(listener)
	return err
}

// liveGrants answers from the latest grants the supervisor sent.
type liveGrants struct{ p *atomic.Pointer[authority] }

func (g liveGrants) Listen(proto string, port uint16) (netsvc.Published, bool) {
	return g.p.Load().Listen(proto, port)
}
func (g liveGrants) Egress(proto string, dst netip.AddrPort) bool {
	return g.p.Load().Egress(proto, dst)
}
func (g liveGrants) Any(proto string) bool { return g.p.Load().Any(proto) }
func (g liveGrants) Inbound(proto string) netsvc.Inbound {
	return g.p.Load().Inbound(proto)
}

// netService supervises the network service process of one container.
type netService struct {
	listener *os.File
	local    *os.File // the container's local-socket channel, handed to each service
	auth     *authority
	log      io.Writer
	counts   *netCounts    // nil counts nothing
	served   chan struct{} // closed once no service serves the container, its last call counted

	mu  sync.Mutex
	ctl *os.File      // our end of the current service's control socket
	ack *bufio.Reader // its answers
}

// netServiceCmd is the hidden command the service runs as.
const netServiceCmd = "_netsvc"

// serveNetwork answers the container's trapped network calls until the
// container is gone. Without grants it does so in this process (Offline:
// nothing to check, see netsvc.Server); with grants it runs the network
// service and restarts it whenever it dies.
//
// log receives the service's own messages and, a line each, the calls it
// refused and the grant that would allow them (see netsvc.Server.Denials).
// The calls answered and the service's restarts are counted into counts
// (nil: not counted), which serveNetwork closes once no service serves
// the container any more.
func serveNetwork(ctx context.Context, p *sandbox.Process, a *authority, log io.Writer, counts *netCounts) *netService {
	listener := p.Listener
	n := &netService{listener: listener, local: p.Local, auth: a, log: log, counts: counts, served: make(chan struct{})}
	if !a.hasNetwork() {
		go func() {
			defer close(n.served)
			defer counts.close() // Serve has returned: nothing counts any more
			(&netsvc.Server{Offline: true, Denials: log, Tally: counts.tallyOrNil()}).Serve(ctx, int(listener.Fd()))
		}()
		return n
	}
	go func() {
		defer close(n.served)
		n.supervise(ctx)
	}()
	return n
}

// waitServed waits, up to a bound, until the service that served the
// container (stopped: its context ended) has counted its last call: a
// call is counted after its answer, so the container can end before.
func (n *netService) waitServed() {
	select {
	case <-n.served:
	case <-time.After(time.Second):
	}
}

// openNetCounts maps container id's counters for its supervisor, or
// returns nil (nothing counted) if they cannot be had.
func (e *Engine) openNetCounts(id string) *netCounts {
	n, err := openNetCounts(filepath.Join(e.dir(id), netCountsFile))
	if err != nil {
		return nil
	}
	return n
}

func (n *netService) supervise(ctx context.Context) {
	defer n.counts.close()
	for backoff := 10 * time.Millisecond; ctx.Err() == nil; {
		start := time.Now()
		err := n.runOnce(ctx)
		if err == nil || ctx.Err() != nil {
			return // the container is gone (the service's Serve returned nil)
		}
		n.counts.restarted()
		fmt.Fprintf(n.log, "oak: network service ended (%v); restarting\n", err)
		if time.Since(start) > time.Second {
			backoff = 10 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 500*time.Millisecond)
	}
}

// runOnce starts one network service and waits for it to end.
func (n *netService) runOnce(ctx context.Context) error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "netsvc-control"), os.NewFile(uintptr(fds[1]), "netsvc-control")
	cmd := exec.Command("/proc/self/exe", netServiceCmd)
	cmd.Env = []string{nsinit.ServiceEnvVar + "=net"}
	cmd.ExtraFiles = []*os.File{n.listener, theirs, n.local, n.counts.file()} // fds 3-6
	cmd.Stderr = n.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	theirs.Close()
	if err != nil {
		ours.Close()
		return err
	}
	n.mu.Lock()
	n.ctl, n.ack = ours, bufio.NewReader(ours)
	err = n.sendLocked()
	n.mu.Unlock()
	if err != nil {
		cmd.Process.Kill()
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			cmd.Process.Kill()
		case <-done:
		}
	}()
	werr := cmd.Wait()
	close(done)
	n.mu.Lock()
	n.ctl.Close()
	n.ctl = nil
	n.mu.Unlock()
	if err != nil {
		return err
	}
	return werr
}

// sendLocked sends the current grants and waits for the service to apply them.
func (n *netService) sendLocked() error {
	if n.ctl == nil {
		return nil // between two services: the next one starts with the current grants
	}
	b, _ := json.Marshal(n.auth.grants())
	n.ctl.SetDeadline(time.Now().Add(5 * time.Second))
	defer n.ctl.SetDeadline(time.Time{})
	if _, err := n.ctl.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("network service: send grants: %w", err)
	}
	line, err := n.ack.ReadString('\n')
	if err != nil {
		return fmt.Errorf("network service: grants not acknowledged: %w", err)
	}
	if line != "ok\n" {
		return fmt.Errorf("network service: grants refused: %s", line)
	}
	return nil
}

// names lists the grants the container still holds.
func (n *netService) names() []string {
	g := n.auth.grants()
	var out []string
	for _, p := range g.Publish {
		out = append(out, "publish "+p)
	}
	for _, e := range g.Egress {
		out = append(out, "egress "+e)
	}
	return out
}

// revoke withdraws a grant and returns once the network service has
// stopped serving it: no new socket, bind, listen, connect or send under it.
func (n *netService) revoke(name string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.auth.revoke(name); err != nil {
		return err
	}
	return n.sendLocked()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// The supervisor of every container listens on containers/ID/control, a
// unix socket only root can reach, for requests that change a running
// container's authority: one JSON line in, one JSON line out.
type controlRequest struct {
	Revoke string         `json:"revoke,omitempty"` // withdraw this grant
	Grants bool           `json:"grants,omitempty"` // list the grants held
	Exec   *execRequest   `json:"exec,omitempty"`   // start a process (stdin, stdout, stderr sent along)
	Signal int            `json:"signal,omitempty"` // on an exec connection: signal the process
	Attach *attachRequest `json:"attach,omitempty"` // the terminal of a -dt container: raw bytes follow the answer
	Resize *attachRequest `json:"resize,omitempty"` // its window size
}

type controlReply struct {
	Error  string   `json:"error,omitempty"`
	Grants []string `json:"grants,omitempty"`
	// An exec connection answers {"pid":N} once the process runs (or an
	// error, with Errno if its command could not be executed), then
	// {"exit":STATUS} when it ends.
	Pid   int  `json:"pid,omitempty"`
	Errno int  `json:"errno,omitempty"`
	Exit  *int `json:"exit,omitempty"`
}

// controlAddr names the control socket of container id through a
// descriptor of its directory (/proc/self/fd/N/control): a unix socket
// path must fit in 108 bytes, and state roots and ids are long. The
// descriptor must stay open while the address is used; close closes it.
func (e *Engine) controlAddr(id string) (addr string, close func(), err error) {
	dir, err := os.Open(e.dir(id))
	if err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("/proc/self/fd/%d/control", dir.Fd()), func() { dir.Close() }, nil
}

// serveControl answers control requests for container id until ctx ends.
// An exec request holds its connection until the process it started ends
// (see serveExec); every other request is one line in, one line out.
func (e *Engine) serveControl(ctx context.Context, id string, ns *netService, p *sandbox.Process, term *termHub, sp *spawnProxy) error {
	path, closeDir, err := e.controlAddr(id)
	if err != nil {
		return fmt.Errorf("container %s: control socket: %w", ShortID(id), err)
	}
	defer closeDir()
	os.Remove(path)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return fmt.Errorf("container %s: control socket: %w", ShortID(id), err)
	}
	l.SetUnlinkOnClose(false) // its path means nothing once the directory is closed
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	go func() {
		for {
			c, err := l.AcceptUnix()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			var req controlRequest
			var rep controlReply
			line, files, err := readControl(c)
			if err == nil {
				err = json.Unmarshal(line, &req)
			}
			switch {
			case err != nil:
				rep.Error = "bad request: " + oneLine(err.Error())
			case req.Exec != nil:
				go serveExec(c, p, req.Exec, files)
				continue
			case req.Attach != nil && term != nil:
				go term.attach(c, req.Attach.Rows, req.Attach.Cols)
				continue
			case req.Attach != nil:
				rep.Error = ErrNoTerminal.Error()
			case req.Resize != nil && term != nil:
				term.resize(req.Resize.Rows, req.Resize.Cols)
			case req.Revoke == SpawnGrant:
				if sp != nil {
					sp.close() // revokeSpawn marked it revoked: no restart serves it again
				}
			case req.Revoke != "":
				if err := ns.revoke(req.Revoke); err != nil {
					rep.Error = oneLine(err.Error())
				}
			case req.Grants:
				rep.Grants = ns.names()
			default:
				rep.Error = "bad request: nothing asked"
			}
			for _, f := range files {
				f.Close()
			}
			writeControl(c, rep)
			c.Close()
		}
	}()
	return nil
}

// readControl reads one request line, and the descriptors sent with it.
func readControl(c *net.UnixConn) ([]byte, []*os.File, error) {
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4*(3+sandbox.MaxExtraFiles))) // an exec's stdio and extra files
	var line []byte
	var files []*os.File
	for len(line) < len(buf) {
		n, oobn, _, _, err := c.ReadMsgUnix(buf[len(line):], oob)
		if oobn > 0 {
			msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
			for _, m := range msgs {
				fds, _ := unix.ParseUnixRights(&m)
				for _, fd := range fds {
					files = append(files, os.NewFile(uintptr(fd), "control"))
				}
			}
		}
		line = buf[:len(line)+n]
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			return line[:i], files, nil
		}
		if err != nil || n == 0 {
			for _, f := range files {
				f.Close()
			}
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return nil, nil, err
		}
	}
	for _, f := range files {
		f.Close()
	}
	return nil, nil, errors.New("request line too long")
}

func writeControl(c net.Conn, rep controlReply) error {
	b, _ := json.Marshal(rep)
	_, err := c.Write(append(b, '\n'))
	return err
}

// Revoke withdraws the grant called name (as Grants lists it, e.g.
// "egress 127.0.0.1:6379/tcp") from a running container, and every part
// of it from the sub-containers under it (see revokeGrant). It returns
// once they can no longer use it for new sockets.
func (e *Engine) Revoke(ref, name string) error {
	if name == SpawnGrant {
		return e.revokeSpawn(ref)
	}
	return e.revokeGrant(ref, name)
}

// Grants lists the network grants a running container still holds.
func (e *Engine) Grants(ref string) ([]string, error) {
	rep, err := e.control(ref, "grants", controlRequest{Grants: true})
	if err == nil {
		if c, gerr := e.Get(ref); gerr == nil && c.Spawn && !e.spawnRevokedOf(c) {
			rep.Grants = append(rep.Grants, SpawnGrant)
		}
	}
	return rep.Grants, err
}

// control sends one request to the supervisor of a running container.
func (e *Engine) control(ref, verb string, req controlRequest) (controlReply, error) {
	var rep controlReply
	c, err := e.Get(ref)
	if err != nil {
		return rep, err
	}
	if c.Status != StatusRunning {
		return rep, fmt.Errorf("%s %s: container is %s", verb, ref, c.Status)
	}
	path, closeDir, err := e.controlAddr(c.ID)
	if os.IsNotExist(err) {
		return rep, noSuchContainer(ref) // removed since it was looked up
	}
	if err != nil {
		return rep, fmt.Errorf("%s %s: %w", verb, ref, err)
	}
	defer closeDir()
	conn, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return rep, fmt.Errorf("%s %s: %w", verb, ref, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	b, _ := json.Marshal(req)
	if _, err := conn.Write(append(b, '\n')); err != nil {
		return rep, fmt.Errorf("%s %s: %w", verb, ref, err)
	}
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		return rep, fmt.Errorf("%s %s: no answer from its supervisor: %w", verb, ref, err)
	}
	if err := json.Unmarshal(line, &rep); err != nil {
		return rep, fmt.Errorf("%s %s: bad answer: %w", verb, ref, err)
	}
	if rep.Error != "" {
		return rep, fmt.Errorf("%s %s: %s", verb, ref, rep.Error)
	}
	return rep, nil
}

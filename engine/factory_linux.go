package engine

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/oak-engine/oak/sandbox"
	"github.com/oak-engine/oak/storage/volume"
)

// FactoryInfo describes one factory for oak factory ls and inspect.
type FactoryInfo struct {
	Name    string    `json:"Name"`
	Parent  string    `json:"Parent"`
	Created time.Time `json:"Created"`
	Limit   QuotaInfo `json:"Limit"` // 0: no limit of its own
	// Given is what the factory has given out of each resource: its
	// sub-factories' limits plus, for disk, its reservations.
	Given QuotaInfo `json:"Given"`
	// Reserved lists the disk reservations, by holder ("volume data",
	// "container 1a2b3c4d5e6f"), in bytes.
	Reserved map[string]int64 `json:"Reserved,omitempty"`
	// Usage is what the kernel charges the factory's group now, its
	// sub-factories' and containers' included.
	Usage      sandbox.GroupUsage `json:"Usage"`
	Group      string             `json:"Group"` // its control group, under Oak's in each hierarchy
	Containers []string           `json:"Containers"`
	Children   []string           `json:"Children"`
	Volumes    []string           `json:"Volumes"`
	Removing   bool               `json:"Removing,omitempty"`
}

// QuotaInfo is a FactoryQuota as oak factory inspect shows it.
type QuotaInfo struct {
	MemoryBytes int64
	Pids        int64
	CPUMilli    int64
	DiskBytes   int64
}

// loadFactories reads the factory records and loads them, with every disk
// reservation derived from the container records cs and the volume store,
// into a core. Must be called with the lock held.
// lockFactories takes the state root's lock and loads the factory tree with
// the live containers; the caller releases the lock with unlock.
func (e *Engine) lockFactories() (t *factoryTree, cs []*Container, unlock func(), err error) {
	if unlock, err = e.lock(); err != nil {
		return nil, nil, nil, err
	}
	if cs, err = e.reconcile(); err == nil {
		t, err = e.loadFactories(cs)
	}
	if err != nil {
		unlock()
		return nil, nil, nil, err
	}
	return t, cs, unlock, nil
}

// loadFactories is the factory tree of the host core (hostcore.go): the
// daemon's, or one built from the records. Must be called with the lock
// held, cs the reconciled containers.
func (e *Engine) loadFactories(cs []*Container) (*factoryTree, error) {
	h, err := e.hostCore(cs)
	if err != nil {
		return nil, err
	}
	return h.fac, nil
}

// diskCharges derives every reservation of a factory's disk from the
// records: each container made from a factory holds the size of its
// writable layer (its --storage-size, by default
// sandbox.DefaultWritableBytes; none with --read-only) for as long as its
// record exists, and each volume made for a factory holds its size for as
// long as the volume exists.
func (e *Engine) diskCharges(fs []*Factory, cs []*Container) ([]diskCharge, error) {
	var out []diskCharge
	for _, c := range cs {
		if c.Factory == "" || c.Status == StatusBroken {
			continue
		}
		spec, err := e.readSpec(c.ID)
		if errors.Is(err, os.ErrNotExist) {
			// Removed since it was listed: a removal takes no lock of the
			// root (record_linux.go), and a container whose record is gone
			// holds nothing of its factory's disk.
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("factory %s: container %s: %w", c.Factory, ShortID(c.ID), err)
		}
		out = append(out, diskCharge{factory: c.Factory, kind: "container", id: c.ID, bytes: writableCharge(spec)})
	}
	var vs *volume.Store
	for _, f := range fs {
		for _, fv := range f.Volumes {
			if vs == nil {
				var err error
				if vs, err = e.Volumes(); err != nil {
					return nil, err
				}
			}
			v, err := vs.Inspect(fv.Name)
			if errors.Is(err, volume.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("factory %s: %w", f.Name, err)
			}
			if !fv.Created.IsZero() && !fv.Created.Equal(v.Created) {
				continue // another volume of that name, made since
			}
			out = append(out, diskCharge{factory: f.Name, kind: "volume", id: fv.Name, bytes: v.Size})
		}
	}
	return out, nil
}

// writableCharge is what a container's writable layer holds of its
// factory's disk.
func writableCharge(spec *Spec) int64 {
	switch {
	case spec.ReadOnly:
		return 0
	case spec.Limits.WritableBytes > 0:
		return spec.Limits.WritableBytes
	}
	return sandbox.DefaultWritableBytes
}

// CreateFactory makes a factory and its control groups. It refuses an
// invalid or taken name, a missing parent or one being removed, and a
// quota that does not fit in what the parent has left (naming the
// resource); under a parent that limits a resource, the new factory must
// limit it too.
func (e *Engine) CreateFactory(o FactoryOptions) (*FactoryInfo, error) {
	t, cs, unlock, err := e.lockFactories()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := t.add(o); err != nil {
		return nil, err
	}
	f := &Factory{Name: o.Name, ID: newFactoryID(), Parent: o.Parent, Quota: o.Quota, Created: time.Now().UTC()}
	t.byName[f.Name] = f
	if err := e.makeGroups(t, f.Name); err != nil {
		sandbox.RemoveGroup(t.group(f.Name))
		return nil, fmt.Errorf("factory create %s: %w", f.Name, err)
	}
	if err := e.saveFactory(f); err != nil {
		sandbox.RemoveGroup(t.group(f.Name))
		return nil, err
	}
	e.keepCore(0, 1) // t.add made it in the core
	return t.info(f.Name, cs), nil
}

// makeGroups makes (or brings up to date) the control groups of name and
// of its ancestors, top first: after a reboot, none exist until a factory's
// first container.
func (e *Engine) makeGroups(t *factoryTree, name string) error {
	for _, f := range t.chain(name) {
		if err := sandbox.MakeGroup(t.group(f.Name), f.Quota.limits()); err != nil {
			return err
		}
	}
	return nil
}

// info describes factory name. Must be called with the lock held, cs the
// reconciled containers.
func (t *factoryTree) info(name string, cs []*Container) *FactoryInfo {
	f := t.byName[name]
	fi := &FactoryInfo{Name: f.Name, Parent: f.Parent, Created: f.Created, Limit: QuotaInfo(f.Quota),
		Group: t.group(name), Removing: f.Removing, Reserved: t.reserved[name],
		Containers: []string{}, Children: []string{}, Volumes: []string{}}
	given := t.given(name)
	fi.Given = QuotaInfo{MemoryBytes: int64(given.MemoryBytes), Pids: int64(given.Tasks),
		CPUMilli: int64(given.CPUMilli), DiskBytes: int64(given.DiskBytes)}
	fi.Usage, _ = sandbox.ReadGroup(fi.Group)
	for _, c := range cs {
		if c.Factory == name {
			fi.Containers = append(fi.Containers, c.Name)
		}
	}
	for _, o := range t.byName {
		if o.Parent == name {
			fi.Children = append(fi.Children, o.Name)
		}
	}
	sort.Strings(fi.Children)
	fi.Volumes = t.volumes(name)
	return fi
}

// volumes lists the volumes of factory name that exist: those whose size
// it holds.
func (t *factoryTree) volumes(name string) []string {
	out := []string{}
	for _, v := range t.byName[name].Volumes {
		if _, ok := t.reserved[name]["volume "+v.Name]; ok {
			out = append(out, v.Name)
		}
	}
	return out
}

// ListFactories describes every factory, by name.
func (e *Engine) ListFactories() ([]*FactoryInfo, error) {
	t, cs, unlock, err := e.lockFactories()
	if err != nil {
		return nil, err
	}
	defer unlock()
	e.keepCore(0, 0) // read only
	var out []*FactoryInfo
	for name := range t.byName {
		out = append(out, t.info(name, cs))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// InspectFactory describes factory name.
func (e *Engine) InspectFactory(name string) (*FactoryInfo, error) {
	t, cs, unlock, err := e.lockFactories()
	if err != nil {
		return nil, err
	}
	defer unlock()
	e.keepCore(0, 0) // read only
	if _, ok := t.byName[name]; !ok {
		return nil, fmt.Errorf("factory %s: %w", name, ErrNoSuchFactory)
	}
	return t.info(name, cs), nil
}

// RemoveFactory removes factory name and its control groups. What was
// made from the factory is what the core's revoke of its capability takes
// with it: its sub-factories, recursively, and the containers and volumes
// made from any of them. Without force a factory that has any is refused,
// listing them. With force all of it is withdrawn: the factories are
// marked as being removed (nothing new is made from them), the containers
// killed and removed, the volumes removed, then the records (deepest
// first) and the groups. A crash part-way leaves the marks, and the next
// oak factory rm -f finishes the job.
func (e *Engine) RemoveFactory(name string, force bool) error {
	op := "factory rm " + name
	w, group, err := e.withdrawFactory(name, force)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if !force {
		return nil // removed under the lock already
	}
	// Outside the lock: stopping a container takes it.
	var errs []error
	for i := len(w.containers) - 1; i >= 0; i-- { // the latest made first: sub-containers before their parents
		id := w.containers[i]
		if err := e.Remove(id, true); err != nil && !errors.Is(err, ErrNoSuchContainer) {
			errs = append(errs, fmt.Errorf("container %s: %w", ShortID(id), err))
		}
	}
	for _, v := range w.volumes {
		if err := e.RemoveVolume(v); err != nil && !errors.Is(err, volume.ErrNotFound) {
			errs = append(errs, fmt.Errorf("volume %s: %w", v, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	t, _, unlock, err := e.lockFactories()
	if err != nil {
		return err
	}
	defer unlock()
	if w, err = t.revoke(name); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if len(w.containers) > 0 || len(w.volumes) > 0 { // made before the mark
		return fmt.Errorf("%s: containers or volumes were made from it meanwhile; run it again", op)
	}
	for i := len(w.factories) - 1; i >= 0; i-- {
		if err := os.Remove(e.factoryPath(w.factories[i])); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: %w", op, err)
		}
		e.advance() // hostcore_linux.go
	}
	t.forget(w.factories)
	e.keepCore(0, uint64(len(w.factories))) // t.revoke took them out of the core
	if err := sandbox.RemoveGroup(group); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// withdrawFactory, under the lock, finds what was made from factory name.
// Without force it removes the factory if nothing was, and refuses
// otherwise; with force it marks the factory and its sub-factories as
// being removed, and returns what is to be withdrawn.
func (e *Engine) withdrawFactory(name string, force bool) (w withdrawal, group string, err error) {
	t, cs, unlock, err := e.lockFactories()
	if err != nil {
		return w, "", err
	}
	defer unlock()
	if _, ok := t.byName[name]; !ok {
		return w, "", ErrNoSuchFactory
	}
	group = t.group(name)
	if w, err = t.revoke(name); err != nil {
		return w, "", err
	}
	if !force {
		var held []string
		if len(w.containers) > 0 {
			var names []string
			for _, c := range cs {
				if containsName(w.containers, c.ID) {
					names = append(names, c.Name)
				}
			}
			held = append(held, "containers "+strings.Join(names, ", "))
		}
		if len(w.factories) > 1 {
			held = append(held, "sub-factories "+strings.Join(w.factories[1:], ", "))
		}
		if len(w.volumes) > 0 {
			held = append(held, "volumes "+strings.Join(w.volumes, ", "))
		}
		if len(held) > 0 {
			return w, "", fmt.Errorf("has %s; remove them first, or use rm -f to remove it with everything made from it", strings.Join(held, "; "))
		}
		if err := os.Remove(e.factoryPath(name)); err != nil {
			return w, "", err
		}
		e.advance() // hostcore_linux.go
		t.forget(w.factories)
		e.keepCore(0, 1) // t.revoke took it out of the core
		return w, group, sandbox.RemoveGroup(group)
	}
	for _, n := range w.factories {
		if f := t.byName[n]; !f.Removing {
			f.Removing = true
			if err := e.saveFactory(f); err != nil {
				return w, "", err
			}
		}
	}
	return w, group, nil
}

// admit makes container c (record and spec not yet written) one of
// factory name's: its limits default to the factory's and may not exceed
// them, its writable layer is reserved of the factory's disk, and its
// groups go in the factory's. Must be called with the lock held, cs the
// reconciled containers.
func (e *Engine) admit(name string, c *Container, spec *Spec, cs []*Container) error {
	// cs is nil if the caller did not need the records (see newRecord):
	// a core not held is then built from them all the same, with its
	// sub-containers' parents.
	get := func() (*hostCore, error) { return e.hostCore(cs) }
	if cs == nil {
		get = e.lockedCore
	}
	h, err := get()
	if err != nil {
		return err
	}
	t := h.fac
	f, ok := t.byName[name]
	switch {
	case !ok:
		return fmt.Errorf("invalid --factory %s: %w", name, ErrNoSuchFactory)
	case f.Removing:
		return fmt.Errorf("invalid --factory %s: the factory is being removed", name)
	}
	if err := e.recheckSpawn(h, c, spec); err != nil {
		return err
	}
	l := &spec.Limits
	for _, r := range []struct {
		flag  string
		v     *int64
		limit int64
		text  func(int64) string
	}{{"--memory", &l.MemoryBytes, f.Quota.MemoryBytes, bytesText},
		{"--pids", &l.Pids, f.Quota.Pids, func(n int64) string { return fmt.Sprint(n) }},
		{"--cpus", &l.CPUMilli, f.Quota.CPUMilli, func(n int64) string { return fmt.Sprintf("%.2f CPUs", float64(n)/1000) }}} {
		switch {
		case *r.v == 0:
			*r.v = r.limit
		case r.limit > 0 && *r.v > r.limit:
			return fmt.Errorf("invalid %s %s: above the limit of factory %s (%s); a container's limits may only narrow its factory's",
				r.flag, r.text(*r.v), name, r.text(r.limit))
		}
	}
	// Into the host core: its reservation of the factory's disk, its
	// space, what it holds (derived from its parent's, for a
	// sub-container). newRecord keeps the core once its record is
	// written.
	c.Factory = name
	if err := h.add(e.hostNode(c, spec)); err != nil {
		return fmt.Errorf("run --factory %s: %w (a container's writable layer, --storage-size, is charged to its factory's --disk; --read-only needs none)", name, err)
	}
	// Its groups are made (or brought up to date) at each launch, by
	// ensureGroups.
	if err := pidsLeft(t, name); err != nil {
		return err
	}
	c.Factory, c.CgroupParent = name, t.group(name)
	return nil
}

// pidsLeft refuses a launch into a factory whose tasks are used up (the
// container's init and its command need two), naming the factory whose
// quota is exhausted: the factory's own or an ancestor's.
func pidsLeft(t *factoryTree, name string) error {
	chain := t.chain(name)
	for i := len(chain) - 1; i >= 0; i-- {
		g := t.group(chain[i].Name)
		u, err := sandbox.ReadGroup(g)
		if err == nil && u.PidsMax > 0 && u.Pids+sandbox.MinPids > u.PidsMax {
			return fmt.Errorf("factory %s: pids quota exhausted: %d of %d tasks in use, a container needs %d",
				chain[i].Name, u.Pids, u.PidsMax, sandbox.MinPids)
		}
	}
	return nil
}

// explainLaunch turns a failed launch into a container of a factory whose
// tasks ran out meanwhile into an error that says so.
func (e *Engine) explainLaunch(c *Container, err error) error {
	if c.Factory == "" {
		return err
	}
	fs, ferr := e.factories()
	if ferr != nil {
		return err
	}
	t, ferr := newFactoryTree(fs, nil)
	if ferr != nil {
		return err
	}
	if perr := pidsLeft(t, c.Factory); perr != nil {
		return fmt.Errorf("%v: %w", perr, err)
	}
	if errors.Is(err, syscall.EAGAIN) {
		// The tasks ran out during the launch and are free again now
		// (the launch's own, or others' that ended): name the factory
		// with the fewest left, whose quota it most likely was.
		name, least := "", int64(-1)
		for _, f := range t.chain(c.Factory) {
			u, uerr := sandbox.ReadGroup(t.group(f.Name))
			if uerr != nil || u.PidsMax <= 0 {
				continue
			}
			if left := u.PidsMax - u.Pids; least < 0 || left < least {
				name, least = f.Name, left
			}
		}
		if name != "" {
			return fmt.Errorf("factory %s: pids quota exhausted during the launch (%d tasks left now): %w", name, least, err)
		}
	}
	return err
}

// ensureGroups brings the groups of container c's factory up to date
// before a launch (after a reboot they are gone). A factory removed
// meanwhile is refused.
func (e *Engine) ensureGroups(c *Container) error {
	if c.Factory == "" {
		return nil
	}
	fs, err := e.factories()
	if err != nil {
		return err
	}
	t, err := newFactoryTree(fs, nil)
	if err != nil {
		return err
	}
	f, ok := t.byName[c.Factory]
	switch {
	case !ok:
		return fmt.Errorf("factory %s: %w", c.Factory, ErrNoSuchFactory)
	case f.Removing:
		return fmt.Errorf("factory %s: is being removed", c.Factory)
	case t.group(c.Factory) != c.CgroupParent:
		return fmt.Errorf("factory %s: its group %s is not the container's %s", c.Factory, t.group(c.Factory), c.CgroupParent)
	}
	return e.makeGroups(t, c.Factory)
}

// CreateFactoryVolume creates a volume as CreateVolume does, reserving its
// size of factory's disk quota first; the volume is the factory's, and
// oak factory rm -f removes it.
func (e *Engine) CreateFactoryVolume(factory, name string, size int64, o VolumeOptions) (*VolumeInfo, error) {
	op := fmt.Sprintf("volume create %s --factory %s", name, factory)
	t, _, unlock, err := e.lockFactories()
	if err != nil {
		return nil, err
	}
	defer unlock()
	f, ok := t.byName[factory]
	switch {
	case !ok:
		return nil, fmt.Errorf("%s: %w", op, ErrNoSuchFactory)
	case f.Removing:
		return nil, fmt.Errorf("%s: the factory is being removed", op)
	}
	for _, g := range t.byName {
		if containsName(t.volumes(g.Name), name) {
			return nil, fmt.Errorf("%s: volume %s exists, in factory %s", op, name, g.Name)
		}
	}
	if err := t.reserve(diskCharge{factory: factory, kind: "volume", id: name, bytes: size}); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	// The record first: a crash before the volume exists leaves a name
	// that holds nothing.
	keep := f.Volumes[:0] // entries of volumes of this name that are gone
	for _, fv := range f.Volumes {
		if fv.Name != name {
			keep = append(keep, fv)
		}
	}
	f.Volumes = append(keep, FactoryVolume{Name: name})
	if err := e.saveFactory(f); err != nil {
		return nil, err
	}
	v, err := e.CreateVolume(name, size, o)
	if err != nil {
		f.Volumes = f.Volumes[:len(f.Volumes)-1]
		e.saveFactory(f)
		return nil, err
	}
	f.Volumes[len(f.Volumes)-1].Created = v.CreatedAt
	if err := e.saveFactory(f); err != nil {
		return nil, err
	}
	return v, nil
}

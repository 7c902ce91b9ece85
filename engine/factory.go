package engine

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/oak-engine/oak/core"
	"github.com/oak-engine/oak/sandbox"
)

// A factory is a named quota that containers are made from: the sum of
// what its containers use can never exceed it, because the host enforces
// it as a control group holding theirs (see factory_linux.go). A factory
// can make sub-factories, each out of what it has left: the sum of its
// sub-factories' limits stays within its own, per resource, as the core's
// factories ([core.Core.NewFactory]) check. Its disk quota holds its
// volumes and its containers' writable layers, each reserved when made.
//
// Factories are records under the state root, STATE/factories/NAME.json,
// each replaced atomically under the root's lock; what a factory has
// given out is recomputed from the records (sub-factories, volumes,
// containers) every time it is needed, never kept as a counter that a
// crash could leave wrong.

// Factory is the persistent record of one factory.
type Factory struct {
	Name string `json:"name"`
	// ID tells this factory's control group from those of factories of
	// the same name under other state roots: the groups are the host's.
	ID      string       `json:"id"`
	Parent  string       `json:"parent,omitempty"` // "" for a factory of the host's
	Quota   FactoryQuota `json:"quota"`
	Created time.Time    `json:"created"`
	// Volumes are the volumes made for it (oak volume create --factory),
	// whose sizes its disk quota holds.
	Volumes []FactoryVolume `json:"volumes,omitempty"`
	// Removing is set by oak factory rm -f before it withdraws what was
	// made from the factory: no container or sub-factory is made from it
	// any more, and a removal a crash interrupted is finished by the next.
	Removing bool `json:"removing,omitempty"`
}

// FactoryVolume names a volume made for a factory. A volume that is gone
// (removed, or never made: a crash between the record and the volume)
// holds nothing of the factory's disk, and a volume of the same name made
// later is not the factory's: Created, the volume's creation time as the
// volume store keeps it, tells them apart. Created is zero only between
// the record and the volume's creation.
type FactoryVolume struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created,omitzero"`
}

// FactoryQuota is a factory's limit. A zero field is no limit of the
// factory's own: it is then bounded by its parent's (only a factory of the
// host's, or one under a parent that sets no limit of that resource, may
// leave a field zero).
type FactoryQuota struct {
	MemoryBytes int64 `json:"memory_bytes,omitempty"`
	Pids        int64 `json:"pids,omitempty"`
	CPUMilli    int64 `json:"cpu_milli,omitempty"`
	DiskBytes   int64 `json:"disk_bytes,omitempty"`
}

// FactoryOptions is a request to make a factory, as the front ends take it.
type FactoryOptions struct {
	Name   string
	Parent string
	Quota  FactoryQuota
}

// ErrNoSuchFactory is the cause of every error about a factory name that
// names none, for errors.Is.
var ErrNoSuchFactory = errors.New("no such factory")

// Check returns nil if every set field of q is one a container could live
// in, and otherwise an error naming the flag and the bound.
func (q FactoryQuota) Check() error {
	switch {
	case q.MemoryBytes < 0 || q.MemoryBytes > 0 && q.MemoryBytes < sandbox.MinMemoryBytes:
		return fmt.Errorf("invalid --memory %d: a factory needs at least the %d MiB one container needs to start", q.MemoryBytes, sandbox.MinMemoryBytes>>20)
	case q.Pids < 0 || q.Pids > 0 && q.Pids < sandbox.MinPids:
		return fmt.Errorf("invalid --pids %d: a factory needs at least the %d tasks one container needs to start", q.Pids, sandbox.MinPids)
	case q.Pids > sandbox.MaxPids:
		return fmt.Errorf("invalid --pids %d: above the kernel's maximum %d", q.Pids, sandbox.MaxPids)
	case q.CPUMilli < 0 || q.CPUMilli > 0 && q.CPUMilli < sandbox.MinCPUMilli:
		return fmt.Errorf("invalid --cpus %d thousandths: the smallest the kernel enforces is 0.01", q.CPUMilli)
	case q.DiskBytes < 0:
		return fmt.Errorf("invalid --disk %d: negative", q.DiskBytes)
	}
	return nil
}

// limits is q as the sandbox enforces it on a group.
func (q FactoryQuota) limits() sandbox.Limits {
	return sandbox.Limits{MemoryBytes: q.MemoryBytes, Pids: q.Pids, CPUMilli: q.CPUMilli}
}

// core is q in the core's terms: a zero field is core.Unlimited.
func (q FactoryQuota) core() core.Quota {
	u := func(v int64) uint64 {
		if v <= 0 {
			return core.Unlimited
		}
		return uint64(v)
	}
	// Caps unlimited: the capabilities its containers' spaces hold
	// (hostcore.go) are bounded by nothing of a factory record's.
	return core.Quota{MemoryBytes: u(q.MemoryBytes), Tasks: u(q.Pids), CPUMilli: u(q.CPUMilli), DiskBytes: u(q.DiskBytes),
		Caps: core.Unlimited}
}

// factoryRoot is the root of the core's factory tree: the host, which
// bounds memory, tasks, CPU, disk and capabilities only by what it has.
// Every factory and every reservation is one capability in the root
// space.
func factoryRoot() core.Quota {
	return core.Quota{MemoryBytes: core.Unlimited, Tasks: core.Unlimited, CPUMilli: core.Unlimited,
		DiskBytes: core.Unlimited, Caps: core.Unlimited}
}

// groupPrefix starts the name of a factory's control group, "f-NAME-ID":
// container groups are named by their 64-hex ids, so the two never
// collide.
const groupPrefix = "f-"

// groupName is f's control group's own name: by name for people reading
// /sys/fs/cgroup, by id for uniqueness across state roots.
func (f *Factory) groupName() string { return groupPrefix + f.Name + "-" + f.ID }

// factoryTree is the factory records loaded into a core: the arithmetic of
// what each factory has given out is the core's, and so is the answer to
// what was made from a factory (see revoke). In the core's root space,
// each factory is a capability named "factory NAME", made from its
// parent's; each container made from a factory is a sub-factory of it
// named "container ID", holding its writable layer's disk (none with
// --read-only); each volume of a factory one named "volume NAME",
// holding the volume's size.
type factoryTree struct {
	k       *core.Core
	space   core.Space
	handles map[string]core.Handle
	byName  map[string]*Factory
	// reserved is what each factory has reserved of its disk for its
	// volumes and containers, by what holds it ("volume data",
	// "container 1a2b3c4d5e6f").
	reserved map[string]map[string]int64
}

// diskCharge is one container or volume made from a factory, and what it
// holds of the factory's disk.
type diskCharge struct {
	factory string
	kind    string // "container" or "volume"
	id      string // the container's id, the volume's name
	bytes   int64
}

// holder names c for people: "volume data", "container 1a2b3c4d5e6f".
func (c diskCharge) holder() string {
	if c.kind == "container" {
		return c.kind + " " + ShortID(c.id)
	}
	return c.kind + " " + c.id
}

// newFactoryTree loads fs into a fresh core, parents first, and charges
// each reservation to its factory. Records that name a missing parent or
// do not fit their parent (a tree edited by hand) are refused, naming the
// factory.
func newFactoryTree(fs []*Factory, charges []diskCharge) (*factoryTree, error) {
	k, err := core.New(factoryRoot())
	if err != nil {
		return nil, err
	}
	rs, rh := k.Root()
	t := &factoryTree{k: k, space: rs, handles: map[string]core.Handle{"": rh}, byName: map[string]*Factory{},
		reserved: map[string]map[string]int64{}}
	for _, f := range fs {
		if _, ok := t.byName[f.Name]; ok || f.Name == "" {
			return nil, fmt.Errorf("factory %q: corrupt records: the name is empty or taken twice", f.Name)
		}
		t.byName[f.Name] = f
	}
	for _, f := range fs {
		if err := t.load(f, nil); err != nil {
			return nil, err
		}
	}
	for _, c := range charges {
		if err := t.reserve(c); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// load puts f (its ancestors first) into the core. seen detects a cycle.
func (t *factoryTree) load(f *Factory, seen []string) error {
	if _, ok := t.handles[f.Name]; ok {
		return nil
	}
	if len(seen) > len(t.byName) || containsName(seen, f.Name) {
		return fmt.Errorf("factory %s: corrupt records: its parents form a cycle (%s)", f.Name, strings.Join(seen, " > "))
	}
	if f.Parent != "" {
		p, ok := t.byName[f.Parent]
		if !ok {
			return fmt.Errorf("factory %s: corrupt records: parent %s: %w", f.Name, f.Parent, ErrNoSuchFactory)
		}
		if err := t.load(p, append(seen, f.Name)); err != nil {
			return err
		}
	}
	h, err := t.k.NewFactory(t.space, t.handles[f.Parent], f.Quota.core(), t.space, "factory "+f.Name)
	if err != nil {
		return fmt.Errorf("factory %s: corrupt records: does not fit in its parent: %w", f.Name, err)
	}
	t.handles[f.Name] = h
	return nil
}

func containsName(names []string, n string) bool {
	for _, x := range names {
		if x == n {
			return true
		}
	}
	return false
}

// reserve records c in the core as a sub-factory of c.factory with c.bytes
// of disk (and room for the capabilities of a container's space, see
// hostcore.go): the core refuses it if the factory has too little left.
func (t *factoryTree) reserve(c diskCharge) error {
	h, ok := t.handles[c.factory]
	if !ok || c.factory == "" {
		return fmt.Errorf("factory %s: %w", c.factory, ErrNoSuchFactory)
	}
	if _, err := t.k.NewFactory(t.space, h, core.Quota{DiskBytes: uint64(c.bytes), Caps: core.Unlimited}, t.space, c.kind+" "+c.id); err != nil {
		if errors.Is(err, core.ErrExists) {
			return fmt.Errorf("factory %s: corrupt records: %s is made from two factories", c.factory, c.holder())
		}
		_, rem, _ := t.k.FactoryQuota(t.space, h)
		return fmt.Errorf("factory %s: disk quota exhausted: %s needs %s, %s of %s left: %w", c.factory, c.holder(),
			bytesText(c.bytes), bytesText(int64(rem.DiskBytes)), bytesText(t.byName[c.factory].Quota.DiskBytes), quotaCause(err))
	}
	if c.bytes > 0 {
		if t.reserved[c.factory] == nil {
			t.reserved[c.factory] = map[string]int64{}
		}
		t.reserved[c.factory][c.holder()] += c.bytes
	}
	return nil
}

// withdrawal is what removing a factory takes with it.
type withdrawal struct {
	factories  []string // the factory and every sub-factory, parents first
	containers []string // ids
	volumes    []string
}

// revoke deletes factory name's capability from the core, and with it,
// recursively, everything derived from it, and returns what went: the
// core's derivation tree, not a walk of the records, says what was made
// from the factory. The tree is not usable for name afterwards.
func (t *factoryTree) revoke(name string) (withdrawal, error) {
	var w withdrawal
	h, ok := t.handles[name]
	if !ok || name == "" {
		return w, fmt.Errorf("factory %s: %w", name, ErrNoSuchFactory)
	}
	before, err := t.k.Caps(t.space)
	if err != nil {
		return w, err
	}
	if err := t.k.Delete(t.space, h); err != nil {
		return w, err
	}
	after, err := t.k.Caps(t.space)
	if err != nil {
		return w, err
	}
	live := map[string]bool{}
	for _, c := range after {
		live[c.Name] = true
	}
	for _, c := range before { // in handle order: parents first
		kind, id, _ := strings.Cut(c.Name, " ")
		if live[c.Name] || id == "" {
			continue
		}
		switch kind {
		case "factory":
			w.factories = append(w.factories, id)
			delete(t.handles, id)
		case "container":
			w.containers = append(w.containers, id)
		case "volume":
			w.volumes = append(w.volumes, id)
		}
	}
	return w, nil
}

// forget drops the records of factories removed after revoke.
func (t *factoryTree) forget(names []string) {
	for _, n := range names {
		delete(t.byName, n)
		delete(t.reserved, n)
	}
}

// bytesText writes n for people: "1 GiB", "1.5 GiB", "512 MiB", "100 B".
func bytesText(n int64) string {
	for _, u := range []struct {
		shift uint
		name  string
	}{{40, "TiB"}, {30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if n >= 1<<u.shift {
			if n%(1<<u.shift) == 0 {
				return fmt.Sprintf("%d %s", n>>u.shift, u.name)
			}
			return fmt.Sprintf("%.1f %s", float64(n)/float64(int64(1)<<u.shift), u.name)
		}
	}
	return fmt.Sprintf("%d B", n)
}

// add checks that a new factory o fits: a fresh name, an existing parent
// that is not being removed, a quota within what the parent has left.
// An unset field under a parent that sets it is refused naming the flag.
func (t *factoryTree) add(o FactoryOptions) error {
	op := "factory create " + o.Name
	if err := checkFactoryName(o.Name); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := o.Quota.Check(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if _, ok := t.byName[o.Name]; ok {
		return fmt.Errorf("%s: a factory of that name exists", op)
	}
	if o.Parent != "" {
		p, ok := t.byName[o.Parent]
		if !ok {
			return fmt.Errorf("%s: --parent %s: %w", op, o.Parent, ErrNoSuchFactory)
		}
		if p.Removing {
			return fmt.Errorf("%s: --parent %s: is being removed", op, o.Parent)
		}
		for _, r := range []struct {
			flag        string
			want, limit int64
		}{{"--memory", o.Quota.MemoryBytes, p.Quota.MemoryBytes}, {"--pids", o.Quota.Pids, p.Quota.Pids},
			{"--cpus", o.Quota.CPUMilli, p.Quota.CPUMilli}, {"--disk", o.Quota.DiskBytes, p.Quota.DiskBytes}} {
			if r.want == 0 && r.limit > 0 {
				return fmt.Errorf("%s: %s is required: parent %s limits it, and a sub-factory takes a part of its parent's quota", op, r.flag, o.Parent)
			}
		}
	}
	h, err := t.k.NewFactory(t.space, t.handles[o.Parent], o.Quota.core(), t.space, "factory "+o.Name)
	if err != nil {
		parent := "the host"
		if o.Parent != "" {
			parent = "parent " + o.Parent
		}
		return fmt.Errorf("%s: does not fit in what %s has left: %w", op, parent, quotaCause(err))
	}
	t.handles[o.Name] = h
	return nil
}

// checkFactoryName applies the container name rule.
func checkFactoryName(name string) error {
	if ValidName(name) {
		return nil
	}
	return fmt.Errorf("invalid factory name %q: must match [a-zA-Z0-9][a-zA-Z0-9_.-]* and be at most %d characters", name, MaxNameLen)
}

// group is the control group of factory name, relative to Oak's: its
// ancestors' groups, then its own.
func (t *factoryTree) group(name string) string {
	var parts []string
	for f := t.byName[name]; f != nil; f = t.byName[f.Parent] {
		parts = append(parts, f.groupName())
		if f.Parent == "" {
			break
		}
	}
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return path.Join(parts...)
}

// chain is name's ancestors from the top, then name.
func (t *factoryTree) chain(name string) []*Factory {
	var fs []*Factory
	for f := t.byName[name]; f != nil; f = t.byName[f.Parent] {
		fs = append([]*Factory{f}, fs...)
		if f.Parent == "" {
			break
		}
	}
	return fs
}

// given returns what factory name has given its sub-factories and
// reservations, per resource, in the core's terms.
func (t *factoryTree) given(name string) core.Quota {
	u, _ := t.k.FactoryUsage(t.space, t.handles[name])
	return u
}

func (e *Engine) factoriesDir() string { return filepath.Join(e.Root, "factories") }

func (e *Engine) factoryPath(name string) string {
	return filepath.Join(e.factoriesDir(), name+".json")
}

// saveFactory writes f's record atomically.
func (e *Engine) saveFactory(f *Factory) error {
	if err := os.MkdirAll(e.factoriesDir(), 0o700); err != nil {
		return fmt.Errorf("factory %s: %w", f.Name, unwrapPath(err))
	}
	if err := writeFileAtomic(e.factoryPath(f.Name), mustJSON(f)); err != nil {
		return err
	}
	e.advance() // hostcore_linux.go
	return nil
}

// factories loads every factory record, by name. A record that cannot be
// read, or that names another factory than its file, is an error naming
// it: the tree cannot be checked without it.
func (e *Engine) factories() ([]*Factory, error) {
	ents, err := os.ReadDir(e.factoriesDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("factories %s: %w", e.factoriesDir(), unwrapPath(err))
	}
	var fs []*Factory
	for _, ent := range ents {
		name, ok := strings.CutSuffix(ent.Name(), ".json")
		if !ok || strings.HasPrefix(ent.Name(), ".") {
			continue // a temporary file of an interrupted write
		}
		var f Factory
		if err := readJSON(filepath.Join(e.factoriesDir(), ent.Name()), &f); err != nil {
			return nil, fmt.Errorf("factory %s: corrupt record: %w", name, unwrapPath(err))
		}
		if f.Name != name || f.Parent == f.Name || !validFactoryID(f.ID) {
			return nil, fmt.Errorf("factory %s: corrupt record: names factory %q (id %q) with parent %q", name, f.Name, f.ID, f.Parent)
		}
		fs = append(fs, &f)
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].Name < fs[j].Name })
	return fs, nil
}

// ParseFactoryQuota reads oak factory create's flags: --memory, --pids,
// --cpus and --disk as oak run reads them (a size, a number, a decimal
// number of at most ncpu cores, a size), each "" for no limit of the
// factory's own. Memory, pids and CPU have run's lower bounds: a factory
// must hold at least one container.
func ParseFactoryQuota(memory, pids, cpus, disk string, ncpu int) (FactoryQuota, error) {
	var q FactoryQuota
	var err error
	if memory != "" {
		if q.MemoryBytes, err = ParseMemory(memory); err != nil {
			return q, err
		}
	}
	if pids != "" {
		n, perr := strconv.ParseInt(strings.TrimSpace(pids), 10, 64)
		if perr != nil {
			return q, fmt.Errorf("invalid --pids %q: not a whole number", pids)
		}
		if q.Pids, err = ParsePids(n); err != nil {
			return q, err
		}
	}
	if cpus != "" {
		if q.CPUMilli, err = ParseCPUs(cpus, ncpu); err != nil {
			return q, err
		}
	}
	if disk != "" && !unlimitedArg(disk) {
		if q.DiskBytes, err = ParseBytes("--disk", disk); err != nil {
			return q, err
		}
	}
	return q, q.Check()
}

// causeError is an error of the core said without the core's handles and
// spaces, which mean nothing to a person: "quota exceeded: 600 memory
// bytes requested, 512 remaining". It unwraps to the whole error.
type causeError struct {
	msg string
	err error
}

func (e *causeError) Error() string { return e.msg }
func (e *causeError) Unwrap() error { return e.err }

func quotaCause(err error) error {
	msg := err.Error()
	if i := strings.LastIndex(msg, core.ErrQuotaExceeded.Error()); i >= 0 {
		msg = msg[i:]
	}
	return &causeError{msg: msg, err: err}
}

// newFactoryID returns a fresh factory id: 12 hex digits.
func newFactoryID() string { return newID()[:12] }

func validFactoryID(id string) bool {
	if len(id) != 12 {
		return false
	}
	for _, r := range id {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return false
		}
	}
	return true
}

package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The records' generation, and the daemon's host core kept in step with
// it.
//
// Records are written by many processes: the daemon, the CLI acting
// directly, each container's supervisor (its removal with --rm, a
// settle), function runs. Every write of what the host core is built
// from advances the generation once the write is done: one atomic
// addition to a 64-bit word in ROOT/generation, mapped shared into
// every process that writes or reads it. It takes no lock (a plain
// create takes none of the root's, see record_linux.go). The word's low
// half counts every such write; its high half those other than a
// container's record made or removed (writeNewRecord, removeRecord): a
// factory's record written or removed, a grant or a spawn right marked
// revoked, a volume made or removed. One word, so that one atomic read
// sees both counts of the same moment. A status change (running,
// exited, restarting), which the core does not depend on, advances
// neither.
//
// The daemon keeps the core it built (HoldCore) and uses it again while
// the generation is the one it holds. If only containers were made or
// removed since (the high half has not moved), it brings the core up
// to date in place: it lists the containers' directories and adds those
// it lacks (reading their records) and removes those that are gone;
// otherwise it builds the core again. Either way it reads the generation
// first and the records after, so the core holds at least what the
// generation counts; a write that lands meanwhile advances the
// generation past it, and the next use looks again. An operation that
// changes the core in place (a factory made or removed, a container
// admitted, a grant or a spawn right revoked) and then writes the same
// change to the records says how many writes of each kind it made
// (keepCore), and the generation the core holds advances by those: if no
// other process wrote meanwhile, that is the records' and the core is
// current; otherwise the next use brings it up to date in place or
// builds it again, as for any change. An operation that fails part-way
// says nothing, and the next use builds the core again. Without a daemon
// every operation builds its own from the records it has just read,
// with the same code, and keeps nothing.

// generationFile holds the records' generation, one 64-bit word.
const generationFile = "generation"

// otherWrite is what a write other than a container's record made or
// removed adds to the generation: one to each half. (After 2^32 writes
// the low half carries into the high: one needless rebuild.)
const otherWrite = 1 + 1<<32

// hostState is an engine's host core: kept if the engine holds it (the
// daemon's), and the generation word.
type hostState struct {
	genOnce sync.Once
	genWord *uint64 // in a shared mapping of ROOT/generation; nil if it could not be made
	genErr  error

	mu    sync.Mutex
	held  bool
	h     *hostCore // the kept core; nil if none
	at    uint64    // the generation h holds
	clean bool      // h is what the records at generation at make

	builds    atomic.Uint64
	syncs     atomic.Uint64
	buildTime atomic.Int64 // ns, the last build's
}

// generationWord maps ROOT/generation (making it if needed) once per
// engine.
func (e *Engine) generationWord() (*uint64, error) {
	s := &e.host
	s.genOnce.Do(func() {
		path := filepath.Join(e.Root, generationFile)
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
		if err != nil {
			s.genErr = fmt.Errorf("records' generation: %w", unwrapPath(err))
			return
		}
		defer f.Close()
		// Truncating to its own size changes nothing: two processes
		// making it at once both see 8 bytes, the count kept.
		fi, err := f.Stat()
		if err == nil && fi.Size() < 8 {
			err = f.Truncate(8)
		}
		if err != nil {
			s.genErr = fmt.Errorf("records' generation %s: %w", path, err)
			return
		}
		b, err := unix.Mmap(int(f.Fd()), 0, 8, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			s.genErr = fmt.Errorf("records' generation %s: map: %w", path, err)
			return
		}
		s.genWord = (*uint64)(unsafe.Pointer(&b[0])) // page-aligned
	})
	return s.genWord, s.genErr
}

// advance counts one write of the records the host core is built from,
// other than a container's record made or removed. Called after the
// write. A root whose generation cannot be kept (its file cannot be
// made) has a daemon build its core for every use.
func (e *Engine) advance() {
	if w, err := e.generationWord(); err == nil {
		atomic.AddUint64(w, otherWrite)
	}
}

// advanceContainers counts a container's record made or removed.
func (e *Engine) advanceContainers() {
	if w, err := e.generationWord(); err == nil {
		atomic.AddUint64(w, 1)
	}
}

// generation is the records' generation now.
func (e *Engine) generation() (uint64, error) {
	w, err := e.generationWord()
	if err != nil {
		return 0, err
	}
	return atomic.LoadUint64(w), nil
}

// HoldCore makes e keep its host core between operations, as the daemon
// does, and builds it from the records now.
func (e *Engine) HoldCore() error {
	e.host.mu.Lock()
	e.host.held = true
	e.host.mu.Unlock()
	return e.refreshCore()
}

// refreshCore brings the kept core up to the records' generation, if it
// is not there.
func (e *Engine) refreshCore() error {
	unlock, err := e.lock()
	if err != nil {
		return err
	}
	defer unlock()
	_, err = e.refreshLocked()
	return err
}

// refreshLocked is refreshCore for a caller that holds the root's lock;
// it returns the core.
func (e *Engine) refreshLocked() (*hostCore, error) {
	h, err := e.hostCore(nil)
	if err != nil {
		return nil, fmt.Errorf("host core: %w", err)
	}
	e.keepCore(0, 0)
	return h, nil
}

// hostCore returns the host core for an operation that holds the state
// root's lock, cs the containers as the operation's reconcile returned
// them. An engine that holds its core returns it, brought up to date
// first if the records changed (and then ignores cs: it reads the
// records after the generation). Until the operation calls keepCore,
// the kept core counts as changed. Any other builds one from cs.
func (e *Engine) hostCore(cs []*Container) (*hostCore, error) {
	s := &e.host
	s.mu.Lock()
	held, h, clean, at := s.held, s.h, s.clean, s.at
	s.mu.Unlock()
	if !held {
		return e.timedBuild(cs, false)
	}
	now, gerr := e.generation()
	usable := gerr == nil && h != nil && clean
	if !usable || at != now {
		// Only containers made or removed (the high halves equal): in
		// place.
		if usable && now>>32 == at>>32 && e.syncContainers(h) == nil {
			s.syncs.Add(1)
		} else {
			all, err := e.all()
			if err != nil {
				return nil, err
			}
			if h, err = e.timedBuild(all, true); err != nil {
				return nil, err
			}
		}
	}
	s.mu.Lock()
	s.h, s.at, s.clean = h, now, false
	if gerr != nil {
		s.h = nil
	}
	s.mu.Unlock()
	return h, nil
}

// lockedCore is hostCore for an operation that holds the state root's
// lock and has not read the records itself: they are read only if e
// does not hold its core.
func (e *Engine) lockedCore() (*hostCore, error) {
	e.host.mu.Lock()
	held := e.host.held
	e.host.mu.Unlock()
	var cs []*Container
	if !held {
		var err error
		if cs, err = e.reconcile(); err != nil {
			return nil, err
		}
	}
	return e.hostCore(cs)
}

// timedBuild builds a host core from cs, counting the build.
func (e *Engine) timedBuild(cs []*Container, full bool) (*hostCore, error) {
	start := time.Now()
	h, err := e.buildHostCore(cs, full)
	if err != nil {
		return nil, err
	}
	e.host.builds.Add(1)
	e.host.buildTime.Store(int64(time.Since(start)))
	return h, nil
}

// syncContainers brings h up to date with the containers' records when
// only containers were made or removed since it was current: it adds
// those it lacks, parents first, and removes those that are gone,
// sub-containers first. An error leaves h half done: the caller builds
// the core again.
func (e *Engine) syncContainers(h *hostCore) error {
	ents, err := os.ReadDir(filepath.Join(e.Root, "containers"))
	if err != nil {
		return err
	}
	live := map[string]bool{}
	var nodes []hostNode
	for _, ent := range ents {
		id := ent.Name()
		if strings.HasPrefix(id, ".") { // being made or removed: not a record (yet, any more)
			continue
		}
		live[id] = true
		if _, ok := h.ctrs[id]; ok {
			continue
		}
		c, err := e.loadCurrent(id)
		if err != nil || c == nil || c.Status == StatusBroken {
			continue // gone meanwhile, or unreadable: holds nothing, as in a build
		}
		spec, err := e.readSpec(id)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		nodes = append(nodes, e.hostNode(c, spec))
	}
	var gone []string
	for i := len(h.order) - 1; i >= 0; i-- { // sub-containers before their parents
		if !live[h.order[i]] {
			gone = append(gone, h.order[i])
		}
	}
	for _, id := range gone {
		if err := h.remove(id); err != nil {
			return err
		}
	}
	for _, n := range parentsFirst(nodes) {
		if n.Parent != "" && h.ctrs[n.Parent] == nil && slices.ContainsFunc(nodes, func(o hostNode) bool { return o.ID == n.Parent }) {
			return fmt.Errorf("container %s: parent %s not added first", ShortID(n.ID), ShortID(n.Parent))
		}
		if err := h.add(n); err != nil {
			return err
		}
	}
	return nil
}

// keepCore says that the operation holding the state root's lock has
// written to the records what it did to the core hostCore gave it:
// containers records made or removed, and others writes of other
// records. The kept core is then current again, unless other processes
// wrote meanwhile: if they made or removed containers only, the next
// use brings it up to date in place, and otherwise builds it again.
func (e *Engine) keepCore(containers, others uint64) {
	s := &e.host
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.held || s.h == nil {
		return
	}
	now, err := e.generation()
	if err != nil {
		return
	}
	if uint32(now)-uint32(s.at) < uint32(containers+others) {
		return // fewer writes than it says: not its core's
	}
	// The generation of the records but for the writes of others
	// meanwhile, if any: the next use compares it with the records' and
	// brings the core up to date in place or builds it again.
	s.at += containers + others*otherWrite
	s.clean = true
}

// buildHostCore builds the host core from the records: the factories,
// their volumes, and containers cs. A full core has every container; an
// operation's own (not full) leaves out those of no factory, which no
// operation on a factory or a grant tree looks at (a sub-container and
// its parent are always of a factory).
func (e *Engine) buildHostCore(cs []*Container, full bool) (*hostCore, error) {
	fs, err := e.factories()
	if err != nil {
		return nil, err
	}
	vols, err := e.diskCharges(fs, nil)
	if err != nil {
		return nil, err
	}
	nodes := make([]hostNode, 0, len(cs))
	for _, c := range cs {
		if c.Status == StatusBroken || c.Factory == "" && !full {
			continue
		}
		spec, err := e.readSpec(c.ID)
		if errors.Is(err, os.ErrNotExist) {
			// Removed since it was listed: a removal takes no lock of the
			// root (record_linux.go).
			continue
		}
		if err != nil {
			if c.Factory == "" {
				continue // holds nothing of a factory's
			}
			return nil, fmt.Errorf("factory %s: container %s: %w", c.Factory, ShortID(c.ID), err)
		}
		nodes = append(nodes, e.hostNode(c, spec))
	}
	return newHostCore(fs, vols, nodes)
}

// hostNode is container c of spec as the host core takes it.
func (e *Engine) hostNode(c *Container, spec *Spec) hostNode {
	return hostNode{ID: c.ID, Parent: c.Parent, Factory: c.Factory, Image: spec.Image,
		Spawn: c.Spawn && !e.spawnRevokedOf(c), Egress: e.heldEgress(c.ID, spec), Disk: writableCharge(spec)}
}

// CoreInfo describes the host core: the daemon's if it holds one
// (brought up to date first if the records changed), else one built now
// from the records, as an operation would.
func (e *Engine) CoreInfo() (*CoreInfo, error) {
	s := &e.host
	s.mu.Lock()
	held := s.held
	s.mu.Unlock()
	if held {
		// Under the root's lock: what it holds is changed only by
		// operations that hold it.
		unlock, err := e.lock()
		if err != nil {
			return nil, err
		}
		defer unlock()
		h, err := e.refreshLocked()
		if err != nil {
			return nil, err
		}
		now, _ := e.generation()
		ci := &CoreInfo{Held: true, Builds: s.builds.Load(), Syncs: s.syncs.Load(),
			BuildSeconds: time.Duration(s.buildTime.Load()).Seconds(), RecordsGeneration: uint64(uint32(now))}
		s.mu.Lock()
		ci.Generation = uint64(uint32(s.at))
		s.mu.Unlock()
		h.size(ci)
		return ci, nil
	}
	now, _ := e.generation()
	unlock, err := e.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	cs, err := e.reconcile()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	h, err := e.buildHostCore(cs, true)
	if err != nil {
		return nil, err
	}
	g := uint64(uint32(now))
	ci := &CoreInfo{Generation: g, RecordsGeneration: g, Builds: 1, BuildSeconds: time.Since(start).Seconds()}
	h.size(ci)
	return ci, nil
}

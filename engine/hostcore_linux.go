package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
// from — a container's record made (writeNewRecord) or removed
// (removeRecord), a factory's record written or removed, a grant or a
// spawn right marked revoked, a volume made or removed — advances the
// generation once its write is done: one atomic increment of a 64-bit
// word in ROOT/generation, mapped shared into every process that writes
// or reads it. It takes no lock (a plain create takes none of the
// root's, see record_linux.go), and a status change (running, exited,
// restarting), which the core does not depend on, does not advance it.
//
// A core is built after reading the generation, so it holds at least
// what that generation counts; a write that lands while it is built
// advances the generation past it, and the next use builds again. The
// daemon keeps the core it built (HoldCore) and uses it again while the
// generation is the one it holds. An operation that changes the core in
// place (a factory made, a container admitted, a grant revoked) and then
// writes the same change to the records says how many advances its
// writes made (keepCore); if the generation moved by exactly that much,
// no other process wrote meanwhile and the core is current; otherwise,
// or if the operation failed part-way, the next use builds it again.
// Without a daemon every operation builds its own: the same code, with
// nothing kept.

// generationFile holds the records' generation.
const generationFile = "generation"

// hostState is an engine's host core: kept if the engine holds it (the
// daemon's), and its generation word.
type hostState struct {
	genOnce sync.Once
	genWord *uint64 // in a shared mapping of ROOT/generation; nil if it could not be made
	genErr  error

	mu    sync.Mutex
	held  bool
	h     *hostCore // the kept core; nil if none
	at    uint64    // the generation h holds
	clean bool      // h is what the records at generation at make
	info  CoreInfo  // h's size when last kept or built

	builds    atomic.Uint64
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
		// making it at once both see 8 bytes, the counts kept.
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

// advance counts one write of the records the host core is built from.
// Called after the write. A root whose generation cannot be kept (its
// file cannot be made) has a daemon build its core for every use.
func (e *Engine) advance() {
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
	s := &e.host
	now, gerr := e.generation()
	s.mu.Lock()
	current := s.h != nil && s.clean && gerr == nil && s.at == now
	s.mu.Unlock()
	if current {
		return nil
	}
	unlock, err := e.lock()
	if err != nil {
		return err
	}
	defer unlock()
	cs, err := e.reconcile()
	if err != nil {
		return err
	}
	if _, err := e.hostCore(cs); err != nil {
		return fmt.Errorf("host core: %w", err)
	}
	e.keepCore(0)
	return nil
}

// hostCore returns the host core for an operation that holds the state
// root's lock, cs the containers as reconcile returns them: the kept one
// if it is current, else one built from the records (and kept, if e
// holds its core). Until the operation calls keepCore, the kept core
// counts as changed: the next use builds it again.
func (e *Engine) hostCore(cs []*Container) (*hostCore, error) {
	s := &e.host
	now, gerr := e.generation()
	s.mu.Lock()
	if s.held && s.h != nil && s.clean && gerr == nil && s.at == now {
		s.clean = false
		h := s.h
		s.mu.Unlock()
		return h, nil
	}
	held := s.held
	s.mu.Unlock()
	start := time.Now()
	h, err := e.buildHostCore(cs, held)
	if err != nil {
		return nil, err
	}
	s.builds.Add(1)
	s.buildTime.Store(int64(time.Since(start)))
	if held {
		s.mu.Lock()
		s.h, s.at, s.clean = h, now, false
		if gerr != nil {
			s.h = nil
		}
		s.mu.Unlock()
	}
	return h, nil
}

// keepCore says that the operation holding the state root's lock has
// written to the records what it did to the core hostCore gave it, in n
// advances of the generation: if the generation moved by exactly n since
// the core was current, the kept core is current again.
func (e *Engine) keepCore(n uint64) {
	s := &e.host
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.held || s.h == nil {
		return
	}
	if now, err := e.generation(); err == nil && now == s.at+n {
		s.at, s.clean = now, true
		s.info = CoreInfo{}
		s.h.size(&s.info)
	}
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
		if err := e.refreshCore(); err != nil {
			return nil, err
		}
		now, _ := e.generation()
		s.mu.Lock()
		ci := s.info
		ci.Held, ci.Generation, ci.RecordsGeneration = true, s.at, now
		s.mu.Unlock()
		ci.Builds, ci.BuildSeconds = s.builds.Load(), time.Duration(s.buildTime.Load()).Seconds()
		return &ci, nil
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
	ci := &CoreInfo{Generation: now, RecordsGeneration: now, Builds: 1, BuildSeconds: time.Since(start).Seconds()}
	h.size(ci)
	return ci, nil
}

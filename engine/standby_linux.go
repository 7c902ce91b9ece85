package engine

import (
	"errors"
	"fmt"
	"os"

	"github.com/oak-engine/oak/internal/trace"
	"github.com/oak-engine/oak/sandbox"
)

// A standby is a supervisor made before its container: a process of its
// own (oak _standby, started by the daemon in a session of its own) that
// has reserved a container id and its id block (the flocked slot, see
// reserve_linux.go) and, in the daemon's pool, prepared an empty sandbox
// for them (sandbox.Prepare: namespaces, id maps, groups). A foreground
// run through the daemon is handed to one; it then creates the record,
// starts the command in the prepared sandbox and supervises it exactly as
// a foreground oak run supervises its container in-process. It serves one
// container and ends with it; the sandbox is never reused.
//
// An idle standby holds no record: ps and reconcile do not see it. What
// it holds goes with it: its sandbox's init dies with it (Pdeathsig), the
// kernel frees its id block, and the next create that takes the block
// removes the groups a killed one left (tryBlock).

// Standby is a reserved id and id block, and a sandbox prepared for them
// if Prepared says so, waiting for the run it will serve.
type Standby struct {
	e     *Engine
	id    string
	slot  int
	lease *os.File
	pr    *sandbox.Prepared
	// mnt holds the prepared sandbox's mount namespace (its init's, which
	// the container keeps), so that the namespace outlives the init's
	// exit: tearing down its mounts (an RCU grace period, the overlay and
	// tmpfs superblocks) then happens at Release, after the status has
	// been reported, instead of in the exit the caller waits for.
	mnt *os.File
}

// NewStandby reserves a container id and an id block and, if prepare is
// set, prepares a sandbox for them and waits until it sits in its groups.
func (e *Engine) NewStandby(prepare bool) (*Standby, error) {
	sandbox.PrimeMoves()
	unlock, err := e.lock()
	if err != nil {
		return nil, err
	}
	err = e.openReservations()
	id := newID()
	var slot int
	var lease *os.File
	if err == nil {
		slot, lease, err = e.acquireSlot(id, -1)
	}
	unlock()
	if err != nil {
		return nil, err
	}
	s := &Standby{e: e, id: id, slot: slot, lease: lease}
	if prepare {
		pr, err := sandbox.Prepare(id, slotIDs(slot))
		if err == nil {
			if err = pr.Placed(); err != nil {
				pr.Discard()
			}
		}
		if err != nil {
			lease.Close()
			return nil, err
		}
		s.pr = pr
		// Best effort: without it, the teardown is the init's.
		s.mnt, _ = os.Open(fmt.Sprintf("/proc/%d/ns/mnt", pr.Pid()))
	}
	return s, nil
}

// Release lets go of what the standby held past its container's end (its
// mount namespace): call it once the run's status has been reported. A
// run with volumes has released it before it returns.
func (s *Standby) Release() {
	if s.mnt != nil {
		s.mnt.Close()
		s.mnt = nil
	}
}

// ID is the id the standby's container will have.
func (s *Standby) ID() string { return s.id }

// Prepared says whether the standby holds a prepared sandbox.
func (s *Standby) Prepared() bool { return s.pr != nil }

// Discard ends a standby that will serve no run: its sandbox is destroyed
// (init killed, groups removed) and its id block freed.
func (s *Standby) Discard() {
	s.Release()
	if s.pr != nil {
		s.pr.Discard()
		s.pr = nil
	}
	if s.lease != nil {
		s.lease.Close()
		s.lease = nil
	}
}

// Run runs opts in the foreground as Engine.Run does, under the
// standby's id and id block, in its prepared sandbox when the request
// fits it (one made from a factory, a tenant's included, needs its
// sandbox under the factory's groups, and gets a new one). Signals from
// sigs go to the container. launched, if not nil, is told once whether
// the command started (nil: it is executing), unless Run fails before it
// tries. A Standby serves one Run.
func (s *Standby) Run(opts RunOptions, io Stdio, sigs <-chan os.Signal, launched func(error)) (Exit, error) {
	trace.Mark("engine: run")
	pr := s.pr
	s.pr = nil
	if pr != nil && opts.Factory != "" {
		pr.Discard()
		pr = nil
	}
	if opts.Spawn {
		if pr != nil {
			pr.Discard()
		}
		s.Discard()
		return Exit{}, errors.New("invalid --spawn: only a detached container (run -d) may hold the spawn capability, which its supervisor serves")
	}
	if len(opts.Volumes) > 0 {
		// A volume stays attached as long as a mount namespace holds
		// it: it must be free once the caller has the status (oak
		// volume rm right after oak run), so the namespace goes with
		// the run, before the report.
		defer s.Release()
	}
	res := &reservation{id: s.id, slot: s.slot, lease: s.lease, pooled: pr != nil}
	s.lease = nil
	c, spec, err := s.e.createIn(opts, res)
	if err != nil {
		if pr != nil {
			pr.Discard()
		}
		return Exit{}, err
	}
	trace.Mark("engine: record created")
	if pr != nil && c.CgroupParent == "" {
		c.prepared = pr
	} else if pr != nil {
		pr.Discard()
	}
	ex, err := s.e.supervise(c, spec, io, sigs, launched)
	if c.prepared != nil { // supervise failed before it started it
		c.prepared.Discard()
		c.prepared = nil
	}
	return ex, err
}

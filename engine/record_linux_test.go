package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// readRecords reads every state.json under e's root as it is, failing t
// on any that is not a whole record: a reader takes no lock, so a write
// must never show half of one.
func readRecords(t *testing.T, e *Engine) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(e.Root, "containers"))
	for _, ent := range ents {
		if strings.HasPrefix(ent.Name(), ".") {
			continue
		}
		if _, err := e.load(ent.Name()); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("record %s read while others write it: %v", ShortID(ent.Name()), err)
		}
	}
}

// checkNothingLeft fails t unless e's root holds no record, no name and
// no locked id block: every one was given back.
func checkNothingLeft(t *testing.T, e *Engine) {
	t.Helper()
	for _, dir := range []string{"containers", namesDir} {
		ents, _ := os.ReadDir(filepath.Join(e.Root, dir))
		for _, ent := range ents {
			t.Errorf("%s/%s is left", dir, ent.Name())
		}
	}
	ents, _ := os.ReadDir(filepath.Join(e.Root, slotsDir))
	for _, ent := range ents {
		f, err := os.OpenFile(filepath.Join(e.Root, slotsDir, ent.Name()), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			t.Errorf("id block %s is still held: %v", ent.Name(), err)
		}
		f.Close()
	}
}

// Many run --rm at once, some with one name, some with their own and
// some with none (created without the root's lock), as the engine runs
// them without the sandbox: create, record running, record ended (which
// removes it), while ps reads every record. Nothing is lost: each create
// that got its name ran to the end; no reader saw half a record, and ps
// swept no record being made; at the end no record, name or id block is
// left.
func TestParallelRunRm(t *testing.T) {
	e, opts := reserveEngine(t)
	opts.AutoRemove = true
	const n = 24
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				readRecords(t, e)
				if _, err := e.List(); err != nil {
					t.Errorf("List while containers come and go: %v", err)
				}
				if _, err := e.Get("same"); err != nil && !errors.Is(err, ErrNoSuchContainer) {
					t.Errorf("Get(same) while it comes and goes: %v", err)
				}
			}
		}()
	}
	var ran, refused atomic.Int32
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := opts
			switch i % 3 {
			case 0:
				o.Name = "same"
			case 1:
				o.Name = fmt.Sprintf("own-%d", i)
			}
			c, _, err := e.create(o)
			if err != nil {
				if o.Name == "same" && strings.Contains(err.Error(), "already used") {
					refused.Add(1)
					return
				}
				t.Errorf("create --rm --name %s: %v", o.Name, err)
				return
			}
			defer c.releaseSlot()
			c.Status, c.Pid, c.PidStart = StatusRunning, os.Getpid(), pidStart(os.Getpid())
			if err := e.update(c); err != nil {
				t.Errorf("record running: %v", err)
				return
			}
			if got, err := e.Get(c.Name); err != nil || got.Status != StatusRunning || got.ID != c.ID {
				t.Errorf("Get(%s) after record running = %+v, %v", ShortID(c.ID), got, err)
			}
			c.Status, c.Finished = StatusExited, time.Now().UTC()
			if err := e.finish(c); err != nil {
				t.Errorf("record ended (--rm): %v", err)
				return
			}
			ran.Add(1)
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	if int(ran.Load()+refused.Load()) != n || ran.Load() < 2*n/3+1 {
		t.Errorf("%d of %d runs ran to the end, %d refused the taken name: want every one of another name and at least one of \"same\"",
			ran.Load(), n, refused.Load())
	}
	checkNothingLeft(t, e)
}

// A user's stop recorded while the supervisor writes "running" is never
// lost, whichever writes first: each reads the record under the
// container's lock before it writes.
func TestStopNotLostToSupervisorWrite(t *testing.T) {
	e, opts := reserveEngine(t)
	for round := range 50 {
		c, _, err := e.create(opts)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			sup := *c
			sup.Status, sup.Pid, sup.PidStart = StatusRunning, os.Getpid(), pidStart(os.Getpid())
			if err := e.update(&sup); err != nil {
				t.Errorf("record running: %v", err)
			}
		}()
		go func() {
			defer wg.Done()
			if _, err := e.markStopped(c.ID); err != nil {
				t.Errorf("mark stopped: %v", err)
			}
		}()
		wg.Wait()
		got, err := e.load(c.ID)
		if err != nil || !got.Stopped {
			t.Fatalf("round %d: record after a stop and the supervisor's write at once: %+v, %v; want it stopped", round, got, err)
		}
		dropCreated(e, c)
	}
	checkNothingLeft(t, e)
}

// oak rm -f of a container while its supervisor records the end: the
// record is removed once, never written back by the supervisor after,
// and the name and id block are free.
func TestRemoveWhileSupervisorEnds(t *testing.T) {
	e, opts := reserveEngine(t)
	opts.Name = "ending"
	for round := range 30 {
		c, _, err := e.create(opts)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		c.Status, c.Finished = StatusExited, time.Now().UTC()
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			defer c.releaseSlot()
			if err := e.finish(c); err != nil {
				t.Errorf("record ended: %v", err)
			}
		}()
		var rmErr error
		go func() {
			defer wg.Done()
			// The supervisor (this process) lives: rm waits for the end.
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
				if rmErr = e.Remove("ending", false); rmErr == nil || errors.Is(rmErr, ErrNoSuchContainer) {
					return
				}
			}
		}()
		wg.Wait()
		if rmErr != nil {
			t.Fatalf("round %d: rm while the supervisor records the end: %v", round, rmErr)
		}
		if _, err := os.Lstat(e.dir(c.ID)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("round %d: the record is back after rm: %v", round, err)
		}
		if err := e.update(c); !errors.Is(err, ErrNoSuchContainer) {
			t.Fatalf("round %d: a supervisor's write after rm: %v, want the container gone", round, err)
		}
	}
	checkNothingLeft(t, e)
}

// Removal by a name or a full id reads that container's record only: a
// record whose supervisor died, which any reading of every record would
// settle, is left as it is.
func TestRemoveReadsOneRecord(t *testing.T) {
	e, opts := reserveEngine(t)
	opts.Name = "dead"
	dead, _, err := e.create(opts)
	if err != nil {
		t.Fatal(err)
	}
	dead.Status, dead.SupStart = StatusRunning, pidStart(os.Getpid())+1 // a supervisor that died
	if err := e.save(dead); err != nil {
		t.Fatal(err)
	}
	dead.releaseSlot()
	for _, ref := range []string{"by-name", "id", "prefix"} {
		opts.Name = ref
		c, _, err := e.create(opts)
		if err != nil {
			t.Fatal(err)
		}
		c.Status = StatusExited
		if err := e.save(c); err != nil {
			t.Fatal(err)
		}
		c.releaseSlot()
		arg := map[string]string{"by-name": "by-name", "id": c.ID, "prefix": c.ID[:20]}[ref]
		if err := e.Remove(arg, false); err != nil {
			t.Fatalf("rm %s: %v", ref, err)
		}
		if got, err := e.load(dead.ID); err != nil || got.Status != StatusRunning {
			t.Fatalf("rm by %s read another container's record (it was settled): %+v, %v", ref, got, err)
		}
	}
	// Get of the dead one itself settles it.
	got, err := e.Get("dead")
	if err != nil || got.Status != StatusExited {
		t.Errorf("Get of a container whose supervisor died = %+v, %v; want it exited", got, err)
	}
	if _, err := e.Get("by-name"); !errors.Is(err, ErrNoSuchContainer) {
		t.Errorf("Get of a removed name: %v", err)
	}
}

// A writer killed between writing its temporary file and renaming it
// leaves the file beside the record: the record reads as the last whole
// one, and removal takes the leftover with it. A remover killed after it
// renamed the directory away leaves .rm-ID, and a create killed before
// it renamed its record into place .new-ID: the next reading of every
// record deletes them, unless their remover or creator still holds them.
func TestCrashedWriterLeftovers(t *testing.T) {
	e, opts := reserveEngine(t)
	opts.Name = "torn"
	c, _, err := e.create(opts)
	if err != nil {
		t.Fatal(err)
	}
	c.releaseSlot()
	c.Status = StatusExited
	if err := e.save(c); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dir(c.ID), ".tmp-123"), []byte(`{"id": "`+c.ID+`", "stat`), 0o600); err != nil {
		t.Fatal(err)
	}
	cs, err := e.List()
	if err != nil || len(cs) != 1 || cs[0].Status != StatusExited || cs[0].Name != "torn" {
		t.Fatalf("List with a torn temporary file beside the record = %+v, %v", cs, err)
	}
	if err := e.Remove("torn", false); err != nil {
		t.Fatalf("rm torn: %v", err)
	}

	held := filepath.Join(e.Root, "containers", removedPrefix+newID())
	left := filepath.Join(e.Root, "containers", removedPrefix+newID())
	making := filepath.Join(e.Root, "containers", newPrefix+newID())
	leftNew := filepath.Join(e.Root, "containers", newPrefix+newID())
	for _, d := range []string{held, left, making, leftNew} {
		if err := os.MkdirAll(filepath.Join(d, "scratch"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "state.json"), []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var locks []*os.File
	for _, d := range []string{held, making} {
		f, err := os.Open(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
			t.Fatal(err)
		}
		locks = append(locks, f)
	}
	if cs, err := e.List(); err != nil || len(cs) != 0 {
		t.Errorf("List with removals left over = %+v, %v; want nothing listed", cs, err)
	}
	if _, err := os.Lstat(left); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a removal whose remover died is not swept: %v", err)
	}
	if _, err := os.Lstat(leftNew); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a create whose creator died is not swept: %v", err)
	}
	for _, d := range []string{held, making} {
		if _, err := os.Lstat(d); err != nil {
			t.Errorf("%s, in progress, was swept: %v", filepath.Base(d), err)
		}
	}
	for _, f := range locks {
		f.Close()
	}
	e.List()
	checkNothingLeft(t, e)
}

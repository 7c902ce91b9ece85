package engine

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// reserveEngine is an engine on a fresh root and a request for it whose
// image is an empty directory: create needs nothing more.
func reserveEngine(t *testing.T) (*Engine, RunOptions) {
	t.Helper()
	e, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return e, RunOptions{Image: t.TempDir(), Args: []string{"true"}}
}

// dropCreated undoes a create as a supervisor whose start failed does.
func dropCreated(e *Engine, c *Container) {
	e.discard(c)
	c.releaseSlot()
}

// Of concurrent creates with one --name exactly one gets it, and the
// name is free again once that container is removed.
func TestCreateNameRace(t *testing.T) {
	e, opts := reserveEngine(t)
	opts.Name = "same"
	const n = 16
	var wg sync.WaitGroup
	won := make(chan *Container, n)
	lost := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, _, err := e.create(opts)
			if err != nil {
				lost <- err
				return
			}
			won <- c
		}()
	}
	wg.Wait()
	close(won)
	close(lost)
	if len(won) != 1 {
		t.Fatalf("%d of %d concurrent creates with --name same succeeded, want 1", len(won), n)
	}
	for err := range lost {
		if !strings.Contains(err.Error(), `invalid --name "same": already used by container`) {
			t.Errorf("a losing create failed with %v, want the name taken", err)
		}
	}
	c := <-won
	if err := e.Remove(c.ID, false); err == nil {
		t.Fatalf("rm of a created container with a live supervisor succeeded")
	}
	c.Status = StatusExited
	if err := e.save(c); err != nil {
		t.Fatal(err)
	}
	c.releaseSlot()
	if err := e.Remove("same", false); err != nil {
		t.Fatalf("rm same: %v", err)
	}
	again, _, err := e.create(opts)
	if err != nil {
		t.Fatalf("create --name same after rm: %v", err)
	}
	dropCreated(e, again)
	if _, err := os.Lstat(e.namePath("same")); !os.IsNotExist(err) {
		t.Errorf("the name is still reserved after its container was discarded: %v", err)
	}
}

// Many creates, concurrent and then sequential, never share an id block
// while their containers live, and a block is given again once free.
func TestCreateDistinctSlots(t *testing.T) {
	e, opts := reserveEngine(t)
	const n = 200
	cs := make([]*Container, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, _, err := e.create(opts)
			if err != nil {
				errs <- err
				return
			}
			cs[i] = c
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent create: %v", err)
	}
	held := map[int]string{}
	for _, c := range cs {
		if other, ok := held[c.Slot]; ok {
			t.Fatalf("containers %s and %s both got id block %d", ShortID(other), ShortID(c.ID), c.Slot)
		}
		held[c.Slot] = c.ID
	}
	// Every other one ends; as many sequential creates follow.
	for i := 0; i < n; i += 2 {
		delete(held, cs[i].Slot)
		dropCreated(e, cs[i])
	}
	// The search starts among the live blocks, not after them.
	if err := os.WriteFile(filepath.Join(e.Root, slotsDir, "next"), []byte("0"), 0o600); err != nil {
		t.Fatal(err)
	}
	for range n / 2 {
		c, _, err := e.create(opts)
		if err != nil {
			t.Fatalf("sequential create: %v", err)
		}
		if other, ok := held[c.Slot]; ok {
			t.Fatalf("container %s got id block %d, which live container %s holds", ShortID(c.ID), c.Slot, ShortID(other))
		}
		held[c.Slot] = c.ID
		defer c.releaseSlot()
	}
	for i := 1; i < n; i += 2 {
		cs[i].releaseSlot()
	}
}

// holdLease gives c's id block lock to a child process, as a detached
// supervisor holds it, and returns that child.
func holdLease(t *testing.T, c *Container) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "1000")
	cmd.ExtraFiles = []*os.File{c.lease}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	c.releaseSlot()
	return cmd
}

// A container whose supervisor was killed gives back its id block, and
// its name when its record goes with it (run --rm), to the next create,
// with no ps or other reconcile in between.
func TestCrashedSupervisorReclaimed(t *testing.T) {
	for _, autoRemove := range []bool{true, false} {
		e, opts := reserveEngine(t)
		opts.Name, opts.AutoRemove = "crash", autoRemove
		c, _, err := e.create(opts)
		if err != nil {
			t.Fatal(err)
		}
		sup := holdLease(t, c)
		c.Status, c.Supervisor, c.SupStart = StatusRunning, sup.Process.Pid, pidStart(sup.Process.Pid)
		if err := e.save(c); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.create(opts); err == nil || !strings.Contains(err.Error(), "already used") {
			t.Fatalf("--rm %v: create with the name of a live container: %v, want it refused", autoRemove, err)
		}
		unlock, err := e.lock()
		if err != nil {
			t.Fatal(err)
		}
		n, f, err := e.acquireSlot(newID(), c.Slot)
		if err != nil || n == c.Slot {
			t.Fatalf("--rm %v: acquireSlot preferring live block %d: %d, %v", autoRemove, c.Slot, n, err)
		}
		f.Close()
		unlock()

		sup.Process.Signal(syscall.SIGKILL)
		sup.Wait()
		unlock, err = e.lock()
		if err != nil {
			t.Fatal(err)
		}
		n, f, err = e.acquireSlot(newID(), c.Slot)
		unlock()
		if err != nil || n != c.Slot {
			t.Fatalf("--rm %v: acquireSlot preferring block %d of a dead supervisor: %d, %v", autoRemove, c.Slot, n, err)
		}
		f.Close()
		old, err := e.load(c.ID)
		switch {
		case autoRemove && !os.IsNotExist(err):
			t.Errorf("--rm: the record of a container whose supervisor died is not removed: %+v, %v", old, err)
		case !autoRemove && (err != nil || old.Status != StatusExited):
			t.Errorf("the record of a container whose supervisor died is not exited: %+v, %v", old, err)
		}
		d, _, err := e.create(opts)
		if autoRemove {
			if err != nil {
				t.Fatalf("--rm: create with the name of a container whose supervisor died: %v", err)
			}
			dropCreated(e, d)
		} else if err == nil || !strings.Contains(err.Error(), "already used") {
			t.Errorf("create with the name of an exited container: %v, want it refused", err)
		}
	}
}

// A supervisor killed before anything settled its record: the create that
// wants its name settles it (removing a --rm one), ps not needed.
func TestStaleNameReclaimed(t *testing.T) {
	e, opts := reserveEngine(t)
	opts.Name = "stale"
	c, _, err := e.create(opts)
	if err != nil {
		t.Fatal(err)
	}
	// Its supervisor (this process, in the record) died: a start time
	// that is not this process's.
	c.Status, c.AutoRemove, c.SupStart = StatusRunning, true, pidStart(os.Getpid())+1
	if err := e.save(c); err != nil {
		t.Fatal(err)
	}
	c.releaseSlot()
	d, _, err := e.create(opts)
	if err != nil {
		t.Fatalf("create with the name of a --rm container whose supervisor died: %v", err)
	}
	if _, err := e.load(c.ID); !os.IsNotExist(err) {
		t.Errorf("the dead --rm container's record remains: %v", err)
	}
	dropCreated(e, d)
	// A link to a record that is gone is reclaimed too.
	if err := os.Symlink(newID(), e.namePath("gone")); err != nil {
		t.Fatal(err)
	}
	opts.Name = "gone"
	d, _, err = e.create(opts)
	if err != nil {
		t.Fatalf("create with a name whose link names no record: %v", err)
	}
	dropCreated(e, d)
}

// A root written before names and slots were reserved gets its
// reservations from the records: a name is still taken, and the block
// of a live container (whose supervisor holds no lock) is not handed out.
func TestReservationsFromOldRoot(t *testing.T) {
	e, opts := reserveEngine(t)
	exitedRecord(t, e, "old")
	live := exitedRecord(t, e, "live")
	live.Status, live.Supervisor, live.SupStart, live.Slot = StatusRunning, os.Getpid(), pidStart(os.Getpid()), 0
	if err := e.save(live); err != nil {
		t.Fatal(err)
	}
	opts.Name = "old"
	if _, _, err := e.create(opts); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("create --name old in a root with an exited \"old\": %v, want it refused", err)
	}
	opts.Name = ""
	for range 3 {
		c, _, err := e.create(opts)
		if err != nil {
			t.Fatal(err)
		}
		if c.Slot == live.Slot {
			t.Fatalf("create got block %d of live container %s", c.Slot, ShortID(live.ID))
		}
		defer c.releaseSlot()
	}
}

// SweepNames removes the reservations no record holds (a crash between a
// record's removal and its name's), and keeps the held ones.
func TestSweepNames(t *testing.T) {
	e, opts := reserveEngine(t)
	opts.Name = "held"
	c, _, err := e.create(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer dropCreated(e, c)
	stale := strings.Repeat("ab", 32)
	if err := os.Symlink(stale, e.namePath("stale")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(c.ID, e.namePath("other")); err != nil { // names another name's holder
		t.Fatal(err)
	}
	n, err := e.SweepNames()
	if err != nil || n != 2 {
		t.Errorf("SweepNames: %d, %v; want 2 removed", n, err)
	}
	for name, want := range map[string]bool{"held": true, "stale": false, "other": false} {
		_, err := os.Lstat(e.namePath(name))
		if (err == nil) != want {
			t.Errorf("names/%s: %v after the sweep, want present %v", name, err, want)
		}
	}
}

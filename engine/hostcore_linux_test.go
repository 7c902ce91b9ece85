package engine

import (
	"fmt"
	"os"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// benchRoot makes a state root of nf factories and n containers: every
// other one made from a factory, one in five of those a --spawn parent
// with a sub-container, each with two egress grants.
func benchRoot(b *testing.B, nf, n int) (*Engine, []*Container) {
	b.Helper()
	e, err := New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < nf; i++ {
		f := &Factory{Name: fmt.Sprintf("f%d", i), ID: newFactoryID(), Quota: FactoryQuota{MemoryBytes: 1 << 30}, Created: time.Now()}
		if err := e.saveFactory(f); err != nil {
			b.Fatal(err)
		}
	}
	me, start := os.Getpid(), pidStart(os.Getpid())
	mk := func(factory, parent string, spawn bool, egress []string) string {
		c := &Container{ID: newID(), Name: "x", Image: "img", Status: StatusRunning, Supervisor: me, SupStart: start,
			Factory: factory, Parent: parent, Spawn: spawn, Created: time.Now()}
		if err := e.writeNewRecord(c, &Spec{Image: "img", Egress: egress}); err != nil {
			b.Fatal(err)
		}
		return c.ID
	}
	for i := 0; len(e.mustList(b)) < n; i++ {
		eg := []string{"10.0.0.0/8:443/tcp", fmt.Sprintf("192.168.%d.0/24", i%250)}
		switch {
		case i%2 == 0:
			mk("", "", false, eg)
		case i%5 == 1:
			p := mk(fmt.Sprintf("f%d", i%nf), "", true, eg)
			mk(fmt.Sprintf("f%d", i%nf), p, false, []string{"10.1.2.3:443/tcp"})
		default:
			mk(fmt.Sprintf("f%d", i%nf), "", false, eg)
		}
	}
	cs, err := e.List()
	if err != nil {
		b.Fatal(err)
	}
	return e, cs
}

func (e *Engine) mustList(b *testing.B) []*Container {
	cs, err := e.all()
	if err != nil {
		b.Fatal(err)
	}
	return cs
}

// BenchmarkHostCore measures, on a root of 50 factories and 1000
// containers, what an operation under the lock pays for its core: the
// reconcile every factory operation does anyway (the baseline), the
// factory tree loaded per operation as before the host core, the host
// core built for one operation (containers of a factory only) and in
// full (as a daemon builds it after another process wrote a factory's
// record or a mark), the daemon's use of its kept core while the
// records' generation is its, and after another process made a
// container (brought up to date in place).
func BenchmarkHostCore(b *testing.B) {
	e, cs := benchRoot(b, 50, 1000)
	b.Run("reconcile", func(b *testing.B) {
		for b.Loop() {
			unlock, _ := e.lock()
			if _, err := e.reconcile(); err != nil {
				b.Fatal(err)
			}
			unlock()
		}
	})
	b.Run("factorytree-per-op", func(b *testing.B) { // before: loadFactories
		for b.Loop() {
			fs, err := e.factories()
			if err != nil {
				b.Fatal(err)
			}
			charges, err := e.diskCharges(fs, cs)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := newFactoryTree(fs, charges); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("build-per-op", func(b *testing.B) {
		for b.Loop() {
			if _, err := e.buildHostCore(cs, false); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("build-full", func(b *testing.B) {
		for b.Loop() {
			if _, err := e.buildHostCore(cs, true); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("core-only-full", func(b *testing.B) { // the records read once: the core's own share
		fs, _ := e.factories()
		var nodes []hostNode
		for _, c := range cs {
			spec, err := e.readSpec(c.ID)
			if err != nil {
				b.Fatal(err)
			}
			nodes = append(nodes, e.hostNode(c, spec))
		}
		for b.Loop() {
			if _, err := newHostCore(fs, nil, nodes); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("held-current", func(b *testing.B) {
		e.host.held = true
		defer func() { e.host.held, e.host.h = false, nil }()
		if err := e.refreshCore(); err != nil {
			b.Fatal(err)
		}
		built := e.host.builds.Load()
		for b.Loop() {
			if _, err := e.hostCore(cs); err != nil {
				b.Fatal(err)
			}
			e.keepCore(0, 0)
		}
		if n := e.host.builds.Load(); n != built {
			b.Fatalf("%d builds in the loop, want none: the kept core used", n-built)
		}
	})
	b.Run("held-after-create", func(b *testing.B) { // another process made a container of a factory since
		e.host.held = true
		defer func() { e.host.held, e.host.h = false, nil }()
		if err := e.refreshCore(); err != nil {
			b.Fatal(err)
		}
		built := e.host.builds.Load()
		cli, _ := New(e.Root)
		me, start := os.Getpid(), pidStart(os.Getpid())
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			c := &Container{ID: newID(), Name: "x", Image: "img", Status: StatusRunning, Supervisor: me, SupStart: start,
				Factory: "f1", Created: time.Now()}
			if err := cli.writeNewRecord(c, &Spec{Image: "img", Egress: []string{"10.0.0.0/8"}}); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if _, err := e.hostCore(nil); err != nil {
				b.Fatal(err)
			}
			e.keepCore(0, 0)
		}
		if n := e.host.builds.Load(); n != built {
			b.Fatalf("%d builds in the loop, want none: updated in place", n-built)
		}
	})
}

// TestHeldCoreGeneration: a daemon's kept core is used again while the
// records' generation is the one it holds, kept current through its own
// writes, and built again after another process's write (here another
// engine of the same root) or after an operation that did not say its
// writes match.
func TestHeldCoreGeneration(t *testing.T) {
	root := t.TempDir()
	d, _ := New(root)
	if err := d.HoldCore(); err != nil {
		t.Fatal(err)
	}
	use := func() *hostCore {
		unlock, _ := d.lock()
		defer unlock()
		cs, _ := d.reconcile()
		h, err := d.hostCore(cs)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	builds := func() uint64 { return d.host.builds.Load() }
	h := use()
	d.keepCore(0, 0)
	if use() != h || builds() != 1 {
		t.Fatalf("a current core was built again (%d builds)", builds())
	}
	// Not kept: the next use builds it again.
	if h2 := use(); h2 == h || builds() != 2 {
		t.Fatalf("a core an operation did not keep was used again (%d builds)", builds())
	}
	d.keepCore(0, 0)
	// Its own write, said: kept.
	if _, err := d.CreateFactory(FactoryOptions{Name: "f1"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.RemoveFactory("f1", false) }) // its control group
	if n := builds(); n != 2 {
		t.Fatalf("factory create through the holder built its core again (%d builds)", n)
	}
	// Another process's write: built again, with it.
	cli, _ := New(root)
	if err := cli.saveFactory(&Factory{Name: "f2", ID: newFactoryID(), Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	h = use()
	d.keepCore(0, 0)
	if builds() != 3 || h.fac.byName["f2"] == nil || h.fac.byName["f1"] == nil {
		t.Fatalf("after another process's write: %d builds, factories %v", builds(), h.fac.byName)
	}
	// Containers made and removed by another process: brought up to
	// date in place, to what a build from the records makes.
	me, start := os.Getpid(), pidStart(os.Getpid())
	mk := func(factory, parent string, spawn bool, egress ...string) *Container {
		c := &Container{ID: newID(), Name: "x", Image: "img", Status: StatusRunning, Supervisor: me, SupStart: start,
			Factory: factory, Parent: parent, Spawn: spawn, Created: time.Now()}
		if err := cli.writeNewRecord(c, &Spec{Image: "img", Egress: egress}); err != nil {
			t.Fatal(err)
		}
		return c
	}
	rm := func(c *Container) {
		unlock, err := cli.lockRecord(c.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer unlock()
		if err := cli.removeRecord(c); err != nil {
			t.Fatal(err)
		}
	}
	same := func(what string) {
		t.Helper()
		all, _ := d.all()
		fresh, err := d.buildHostCore(all, true)
		if err != nil {
			t.Fatal(err)
		}
		if a, b := h.dump(), fresh.dump(); a != b {
			t.Fatalf("%s: the kept core and one built from the records differ:\nkept:\n%s\nbuilt:\n%s", what, a, b)
		}
	}
	top := mk("f2", "", true, "10.0.0.0/8", "any")
	kid := mk("f2", top.ID, false, "10.1.2.3:443/tcp")
	plain := mk("", "", false, "1.2.3.4:53/udp")
	h = use()
	d.keepCore(0, 0)
	if builds() != 3 || d.host.syncs.Load() != 1 || len(h.ctrs) != 3 {
		t.Fatalf("after another process made containers: %d builds, %d updates in place, %d containers; want 3, 1, 3",
			builds(), d.host.syncs.Load(), len(h.ctrs))
	}
	same("containers made")
	rm(kid)
	rm(plain)
	h = use()
	d.keepCore(0, 0)
	if builds() != 3 || d.host.syncs.Load() != 2 || len(h.ctrs) != 1 {
		t.Fatalf("after another process removed containers: %d builds, %d updates in place, %d containers; want 3, 2, 1",
			builds(), d.host.syncs.Load(), len(h.ctrs))
	}
	same("containers removed")
	// A parent gone before its sub-container (a crash): not in place,
	// which would take the sub-container's grants with it; built again.
	kid = mk("f2", top.ID, false, "10.1.2.3:443/tcp")
	h = use()
	d.keepCore(0, 0)
	rm(top)
	h = use()
	d.keepCore(0, 0)
	if builds() != 4 {
		t.Fatalf("after a parent went before its sub-container: %d builds, want 4", builds())
	}
	same("a parent gone first")
	// Another process made a container while an operation of the
	// holder wrote its own: kept, and brought up to date in place.
	h = use()
	f3 := &Factory{Name: "f3", ID: newFactoryID(), Created: time.Now()}
	if err := h.fac.add(FactoryOptions{Name: "f3"}); err != nil {
		t.Fatal(err)
	}
	h.fac.byName["f3"] = f3
	mk("", "", false)
	if err := d.saveFactory(f3); err != nil {
		t.Fatal(err)
	}
	d.keepCore(0, 1)
	syncs := d.host.syncs.Load()
	h = use()
	d.keepCore(0, 0)
	if builds() != 4 || d.host.syncs.Load() != syncs+1 {
		t.Fatalf("after another process's create during the holder's write: %d builds, %d updates in place; want 4, %d",
			builds(), d.host.syncs.Load(), syncs+1)
	}
	same("a create during the holder's write")
	// Another process wrote a factory's record meanwhile: built again.
	h = use()
	if err := cli.saveFactory(&Factory{Name: "f4", ID: newFactoryID(), Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := d.saveFactory(f3); err != nil {
		t.Fatal(err)
	}
	d.keepCore(0, 1)
	h = use()
	d.keepCore(0, 0)
	if builds() != 5 || h.fac.byName["f4"] == nil {
		t.Fatalf("after another process's factory write during the holder's: %d builds, want 5", builds())
	}
	ci, err := d.CoreInfo()
	if err != nil || !ci.Held || ci.Factories != 4 || ci.Containers != 2 || ci.Generation != ci.RecordsGeneration || ci.Generation != 13 { // 5 factory writes, 5 containers made, 3 removed
		t.Fatalf("core info %+v, %v", ci, err)
	}
}

// BenchmarkAdvance is what a record write adds for the generation in a
// process that has not written one yet (an oak run, a supervisor):
// mapping ROOT/generation and one atomic addition, against a stat of the
// root, the cheapest system call a write makes anyway.
func BenchmarkAdvance(b *testing.B) {
	root := b.TempDir()
	b.Run("stat", func(b *testing.B) {
		for b.Loop() {
			if _, err := os.Stat(root); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("first-advance", func(b *testing.B) {
		for b.Loop() {
			e := &Engine{Root: root}
			e.advanceContainers()
			if e.host.genWord == nil {
				b.Fatal(e.host.genErr)
			}
			// A process maps it once; this loop would run out of mappings.
			unix.Munmap((*[8]byte)(unsafe.Pointer(e.host.genWord))[:])
		}
	})
	b.Run("advance", func(b *testing.B) {
		e := &Engine{Root: root}
		for b.Loop() {
			e.advanceContainers()
		}
	})
}

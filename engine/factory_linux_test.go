package engine

import (
	"testing"
	"time"

	"github.com/oak-engine/oak/sandbox"
)

func TestWritableCharge(t *testing.T) {
	if n := writableCharge(&Spec{}); n != 1<<30 {
		t.Errorf("default writable layer charge %d, want 1 GiB", n)
	}
	if n := writableCharge(&Spec{ReadOnly: true}); n != 0 {
		t.Errorf("read-only charge %d", n)
	}
	if n := writableCharge(&Spec{Limits: sandbox.Limits{WritableBytes: 5 << 20}}); n != 5<<20 {
		t.Errorf("--storage-size 5m charge %d", n)
	}
}

// TestDiskBounds: a launch reads every record only when a disk limit in
// its factory's chain needs them; a missing factory (or an unreadable
// record) takes the full path, which reports it.
func TestDiskBounds(t *testing.T) {
	e, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name, parent string
		disk         int64
	}{{"top", "", 0}, {"mid", "top", 0}, {"disked", "", 1 << 30}, {"under", "disked", 0}, {"orphan", "gone", 0},
		{"loop1", "loop2", 0}, {"loop2", "loop1", 0}} {
		rec := &Factory{Name: f.name, ID: newFactoryID(), Parent: f.parent,
			Quota: FactoryQuota{MemoryBytes: 256 << 20, DiskBytes: f.disk}, Created: time.Now().UTC()}
		if err := e.saveFactory(rec); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]bool{"": false, "top": false, "mid": false,
		"disked": true, "under": true, "orphan": true, "nope": true, "loop1": true} {
		if got := e.diskBounds(name); got != want {
			t.Errorf("diskBounds(%q) = %v, want %v", name, got, want)
		}
	}
}

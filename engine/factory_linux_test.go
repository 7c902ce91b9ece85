package engine

import (
	"testing"

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

package engine

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oak-engine/oak/services/netsvc"
)

// TestNetCounts: what a supervisor counts into a container's counters
// file (and a network service, through its own mapping of the same file)
// is what the daemon reads; the counts survive a reopening; a file of
// another layout starts again from zero; a container without the file
// has no counters.
func TestNetCounts(t *testing.T) {
	e := &Engine{Root: t.TempDir()}
	id := strings.Repeat("ab", 32)
	if err := os.MkdirAll(e.dir(id), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := e.NetCounts(id); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("NetCounts without a file: %v, want ErrNotExist", err)
	}
	path := filepath.Join(e.dir(id), netCountsFile)
	sup := e.openNetCounts(id)
	if sup == nil {
		t.Fatal("openNetCounts failed")
	}
	sup.restarted()
	sup.tally.Add(3, netsvc.OutcomeDenied)
	// The service maps the descriptor it is handed, as RunNetService does.
	svc, err := mapNetCounts(sup.file(), false)
	if err != nil {
		t.Fatal(err)
	}
	svc.tally.Add(3, netsvc.OutcomeDenied)
	svc.tally.Add(0, netsvc.OutcomeAllowed)
	svc.close()
	sup.close()

	again := e.openNetCounts(id) // a restart of the container: counts go on
	again.restarted()
	again.close()
	c, err := e.NetCounts(id)
	if err != nil {
		t.Fatal(err)
	}
	if c.Restarts != 2 || c.Calls[3][netsvc.OutcomeDenied] != 2 || c.Calls[0][netsvc.OutcomeAllowed] != 1 {
		t.Errorf("counts read back: restarts %d, connect denied %d, socket allowed %d; want 2, 2, 1",
			c.Restarts, c.Calls[3][netsvc.OutcomeDenied], c.Calls[0][netsvc.OutcomeAllowed])
	}
	var sum uint64
	for _, row := range c.Calls {
		for _, v := range row {
			sum += v
		}
	}
	if sum != 3 {
		t.Errorf("%d calls counted in all, want 3", sum)
	}

	// Another layout (a different size, or a foreign magic) is not read,
	// and the next supervisor starts it from zero.
	for _, junk := range [][]byte{[]byte("short"), append([]byte("oaknet0\n"), make([]byte, netCountsSize-8)...)} {
		if err := os.WriteFile(path, junk, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := e.NetCounts(id); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("NetCounts of a file of another layout (%d bytes): %v, want ErrNotExist", len(junk), err)
		}
		n := e.openNetCounts(id)
		if n == nil {
			t.Fatal("openNetCounts over a file of another layout failed")
		}
		n.close()
		if c, err := e.NetCounts(id); err != nil || c.Restarts != 0 {
			t.Errorf("after a supervisor started it again: %+v, %v; want zero counts", c, err)
		}
	}
	if _, err := e.NetCounts("../x"); err == nil {
		t.Error("NetCounts accepted an invalid id")
	}
}

// A counters file truncated under its mappings (by a network service
// that was taken over: it holds the file open for writing) costs counts,
// not the supervisor or the daemon.
func TestNetCountsTruncated(t *testing.T) {
	e := &Engine{Root: t.TempDir()}
	id := strings.Repeat("cd", 32)
	if err := os.MkdirAll(e.dir(id), 0o700); err != nil {
		t.Fatal(err)
	}
	sup := e.openNetCounts(id)
	if sup == nil {
		t.Fatal("openNetCounts failed")
	}
	defer sup.close()
	if err := sup.f.Truncate(0); err != nil {
		t.Fatal(err)
	}
	sup.restarted() // faults: must not end the test process
	if _, err := readNetCounts(sup.mem); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("reading a truncated mapping: %v, want an error saying so", err)
	}
	if _, err := e.NetCounts(id); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("NetCounts of a truncated file: %v, want ErrNotExist", err)
	}
}

//go:build linux

package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// slotOf is the id block in container id's record, read without oak.
func (o *oakEnv) slotOf(id string) (int, diskRecord) {
	o.t.Helper()
	var r struct {
		diskRecord
		Slot int `json:"slot"`
	}
	b, err := os.ReadFile(filepath.Join(o.root, "containers", id, "state.json"))
	if err == nil {
		err = json.Unmarshal(b, &r)
	}
	if err != nil {
		o.t.Fatalf("record of %s: %v", id, err)
	}
	return r.Slot, r.diskRecord
}

// Concurrent oak run -d with one --name: exactly one starts a container,
// the others are refused naming it; concurrent runs never share an id
// block among live containers.
func TestCreateNameAndSlotRace(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	const n = 8
	var bgs []*bg
	for range n {
		bgs = append(bgs, o.start("run", "-d", "--name", "same", rootfsDir, "sleep", "60"))
	}
	for range n {
		bgs = append(bgs, o.start("run", "-d", rootfsDir, "sleep", "60"))
	}
	won := 0
	ids := map[string]bool{}
	for i, b := range bgs {
		r, ok := b.wait(3 * oakTimeout)
		if !ok {
			t.Fatalf("oak run -d #%d did not end", i)
		}
		if i >= n {
			if r.code != 0 {
				t.Errorf("oak run -d without a name failed\n%s", r)
			}
			ids[strings.TrimSpace(r.stdout)] = true
			continue
		}
		switch {
		case r.code == 0:
			won++
			ids[strings.TrimSpace(r.stdout)] = true
		case !strings.Contains(r.stderr, `invalid --name "same": already used by container`):
			t.Errorf("a losing oak run -d --name same failed otherwise\n%s", r)
		}
	}
	if won != 1 {
		t.Errorf("%d of %d concurrent oak run -d --name same succeeded, want 1", won, n)
	}
	slots := map[int]string{}
	for id := range ids {
		s, _ := o.slotOf(id)
		if other, ok := slots[s]; ok {
			t.Errorf("live containers %s and %s share id block %d", shortOf(id), shortOf(other), s)
		}
		slots[s] = id
	}
	if r := o.run("rm", "-f", "same"); r.code != 0 {
		t.Fatalf("oak rm -f same\n%s", r)
	}
	// The name is free again after rm.
	o.runD("--name", "same", rootfsDir, "true")
}

// A detached container whose supervisor is killed gives its name (run
// --rm) to the next run at once, with no ps before it, and its id block
// back: oak start of one that keeps its record gets its block again.
func TestCreateAfterSupervisorCrash(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	kill := func(id string) {
		t.Helper()
		_, rec := o.slotOf(id)
		if err := syscall.Kill(rec.Supervisor, syscall.SIGKILL); err != nil {
			t.Fatalf("kill supervisor %d of %s: %v", rec.Supervisor, shortOf(id), err)
		}
		for deadline := time.Now().Add(oakTimeout); (hostProc{rec.Supervisor, rec.SupStart}).alive(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("supervisor %d of %s lives on after SIGKILL", rec.Supervisor, shortOf(id))
			}
		}
	}
	gone := o.runD("--rm", "--name", "crash", rootfsDir, "sleep", "60")
	kill(gone)
	again := o.runD("--name", "crash", rootfsDir, "sleep", "60")
	if _, err := os.Stat(filepath.Join(o.root, "containers", gone)); !os.IsNotExist(err) {
		t.Errorf("the --rm container %s whose supervisor was killed is still recorded after a run took its name: %v", shortOf(gone), err)
	}
	o.waitRunning(again)

	keep := o.runD("--name", "keep", rootfsDir, "sleep", "60")
	slot, _ := o.slotOf(keep)
	kill(keep)
	if r := o.run("run", "-d", "--name", "keep", rootfsDir, "true"); r.code == 0 || !strings.Contains(r.stderr, "already used") {
		t.Errorf("oak run -d --name keep while the exited keep is recorded: want it refused\n%s", r)
	}
	if r := o.run("start", "keep"); r.code != 0 {
		t.Fatalf("oak start keep after its supervisor was killed\n%s", r)
	}
	o.waitRunning(keep)
	if now, _ := o.slotOf(keep); now != slot {
		t.Errorf("oak start keep: id block %d, want its own %d, which its killed supervisor freed", now, slot)
	}
}

//go:build linux

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// checkRootEmpty fails t unless o's state root holds no container
// record, no name link and no held id block.
func (o *oakEnv) checkRootEmpty(what string) {
	o.t.Helper()
	for _, dir := range []string{"containers", "names"} {
		ents, _ := os.ReadDir(filepath.Join(o.root, dir))
		for _, e := range ents {
			o.t.Errorf("%s: %s/%s is left", what, dir, e.Name())
		}
	}
	ents, _ := os.ReadDir(filepath.Join(o.root, "slots"))
	for _, e := range ents {
		f, err := os.OpenFile(filepath.Join(o.root, "slots", e.Name()), os.O_RDWR, 0)
		if err != nil {
			o.t.Fatal(err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil && !heldByStandby(f.Name()) {
			o.t.Errorf("%s: id block %s is still held: %v", what, e.Name(), err)
		}
		f.Close()
	}
}

// Many oak run --rm at once, with one name and with their own: each
// runs or is refused the taken name, and afterwards no record, name link
// or id block is left. Their records are written (running, ended,
// removed) each under its own container's lock.
func TestParallelRunRmRecords(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	const n = 10
	var bgs []*bg
	for i := range 2 * n {
		name := "same"
		if i%2 == 1 {
			name = fmt.Sprintf("own-%d", i)
		}
		bgs = append(bgs, o.start("run", "--rm", "--name", name, rootfsDir, "/bin/echo", name))
	}
	ran := 0
	for i, b := range bgs {
		r, ok := b.wait(3 * oakTimeout)
		if !ok {
			t.Fatalf("oak run --rm #%d did not end", i)
		}
		switch {
		case r.code == 0 && i%2 == 0 && r.stdout == "same\n":
			ran++
		case r.code == 0 && i%2 == 1 && r.stdout == fmt.Sprintf("own-%d\n", i):
		case i%2 == 0 && r.code != 0 && strings.Contains(r.stderr, `invalid --name "same": already used by container`):
		default:
			t.Errorf("oak run --rm #%d\n%s", i, r)
		}
	}
	if ran == 0 {
		t.Errorf("none of %d oak run --rm --name same ran", n)
	}
	if es, err := o.psAll(); err != nil || len(es) != 0 {
		t.Errorf("oak ps -a after every run --rm ended: %+v, %v", es, err)
	}
	o.checkRootEmpty("after parallel run --rm")
}

// oak rm -f of containers while their supervisors record the end (some
// end by themselves at about that time): each is removed exactly once,
// its name free again at once.
func TestRemoveWhileEnding(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	const n = 6
	for round := range 2 {
		var ids []string
		for i := range n {
			cmd := []string{"sleep", "60"}
			if i%2 == 1 {
				cmd = []string{"/bin/sh", "-c", "sleep 0.3"}
			}
			ids = append(ids, o.runD(append([]string{"--name", fmt.Sprintf("end-%d", i), rootfsDir}, cmd...)...))
		}
		time.Sleep(200 * time.Millisecond)
		var bgs []*bg
		for i := range n {
			bgs = append(bgs, o.start("rm", "-f", fmt.Sprintf("end-%d", i)))
		}
		for i, b := range bgs {
			r, ok := b.wait(3 * oakTimeout)
			if !ok || r.code != 0 {
				t.Errorf("round %d: oak rm -f end-%d while it ends\n%s", round, i, r)
			}
		}
		for _, id := range ids {
			if _, err := os.Lstat(filepath.Join(o.root, "containers", id)); !os.IsNotExist(err) {
				t.Errorf("round %d: the record of %s is there after rm -f: %v", round, shortOf(id), err)
			}
		}
		if es, err := o.psAll(); err != nil || len(es) != 0 {
			t.Errorf("round %d: oak ps -a after rm -f of every one: %+v, %v", round, es, err)
		}
		o.checkRootEmpty(fmt.Sprintf("round %d", round))
	}
}

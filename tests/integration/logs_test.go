//go:build linux

package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// logFiles returns the sizes of a container's log files by name.
func (o *oakEnv) logFiles(id string) map[string]int64 {
	o.t.Helper()
	ents, err := os.ReadDir(filepath.Join(o.root, "containers", id))
	if err != nil {
		o.t.Fatal(err)
	}
	files := map[string]int64{}
	for _, e := range ents {
		if e.Name() == "log" || strings.HasPrefix(e.Name(), "log.") {
			fi, err := e.Info()
			if err != nil {
				o.t.Fatal(err)
			}
			files[e.Name()] = fi.Size()
		}
	}
	return files
}

// A container writing more than --log-max-size × --log-max-file leaves at
// most --log-max-file files of at most --log-max-size each, and oak logs
// shows the most recent output in order; without the flags the defaults
// (10m × 3) hold a flood. The log used to grow without bound.
func TestLogRotation(t *testing.T) {
	needOak(t, true)
	t.Run("flags", func(t *testing.T) {
		t.Parallel()
		o := newOak(t)
		r := o.run("run", "--name", "seq", "--log-max-size", "64k", "--log-max-file", "3", rootfsDir, "/bin/seq", "1", "100000")
		if r.code != 0 || !strings.HasSuffix(r.stdout, "\n99999\n100000\n") || !strings.HasPrefix(r.stdout, "1\n2\n") {
			t.Fatalf("seq 1 100000 did not reach the terminal whole:\n%.300s", r.stdout)
		}
		e, _ := o.find("seq")
		files := o.logFiles(e.ID)
		if len(files) > 3 {
			t.Errorf("%d log files under --log-max-file 3: %v", len(files), files)
		}
		for name, size := range files {
			if size > 64<<10 {
				t.Errorf("%s is %d bytes under --log-max-size 64k", name, size)
			}
		}
		logs := o.run("logs", "seq")
		ls := lines(logs.stdout)
		if logs.code != 0 || len(ls) < 2 || ls[len(ls)-1] != "100000" {
			t.Fatalf("oak logs does not end with the last line:\n%s", logs)
		}
		first := len(ls) - 1
		for i := len(ls) - 1; i > 0; i-- {
			n, err1 := strconv.Atoi(ls[i])
			p, err2 := strconv.Atoi(ls[i-1])
			if err1 != nil || err2 != nil || p != n-1 {
				break
			}
			first = i - 1
		}
		// Only the first line may be cut (the older part rotated away).
		if first > 1 {
			t.Errorf("oak logs: line %d of %d (%q) breaks the sequence", first, len(ls), ls[first-1])
		}
		if len(ls) < 2*64<<10/7 {
			t.Errorf("oak logs shows %d lines; two full 64 KiB files hold more", len(ls))
		}
		t.Logf("log files %v; oak logs shows %d lines from %q", files, len(ls), ls[0])
	})
	t.Run("defaults", func(t *testing.T) {
		t.Parallel()
		o := newOak(t)
		id := o.runD(rootfsDir, "/bin/dd", "if=/dev/zero", "bs=1M", "count=40")
		o.waitExited(id, 60*time.Second)
		files := o.logFiles(id)
		var total int64
		for name, size := range files {
			total += size
			if size > 10<<20 {
				t.Errorf("%s is %d bytes; the default cap is 10 MiB", name, size)
			}
		}
		if len(files) != 3 || total < 20<<20 {
			t.Errorf("40 MiB of output left log files %v; want 3 files, the newest 20-30 MiB", files)
		}
	})
}

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

// waitOutput waits up to d for the background oak's stdout to contain s.
func (b *bg) waitOutput(t *testing.T, s string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		out, errOut := b.output()
		if strings.Contains(out, s) {
			return
		}
		select {
		case <-b.done:
			t.Fatalf("oak %s ended before printing %q\n%s", strings.Join(b.res.args, " "), s, b.res)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the output after %v; stdout %q, stderr %q", s, d, out, errOut)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// oak logs -f prints a line while the container is still running, goes
// on through rotations of the log, and ends when the container exits.
func TestLogsFollow(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	// On USR1 the container writes 5000 lines, far past --log-max-size,
	// and exits. (USR1 reaches the whole process group, so a sleep may die
	// of it: the shell's word about that goes to /dev/null, not the log.)
	id := o.runD("--log-max-size", "4k", "--log-max-file", "100", rootfsDir, "/bin/sh", "-c",
		"trap 'seq 1 5000; exit 0' USR1; echo ready; while :; do sleep 0.1; done 2>/dev/null")
	o.waitRunning(id)
	f := o.start("logs", "-f", id)
	f.waitOutput(t, "ready\n", 20*time.Second)
	if _, ok := f.wait(0); ok {
		t.Fatalf("oak logs -f ended while the container runs")
	}
	if r := o.run("kill", "-s", "USR1", id); r.code != 0 {
		t.Fatal(r)
	}
	r, ok := f.wait(30 * time.Second)
	if !ok {
		t.Fatalf("oak logs -f did not end when the container exited")
	}
	ls := lines(r.stdout)
	if r.code != 0 || len(ls) != 5001 || ls[0] != "ready" {
		t.Fatalf("want ready and 1..5000 (%d lines)\n%.300s", len(ls), r)
	}
	for i, l := range ls[1:] {
		if l != strconv.Itoa(i+1) {
			t.Fatalf("line %d is %q, want %d", i+2, l, i+1)
		}
	}
	if files := o.logFiles(id); len(files) < 5 {
		t.Errorf("log files %v: the output should have rotated several times", files)
	}
	// The log of an exited container: -f prints it and returns.
	if r := o.run("logs", "-f", "--tail", "1", id); r.code != 0 || r.stdout != "5000\n" {
		t.Errorf("logs -f --tail 1 of an exited container\n%s", r)
	}
}

// oak logs writes the container's stdout to its stdout and the
// container's stderr to its stderr; --tail counts lines of both; -t
// stamps each line with the time it was written; --since leaves out the
// lines before a time, given as RFC 3339 or as a duration.
func TestLogsOptions(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	before := time.Now()
	if r := o.run("run", "--name", "l", rootfsDir, "/bin/sh", "-c", "echo a; echo b >&2; sleep 1; echo c; echo d >&2"); r.code != 0 {
		t.Fatal(r)
	}
	after := time.Now()
	check := func(args []string, stdout, stderr string) {
		t.Helper()
		r := o.run(append([]string{"logs"}, args...)...)
		if r.code != 0 || r.stdout != stdout || r.stderr != stderr {
			t.Errorf("want stdout %q, stderr %q\n%s", stdout, stderr, r)
		}
	}
	check([]string{"l"}, "a\nc\n", "b\nd\n")
	check([]string{"--tail", "2", "l"}, "c\n", "d\n")
	check([]string{"--tail", "0", "l"}, "", "")
	check([]string{"--since", "1h", "l"}, "a\nc\n", "b\nd\n")
	check([]string{"--since", after.Add(time.Minute).UTC().Format(time.RFC3339), "l"}, "", "")

	r := o.run("logs", "-t", "l")
	stamps := map[string]time.Time{}
	for _, l := range append(lines(r.stdout), lines(r.stderr)...) {
		ts, text, _ := strings.Cut(l, " ")
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil || at.Before(before) || at.After(after) {
			t.Errorf("logs -t line %q: want a time between the run's start and end (%v)", l, err)
		}
		stamps[text] = at
	}
	if len(stamps) != 4 || !stamps["a"].Before(stamps["c"]) {
		t.Fatalf("logs -t: stamps %v\n%s", stamps, r)
	}
	// Since the time of the first line after the sleep: c and d, not a
	// and b. (Which of c and d came first is the scheduler's choice: the
	// supervisor reads the two streams in two goroutines.)
	first := stamps["c"]
	if stamps["d"].Before(first) {
		first = stamps["d"]
	}
	check([]string{"--since", first.Format(time.RFC3339Nano), "l"}, "c\n", "d\n")

	for _, bad := range [][]string{{"--tail", "x", "l"}, {"--tail", "-2", "l"}, {"--since", "yesterday", "l"}} {
		if r := o.run(append([]string{"logs"}, bad...)...); r.code != 125 || !strings.Contains(r.stderr, "invalid --") {
			t.Errorf("want exit 125 and an invalid-flag message\n%s", r)
		}
	}
}

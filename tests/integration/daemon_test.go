//go:build linux

package integration

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// newDaemonOak is newOak with the daemon path forced on, whatever
// OAK_NO_DAEMON the suite runs with: these tests are about the daemon.
func newDaemonOak(t *testing.T) *oakEnv {
	o := newOak(t)
	o.env = append(o.env, "OAK_NO_DAEMON=0")
	return o
}

// daemonPid is the pid of the root's daemon, 0 if none runs.
func (o *oakEnv) daemonPid() int {
	o.t.Helper()
	r := o.run("daemon", "status")
	first, _, _ := strings.Cut(r.stdout, "\n") // then the host core's line
	if pid, ok := strings.CutPrefix(first, "running, pid "); ok && r.code == 0 {
		n, err := strconv.Atoi(pid)
		if err != nil {
			o.t.Fatalf("oak daemon status: %s", r)
		}
		return n
	}
	if strings.TrimSpace(r.stdout) != "not running" || r.code != 1 {
		o.t.Fatalf("oak daemon status: %s", r)
	}
	return 0
}

// TestDaemonReattach kills the daemon with SIGKILL while a container
// runs: the container goes on (same init, same process), the next oak
// verb starts a new daemon, and that one lists and stops it.
func TestDaemonReattach(t *testing.T) {
	needOak(t, true)
	o := newDaemonOak(t)
	id := o.runD("--name", "survivor", rootfsDir, "/bin/sh", "-c", "echo up; sleep 600")
	before := o.waitRunning(id)
	first := o.daemonPid()
	if first == 0 {
		t.Fatal("oak run -d left no daemon running")
	}
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); o.daemonPid() != 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("daemon %d still holds the root 20s after SIGKILL", first)
		}
	}
	if err := syscall.Kill(before.Pid, 0); err != nil {
		t.Fatalf("the container's init %d died with the daemon: %v", before.Pid, err)
	}
	after := o.waitRunning(id) // through a new daemon, started by this ps
	second := o.daemonPid()
	if second == 0 || second == first {
		t.Fatalf("daemon after the kill: pid %d (the killed one was %d)", second, first)
	}
	if after.Pid != before.Pid {
		t.Errorf("init pid %d after the daemon's death, %d before: not the same container process", after.Pid, before.Pid)
	}
	if r := o.run("logs", "survivor"); r.code != 0 || r.stdout != "up\n" {
		t.Errorf("logs through the new daemon:\n%s", r)
	}
	if r := o.run("stop", "-t", "1", "survivor"); r.code != 0 {
		t.Fatalf("stop through the new daemon:\n%s", r)
	}
	if e := o.waitExited(id, 20*time.Second); e.ExitCode != 143 && e.ExitCode != 137 {
		t.Errorf("exit status %d after stop, want 143 (TERM) or 137 (KILL)", e.ExitCode)
	}
}

// TestDaemonStopLeavesContainers: a graceful stop of the daemon leaves
// its containers running, and the in-process engine sees them so.
func TestDaemonStopLeavesContainers(t *testing.T) {
	needOak(t, true)
	o := newDaemonOak(t)
	id := o.runD(rootfsDir, "/bin/sleep", "600")
	e := o.waitRunning(id)
	if r := o.run("daemon", "stop"); r.code != 0 {
		t.Fatalf("%s", r)
	}
	if pid := o.daemonPid(); pid != 0 {
		t.Fatalf("daemon %d still runs after oak daemon stop", pid)
	}
	if _, err := os.Lstat(filepath.Join(o.root, "oak.sock")); !os.IsNotExist(err) {
		t.Errorf("socket left after a graceful stop: %v", err)
	}
	r := o.run("--no-daemon", "ps", "-q", "--no-trunc")
	if r.code != 0 || strings.TrimSpace(r.stdout) != id {
		t.Errorf("after the daemon stopped, ps --no-daemon:\n%s", r)
	}
	if o.daemonPid() != 0 {
		t.Error("--no-daemon started a daemon")
	}
	if err := syscall.Kill(e.Pid, 0); err != nil {
		t.Errorf("container init %d gone after the daemon stopped: %v", e.Pid, err)
	}
}

// TestOneDaemonPerRoot: a second oak daemon of a root exits at once with
// an error naming the running one's pid.
func TestOneDaemonPerRoot(t *testing.T) {
	needOak(t, true)
	o := newDaemonOak(t)
	if r := o.run("ps"); r.code != 0 {
		t.Fatalf("%s", r)
	}
	pid := o.daemonPid()
	r := o.run("daemon")
	if r.code == 0 || !strings.Contains(r.stderr, "another oak daemon serves this state root (pid "+strconv.Itoa(pid)+")") {
		t.Errorf("second daemon, first is %d:\n%s", pid, r)
	}
	if o.daemonPid() != pid {
		t.Error("the first daemon did not survive the second's attempt")
	}
}

// TestDaemonMetrics reads /metrics over the socket after a launch: the
// launch is counted and the running container is listed by state.
func TestDaemonMetrics(t *testing.T) {
	needOak(t, true)
	o := newDaemonOak(t)
	id := o.runD(rootfsDir, "/bin/sleep", "600")
	o.waitRunning(id)
	c := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return net.Dial("unix", filepath.Join(o.root, "oak.sock"))
	}}}
	resp, err := c.Get("http://oak/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`oak_containers{state="running"} 1`, `oak_launches_total{result="ok"} 1`,
		`oak_launch_seconds_count 1`, `oak_api_requests_total{route="POST /v1/containers",code="201"} 1`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %s:\n%s", want, b)
		}
	}
}

// TestDaemonCannotStart: when the daemon the CLI starts fails, the verb
// fails at once with the daemon's reason and where its log is.
func TestDaemonCannotStart(t *testing.T) {
	needOak(t, true)
	o := newDaemonOak(t)
	// A directory where the socket goes: the daemon cannot listen there.
	if err := os.MkdirAll(filepath.Join(o.root, "oak.sock", "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	r := o.run("ps")
	if r.code != 125 || !strings.Contains(r.stderr, "start daemon for "+o.root) ||
		!strings.Contains(r.stderr, "oak.sock") || !strings.Contains(r.stderr, "daemon.log") {
		t.Errorf("ps with a daemon that cannot listen:\n%s", r)
	}
	if o.daemonPid() != 0 {
		t.Error("a daemon that could not listen still holds the root")
	}
	os.RemoveAll(filepath.Join(o.root, "oak.sock"))
}

// TestDaemonStartRace: CLIs started together on a fresh root all get an
// answer, from one daemon; the daemons that lost the race are gone.
func TestDaemonStartRace(t *testing.T) {
	needOak(t, true)
	o := newDaemonOak(t)
	const n = 6
	var bgs []*bg
	for i := 0; i < n; i++ {
		bgs = append(bgs, o.start("ps", "-a"))
	}
	for i, b := range bgs {
		r, ok := b.wait(2 * oakTimeout)
		if !ok || r.code != 0 {
			t.Errorf("oak ps #%d of %d started together: done %v\n%s", i, n, ok, r)
		}
	}
	pid := o.daemonPid()
	if pid == 0 {
		t.Fatal("no daemon after the race")
	}
	// Every oak daemon of this root but the winner has exited.
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil || p == pid {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 3 && args[0] == oakBin && args[2] == o.root && args[3] == "daemon" {
			t.Errorf("a second daemon of the root, pid %d, is still there: %q", p, args)
		}
	}
}

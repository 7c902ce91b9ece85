//go:build linux

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// restarts reads ref's status, exit code and restart count with oak inspect.
func (o *oakEnv) restarts(ref string) (status string, exitCode, count int) {
	o.t.Helper()
	r := o.run("inspect", "--type", "container", "--format", "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}", ref)
	if r.code != 0 {
		o.t.Fatalf("inspect %s\n%s", ref, r)
	}
	if _, err := fmt.Sscan(r.stdout, &status, &exitCode, &count); err != nil {
		o.t.Fatalf("inspect %s: %v\n%s", ref, err, r)
	}
	return status, exitCode, count
}

// supervisors lists the host's live oak supervisors of container id.
func supervisors(id string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		args := strings.Split(string(b), "\x00")
		for i, a := range args {
			if a == "_supervise" && i+1 < len(args) && args[i+1] == id {
				if st, ok := readStat(pid); ok && st.state != 'Z' {
					pids = append(pids, pid)
				}
			}
		}
	}
	return pids
}

// waitNoSupervisor waits until container id has no supervisor left.
func waitNoSupervisor(t *testing.T, id string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(supervisors(id)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("container %s still has supervisors %v", id, supervisors(id))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLog waits until the log of ref holds s: for a command that traps
// a signal, that it has set its trap.
func (o *oakEnv) waitLog(ref, s string) {
	o.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(o.run("logs", ref).stdout, s) {
		if time.Now().After(deadline) {
			o.t.Fatalf("no %q in the log of %s after 20s", s, ref)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// oak stop sends SIGTERM first and SIGKILL after -t: a command that traps
// TERM (and says so) and goes on is killed, status 137.
func TestStopEscalates(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	id := o.runD(rootfsDir, "/bin/sh", "-c", "trap 'echo got TERM' TERM; echo up; while :; do sleep 0.1; done")
	e := o.waitRunning(id)
	init := hostProc{e.Pid, 0}
	if st, ok := readStat(e.Pid); ok {
		init.start = st.start
	}
	o.waitLog(id, "up")
	r := o.run("stop", "-t", "1", id)
	if r.code != 0 || strings.TrimSpace(r.stdout) != id {
		t.Fatalf("oak stop\n%s", r)
	}
	status, code, _ := o.restarts(id)
	if status != "exited" || code != 137 {
		t.Errorf("after stop -t 1 of a command ignoring TERM: %s (%d), want exited (137)", status, code)
	}
	if init.alive() {
		t.Errorf("the container's init %d is alive after oak stop returned", init.pid)
	}
	if logs := o.run("logs", id).stdout; !strings.Contains(logs, "got TERM") {
		t.Errorf("the command never saw SIGTERM before the SIGKILL: log %q", logs)
	}
	// Stopping it again does nothing and succeeds, as docker's.
	if r := o.run("stop", id); r.code != 0 {
		t.Errorf("stop of an exited container\n%s", r)
	}
	if r := o.run("stop", "nosuch"); r.code != 1 || !strings.Contains(r.stderr, "no such container: nosuch") {
		t.Errorf("stop of a missing container\n%s", r)
	}
}

// A command that dies of SIGTERM ends oak stop with status 143, long
// before a SIGKILL at -t 600 would have come.
func TestStopTerm(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	id := o.runD(rootfsDir, "/bin/sleep", "1000")
	e := o.waitRunning(id)
	waitChildComm(t, e.Pid, "sleep", 10*time.Second)
	if r := o.run("stop", "-t", "600", id); r.code != 0 {
		t.Fatalf("oak stop\n%s", r)
	}
	if status, code, _ := o.restarts(id); status != "exited" || code != 143 {
		t.Errorf("after stop: %s (%d), want exited (143)", status, code)
	}
	// -s picks another first signal.
	id = o.runD(rootfsDir, "/bin/sh", "-c", "trap 'exit 5' USR2; echo up; while :; do sleep 0.1; done")
	o.waitLog(id, "up")
	if r := o.run("stop", "-s", "USR2", "-t", "600", id); r.code != 0 {
		t.Fatalf("oak stop -s USR2\n%s", r)
	}
	if status, code, _ := o.restarts(id); status != "exited" || code != 5 {
		t.Errorf("after stop -s USR2: %s (%d), want exited (5) from the trap", status, code)
	}
}

// An image's StopSignal is what oak stop sends first.
func TestStopSignalOfImage(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	cfg := v1.Config{Cmd: []string{"/bin/sh", "-c", "trap 'echo got USR1; exit 7' USR1; echo up; while :; do sleep 0.1; done"},
		Env: []string{"PATH=/bin"}, StopSignal: "SIGUSR1"}
	archive := writeDockerSave(t, filepath.Join(imageDir(t), "stopper.tar"), "oak.test/stopper:1", imageOf(t, cfg, greeterLayers(t)...))
	if r := o.run("image", "import", archive); r.code != 0 {
		t.Fatal(r)
	}
	id := o.runD("oak.test/stopper:1")
	o.waitLog(id, "up")
	if r := o.run("stop", "-t", "600", id); r.code != 0 {
		t.Fatal(r)
	}
	if status, code, _ := o.restarts(id); status != "exited" || code != 7 {
		t.Errorf("after stop: %s (%d), want exited (7) from the USR1 trap", status, code)
	}
}

// oak start runs a stopped container's command again with the same
// volume; -a prints its output and exits with its status; oak wait
// prints the status of a later run; oak restart starts a running one anew.
func TestStartAgain(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	o.newVolume("runs", "16m")
	cmd := "echo run >> /data/runs; echo $(wc -l < /data/runs) runs; echo to stderr >&2; exit 4"
	r := o.run("run", "--name", "again", "-v", "runs:/data", "-e", "K=v", rootfsDir, "/bin/sh", "-c", cmd)
	if r.code != 4 || r.stdout != "1 runs\n" {
		t.Fatalf("first run\n%s", r)
	}
	r = o.run("start", "-a", "again")
	if r.code != 4 || r.stdout != "2 runs\n" || r.stderr != "to stderr\n" {
		t.Fatalf("start -a: want 2 runs and exit 4\n%s", r)
	}
	r = o.run("start", "again")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "again" {
		t.Fatalf("start\n%s", r)
	}
	if r := o.run("wait", "again"); r.code != 0 || r.stdout != "4\n" {
		t.Errorf("wait after start\n%s", r)
	}
	if logs := o.run("logs", "again"); logs.stdout != "1 runs\n2 runs\n3 runs\n" {
		t.Errorf("the log should hold every run's output\n%s", logs)
	}
	// restart of a running container: a new init, running, with the
	// grants it was created with.
	id := o.runD("--name", "rs", "--egress", "127.0.0.1:9", rootfsDir, "/bin/sleep", "1000")
	first := o.waitRunning(id)
	grants := o.run("grants", "rs")
	if r := o.run("restart", "-t", "1", "rs"); r.code != 0 {
		t.Fatal(r)
	}
	second := o.waitRunning(id)
	if second.Pid == first.Pid {
		t.Errorf("restart: still the same init %d", first.Pid)
	}
	if again := o.run("grants", "rs"); again.code != 0 || again.stdout != grants.stdout || !strings.Contains(again.stdout, "egress 127.0.0.1:9") {
		t.Errorf("grants after restart %q, before %q\n%s", again.stdout, grants.stdout, again)
	}
	if r := o.run("start", "rs"); r.code != 0 {
		t.Errorf("start of a running container should do nothing\n%s", r)
	}
	if r := o.run("start", "-a", "rs"); r.code != 125 || !strings.Contains(r.stderr, "already running") {
		t.Errorf("start -a of a running container\n%s", r)
	}
}

// oak wait blocks until the container ends and prints its status; it
// prints an exited container's status at once; a missing one fails.
func TestWait(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	id := o.runD(rootfsDir, "/bin/sh", "-c", "trap 'exit 9' USR1; echo up; while :; do sleep 0.1; done")
	o.waitLog(id, "up")
	w := o.start("wait", id)
	if _, done := w.wait(300 * time.Millisecond); done {
		t.Fatalf("oak wait returned while the container runs\n%s", w.res)
	}
	o.run("kill", "-s", "USR1", id)
	r, ok := w.wait(30 * time.Second)
	if !ok || r.code != 0 || r.stdout != "9\n" {
		t.Fatalf("oak wait: want 9\n%s", r)
	}
	if r := o.run("wait", id, "nosuch"); r.code != 1 || r.stdout != "9\n" || !strings.Contains(r.stderr, "no such container: nosuch") {
		t.Errorf("wait of an exited and a missing container\n%s", r)
	}
}

// runStamps returns the times at which the container's runs printed
// "run", from oak logs -t.
func (o *oakEnv) runStamps(ref string) []time.Time {
	o.t.Helper()
	r := o.run("logs", "-t", ref)
	var ts []time.Time
	for _, l := range lines(r.stdout) {
		s, text, _ := strings.Cut(l, " ")
		at, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || text != "run" {
			o.t.Fatalf("logs -t line %q", l)
		}
		ts = append(ts, at)
	}
	return ts
}

// --restart on-failure:3 restarts a failing command exactly 3 times,
// waiting 100 ms, then 200, then 400 before the restarts; the count shows
// in ps. A command that succeeds is not restarted.
func TestRestartOnFailure(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	id := o.runD("--restart", "on-failure:3", rootfsDir, "/bin/sh", "-c", "echo run; exit 3")
	o.waitExited(id, 60*time.Second)
	waitNoSupervisor(t, id)
	status, code, count := o.restarts(id)
	if status != "exited" || code != 3 || count != 3 {
		t.Errorf("on-failure:3: %s (%d) after %d restarts; want exited (3) after 3", status, code, count)
	}
	ts := o.runStamps(id)
	if len(ts) != 4 {
		t.Fatalf("%d runs, want 4", len(ts))
	}
	for i, min := range []time.Duration{100, 200, 400} {
		if gap := ts[i+1].Sub(ts[i]); gap < min*time.Millisecond {
			t.Errorf("restart %d came %v after the run before; the back-off is %v", i+1, gap, min*time.Millisecond)
		}
	}

	ok := o.runD("--restart", "on-failure", rootfsDir, "/bin/sh", "-c", "echo run")
	o.waitExited(ok, 30*time.Second)
	waitNoSupervisor(t, ok)
	if status, code, count := o.restarts(ok); status != "exited" || code != 0 || count != 0 {
		t.Errorf("on-failure, exit 0: %s (%d) after %d restarts; want no restart", status, code, count)
	}
}

// --restart always (and unless-stopped) restarts a crashing command until
// oak stop, which stops it for good: no supervisor is left to start it
// again. A SIGKILL from oak kill does the same, as docker's kill.
func TestRestartAlwaysStop(t *testing.T) {
	needOak(t, true)
	for _, c := range []struct{ policy, verb string }{{"always", "stop"}, {"unless-stopped", "stop"}, {"always", "kill"}} {
		c := c
		t.Run(c.policy+" "+c.verb, func(t *testing.T) {
			t.Parallel()
			o := newOak(t)
			id := o.runD("--restart", c.policy, rootfsDir, "/bin/sh", "-c", "echo run; sleep 0.2; exit 1")
			o.waitFor(id, 60*time.Second, "restarted twice", func(e psEntry, found bool) bool {
				_, _, n := o.restarts(id)
				return found && n >= 2
			})
			// oak kill, like docker's, only reaches a running container:
			// one waiting out its back-off is refused, and tried again.
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				r := o.run(c.verb, id)
				if r.code == 0 {
					break
				}
				if !strings.Contains(r.stderr, "not running") || time.Now().After(deadline) {
					t.Fatal(r)
				}
			}
			o.waitExited(id, 30*time.Second)
			waitNoSupervisor(t, id)
			status, _, n := o.restarts(id)
			if status != "exited" {
				t.Errorf("after %s: %s", c.verb, status)
			}
			runs := len(lines(o.run("logs", id).stdout))
			if runs != n+1 {
				t.Errorf("%d runs in the log after %d restarts", runs, n)
			}
			// oak start makes the policy apply again, from a count of 0.
			if r := o.run("start", id); r.code != 0 {
				t.Fatal(r)
			}
			o.waitFor(id, 60*time.Second, "restarted after start", func(e psEntry, found bool) bool {
				_, _, m := o.restarts(id)
				return found && m >= 1
			})
			if r := o.run("stop", id); r.code != 0 {
				t.Fatal(r)
			}
		})
	}
}

// run -d --rm removes the container when it exits or is stopped; --rm
// and a restart policy conflict.
func TestDetachedRm(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	id := o.runD("--rm", rootfsDir, "/bin/sh", "-c", "exit 0")
	o.waitFor(id, 30*time.Second, "removed", func(e psEntry, found bool) bool { return !found })
	id = o.runD("--rm", rootfsDir, "/bin/sleep", "1000")
	o.waitRunning(id)
	if r := o.run("stop", id); r.code != 0 {
		t.Fatal(r)
	}
	if _, found := o.find(id); found {
		t.Errorf("run -d --rm: still listed after oak stop")
	}
	if ds := o.containerDirs(); len(ds) != 0 {
		t.Errorf("containers/ after run -d --rm and stop: %v", ds)
	}
	r := o.run("run", "-d", "--rm", "--restart", "always", rootfsDir, "/bin/true")
	if r.code != 125 || !strings.Contains(r.stderr, "conflict") {
		t.Errorf("--rm with --restart always\n%s", r)
	}
	for _, bad := range []string{"sometimes", "always:3", "on-failure:x", "on-failure:-1"} {
		if r := o.run("run", "--restart", bad, rootfsDir, "/bin/true"); r.code != 125 || !strings.Contains(r.stderr, "invalid --restart") {
			t.Errorf("--restart %s\n%s", bad, r)
		}
	}
}

// A foreground oak run --restart always that its user interrupts (SIGINT
// forwarded to the command) ends with the command's status instead of
// restarting it.
func TestRestartForegroundInterrupted(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	b := o.start("run", "--name", "fg", "--restart", "always", rootfsDir, "/bin/sleep", "1000")
	e := o.waitRunning("fg")
	waitChildComm(t, e.Pid, "sleep", 10*time.Second)
	b.cmd.Process.Signal(syscall.SIGINT)
	r, ok := b.wait(30 * time.Second)
	if !ok || r.code != 130 {
		t.Fatalf("oak run --restart always after SIGINT: want exit 130\n%s", r)
	}
	if status, code, n := o.restarts("fg"); status != "exited" || code != 130 || n != 0 {
		t.Errorf("after SIGINT: %s (%d) after %d restarts; want exited (130), none", status, code, n)
	}
}

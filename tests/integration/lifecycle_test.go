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

// oak's exit status is the container's main process's: its exit code, or
// 128+N if a signal N killed it.
func TestExitStatus(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	for _, c := range []struct {
		script string
		want   int
	}{
		{"exit 0", 0},
		{"exit 7", 7},
		{"exit 255", 255},
		{"kill -9 $$", 137},
		{"kill -TERM $$", 143},
		{"kill -SEGV $$", 139},
	} {
		c := c
		t.Run(c.script, func(t *testing.T) {
			o := o.sub(t)
			t.Parallel()
			r := o.run("run", rootfsDir, "/bin/sh", "-c", c.script)
			if r.code != c.want {
				t.Errorf("sh -c %q: oak exit status %d, want %d\n%s", c.script, r.code, c.want, r)
			}
		})
	}
}

// The container's stdout and stderr reach oak's stdout and stderr, each
// unmixed and unadorned.
func TestStdoutStderr(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	r := o.run("run", rootfsDir, "/bin/sh", "-c", "echo out; echo err >&2; echo out2")
	if r.code != 0 || r.stdout != "out\nout2\n" || r.stderr != "err\n" {
		t.Errorf("want stdout \"out\\nout2\\n\" and stderr \"err\\n\"\n%s", r)
	}
	// A default command runs through PATH.
	r = o.run("run", rootfsDir, "echo", "via", "PATH")
	if r.code != 0 || r.stdout != "via PATH\n" {
		t.Errorf("echo through PATH\n%s", r)
	}
}

// SIGTERM and SIGINT sent to a foreground oak reach the container's main
// process: sleep dies of them and oak reports 143 or 130, promptly.
func TestSignalForwarding(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	for _, c := range []struct {
		sig  syscall.Signal
		want int
	}{{syscall.SIGTERM, 143}, {syscall.SIGINT, 130}} {
		c := c
		t.Run(c.sig.String(), func(t *testing.T) {
			o := o.sub(t)
			t.Parallel()
			name := "sig" + strings.ToLower(strings.ReplaceAll(c.sig.String(), " ", ""))
			b := o.start("run", "--name", name, rootfsDir, "/bin/sleep", "100")
			e := o.waitRunning(name)
			waitChildComm(t, e.Pid, "sleep", 10*time.Second)
			sent := time.Now()
			b.cmd.Process.Signal(c.sig)
			r, ok := b.wait(10 * time.Second)
			if !ok {
				t.Fatalf("oak did not return within 10 s of %v", c.sig)
			}
			if r.code != c.want {
				t.Errorf("after %v: oak exit status %d, want %d\n%s", c.sig, r.code, c.want, r)
			}
			if d := time.Since(sent); d > 3*time.Second {
				t.Errorf("oak took %v to return after %v", d, c.sig)
			}
		})
	}
}

// Signals reach the command's whole process group, as a terminal's Ctrl-C
// reaches a foreground job: SIGINT to a foreground oak ends a shell's
// running child at once, not when it finishes. A foreground oak forwards
// SIGUSR1, SIGUSR2 and SIGWINCH too instead of dying of them, and oak kill
// -s delivers them to a detached container's command.
func TestSignalsReachCommandGroup(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	// shellChild waits for the container's sh and its child called name.
	shellChild := func(t *testing.T, o *oakEnv, ref, name string) {
		t.Helper()
		e := o.waitRunning(ref)
		sh := waitChildComm(t, e.Pid, "sh", 10*time.Second)
		waitChildComm(t, sh, name, 10*time.Second)
	}
	t.Run("SIGINT ends the running child", func(t *testing.T) {
		o := o.sub(t)
		t.Parallel()
		b := o.start("run", "--name", "intgroup", rootfsDir, "/bin/sh", "-c", "sleep 30; echo after")
		shellChild(t, o, "intgroup", "sleep")
		sent := time.Now()
		b.cmd.Process.Signal(syscall.SIGINT)
		r, ok := b.wait(10 * time.Second)
		if !ok {
			t.Fatal("oak did not return within 10 s of SIGINT: the shell's sleep did not get it")
		}
		if d := time.Since(sent); d > 3*time.Second {
			t.Errorf("oak took %v to return after SIGINT", d)
		}
		if r.code != 130 || strings.Contains(r.stdout, "after") {
			t.Errorf("after SIGINT: want exit 130 and no \"after\"\n%s", r)
		}
	})
	t.Run("foreground USR1 USR2 WINCH", func(t *testing.T) {
		o := o.sub(t)
		t.Parallel()
		script := `trap "echo got USR1" USR1; trap "echo got USR2" USR2; trap "echo got WINCH" WINCH
			trap "exit 7" TERM; echo ready; while :; do sleep 0.1; done`
		b := o.start("run", "--name", "usrsigs", rootfsDir, "/bin/sh", "-c", script)
		shellChild(t, o, "usrsigs", "sleep")
		for _, c := range []struct {
			sig  syscall.Signal
			name string
		}{{syscall.SIGUSR1, "USR1"}, {syscall.SIGUSR2, "USR2"}, {syscall.SIGWINCH, "WINCH"}} {
			sig := c.sig
			b.cmd.Process.Signal(sig)
			want := "got " + c.name
			deadline := time.Now().Add(5 * time.Second)
			for {
				if out, _ := b.output(); strings.Contains(out, want) {
					break
				}
				if r, done := b.wait(0); done {
					t.Fatalf("oak ended on %v instead of forwarding it:\n%s", sig, r)
				}
				if time.Now().After(deadline) {
					out, _ := b.output()
					t.Fatalf("no %q within 5 s of sending oak %v; output %q", want, sig, out)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		b.cmd.Process.Signal(syscall.SIGTERM)
		if r, ok := b.wait(10 * time.Second); !ok || r.code != 7 {
			t.Errorf("after SIGTERM: want the trap's exit 7 (returned %v)\n%s", ok, r)
		}
	})
	t.Run("oak kill -s USR1", func(t *testing.T) {
		o := o.sub(t)
		t.Parallel()
		id := o.runD("--name", "killusr1", rootfsDir, "/bin/sh", "-c", `trap "echo got USR1; exit 3" USR1; sleep 30 & wait`)
		shellChild(t, o, id, "sleep")
		if r := o.run("kill", "-s", "USR1", id); r.code != 0 {
			t.Fatalf("oak kill -s USR1:\n%s", r)
		}
		if e := o.waitExited(id, 10*time.Second); e.ExitCode != 3 {
			t.Errorf("exit status %d, want the trap's 3", e.ExitCode)
		}
		if r := o.run("logs", id); !strings.Contains(r.stdout, "got USR1") {
			t.Errorf("the trap did not run:\n%s", r)
		}
	})
}

// When oak itself is SIGKILLed, its container dies with it; the next
// oak ps -a does not show it running; no cgroup is left behind.
func TestOakKilled(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	b := o.start("run", "--name", "victim", rootfsDir, "/bin/sh", "-c", "sleep 300 & exec sleep 301")
	e := o.waitRunning("victim")
	ns, err := pidNS(e.Pid)
	if err != nil {
		t.Fatal(err)
	}
	// init, sleep 301 (the main process, exec'd by sh) and sleep 300.
	deadline := time.Now().Add(10 * time.Second)
	var procs []hostProc
	for {
		procs = procsInNS(ns)
		if len(procs) >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(procs) < 3 {
		t.Fatalf("want 3 processes in the container, found %d", len(procs))
	}
	if cgs := cgroupDirs(e.ID); len(cgs) == 0 {
		t.Logf("no cgroup directory named after %s under /sys/fs/cgroup/*/oak/ while running", e.ID)
	}

	b.cmd.Process.Kill()
	if _, ok := b.wait(10 * time.Second); !ok {
		t.Fatal("oak survived SIGKILL")
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		var alive []int
		for _, p := range procs {
			if p.alive() {
				alive = append(alive, p.pid)
			}
		}
		if len(alive) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("container processes %v still alive 10 s after oak was SIGKILLed", alive)
		}
		time.Sleep(50 * time.Millisecond)
	}

	e2, ok := o.find("victim")
	if ok && e2.Status == "running" {
		t.Errorf("oak ps -a shows the container of a killed oak as running: %+v", e2)
	}
	deadline = time.Now().Add(5 * time.Second)
	for len(cgroupDirs(e.ID)) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if left := cgroupDirs(e.ID); len(left) > 0 {
		t.Errorf("cgroup directories of the dead container remain: %v", left)
	}
}

// cgroupDirs lists the directories under /sys/fs/cgroup/*/oak/ (and
// /sys/fs/cgroup/oak/) whose name contains id or its 12-character prefix.
func cgroupDirs(id string) []string {
	short := id
	if len(short) > 12 {
		short = short[:12]
	}
	var out []string
	for _, pat := range []string{"/sys/fs/cgroup/*/oak/*", "/sys/fs/cgroup/oak/*", "/sys/fs/cgroup/*/oak/*/*"} {
		ms, _ := filepath.Glob(pat)
		for _, m := range ms {
			if fi, err := os.Stat(m); err == nil && fi.IsDir() && strings.Contains(filepath.Base(m), short) {
				out = append(out, m)
			}
		}
	}
	return out
}

// ps, logs, kill and rm on a detached container; --rm leaves nothing.
func TestPsLogsKillRm(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	id := o.runD("--name", "svc", rootfsDir, "/bin/sh", "-c", "echo hello; echo oops >&2; exec sleep 100")

	// ps shows it running, with its fields.
	running, err := o.ps(false)
	if err != nil {
		t.Fatal(err)
	}
	var e *psEntry
	for i := range running {
		if running[i].ID == id {
			e = &running[i]
		}
	}
	if e == nil {
		t.Fatalf("oak ps does not list %s: %+v", id, running)
	}
	if e.Name != "svc" || e.Status != "running" || e.Pid <= 0 || len(e.Created) == 0 {
		t.Errorf("oak ps entry: %+v, want name svc, status running, a pid and created", *e)
	}
	var cmd string
	if err := json.Unmarshal(e.Command, &cmd); err != nil || !strings.Contains(cmd, "echo hello") {
		t.Errorf("oak ps command field %s: want a string holding the command line (%v)", e.Command, err)
	}
	if err := syscall.Kill(e.Pid, 0); err != nil {
		t.Errorf("pid %d from oak ps: %v", e.Pid, err)
	}

	// logs, by name and by id, once the output has been written.
	deadline := time.Now().Add(10 * time.Second)
	var r result
	for {
		r = o.run("logs", "svc")
		if strings.Contains(r.stdout, "hello") && strings.Contains(r.stderr, "oops") || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r.code != 0 || r.stdout != "hello\n" || r.stderr != "oops\n" {
		t.Errorf("oak logs svc: want stdout \"hello\\n\" and stderr \"oops\\n\"\n%s", r)
	}
	if r2 := o.run("logs", id); r2.stdout != r.stdout || r2.stderr != r.stderr {
		t.Errorf("oak logs by id differs from by name\n%s", r2)
	}

	// kill (SIGKILL by default): exited, 137, gone from plain ps.
	if r := o.run("kill", "svc"); r.code != 0 {
		t.Errorf("oak kill svc\n%s", r)
	}
	x := o.waitExited("svc", 10*time.Second)
	if x.ExitCode != 137 {
		t.Errorf("exit_code after oak kill: %d, want 137", x.ExitCode)
	}
	if es, err := o.ps(false); err != nil {
		t.Error(err)
	} else {
		for _, e := range es {
			if e.ID == id {
				t.Errorf("oak ps (without -a) lists the exited container: %+v", e)
			}
		}
	}

	// rm: gone from ps -a and from the state root.
	if r := o.run("rm", "svc"); r.code != 0 {
		t.Errorf("oak rm svc\n%s", r)
	}
	if e, ok := o.find(id); ok {
		t.Errorf("oak ps -a still lists the removed container: %+v", e)
	}
	for _, d := range o.containerDirs() {
		if strings.HasPrefix(d, id[:12]) || strings.HasPrefix(id, d) {
			t.Errorf("containers/%s remains after oak rm", d)
		}
	}

	t.Run("kill -s TERM", func(t *testing.T) {
		o := o.sub(t)
		id := o.runD(rootfsDir, "/bin/sleep", "100")
		e := o.waitRunning(id)
		waitChildComm(t, e.Pid, "sleep", 10*time.Second)
		if r := o.run("kill", "-s", "TERM", id); r.code != 0 {
			t.Errorf("oak kill -s TERM\n%s", r)
		}
		if x := o.waitExited(id, 10*time.Second); x.ExitCode != 143 {
			t.Errorf("exit_code after SIGTERM: %d, want 143", x.ExitCode)
		}
	})

	t.Run("rm -f running", func(t *testing.T) {
		o := o.sub(t)
		id := o.runD("--name", "doomed", rootfsDir, "/bin/sleep", "100")
		e := o.waitRunning(id)
		st, _ := readStat(e.Pid)
		p := hostProc{e.Pid, st.start}
		if r := o.run("rm", "-f", "doomed"); r.code != 0 {
			t.Errorf("oak rm -f doomed\n%s", r)
		}
		if e, ok := o.find(id); ok {
			t.Errorf("oak ps -a lists the removed container: %+v", e)
		}
		deadline := time.Now().Add(5 * time.Second)
		for p.alive() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if p.alive() {
			t.Errorf("the container's init %d survived oak rm -f", p.pid)
		}
	})

	t.Run("--rm", func(t *testing.T) {
		o := newOak(t)
		r := o.run("run", "--rm", rootfsDir, "/bin/sh", "-c", "echo bye")
		if r.code != 0 || r.stdout != "bye\n" {
			t.Errorf("oak run --rm\n%s", r)
		}
		if ds := o.containerDirs(); len(ds) != 0 {
			t.Errorf("containers/ after oak run --rm: %v, want empty", ds)
		}
		r = o.run("run", "--rm", rootfsDir, "/bin/sh", "-c", "exit 3")
		if r.code != 3 {
			t.Errorf("oak run --rm exit status\n%s", r)
		}
		if ds := o.containerDirs(); len(ds) != 0 {
			t.Errorf("containers/ after a failing oak run --rm: %v, want empty", ds)
		}
	})
}

// oak demo-rootfs writes a runnable image, and `demo` names the built-in
// one.
func TestDemoRootfs(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	dir := filepath.Join(t.TempDir(), "img")
	r := o.run("demo-rootfs", dir)
	if r.code != 0 {
		t.Fatalf("oak demo-rootfs\n%s", r)
	}
	for _, d := range []string{"proc", "dev", "tmp", "etc", "bin"} {
		if fi, err := os.Stat(filepath.Join(dir, d)); err != nil || !fi.IsDir() {
			t.Errorf("demo image has no /%s directory", d)
		}
	}
	os.Chmod(filepath.Dir(dir), 0o755)
	r = o.run("run", dir, "/bin/sh", "-c", "echo hi from demo")
	if r.code != 0 || r.stdout != "hi from demo\n" {
		t.Errorf("oak run on the demo image\n%s", r)
	}
	r = o.run("run", "demo", "echo", "hi")
	if r.code != 0 || r.stdout != "hi\n" {
		t.Errorf("oak run demo echo hi\n%s", r)
	}
	t.Logf("shared test image: %s", rootfsNote)
}

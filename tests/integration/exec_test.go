//go:build linux

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// oak exec starts a process that joins the container: the same
// namespaces, root, cgroups and seccomp filter as the container's command
// (pid 2), the container's capabilities for its user, no descriptor but
// 0, 1 and 2, counted against its limits, and served by its network grants.
func TestExec(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	host := newNetHostListener(t, "tcp", "127.0.0.1:0", false)
	id := o.runD("--egress", host.addr(), rootfsDir, "/bin/sleep", "300")
	o.waitRunning(id)

	t.Run("same namespaces and groups as the command", func(t *testing.T) {
		var script strings.Builder
		for _, ns := range []string{"mnt", "pid", "net", "ipc", "uts", "user", "cgroup"} {
			fmt.Fprintf(&script, "[ \"$(readlink /proc/self/ns/%s)\" = \"$(readlink /proc/2/ns/%s)\" ] || echo differs %s\n", ns, ns, ns)
		}
		script.WriteString("[ \"$(cat /proc/self/cgroup)\" = \"$(cat /proc/2/cgroup)\" ] || echo differs cgroup\n")
		script.WriteString("[ \"$(stat -L -c %d:%i /proc/self/root)\" = \"$(stat -L -c %d:%i /proc/2/root)\" ] || echo differs root\n")
		script.WriteString("grep -E '^(Seccomp|Seccomp_filters|NoNewPrivs|CapEff|CapBnd):' /proc/self/status | tr -s '\\t ' ' '\n")
		r := o.run("exec", id, "/bin/sh", "-c", script.String())
		want := "NoNewPrivs: 1\nSeccomp: 2\nSeccomp_filters: 1\nCapEff: 00000000000001fb\nCapBnd: 00000000000001fb\n"
		got := strings.Join(sortedLines(r.stdout), "\n") + "\n"
		if r.code != 0 || got != strings.Join(sortedLines(want), "\n")+"\n" {
			t.Errorf("exec'd process, compared with the container's command:\n%s", r)
		}
	})
	t.Run("no descriptors of the host", func(t *testing.T) {
		r := o.run("exec", "-e", noCgroupFiles, id, "/bin/probe", "fds")
		var fds []string
		for _, l := range lines(r.stdout) {
			fd, _, _ := strings.Cut(l, " ")
			fds = append(fds, fd)
		}
		if r.code != 0 || strings.Join(fds, ",") != "0,1,2" {
			t.Errorf("exec'd probe holds descriptors %v, want only 0,1,2\n%s", fds, r)
		}
	})
	t.Run("user and exit status", func(t *testing.T) {
		r := o.run("exec", "-u", "nobody", "-w", "/tmp", "-e", "X=y", id, "/bin/sh", "-c",
			"echo $(id -u) $PWD $X $(grep CapEff /proc/self/status | cut -f2); exit 7")
		if r.code != 7 || strings.TrimSpace(r.stdout) != "65534 /tmp y 0000000000000000" {
			t.Errorf("exec -u nobody -w /tmp -e X=y: want \"65534 /tmp y 0000000000000000\" and status 7\n%s", r)
		}
	})
	t.Run("command not found", func(t *testing.T) {
		r := o.run("exec", id, "/no/such")
		if r.code != 127 || !strings.Contains(r.stderr, "/no/such") {
			t.Errorf("exec of a missing command: want status 127 naming it\n%s", r)
		}
	})
	t.Run("grants serve it", func(t *testing.T) {
		r := o.run("exec", id, "/bin/probe", "connect", host.addr(), "from-exec")
		if strings.TrimSpace(r.stdout) != "ok" {
			t.Errorf("exec'd connect to the granted %s:\n%s", host.addr(), r)
		}
		r = o.run("exec", id, "/bin/probe", "connect", "127.0.0.1:9", "x")
		if strings.TrimSpace(r.stdout) != "err EACCES" {
			t.Errorf("exec'd connect outside the grant: want err EACCES\n%s", r)
		}
	})
	t.Run("counted by --pids", func(t *testing.T) {
		// init and sleep are 2 of 4: the exec'd shell is the third, its
		// first child the fourth, the second cannot be made.
		small := o.runD("--pids", "4", rootfsDir, "/bin/sleep", "300")
		o.waitRunning(small)
		r := o.run("exec", small, "/bin/sh", "-c", "sleep 5 & sleep 5 & wait; echo done")
		if !strings.Contains(r.stderr+r.stdout, "can't fork") && !strings.Contains(r.stderr+r.stdout, "Resource temporarily unavailable") {
			t.Errorf("a fifth task in a container limited to 4 was made:\n%s", r)
		}
	})
	t.Run("signals reach it", func(t *testing.T) {
		b := o.start("exec", id, "/bin/sh", "-c", "trap 'echo got TERM; exit 3' TERM; echo ready; while :; do sleep 0.1; done")
		deadline := time.Now().Add(20 * time.Second)
		for {
			if out, _ := b.output(); strings.Contains(out, "ready") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("exec'd shell never said ready")
			}
			time.Sleep(20 * time.Millisecond)
		}
		b.cmd.Process.Signal(syscall.SIGTERM)
		r, ok := b.wait(20 * time.Second)
		if !ok || r.code != 3 || !strings.Contains(r.stdout, "got TERM") {
			t.Errorf("SIGTERM to oak exec: want the process to trap it and exit 3\n%s", r)
		}
	})
	t.Run("not running", func(t *testing.T) {
		o2 := o.sub(t)
		id2 := o2.runD(rootfsDir, "/bin/true")
		o2.waitExited(id2, 20*time.Second)
		r := o2.run("exec", id2, "/bin/true")
		if r.code == 0 || !strings.Contains(r.stderr, "not running") {
			t.Errorf("exec into an exited container: want a clear error\n%s", r)
		}
	})
}

// oak exec -t gives the process a terminal of Oak's: its size is the
// caller's, Ctrl-C reaches its foreground job, and the caller's terminal
// mode is restored afterwards.
func TestExecTerminal(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	id := o.runD(rootfsDir, "/bin/sleep", "300")
	o.waitRunning(id)

	terminalChecks(t, func(args ...string) []string {
		return append([]string{"--root", o.root, "exec", "-t", id}, args...)
	})
}

// oak run -t gives the command a terminal the same way.
func TestRunTerminal(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	terminalChecks(t, func(args ...string) []string {
		return append([]string{"--root", o.root, "run", "--rm", "-t", rootfsDir}, args...)
	})
}

// terminalChecks runs oak (with the arguments argv gives for a command)
// on a terminal the test plays the user of.
func terminalChecks(t *testing.T, argv func(args ...string) []string) {
	run := func(input string, args ...string) (string, *unix.Termios, *unix.Termios) {
		t.Helper()
		r := onTestTerminal(t, argv(args...), 500*time.Millisecond, input)
		return r.out, r.before, r.after
	}

	got, before, after := run("", "/bin/stty", "size")
	if !strings.Contains(got, "33 101") {
		t.Errorf("stty size on oak's terminal: %q, want 33 101", got)
	}
	if before.Lflag != after.Lflag || before.Iflag != after.Iflag {
		t.Errorf("the caller's terminal mode was not restored: lflag %#x → %#x", before.Lflag, after.Lflag)
	}
	start := time.Now()
	got, _, _ = run("\x03", "/bin/sh", "-c", "sleep 30; echo after")
	if time.Since(start) > 15*time.Second || strings.Contains(got, "after") {
		t.Errorf("Ctrl-C did not end the foreground sleep at once (%v): %q", time.Since(start), got)
	}
}

// terminalRun is what onTestTerminal saw: the terminal's output, oak's exit
// status, and the terminal's modes before and after.
type terminalRun struct {
	out           string
	code          int
	before, after *unix.Termios
}

// onTestTerminal runs oak with args on a terminal the test plays the user
// of (33 rows, 101 columns), typing each of inputs after a pause, and
// returns once oak has ended.
func onTestTerminal(t *testing.T, args []string, pause time.Duration, inputs ...string) terminalRun {
	t.Helper()
	return onTestTerminalAs(t, 0, args, pause, inputs...)
}

// onTestTerminalAs is onTestTerminal with oak run as uid (0: as the
// test), through the daemon, as oakEnv.as runs it.
func onTestTerminalAs(t *testing.T, uid uint32, args []string, pause time.Duration, inputs ...string) terminalRun {
	t.Helper()
	master, slave := openTestPTY(t)
	defer master.Close()
	unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 33, Col: 101})
	var r terminalRun
	r.before, _ = unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	cmd := exec.Command(oakBin, args...)
	if uid != 0 {
		cmd.Env = []string{"PATH=/usr/bin:/bin", "OAK_NO_DAEMON=0"}
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := make(chan string)
	go func() {
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		out <- b.String()
	}()
	for _, in := range inputs {
		if in != "" {
			time.Sleep(pause)
			master.Write([]byte(in))
		}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		slave.Close()
		t.Fatalf("oak %v did not end; the terminal showed %q", args, <-out)
	}
	r.after, _ = unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	slave.Close()
	r.out, r.code = <-out, cmd.ProcessState.ExitCode()
	return r
}

// openTestPTY opens a pseudo-terminal for the test to play the user's.
func openTestPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

// sortedLines is lines(s), sorted.
func sortedLines(s string) []string {
	ls := lines(s)
	slices.Sort(ls)
	return ls
}

// oak run -dit keeps a terminal in the supervisor; oak attach types into it
// and sees its output, the detach keys leave it running, and attach ends
// with the container's exit status when it ends.
func TestAttach(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	// A read loop rather than an interactive ash, whose line editor asks
	// the terminal for the cursor position and waits for an answer.
	id := o.runD("-it", rootfsDir, "/bin/sh", "-c", `while read -r l; do eval "$l"; done`)
	o.waitRunning(id)
	attach := func(input ...string) (string, int) {
		t.Helper()
		r := onTestTerminal(t, []string{"--root", o.root, "attach", id}, 300*time.Millisecond, input...)
		return r.out, r.code
	}
	got, code := attach("echo hi-$((40+2))\r", "\x10\x11")
	if code != 0 || !strings.Contains(got, "hi-42") || !strings.Contains(got, "detached") {
		t.Fatalf("attach, type, detach: exit %d, output %q", code, got)
	}
	if e, _ := o.find(id); e.Status != "running" {
		t.Fatalf("after detaching the container is %q, want running", e.Status)
	}
	got, code = attach("exit 3\r")
	if code != 3 {
		t.Errorf("attach when the shell exits 3: exit %d, output %q", code, got)
	}
	if r := o.run("logs", id); !strings.Contains(r.stdout, "hi-42") {
		t.Errorf("the terminal's output is not in the log:\n%s", r)
	}
	if r := o.run("attach", o.runD(rootfsDir, "/bin/sleep", "30")); r.code == 0 || !strings.Contains(r.stderr, "no terminal") {
		t.Errorf("attach to a container without a terminal: want a clear refusal\n%s", r)
	}
}

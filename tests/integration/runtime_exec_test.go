//go:build linux

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// oak-runtime exec and --preserve-fds, driven as conmon and containerd's
// shim drive runc, then through podman exec and ctr task exec.

// subreaperEnv makes the test binary a sub-reaper, as conmon and the shim
// are: it runs its arguments (an oak-runtime exec -d), waits for the pid
// the pid file (the variable's value) names as its own child, and prints
// "exit N" or "signal N".
const subreaperEnv = "OAK_TEST_SUBREAPER"

func init() {
	if pidFile := os.Getenv(subreaperEnv); pidFile != "" {
		os.Exit(subreaper(pidFile, os.Args[1:]))
	}
}

func subreaper(pidFile string, args []string) int {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Println("subreaper:", err)
		return 1
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Println("exec:", err)
		return 1
	}
	b, err := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(string(b))
	if err != nil || pid <= 0 {
		fmt.Printf("pid file: %q %v\n", b, err)
		return 1
	}
	var ws unix.WaitStatus
	for {
		// ECHILD if the pid were not ours: the contract is broken.
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			fmt.Println("wait:", err)
			return 1
		}
		break
	}
	if ws.Signaled() {
		fmt.Println("signal", int(ws.Signal()))
	} else {
		fmt.Println("exit", ws.ExitStatus())
	}
	return 0
}

// execDetached runs oak-runtime exec -d --pid-file under a sub-reaper and
// returns the proxy's pid (once written) and a function that waits for
// the sub-reaper's report.
func (r *rtEnv) execDetached(args ...string) (int, func() string) {
	r.t.Helper()
	pidFile := filepath.Join(r.t.TempDir(), "pid")
	full := append([]string{r.bin, "--root", r.root, "exec", "-d", "--pid-file", pidFile}, args...)
	cmd := exec.Command(os.Args[0], full...)
	cmd.Env = append(os.Environ(), subreaperEnv+"="+pidFile)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	wait := func() string {
		select {
		case <-done:
		case <-time.After(oakTimeout):
			cmd.Process.Kill()
			<-done
			r.t.Errorf("exec -d %v: no status within %v", args, oakTimeout)
		}
		return strings.TrimSpace(out.String())
	}
	deadline := time.Now().Add(oakTimeout)
	for {
		b, err := os.ReadFile(pidFile)
		if pid, _ := strconv.Atoi(string(b)); err == nil && pid > 0 {
			return pid, wait
		}
		select {
		case <-done:
			r.t.Fatalf("exec -d %v wrote no pid file:\n%s", args, out.String())
		default:
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("exec -d %v wrote no pid file within %v", args, oakTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// hostPidsOf lists the host's processes whose command line is exactly args.
func hostPidsOf(args ...string) []int {
	want := strings.Join(args, "\x00") + "\x00"
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && string(b) == want {
			out = append(out, pid)
		}
	}
	return out
}

// waitGone waits until no host process has the command line args.
func waitGone(t *testing.T, what string, args ...string) {
	t.Helper()
	deadline := time.Now().Add(oakTimeout)
	for len(hostPidsOf(args...)) > 0 {
		if time.Now().After(deadline) {
			t.Errorf("%s: %q still runs after %v", what, args, oakTimeout)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leftOver lists processes whose command line mentions s (a container id)
// and oak-runtime: supervisors and exec proxies left behind, and the
// caller's own helpers (conmon and its exit command) that still run
// oak-runtime. Those end shortly after the container, asynchronously, so
// it waits up to ten seconds for the list to empty.
func leftOver(s string) []string {
	deadline := time.Now().Add(10 * time.Second)
	for {
		var out []string
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			if _, err := strconv.Atoi(e.Name()); err != nil {
				continue
			}
			b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			if err == nil && bytes.Contains(b, []byte(s)) && bytes.Contains(b, []byte("oak-runtime")) {
				out = append(out, e.Name()+": "+strings.ReplaceAll(string(b), "\x00", " "))
			}
		}
		if len(out) == 0 || time.Now().After(deadline) {
			return out
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func writeProcess(t *testing.T, p *specs.Process) string {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "process.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// withoutCap is Oak's eight capabilities less one.
func withoutCap(drop string) []string {
	var out []string
	for _, c := range []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
		"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP"} {
		if c != drop {
			out = append(out, c)
		}
	}
	return out
}

// TestRuntimeExec: exec runs a process in a running container through its
// init, with the container's environment, user and capabilities or what
// --process and the flags say, never more than the container's root holds;
// without -d it exits with the process's status, with -d it leaves a proxy
// that its caller (a sub-reaper) waits for and signals.
func TestRuntimeExec(t *testing.T) {
	needOak(t, true)
	r := newRuntime(t)
	id := "x" + randHex(t)
	caps := withoutCap("CAP_FOWNER") // the container's root lacks FOWNER (bit 3)
	b := bundle(t, []string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Process.Env = append(s.Process.Env, "FOO=bar")
		s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	})
	if res := r.run(nil, "create", "--bundle", b, id); res.code != 0 {
		t.Fatalf("create: %s", res)
	}
	// Not yet started: nothing to exec in.
	if res := r.run(nil, "exec", id, "true"); res.code == 0 || !strings.Contains(res.stderr, "cannot exec in a created container") {
		t.Errorf("exec before start: %s", res)
	}
	if res := r.run(nil, "start", id); res.code != 0 {
		t.Fatalf("start: %s", res)
	}

	for _, c := range []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"status", []string{id, "sh", "-c", "echo hi $FOO; exit 3"}, 3, "hi bar\n"},
		{"zero", []string{id, "true"}, 0, ""},
		{"signal", []string{id, "sh", "-c", "kill -TERM $$"}, 128 + 15, ""},
		// The container's capabilities: Oak's eight less FOWNER.
		{"caps", []string{id, "grep", "CapEff", "/proc/self/status"}, 0, "CapEff:\t00000000000001f3\n"},
		{"flags", []string{"-u", "1000:1001", "--cwd", "/tmp", "-e", "X=1", id, "sh", "-c", "id -u; id -g; pwd; echo $X $FOO"}, 0, "1000\n1001\n/tmp\n1 bar\n"},
		// The command's own flags after the id are its own.
		{"command flags", []string{id, "sh", "-c", "echo $0", "-u"}, 0, "-u\n"},
	} {
		res := r.run(nil, append([]string{"exec"}, c.args...)...)
		if res.code != c.code || res.stdout != c.out {
			t.Errorf("exec %s: exit %d, stdout %q; want %d, %q\n%s", c.name, res.code, res.stdout, c.code, c.out, res)
		}
	}

	// A missing command fails as runc's exec does: 255 and the words
	// callers turn into 127.
	if res := r.run(nil, "exec", id, "no-such-command"); res.code != 255 || !strings.Contains(res.stderr, "executable file not found") {
		t.Errorf("exec of a missing command: %s", res)
	}

	// --process: everything from the file, capabilities narrowed to KILL.
	p := writeProcess(t, &specs.Process{Args: []string{"sh", "-c", "id -u; id -g; pwd; echo $A $FOO; grep CapEff /proc/self/status"},
		Env: []string{"A=1", "PATH=/bin:/usr/bin"}, Cwd: "/tmp", User: specs.User{UID: 0, GID: 7},
		Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL"}, Effective: []string{"CAP_KILL"}, Permitted: []string{"CAP_KILL"}}})
	if res := r.run(nil, "exec", "--process", p, id); res.code != 0 || res.stdout != "0\n7\n/tmp\n1\nCapEff:\t0000000000000020\n" {
		t.Errorf("exec --process: %s", res)
	}
	// Never more than the container's root holds: refused naming the field.
	p = writeProcess(t, &specs.Process{Args: []string{"true"}, Cwd: "/",
		Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL", "CAP_FOWNER"}}})
	if res := r.run(nil, "exec", "--process", p, id); res.code == 0 ||
		!strings.Contains(res.stderr, "process.capabilities.bounding[1]: CAP_FOWNER was not given to the container's root") {
		t.Errorf("exec --process with a capability the container lacks: %s", res)
	}
	p = writeProcess(t, &specs.Process{Args: []string{"true"}, Cwd: "/",
		Capabilities: &specs.LinuxCapabilities{Effective: []string{"CAP_KILL", "CAP_SYS_ADMIN"}}})
	if res := r.run(nil, "--strict", "exec", "--process", p, id); res.code == 0 ||
		!strings.Contains(res.stderr, "process.capabilities.effective[1]: CAP_SYS_ADMIN is not one of Oak's capabilities") {
		t.Errorf("exec --strict --process with CAP_SYS_ADMIN: %s", res)
	}
	for _, c := range []string{"CAP_SYS_ADMIN", "CAP_FOWNER"} {
		if res := r.run(nil, "exec", "--cap", c, id, "true"); res.code == 0 || !strings.Contains(res.stderr, c) {
			t.Errorf("exec --cap %s: %s", c, res)
		}
	}

	// -d: the proxy is the sub-reaper's child and exits with the status.
	if _, wait := r.execDetached(id, "sh", "-c", "exit 4"); wait() != "exit 4" {
		t.Errorf("exec -d of exit 4: %s", wait())
	}
	// TERM to the proxy reaches the process.
	marker := []string{"sleep", strconv.Itoa(10000 + os.Getpid()%10000)}
	pid, wait := r.execDetached(append([]string{id}, marker...)...)
	waitFor(t, "the exec'd sleep", func() bool { return len(hostPidsOf(marker...)) == 1 })
	syscall.Kill(pid, syscall.SIGTERM)
	if got := wait(); got != "exit 143" {
		t.Errorf("exec -d, TERM to its proxy: %q, want exit 143", got)
	}
	waitGone(t, "exec -d after TERM", marker...)
	// KILL cannot be forwarded: the proxy's end closes the connection,
	// and the supervisor kills the process.
	pid, wait = r.execDetached(append([]string{id}, marker...)...)
	waitFor(t, "the exec'd sleep", func() bool { return len(hostPidsOf(marker...)) == 1 })
	syscall.Kill(pid, syscall.SIGKILL)
	if got := wait(); got != "signal 9" {
		t.Errorf("exec -d, KILL to its proxy: %q, want signal 9", got)
	}
	waitGone(t, "exec -d after its proxy was killed", marker...)

	// -t: the terminal's master end goes over --console-socket.
	sock := filepath.Join(t.TempDir(), "console.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tty := make(chan string, 1)
	go func() { tty <- readConsole(ln) }()
	if res := r.run(nil, "exec", "-t", "--console-socket", sock, id, "sh", "-c", "test -t 0 && test -t 1 && echo on a tty; exit 2"); res.code != 2 {
		t.Errorf("exec -t: %s", res)
	}
	if got := <-tty; !strings.Contains(got, "on a tty") {
		t.Errorf("exec -t: the console read %q", got)
	}

	// --preserve-fds: the caller's fd 3 and 4 are the process's, and
	// nothing else (5 is the shell's own, listing its descriptors).
	out := r.withFiles(2, "exec", "--preserve-fds", "2", id, "sh", "-c", "echo three >&3; echo four >&4; cd /proc/self/fd && echo *")
	if out.res.code != 0 || out.res.stdout != "0 1 2 3 4 5\n" || out.files[0] != "three\n" || out.files[1] != "four\n" {
		t.Errorf("exec --preserve-fds 2: %s\nfd 3: %q, fd 4: %q", out.res, out.files[0], out.files[1])
	}

	// Paused: refused, unless --ignore-paused, whose process runs once
	// the container is resumed.
	if res := r.run(nil, "pause", id); res.code != 0 {
		t.Fatalf("pause: %s", res)
	}
	if res := r.run(nil, "exec", id, "true"); res.code == 0 || !strings.Contains(res.stderr, "paused") {
		t.Errorf("exec in a paused container: %s", res)
	}
	ignored := make(chan result, 1)
	go func() { ignored <- r.run(nil, "exec", "--ignore-paused", id, "echo", "after resume") }()
	if res := r.run(nil, "resume", id); res.code != 0 {
		t.Fatalf("resume: %s", res)
	}
	if res := <-ignored; res.code != 0 || res.stdout != "after resume\n" {
		t.Errorf("exec --ignore-paused: %s", res)
	}

	// The container's end kills its exec'd processes: their proxies exit
	// 137, as the process would report being killed.
	_, wait = r.execDetached(append([]string{id}, marker...)...)
	waitFor(t, "the exec'd sleep", func() bool { return len(hostPidsOf(marker...)) == 1 })
	if res := r.run(nil, "kill", id, "KILL"); res.code != 0 {
		t.Errorf("kill: %s", res)
	}
	if got := wait(); got != "exit 137" {
		t.Errorf("exec -d when its container was killed: %q, want exit 137", got)
	}

	if res := r.run(nil, "delete", "--force", id); res.code != 0 {
		t.Errorf("delete: %s", res)
	}
	if l := leftOver(id); len(l) > 0 {
		t.Errorf("left behind: %v", l)
	}
}

// readConsole accepts one connection on ln, takes the terminal master it
// carries and returns what the terminal printed until it closed.
func readConsole(ln *net.UnixListener) string {
	ln.SetDeadline(time.Now().Add(oakTimeout))
	c, err := ln.AcceptUnix()
	if err != nil {
		return "accept: " + err.Error()
	}
	defer c.Close()
	buf, oob := make([]byte, 256), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return "receive: " + err.Error()
	}
	msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
	if len(msgs) != 1 {
		return "no descriptor"
	}
	fds, _ := unix.ParseUnixRights(&msgs[0])
	if len(fds) != 1 {
		return "no descriptor"
	}
	master := os.NewFile(uintptr(fds[0]), "master")
	defer master.Close()
	b, _ := io.ReadAll(master) // EIO once the slave's last holder is gone
	return string(b)
}

// filesResult is what withFiles saw: the run and what each extra
// descriptor received.
type filesResult struct {
	res   result
	files []string
}

// withFiles runs oak-runtime args with n pipes at 3..3+n-1 and reads each
// until every writer closed it.
func (r *rtEnv) withFiles(n int, args ...string) filesResult {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), oakTimeout)
	defer cancel()
	full := append([]string{"--root", r.root}, args...)
	cmd := exec.CommandContext(ctx, r.bin, full...)
	stdout, stderr := tempFile(r.t), tempFile(r.t)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	var readers []*os.File
	for i := 0; i < n; i++ {
		rd, wr, err := os.Pipe()
		if err != nil {
			r.t.Fatal(err)
		}
		defer rd.Close()
		readers = append(readers, rd)
		cmd.ExtraFiles = append(cmd.ExtraFiles, wr)
	}
	err := cmd.Start()
	for _, w := range cmd.ExtraFiles {
		w.Close()
	}
	if err != nil {
		r.t.Fatal(err)
	}
	out := filesResult{files: make([]string, n)}
	for i, rd := range readers {
		rd.SetReadDeadline(time.Now().Add(oakTimeout))
		b, _ := io.ReadAll(rd)
		out.files[i] = string(b)
	}
	err = cmd.Wait()
	out.res = result{args: full, code: exitCode(cmd, err), stdout: readAll(stdout), stderr: readAll(stderr)}
	return out
}

// waitFor polls cond (bounded; not a timing claim).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(oakTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, oakTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRuntimePreserveFDs: create --preserve-fds 1 gives the container's
// command the caller's fd 3, and nothing else of the caller's or of Oak's.
func TestRuntimePreserveFDs(t *testing.T) {
	needOak(t, true)
	r := newRuntime(t)
	id := "f" + randHex(t)
	out := tempFile(t)
	b := bundle(t, []string{"sh", "-c", "echo through fd 3 >&3; cd /proc/self/fd && echo *"}, nil)
	// create hands its stdout to the container: a file, read at the end.
	res := r.withFilesOut(out, 1, "create", "--preserve-fds", "1", "--bundle", b, id)
	if res.res.code != 0 {
		t.Fatalf("create --preserve-fds 1: %s", res.res)
	}
	if res.files[0] != "through fd 3\n" {
		t.Errorf("the host read %q from the container's fd 3, want \"through fd 3\\n\"", res.files[0])
	}
	r.waitState(id, specs.StateStopped)
	// 4 is the shell's own, listing its descriptors.
	if got := readAll(out); got != "0 1 2 3 4\n" {
		t.Errorf("the container's descriptors: %q, want \"0 1 2 3 4\\n\"", got)
	}
	if res := r.run(nil, "create", "--preserve-fds", "65", "--bundle", b, "g"+id); res.code == 0 || !strings.Contains(res.stderr, "want 0..64") {
		t.Errorf("create --preserve-fds 65: %s", res)
	}
	// Without descriptors of the caller's, none of the runtime's own is
	// taken for one.
	if res := r.run(nil, "create", "--preserve-fds", "3", "--bundle", b, "g"+id); res.code == 0 || !strings.Contains(res.stderr, "--preserve-fds 3: descriptor") {
		t.Errorf("create --preserve-fds 3 with no descriptor passed: %s", res)
	}
}

// withFilesOut is withFiles whose stdout is out, and which starts the
// container once create returned, before reading the pipes.
func (r *rtEnv) withFilesOut(out *os.File, n int, args ...string) filesResult {
	r.t.Helper()
	full := append([]string{"--root", r.root}, args...)
	cmd := exec.Command(r.bin, full...)
	stderr := tempFile(r.t)
	cmd.Stdout, cmd.Stderr = out, stderr
	var readers []*os.File
	for i := 0; i < n; i++ {
		rd, wr, err := os.Pipe()
		if err != nil {
			r.t.Fatal(err)
		}
		defer rd.Close()
		readers = append(readers, rd)
		cmd.ExtraFiles = append(cmd.ExtraFiles, wr)
	}
	err := cmd.Run()
	for _, w := range cmd.ExtraFiles {
		w.Close()
	}
	res := filesResult{res: result{args: full, code: exitCode(cmd, err), stderr: readAll(stderr)}, files: make([]string, n)}
	if res.res.code != 0 {
		return res
	}
	if s := r.run(nil, "start", args[len(args)-1]); s.code != 0 {
		r.t.Fatalf("start: %s", s)
	}
	for i, rd := range readers {
		rd.SetReadDeadline(time.Now().Add(oakTimeout))
		b, _ := io.ReadAll(rd)
		res.files[i] = string(b)
	}
	return res
}

// TestRuntimePodmanExec: podman exec into a podman run -d container.
func TestRuntimePodmanExec(t *testing.T) {
	needOak(t, true)
	if _, err := exec.LookPath("podman"); err != nil {
		t.Fatalf("podman is not installed (make deps installs it): %v", err)
	}
	r := newRuntime(t)
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	if out, err := exec.Command("cp", "-a", rootfsDir, rootfs).CombinedOutput(); err != nil {
		t.Fatalf("copy image: %v %s", err, out)
	}
	pm := func(args ...string) *exec.Cmd { return podmanCmd(t, dir, r.bin, args...) }
	out, errs, code := runCmd(pm("run", "-d", "--network", "none", "--ulimit", "nofile=1024:1024",
		"--ulimit", "nproc=4096:4096", "-e", "FOO=bar", "--rootfs", rootfs, "sleep", "1000"))
	if code != 0 {
		t.Fatalf("podman run -d: exit %d\n%s", code, errs)
	}
	cid := strings.TrimSpace(out)
	t.Cleanup(func() {
		runCmd(pm("rm", "-f", "-t", "0", cid))
		if l := leftOver(cid); len(l) > 0 {
			t.Errorf("left behind: %v", l)
		}
	})
	for _, c := range []struct {
		name  string
		args  []string
		stdin string
		code  int
		out   string
	}{
		{"plain", []string{cid, "sh", "-c", "echo hi $FOO; id -u"}, "", 0, "hi bar\n0\n"},
		{"status", []string{cid, "sh", "-c", "exit 3"}, "", 3, ""},
		{"signal", []string{cid, "sh", "-c", "kill -9 $$"}, "", 137, ""},
		{"missing", []string{cid, "no-such-command"}, "", 127, ""},
		{"not executable", []string{cid, "/etc/hostname"}, "", 126, ""},
		{"stdin", []string{"-i", cid, "sh", "-c", "tr a-z A-Z"}, "piped in\n", 0, "PIPED IN\n"},
		{"user", []string{"-u", "1000:1000", "-w", "/tmp", "-e", "X=1", cid, "sh", "-c", "id -u; pwd; echo $X"}, "", 0, "1000\n/tmp\n1\n"},
		{"tty", []string{"-t", cid, "sh", "-c", "test -t 0 && test -t 1 && echo on a tty"}, "", 0, "on a tty\r\n"},
	} {
		cmd := pm(append([]string{"exec"}, c.args...)...)
		cmd.Stdin = strings.NewReader(c.stdin)
		out, errs, code := runCmd(cmd)
		if code != c.code || out != c.out {
			t.Errorf("podman exec %s: exit %d, stdout %q; want %d, %q\nstderr:\n%s", c.name, code, out, c.code, c.out, errs)
		}
	}
	// --preserve-fds: the caller's fd 3, in exec and in run.
	for _, args := range [][]string{
		{"exec", "--preserve-fds", "1", cid},
		{"run", "--rm", "--preserve-fds", "1", "--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096", "--rootfs", rootfs},
	} {
		rd, wr, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd := pm(append(args, "sh", "-c", "echo via fd 3 >&3")...)
		cmd.ExtraFiles = []*os.File{wr}
		var e bytes.Buffer
		cmd.Stderr = &e
		err = cmd.Start()
		wr.Close()
		if err != nil {
			t.Fatal(err)
		}
		rd.SetReadDeadline(time.Now().Add(oakTimeout))
		got, _ := io.ReadAll(rd)
		rd.Close()
		if err := cmd.Wait(); err != nil || string(got) != "via fd 3\n" {
			t.Errorf("podman %s --preserve-fds 1: %v, fd 3 read %q\n%s", args[0], err, got, e.String())
		}
	}
	if _, errs, code := runCmd(pm("rm", "-f", "-t", "0", cid)); code != 0 {
		t.Errorf("podman rm -f: exit %d\n%s", code, errs)
	}
	if l := leftOver(cid); len(l) > 0 {
		t.Errorf("left behind after podman rm: %v", l)
	}
}

// startContainerd starts a private containerd (no CRI) for the test and
// returns ctr bound to it, in a namespace of the test's own, and
// containerd's log.
func startContainerd(t *testing.T) (ctr func(args ...string) *exec.Cmd, log *os.File) {
	t.Helper()
	for _, b := range []string{"containerd", "ctr"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Fatalf("%s is not installed (make deps installs it): %v", b, err)
		}
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "c.sock")
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
[debug]
  address = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, sock+".ttrpc", filepath.Join(dir, "debug.sock"))
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	log = tempFile(t)
	d := exec.Command("containerd", "--config", filepath.Join(dir, "config.toml"))
	d.Stdout, d.Stderr = log, log
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Process.Signal(syscall.SIGTERM)
		d.Wait()
	})
	ns := "oaktest" + randHex(t)
	ctr = func(args ...string) *exec.Cmd {
		return exec.Command("ctr", append([]string{"-a", sock, "-n", ns}, args...)...)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, _, code := runCmd(ctr("version")); code == 0 {
			return ctr, log
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd did not come up:\n%s", readAll(log))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRuntimeContainerdExec: ctr task exec into a ctr run -d container,
// with the exit status, and ctr task kill --exec-id through the shim.
func TestRuntimeContainerdExec(t *testing.T) {
	needOak(t, true)
	r := newRuntime(t)
	ctr, _ := startContainerd(t)
	id := "c" + randHex(t)
	if _, errs, code := runCmd(ctr("run", "-d", "--runc-binary", r.bin, "--rootfs", rootfsDir, id, "sleep", "1000")); code != 0 {
		t.Fatalf("ctr run -d: exit %d\n%s", code, errs)
	}
	t.Cleanup(func() {
		runCmd(ctr("task", "kill", "-s", "SIGKILL", id))
		runCmd(ctr("task", "delete", "-f", id))
		runCmd(ctr("container", "delete", id))
		if l := leftOver(id); len(l) > 0 {
			t.Errorf("left behind: %v", l)
		}
	})
	out, errs, code := runCmd(ctr("task", "exec", "--exec-id", "x1", id, "sh", "-c", "echo from exec; grep CapEff /proc/self/status; exit 3"))
	if code != 3 || out != "from exec\nCapEff:\t00000000000001fb\n" {
		t.Errorf("ctr task exec: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	// A process killed through the shim: it signals the proxy, whose
	// process ends with the signal.
	marker := []string{"sleep", strconv.Itoa(20000 + os.Getpid()%10000)}
	ex := ctr(append([]string{"task", "exec", "--exec-id", "x2", id}, marker...)...)
	var o, e bytes.Buffer
	ex.Stdout, ex.Stderr = &o, &e
	if err := ex.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the exec'd sleep", func() bool { return len(hostPidsOf(marker...)) == 1 })
	// The shim knows the process once exec -d returned: until then the
	// kill is refused as for a process that does not run yet.
	waitFor(t, "ctr task kill --exec-id x2 succeeding", func() bool {
		_, _, code := runCmd(ctr("task", "kill", "--exec-id", "x2", "-s", "SIGTERM", id))
		return code == 0
	})
	err := ex.Wait()
	if code := exitCode(ex, err); code != 143 {
		t.Errorf("ctr task exec killed with TERM: exit %d, want 143\n%s", code, e.String())
	}
	waitGone(t, "ctr task exec after kill", marker...)
	if _, errs, code := runCmd(ctr("task", "kill", "-s", "SIGKILL", id)); code != 0 {
		t.Errorf("ctr task kill: exit %d\n%s", code, errs)
	}
	waitFor(t, "the container's end", func() bool {
		out, _, _ := runCmd(ctr("task", "ls"))
		return !strings.Contains(out, "RUNNING")
	})
	if _, errs, code := runCmd(ctr("task", "delete", id)); code != 0 {
		t.Errorf("ctr task delete: exit %d\n%s", code, errs)
	}
	if l := leftOver(id); len(l) > 0 {
		t.Errorf("left behind: %v", l)
	}
}

// TestRuntimePodmanIsolation: a container run by podman through
// oak-runtime, and a process podman execs into it, are Oak containers: the
// probe gets the same refusals as under oak run (the refusals table of
// TestSyscallRefusals), no host file, and no raw socket.
func TestRuntimePodmanIsolation(t *testing.T) {
	needOak(t, true)
	if _, err := exec.LookPath("podman"); err != nil {
		t.Fatalf("podman is not installed (make deps installs it): %v", err)
	}
	r := newRuntime(t)
	// podman refuses a run root longer than 50 bytes: this test's name is long.
	dir, err := os.MkdirTemp("", "oakpi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	rootfs := filepath.Join(dir, "rootfs")
	if out, err := exec.Command("cp", "-a", rootfsDir, rootfs).CombinedOutput(); err != nil {
		t.Fatalf("copy image: %v %s", err, out)
	}
	type check struct {
		args []string
		want string
	}
	var checks []check
	for _, c := range refusals {
		checks = append(checks, check{c.args, "err " + errnoName(expected(t, c))})
	}
	for _, p := range []string{"/etc/shadow", "/proc/1/root/etc/shadow", "/../../etc/shadow", rootfsDir + "/bin/busybox"} {
		if _, err := os.Stat(p); err == nil {
			checks = append(checks, check{[]string{"read-file", p}, "err ENOENT"})
		}
	}
	checks = append(checks,
		check{[]string{"socket", strconv.Itoa(unix.AF_PACKET), strconv.Itoa(unix.SOCK_RAW)}, "err EACCES"},
		check{[]string{"socket", strconv.Itoa(unix.AF_INET), strconv.Itoa(unix.SOCK_RAW), strconv.Itoa(unix.IPPROTO_ICMP)}, "err EACCES"},
		check{[]string{"socket", strconv.Itoa(unix.AF_NETLINK), strconv.Itoa(unix.SOCK_RAW)}, "err EACCES"})
	// One probe per line, each line's output on one line.
	var script strings.Builder
	for _, c := range checks {
		script.WriteString("echo \"$(/bin/probe")
		for _, a := range c.args {
			script.WriteString(" '" + a + "'")
		}
		script.WriteString(" 2>&1)\"\n")
	}
	pm := func(args ...string) *exec.Cmd { return podmanCmd(t, dir, r.bin, args...) }
	run := []string{"run", "--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096", "--rootfs", rootfs}
	compare := func(how, out string) {
		got := lines(out)
		if len(got) != len(checks) {
			t.Fatalf("%s: %d lines for %d checks:\n%s", how, len(got), len(checks), out)
		}
		for i, c := range checks {
			if got[i] != c.want {
				t.Errorf("%s: probe %s: %q, want %q", how, strings.Join(c.args, " "), got[i], c.want)
			}
		}
	}
	out, errs, code := runCmd(pm(append(append([]string{"run", "--rm"}, run[1:]...), "sh", "-c", script.String())...))
	if code != 0 {
		t.Fatalf("podman run: exit %d\n%s", code, errs)
	}
	compare("podman run", out)

	out, errs, code = runCmd(pm(append(append([]string{"run", "-d"}, run[1:]...), "sleep", "1000")...))
	if code != 0 {
		t.Fatalf("podman run -d: exit %d\n%s", code, errs)
	}
	cid := strings.TrimSpace(out)
	defer func() {
		if _, errs, code := runCmd(pm("rm", "-f", "-t", "0", cid)); code != 0 {
			t.Errorf("podman rm -f: exit %d\n%s", code, errs)
		}
		if l := leftOver(cid); len(l) > 0 {
			t.Errorf("left behind: %v", l)
		}
	}()
	out, errs, code = runCmd(pm("exec", cid, "sh", "-c", script.String()))
	if code != 0 {
		t.Fatalf("podman exec: exit %d\n%s", code, errs)
	}
	compare("podman exec", out)
}

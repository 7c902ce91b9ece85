//go:build linux

package policy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// helperEnv makes the test binary, re-executed, act as a process under test
// instead of running tests.
const helperEnv = "OAK_POLICY_TEST_HELPER"

func TestMain(m *testing.M) {
	switch mode := os.Getenv(helperEnv); mode {
	case "":
		os.Exit(m.Run())
	case "confined", "confined-twice":
		os.Exit(confinedMain(mode == "confined-twice"))
	case "idle":
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	case "hello":
		// A fresh Go runtime started under the filter.
		fmt.Println("hello from a confined Go program")
		os.Exit(0)
	default:
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", helperEnv, mode)
		os.Exit(2)
	}
}

// install puts Program() on every thread of this process, as the sandbox
// does before execve: no_new_privs, then seccomp with TSYNC from a locked
// thread.
func install() error {
	filter, err := Program()
	if err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(filter)
	if errno != 0 {
		return fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER): %w", errno)
	}
	return nil
}

// confinedMain installs the filter, checks from inside what must work and
// what must not, prints one line per check, then "ready", and waits for
// its standard input to close.
func confinedMain(twice bool) int {
	runtime.LockOSThread()
	if err := install(); err != nil {
		fmt.Println("FAIL install:", err)
		return 1
	}
	if twice {
		if err := install(); err != nil {
			fmt.Println("FAIL install again:", err)
			return 1
		}
	} else {
		for _, c := range confinedChecks() {
			if err := c.run(); err != nil {
				fmt.Printf("FAIL %s: %v\n", c.name, err)
			} else {
				fmt.Printf("ok %s\n", c.name)
			}
		}
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	return 0
}

type check struct {
	name string
	run  func() error
}

func sys(nr uintptr, args ...uintptr) (uintptr, unix.Errno) {
	var a [6]uintptr
	copy(a[:], args)
	r, _, errno := unix.Syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5])
	return r, errno
}

// expect checks that a system call fails with want. Each call is chosen so
// that the kernel itself, reached by mistake, would answer differently
// (most often EINVAL, EBADF or success), and so that success harms nothing.
func expect(want unix.Errno, nr uintptr, args ...uintptr) func() error {
	return func() error {
		r, errno := sys(nr, args...)
		if errno == 0 && (nr == unix.SYS_SOCKET || nr == unix.SYS_SOCKETPAIR) {
			unix.Close(int(r))
		}
		if errno != want {
			return fmt.Errorf("got %v (%d), want %v", errno, int(errno), want)
		}
		return nil
	}
}

func works(nr uintptr, args ...uintptr) func() error {
	return func() error {
		if _, errno := sys(nr, args...); errno != 0 {
			return errno
		}
		return nil
	}
}

func confinedChecks() []check {
	str := func(s string) uintptr { p, _ := unix.BytePtrFromString(s); return uintptr(unsafe.Pointer(p)) }
	var fds [2]int32
	var rlim unix.Rlimit
	var n int32
	pipe := make([]int, 2)
	unix.Pipe2(pipe, unix.O_CLOEXEC)
	devnull, _ := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	dir, _ := os.MkdirTemp("", "oak-policy")
	self, _ := os.Executable()
	const high = 0xdead_beef_0000_0000
	atFDCWD := uintptr(^uint(99)) // AT_FDCWD, -100

	checks := []check{
		{"getpid", works(unix.SYS_GETPID)},
		// The network calls are handed to a listener; this filter has
		// none attached, and then the kernel answers ENOSYS. (Oak always
		// attaches one: see services/netsvc.)
		{"socket AF_INET trapped", expect(unix.ENOSYS, unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM, 0)},
		{"socket AF_NETLINK refused", expect(unix.EACCES, unix.SYS_SOCKET, unix.AF_NETLINK, unix.SOCK_RAW, 0)},
		{"socket AF_UNIX trapped", expect(unix.ENOSYS, unix.SYS_SOCKET, unix.AF_UNIX, unix.SOCK_STREAM, 0)},
		{"clone CLONE_FILES without CLONE_THREAD refused", expect(unix.EPERM, unix.SYS_CLONE, unix.CLONE_FILES|uintptr(unix.SIGCHLD), 0, 0)},
		{"socketpair AF_UNIX", func() error {
			if _, errno := sys(unix.SYS_SOCKETPAIR, unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0, uintptr(unsafe.Pointer(&fds))); errno != 0 {
				return errno
			}
			unix.Close(int(fds[0]))
			unix.Close(int(fds[1]))
			return nil
		}},
		{"socketpair AF_INET refused", expect(unix.EACCES, unix.SYS_SOCKETPAIR, unix.AF_INET, unix.SOCK_STREAM, 0, uintptr(unsafe.Pointer(&fds)))},
		{"connect trapped", expect(unix.ENOSYS, unix.SYS_CONNECT, ^uintptr(0), 0, 0)},
		{"unshare refused", expect(unix.EPERM, unix.SYS_UNSHARE, unix.CLONE_NEWNS|unix.CLONE_NEWUSER|unix.CLONE_FS)},
		{"setns refused", expect(unix.EPERM, unix.SYS_SETNS, ^uintptr(0), 0)},
		{"mount refused", expect(unix.EPERM, unix.SYS_MOUNT, str("none"), str("/nonexistent/oak-policy"), str("tmpfs"), 0, 0)},
		{"clone3 ENOSYS", expect(unix.ENOSYS, unix.SYS_CLONE3, 0, 0)},
		{"clone CLONE_NEWUSER refused", expect(unix.EPERM, unix.SYS_CLONE, unix.CLONE_NEWUSER|unix.CLONE_FS, 0, 0, 0, 0)},
		{"clone CLONE_NEWNET refused", expect(unix.EPERM, unix.SYS_CLONE, high|unix.CLONE_NEWNET|unix.CLONE_THREAD, 0, 0, 0, 0)},
		{"ioctl TIOCSTI refused", expect(unix.ENOTTY, unix.SYS_IOCTL, uintptr(devnull), high|unix.TIOCSTI, str("x"))},
		// On a bad descriptor the kernel answers EBADF: ENOTTY is the filter's.
		{"ioctl SIOCGIFCONF refused", expect(unix.ENOTTY, unix.SYS_IOCTL, 1000, unix.SIOCGIFCONF, 0)},
		{"ioctl TCGETS reaches the kernel", expect(unix.EBADF, unix.SYS_IOCTL, 1000, high|unix.TCGETS, 0)},
		{"ioctl FIONREAD", works(unix.SYS_IOCTL, uintptr(pipe[0]), unix.TIOCINQ, uintptr(unsafe.Pointer(&n)))},
		{"ptrace refused", expect(unix.EPERM, unix.SYS_PTRACE, 0xdead, 0, 0, 0)},
		{"bpf refused", expect(unix.EPERM, unix.SYS_BPF, 0xffff, 0, 0)},
		{"keyctl refused", expect(unix.EPERM, unix.SYS_KEYCTL, 0xffff, 0, 0)},
		{"sethostname refused", expect(unix.EPERM, unix.SYS_SETHOSTNAME, str("x"), 1000)},
		{"io_uring_setup ENOSYS", expect(unix.ENOSYS, unix.SYS_IO_URING_SETUP, 0, 0)},
		{"syscall 1000 ENOSYS", expect(unix.ENOSYS, 1000)},
		{"x32 getpid ENOSYS", expect(unix.ENOSYS, x32Bit|unix.SYS_GETPID)},
		{"prlimit64 self", works(unix.SYS_PRLIMIT64, 0, unix.RLIMIT_NOFILE, 0, uintptr(unsafe.Pointer(&rlim)))},
		{"prlimit64 pid 1 refused", expect(unix.EPERM, unix.SYS_PRLIMIT64, 1, unix.RLIMIT_NOFILE, 0, uintptr(unsafe.Pointer(&rlim)))},
		{"personality query", works(unix.SYS_PERSONALITY, 0xffffffff)},
		{"personality ADDR_NO_RANDOMIZE refused", expect(unix.EPERM, unix.SYS_PERSONALITY, 0x0040000 /* ADDR_NO_RANDOMIZE */)},
		{"prctl PR_SET_NAME", works(unix.SYS_PRCTL, unix.PR_SET_NAME, str("oak-confined"))},
		{"prctl PR_SET_MM refused", expect(unix.EPERM, unix.SYS_PRCTL, unix.PR_SET_MM, 0xffff, 0, 0, 0)},
		{"mkfifo", works(unix.SYS_MKNODAT, atFDCWD, str(filepath.Join(dir, "fifo")), unix.S_IFIFO|0o600, 0)},
		{"mknod device refused", expect(unix.EPERM, unix.SYS_MKNODAT, atFDCWD, str(filepath.Join(dir, "null")), unix.S_IFCHR|0o600, uintptr(unix.Mkdev(1, 3)))},
		{"a Go program starts and exits", func() error {
			cmd := exec.Command(self)
			cmd.Env = append(os.Environ(), helperEnv+"=hello")
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "hello from a confined Go program") {
				return fmt.Errorf("%v: %q", err, out)
			}
			return nil
		}},
	}
	// Programs from the host, when it has them: static busybox, and a
	// dynamically linked libc shell and coreutils.
	script := `ls / >/dev/null && cat /proc/self/status >/dev/null && ps >/dev/null && echo piped | cat &&
		dd if=/dev/zero of=/dev/null bs=512 count=8 2>/dev/null && sleep 0.01 && id -u >/dev/null &&
		mkdir -p "$T/d" && echo x >"$T/d/f" && mv "$T/d/f" "$T/d/g" && chmod 600 "$T/d/g" && rm -r "$T/d" &&
		mkfifo "$T/p" && rm "$T/p" && date >/dev/null && uname -a >/dev/null && echo done`
	for _, prog := range [][]string{{"busybox", "sh", "-c"}, {"sh", "-c"}} {
		path, err := exec.LookPath(prog[0])
		if err != nil {
			continue
		}
		argv := append(prog[1:], script)
		checks = append(checks, check{"runs " + strings.Join(prog, " "), func() error {
			cmd := exec.Command(path, argv...)
			cmd.Env = append(os.Environ(), "T="+dir)
			if prog[0] == "busybox" {
				// Every applet from busybox, not from the host's PATH.
				bin := filepath.Join(dir, "bin")
				os.MkdirAll(bin, 0o755)
				for _, applet := range strings.Fields("sh ls cat ps echo dd sleep id mkdir mv chmod rm mkfifo date uname") {
					os.Symlink(path, filepath.Join(bin, applet))
				}
				cmd.Env = append(cmd.Env, "PATH="+bin)
			}
			out, err := cmd.CombinedOutput()
			if err != nil || string(out) != "piped\ndone\n" {
				return fmt.Errorf("%v: %q", err, out)
			}
			return nil
		}})
	}
	checks = append(checks, check{"clean up", func() error { return os.RemoveAll(dir) }})
	return checks
}

func seccompMode(t *testing.T) string {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "Seccomp:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func needFilterReading(t *testing.T) {
	t.Helper()
	if runtime.GOARCH != "amd64" {
		t.Skipf("the policy is for x86_64; this is %s", runtime.GOARCH)
	}
	if os.Geteuid() != 0 {
		t.Skip("reading a seccomp filter needs root (CAP_SYS_ADMIN)")
	}
	if mode := seccompMode(t); mode != "0" {
		t.Skipf("this test process runs under seccomp (mode %s), so the kernel refuses PTRACE_SECCOMP_GET_FILTER", mode)
	}
}

// helper starts the test binary in mode and waits until it prints
// "ready"; it returns the lines printed before. Closing stdin ends it.
func helper(t *testing.T, mode string) (*exec.Cmd, io.WriteCloser, []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	if mode == "idle" {
		return cmd, stdin, nil
	}
	var lines []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if sc.Text() == "ready" {
			go io.Copy(io.Discard, stdout)
			return cmd, stdin, lines
		}
		lines = append(lines, sc.Text())
	}
	stdin.Close()
	err = cmd.Wait()
	t.Fatalf("helper %s ended before it was ready (%v):\n%s\nstderr:\n%s", mode, err, strings.Join(lines, "\n"), stderr.String())
	return nil, nil, nil
}

// TestInstalledFilterIsProgram installs Program() in a child process the
// way the sandbox does, checks from inside that what must be impossible is
// (and that Go, busybox and libc programs still run), then reads the
// filter back out of the kernel and compares it with Program().
func TestInstalledFilterIsProgram(t *testing.T) {
	needFilterReading(t)
	cmd, stdin, lines := helper(t, "confined")
	for _, l := range lines {
		if strings.HasPrefix(l, "FAIL") {
			t.Error("inside the filter:", l)
		} else {
			t.Log("inside the filter:", l)
		}
	}

	got, err := InstalledFilter(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Program()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("the kernel holds a %d-instruction filter that is not Program() (%d instructions)", len(got), len(want))
	}

	// The process carries on after being read.
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper after reading its filter: %v", err)
	}
}

func TestInstalledFilterCountsFilters(t *testing.T) {
	needFilterReading(t)
	want, err := Program()
	if err != nil {
		t.Fatal(err)
	}

	idle, _, _ := helper(t, "idle")
	if fs, err := InstalledFilters(idle.Process.Pid); err != nil || len(fs) != 0 {
		t.Errorf("unconfined process: InstalledFilters = %d filters, %v; want none", len(fs), err)
	}
	if _, err := InstalledFilter(idle.Process.Pid); err == nil {
		t.Error("unconfined process: InstalledFilter did not fail")
	}

	twice, _, _ := helper(t, "confined-twice")
	fs, err := InstalledFilters(twice.Process.Pid)
	if err != nil || len(fs) != 2 || !slices.Equal(fs[0], want) || !slices.Equal(fs[1], want) {
		t.Errorf("process with two filters: InstalledFilters = %d filters, %v; want Program() twice", len(fs), err)
	}
	if _, err := InstalledFilter(twice.Process.Pid); err == nil {
		t.Error("process with two filters: InstalledFilter did not fail")
	}

	if _, err := InstalledFilters(1 << 30); !errors.Is(err, unix.ESRCH) {
		t.Errorf("no such process: %v, want ESRCH", err)
	}
}

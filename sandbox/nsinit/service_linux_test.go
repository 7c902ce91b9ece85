package nsinit

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The service constructor runs in this test binary too (it links the
// package), so a re-executed copy with ServiceEnvVar set is confined
// exactly as an oak service is, before the Go runtime starts. The child
// runs the checks named in _OAK_TEST_CHECKS and prints one line per check.
func TestMain(m *testing.M) {
	if os.Getenv(ServiceEnvVar) != "" {
		os.Exit(runChecks())
	}
	os.Exit(m.Run())
}

func runChecks() int {
	root := os.Getenv("_OAK_STORAGE_ROOT")
	failed := 0
	for _, c := range strings.Split(os.Getenv("_OAK_TEST_CHECKS"), ",") {
		err := check(c, root)
		fmt.Printf("%s: %v\n", c, err)
		if err != nil {
			failed++
		}
	}
	return failed
}

// check returns nil when the confinement holds for c.
func check(c, root string) error {
	want := func(err, expect error) error {
		if !errors.Is(err, expect) {
			return fmt.Errorf("got %v, want %v", err, expect)
		}
		return nil
	}
	switch c {
	case "no-host-files":
		_, err := os.Stat("/etc/passwd")
		return want(err, unix.ENOENT)
	case "no-proc":
		_, err := os.Stat("/proc/self")
		return want(err, unix.ENOENT)
	case "proc-readonly":
		if _, err := os.Stat("/proc/1/stat"); err != nil {
			return err
		}
		return want(os.WriteFile("/proc/sys/kernel/hostname", []byte("x"), 0), unix.EROFS)
	case "root-readonly":
		return want(os.WriteFile("/x", nil, 0o600), unix.EROFS)
	case "state-root-writable":
		return os.WriteFile(filepath.Join(root, "written"), []byte("ok"), 0o600)
	case "mknod-block-refused":
		return want(unix.Mknod(filepath.Join(root, "disk"), unix.S_IFBLK|0o600, int(unix.Mkdev(254, 0))), unix.EPERM)
	case "mknod-char-refused":
		return want(unix.Mknod(filepath.Join(root, "mem"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 1))), unix.EPERM)
	case "mknod-whiteout":
		return unix.Mknod(filepath.Join(root, "wh"), unix.S_IFCHR|0o600, 0)
	case "mknod-fifo":
		return unix.Mkfifo(filepath.Join(root, "fifo"), 0o600)
	case "no-mount":
		return want(unix.Mount("none", "/", "tmpfs", 0, ""), unix.EPERM)
	case "caps-storage", "caps-net":
		var hdr = unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			return err
		}
		eff := uint64(data[0].Effective) | uint64(data[1].Effective)<<32
		wantCaps := uint64(1)<<unix.CAP_CHOWN | 1<<unix.CAP_DAC_OVERRIDE | 1<<unix.CAP_FOWNER | 1<<unix.CAP_FSETID | 1<<unix.CAP_MKNOD
		if c == "caps-net" {
			wantCaps = 1<<unix.CAP_SYS_PTRACE | 1<<unix.CAP_NET_BIND_SERVICE
		}
		if eff != wantCaps {
			return fmt.Errorf("effective capabilities %#x, want %#x", eff, wantCaps)
		}
		return nil
	case "no-new-privs":
		v, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
		if err != nil || v != 1 {
			return fmt.Errorf("no_new_privs = %d, %v", v, err)
		}
		return nil
	}
	return fmt.Errorf("unknown check %q", c)
}

func runService(t *testing.T, kind, root string, checks ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("confining a service needs root")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = []string{ServiceEnvVar + "=" + kind, "_OAK_STORAGE_ROOT=" + root, "_OAK_TEST_CHECKS=" + strings.Join(checks, ",")}
	out, err := cmd.CombinedOutput()
	t.Logf("%s service:\n%s", kind, out)
	if err != nil {
		t.Fatalf("%s service: a confinement check failed (%v)", kind, err)
	}
}

func TestStorageServiceConfinement(t *testing.T) {
	root := t.TempDir()
	runService(t, "storage", root, "no-host-files", "no-proc", "root-readonly", "state-root-writable",
		"mknod-block-refused", "mknod-char-refused", "mknod-whiteout", "mknod-fifo", "no-mount", "caps-storage", "no-new-privs")
	if b, err := os.ReadFile(filepath.Join(root, "written")); err != nil || string(b) != "ok" {
		t.Errorf("the service's write to the state root is not on the host: %q, %v", b, err)
	}
	for _, f := range []string{"disk", "mem"} {
		if _, err := os.Lstat(filepath.Join(root, f)); err == nil {
			t.Errorf("a refused device node %s exists on the host", f)
		}
	}
}

func TestNetServiceConfinement(t *testing.T) {
	runService(t, "net", t.TempDir(), "no-host-files", "proc-readonly", "root-readonly", "no-mount", "caps-net", "no-new-privs")
}

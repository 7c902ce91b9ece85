//go:build linux

package volume

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary doubles as the helper processes some tests need (a
// Create to kill at a chosen point, a container-like process that works
// inside an attached volume). helperEnv selects the helper.
const helperEnv = "OAK_VOLUME_TEST_HELPER"

func TestMain(m *testing.M) {
	if h := os.Getenv(helperEnv); h != "" {
		os.Exit(runHelper(h))
	}
	os.Exit(m.Run())
}

// needRoot skips tests that need loop devices, mkfs.ext4 and mounting.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (loop devices, mount)")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skip("no /dev/loop-control")
	}
	if _, err := lookSbin("mkfs.ext4"); err != nil {
		t.Skip(err)
	}
}

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "volumes"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustCreate(t *testing.T, s *Store, name string, size int64) *Volume {
	t.Helper()
	v, err := s.Create(name, size)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// attach attaches the volume and closes the mount at the end of the test.
func attach(t *testing.T, s *Store, name string, ro bool) *os.File {
	t.Helper()
	f, err := s.Attach(name, ro)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// waitDetached waits until the volume's loop device is gone (autoclear)
// and returns how long that took.
func waitDetached(t *testing.T, s *Store, name string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		v, err := s.Inspect(name)
		if err != nil {
			t.Fatal(err)
		}
		if v.Device == "" {
			return time.Since(start)
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("volume %s still bound to %s 10 s after its last mount was closed", name, v.Device)
		}
		time.Sleep(time.Millisecond)
	}
}

// writeAt creates the file name below the mount m (a detached mount's
// descriptor works as a directory descriptor) with data, and fsyncs it.
func writeAt(m *os.File, name string, data []byte) error {
	fd, err := unix.Openat(int(m.Fd()), name, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Sync()
}

func readAt(m *os.File, name string) ([]byte, error) {
	fd, err := unix.Openat(int(m.Fd()), name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	return io.ReadAll(f)
}

func TestCreateListInspectRemove(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	size := int64(32<<20 + 1000) // not a multiple of any block size: the image is still exactly this size
	before := time.Now().UTC()
	v := mustCreate(t, s, "web-data", size)
	if v.Name != "web-data" || v.Size != size || v.Created.Before(before.Add(-time.Second)) || v.Device != "" || v.Missing {
		t.Errorf("Create returned %+v", v)
	}
	st, err := os.Stat(s.imagePath("web-data"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != size {
		t.Errorf("image is %d bytes, want %d", st.Size(), size)
	}
	if v.Allocated < size || v.Allocated > size+1<<20 || v.Sparse {
		t.Errorf("allocated %d bytes of a %d-byte reserved image (sparse %v)", v.Allocated, size, v.Sparse)
	}
	mustCreate(t, s, "a", MinSize)

	if _, err := s.Create("web-data", MinSize); !errors.Is(err, ErrExists) {
		t.Errorf("second Create(web-data) = %v, want ErrExists", err)
	}
	vs, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || vs[0].Name != "a" || vs[1].Name != "web-data" || vs[1].Size != size {
		t.Errorf("List = %+v, %+v", vs[0], vs[1])
	}
	got, err := s.Inspect("web-data")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != v.Name || got.Size != v.Size || !got.Created.Equal(v.Created) {
		t.Errorf("Inspect = %+v, Create returned %+v", got, v)
	}
	if _, err := s.Inspect("nope"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("Inspect(nope) = %v, want ErrNotFound naming it", err)
	}

	// Reopening (another Oak process) sees the same volumes.
	s2, err := Open(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	if vs2, err := s2.List(); err != nil || len(vs2) != 2 {
		t.Errorf("List after reopen = %v, %v", vs2, err)
	}

	if err := s.Remove("web-data"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Inspect("web-data"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Inspect after Remove = %v", err)
	}
	if _, err := os.Stat(s.path(volsDir, "web-data")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory left after Remove: %v", err)
	}
	if err := s.Remove("web-data"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Remove = %v, want ErrNotFound", err)
	}
	// The name is free again.
	mustCreate(t, s, "web-data", MinSize)
	assertConsistent(t, s)
}

func TestRefusals(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	for _, name := range []string{"", ".", "..", "a/b", "../../etc", "-x", ".x", strings.Repeat("n", 65), "a b", "x\x00y"} {
		_, err := s.Create(name, MinSize)
		if !errors.Is(err, ErrBadName) || !strings.Contains(err.Error(), strconv.Quote(name)) {
			t.Errorf("Create(%q) = %v, want ErrBadName naming the input", name, err)
		}
		if _, err := s.Attach(name, false); !errors.Is(err, ErrBadName) {
			t.Errorf("Attach(%q) = %v, want ErrBadName", name, err)
		}
		if err := s.Remove(name); !errors.Is(err, ErrBadName) {
			t.Errorf("Remove(%q) = %v, want ErrBadName", name, err)
		}
	}
	for _, size := range []int64{-1, 0, 4096, MinSize - 1, MaxSize + 1} {
		if _, err := s.Create("v", size); !errors.Is(err, ErrBadSize) {
			t.Errorf("Create(v, %d) = %v, want ErrBadSize", size, err)
		}
	}
	if _, err := s.Attach("ghost", false); !errors.Is(err, ErrNotFound) {
		t.Errorf("Attach(ghost) = %v, want ErrNotFound", err)
	}
	if ents, _ := os.ReadDir(s.path(tmpDir)); len(ents) != 0 {
		t.Errorf("refused Creates left %d entries in tmp/", len(ents))
	}
	assertConsistent(t, s)
}

// TestAttachShared: every attach of one volume shares one loop device and
// one superblock; what one writes, the other reads; a read-only attach
// refuses writes; the file system's root is 0:0 0755.
func TestAttachShared(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	mustCreate(t, s, "shared", MinSize)
	m1 := attach(t, s, "shared", false)
	m2 := attach(t, s, "shared", false)
	ro := attach(t, s, "shared", true)

	v, err := s.Inspect("shared")
	if err != nil {
		t.Fatal(err)
	}
	if v.Device == "" {
		t.Fatal("Inspect of an attached volume shows no device")
	}
	var devSt unix.Stat_t
	if err := unix.Stat(v.Device, &devSt); err != nil {
		t.Fatal(err)
	}
	for i, m := range []*os.File{m1, m2, ro} {
		var st unix.Stat_t
		if err := unix.Fstat(int(m.Fd()), &st); err != nil {
			t.Fatal(err)
		}
		if st.Dev != devSt.Rdev {
			t.Errorf("mount %d: file system on device %d:%d, want %s (%d:%d)", i,
				unix.Major(st.Dev), unix.Minor(st.Dev), v.Device, unix.Major(devSt.Rdev), unix.Minor(devSt.Rdev))
		}
		if st.Uid != 0 || st.Gid != 0 || st.Mode&0o7777 != 0o755 {
			t.Errorf("mount %d: root is %d:%d %o, want 0:0 755", i, st.Uid, st.Gid, st.Mode&0o7777)
		}
	}
	if n := countLoops(t, s.imagePath("shared")); n != 1 {
		t.Errorf("%d loop devices are bound to the image, want 1", n)
	}

	if err := writeAt(m1, "hello", []byte("from m1")); err != nil {
		t.Fatal(err)
	}
	for i, m := range []*os.File{m2, ro} {
		if b, err := readAt(m, "hello"); err != nil || string(b) != "from m1" {
			t.Errorf("read through mount %d: %q, %v", i+2, b, err)
		}
	}
	if err := writeAt(ro, "nope", []byte("x")); !errors.Is(err, unix.EROFS) {
		t.Errorf("create through the read-only mount: %v, want EROFS", err)
	}
	if fd, err := unix.Openat(int(ro.Fd()), "hello", unix.O_WRONLY|unix.O_CLOEXEC, 0); !errors.Is(err, unix.EROFS) {
		if err == nil {
			unix.Close(fd)
		}
		t.Errorf("open for writing through the read-only mount: %v, want EROFS", err)
	}
	// The read-write mounts stay writable while a read-only one exists.
	if err := writeAt(m2, "hello", []byte("from m2")); err != nil {
		t.Errorf("write through m2 beside a read-only mount: %v", err)
	}
	if b, _ := readAt(ro, "hello"); string(b) != "from m2" {
		t.Errorf("read-only mount reads %q after m2's write", b)
	}
}

// TestAttachReadOnlyFirst: a read-only attach followed by a read-write one
// still shares the device, and the second can write.
func TestAttachReadOnlyFirst(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	mustCreate(t, s, "rofirst", MinSize)
	ro := attach(t, s, "rofirst", true)
	rw := attach(t, s, "rofirst", false)
	var a, b unix.Stat_t
	unix.Fstat(int(ro.Fd()), &a)
	unix.Fstat(int(rw.Fd()), &b)
	if a.Dev != b.Dev {
		t.Errorf("read-only and read-write attach on different devices: %d, %d", a.Dev, b.Dev)
	}
	if err := writeAt(rw, "f", []byte("x")); err != nil {
		t.Errorf("write through the read-write mount: %v", err)
	}
	if err := writeAt(ro, "g", []byte("x")); !errors.Is(err, unix.EROFS) {
		t.Errorf("write through the read-only mount: %v, want EROFS", err)
	}
}

// TestAttachConcurrent: attaches racing from many goroutines still share
// one loop device.
func TestAttachConcurrent(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	mustCreate(t, s, "race", MinSize)
	const n = 8
	var wg sync.WaitGroup
	devs := make([]uint64, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := s.Attach("race", i%2 == 0)
			if err != nil {
				errs[i] = err
				return
			}
			t.Cleanup(func() { f.Close() })
			var st unix.Stat_t
			errs[i] = unix.Fstat(int(f.Fd()), &st)
			devs[i] = st.Dev
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if devs[i] != devs[0] {
			t.Errorf("attach %d on device %d, attach 0 on %d", i, devs[i], devs[0])
		}
	}
	if c := countLoops(t, s.imagePath("race")); c != 1 {
		t.Errorf("%d loop devices bound to the image, want 1", c)
	}
}

// countLoops counts the loop devices bound to the file at path.
func countLoops(t *testing.T, path string) int {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	loops, err := loopNumbers()
	if err != nil {
		t.Fatal(err)
	}
	c := 0
	for _, n := range loops {
		l, err := openLoop(n)
		if err != nil {
			t.Fatal(err)
		}
		if l != nil {
			if l.info.Device == uint64(st.Dev) && l.info.Inode == st.Ino {
				c++
			}
			l.close()
		}
	}
	return c
}

// TestQuota: a process filling the volume gets ENOSPC; the image never
// grows past its size (which it holds from the start) and the host loses
// no more space to the writes. The
// filling process sees the volume the way a container does: the detached
// mount moved onto a directory in its own mount namespace.
func TestQuota(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	const size = 48 << 20
	mustCreate(t, s, "small", size)
	var before unix.Statfs_t
	if err := unix.Statfs(s.Root(), &before); err != nil {
		t.Fatal(err)
	}
	m := attach(t, s, "small", false)
	out, err := runInVolume(t, m, "fill")
	if err != nil {
		t.Fatalf("fill: %v\n%s", err, out)
	}
	var res fillResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("fill output %q: %v", out, err)
	}
	t.Logf("wrote %d bytes (%.1f%% of the volume) before %s", res.Written, 100*float64(res.Written)/size, res.Err)
	if res.Errno != int(unix.ENOSPC) {
		t.Errorf("filling the volume ended with %q, want ENOSPC", res.Err)
	}
	if res.Written < size/2 || res.Written > size {
		t.Errorf("wrote %d bytes into a %d-byte volume", res.Written, size)
	}
	m.Close()
	waitDetached(t, s, "small")

	var st unix.Stat_t
	if err := unix.Stat(s.imagePath("small"), &st); err != nil {
		t.Fatal(err)
	}
	// Reserved from the start; the host file system may add a block or
	// two of its own (extent tree) to the file.
	if st.Size != size || st.Blocks*512 < size || st.Blocks*512 > size+1<<20 {
		t.Errorf("image: %d bytes long, %d allocated; want %d long and allocated (plus at most 1 MiB of host overhead)", st.Size, st.Blocks*512, size)
	}
	var after unix.Statfs_t
	if err := unix.Statfs(s.Root(), &after); err != nil {
		t.Fatal(err)
	}
	drop := (int64(before.Bavail) - int64(after.Bavail)) * before.Bsize
	t.Logf("host free space dropped by %d bytes (volume %d, image allocated %d)", drop, size, st.Blocks*512)
	// Other programs share the host file system; allow them 16 MiB.
	if drop > size+16<<20 {
		t.Errorf("host free space dropped by %d bytes for a %d-byte volume", drop, size)
	}
}

// TestKillWriter: data written and fsync'd by a process that is then
// killed with SIGKILL is there when the volume is attached again after
// every mount of it is gone.
func TestKillWriter(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	mustCreate(t, s, "durable", MinSize)
	m := attach(t, s, "durable", false)
	dir := t.TempDir()
	cmd := helperCmd("work", dir, "write-wait")
	cmd.ExtraFiles = []*os.File{m}
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m.Close() // the writer holds the only reference now
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("writer: %q, %v\n%s", line, err, stderr.String())
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("writer ended with %v, not SIGKILL", cmd.ProcessState)
	}
	d := waitDetached(t, s, "durable")
	t.Logf("loop device unbound %v after the writer's death", d)

	m2 := attach(t, s, "durable", true)
	b, err := readAt(m2, "precious")
	if err != nil || !bytes.Equal(b, preciousData()) {
		t.Errorf("after kill -9 and re-attach: %d bytes, %v; want the %d bytes written", len(b), err, len(preciousData()))
	}
	if b, err := readAt(m2, "unsynced"); err != nil || len(b) != 4096 {
		// Not promised, but the kernel never lost it either: the mount
		// outlived the process and was unmounted cleanly.
		t.Logf("unsynced file after kill -9: %d bytes, %v", len(b), err)
	}
}

func preciousData() []byte {
	return bytes.Repeat([]byte("precious data, fsync'd\n"), 10000)
}

// TestRemoveAttached: Remove refuses an attached volume, naming it; once
// the last mount is closed the loop device goes away by itself and Remove
// succeeds.
func TestRemoveAttached(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	mustCreate(t, s, "busy", MinSize)
	m, err := s.Attach("busy", false)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	v, _ := s.Inspect("busy")
	err = s.Remove("busy")
	if !errors.Is(err, ErrAttached) || !strings.Contains(err.Error(), `"busy"`) || !strings.Contains(err.Error(), v.Device) {
		t.Fatalf("Remove of an attached volume = %v, want ErrAttached naming it and %s", err, v.Device)
	}
	if _, err := s.Inspect("busy"); err != nil {
		t.Fatalf("refused Remove lost the volume: %v", err)
	}
	m.Close()
	d := waitDetached(t, s, "busy")
	t.Logf("loop device unbound %v after close", d)
	if err := s.Remove("busy"); err != nil {
		t.Fatal(err)
	}
	assertConsistent(t, s)
}

// TestCheck: Check removes leftovers, reports a record whose image is gone,
// and such a volume refuses Attach but can be removed.
func TestCheck(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	mustCreate(t, s, "keep", MinSize)
	mustCreate(t, s, "lost", MinSize)
	os.Remove(s.imagePath("lost"))
	os.MkdirAll(s.path(volsDir, "orphan"), 0o700)
	os.WriteFile(s.path(volsDir, "orphan", imageName), []byte("x"), 0o600)
	os.MkdirAll(s.path(tmpDir, "123", "x"), 0o700)
	os.WriteFile(s.path(tmpDir, "stray"), nil, 0o600)

	err := s.Check()
	if !errors.Is(err, ErrBroken) || !strings.Contains(err.Error(), `"lost"`) || strings.Contains(err.Error(), `"keep"`) {
		t.Errorf("Check = %v, want ErrBroken naming only \"lost\"", err)
	}
	for _, p := range []string{s.path(volsDir, "orphan"), s.path(tmpDir, "123"), s.path(tmpDir, "stray")} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Check left %s", p)
		}
	}
	if v, err := s.Inspect("lost"); err != nil || !v.Missing {
		t.Errorf("Inspect(lost) = %+v, %v; want Missing", v, err)
	}
	if _, err := s.Attach("lost", false); !errors.Is(err, ErrBroken) {
		t.Errorf("Attach(lost) = %v, want ErrBroken", err)
	}
	if err := s.Remove("lost"); err != nil {
		t.Errorf("Remove(lost) = %v", err)
	}
	if err := s.Check(); err != nil {
		t.Errorf("Check after Remove = %v", err)
	}
	if _, err := s.Inspect("keep"); err != nil {
		t.Errorf("Check hurt a good volume: %v", err)
	}
	assertConsistent(t, s)
}

// TestCheckSkipsLiveCreate: a Create in progress in another process (its
// tmp/ directory locked) survives a Check.
func TestCheckSkipsLiveCreate(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	unlock, err := s.lock()
	if err != nil {
		t.Fatal(err)
	}
	dir, fd, err := s.newTemp()
	unlock()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("Check removed a live Create's directory: %v", err)
	}
	unix.Close(fd)
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Check kept a dead Create's directory: %v", err)
	}
}

// crashPoints are the points of Create and Remove where a crash leaves a
// distinct state on disk, and whether the operation is visible after it.
var crashPoints = []struct {
	point   string
	remove  bool // the crash is in Remove (of an existing volume), not Create
	visible bool // the volume exists after the crash and Check
}{
	{"tmp", false, false},
	{"image", false, false},
	{"mkfs", false, false},
	{"half-reserved", false, false},
	{"reserved", false, false},
	{"synced", false, false},
	{"renamed", false, false},
	{"committed", false, true},
	{"remove-committed", true, false},
	{"remove-renamed", true, false},
}

// TestCrash kills Create and Remove (SIGKILL, in a helper process) at each
// of their crash points and at random moments, then checks that Open's
// repair leaves a consistent store in which the volume either fully exists
// and works or is absent and its name is free.
func TestCrash(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	for _, cp := range crashPoints {
		name := "crash-" + cp.point
		if cp.remove {
			mustCreate(t, s, name, MinSize)
		}
		cmd := helperCmd("crash", s.Root(), name, cp.point)
		out, err := cmd.CombinedOutput()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("%s: helper did not die by SIGKILL at its crash point: %v\n%s", cp.point, err, out)
		}
		checkAfterCrash(t, s.Root(), name, cp.visible)
	}

	// Random moments: a Create of a larger volume takes long enough to be
	// hit in the middle.
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	start := time.Now()
	if err := helperCmd("crash", s.Root(), "timing", "").Run(); err != nil {
		t.Fatal(err)
	}
	full := time.Since(start)
	if err := s.Remove("timing"); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		name := fmt.Sprintf("random-%d", i)
		cmd := helperCmd("crash", s.Root(), name, "")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		delay := time.Duration(r.Int64N(int64(full)))
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		s2, err := Open(s.Root())
		if err != nil {
			t.Fatal(err)
		}
		_, err = s2.Inspect(name)
		visible := err == nil
		t.Logf("killed after %v of %v: volume visible=%v", delay, full, visible)
		checkAfterCrash(t, s.Root(), name, visible)
	}
}

// checkAfterCrash opens the store (which repairs it) and checks that it is
// consistent and that name is either a working volume or free.
func checkAfterCrash(t *testing.T, root, name string, visible bool) {
	t.Helper()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err != nil {
		t.Errorf("after crash of %s: Check = %v", name, err)
	}
	assertConsistent(t, s)
	_, err = s.Inspect(name)
	if visible {
		if err != nil {
			t.Fatalf("after crash of %s: volume missing: %v", name, err)
		}
		m, err := s.Attach(name, false)
		if err != nil {
			t.Fatalf("after crash of %s: %v", name, err)
		}
		werr := writeAt(m, "ok", []byte("ok"))
		m.Close()
		if werr != nil {
			t.Errorf("after crash of %s: write: %v", name, werr)
		}
		waitDetached(t, s, name)
		if err := s.Remove(name); err != nil {
			t.Fatal(err)
		}
	} else {
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("after crash of %s: Inspect = %v, want ErrNotFound", name, err)
		}
		if _, err := s.Create(name, MinSize); err != nil {
			t.Fatalf("after crash of %s: name not free: %v", name, err)
		}
		if err := s.Remove(name); err != nil {
			t.Fatal(err)
		}
	}
	assertConsistent(t, s)
}

// assertConsistent checks the store's invariant: tmp/ is empty, every
// record has its directory with an image of the record's size, and every
// directory has a record.
func assertConsistent(t *testing.T, s *Store) {
	t.Helper()
	if ents, err := os.ReadDir(s.path(tmpDir)); err != nil || len(ents) != 0 {
		t.Errorf("tmp/ holds %d entries (%v)", len(ents), err)
	}
	unlock, err := s.lock()
	if err != nil {
		t.Fatal(err)
	}
	rs, err := s.all()
	unlock()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, r := range rs {
		have[r.Name] = true
		st, err := os.Stat(s.imagePath(r.Name))
		if err != nil || st.Size() != r.Size {
			t.Errorf("record %s: image %v", r.Name, err)
		}
	}
	ents, err := os.ReadDir(s.path(volsDir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !have[e.Name()] {
			t.Errorf("vols/%s has no record", e.Name())
		}
	}
}

// TestIDMappedAttach: the detached mount Attach returns can be id-mapped
// to a user namespace, as the sandbox does for a container: the root
// directory, 0:0 on disk, then belongs to the namespace's root.
func TestIDMappedAttach(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	mustCreate(t, s, "mapped", MinSize)
	m := attach(t, s, "mapped", false)

	const hostBase = 200000
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = append(os.Environ(), helperEnv+"=sleep")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: hostBase, Size: 65536}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: hostBase, Size: 65536}},
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	userns, err := unix.Open(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(userns)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(userns)}
	if err := unix.MountSetattr(int(m.Fd()), "", unix.AT_EMPTY_PATH, &attr); err != nil {
		t.Fatalf("mount_setattr MOUNT_ATTR_IDMAP: %v", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(m.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != hostBase || st.Gid != hostBase {
		t.Errorf("id-mapped root is %d:%d, want %d:%d", st.Uid, st.Gid, hostBase, hostBase)
	}
}

// helperCmd runs this test binary as helper h with args.
func helperCmd(h string, args ...string) *exec.Cmd {
	cmd := exec.Command("/proc/self/exe", args...)
	cmd.Env = append(os.Environ(), helperEnv+"="+h)
	return cmd
}

// runInVolume runs the "work" helper with action in its own mount
// namespace, the mount m moved onto a directory there.
func runInVolume(t *testing.T, m *os.File, action string) ([]byte, error) {
	cmd := helperCmd("work", t.TempDir(), action)
	cmd.ExtraFiles = []*os.File{m}
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return append(out, stderr.Bytes()...), err
	}
	return out, nil
}

type fillResult struct {
	Written int64  `json:"written"`
	Err     string `json:"err"`
	Errno   int    `json:"errno"`
}

func runHelper(h string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	args := os.Args[1:]
	switch h {
	case "sleep":
		io.Copy(io.Discard, os.Stdin) // until the test closes stdin
		return 0

	case "crash":
		root, name, point := args[0], args[1], args[2]
		s, err := Open(root)
		if err != nil {
			return fail(err)
		}
		s.crash = func(p string) {
			if p == point {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {}
			}
		}
		if strings.HasPrefix(point, "remove-") {
			err = s.Remove(name)
		} else if point == "" {
			_, err = s.Create(name, 256<<20)
		} else {
			_, err = s.Create(name, MinSize)
		}
		if err != nil {
			return fail(err)
		}
		return 0

	case "work":
		// fd 3 is a detached mount; this process is in its own mount
		// namespace. Attach the mount as a container's sandbox would.
		dir, action := args[0], args[1]
		if err := unix.MoveMount(3, "", unix.AT_FDCWD, dir, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			return fail(fmt.Errorf("move_mount onto %s: %w", dir, err))
		}
		unix.Close(3)
		switch action {
		case "fill":
			return fill(filepath.Join(dir, "fill"))
		case "write-wait":
			if err := writeDurably(filepath.Join(dir, "precious"), preciousData()); err != nil {
				return fail(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "unsynced"), make([]byte, 4096), 0o644); err != nil {
				return fail(err)
			}
			fmt.Println("ready")
			select {}
		}
	}
	return fail(fmt.Errorf("unknown helper %q %q", h, args))
}

func fill(path string) int {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	buf := bytes.Repeat([]byte{0xa5}, 1<<20)
	var res fillResult
	for {
		n, err := f.Write(buf)
		res.Written += int64(n)
		if err == nil {
			continue
		}
		res.Err = err.Error()
		var errno syscall.Errno
		if errors.As(err, &errno) {
			res.Errno = int(errno)
		}
		break
	}
	f.Close()
	json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

func writeDurably(path string, data []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// TestLoopFlags reports how the loop device was bound: autoclear always,
// direct I/O where the host file system supports it. On tmpfs (no
// O_DIRECT) the attach must still work.
func TestLoopFlags(t *testing.T) {
	needRoot(t)
	roots := []string{t.TempDir()}
	var sfs unix.Statfs_t
	if unix.Statfs("/dev/shm", &sfs) == nil && sfs.Type == unix.TMPFS_MAGIC {
		d, err := os.MkdirTemp("/dev/shm", "oak-volume-test-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		roots = append(roots, d)
	}
	for _, root := range roots {
		s, err := Open(filepath.Join(root, "volumes"))
		if err != nil {
			t.Fatal(err)
		}
		mustCreate(t, s, "flags", MinSize)
		m := attach(t, s, "flags", false)
		if err := writeAt(m, "f", []byte("x")); err != nil {
			t.Errorf("%s: write: %v", root, err)
		}
		var st unix.Stat_t
		unix.Stat(s.imagePath("flags"), &st)
		l, err := findLoop(statID(&st))
		if err != nil || l == nil {
			t.Fatalf("%s: no loop device for an attached volume: %v", root, err)
		}
		l.close()
		if l.info.Flags&loFlagsAutoclear == 0 {
			t.Errorf("%s: %s bound without LO_FLAGS_AUTOCLEAR (flags %#x)", root, l.path(), l.info.Flags)
		}
		dio, _ := os.ReadFile(fmt.Sprintf("/sys/block/loop%d/loop/dio", l.num))
		t.Logf("%s: %s flags %#x, sysfs dio=%s", root, l.path(), l.info.Flags, bytes.TrimSpace(dio))
		m.Close()
		waitDetached(t, s, "flags")
	}
}

// TestNoHostMount: attaching puts nothing into the host's mount table;
// only the holder of the descriptor reaches the volume.
func TestNoHostMount(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	mustCreate(t, s, "hidden", MinSize)
	attach(t, s, "hidden", false)
	v, err := s.Inspect("hidden")
	if err != nil {
		t.Fatal(err)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(mi, []byte(v.Device+" ")) || bytes.Contains(mi, []byte(s.Root())) {
		t.Errorf("the host's mount table shows the volume:\n%s", mi)
	}
}

// TestAttachChurn: attaches and detaches racing each other (so that loop
// devices autoclear while others look for them) never give two mounts
// that are alive at the same time different file systems.
func TestAttachChurn(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	mustCreate(t, s, "churn", MinSize)
	type span struct {
		dev        uint64
		start, end time.Time
	}
	const workers, rounds = 4, 40
	spans := make([][]span, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				m, err := s.Attach("churn", i%3 == 0)
				if err != nil {
					errs[w] = err
					return
				}
				var st unix.Stat_t
				unix.Fstat(int(m.Fd()), &st)
				sp := span{dev: st.Dev, start: time.Now()}
				if i%3 != 0 {
					err = writeAt(m, fmt.Sprintf("w%d", w), []byte{byte(i)})
				}
				time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
				sp.end = time.Now()
				m.Close()
				spans[w] = append(spans[w], sp)
				if err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	devs := map[uint64]bool{}
	for a := range workers {
		for b := a + 1; b < workers; b++ {
			for _, x := range spans[a] {
				devs[x.dev] = true
				for _, y := range spans[b] {
					if x.start.Before(y.end) && y.start.Before(x.end) && x.dev != y.dev {
						t.Fatalf("two live mounts of one volume on different devices %d:%d and %d:%d",
							unix.Major(x.dev), unix.Minor(x.dev), unix.Major(y.dev), unix.Minor(y.dev))
					}
				}
			}
		}
	}
	t.Logf("%d attaches over %d distinct loop devices", workers*rounds, len(devs))
	waitDetached(t, s, "churn")
	if err := s.Remove("churn"); err != nil {
		t.Fatal(err)
	}
}

//go:build linux

package volume

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// smallFS mounts a tmpfs of size bytes for the test: a host file system
// small enough to fill.
func smallFS(t *testing.T, size int64) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// TestReserve: on a 64 MiB host file system a 100 MiB volume is refused,
// naming it, its size and the free space, and leaves nothing behind; a
// volume that fits holds its whole size on the host from the start
// (st_blocks), so nothing written later can find the host full.
func TestReserve(t *testing.T) {
	needRoot(t)
	host := smallFS(t, 64<<20)
	s, err := Open(filepath.Join(host, "volumes"))
	if err != nil {
		t.Fatal(err)
	}
	free := freeBytes(t, host)
	_, err = s.Create("big", 100<<20)
	if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), `"big"`) || !strings.Contains(err.Error(), "100.0 MiB") || !strings.Contains(err.Error(), "free") {
		t.Errorf("Create of 100 MiB on a 64 MiB file system = %v; want a refusal naming the volume, its size and the free space", err)
	}
	if vs, err := s.List(); err != nil || len(vs) != 0 {
		t.Errorf("after the refusal List = %v, %v", vs, err)
	}
	assertConsistent(t, s)
	if now := freeBytes(t, host); now < free {
		t.Errorf("the refused Create left %d bytes allocated", free-now)
	}

	const size = 32 << 20
	v := mustCreate(t, s, "fit", size)
	var st unix.Stat_t
	if err := unix.Stat(s.imagePath("fit"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 < size || v.Allocated < size || v.Sparse {
		t.Errorf("a %d-byte volume has %d bytes allocated on the host (Allocated %d, Sparse %v); want all of it reserved", size, st.Blocks*512, v.Allocated, v.Sparse)
	}

	// Overcommit is there when asked for: 100 MiB more on what is left.
	sv, err := s.CreateSparse("over", 100<<20)
	if err != nil {
		t.Fatalf("CreateSparse of 100 MiB with %d bytes free: %v", freeBytes(t, host), err)
	}
	if sv.Allocated >= 16<<20 || !sv.Sparse {
		t.Errorf("sparse volume: %+v; want Sparse and a few MiB allocated", sv)
	}
	if got, err := s.Inspect("over"); err != nil || !got.Sparse {
		t.Errorf("Inspect(over) = %+v, %v; want Sparse", got, err)
	}
	if got, err := s.Inspect("fit"); err != nil || got.Sparse {
		t.Errorf("Inspect(fit) = %+v, %v; want not Sparse", got, err)
	}
	assertConsistent(t, s)
}

// TestAttachReserves: a volume that is not sparse but lost part of its
// reservation (an image from an Oak that made only sparse images, or holes
// punched into it) gets it back when it is attached.
func TestAttachReserves(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	const size = MinSize
	mustCreate(t, s, "v", size)
	img := s.imagePath("v")
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The last 4 MiB hold no file system metadata of a fresh 16 MiB ext4
	// that matters before the first write: punch them out.
	err = unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, size-4<<20, 4<<20)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Inspect("v"); v.Allocated >= size {
		t.Fatalf("punching a hole left %d bytes allocated", v.Allocated)
	}
	m := attach(t, s, "v", false)
	if err := writeAt(m, "f", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Inspect("v"); v.Allocated < size {
		t.Errorf("after Attach %d of %d bytes are allocated", v.Allocated, size)
	}
}

// TestHostFull: with the host file system full, a container filling its
// (reserved) volume gets ENOSPC from the volume's own ext4 and nothing
// worse: the data reaches the image, the file system stays writable and
// e2fsck finds it clean. A sparse image here made the loop device's
// writes fail, ext4 abort its journal and remount read-only.
func TestHostFull(t *testing.T) {
	needRoot(t)
	host := smallFS(t, 64<<20)
	s, err := Open(filepath.Join(host, "volumes"))
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, "v", 24<<20)
	hog, err := os.Create(filepath.Join(host, "hog"))
	if err != nil {
		t.Fatal(err)
	}
	for buf := make([]byte, 1<<20); err == nil; {
		_, err = hog.Write(buf)
	}
	hog.Close()
	if !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("filling the host file system: %v", err)
	}
	if free := freeBytes(t, host); free > 1<<20 {
		t.Fatalf("host file system still has %d bytes free", free)
	}

	m := attach(t, s, "v", false)
	out, err := runInVolume(t, m, "fill")
	if err != nil {
		t.Fatalf("fill: %v\n%s", err, out)
	}
	var res fillResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("fill output %q: %v", out, err)
	}
	if res.Errno != int(unix.ENOSPC) {
		t.Errorf("filling the volume on a full host ended with %q, want ENOSPC", res.Err)
	}
	t.Logf("wrote %d bytes into the 24 MiB volume on a full host", res.Written)
	dfd, err := unix.Openat(int(m.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Syncfs(dfd); err != nil {
		t.Errorf("syncfs of the full volume on a full host: %v", err)
	}
	if err := unix.Unlinkat(dfd, "fill", 0); err != nil {
		t.Errorf("remove the fill file: %v", err)
	}
	unix.Close(dfd)
	if err := writeAt(m, "after", []byte("still writable")); err != nil {
		t.Errorf("write after filling the volume on a full host: %v", err)
	}
	m.Close()
	waitDetached(t, s, "v")

	fsck, err := lookSbin("e2fsck")
	if err != nil {
		t.Skip(err)
	}
	if out, err := exec.Command(fsck, "-fn", s.imagePath("v")).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn of the volume: %v\n%s", err, out)
	}
	os.Remove(filepath.Join(host, "hog"))
}

//go:build linux

package integration

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// On a state root whose file system has 64 MiB, oak volume create --size
// 100m is refused with a message naming the volume, its size and the free
// space, and leaves no volume behind; --sparse overcommits on request; a
// volume that fits holds its whole size on the host from the start.
func TestVolumeReserve(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	if err := syscall.Mount("tmpfs", o.root, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size=64m,mode=0700"); err != nil {
		t.Fatalf("mount a 64 MiB tmpfs as the state root: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(o.root, syscall.MNT_DETACH) })

	r := o.run("volume", "create", "--size", "100m", "v")
	for _, want := range []string{`"v"`, "100.0 MiB", "free", "--sparse"} {
		if r.code == 0 || !strings.Contains(r.stderr, want) {
			t.Errorf("volume create --size 100m on 64 MiB: want a refusal mentioning %s\n%s", want, r)
		}
	}
	if names, r := o.volumeNames(); len(names) != 0 {
		t.Errorf("the refused volume is listed:\n%s", r)
	}

	o.newVolume("fits", "32m")
	v, _ := o.inspectVolume("fits")
	var st syscall.Stat_t
	img := filepath.Join(o.root, "volumes", "vols", "fits", "disk.img")
	if err := syscall.Stat(img, &st); err != nil || st.Blocks*512 < 32<<20 || v.Allocated < 32<<20 {
		t.Errorf("a 32 MiB volume: %d bytes allocated on the host (inspect: %d), %v; want all of it", st.Blocks*512, v.Allocated, err)
	}

	if r := o.run("volume", "create", "--sparse", "--size", "100m", "over"); r.code != 0 {
		t.Errorf("volume create --sparse --size 100m with about 30 MiB free:\n%s", r)
	}
	if v, r := o.inspectVolume("over"); v.Allocated >= 16<<20 {
		t.Errorf("a sparse volume took %s of host space:\n%s", fmt.Sprint(v.Allocated), r)
	}
}

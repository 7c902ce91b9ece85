package bench

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// needOak skips a test that starts oak containers with volumes unless it
// runs as root with mkfs.ext4, and returns an oak binary built from this
// repository and the static load program.
func needOak(t *testing.T) (oak, load string) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts containers")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: volumes are loop devices")
	}
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		if _, err := os.Stat("/sbin/mkfs.ext4"); err != nil {
			t.Skip("no mkfs.ext4")
		}
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to build oak")
	}
	oak = filepath.Join(t.TempDir(), "oak")
	cmd := exec.Command(goBin, "build", "-o", oak, "../cmd/oak")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building oak: %v\n%s", err, msg)
	}
	return oak, buildStaticLoad(t)
}

// TestStorageOak runs the whole benchmark with tiny sizes: both variants
// and, if this oak can import images, the import part. It checks the shape
// of the report (no timings) and that nothing is left behind.
func TestStorageOak(t *testing.T) {
	oak, load := needOak(t)
	work := t.TempDir()
	var log bytes.Buffer
	rep, err := Storage(context.Background(), StorageConfig{
		SeqMiB:      4,
		SmallFiles:  10,
		Rounds:      2,
		ImageMiB:    2,
		ImageLayers: 2,
		OakPath:     oak,
		LoadPath:    load,
		WorkDir:     work,
		Log:         &log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("progress:\n%s", log.String())
	for _, name := range []string{VariantHost, VariantVolume} {
		v := rep.Result(name)
		if v == nil || v.Error != "" {
			t.Fatalf("%s = %+v", name, v)
		}
		for test, s := range map[string]Series{"seq write": v.SeqWrite, "seq read": v.SeqRead, "small files": v.SmallFiles} {
			if len(s.Values) != 2 || s.Median <= 0 {
				t.Errorf("%s %s = %+v, want 2 rounds", name, test, s)
			}
		}
	}
	if vol := rep.Result(VariantVolume); !strings.HasPrefix(vol.Mount, "ext4 /dev/loop") || !strings.Contains(vol.Detail, "-v oak-bench-storage-") {
		t.Errorf("volume mount %q, detail %q", vol.Mount, vol.Detail)
	}
	for _, v := range rep.Variants {
		if v.Disk != "" && (len(v.DiskFlushes.Values) != 2 || len(v.DiskWrites.Values) != 2) {
			t.Errorf("%s: disk %s counted %+v writes, %+v flushes; want 2 rounds", v.Name, v.Disk, v.DiskWrites, v.DiskFlushes)
		}
	}
	if len(rep.Ratios) != 1 || rep.Ratios[0].SeqWrite <= 0 || rep.Ratios[0].SeqRead <= 0 || rep.Ratios[0].SmallFiles <= 0 {
		t.Errorf("ratios = %+v, want volume/host for every test", rep.Ratios)
	}
	if strings.HasPrefix(rep.Cache, "NOT") {
		t.Errorf("page cache: %s", rep.Cache)
	}
	im := rep.Import
	switch {
	case im == nil:
		t.Error("no import part")
	case im.Skipped != "":
		t.Logf("import part skipped: %s", im.Skipped)
	case im.Error != "":
		t.Errorf("import part failed: %s", im.Error)
	default:
		for what, s := range map[string]Series{"import": im.Seconds, "MB/s": im.MBps, "first start": im.FirstStart,
			"next start": im.NextStart, "directory start": im.DirStart} {
			if len(s.Values) != 2 || s.Median <= 0 {
				t.Errorf("import %s = %+v, want 2 rounds", what, s)
			}
		}
		if im.LayerBytes < 2<<20 || im.ArchiveBytes < im.LayerBytes {
			t.Errorf("import sizes: layers %d, archive %d", im.LayerBytes, im.ArchiveBytes)
		}
	}
	var b strings.Builder
	if err := rep.Print(&b); err != nil {
		t.Fatal(err)
	}
	t.Logf("report:\n%s", b.String())
	assertStorageClean(t, work)
}

// TestStorageOakCancel cancels the benchmark while it runs containers and
// checks that it removed everything anyway.
func TestStorageOakCancel(t *testing.T) {
	oak, load := needOak(t)
	work := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancel a moment after the volume's warm-up, somewhere in the
	// containers that follow.
	lw := &lineWatcher{match: "warm-up 1/1: volume", then: func() { time.AfterFunc(50*time.Millisecond, cancel) }}
	_, err := Storage(ctx, StorageConfig{
		Variants:   []string{VariantVolume},
		SeqMiB:     64,
		SmallFiles: 200,
		Rounds:     50,
		ImageMiB:   -1,
		OakPath:    oak,
		LoadPath:   load,
		WorkDir:    work,
		Log:        lw,
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Storage = %v, want it cancelled", err)
	}
	assertStorageClean(t, work)
}

// assertStorageClean fails if Storage left anything in work or a loop
// device bound to one of its volumes.
func assertStorageClean(t *testing.T, work string) {
	t.Helper()
	if ents, _ := os.ReadDir(work); len(ents) != 0 {
		t.Errorf("the work directory holds %d entries afterwards", len(ents))
	}
	if dev, _, ok := loopBacking(filepath.Join("oak-bench-storage-"+strconv.Itoa(os.Getpid()), "disk.img")); ok {
		t.Errorf("loop device %s still backs the benchmark's volume", dev)
	}
}

// lineWatcher calls then once, when a line containing match is written.
type lineWatcher struct {
	match string
	then  func()
	once  sync.Once
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	if strings.Contains(string(p), w.match) {
		w.once.Do(w.then)
	}
	return len(p), nil
}

func TestDiskOf(t *testing.T) {
	dir := t.TempDir()
	name, read, err := diskOf(dir)
	if err != nil {
		t.Skipf("%s: %v", dir, err)
	}
	c1, err := read()
	if err != nil {
		t.Fatal(err)
	}
	if err := writeSynced(filepath.Join(dir, "f"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	c2, err := read()
	if err != nil {
		t.Fatal(err)
	}
	if name == "" || c2.writes < c1.writes || c2.flushes < c1.flushes {
		t.Errorf("disk %q: counters went from %+v to %+v", name, c1, c2)
	}
	if _, _, err := diskOf("/proc"); err == nil {
		t.Error("diskOf(/proc) found a block device")
	}
}

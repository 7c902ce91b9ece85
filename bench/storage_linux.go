package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// dropCaches writes back every dirty page (sync) and then drops the host's
// clean page cache, dentries and inodes (echo 3 > drop_caches), so that the
// next read comes from the disk. It needs root.
func dropCaches() error {
	unix.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0); err != nil {
		return fmt.Errorf("drop page cache: %w", err)
	}
	return nil
}

// freeBytes returns the bytes an unprivileged user may still write on the
// file system that holds dir.
func freeBytes(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * st.Bsize, nil
}

// sameFileSystem reports whether a and b lie on the same file system (the
// same device number).
func sameFileSystem(a, b string) (bool, error) {
	var sa, sb unix.Stat_t
	if err := unix.Stat(a, &sa); err != nil {
		return false, fmt.Errorf("stat %s: %w", a, err)
	}
	if err := unix.Stat(b, &sb); err != nil {
		return false, fmt.Errorf("stat %s: %w", b, err)
	}
	return sa.Dev == sb.Dev, nil
}

// loopBacking finds the loop device bound to a backing file whose path
// ends in suffix and returns the device and whether it does direct I/O to
// that file ("on", "off"), also when the file has been deleted since. It
// returns ok false when no loop device has such a file now.
func loopBacking(suffix string) (dev, directIO string, ok bool) {
	devs, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, p := range devs {
		b, err := os.ReadFile(p)
		backing := strings.TrimSuffix(strings.TrimSpace(string(b)), " (deleted)")
		if err != nil || !strings.HasSuffix(backing, suffix) {
			continue
		}
		dir := filepath.Dir(p)
		dev = "/dev/" + filepath.Base(filepath.Dir(dir))
		directIO = "unknown"
		if d, err := os.ReadFile(filepath.Join(dir, "dio")); err == nil {
			switch strings.TrimSpace(string(d)) {
			case "1":
				directIO = "on"
			case "0":
				directIO = "off"
			}
		}
		return dev, directIO, true
	}
	return "", "", false
}

// diskOf returns the name of the block device that holds dir ("vda",
// "nvme0n1p2") and a function that reads its counters. It fails for a
// file system without a block device of its own (tmpfs, overlay) and on
// kernels that do not count flushes (before 5.5).
func diskOf(dir string) (string, func() (diskCounters, error), error) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return "", nil, fmt.Errorf("stat %s: %w", dir, err)
	}
	sys := fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(uint64(st.Dev)), unix.Minor(uint64(st.Dev)))
	target, err := os.Readlink(sys)
	if err != nil {
		return "", nil, fmt.Errorf("%s has no block device: %w", dir, err)
	}
	read := func() (diskCounters, error) {
		b, err := os.ReadFile(filepath.Join(sys, "stat"))
		if err != nil {
			return diskCounters{}, err
		}
		return parseDiskStat(string(b))
	}
	if _, err := read(); err != nil {
		return "", nil, err
	}
	return filepath.Base(target), read, nil
}

//go:build linux

package volume

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Loop device flags (linux/loop.h); golang.org/x/sys does not define them.
const (
	loFlagsReadOnly  = 1
	loFlagsAutoclear = 4
	loFlagsDirectIO  = 16
)

// fileID identifies a file on the host: st_dev and st_ino, encoded as
// stat(2) returns them (LOOP_GET_STATUS64 reports its backing file's
// lo_device and lo_inode in the same encoding).
type fileID struct{ dev, ino uint64 }

func statID(st *unix.Stat_t) fileID { return fileID{dev: uint64(st.Dev), ino: st.Ino} }

// loopDevice is a loop device this process holds open. While the
// descriptor is open the kernel does not autoclear the device: with
// LO_FLAGS_AUTOCLEAR it unbinds only on the last close of the block device,
// so holding it pins the binding we checked.
type loopDevice struct {
	num  int
	fd   int // opened O_RDONLY: a writable open would make a mount fail on kernels built without CONFIG_BLK_DEV_WRITE_MOUNTED
	info *unix.LoopInfo64
}

func (l *loopDevice) path() string { return loopPath(l.num) }

func (l *loopDevice) close() {
	if l != nil && l.fd >= 0 {
		unix.Close(l.fd)
		l.fd = -1
	}
}

func loopPath(n int) string { return "/dev/loop" + strconv.Itoa(n) }

// loopNumbers lists the loop devices that exist and may be bound. With
// sysfs it lists only those that have a "loop" attribute group, which the
// driver adds when a device is bound and removes when it is cleared; the
// ioctl on the opened device is what decides. Without sysfs it lists the
// /dev/loopN nodes.
func loopNumbers() ([]int, error) {
	var nums []int
	ents, err := os.ReadDir("/sys/block")
	if err == nil {
		for _, e := range ents {
			n, ok := loopNumber(e.Name())
			if !ok {
				continue
			}
			if _, err := os.Stat("/sys/block/" + e.Name() + "/loop"); err != nil {
				continue // not bound
			}
			nums = append(nums, n)
		}
		return nums, nil
	}
	ents, err = os.ReadDir("/dev")
	if err != nil {
		return nil, fmt.Errorf("list loop devices: %w", err)
	}
	for _, e := range ents {
		if n, ok := loopNumber(e.Name()); ok {
			nums = append(nums, n)
		}
	}
	return nums, nil
}

func loopNumber(name string) (int, bool) {
	s, ok := strings.CutPrefix(name, "loop")
	if !ok || s == "" {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || strconv.Itoa(n) != s {
		return 0, false
	}
	return n, true
}

// openLoop opens loop device n read-only and reads its status. It returns
// (nil, nil) when the device is not bound (or is being torn down: the
// kernel answers ENXIO for any state but bound) or does not exist.
func openLoop(n int) (*loopDevice, error) {
	fd, err := unix.Open(loopPath(n), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENXIO) || errors.Is(err, unix.ENODEV) {
			return nil, nil
		}
		return nil, fmt.Errorf("open %s: %w", loopPath(n), err)
	}
	info, err := unix.IoctlLoopGetStatus64(fd)
	if err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.ENXIO) {
			return nil, nil
		}
		return nil, fmt.Errorf("%s: LOOP_GET_STATUS64: %w", loopPath(n), err)
	}
	return &loopDevice{num: n, fd: fd, info: info}, nil
}

// findLoop returns the loop device bound to the file id, held open so that
// it stays bound, or nil when there is none.
func findLoop(id fileID) (*loopDevice, error) {
	nums, err := loopNumbers()
	if err != nil {
		return nil, err
	}
	for _, n := range nums {
		l, err := openLoop(n)
		if err != nil {
			return nil, err
		}
		if l == nil {
			continue
		}
		if l.info.Device == id.dev && l.info.Inode == id.ino {
			return l, nil
		}
		l.close()
	}
	return nil, nil
}

// boundLoops maps every file that backs a loop device to that device's
// number. It pins nothing: the answer may be stale by the time it is read,
// which is fine for List and Inspect.
func boundLoops() (map[fileID]int, error) {
	nums, err := loopNumbers()
	if err != nil {
		return nil, err
	}
	m := make(map[fileID]int)
	for _, n := range nums {
		l, err := openLoop(n)
		if err != nil {
			return nil, err
		}
		if l == nil {
			continue
		}
		m[fileID{dev: l.info.Device, ino: l.info.Inode}] = n
		l.close()
	}
	return m, nil
}

// newLoop binds a free loop device to the image at path, which must be the
// file id, with LO_FLAGS_AUTOCLEAR (the device unbinds itself when its last
// user, the file system, lets go) and, where the host file system allows
// it, LO_FLAGS_DIRECT_IO (no second copy of the data in the host's page
// cache; a flush inside the volume becomes an fsync of the image either
// way). The device is bound read-write even for a read-only attach: a later
// read-write attach of the same volume must share it (see Store.Attach).
func newLoop(path string, id fileID) (*loopDevice, error) {
	backing, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer unix.Close(backing)
	var st unix.Stat_t
	if err := unix.Fstat(backing, &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if statID(&st) != id {
		return nil, fmt.Errorf("%s: replaced while attaching", path)
	}
	ctl, err := unix.Open("/dev/loop-control", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/loop-control: %w", err)
	}
	defer unix.Close(ctl)

	// Another program (losetup, another engine) may take the free device
	// between LOOP_CTL_GET_FREE and LOOP_CONFIGURE; the kernel then answers
	// EBUSY and we ask for another one.
	var lastErr error
	for range 16 {
		n, err := unix.IoctlRetInt(ctl, unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("/dev/loop-control: LOOP_CTL_GET_FREE: %w", err)
		}
		dev, err := unix.Open(loopPath(n), unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			lastErr = fmt.Errorf("open %s: %w", loopPath(n), err)
			if errors.Is(err, unix.ENXIO) {
				continue // removed (LOOP_CTL_REMOVE) since GET_FREE
			}
			return nil, lastErr
		}
		err = configureLoop(dev, backing, path)
		if errors.Is(err, unix.EBUSY) {
			lastErr = fmt.Errorf("%s: LOOP_CONFIGURE: %w", loopPath(n), err)
			unix.Close(dev)
			continue
		}
		if err != nil {
			unix.Close(dev)
			return nil, fmt.Errorf("%s: LOOP_CONFIGURE %s: %w", loopPath(n), path, err)
		}
		// Pin the device with a read-only descriptor, then drop the
		// writable one (see loopDevice.fd). If anything fails from here
		// on, closing the last descriptor unbinds the device (autoclear).
		l, err := openLoop(n)
		unix.Close(dev)
		if err != nil {
			return nil, err
		}
		if l == nil || l.info.Device != id.dev || l.info.Inode != id.ino {
			l.close()
			return nil, fmt.Errorf("%s: lost its binding to %s right after LOOP_CONFIGURE", loopPath(n), path)
		}
		return l, nil
	}
	return nil, fmt.Errorf("bind %s to a loop device: every free device was taken first (last: %w)", path, lastErr)
}

// configureLoop binds the loop device dev to backing, with direct I/O if
// the kernel accepts it for this file.
func configureLoop(dev, backing int, path string) error {
	cfg := unix.LoopConfig{Fd: uint32(backing)}
	copy(cfg.Info.File_name[:len(cfg.Info.File_name)-1], path)
	cfg.Info.Flags = loFlagsAutoclear | loFlagsDirectIO
	err := unix.IoctlLoopConfigure(dev, &cfg)
	if errors.Is(err, unix.EINVAL) {
		// Older kernels refuse LO_FLAGS_DIRECT_IO when the backing file
		// system cannot do direct I/O at the loop's block size.
		cfg.Info.Flags = loFlagsAutoclear
		err = unix.IoctlLoopConfigure(dev, &cfg)
	}
	return err
}

// mountLoop makes a detached mount of the ext4 file system on the loop
// device l. If the file system is mounted already (another attach of the
// same volume), the kernel finds its superblock by the device number and
// the new mount shares it; mount options given here would then be ignored,
// so none are: read-only is a property of the mount, not the superblock.
// (Asking for a read-only superblock while a read-write one exists fails
// with EBUSY.)
func mountLoop(l *loopDevice, readOnly bool) (*os.File, error) {
	fsfd, err := unix.Fsopen("ext4", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("fsopen ext4: %w", err)
	}
	defer unix.Close(fsfd)
	if err := unix.FsconfigSetString(fsfd, "source", l.path()); err != nil {
		return nil, fmt.Errorf("fsconfig source=%s: %w%s", l.path(), err, fsLog(fsfd))
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return nil, fmt.Errorf("mount ext4 on %s: %w%s", l.path(), err, fsLog(fsfd))
	}
	attr := unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV
	if readOnly {
		attr |= unix.MOUNT_ATTR_RDONLY
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, attr)
	if err != nil {
		return nil, fmt.Errorf("fsmount %s: %w%s", l.path(), err, fsLog(fsfd))
	}
	return os.NewFile(uintptr(mfd), "volume-mount:"+l.path()), nil
}

// fsLog reads the messages the kernel left on a file system context
// (lines like "e ext4: ..."), for error reports.
func fsLog(fsfd int) string {
	var msgs []string
	buf := make([]byte, 1024)
	for range 8 {
		n, err := unix.Read(fsfd, buf)
		if err != nil || n <= 0 {
			break
		}
		msgs = append(msgs, strings.TrimSpace(string(buf[:n])))
	}
	if len(msgs) == 0 {
		return ""
	}
	return " (" + strings.Join(msgs, "; ") + ")"
}

// retryableAttach reports errors after which Attach looks for the loop
// device again: the device it found went away before it was pinned.
func retryableAttach(err error) bool {
	return errors.Is(err, unix.ENXIO) || errors.Is(err, unix.ENODEV)
}

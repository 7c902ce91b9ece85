//go:build linux

package image

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// lockShared takes a shared flock on dir and returns its release. Imports
// hold it on tmp/ while they have work there; Check takes it exclusively
// before clearing tmp/, so it never removes another process's unpack. The
// kernel drops the lock when a process dies, however it dies.
func lockShared(dir string) (func(), error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	for {
		err = unix.Flock(fd, unix.LOCK_SH)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "flock", Path: dir, Err: err}
	}
	return func() { unix.Close(fd) }, nil
}

// tryLockExclusive takes an exclusive flock on dir if nobody holds one.
func tryLockExclusive(dir string) (func(), bool, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, false, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(fd)
		if err == unix.EWOULDBLOCK {
			return nil, false, nil
		}
		return nil, false, &os.PathError{Op: "flock", Path: dir, Err: err}
	}
	return func() { unix.Close(fd) }, true, nil
}

// renameNoReplace renames old to new unless new exists (then os.ErrExist):
// a layer directory, once in place, is never swapped under a container.
func renameNoReplace(old, new string) error {
	err := unix.Renameat2(unix.AT_FDCWD, old, unix.AT_FDCWD, new, unix.RENAME_NOREPLACE)
	if err == unix.EEXIST || err == unix.ENOTEMPTY {
		return os.ErrExist
	}
	if err == unix.EINVAL || err == unix.ENOSYS {
		// A file system without RENAME_NOREPLACE: check, then rename. The
		// store's metadata lock is held, so no other store races us.
		if _, serr := os.Lstat(new); serr == nil {
			return os.ErrExist
		} else if !errors.Is(serr, os.ErrNotExist) {
			return serr
		}
		return os.Rename(old, new)
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: old, New: new, Err: err}
	}
	return nil
}

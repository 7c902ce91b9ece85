//go:build linux

package image

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// fdWriter writes a layer as an overlayfs lower directory. Every name is
// resolved one component at a time from a directory file descriptor with
// O_NOFOLLOW, so a symbolic link the layer created earlier is never
// followed: an entry "a/b" where "a" is a symlink is refused, and the
// layer cannot reach anything outside its root.
type fdWriter struct {
	root  int  // the layer root, O_RDONLY|O_DIRECTORY
	chown bool // running as root: set owners from the tar headers

	// The directory of the previous entry stays open: layers list a
	// directory's files together, so most entries need no lookup.
	cacheDir string
	cacheFD  int

	dirs []dirTimes // set at Finish, after everything inside was written
	buf  []byte
}

type dirTimes struct {
	name         string
	atime, mtime time.Time
}

const (
	openDirFlags  = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	openFileFlags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	opaqueXattr   = "user.overlay.opaque" // the root overlay is mounted with userxattr (sandbox), so unpacking needs no CAP_SYS_ADMIN
)

func newLayerWriter(dir string) (layerWriter, error) {
	fd, err := unix.Open(dir, openDirFlags, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	// A layer root that no "./" entry describes is an ordinary 0755
	// directory owned by root (os.MkdirTemp made it 0700).
	if err := unix.Fchmod(fd, 0o755); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "chmod", Path: dir, Err: err}
	}
	return &fdWriter{root: fd, chown: os.Geteuid() == 0, cacheFD: -1, buf: make([]byte, 256<<10)}, nil
}

func (w *fdWriter) Close() error {
	w.dropCache()
	if w.root >= 0 {
		unix.Close(w.root)
		w.root = -1
	}
	return nil
}

func (w *fdWriter) dropCache() {
	if w.cacheFD >= 0 {
		unix.Close(w.cacheFD)
	}
	w.cacheDir, w.cacheFD = "", -1
}

// parent returns a descriptor of name's directory, creating missing
// directories (tars often leave them out), and name's last component. The
// descriptor stays valid until the next call; the caller must not close it.
func (w *fdWriter) parent(name string) (int, string, error) {
	dir, base := splitName(name)
	fd, err := w.dirFD(dir)
	return fd, base, err
}

// dirFD returns a descriptor of dir ("" is the root), creating it and its
// parents where missing, with the same lifetime rule as parent.
func (w *fdWriter) dirFD(dir string) (int, error) {
	if dir == "" {
		return w.root, nil
	}
	if dir == w.cacheDir && w.cacheFD >= 0 {
		return w.cacheFD, nil
	}
	fd, err := w.walk(dir, true)
	if err != nil {
		return -1, err
	}
	w.dropCache()
	w.cacheDir, w.cacheFD = dir, fd
	return fd, nil
}

// walk opens dir below the root one component at a time, never following
// a symbolic link. The caller closes the descriptor it returns.
func (w *fdWriter) walk(dir string, create bool) (int, error) {
	cur := w.root
	done := 0
	for _, comp := range strings.Split(dir, "/") {
		fd, err := unix.Openat(cur, comp, openDirFlags, 0)
		if err == unix.ENOENT && create {
			if err = unix.Mkdirat(cur, comp, 0o755); err == nil || err == unix.EEXIST {
				fd, err = unix.Openat(cur, comp, openDirFlags, 0)
				if err == nil {
					err = unix.Fchmod(fd, 0o755) // whatever the umask
				}
			}
		}
		if err != nil {
			err = w.describe(cur, comp, dir[:done+len(comp)], err)
			if cur != w.root {
				unix.Close(cur)
			}
			return -1, err
		}
		if cur != w.root {
			unix.Close(cur)
		}
		cur = fd
		done += len(comp) + 1
	}
	return cur, nil
}

// describe turns a failed lookup of comp (at path p of the layer) into the
// error a user can act on.
func (w *fdWriter) describe(dirfd int, comp, p string, err error) error {
	var st unix.Stat_t
	if unix.Fstatat(dirfd, comp, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			return fmt.Errorf("%w: %q is a symbolic link", ErrSymlinkWrite, p)
		case unix.S_IFDIR:
		default:
			return fmt.Errorf("%w: %q is not a directory", ErrBadEntry, p)
		}
	}
	return fmt.Errorf("%s: %w", p, err)
}

// remove deletes whatever is at name (a later entry replaces an earlier
// one, as tar does), recursively for a directory.
func (w *fdWriter) remove(dirfd int, base, name string) error {
	if strings.HasPrefix(w.cacheDir+"/", name+"/") {
		w.dropCache() // it is about to be deleted; dirfd is never below name
	}
	err := unix.Unlinkat(dirfd, base, 0)
	if err == unix.EISDIR {
		err = removeAllAt(dirfd, base)
	}
	if err != nil && err != unix.ENOENT {
		return fmt.Errorf("replacing %q: %w", name, err)
	}
	return nil
}

// removeAllAt removes the directory base below dirfd and everything in it,
// without following symbolic links.
func removeAllAt(dirfd int, base string) error {
	fd, err := unix.Openat(dirfd, base, openDirFlags, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), base)
	for {
		names, err := f.Readdirnames(256)
		for _, n := range names {
			e := unix.Unlinkat(fd, n, 0)
			if e == unix.EISDIR {
				e = removeAllAt(fd, n)
			}
			if e != nil && e != unix.ENOENT {
				f.Close()
				return e
			}
		}
		if err == io.EOF || len(names) == 0 {
			break
		}
		if err != nil {
			f.Close()
			return err
		}
	}
	f.Close()
	return unix.Unlinkat(dirfd, base, unix.AT_REMOVEDIR)
}

// create runs mk to make name's inode, replacing whatever an earlier
// entry put there.
func (w *fdWriter) create(name string, mk func(dirfd int, base string) error) (int, string, error) {
	dirfd, base, err := w.parent(name)
	if err != nil {
		return -1, "", err
	}
	err = mk(dirfd, base)
	if err == unix.EEXIST {
		if err = w.remove(dirfd, base, name); err != nil {
			return -1, "", err
		}
		// remove may have closed a cached descriptor below name, never dirfd.
		err = mk(dirfd, base)
	}
	if err != nil {
		return -1, "", err
	}
	return dirfd, base, nil
}

func (w *fdWriter) own(dirfd int, base string, m meta) error {
	if !w.chown {
		return nil
	}
	return unix.Fchownat(dirfd, base, m.uid, m.gid, unix.AT_SYMLINK_NOFOLLOW)
}

func setTimes(dirfd int, base string, atime, mtime time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	return unix.UtimesNanoAt(dirfd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// onlyWriter hides os.File's ReadFrom so that io.CopyBuffer uses our
// large buffer instead of 32 KiB writes.
type onlyWriter struct{ io.Writer }

func (w *fdWriter) File(name string, m meta, size int64, r io.Reader) error {
	var fd int
	dirfd, base, err := w.create(name, func(dirfd int, base string) (err error) {
		fd, err = unix.Openat(dirfd, base, openFileFlags, 0o600)
		return err
	})
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	n, err := io.CopyBuffer(onlyWriter{f}, io.LimitReader(r, size), w.buf)
	if err == nil && n != size {
		err = io.ErrUnexpectedEOF
	}
	if err == nil && w.chown {
		err = unix.Fchown(fd, m.uid, m.gid)
	}
	if err == nil {
		err = unix.Fchmod(fd, m.mode) // after chown, which clears set-id bits
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return setTimes(dirfd, base, m.atime, m.mtime)
}

func (w *fdWriter) Dir(name string, m meta) error {
	var fd int
	if name == "" {
		fd = w.root
	} else {
		dirfd, base, err := w.parent(name)
		if err != nil {
			return err
		}
		err = unix.Mkdirat(dirfd, base, 0o700)
		if err == unix.EEXIST {
			var st unix.Stat_t
			if err = unix.Fstatat(dirfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
				if err = w.remove(dirfd, base, name); err == nil {
					err = unix.Mkdirat(dirfd, base, 0o700)
				}
			}
		}
		if err != nil {
			return err
		}
		if fd, err = unix.Openat(dirfd, base, openDirFlags, 0); err != nil {
			return err
		}
		defer unix.Close(fd)
	}
	if w.chown {
		if err := unix.Fchown(fd, m.uid, m.gid); err != nil {
			return err
		}
	}
	if err := unix.Fchmod(fd, m.mode); err != nil {
		return err
	}
	w.dirs = append(w.dirs, dirTimes{name, m.atime, m.mtime})
	return nil
}

func (w *fdWriter) Symlink(name, target string, m meta) error {
	dirfd, base, err := w.create(name, func(dirfd int, base string) error {
		return unix.Symlinkat(target, dirfd, base)
	})
	if err != nil {
		return err
	}
	if err := w.own(dirfd, base, m); err != nil {
		return err
	}
	return setTimes(dirfd, base, m.atime, m.mtime)
}

// Hardlink links name to target, an earlier entry of the same layer. The
// target's directories are resolved like any name (no symlinks), and
// linkat without AT_SYMLINK_FOLLOW links a symlink itself, not what it
// points at.
func (w *fdWriter) Hardlink(name, target string) error {
	tdir, tbase := splitName(target)
	tfd := w.root
	if tdir != "" {
		fd, err := w.walk(tdir, false)
		if err != nil {
			return fmt.Errorf("hardlink target %q: %w", target, err)
		}
		defer unix.Close(fd)
		tfd = fd
	}
	var st unix.Stat_t
	if err := unix.Fstatat(tfd, tbase, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if err == unix.ENOENT {
			return fmt.Errorf("%w: hardlink target %q is not in this layer", ErrBadEntry, target)
		}
		return fmt.Errorf("hardlink target %q: %w", target, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return fmt.Errorf("%w: hardlink target %q is a directory", ErrBadEntry, target)
	}
	dirfd, base, err := w.parent(name)
	if err != nil {
		return err
	}
	err = unix.Linkat(tfd, tbase, dirfd, base, 0)
	if err == unix.EEXIST {
		var cur unix.Stat_t
		if unix.Fstatat(dirfd, base, &cur, unix.AT_SYMLINK_NOFOLLOW) == nil && cur.Dev == st.Dev && cur.Ino == st.Ino {
			return nil // already that file
		}
		if err = w.remove(dirfd, base, name); err == nil {
			err = unix.Linkat(tfd, tbase, dirfd, base, 0)
		}
	}
	return err
}

func (w *fdWriter) Fifo(name string, m meta) error {
	dirfd, base, err := w.create(name, func(dirfd int, base string) error {
		return unix.Mknodat(dirfd, base, unix.S_IFIFO|0o600, 0)
	})
	if err != nil {
		return err
	}
	if err := w.own(dirfd, base, m); err != nil {
		return err
	}
	// The FIFO was just made in this private tree, nothing can have
	// swapped it for a symlink (fchmodat cannot refuse to follow one).
	if err := unix.Fchmodat(dirfd, base, m.mode, 0); err != nil {
		return err
	}
	return setTimes(dirfd, base, m.atime, m.mtime)
}

func (w *fdWriter) Whiteout(name string) error {
	_, _, err := w.create(name, func(dirfd int, base string) error {
		return unix.Mknodat(dirfd, base, unix.S_IFCHR, 0) // device 0/0, owned by us (root)
	})
	if err != nil {
		return fmt.Errorf("creating whiteout: %w", err)
	}
	return nil
}

func (w *fdWriter) Opaque(dir string) error {
	fd, err := w.dirFD(dir)
	if err != nil {
		return err
	}
	if err := unix.Fsetxattr(fd, opaqueXattr, []byte("y"), 0); err != nil {
		return fmt.Errorf("marking %q opaque: setxattr %s: %w", dir, opaqueXattr, err)
	}
	return nil
}

// Finish sets directory times (the last thing, since creating entries
// changes them) and makes the layer durable with one syncfs: cheaper than
// an fsync per file and the same guarantee before the layer is renamed
// into place.
func (w *fdWriter) Finish() error {
	w.dropCache()
	for i := len(w.dirs) - 1; i >= 0; i-- {
		d := w.dirs[i]
		if d.name == "" {
			if err := setTimes(w.root, ".", d.atime, d.mtime); err != nil {
				return err
			}
			continue
		}
		dir, base := splitName(d.name)
		dirfd := w.root
		if dir != "" {
			fd, err := w.walk(dir, false)
			if err != nil {
				continue // a later entry replaced it
			}
			dirfd = fd
		}
		var st unix.Stat_t
		err := unix.Fstatat(dirfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			err = setTimes(dirfd, base, d.atime, d.mtime)
		} else {
			err = nil
		}
		if dirfd != w.root {
			unix.Close(dirfd)
		}
		if err != nil {
			return fmt.Errorf("setting times of %q: %w", d.name, err)
		}
	}
	if err := unix.Syncfs(w.root); err != nil {
		return fmt.Errorf("syncfs: %w", err)
	}
	return nil
}

package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Limits bound what one layer may ask of the store. A layer that exceeds
// any of them is refused as a whole.
type Limits struct {
	MaxEntrySize int64 // bytes in one file (the size its tar header claims)
	MaxEntries   int   // tar entries in one layer
	MaxLayerSize int64 // uncompressed bytes of one layer
	MaxID        int   // highest uid or gid a file may be owned by
}

// DefaultLimits are generous for real images and still refuse a header
// that claims an absurd size before a byte of it is written.
var DefaultLimits = Limits{
	MaxEntrySize: 16 << 30,
	MaxEntries:   1 << 20,
	MaxLayerSize: 64 << 30,
	MaxID:        65535,
}

// maxPath is Linux's PATH_MAX, less the NUL: no longer name or symlink
// target can be used inside a container anyway, and it bounds the work of
// resolving a name one component at a time.
const maxPath = 4095

// Whiteout names, as the OCI image spec defines them.
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh." // AUFS bookkeeping (".wh..wh.plnk", ...): skipped
	whiteoutOpaque = ".wh..wh..opq"
)

// meta is what the unpacker keeps of a tar header for one inode.
type meta struct {
	mode         uint32 // permission bits and sticky; setuid and setgid are already stripped
	uid, gid     int
	atime, mtime time.Time
}

// layerWriter creates the file system objects of one layer below its root.
// Every name it is given is clean and relative: no "", ".", ".." or empty
// components, no leading or trailing slash; "" alone means the root. It
// must never follow a symbolic link while resolving a name's directory.
type layerWriter interface {
	Dir(name string, m meta) error
	File(name string, m meta, size int64, r io.Reader) error
	Symlink(name, target string, m meta) error
	Hardlink(name, target string) error
	Fifo(name string, m meta) error
	Whiteout(name string) error // an overlayfs whiteout for name: a 0/0 character device
	Opaque(dir string) error    // mark dir opaque: hide what lower layers have in it
	Finish() error              // set directory times, make everything durable
	Close() error
}

// unpackStats describes an unpacked layer.
type unpackStats struct {
	entries       int
	strippedSetID int // files whose setuid or setgid bit was dropped
	devices       int // device nodes left out
	firstDevice   string
}

// unpackTar reads a layer's (uncompressed) tar stream and hands each entry
// to w, after refusing what a layer must not contain. Errors about an
// entry are *entryError.
func unpackTar(ctx context.Context, r io.Reader, w layerWriter, lim Limits) (unpackStats, error) {
	var st unpackStats
	tr := tar.NewReader(r)
	last := ""
	for {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return st, nil
		}
		// archive/tar may flag names it considers insecure (GODEBUG
		// tarinsecurepath=0) but still returns the header; the checks
		// below refuse them with a better message.
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) {
			if last == "" {
				return st, fmt.Errorf("reading the first tar header: %w", err)
			}
			return st, fmt.Errorf("reading the tar header after entry %q: %w", last, err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		last = hdr.Name
		st.entries++
		if st.entries > lim.MaxEntries {
			return st, &entryError{hdr.Name, fmt.Errorf("%w: more than %d entries in one layer", ErrLimit, lim.MaxEntries)}
		}
		stripped, err := unpackEntry(tr, hdr, w, lim)
		if errors.Is(err, errDevice) {
			if st.devices++; st.devices == 1 {
				st.firstDevice = hdr.Name + ": " + err.Error()
			}
			continue
		}
		if err != nil {
			return st, &entryError{hdr.Name, err}
		}
		if stripped {
			st.strippedSetID++
		}
	}
}

// errDevice marks a device node entry, which unpackTar leaves out.
var errDevice = errors.New("device node left out")

// unpackEntry refuses or writes one entry. It reports whether a setuid or
// setgid bit was stripped.
func unpackEntry(tr *tar.Reader, hdr *tar.Header, w layerWriter, lim Limits) (bool, error) {
	name, err := cleanEntryName(hdr.Name)
	if err != nil {
		return false, err
	}
	if hdr.Size > lim.MaxEntrySize {
		return false, fmt.Errorf("%w: size %d is more than %d bytes", ErrLimit, hdr.Size, lim.MaxEntrySize)
	}
	if hdr.Uid < 0 || hdr.Uid > lim.MaxID || hdr.Gid < 0 || hdr.Gid > lim.MaxID {
		return false, fmt.Errorf("%w: owner %d:%d is outside 0..%d", ErrLimit, hdr.Uid, hdr.Gid, lim.MaxID)
	}
	dir, base := splitName(name)
	if err := checkWhiteoutDirs(dir); err != nil {
		return false, err
	}
	if strings.HasPrefix(base, whiteoutPrefix) {
		switch {
		case base == whiteoutOpaque:
			return false, w.Opaque(dir)
		case strings.HasPrefix(base, whiteoutMeta):
			return false, nil
		}
		target := strings.TrimPrefix(base, whiteoutPrefix)
		if target == "" || target == "." || target == ".." {
			return false, fmt.Errorf("%w: whiteout names no file", ErrBadEntry)
		}
		return false, w.Whiteout(joinName(dir, target))
	}

	// Setuid and setgid bits are stripped, not refused: real distribution
	// images carry them (passwd, su, mount), and a container runs with
	// no_new_privs on a nosuid mount, where they would do nothing anyway.
	// A directory keeps setgid: there it only makes new files inherit the
	// directory's group (Debian's /var/mail), it grants nothing.
	keep := int64(0o1777)
	if hdr.Typeflag == tar.TypeDir {
		keep = 0o3777
	}
	stripped := hdr.Typeflag != tar.TypeSymlink && hdr.Mode&0o7777&^keep != 0
	m := meta{
		mode:  uint32(hdr.Mode & keep),
		uid:   hdr.Uid,
		gid:   hdr.Gid,
		mtime: hdr.ModTime,
		atime: hdr.AccessTime,
	}
	if m.atime.IsZero() {
		m.atime = m.mtime
	}

	if name == "" {
		if hdr.Typeflag != tar.TypeDir {
			return false, fmt.Errorf("%w: the layer root can only be a directory", ErrBadEntry)
		}
		return stripped, w.Dir("", m)
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeGNUSparse:
		// archive/tar turns the old TypeRegA into TypeReg and presents
		// sparse files as their full contents.
		return stripped, w.File(name, m, hdr.Size, tr)
	case tar.TypeDir:
		return stripped, w.Dir(name, m)
	case tar.TypeSymlink:
		// The target is stored as written, absolute or relative: it is
		// resolved inside the container, whose root is the image, and the
		// store itself never follows a link from a layer.
		if hdr.Linkname == "" || len(hdr.Linkname) > maxPath {
			return false, fmt.Errorf("%w: symbolic link target of %d bytes", ErrBadEntry, len(hdr.Linkname))
		}
		return false, w.Symlink(name, hdr.Linkname, m)
	case tar.TypeLink:
		target, err := cleanEntryName(hdr.Linkname)
		if err != nil {
			return false, fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
		}
		if target == "" {
			return false, fmt.Errorf("%w: hardlink to the layer root", ErrBadEntry)
		}
		tdir, _ := splitName(target)
		if err := checkWhiteoutDirs(tdir); err != nil {
			return false, fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
		}
		return false, w.Hardlink(name, target)
	case tar.TypeFifo:
		return stripped, w.Fifo(name, m)
	case tar.TypeChar, tar.TypeBlock:
		// Left out, as docker does: a container could not use one anyway
		// (every mount is nodev; its /dev is Oak's), and the store never
		// makes a device that reaches host hardware.
		kind := "character"
		if hdr.Typeflag == tar.TypeBlock {
			kind = "block"
		}
		return false, fmt.Errorf("%w: %s device %d,%d", errDevice, kind, hdr.Devmajor, hdr.Devminor)
	default:
		return false, fmt.Errorf("%w: unsupported tar entry type %q", ErrBadEntry, hdr.Typeflag)
	}
}

// cleanEntryName turns a tar entry name into the store's clean relative
// form ("" for the root). Absolute names and ".." components are refused
// even where they would resolve inside the layer: no real layer needs them.
func cleanEntryName(n string) (string, error) {
	if n == "" {
		return "", fmt.Errorf("%w: empty name", ErrBadEntry)
	}
	if len(n) > maxPath {
		return "", fmt.Errorf("%w: name of %d bytes (the limit is %d)", ErrBadEntry, len(n), maxPath)
	}
	if strings.HasPrefix(n, "/") {
		return "", fmt.Errorf("%w (absolute path)", ErrEscape)
	}
	parts := strings.Split(n, "/")
	out := parts[:0]
	for _, p := range parts {
		switch p {
		case "", ".":
			continue
		case "..":
			return "", ErrEscape
		}
		out = append(out, p)
	}
	return strings.Join(out, "/"), nil
}

// checkWhiteoutDirs refuses a whiteout name used as a directory: overlayfs
// would not see what is below it, and a later whiteout would be ambiguous.
func checkWhiteoutDirs(dir string) error {
	if dir == "" {
		return nil
	}
	for _, p := range strings.Split(dir, "/") {
		if strings.HasPrefix(p, whiteoutPrefix) {
			return fmt.Errorf("%w: whiteout name %q used as a directory", ErrBadEntry, p)
		}
	}
	return nil
}

// splitName splits a clean name into its directory ("" for the root) and
// its last component.
func splitName(name string) (dir, base string) {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return "", name
	}
	return name[:i], name[i+1:]
}

func joinName(dir, base string) string {
	if dir == "" {
		return base
	}
	return dir + "/" + base
}

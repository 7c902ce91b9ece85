// Package volume stores Oak's volumes: named file systems with an exact
// byte quota that a container can be handed as a capability.
//
// A volume is an image file of exactly the requested size holding an ext4
// file system. The quota is exact because it is the file system's own
// size: a container that fills it gets ENOSPC from ext4 inside the image,
// and the host never gives the image more than its size. The size is also
// a promise the other way: Create reserves all of it on the host
// (fallocate), so a host file system that fills up later cannot fail a
// write inside the volume. A sparse image (CreateSparse) takes host space
// only as it is written; it lets volumes promise more than the host has,
// and if the host fills, ext4 inside sees I/O errors, aborts its journal
// and turns read-only until e2fsck repairs it.
//
// Nothing in the host's name space leads to a volume. Attach returns a
// detached mount (the new mount API's fsmount file descriptor) of the
// volume's file system; only the process that holds that descriptor, and
// the container it is attached into, can reach the data.
//
// On-disk layout below the store's root:
//
//	ROOT/lock                 flock(2) taken by every operation that reads or changes the store
//	ROOT/meta.db              bbolt database, bucket "volumes": name → JSON record
//	ROOT/vols/NAME/disk.img   the volume's image (exactly Size bytes, ext4; allocated unless sparse)
//	ROOT/tmp/RANDOM/          a Create or Remove in progress; removed by Check
//
// A record in meta.db is the commit point of a volume: a volume exists iff
// its record exists. Create builds and syncs the image under tmp/, renames
// its directory into vols/ and only then commits the record; Remove deletes
// the record first and the directory after. Under any crash (of Oak or of
// the host) the only leftovers are directories without a record, which
// Check removes. A record whose image is missing (something outside Oak
// deleted it) is reported as ErrBroken and can only be removed.
package volume

import (
	"errors"
	"fmt"
	"time"
)

// MinSize is the smallest volume Create accepts: 16 MiB. Below about
// 2 MiB mkfs.ext4 silently leaves out the journal, and the journal is what
// makes a volume's file system consistent after a crash; 16 MiB leaves a
// useful amount of space after ext4's own metadata (about 2.5 MiB at this
// size with 1 KiB blocks).
const MinSize = 16 << 20

// MaxSize is the largest volume Create accepts: 16 TiB, the largest file
// an ext4 host file system with 4 KiB blocks can hold.
const MaxSize = 16 << 40

// Volume describes a stored volume.
type Volume struct {
	Name    string    // the volume's name, see ValidName
	Size    int64     // bytes of its image: the file system's size and the most the host ever gives it
	Created time.Time // when Create committed it (UTC)

	// Sparse reports a volume made by CreateSparse: its host space is not
	// reserved.
	Sparse bool

	// Owner, if not nil, was given at creation: the ids (as the container
	// sees them) that own the volume's root directory. Such a volume is
	// not filled from an image.
	Owner *Owner

	// Allocated is the number of bytes the image occupies on the host right
	// now: at least Size for a reserved volume; for a sparse one, the file
	// system metadata and the blocks written so far (blocks freed inside the
	// volume stay allocated). It never exceeds Size by more than the host
	// file system's own overhead for the file.
	Allocated int64

	// Device is the loop device ("/dev/loop3") that backs the volume's file
	// system while it is attached somewhere, or "" when it is not attached.
	Device string

	// Missing reports a record whose image is gone (ErrBroken). Such a
	// volume can only be removed.
	Missing bool
}

// Errors the store reports, for errors.Is. Each is wrapped in an *Error that
// names the operation and the volume.
var (
	// ErrBadName: the name does not match [a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}.
	ErrBadName = errors.New("invalid volume name: must match [a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}")
	// ErrBadSize: the size is below MinSize or above MaxSize.
	ErrBadSize = fmt.Errorf("invalid volume size: must be between %d and %d bytes", MinSize, int64(MaxSize))
	// ErrNoSpace: the host file system has not the room to reserve the
	// volume's size.
	ErrNoSpace = errors.New("not enough free space on the host")
	// ErrNotFound: no volume has that name.
	ErrNotFound = errors.New("no such volume")
	// ErrExists: Create was asked for a name that is taken.
	ErrExists = errors.New("volume already exists")
	// ErrAttached: Remove was asked for a volume whose file system is still
	// mounted somewhere (its image is bound to a loop device).
	ErrAttached = errors.New("volume is attached")
	// ErrBroken: the volume's record exists but its image is gone or not
	// the size the record says. Only Remove works on such a volume.
	ErrBroken = errors.New("volume record has no matching image")
	// ErrUnsupported: volumes need Linux (loop devices, ext4, the new mount API).
	ErrUnsupported = errors.New("volumes are only supported on Linux")
)

// Error reports a failed operation on one volume. Its message reads
//
//	volume attach "web-data": no such volume
type Error struct {
	Op     string // "create", "attach", "remove", "inspect", "check"
	Volume string // the name as given (quoted in the message: it may be anything)
	Err    error
}

func (e *Error) Error() string {
	return fmt.Sprintf("volume %s %q: %v", e.Op, e.Volume, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Owner is a uid and gid as a container sees them, 0..65535.
type Owner struct {
	UID uint32 `json:"uid"`
	GID uint32 `json:"gid"`
}

// Options are what Create may be told besides a volume's name and size.
type Options struct {
	// Sparse leaves the host space unreserved (see CreateSparse).
	Sparse bool
	// Owner owns the root directory instead of 0:0.
	Owner *Owner
}

// ValidName reports whether name is a valid volume name:
// [a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}. A valid name is a single path component
// that is never "." or "..", so it can name a directory of the store.
func ValidName(name string) bool { return DockerName(name, 64) }

// DockerName reports whether name follows docker's rule for object names,
// [a-zA-Z0-9][a-zA-Z0-9_.-]*, in at most max bytes: one path component,
// never "." or "..", never starting like a flag, holding nothing a terminal
// or a table would interpret.
func DockerName(name string, max int) bool {
	if len(name) == 0 || len(name) > max {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '_' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// CheckName returns nil for a valid name and an *Error wrapping ErrBadName,
// naming op and the input, for any other.
func CheckName(op, name string) error {
	if !ValidName(name) {
		return &Error{Op: op, Volume: name, Err: ErrBadName}
	}
	return nil
}

// Report is what Repair found and did.
type Report struct {
	// Removed lists the leftovers of interrupted operations that were
	// deleted, as paths below the store's root ("tmp/123", "vols/web").
	Removed []string
	// Broken lists the volumes whose record has no matching image
	// (ErrBroken). They are left in place for Remove.
	Broken []string
	// Kept lists leftovers that could not be removed because they are still
	// in use (an orphan image bound to a loop device), with the reason.
	Kept []string
}

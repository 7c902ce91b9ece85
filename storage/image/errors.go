package image

import (
	"errors"
	"fmt"
	"strings"
)

// Errors the store reports, for errors.Is. Each is wrapped with the
// operation, the image, the layer and the entry it concerns (see LayerError).
var (
	// ErrNotFound: no image matches the reference.
	ErrNotFound = errors.New("no such image")
	// ErrAmbiguous: an id prefix matches more than one image.
	ErrAmbiguous = errors.New("ambiguous image id prefix")
	// ErrBroken: an image record names a layer whose directory is gone.
	ErrBroken = errors.New("image is missing layer data")

	// ErrEscape: a layer entry's path (or hardlink target) leaves the layer
	// root: an absolute path or a ".." component.
	ErrEscape = errors.New("path escapes the layer root")
	// ErrSymlinkWrite: a layer entry would be written through a symbolic
	// link (a symlink earlier in the layer used as a directory).
	ErrSymlinkWrite = errors.New("refusing to write through a symbolic link")
	// ErrLimit: an entry, a layer or an owner id exceeds the store's Limits.
	ErrLimit = errors.New("limit exceeded")
	// ErrBadEntry: an entry the store cannot represent (unknown type,
	// malformed whiteout, hardlink to a missing file or a directory).
	ErrBadEntry = errors.New("invalid layer entry")
	// ErrDigest: content does not hash to the digest its manifest or
	// config names; the archive is corrupt or was tampered with.
	ErrDigest = errors.New("digest mismatch")
	// ErrInsecure: plain HTTP was asked for (or redirected to) a registry
	// that is not on the loopback interface.
	ErrInsecure = errors.New("plain HTTP is only allowed to loopback registries")
)

// LayerError reports a layer that could not be stored. Its message reads
//
//	image import /tmp/x.tar: layer sha256:ab…: entry "../../etc/passwd": path escapes the layer root
//
// Nothing of such a layer is kept: it was unpacked into a private
// temporary directory that is removed.
type LayerError struct {
	Op    string // "import" or "pull"
	Image string // the archive path or registry reference, and the tag when there is one
	Layer string // the layer's diffID, "sha256:<hex>"
	Entry string // the tar entry, "" when the error concerns the whole layer
	Err   error
}

func (e *LayerError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "image %s %s: layer %s: ", e.Op, e.Image, e.Layer)
	if e.Entry != "" {
		fmt.Fprintf(&b, "entry %q: ", e.Entry)
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *LayerError) Unwrap() error { return e.Err }

// entryError is what the unpacker returns: the entry and the cause. The
// importer turns it into a LayerError.
type entryError struct {
	entry string
	err   error
}

func (e *entryError) Error() string { return fmt.Sprintf("entry %q: %v", e.entry, e.err) }
func (e *entryError) Unwrap() error { return e.err }

// Package metadb opens the metadata database of a state root: the one
// bbolt file (STATE/oak.db) that holds the image and volume records, each
// store in its own buckets. Its errors name that file, the cause and what
// to do about it, whichever store asked.
package metadb

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Error reports a metadata database that could not be opened. Its message
// reads
//
//	metadata database /var/lib/oak/oak.db: timeout: another process holds it; ...
type Error struct {
	Path string // the database file
	Err  error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("metadata database %s: %v", e.Path, e.Err)
	if h := hint(e.Err, e.Path); h != "" {
		msg += "; " + h
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// hint says what a person can do about err.
func hint(err error, path string) string {
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return "another process holds it locked (find it with: fuser " + path + "); wait for it to end and retry"
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrInvalidMapping):
		return "the file is damaged: restore it from a backup, or move it aside to start over " +
			"(oak then forgets every image and volume and deletes their data)"
	case errors.Is(err, fs.ErrPermission):
		return "run oak as root"
	case errors.Is(err, fs.ErrNotExist):
		return "it is created by the first oak command that stores an image or a volume"
	}
	return ""
}

// Open opens the database at path (creating it unless readOnly), waiting
// up to timeout for another process's lock. Any error is an *Error.
func Open(path string, readOnly bool, timeout time.Duration) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, ReadOnly: readOnly})
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is in the message already
		}
		return nil, &Error{Path: path, Err: err}
	}
	return db, nil
}

//go:build !linux

package image

import (
	"errors"
	"os"
)

// Without Linux there is no unpacking (see unpack_other.go); these keep the
// metadata side (ls, rm, Check) working.

func lockShared(dir string) (func(), error) { return func() {}, nil }

func tryLockExclusive(dir string) (func(), bool, error) { return func() {}, true, nil }

func renameNoReplace(old, new string) error {
	if _, err := os.Lstat(new); err == nil {
		return os.ErrExist
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return os.Rename(old, new)
}

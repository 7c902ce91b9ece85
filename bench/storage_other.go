//go:build !linux

package bench

import "errors"

var errNotLinux = errors.New("needs Linux")

// dropCaches drops the host's page cache, on Linux only.
func dropCaches() error { return errNotLinux }

// freeBytes is Linux-only here; elsewhere the space check is skipped.
func freeBytes(string) (int64, error) { return 0, errNotLinux }

// sameFileSystem is Linux-only here.
func sameFileSystem(a, b string) (bool, error) { return false, errNotLinux }

// loopBacking is Linux-only: volumes need loop devices.
func loopBacking(string) (dev, directIO string, ok bool) { return "", "", false }

// diskOf is Linux-only here.
func diskOf(string) (string, func() (diskCounters, error), error) { return "", nil, errNotLinux }

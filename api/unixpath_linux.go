package api

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// maxSunPath is the room for a path in sockaddr_un, its NUL included.
const maxSunPath = 108

// listenUnix listens on path, through /proc/self/fd when the path is too
// long for a socket address (deep test directories, long state roots).
func listenUnix(path string) (net.Listener, error) {
	var l net.Listener
	err := viaDir(path, func(p string) (err error) {
		l, err = net.Listen("unix", p)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	return l, nil
}

// dialUnix connects to path, as listenUnix listens.
func dialUnix(path string) (net.Conn, error) {
	var c net.Conn
	err := viaDir(path, func(p string) (err error) {
		c, err = net.Dial("unix", p)
		return err
	})
	return c, err
}

// viaDir calls f with path, or with /proc/self/fd/N/NAME (N an O_PATH
// descriptor of its directory) if path does not fit a socket address.
func viaDir(path string, f func(string) error) error {
	if len(path) < maxSunPath {
		return f(path)
	}
	fd, err := unix.Open(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: filepath.Dir(path), Err: err}
	}
	defer unix.Close(fd)
	return f("/proc/self/fd/" + strconv.Itoa(fd) + "/" + filepath.Base(path))
}

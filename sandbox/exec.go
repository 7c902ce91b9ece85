package sandbox

import (
	"errors"
	"syscall"
)

// Causes of an ExecError, for errors.Is: the classes docker reports with
// exit statuses 127 and 126.
var (
	// ErrCommandNotFound: the command is not in the container's root (or
	// in its PATH).
	ErrCommandNotFound = errors.New("command not found")
	// ErrCommandNotExecutable: the command is there but cannot be run (no
	// permission, not an executable format, a directory...).
	ErrCommandNotExecutable = errors.New("command cannot be executed")
)

// InitError is a system call of the container's init that failed before
// the command ran (its fork of the command: EAGAIN when the container's or
// a factory's tasks are used up). It unwraps to the errno.
type InitError struct {
	Errno syscall.Errno
	Msg   string // "fork: Resource temporarily unavailable"
}

func (e *InitError) Error() string { return e.Msg }
func (e *InitError) Unwrap() error { return e.Errno }

// ExecError reports that the container's command could not be started:
// its execve, inside the container, failed with Errno. Everything before
// it worked; the message names the command and the cause.
type ExecError struct {
	Errno syscall.Errno
	Msg   string // "exec /bin/x: Permission denied"
}

func (e *ExecError) Error() string { return e.Msg }

// Unwrap gives the errno and the class (ErrCommandNotFound or
// ErrCommandNotExecutable).
func (e *ExecError) Unwrap() []error {
	class := ErrCommandNotExecutable
	if e.Errno == syscall.ENOENT || e.Errno == syscall.ENOTDIR {
		class = ErrCommandNotFound
	}
	return []error{class, e.Errno}
}

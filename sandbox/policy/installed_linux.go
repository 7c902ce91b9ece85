package policy

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// InstalledFilter returns the one seccomp filter installed on process pid
// (its main thread), for tests that check a running container carries
// exactly Program(). It fails if the process has no filter or more than one;
// use InstalledFilters to see a stack.
//
// Reading a filter needs CAP_SYS_ADMIN in the initial user namespace, and
// the caller must not itself run under seccomp. The process is stopped for
// the moment of reading through ptrace (PTRACE_SEIZE, PTRACE_INTERRUPT) and
// then released; a signal that arrived meanwhile is delivered after.
func InstalledFilter(pid int) ([]unix.SockFilter, error) {
	filters, err := InstalledFilters(pid)
	if err != nil {
		return nil, err
	}
	if len(filters) != 1 {
		return nil, fmt.Errorf("read seccomp filter of pid %d: it has %d filters, want exactly 1", pid, len(filters))
	}
	return filters[0], nil
}

// InstalledFilters returns every seccomp filter of process pid's main
// thread, newest first (the order of PTRACE_SECCOMP_GET_FILTER's index). A
// process without seccomp filters has none. The requirements are
// InstalledFilter's.
func InstalledFilters(pid int) (filters [][]unix.SockFilter, err error) {
	// Every ptrace request must come from the thread that attached.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	if err := unix.PtraceSeize(pid); err != nil {
		return nil, fmt.Errorf("read seccomp filters of pid %d: ptrace seize: %w", pid, err)
	}
	resume := 0 // signal to deliver on detach
	defer func() {
		if derr := ptrace(unix.PTRACE_DETACH, pid, 0, uintptr(resume)); derr != nil && err == nil {
			err = fmt.Errorf("read seccomp filters of pid %d: ptrace detach: %w", pid, derr)
		}
	}()
	if err := unix.PtraceInterrupt(pid); err != nil {
		return nil, fmt.Errorf("read seccomp filters of pid %d: ptrace interrupt: %w", pid, err)
	}
	// Wait for a ptrace stop: the interrupt's, or a signal's that came
	// first (then hand that signal back on detach).
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(pid, &ws, unix.WALL, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read seccomp filters of pid %d: wait: %w", pid, err)
		}
		if !ws.Stopped() {
			return nil, fmt.Errorf("read seccomp filters of pid %d: process ended (status %#x)", pid, uint32(ws))
		}
		if event := uint32(ws) >> 16; event == 0 {
			resume = int(ws.StopSignal())
		}
		break
	}

	for i := 0; ; i++ {
		n, err := getFilter(pid, i, nil)
		if errors.Is(err, unix.ENOENT) || (i == 0 && errors.Is(err, unix.EINVAL)) {
			// ENOENT: past the oldest filter. EINVAL at 0: no filter mode.
			return filters, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read seccomp filter %d of pid %d: %w", i, pid, err)
		}
		f := make([]unix.SockFilter, n)
		if n > 0 {
			if _, err := getFilter(pid, i, f); err != nil {
				return nil, fmt.Errorf("read seccomp filter %d of pid %d: %w", i, pid, err)
			}
		}
		filters = append(filters, f)
	}
}

// getFilter is PTRACE_SECCOMP_GET_FILTER: with a nil buf it returns the
// filter's length in instructions, else it fills buf.
func getFilter(pid, index int, buf []unix.SockFilter) (int, error) {
	var n uintptr
	var errno unix.Errno
	if len(buf) == 0 {
		n, _, errno = unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_SECCOMP_GET_FILTER, uintptr(pid), uintptr(index), 0, 0, 0)
	} else {
		n, _, errno = unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_SECCOMP_GET_FILTER, uintptr(pid), uintptr(index), uintptr(unsafe.Pointer(&buf[0])), 0, 0)
	}
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

func ptrace(req, pid int, addr, data uintptr) error {
	_, _, errno := unix.Syscall6(unix.SYS_PTRACE, uintptr(req), uintptr(pid), addr, data, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

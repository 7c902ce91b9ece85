//go:build linux && amd64

package policy

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestSyscallNumbersMatchUnix checks the portable x86_64 list against
// golang.org/x/sys/unix's SYS_* constants: after an x/sys upgrade it fails
// until `go generate` is run and the new calls are reviewed.
func TestSyscallNumbersMatchUnix(t *testing.T) {
	known := 0
	for nr, name := range x86_64Syscalls {
		if name == "" {
			continue
		}
		known++
		if got, ok := unixSyscalls[name]; !ok || got != uint32(nr) {
			t.Errorf("%s: package has %d, golang.org/x/sys/unix %d", name, nr, got)
		}
	}
	if known != len(unixSyscalls) {
		t.Errorf("package knows %d x86_64 system calls, golang.org/x/sys/unix %d", known, len(unixSyscalls))
	}
}

// The terminal ioctl numbers differ between architectures; these are
// x86_64's.
func TestTerminalIoctlNumbers(t *testing.T) {
	for _, c := range []struct {
		name      string
		ours, sys uint64
	}{
		{"TIOCSTI", tiocsti, unix.TIOCSTI},
		{"TIOCLINUX", tioclinux, unix.TIOCLINUX},
		{"TIOCSETD", tiocsetd, unix.TIOCSETD},
	} {
		if c.ours != c.sys {
			t.Errorf("%s: package has %#x, golang.org/x/sys/unix %#x", c.name, c.ours, c.sys)
		}
	}
}

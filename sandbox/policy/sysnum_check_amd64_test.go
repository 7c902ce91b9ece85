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
		{"SIOCGIFCONF", siocgifconf, unix.SIOCGIFCONF},
	} {
		if c.ours != c.sys {
			t.Errorf("%s: package has %#x, golang.org/x/sys/unix %#x", c.name, c.ours, c.sys)
		}
	}
}

// TestIoctlAllowlistNumbers checks each allowed ioctl request against
// golang.org/x/sys/unix by name, and the five generic requests x/sys lacks
// (FIONREAD is its TIOCINQ) against what the kernel does with them.
func TestIoctlAllowlistNumbers(t *testing.T) {
	byName := map[string]uint64{
		"FIONREAD": unix.TIOCINQ,
		"TCGETS":   unix.TCGETS, "TCSETS": unix.TCSETS, "TCSETSW": unix.TCSETSW, "TCSETSF": unix.TCSETSF,
		"TCGETS2": unix.TCGETS2, "TCSETS2": unix.TCSETS2, "TCSETSW2": unix.TCSETSW2, "TCSETSF2": unix.TCSETSF2,
		"TCSBRK": unix.TCSBRK, "TCXONC": unix.TCXONC, "TCFLSH": unix.TCFLSH, "TIOCOUTQ": unix.TIOCOUTQ,
		"TIOCGWINSZ": unix.TIOCGWINSZ, "TIOCSWINSZ": unix.TIOCSWINSZ, "TIOCSCTTY": unix.TIOCSCTTY,
		"TIOCNOTTY": unix.TIOCNOTTY, "TIOCGPGRP": unix.TIOCGPGRP, "TIOCSPGRP": unix.TIOCSPGRP,
		"TIOCGSID": unix.TIOCGSID, "TIOCGPTN": unix.TIOCGPTN, "TIOCSPTLCK": unix.TIOCSPTLCK,
		"TIOCGPTPEER": unix.TIOCGPTPEER, "SIOCATMARK": unix.SIOCATMARK, "SIOCGSTAMP": unix.SIOCGSTAMP,
		"SIOCGSTAMPNS": unix.SIOCGSTAMPNS, "FS_IOC_GETFLAGS": unix.FS_IOC_GETFLAGS,
		"FICLONE": unix.FICLONE, "FICLONERANGE": unix.FICLONERANGE,
	}
	byKernel := map[string]func(t *testing.T, req uint64){
		"FIONBIO":  fdFlagIoctl(unix.F_GETFL, unix.O_NONBLOCK, 1),
		"FIOASYNC": fdFlagIoctl(unix.F_GETFL, unix.O_ASYNC, 1),
		"FIOCLEX":  fdFlagIoctl(unix.F_GETFD, unix.FD_CLOEXEC, -1),
		"FIONCLEX": fdFlagIoctl(unix.F_GETFD, 0, -1),
	}
	for _, v := range ioctlAllowed {
		if want, ok := byName[v.Name]; ok {
			if v.V != want {
				t.Errorf("%s: package has %#x, golang.org/x/sys/unix %#x", v.Name, v.V, want)
			}
			continue
		}
		check, ok := byKernel[v.Name]
		if !ok {
			t.Errorf("%s (%#x): no check of its number", v.Name, v.V)
			continue
		}
		t.Run(v.Name, func(t *testing.T) { check(t, v.V) })
	}
}

// fdFlagIoctl returns a check that ioctl req on a pipe, with an int
// argument of 1 (or no argument, for arg < 0), leaves fcntl(cmd) with
// exactly flag set among the bits it looks at.
func fdFlagIoctl(cmd, flag, arg int) func(t *testing.T, req uint64) {
	return func(t *testing.T, req uint64) {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		defer unix.Close(p[0])
		defer unix.Close(p[1])
		look := unix.O_NONBLOCK | unix.O_ASYNC
		if cmd == unix.F_GETFD {
			look = unix.FD_CLOEXEC
			// FIOCLEX must set what this clears, FIONCLEX clear what it sets.
			if _, err := unix.FcntlInt(uintptr(p[0]), unix.F_SETFD, unix.FD_CLOEXEC^flag); err != nil {
				t.Fatal(err)
			}
		}
		var err error
		if arg < 0 {
			_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(p[0]), uintptr(req), 0)
			if e != 0 {
				err = e
			}
		} else {
			err = unix.IoctlSetPointerInt(p[0], uint(req), arg)
		}
		if err != nil {
			t.Fatalf("ioctl %#x: %v", req, err)
		}
		got, err := unix.FcntlInt(uintptr(p[0]), cmd, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got&look != flag {
			t.Errorf("ioctl %#x: fcntl flags %#x, want %#x of %#x", req, got&look, flag, look)
		}
	}
}

//go:build linux && (amd64 || arm64)

package netsvc

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The seccomp user-notification ABI (include/uapi/linux/seccomp.h).
// golang.org/x/sys has the RECV and SEND ioctl numbers but not the structs
// nor the ID_VALID and ADDFD ioctls.
type seccompData struct {
	Nr   int32
	Arch uint32
	IP   uint64
	Args [6]uint64
}

type seccompNotif struct {
	ID    uint64
	Pid   uint32
	Flags uint32
	Data  seccompData
}

type seccompNotifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

type seccompNotifAddfd struct {
	ID         uint64
	Flags      uint32
	Srcfd      uint32
	Newfd      uint32
	NewfdFlags uint32
}

const (
	ioctlNotifRecv    = unix.SECCOMP_IOCTL_NOTIF_RECV // _IOWR('!', 0, struct seccomp_notif)
	ioctlNotifSend    = unix.SECCOMP_IOCTL_NOTIF_SEND // _IOWR('!', 1, struct seccomp_notif_resp)
	ioctlNotifIDValid = 0x40082102                    // _IOW('!', 2, __u64)
	ioctlNotifAddfd   = 0x40182103                    // _IOW('!', 3, struct seccomp_notif_addfd)
)

func ioctlPtr(fd int, req uintptr, p unsafe.Pointer) (int, unix.Errno) {
	r, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(p))
	return int(r), e
}

// recvNotif receives one notification into a zeroed n, retrying EINTR.
func recvNotif(listener int, n *seccompNotif) unix.Errno {
	for {
		*n = seccompNotif{}
		if _, e := ioctlPtr(listener, ioctlNotifRecv, unsafe.Pointer(n)); e != unix.EINTR {
			return e
		}
	}
}

// sendResp answers notification id with val, or with -err if err is not 0.
// ENOENT means the caller is gone (killed, or its wait cut by a signal).
func sendResp(listener int, id uint64, val int64, err errno) unix.Errno {
	return send(listener, seccompNotifResp{ID: id, Val: val, Error: -int32(err)})
}

// sendContinue lets the call run in the kernel as the caller made it. The
// kernel reads its arguments again then, so it answers only calls that no
// check was made for (see Server.Offline).
func sendContinue(listener int, id uint64) unix.Errno {
	return send(listener, seccompNotifResp{ID: id, Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE})
}

func send(listener int, r seccompNotifResp) unix.Errno {
	if r.Error != 0 {
		r.Val = 0
	}
	for {
		if _, e := ioctlPtr(listener, ioctlNotifSend, unsafe.Pointer(&r)); e != unix.EINTR {
			return e
		}
	}
}

// idValid reports whether notification id is still pending: the thread that
// made it is alive and still waiting, so the tid in it still names that
// thread.
func idValid(listener int, id uint64) bool {
	for {
		_, e := ioctlPtr(listener, ioctlNotifIDValid, unsafe.Pointer(&id))
		if e != unix.EINTR {
			return e == 0
		}
	}
}

// addfdSend installs srcfd in the caller of notification id and, atomically,
// answers the call with the new descriptor number (SECCOMP_ADDFD_FLAG_SEND).
// On error the notification is still pending, except after ENOENT.
func addfdSend(listener int, id uint64, srcfd int, cloexec bool) (int, unix.Errno) {
	a := seccompNotifAddfd{ID: id, Flags: unix.SECCOMP_ADDFD_FLAG_SEND, Srcfd: uint32(srcfd)}
	if cloexec {
		a.NewfdFlags = unix.O_CLOEXEC
	}
	for {
		fd, e := ioctlPtr(listener, ioctlNotifAddfd, unsafe.Pointer(&a))
		if e != unix.EINTR {
			return fd, e
		}
	}
}

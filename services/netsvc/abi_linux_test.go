//go:build linux && (amd64 || arm64)

package netsvc

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestABI checks the package's own copies of Linux values against
// golang.org/x/sys/unix.
func TestABI(t *testing.T) {
	consts := []struct {
		name      string
		ours, sys int
	}{
		{"AF_UNSPEC", afUnspec, unix.AF_UNSPEC},
		{"AF_UNIX", afUnix, unix.AF_UNIX},
		{"AF_INET", afInet, unix.AF_INET},
		{"AF_INET6", afInet6, unix.AF_INET6},
		{"SOCK_STREAM", sockStream, unix.SOCK_STREAM},
		{"SOCK_DGRAM", sockDgram, unix.SOCK_DGRAM},
		{"SOCK_RAW", sockRaw, unix.SOCK_RAW},
		{"SOCK_SEQPACKET", sockSeqpacket, unix.SOCK_SEQPACKET},
		{"SOCK_NONBLOCK", sockNonblock, unix.SOCK_NONBLOCK},
		{"SOCK_CLOEXEC", sockCloexec, unix.SOCK_CLOEXEC},
		{"IPPROTO_IP", ipprotoIP, unix.IPPROTO_IP},
		{"IPPROTO_TCP", ipprotoTCP, unix.IPPROTO_TCP},
		{"IPPROTO_UDP", ipprotoUDP, unix.IPPROTO_UDP},
		{"IPPROTO_IPV6", ipprotoIPv6, unix.IPPROTO_IPV6},
		{"SOL_SOCKET", solSocket, unix.SOL_SOCKET},
		{"SOL_UDP", solUDP, unix.SOL_UDP},
		{"SCM_RIGHTS", scmRights, unix.SCM_RIGHTS},
		{"SCM_CREDENTIALS", scmCredentials, unix.SCM_CREDENTIALS},
		{"SO_PRIORITY", soPriority, unix.SO_PRIORITY},
		{"SO_MARK", soMark, unix.SO_MARK},
		{"SO_TIMESTAMPING_OLD", soTimestampingOld, unix.SO_TIMESTAMPING_OLD},
		{"SO_TXTIME", soTxtime, unix.SO_TXTIME},
		{"IP_TOS", ipTOS, unix.IP_TOS},
		{"IP_TTL", ipTTL, unix.IP_TTL},
		{"IP_RETOPTS", ipRetopts, unix.IP_RETOPTS},
		{"IP_PKTINFO", ipPktinfo, unix.IP_PKTINFO},
		{"IPV6_2292PKTINFO", ipv6PktinfoRFC2292, unix.IPV6_2292PKTINFO},
		{"IPV6_2292HOPOPTS", ipv6HopoptsRFC2292, unix.IPV6_2292HOPOPTS},
		{"IPV6_2292DSTOPTS", ipv6DstoptsRFC2292, unix.IPV6_2292DSTOPTS},
		{"IPV6_2292RTHDR", ipv6RthdrRFC2292, unix.IPV6_2292RTHDR},
		{"IPV6_2292HOPLIMIT", ipv6HoplimitRFC2292, unix.IPV6_2292HOPLIMIT},
		{"IPV6_PKTINFO", ipv6Pktinfo, unix.IPV6_PKTINFO},
		{"IPV6_HOPLIMIT", ipv6Hoplimit, unix.IPV6_HOPLIMIT},
		{"IPV6_HOPOPTS", ipv6Hopopts, unix.IPV6_HOPOPTS},
		{"IPV6_RTHDRDSTOPTS", ipv6Rthdrdstopts, unix.IPV6_RTHDRDSTOPTS},
		{"IPV6_RTHDR", ipv6Rthdr, unix.IPV6_RTHDR},
		{"IPV6_DSTOPTS", ipv6Dstopts, unix.IPV6_DSTOPTS},
		{"IPV6_DONTFRAG", ipv6Dontfrag, unix.IPV6_DONTFRAG},
		{"IPV6_TCLASS", ipv6Tclass, unix.IPV6_TCLASS},
		{"UDP_SEGMENT", udpSegment, unix.UDP_SEGMENT},
		{"MSG_OOB", msgOOB, unix.MSG_OOB},
		{"MSG_DONTWAIT", msgDontwait, unix.MSG_DONTWAIT},
		{"MSG_NOSIGNAL", msgNosignal, unix.MSG_NOSIGNAL},
		{"MSG_FASTOPEN", msgFastopen, unix.MSG_FASTOPEN},
		{"MSG_ZEROCOPY", msgZerocopy, unix.MSG_ZEROCOPY},
		{"sizeof(sockaddr_in)", sizeofSockaddrIn, unix.SizeofSockaddrInet4},
		{"sizeof(sockaddr_in6)", sizeofSockaddrIn6, unix.SizeofSockaddrInet6},
		{"sizeof(iovec)", sizeofIovec, unix.SizeofIovec},
		{"sizeof(msghdr)", sizeofMsghdr, unix.SizeofMsghdr},
		{"sizeof(mmsghdr)", sizeofMmsghdr, int(unsafe.Sizeof(unix.Mmsghdr{}))},
		{"offsetof(mmsghdr.msg_len)", offsetMsgLen, int(unsafe.Offsetof(unix.Mmsghdr{}.Len))},
		{"sizeof(cmsghdr)", sizeofCmsghdr, unix.SizeofCmsghdr},
		{"sizeof(seccomp_notif)", int(unsafe.Sizeof(seccompNotif{})), 80},
		{"sizeof(seccomp_notif_resp)", int(unsafe.Sizeof(seccompNotifResp{})), 24},
		{"sizeof(seccomp_notif_addfd)", int(unsafe.Sizeof(seccompNotifAddfd{})), 24},
	}
	for _, c := range consts {
		if c.ours != c.sys {
			t.Errorf("%s: package has %d, Linux %d", c.name, c.ours, c.sys)
		}
	}
	errnos := []struct {
		ours errno
		sys  unix.Errno
	}{
		{eperm, unix.EPERM}, {enoent, unix.ENOENT}, {eintr, unix.EINTR}, {ebadf, unix.EBADF},
		{eagain, unix.EAGAIN}, {eacces, unix.EACCES}, {efault, unix.EFAULT}, {einval, unix.EINVAL},
		{epipe, unix.EPIPE}, {enosys, unix.ENOSYS}, {enotsock, unix.ENOTSOCK}, {emsgsize, unix.EMSGSIZE},
		{eprotonosupport, unix.EPROTONOSUPPORT}, {eopnotsupp, unix.EOPNOTSUPP},
		{eafnosupport, unix.EAFNOSUPPORT}, {eaddrnotavail, unix.EADDRNOTAVAIL}, {enobufs, unix.ENOBUFS},
	}
	for _, e := range errnos {
		if uint16(e.ours) != uint16(e.sys) {
			t.Errorf("%v: package has %d, Linux %d", e.ours, uint16(e.ours), uint16(e.sys))
		}
	}
	// The ioctl numbers: _IOW('!', nr, size) = 1<<30 | size<<16 | '!'<<8 | nr.
	iow := func(nr, size uintptr) uintptr { return 1<<30 | size<<16 | '!'<<8 | nr }
	if ioctlNotifIDValid != iow(2, 8) || ioctlNotifAddfd != iow(3, unsafe.Sizeof(seccompNotifAddfd{})) {
		t.Errorf("ioctl numbers: ID_VALID %#x, ADDFD %#x", ioctlNotifIDValid, ioctlNotifAddfd)
	}
}

package netsvc

import "fmt"

// Linux ABI values this package decodes and answers with. They are Linux's
// (x86_64 and arm64 agree on all of them), whatever system the package is
// built on, so the pure parts — decoding and the rules — build and test
// anywhere; abi_linux_test.go checks them against golang.org/x/sys/unix.
const (
	afUnspec = 0
	afUnix   = 1
	afInet   = 2
	afInet6  = 10

	sockStream    = 1
	sockDgram     = 2
	sockRaw       = 3
	sockSeqpacket = 5
	sockNonblock  = 0o4000    // O_NONBLOCK
	sockCloexec   = 0o2000000 // O_CLOEXEC

	ipprotoIP   = 0
	ipprotoTCP  = 6
	ipprotoUDP  = 17
	ipprotoIPv6 = 41

	solSocket = 1
	solUDP    = 17

	// SOL_SOCKET control messages.
	scmRights         = 1
	scmCredentials    = 2
	soPriority        = 12
	soMark            = 36
	soTimestampingOld = 37
	soTxtime          = 61

	// IPPROTO_IP control messages.
	ipTOS     = 1
	ipTTL     = 2
	ipRetopts = 7
	ipPktinfo = 8

	// IPPROTO_IPV6 control messages.
	ipv6PktinfoRFC2292  = 2
	ipv6HopoptsRFC2292  = 3
	ipv6DstoptsRFC2292  = 4
	ipv6RthdrRFC2292    = 5
	ipv6HoplimitRFC2292 = 8
	ipv6Flowinfo        = 11
	ipv6Pktinfo         = 50
	ipv6Hoplimit        = 52
	ipv6Hopopts         = 54
	ipv6Rthdrdstopts    = 55
	ipv6Rthdr           = 57
	ipv6Dstopts         = 59
	ipv6Dontfrag        = 62
	ipv6Tclass          = 67

	udpSegment = 103

	// Send flags.
	msgOOB      = 0x1
	msgDontwait = 0x40
	msgNosignal = 0x4000
	msgFastopen = 0x20000000
	msgZerocopy = 0x4000000

	sizeofSockaddrStorage = 128 // the kernel refuses longer addresses (EINVAL)
	sizeofSockaddrIn      = 16
	sizeofSockaddrIn6     = 28
	sizeofSockaddrIn6Min  = 24 // SIN6_LEN_RFC2133: sockaddr_in6 without sin6_scope_id

	uioMaxIOV = 1024 // UIO_MAXIOV: msg_iovlen and sendmmsg's vlen are bounded by it
	scmMaxFD  = 253  // SCM_MAX_FD: file descriptors in one message
)

// errno is a Linux error number as a trapped call returns it. The values are
// Linux's, whatever system this package is built on.
type errno uint16

const (
	eperm           errno = 1
	enoent          errno = 2
	eintr           errno = 4
	ebadf           errno = 9
	eagain          errno = 11
	eacces          errno = 13
	efault          errno = 14
	einval          errno = 22
	epipe           errno = 32
	enosys          errno = 38
	enotsock        errno = 88
	emsgsize        errno = 90
	eprotonosupport errno = 93
	eopnotsupp      errno = 95
	eafnosupport    errno = 97
	eaddrnotavail   errno = 99
	enobufs         errno = 105
)

var errnoNames = map[errno]string{
	eperm: "EPERM", enoent: "ENOENT", eintr: "EINTR", ebadf: "EBADF", eagain: "EAGAIN",
	eacces: "EACCES", efault: "EFAULT", einval: "EINVAL", epipe: "EPIPE", enosys: "ENOSYS",
	enotsock: "ENOTSOCK", emsgsize: "EMSGSIZE", eprotonosupport: "EPROTONOSUPPORT",
	eopnotsupp: "EOPNOTSUPP", eafnosupport: "EAFNOSUPPORT", eaddrnotavail: "EADDRNOTAVAIL",
	enobufs: "ENOBUFS",
}

func (e errno) Error() string {
	if n, ok := errnoNames[e]; ok {
		return n
	}
	return fmt.Sprintf("errno %d", uint16(e))
}

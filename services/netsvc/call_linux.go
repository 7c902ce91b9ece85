//go:build linux && (amd64 || arm64)

package netsvc

import (
	"errors"
	"unsafe"

	"golang.org/x/sys/unix"
)

// call is one trapped system call being served: the notification, a pidfd of
// the calling thread (opened when first needed) and the service's copies of
// descriptors taken from the caller, closed when the call is released.
type call struct {
	l     *loop
	id    uint64
	nr    int32
	kind  int // index in Calls, for the Tally
	tid   int
	args  [6]uint64
	pidfd int
	files []int
	socks map[int]sock // copies taken by sock, by argument index
}

// errGone says the calling thread went away while the call was served.
var errGone = errors.New("caller gone")

// denial is a refusal by a grant or a rule, with the reason for the log
// and, where a grant would allow the call, that grant as the flag that
// gives it.
type denial struct {
	e     errno
	why   string
	allow string
}

func (d denial) Error() string { return d.why + ": " + d.e.Error() }

func deny(e errno, why string) error { return denial{e: e, why: why} }

// denyGrant is a refusal that the grant allow (an oak run flag) would lift.
func denyGrant(e errno, why, allow string) error { return denial{e: e, why: why, allow: allow} }

// failure is an error of the service itself: it answers with e and is logged.
type failure struct {
	e   errno
	err error
}

func (f failure) Error() string { return f.err.Error() }

// thread returns a pidfd of the calling thread (PIDFD_THREAD, since the
// caller may be any thread of the container, not only a leader). It is only
// known to be the caller's once valid has said so afterwards.
func (c *call) thread() (int, error) {
	if c.pidfd >= 0 {
		return c.pidfd, nil
	}
	if c.tid <= 0 {
		// The caller is not visible in the service's PID namespace.
		return -1, failure{eacces, errors.New("pidfd_open: caller outside the service's pid namespace")}
	}
	fd, err := unix.PidfdOpen(c.tid, unix.PIDFD_THREAD)
	if err != nil {
		if err == unix.ESRCH {
			return -1, errGone
		}
		return -1, failure{eacces, &opError{"pidfd_open", err}}
	}
	c.pidfd = fd
	return fd, nil
}

// fd takes the service's own copy of the caller's descriptor n: the same
// open file description, so the socket, its options and its O_NONBLOCK are
// the container's.
func (c *call) fd(n int32) (int, error) {
	if n < 0 {
		return -1, ebadf
	}
	p, err := c.thread()
	if err != nil {
		return -1, err
	}
	fd, err := unix.PidfdGetfd(p, int(n), 0)
	switch err {
	case nil:
	case unix.EBADF:
		return -1, ebadf
	case unix.ESRCH:
		return -1, errGone
	default:
		return -1, failure{eacces, &opError{"pidfd_getfd", err}}
	}
	c.files = append(c.files, fd)
	return fd, nil
}

// read fills b from the caller's memory at addr, once. A short read is
// EFAULT, as the kernel answers for a bad pointer.
func (c *call) read(addr uint64, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	return c.readv([]iovec{{addr, uint64(len(b))}}, b)
}

// readv fills b from the caller's memory described by iov (whose lengths
// add up to len(b)) with one process_vm_readv.
func (c *call) readv(iov []iovec, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	remote := make([]unix.RemoteIovec, 0, len(iov))
	for _, v := range iov {
		if v.len > 0 {
			remote = append(remote, unix.RemoteIovec{Base: uintptr(v.base), Len: int(v.len)})
		}
	}
	n, err := unix.ProcessVMReadv(c.tid, []unix.Iovec{{Base: &b[0], Len: uint64(len(b))}}, remote, 0)
	switch err {
	case nil:
	case unix.EFAULT:
		return efault
	case unix.ESRCH:
		return errGone
	default:
		return failure{eacces, &opError{"process_vm_readv", err}}
	}
	if n != len(b) {
		return efault
	}
	return nil
}

// write copies b into the caller's memory at addr (sendmmsg's msg_len).
func (c *call) write(addr uint64, b []byte) error {
	n, err := unix.ProcessVMWritev(c.tid, []unix.Iovec{{Base: &b[0], Len: uint64(len(b))}},
		[]unix.RemoteIovec{{Base: uintptr(addr), Len: len(b)}}, 0)
	if err == unix.ESRCH {
		return errGone
	}
	if err != nil || n != len(b) {
		return efault
	}
	return nil
}

// valid reports whether the call is still pending. Checked after every read
// of the caller's memory and every copied descriptor, before acting: if it
// holds, the tid and the pidfd named the caller throughout.
func (c *call) valid() bool { return idValid(c.l.listener, c.id) }

func (c *call) release() {
	for _, fd := range c.files {
		unix.Close(fd)
	}
	c.files = nil
	if c.pidfd >= 0 {
		unix.Close(c.pidfd)
		c.pidfd = -1
	}
}

// sock is the service's copy of a container socket.
type sock struct {
	fd   int
	kind sockKind
}

// sock takes a copy of the caller's descriptor in argument i and learns its
// family and type. A descriptor that is no socket is ENOTSOCK.
func (c *call) sock(i int) (sock, error) {
	if s, ok := c.socks[i]; ok {
		return s, nil
	}
	fd, err := c.fd(int32(c.args[i]))
	if err != nil {
		return sock{}, err
	}
	fam, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err == unix.ENOTSOCK {
		return sock{}, enotsock
	}
	if err != nil {
		return sock{}, failure{eacces, &opError{"getsockopt SO_DOMAIN", err}}
	}
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return sock{}, failure{eacces, &opError{"getsockopt SO_TYPE", err}}
	}
	s := sock{fd: fd, kind: sockKind{family: fam, typ: typ}}
	if c.socks == nil {
		c.socks = map[int]sock{}
	}
	c.socks[i] = s
	return s, nil
}

// sockaddr reads and decodes the n-byte address at addr.
func (c *call) sockaddr(addr uint64, n int32) (sockaddr, error) {
	if n < 0 || n > sizeofSockaddrStorage {
		return sockaddr{}, einval
	}
	b := make([]byte, n)
	if err := c.read(addr, b); err != nil {
		return sockaddr{}, err
	}
	return decodeSockaddr(b)
}

// routed reports whether an AF_INET6 socket carries a sticky IPv6 routing
// header (setsockopt IPV6_RTHDR): with one, Linux sends to the header's
// segment instead of the destination, past the egress check. (IPv4 source
// routes in IP_OPTIONS need CAP_NET_RAW over the host's namespace, which a
// container lacks.)
func routed(s sock) (bool, error) {
	if s.kind.family != afInet6 {
		return false, nil
	}
	var buf [8]byte
	n := uint32(len(buf))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(s.fd), unix.IPPROTO_IPV6, unix.IPV6_RTHDR,
		uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
	if e != 0 {
		return false, failure{eacces, &opError{"getsockopt IPV6_RTHDR", e}}
	}
	return n > 0, nil
}

// opError names a host operation of the service that failed.
type opError struct {
	op  string
	err error
}

func (e *opError) Error() string { return e.op + ": " + e.err.Error() }
func (e *opError) Unwrap() error { return e.err }

//go:build linux && (amd64 || arm64)

package netsvc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// socket serves socket(domain, type, protocol): see socketRule for what is
// made at all; a TCP or UDP socket is made if the container holds any grant
// for the protocol, in the service's (the host's) network namespace, and
// installed in the caller with the answer.
func (l *loop) socket(c *call) result {
	req, err := socketRule(int32(c.args[0]), int32(c.args[1]), int32(c.args[2]))
	if err == einval {
		return result{err: einval}
	}
	if err != nil {
		return result{err: deny(err.(errno), "socket family, type or protocol not served")}
	}
	if !l.grants.Any(req.proto) {
		return result{err: denyGrant(eacces, "no "+req.proto+" grant", "--egress DEST/"+req.proto+" or -p [HOSTPORT:]PORT/"+req.proto)}
	}
	typ := req.typ | unix.SOCK_CLOEXEC
	if req.nonblock {
		typ |= unix.SOCK_NONBLOCK
	}
	fd, err := unix.Socket(req.family, typ, req.protocol)
	if err != nil {
		return performed(0, err)
	}
	defer unix.Close(fd)
	if req.proto == ProtoUDP {
		if err := lockInbound(fd, l.grants.Inbound(ProtoUDP)); err != nil {
			return result{err: failure{eacces, err}}
		}
	}
	newfd, e := addfdSend(l.listener, c.id, fd, req.cloexec)
	switch e {
	case 0:
		return result{val: int64(newfd), answered: true}
	case unix.ENOENT:
		return result{err: errGone}
	}
	// Not installed (EMFILE: the caller's table is full); the call is still
	// pending and is answered with the reason.
	return performed(0, e)
}

// lockInbound gives a new UDP socket the filter that keeps only the
// datagrams in (see inbound.go) and locks it (SO_LOCK_FILTER): from then on
// the kernel refuses SO_ATTACH_FILTER, SO_ATTACH_BPF, SO_DETACH_FILTER and
// clearing the lock with EPERM, for the container and the service alike.
func lockInbound(fd int, in Inbound) error {
	prog, err := compileInbound(in)
	if err != nil {
		return &opError{"udp socket filter", err}
	}
	if prog == nil {
		return nil
	}
	insns := make([]unix.SockFilter, len(prog))
	for i, p := range prog {
		insns[i] = unix.SockFilter{Code: p.code, Jt: p.jt, Jf: p.jf, K: p.k}
	}
	fprog := unix.SockFprog{Len: uint16(len(insns)), Filter: &insns[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return &opError{"setsockopt SO_ATTACH_FILTER", err}
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_LOCK_FILTER, 1); err != nil {
		return &opError{"setsockopt SO_LOCK_FILTER", err}
	}
	return nil
}

// bind serves bind(fd, addr, addrlen) on an AF_INET/AF_INET6 socket: the
// container port must have a listen grant, and the socket is bound to the
// host address the grant publishes it on in the socket's family (see
// bindTarget). Port 0 binds the loopback or unspecified address the
// container named to a port of the kernel's choice (see ephemeralTarget).
func (l *loop) bind(c *call) result {
	s, err := c.sock(0)
	if err != nil {
		return result{err: err}
	}
	if !s.kind.inet() {
		return result{err: deny(eacces, "bind on a socket that is not AF_INET/AF_INET6")}
	}
	proto := s.kind.proto()
	if proto == "" {
		return result{err: deny(eacces, "bind on a socket that is neither TCP nor UDP")}
	}
	n := int32(c.args[2])
	sa, err := c.sockaddr(c.args[1], n)
	if err != nil {
		return result{err: err}
	}
	port, err := bindPort(s.kind, sa, int(n))
	if err != nil {
		return result{err: err}
	}
	if port == 0 {
		target, err := ephemeralTarget(s.kind, sa)
		if err != nil {
			return result{err: deny(err.(errno), "port-0 bind of an address that is not the container's")}
		}
		if !c.valid() {
			return result{err: errGone}
		}
		return performed(0, sysSockaddr(unix.SYS_BIND, s.fd, target.encode()))
	}
	pub, ok := l.grants.Listen(proto, port)
	if !ok {
		return result{err: denyGrant(eacces, fmt.Sprintf("no listen grant for %d/%s", port, proto), fmt.Sprintf("-p [HOSTPORT:]%d/%s", port, proto))}
	}
	v6only, err := ipv6Only(s)
	if err != nil {
		return result{err: err}
	}
	target, setV6only, err := bindTarget(s.kind, sa, pub, v6only)
	if err == einval {
		return result{err: err} // the kernel's answer to a mapped address on an IPv6-only socket
	}
	if err == eaddrnotavail && sinkable(s.kind, sa, pub) {
		return l.bindSink(c, s, proto, port)
	}
	if err != nil {
		return result{err: deny(err.(errno), "bind address or family not published")}
	}
	if !c.valid() {
		return result{err: errGone}
	}
	if setV6only {
		// Before the bind: the kernel refuses the option on a bound socket.
		// A thread of the container that clears it again before the bind
		// gains nothing: listen checks the socket as bound, and a UDP
		// socket's filter drops IPv4 the grant does not publish.
		if err := unix.SetsockoptInt(s.fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			return performed(0, err)
		}
	}
	if err := sysSockaddr(unix.SYS_BIND, s.fd, target.encode()); err != nil {
		return performed(0, err)
	}
	l.bound[boundKey{proto, unmapped(target.ap)}] = port
	return performed(0, nil)
}

// sinkable reports whether a bind the grant does not publish is one a
// program makes on a host as a matter of course: the wildcard or loopback
// address of the family the grant leaves out (nginx's default site listens
// on 0.0.0.0:80 and [::]:80 and gives up if either fails). On a host that
// bind works; in a container docker makes the listener unreachable from
// outside. bindSink does the same.
//
// Only TCP: a listener on a sink takes nothing, while a UDP or connecting
// socket bound to one would send from an address that is not the host's.
// connect refuses a socket bound to a sink for the same reason.
func sinkable(k sockKind, sa sockaddr, pub Published) bool {
	a := sa.ap.Addr()
	if k.typ != sockStream || !a.IsUnspecified() && !a.IsLoopback() {
		return false
	}
	switch {
	case k.family == afInet:
		return !pub.V4.IsValid()
	case k.family == afInet6 && !a.Is4In6():
		return !pub.V6.IsValid()
	}
	return false
}

// Sink addresses: never local on the host, so nothing is ever delivered to
// a socket bound to one (with IP_FREEBIND / IPV6_FREEBIND, which need no
// privilege): RFC 6666's discard-only IPv6 prefix 100::/64, and IPv4's
// reserved 240.0.0.0/4.
var (
	sinkPrefix6 = [8]byte{0x01, 0x00}
	sinkPrefix4 = byte(0xf0) // 240.0.0.0/4: the top four bits
)

// bindSink binds the socket to a sink address of its family on the
// container port, random so that sinks of different binds and containers
// do not collide, and lets it listen: the program gets the listener it
// asked for, and nobody can reach it.
func (l *loop) bindSink(c *call, s sock, proto string, port uint16) result {
	var target sockaddr
	var err error
	if s.kind.family == afInet6 {
		var a [16]byte
		copy(a[:], sinkPrefix6[:])
		binary.BigEndian.PutUint64(a[8:], rand.Uint64())
		target = sockaddr{family: afInet6, ap: netip.AddrPortFrom(netip.AddrFrom16(a), port)}
		err = errors.Join(unix.SetsockoptInt(s.fd, unix.IPPROTO_IPV6, unix.IPV6_FREEBIND, 1),
			unix.SetsockoptInt(s.fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1))
	} else {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], uint32(sinkPrefix4)<<24|rand.Uint32()&0x0fffffff)
		target = inet4(netip.AddrPortFrom(netip.AddrFrom4(a), port))
		err = unix.SetsockoptInt(s.fd, unix.IPPROTO_IP, unix.IP_FREEBIND, 1)
	}
	if err != nil {
		return result{err: failure{eacces, &opError{"set freebind", err}}}
	}
	if !c.valid() {
		return result{err: errGone}
	}
	if err := sysSockaddr(unix.SYS_BIND, s.fd, target.encode()); err != nil {
		return performed(0, err)
	}
	l.sunk[boundKey{proto, target.ap}] = true
	return performed(0, nil)
}

// isSunk reports whether s is bound to a sink address.
func isSunk(s sock) bool {
	if !s.kind.inet() {
		return false
	}
	sa, err := unix.Getsockname(s.fd)
	if err != nil {
		return false
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return a.Addr[0]&0xf0 == sinkPrefix4
	case *unix.SockaddrInet6:
		return [8]byte(a.Addr[:8]) == sinkPrefix6
	}
	return false
}

// ipv6Only is the socket's IPV6_V6ONLY; false for an AF_INET socket.
func ipv6Only(s sock) (bool, error) {
	if s.kind.family != afInet6 {
		return false, nil
	}
	v, err := unix.GetsockoptInt(s.fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
	if err != nil {
		return false, failure{eacces, &opError{"getsockopt IPV6_V6ONLY", err}}
	}
	return v != 0, nil
}

// listen serves listen(fd, backlog): only a TCP socket bound by bind above
// to a host address whose grant still stands, and that takes no more than
// the grant publishes (see listenAllowed), may listen.
func (l *loop) listen(c *call) result {
	s, err := c.sock(0)
	if err != nil {
		return result{err: err}
	}
	if !s.kind.inet() {
		return result{err: deny(eacces, "listen on a socket that is not AF_INET/AF_INET6")}
	}
	if s.kind.typ != unix.SOCK_STREAM {
		return result{err: eopnotsupp}
	}
	sa, err := unix.Getsockname(s.fd)
	if err != nil {
		return result{err: failure{eacces, &opError{"getsockname", err}}}
	}
	var host netip.AddrPort
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		host = netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		host = netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port))
	}
	if l.sunk[boundKey{ProtoTCP, host}] {
		if !c.valid() {
			return result{err: errGone}
		}
		return performed(0, unix.Listen(s.fd, int(int32(c.args[1]))))
	}
	port, ok := l.bound[boundKey{ProtoTCP, unmapped(host)}]
	if !ok {
		return result{err: deny(eacces, "listen on a socket not bound to a granted port")}
	}
	v6only, err := ipv6Only(s)
	if err != nil {
		return result{err: err}
	}
	if pub, ok := l.grants.Listen(ProtoTCP, port); !ok || !listenAllowed(host, v6only, pub) {
		return result{err: deny(eacces, "listen grant revoked, or the socket takes more than it publishes")}
	}
	if !c.valid() {
		return result{err: errGone}
	}
	return performed(0, unix.Listen(s.fd, int(int32(c.args[1]))))
}

// connect serves connect(fd, addr, addrlen).
func (l *loop) connect(c *call) result {
	s, err := c.sock(0)
	if err != nil {
		return result{err: err}
	}
	if isSunk(s) {
		return result{err: deny(einval, "connect on a socket bound to a sink address (see bindSink)")}
	}
	n := int32(c.args[2])
	sa, err := c.sockaddr(c.args[1], n)
	if !s.kind.inet() {
		// A socketpair end (or another socket the engine handed in):
		// dissolving an association is harmless; a named address would be
		// looked up in the service's mount namespace.
		if err == nil && sa.family == afUnspec {
			if !c.valid() {
				return result{err: errGone}
			}
			return performed(0, sysSockaddr(unix.SYS_CONNECT, s.fd, sa.encode()))
		}
		if err != nil && err != eafnosupport {
			return result{err: err}
		}
		return result{err: deny(eacces, "connect to a named address on a socket that is not AF_INET/AF_INET6")}
	}
	if err != nil {
		return result{err: err}
	}
	d, err := connectDest(s.kind, sa, int(n))
	if err != nil {
		return result{err: err}
	}
	if !d.none {
		proto := s.kind.proto()
		if proto == "" || !l.grants.Egress(proto, d.ap) {
			return result{err: denyGrant(eacces, "no egress grant for "+proto+" "+d.ap.String(), "--egress "+d.ap.String()+"/"+proto)}
		}
		if r, err := routed(s); err != nil || r {
			if err == nil {
				err = deny(eacces, "socket carries an IPv6 routing header")
			}
			return result{err: err}
		}
	}
	if !c.valid() {
		return result{err: errGone}
	}
	// Inline: a blocking socket holds this container's serving thread until
	// the handshake ends; O_NONBLOCK (shared with the container through the
	// open file description) makes it EINPROGRESS.
	return performed(0, sysSockaddr(unix.SYS_CONNECT, s.fd, d.sa.encode()))
}

// sysSockaddr is bind or connect with a sockaddr the service encoded.
func sysSockaddr(nr uintptr, fd int, sa []byte) error {
	_, _, e := unix.Syscall(nr, uintptr(fd), uintptr(unsafe.Pointer(&sa[0])), uintptr(len(sa)))
	if e != 0 {
		return e
	}
	return nil
}

package netsvc

import (
	"encoding/binary"
	"net/netip"
)

// This file is the service's policy beyond the grants, as pure functions of
// decoded arguments: which sockets it makes, where a bind lands, what a
// connect or send is checked against, and which control messages it passes
// on. Every refusal names its reason.

// Protocol names as the Grants interface sees them.
const (
	ProtoTCP = "tcp"
	ProtoUDP = "udp"
)

// sockKind is what the service learns about a container's socket from its
// own copy of it (SO_DOMAIN, SO_TYPE).
type sockKind struct {
	family int
	typ    int
}

func (k sockKind) inet() bool { return k.family == afInet || k.family == afInet6 }

// proto is the grant protocol of an AF_INET/AF_INET6 socket: "tcp" for
// SOCK_STREAM, "udp" for SOCK_DGRAM, "" for anything else (which the service
// never makes).
func (k sockKind) proto() string {
	if !k.inet() {
		return ""
	}
	switch k.typ {
	case sockStream:
		return ProtoTCP
	case sockDgram:
		return ProtoUDP
	}
	return ""
}

// socketReq is a socket() the service may make for a container.
type socketReq struct {
	family   int
	typ      int // SOCK_STREAM or SOCK_DGRAM, without flags
	protocol int
	nonblock bool
	cloexec  bool
	proto    string // grant protocol
}

// socketRule decides socket(domain, typ, protocol) before the grants are
// asked. The service makes TCP and UDP sockets of AF_INET and AF_INET6 only:
//   - unknown type flags: EINVAL, as the kernel;
//   - any other family (AF_UNIX, AF_NETLINK, AF_PACKET, ...) and any other
//     type (SOCK_RAW, SOCK_SEQPACKET, ...): EACCES, network authority no grant
//     can give;
//   - another protocol on a stream or datagram socket (IPPROTO_MPTCP, SCTP,
//     ICMP "ping" sockets, UDP-Lite): EPROTONOSUPPORT, so that programs fall
//     back — Go's net package probes MPTCP once and, on EPROTONOSUPPORT only,
//     stops trying. MPTCP is refused because its extra subflows go to
//     addresses the peer announces, past every egress check.
func socketRule(domain, typ, protocol int32) (socketReq, error) {
	flags := typ &^ 0xf
	base := typ & 0xf
	if flags&^(sockNonblock|sockCloexec) != 0 {
		return socketReq{}, einval
	}
	if domain != afInet && domain != afInet6 {
		return socketReq{}, eacces
	}
	r := socketReq{
		family:   int(domain),
		typ:      int(base),
		protocol: int(protocol),
		nonblock: flags&sockNonblock != 0,
		cloexec:  flags&sockCloexec != 0,
	}
	switch {
	case base == sockStream && (protocol == 0 || protocol == ipprotoTCP):
		r.proto = ProtoTCP
	case base == sockDgram && (protocol == 0 || protocol == ipprotoUDP):
		r.proto = ProtoUDP
	case base == sockStream || base == sockDgram:
		return socketReq{}, eprotonosupport
	default:
		return socketReq{}, eacces
	}
	return r, nil
}

// bindPort returns the container port a bind asks for, checking the address
// family against the socket's as the kernel does: an AF_INET socket takes
// AF_INET, or AF_UNSPEC with INADDR_ANY (an old compatibility case of
// inet_bind); an AF_INET6 socket takes AF_INET6.
func bindPort(k sockKind, sa sockaddr, n int) (uint16, error) {
	switch k.family {
	case afInet:
		if n < sizeofSockaddrIn {
			return 0, einval
		}
		if sa.family == afUnspec && sa.ap.Addr().IsUnspecified() {
			return sa.ap.Port(), nil
		}
		if sa.family != afInet {
			return 0, eafnosupport
		}
	case afInet6:
		if n < sizeofSockaddrIn6Min {
			return 0, einval
		}
		if sa.family != afInet6 {
			return 0, eafnosupport
		}
	default:
		return 0, eacces
	}
	return sa.ap.Port(), nil
}

// Published is where a container port is published on the host: an
// address and port per family, the zero AddrPort where it is not published
// in that family. An unspecified address means every address of its family.
type Published struct {
	V4, V6 netip.AddrPort
}

// dualStack reports whether p publishes every address of both families on
// one port, as one IPv6 socket with IPV6_V6ONLY off would take them.
func (p Published) dualStack() bool {
	return p.V4.IsValid() && p.V6.IsValid() && p.V4.Addr().IsUnspecified() &&
		p.V6.Addr().IsUnspecified() && p.V4.Port() == p.V6.Port()
}

// mine reports whether the container may name a as its own side of a bind
// published on host: the unspecified address, a loopback address, or the
// host address itself.
func mine(a, host netip.Addr) bool {
	return a.IsUnspecified() || a.IsLoopback() || a == host
}

// bindTarget is where a bind of sa lands on the host, given where the
// container port is published (pub) and the socket's IPV6_V6ONLY. It also
// says whether the service must set IPV6_V6ONLY first. The container names
// its own side: the unspecified address, a loopback address, or the host
// address itself all mean "the published address" of their family; any
// other address, or a family the grant does not publish, is EADDRNOTAVAIL,
// as on a host that lacks the address.
//
//   - AF_INET: the grant's IPv4 address.
//   - AF_INET6, an IPv4-mapped address: the grant's IPv4 address, mapped
//     (the socket takes IPv4 only); EINVAL on an IPV6_V6ONLY socket, as the
//     kernel answers.
//   - AF_INET6, :: with IPV6_V6ONLY off, on a grant of every address of
//     both families on one port: [::]:PORT, dual-stack, as asked.
//   - AF_INET6, otherwise, if the grant publishes IPv6: its IPv6 address;
//     if that is :: and the socket is not IPv6-only, the service makes it
//     IPv6-only first, since the grant's IPv4 side is another address or
//     port, or none.
//   - AF_INET6, :: with IPV6_V6ONLY off, on an IPv4-only grant: the IPv4
//     address, mapped (the socket takes IPv4 only).
func bindTarget(k sockKind, sa sockaddr, pub Published, v6only bool) (target sockaddr, setV6only bool, err error) {
	a := sa.ap.Addr()
	switch k.family {
	case afInet:
		if !pub.V4.IsValid() || !mine(a.Unmap(), pub.V4.Addr()) {
			return sockaddr{}, false, eaddrnotavail
		}
		return inet4(pub.V4), false, nil
	case afInet6:
		if a.Is4In6() {
			switch {
			case v6only:
				return sockaddr{}, false, einval
			case !pub.V4.IsValid() || !mine(a.Unmap(), pub.V4.Addr()):
				return sockaddr{}, false, eaddrnotavail
			}
			return inet6(pub.V4), false, nil
		}
		switch {
		case !a.IsUnspecified() && !a.IsLoopback() && (!pub.V6.IsValid() || a != pub.V6.Addr()):
			return sockaddr{}, false, eaddrnotavail
		case a.IsUnspecified() && !v6only && pub.dualStack():
			return inet6(pub.V6), false, nil
		case pub.V6.IsValid():
			return inet6(pub.V6), !v6only && pub.V6.Addr().IsUnspecified(), nil
		case a.IsUnspecified() && !v6only && pub.V4.IsValid():
			return inet6(pub.V4), false, nil
		}
		return sockaddr{}, false, eaddrnotavail
	}
	return sockaddr{}, false, eacces
}

// ephemeralTarget is where a bind of sa to port 0 lands: the address the
// container named, if it is the unspecified or a loopback address (of
// either family, or IPv4-mapped), on a port of the kernel's choice; any
// other address is EADDRNOTAVAIL (the container has no business with the
// host's other addresses, nor learning them). Such a socket can connect
// and send under the egress grants, as one the kernel binds implicitly,
// but never listen (listen needs a bind to a published port), and as a UDP
// socket it receives only what its filter admits (see inbound.go).
func ephemeralTarget(k sockKind, sa sockaddr) (sockaddr, error) {
	a := sa.ap.Addr()
	if u := a.Unmap(); !u.IsUnspecified() && !u.IsLoopback() {
		return sockaddr{}, eaddrnotavail
	}
	switch k.family {
	case afInet:
		return inet4(netip.AddrPortFrom(a.Unmap(), 0)), nil
	case afInet6:
		return sockaddr{family: afInet6, ap: netip.AddrPortFrom(netip.AddrFrom16(a.As16()), 0)}, nil
	}
	return sockaddr{}, eacces
}

// listenAllowed reports whether a TCP socket whose name is host (as
// getsockname gives it, IPv4-mapped on an AF_INET6 socket bound to an IPv4
// address) and whose IPV6_V6ONLY is v6only takes only connections pub
// publishes: the same address and port, and a dual-stack [::] socket only
// if pub also publishes every IPv4 address on its port.
func listenAllowed(host netip.AddrPort, v6only bool, pub Published) bool {
	a := host.Addr()
	if a.Is4() || a.Is4In6() {
		return pub.V4.IsValid() && pub.V4 == unmapped(host)
	}
	if !pub.V6.IsValid() || pub.V6 != host {
		return false
	}
	return !a.IsUnspecified() || v6only || pub.V4 == netip.AddrPortFrom(netip.IPv4Unspecified(), host.Port())
}

// dest is where a connect or a send goes.
type dest struct {
	// none means no destination: a connect that dissolves an association
	// (AF_UNSPEC), or a send to the connected peer.
	none bool
	// ap is the destination the grants are asked about: IPv4-mapped
	// addresses unmapped, and the unspecified address, which Linux routes to
	// the local host, made the loopback address it stands for.
	ap netip.AddrPort
	// sa is what the service hands the kernel: the decoded address with
	// the unspecified address replaced, so the kernel acts on exactly what
	// was checked.
	sa sockaddr
}

func disconnect() dest { return dest{none: true, sa: sockaddr{family: afUnspec}} }

// inetDest makes a checked destination of an AF_INET or AF_INET6 sockaddr.
func inetDest(sa sockaddr) dest {
	a := sa.ap.Addr()
	if a.Unmap().IsUnspecified() {
		switch {
		case sa.family == afInet || a.Is4In6():
			a = netip.AddrFrom4([4]byte{127, 0, 0, 1})
			if sa.family == afInet6 {
				a = netip.AddrFrom16(a.As16())
			}
		default:
			a = netip.IPv6Loopback()
		}
		sa.ap = netip.AddrPortFrom(a, sa.ap.Port())
	}
	return dest{ap: netip.AddrPortFrom(a.Unmap(), sa.ap.Port()), sa: sa}
}

// connectDest decides what a connect of sa (n bytes long) on a socket of
// kind k reaches. AF_UNSPEC dissolves the association (TCP disconnect, UDP
// un-connect), as the kernel does with as little as the family. Otherwise
// the family must match the socket's (EAFNOSUPPORT), except that an AF_INET6
// UDP socket may connect to an AF_INET address (ip6_datagram_connect).
func connectDest(k sockKind, sa sockaddr, n int) (dest, error) {
	if sa.family == afUnspec {
		return disconnect(), nil
	}
	switch {
	case k.family == afInet && sa.family == afInet:
	case k.family == afInet6 && sa.family == afInet6:
	case k.family == afInet6 && sa.family == afInet && k.typ == sockDgram:
	default:
		if n < sizeofSockaddrIn {
			return dest{}, einval
		}
		return dest{}, eafnosupport
	}
	return inetDest(sa), nil
}

// sendDest decides where a send with the address sa (n bytes long) goes on a
// socket of kind k, following the kernel's reading of msg_name:
//   - UDP over AF_INET (udp_sendmsg): at least a sockaddr_in (EINVAL), family
//     AF_INET or AF_UNSPEC — the latter read as AF_INET — else EAFNOSUPPORT;
//   - UDP over AF_INET6 (udpv6_sendmsg): AF_INET6, AF_INET, or AF_UNSPEC
//     meaning "no address"; others EINVAL;
//   - TCP with MSG_FASTOPEN: an implicit connect, so as connectDest, except
//     that AF_UNSPEC is EOPNOTSUPP;
//   - TCP without MSG_FASTOPEN: the kernel ignores the address, and so does
//     the service (it is not passed on).
func sendDest(k sockKind, sa sockaddr, n int, flags uint32) (dest, error) {
	switch k.proto() {
	case ProtoUDP:
		if k.family == afInet {
			if n < sizeofSockaddrIn {
				return dest{}, einval
			}
			switch sa.family {
			case afInet:
				return inetDest(sa), nil
			case afUnspec:
				return inetDest(inet4(sa.ap)), nil
			}
			return dest{}, eafnosupport
		}
		switch sa.family {
		case afInet6, afInet:
			return inetDest(sa), nil
		case afUnspec:
			return dest{none: true}, nil
		}
		return dest{}, einval
	case ProtoTCP:
		if flags&msgFastopen == 0 {
			return dest{none: true}, nil
		}
		if sa.family == afUnspec {
			return dest{}, eopnotsupp
		}
		if int(sa.family) != k.family {
			return dest{}, eafnosupport
		}
		return inetDest(sa), nil
	}
	return dest{}, eacces
}

// cmsgVerdict is what becomes of one control message on an AF_INET/AF_INET6
// socket.
type cmsgVerdict uint8

const (
	cmsgPass cmsgVerdict = iota // handed on unchanged
	cmsgDrop                    // ignored by the kernel for this socket; not handed on
	// cmsgLocalSource is handed on only if the socket cannot send from a
	// foreign source address (IP_FREEBIND off), since the kernel lets a
	// freebind socket name any IPv6 source in IPV6_PKTINFO.
	cmsgLocalSource
)

// inetCmsgRule decides one control message of a send on an AF_INET/AF_INET6
// socket. The service performs the send with its own privileges, so every
// message whose kernel check is a capability (CAP_NET_RAW, CAP_NET_ADMIN over
// the host's network namespace, which the service holds and the container
// must not borrow) or that redirects the packet is refused with EACCES:
//   - SO_MARK, SO_PRIORITY above 6: capability checks;
//   - IP_RETOPTS: IP options, among them loose and strict source routes that
//     send the packet to an unchecked first hop;
//   - IPV6_RTHDR (both APIs): routing headers, which replace the destination;
//   - IPV6_HOPOPTS, IPV6_DSTOPTS, IPV6_RTHDRDSTOPTS (both APIs): CAP_NET_RAW.
//
// Passed: SO_TIMESTAMPING, SO_TXTIME, SO_PRIORITY 0–6, IP_TOS, IP_TTL,
// IP_PKTINFO (the kernel requires a local source without IP_TRANSPARENT),
// IPV6_PKTINFO (see cmsgLocalSource), IPV6_HOPLIMIT, IPV6_TCLASS,
// IPV6_DONTFRAG, IPV6_FLOWINFO, UDP_SEGMENT. Other SOL_SOCKET, IP and IPv6
// types are EINVAL (the kernel's answer for types it does not know; SCM_RIGHTS
// and SCM_CREDENTIALS on an inet socket are EINVAL in the kernel too); other
// levels are dropped, as the kernel ignores them.
func inetCmsgRule(c cmsg) (cmsgVerdict, error) {
	switch c.level {
	case solSocket:
		switch c.typ {
		case soTimestampingOld, soTxtime:
			return cmsgPass, nil
		case soPriority:
			if len(c.data) != 4 {
				return 0, einval
			}
			if binary.NativeEndian.Uint32(c.data) > 6 {
				return 0, eacces
			}
			return cmsgPass, nil
		case soMark:
			return 0, eacces
		}
		return 0, einval
	case ipprotoIP:
		switch c.typ {
		case ipTOS, ipTTL, ipPktinfo:
			return cmsgPass, nil
		case ipRetopts:
			return 0, eacces
		}
		return 0, einval
	case ipprotoIPv6:
		switch c.typ {
		case ipv6Hoplimit, ipv6HoplimitRFC2292, ipv6Tclass, ipv6Dontfrag, ipv6Flowinfo:
			return cmsgPass, nil
		case ipv6Pktinfo, ipv6PktinfoRFC2292:
			// struct in6_pktinfo { struct in6_addr ipi6_addr; int ipi6_ifindex; }
			if len(c.data) >= 16 && !netip.AddrFrom16([16]byte(c.data[:16])).IsUnspecified() {
				return cmsgLocalSource, nil
			}
			return cmsgPass, nil
		case ipv6Rthdr, ipv6RthdrRFC2292, ipv6Hopopts, ipv6HopoptsRFC2292,
			ipv6Dstopts, ipv6DstoptsRFC2292, ipv6Rthdrdstopts:
			return 0, eacces
		}
		return 0, einval
	case solUDP:
		if c.typ == udpSegment {
			return cmsgPass, nil
		}
		return cmsgDrop, nil
	}
	return cmsgDrop, nil
}

// unixCmsgRule decides one control message of a send on a socket of another
// family (in practice an AF_UNIX socketpair end): SCM_RIGHTS is passed on
// with the service's copies of the container's descriptors; SCM_CREDENTIALS
// is refused with EPERM, because the kernel would check the claimed pid, uid
// and gid against the service's credentials rather than the container's;
// other SOL_SOCKET types are EINVAL and other levels are dropped, as
// __scm_send does.
func unixCmsgRule(c cmsg) (cmsgVerdict, error) {
	if c.level != solSocket {
		return cmsgDrop, nil
	}
	switch c.typ {
	case scmRights:
		if len(c.data)%4 != 0 {
			return 0, einval
		}
		return cmsgPass, nil
	case scmCredentials:
		return 0, eperm
	}
	return 0, einval
}

func unmapped(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

package netsvc

import (
	"encoding/binary"
	"net/netip"
)

// sockaddr is a socket address read from a container's memory. Only the
// families this package mediates are decoded; the service never hands the
// kernel the container's bytes, only encode's canonical form of what was
// decoded and checked.
type sockaddr struct {
	family uint16 // afUnspec, afInet or afInet6
	// ap is the address and port. For afUnspec it is the sockaddr_in reading
	// of the bytes when there are at least 16 of them (the kernel reads an
	// AF_UNSPEC address that way in bind and UDP sendmsg), else the zero value.
	ap    netip.AddrPort
	flow  uint32 // sin6_flowinfo, in network byte order as the caller wrote it
	scope uint32 // sin6_scope_id
}

// decodeSockaddr decodes b, a socket address exactly as long as the length
// the caller passed (at most 128 bytes), as the kernel would:
// fewer than 2 bytes, an AF_INET address shorter than a sockaddr_in or an
// AF_INET6 address shorter than RFC 2133's sockaddr_in6 is EINVAL; any other
// family is EAFNOSUPPORT (with family set, so callers can tell AF_UNSPEC and
// others apart).
func decodeSockaddr(b []byte) (sockaddr, error) {
	if len(b) < 2 || len(b) > sizeofSockaddrStorage {
		return sockaddr{}, einval
	}
	fam := binary.NativeEndian.Uint16(b)
	switch fam {
	case afInet:
		if len(b) < sizeofSockaddrIn {
			return sockaddr{family: fam}, einval
		}
		return sockaddr{family: fam, ap: inAddrPort(b)}, nil
	case afInet6:
		if len(b) < sizeofSockaddrIn6Min {
			return sockaddr{family: fam}, einval
		}
		sa := sockaddr{
			family: fam,
			ap:     netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])), binary.BigEndian.Uint16(b[2:4])),
			flow:   binary.BigEndian.Uint32(b[4:8]),
		}
		if len(b) >= sizeofSockaddrIn6 {
			sa.scope = binary.NativeEndian.Uint32(b[24:28])
		}
		return sa, nil
	case afUnspec:
		sa := sockaddr{family: fam}
		if len(b) >= sizeofSockaddrIn {
			sa.ap = inAddrPort(b)
		}
		return sa, nil
	}
	return sockaddr{family: fam}, eafnosupport
}

func inAddrPort(b []byte) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), binary.BigEndian.Uint16(b[2:4]))
}

// encode returns the canonical sockaddr for sa: 16 bytes for AF_INET and
// AF_UNSPEC (all zero but the family), 28 for AF_INET6.
func (sa sockaddr) encode() []byte {
	switch sa.family {
	case afInet:
		b := make([]byte, sizeofSockaddrIn)
		binary.NativeEndian.PutUint16(b, afInet)
		binary.BigEndian.PutUint16(b[2:], sa.ap.Port())
		a := sa.ap.Addr().As4()
		copy(b[4:], a[:])
		return b
	case afInet6:
		b := make([]byte, sizeofSockaddrIn6)
		binary.NativeEndian.PutUint16(b, afInet6)
		binary.BigEndian.PutUint16(b[2:], sa.ap.Port())
		binary.BigEndian.PutUint32(b[4:], sa.flow)
		a := sa.ap.Addr().As16()
		copy(b[8:], a[:])
		binary.NativeEndian.PutUint32(b[24:], sa.scope)
		return b
	}
	b := make([]byte, sizeofSockaddrIn)
	binary.NativeEndian.PutUint16(b, afUnspec)
	return b
}

// inet4 and inet6 make sockaddrs in the given family for a (an IPv4 address
// becomes v4-mapped in inet6).
func inet4(ap netip.AddrPort) sockaddr {
	return sockaddr{family: afInet, ap: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}
}

func inet6(ap netip.AddrPort) sockaddr {
	return sockaddr{family: afInet6, ap: netip.AddrPortFrom(netip.AddrFrom16(ap.Addr().As16()), ap.Port())}
}

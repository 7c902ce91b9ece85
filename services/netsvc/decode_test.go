package netsvc

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

func sa4b(ip string, port uint16) []byte {
	return sockaddr{family: afInet, ap: netip.AddrPortFrom(netip.MustParseAddr(ip), port)}.encode()
}

func sa6b(ip string, port uint16, flow, scope uint32) []byte {
	return sockaddr{family: afInet6, ap: netip.AddrPortFrom(netip.MustParseAddr(ip), port), flow: flow, scope: scope}.encode()
}

func withFamily(b []byte, f uint16) []byte {
	b = bytes.Clone(b)
	binary.NativeEndian.PutUint16(b, f)
	return b
}

func TestDecodeSockaddr(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want sockaddr
		err  error
	}{
		{"inet", sa4b("10.1.2.3", 443), sockaddr{family: afInet, ap: netip.MustParseAddrPort("10.1.2.3:443")}, nil},
		{"inet longer", append(sa4b("10.1.2.3", 443), 1, 2, 3), sockaddr{family: afInet, ap: netip.MustParseAddrPort("10.1.2.3:443")}, nil},
		{"inet short", sa4b("10.1.2.3", 443)[:15], sockaddr{family: afInet}, einval},
		{"inet6", sa6b("2001:db8::1", 80, 0x12345, 3), sockaddr{family: afInet6, ap: netip.MustParseAddrPort("[2001:db8::1]:80"), flow: 0x12345, scope: 3}, nil},
		{"inet6 rfc2133", sa6b("2001:db8::1", 80, 0, 3)[:24], sockaddr{family: afInet6, ap: netip.MustParseAddrPort("[2001:db8::1]:80")}, nil},
		{"inet6 short", sa6b("2001:db8::1", 80, 0, 0)[:23], sockaddr{family: afInet6}, einval},
		{"unspec family only", []byte{0, 0}, sockaddr{family: afUnspec}, nil},
		{"unspec as inet", withFamily(sa4b("1.2.3.4", 5), afUnspec), sockaddr{family: afUnspec, ap: netip.MustParseAddrPort("1.2.3.4:5")}, nil},
		{"unix", withFamily(make([]byte, 110), afUnix), sockaddr{family: afUnix}, eafnosupport},
		{"empty", nil, sockaddr{}, einval},
		{"one byte", []byte{2}, sockaddr{}, einval},
		{"too long", make([]byte, 129), sockaddr{}, einval},
	}
	for _, tt := range tests {
		got, err := decodeSockaddr(tt.in)
		if got != tt.want || err != tt.err {
			t.Errorf("%s: decodeSockaddr = %+v, %v; want %+v, %v", tt.name, got, err, tt.want, tt.err)
		}
	}
}

// FuzzDecodeSockaddr: decoding never panics, and what decodes re-encodes to
// bytes that decode to the same address (the service hands the kernel only
// its own encoding); the rules built on it never panic and only ever hand the
// kernel an address of the socket's families.
func FuzzDecodeSockaddr(f *testing.F) {
	f.Add(sa4b("127.0.0.1", 80))
	f.Add(sa6b("::ffff:10.0.0.1", 443, 7, 2))
	f.Add(sa6b("::", 0, 0, 0)[:24])
	f.Add(withFamily(sa4b("0.0.0.0", 53), afUnspec))
	f.Add([]byte{0, 0})
	f.Add(withFamily(make([]byte, 16), afUnix))
	f.Fuzz(func(t *testing.T, b []byte) {
		sa, err := decodeSockaddr(b)
		if err != nil {
			if err != einval && err != eafnosupport {
				t.Fatalf("error %v", err)
			}
			return
		}
		if sa.family != afUnspec {
			again, err := decodeSockaddr(sa.encode())
			if err != nil || again != sa {
				t.Fatalf("re-decode: %+v, %v; want %+v", again, err, sa)
			}
		}
		for _, k := range []sockKind{{afInet, sockStream}, {afInet, sockDgram}, {afInet6, sockStream}, {afInet6, sockDgram}} {
			for _, flags := range []uint32{0, msgFastopen} {
				if d, err := sendDest(k, sa, len(b), flags); err == nil && !d.none {
					checkDest(t, k, d)
				}
			}
			if d, err := connectDest(k, sa, len(b)); err == nil && !d.none {
				checkDest(t, k, d)
			}
			if _, err := bindPort(k, sa, len(b)); err == nil {
				for _, pub := range fuzzPublished {
					for _, v6only := range []bool{false, true} {
						target, _, err := bindTarget(k, sa, pub, v6only)
						if err != nil {
							continue
						}
						if target.family != uint16(k.family) {
							t.Fatalf("bind target family %d on a socket of family %d", target.family, k.family)
						}
						if h := unmapped(target.ap); h != pub.V4 && h != pub.V6 {
							t.Fatalf("bind of %v lands on %v, not published in %+v", sa.ap, target.ap, pub)
						}
					}
				}
				if target, err := ephemeralTarget(k, sa); err == nil {
					if a := target.ap.Addr().Unmap(); target.ap.Port() != 0 || !a.IsUnspecified() && !a.IsLoopback() {
						t.Fatalf("port-0 bind of %v lands on %v", sa.ap, target.ap)
					}
				}
			}
		}
	})
}

var fuzzPublished = []Published{
	{V4: netip.MustParseAddrPort("127.0.0.1:8080")},
	{V6: netip.MustParseAddrPort("[::1]:8080")},
	{V6: netip.MustParseAddrPort("[::]:8080")},
	{V4: netip.MustParseAddrPort("0.0.0.0:8080"), V6: netip.MustParseAddrPort("[::]:8080")},
	{V4: netip.MustParseAddrPort("127.0.0.1:8080"), V6: netip.MustParseAddrPort("[::]:9090")},
}

// checkDest: what the grants are asked about is what the kernel is handed.
func checkDest(t *testing.T, k sockKind, d dest) {
	t.Helper()
	if d.ap.Addr().Is4In6() || d.ap.Addr().IsUnspecified() {
		t.Fatalf("grants asked about %v", d.ap)
	}
	got, err := decodeSockaddr(d.sa.encode())
	if err != nil {
		t.Fatalf("encoded destination does not decode: %v", err)
	}
	if unmapped(got.ap) != d.ap {
		t.Fatalf("kernel handed %v, grants asked about %v", got.ap, d.ap)
	}
	if got.family != uint16(k.family) && !(k.family == afInet6 && got.family == afInet && k.typ == sockDgram) {
		t.Fatalf("family %d handed to a socket of family %d", got.family, k.family)
	}
}

func TestSocketRule(t *testing.T) {
	tests := []struct {
		d, typ, p int32
		proto     string
		err       error
	}{
		{afInet, sockStream, 0, ProtoTCP, nil},
		{afInet6, sockStream | sockCloexec | sockNonblock, ipprotoTCP, ProtoTCP, nil},
		{afInet, sockDgram, ipprotoUDP, ProtoUDP, nil},
		{afInet, sockStream | 0x100, 0, "", einval},
		{afUnix, sockStream, 0, "", eacces},
		{16, sockRaw, 0, "", eacces}, // AF_NETLINK
		{17, sockRaw, 0, "", eacces}, // AF_PACKET
		{afInet, sockRaw, 1, "", eacces},
		{afInet, sockSeqpacket, 0, "", eacces},
		{afInet, sockStream, 262, "", eprotonosupport}, // MPTCP
		{afInet, sockDgram, 1, "", eprotonosupport},    // ICMP ping
		{afInet, sockStream, ipprotoUDP, "", eprotonosupport},
	}
	for _, tt := range tests {
		r, err := socketRule(tt.d, tt.typ, tt.p)
		if r.proto != tt.proto || err != tt.err {
			t.Errorf("socketRule(%d, %#x, %d) = %q, %v; want %q, %v", tt.d, tt.typ, tt.p, r.proto, err, tt.proto, tt.err)
		}
	}
	r, _ := socketRule(afInet, sockStream|sockCloexec, 0)
	if !r.cloexec || r.nonblock {
		t.Errorf("flags: %+v", r)
	}
}

func TestBindTarget(t *testing.T) {
	v4, v6 := sockKind{afInet, sockStream}, sockKind{afInet6, sockStream}
	ap := netip.MustParseAddrPort
	lo4 := Published{V4: ap("127.0.0.1:18080")}
	both := Published{V4: ap("0.0.0.0:8080"), V6: ap("[::]:8080")}
	lo6 := Published{V6: ap("[::1]:8081")}
	any6 := Published{V6: ap("[::]:8082")}
	split := Published{V4: ap("127.0.0.1:8083"), V6: ap("[::]:8084")}
	tests := []struct {
		k      sockKind
		sa     []byte
		pub    Published
		v6only bool
		want   string
		set    bool // IPV6_V6ONLY set by the service
		err    error
	}{
		{v4, sa4b("0.0.0.0", 80), lo4, false, "127.0.0.1:18080", false, nil},
		{v4, sa4b("127.0.0.1", 80), lo4, false, "127.0.0.1:18080", false, nil},
		{v4, sa4b("127.9.9.9", 80), lo4, false, "127.0.0.1:18080", false, nil},
		{v4, sa4b("10.0.0.1", 80), lo4, false, "", false, eaddrnotavail},
		{v4, sa4b("192.0.2.7", 80), Published{V4: ap("192.0.2.7:80")}, false, "192.0.2.7:80", false, nil},
		{v4, sa4b("0.0.0.0", 80), both, false, "0.0.0.0:8080", false, nil},
		{v4, sa4b("0.0.0.0", 80), lo6, false, "", false, eaddrnotavail},
		{v4, sa4b("0.0.0.0", 80), any6, false, "", false, eaddrnotavail},

		// IPv4-only grant: a dual-stack socket takes IPv4; an IPv6-only
		// one, or an IPv6 address, has nothing (redis: "bind * -::*").
		{v6, sa6b("::", 80, 0, 0), lo4, false, "[::ffff:127.0.0.1]:18080", false, nil},
		{v6, sa6b("::", 80, 0, 0), lo4, true, "", false, eaddrnotavail},
		{v6, sa6b("::1", 80, 0, 0), lo4, false, "", false, eaddrnotavail},
		{v6, sa6b("::ffff:127.0.0.1", 80, 0, 0), lo4, false, "[::ffff:127.0.0.1]:18080", false, nil},
		{v6, sa6b("::ffff:0.0.0.0", 80, 0, 0), lo4, false, "[::ffff:127.0.0.1]:18080", false, nil},
		{v6, sa6b("::ffff:127.0.0.1", 80, 0, 0), lo4, true, "", false, einval},
		{v6, sa6b("::ffff:10.0.0.1", 80, 0, 0), lo4, false, "", false, eaddrnotavail},

		// Both families, every address.
		{v6, sa6b("::", 80, 0, 0), both, false, "[::]:8080", false, nil},
		{v6, sa6b("::", 80, 0, 0), both, true, "[::]:8080", false, nil},
		{v6, sa6b("::1", 80, 0, 0), both, false, "[::]:8080", true, nil},
		{v6, sa6b("::ffff:0.0.0.0", 80, 0, 0), both, false, "[::ffff:0.0.0.0]:8080", false, nil},

		// IPv6 only.
		{v6, sa6b("::", 80, 0, 0), lo6, false, "[::1]:8081", false, nil},
		{v6, sa6b("::1", 80, 0, 0), lo6, true, "[::1]:8081", false, nil},
		{v6, sa6b("::ffff:127.0.0.1", 80, 0, 0), lo6, false, "", false, eaddrnotavail},
		{v6, sa6b("::", 80, 0, 0), any6, false, "[::]:8082", true, nil},
		{v6, sa6b("::", 80, 0, 0), any6, true, "[::]:8082", false, nil},
		{v6, sa6b("2001:db8::1", 80, 0, 0), Published{V6: ap("[2001:db8::1]:80")}, false, "[2001:db8::1]:80", false, nil},
		{v6, sa6b("fe80::1", 80, 0, 2), lo6, false, "", false, eaddrnotavail},

		// Families on different addresses or ports: a dual-stack socket
		// takes IPv6 only.
		{v6, sa6b("::", 80, 0, 0), split, false, "[::]:8084", true, nil},
		{v6, sa6b("::ffff:127.0.0.1", 80, 0, 0), split, false, "[::ffff:127.0.0.1]:8083", false, nil},
	}
	for _, tt := range tests {
		sa, err := decodeSockaddr(tt.sa)
		if err != nil {
			t.Fatal(err)
		}
		got, set, err := bindTarget(tt.k, sa, tt.pub, tt.v6only)
		if err != tt.err || (err == nil && (got.ap.String() != tt.want || set != tt.set)) {
			t.Errorf("bindTarget(%v, %v, %+v, v6only %v) = %v, set %v, %v; want %s, set %v, %v",
				tt.k, sa.ap, tt.pub, tt.v6only, got.ap, set, err, tt.want, tt.set, tt.err)
		}
		if err == nil {
			// What was bound may listen, unless a racing thread cleared
			// IPV6_V6ONLY where the service set it.
			v6only := tt.v6only || set || tt.k.family == afInet6 && !got.ap.Addr().IsUnspecified() && !got.ap.Addr().Is4In6()
			if !listenAllowed(got.ap, v6only, tt.pub) {
				t.Errorf("listenAllowed(%v, %v, %+v) = false after bindTarget chose it", got.ap, v6only, tt.pub)
			}
			if set && !tt.pub.dualStack() && listenAllowed(got.ap, false, tt.pub) {
				t.Errorf("listenAllowed(%v, v6only false, %+v) = true: the grant does not publish that IPv4", got.ap, tt.pub)
			}
		}
	}
	for _, tt := range []struct {
		k    sockKind
		sa   []byte
		want string
		err  error
	}{
		{v4, sa4b("0.0.0.0", 0), "0.0.0.0:0", nil},
		{v4, sa4b("127.0.0.1", 0), "127.0.0.1:0", nil},
		{v4, sa4b("10.0.0.1", 0), "", eaddrnotavail},
		{v6, sa6b("::1", 0, 0, 0), "[::1]:0", nil},
		{v6, sa6b("::ffff:127.0.0.1", 0, 0, 0), "[::ffff:127.0.0.1]:0", nil},
		{v6, sa6b("::", 0, 0, 0), "[::]:0", nil},
		{v6, sa6b("2001:db8::1", 0, 0, 0), "", eaddrnotavail},
		{v6, sa6b("::ffff:10.0.0.1", 0, 0, 0), "", eaddrnotavail},
	} {
		sa, _ := decodeSockaddr(tt.sa)
		got, err := ephemeralTarget(tt.k, sa)
		if err != tt.err || (err == nil && got.ap.String() != tt.want) {
			t.Errorf("ephemeralTarget(%v, %v) = %v, %v; want %s, %v", tt.k, sa.ap, got.ap, err, tt.want, tt.err)
		}
	}
	for _, tt := range []struct {
		k    sockKind
		sa   []byte
		port uint16
		err  error
	}{
		{v4, sa4b("0.0.0.0", 80), 80, nil},
		{v4, withFamily(sa4b("0.0.0.0", 80), afUnspec), 80, nil},
		{v4, withFamily(sa4b("127.0.0.1", 80), afUnspec), 0, eafnosupport},
		{v4, sa6b("::", 80, 0, 0), 0, eafnosupport},
		{v6, sa4b("0.0.0.0", 80), 0, einval},
		{v6, withFamily(sa6b("::", 80, 0, 0), afUnspec), 0, eafnosupport},
	} {
		sa, _ := decodeSockaddr(tt.sa)
		port, err := bindPort(tt.k, sa, len(tt.sa))
		if port != tt.port || err != tt.err {
			t.Errorf("bindPort(%v, % x) = %d, %v; want %d, %v", tt.k, tt.sa[:4], port, err, tt.port, tt.err)
		}
	}
}

func TestDest(t *testing.T) {
	tcp4, udp4 := sockKind{afInet, sockStream}, sockKind{afInet, sockDgram}
	tcp6, udp6 := sockKind{afInet6, sockStream}, sockKind{afInet6, sockDgram}
	tests := []struct {
		name  string
		k     sockKind
		sa    []byte
		send  bool
		flags uint32
		want  string // checked destination, "none", or ""
		err   error
	}{
		{"connect v4", tcp4, sa4b("192.0.2.1", 443), false, 0, "192.0.2.1:443", nil},
		{"connect 0.0.0.0 is loopback", tcp4, sa4b("0.0.0.0", 22), false, 0, "127.0.0.1:22", nil},
		{"connect :: is loopback", tcp6, sa6b("::", 22, 0, 0), false, 0, "[::1]:22", nil},
		{"connect ::ffff:0.0.0.0 is loopback", tcp6, sa6b("::ffff:0.0.0.0", 22, 0, 0), false, 0, "127.0.0.1:22", nil},
		{"connect mapped is unmapped", tcp6, sa6b("::ffff:192.0.2.1", 80, 0, 0), false, 0, "192.0.2.1:80", nil},
		{"connect unspec", tcp4, []byte{0, 0}, false, 0, "none", nil},
		{"connect v6 on v4", tcp4, sa6b("::1", 80, 0, 0), false, 0, "", eafnosupport},
		{"connect v4 on tcp6", tcp6, sa4b("192.0.2.1", 80), false, 0, "", eafnosupport},
		{"connect v4 on udp6", udp6, sa4b("192.0.2.1", 53), false, 0, "192.0.2.1:53", nil},
		{"udp4 send", udp4, sa4b("192.0.2.1", 53), true, 0, "192.0.2.1:53", nil},
		{"udp4 send unspec reads as inet", udp4, withFamily(sa4b("192.0.2.9", 53), afUnspec), true, 0, "192.0.2.9:53", nil},
		{"udp4 send unspec short", udp4, []byte{0, 0}, true, 0, "", einval},
		{"udp4 send v6", udp4, sa6b("::1", 53, 0, 0), true, 0, "", eafnosupport},
		{"udp6 send unspec is no address", udp6, []byte{0, 0}, true, 0, "none", nil},
		{"udp6 send v4", udp6, sa4b("192.0.2.1", 53), true, 0, "192.0.2.1:53", nil},
		{"tcp send ignores address", tcp4, sa4b("192.0.2.1", 80), true, 0, "none", nil},
		{"tcp fastopen", tcp4, sa4b("192.0.2.1", 80), true, msgFastopen, "192.0.2.1:80", nil},
		{"tcp fastopen unspec", tcp4, []byte{0, 0}, true, msgFastopen, "", eopnotsupp},
	}
	for _, tt := range tests {
		sa, err := decodeSockaddr(tt.sa)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		var d dest
		if tt.send {
			d, err = sendDest(tt.k, sa, len(tt.sa), tt.flags)
		} else {
			d, err = connectDest(tt.k, sa, len(tt.sa))
		}
		got := ""
		switch {
		case err != nil:
		case d.none:
			got = "none"
		default:
			got = d.ap.String()
			checkDest(t, tt.k, d)
		}
		if got != tt.want || err != tt.err {
			t.Errorf("%s: %q, %v; want %q, %v", tt.name, got, err, tt.want, tt.err)
		}
	}
}

func TestCmsgRules(t *testing.T) {
	pk := make([]byte, 20)
	pkSrc := bytes.Clone(pk)
	pkSrc[15] = 1
	tests := []struct {
		c    cmsg
		inet bool
		v    cmsgVerdict
		err  error
	}{
		{cmsg{ipprotoIP, ipTTL, make([]byte, 4)}, true, cmsgPass, nil},
		{cmsg{ipprotoIP, ipRetopts, make([]byte, 8)}, true, 0, eacces},
		{cmsg{ipprotoIP, 99, nil}, true, 0, einval},
		{cmsg{solSocket, soMark, make([]byte, 4)}, true, 0, eacces},
		{cmsg{solSocket, soPriority, []byte{6, 0, 0, 0}}, true, cmsgPass, nil},
		{cmsg{solSocket, soPriority, []byte{7, 0, 0, 0}}, true, 0, eacces},
		{cmsg{solSocket, scmRights, make([]byte, 4)}, true, 0, einval},
		{cmsg{ipprotoIPv6, ipv6Rthdr, make([]byte, 24)}, true, 0, eacces},
		{cmsg{ipprotoIPv6, ipv6RthdrRFC2292, make([]byte, 24)}, true, 0, eacces},
		{cmsg{ipprotoIPv6, ipv6Hopopts, make([]byte, 8)}, true, 0, eacces},
		{cmsg{ipprotoIPv6, ipv6Pktinfo, pk}, true, cmsgPass, nil},
		{cmsg{ipprotoIPv6, ipv6Pktinfo, pkSrc}, true, cmsgLocalSource, nil},
		{cmsg{solUDP, udpSegment, []byte{0, 5}}, true, cmsgPass, nil},
		{cmsg{6, 1, nil}, true, cmsgDrop, nil},
		{cmsg{solSocket, scmRights, make([]byte, 8)}, false, cmsgPass, nil},
		{cmsg{solSocket, scmRights, make([]byte, 6)}, false, 0, einval},
		{cmsg{solSocket, scmCredentials, make([]byte, 12)}, false, 0, eperm},
		{cmsg{solSocket, soMark, make([]byte, 4)}, false, 0, einval},
		{cmsg{ipprotoIP, ipTTL, make([]byte, 4)}, false, cmsgDrop, nil},
	}
	for _, tt := range tests {
		var v cmsgVerdict
		var err error
		if tt.inet {
			v, err = inetCmsgRule(tt.c)
		} else {
			v, err = unixCmsgRule(tt.c)
		}
		if v != tt.v || err != tt.err {
			t.Errorf("inet=%v level %d type %d: %v, %v; want %v, %v", tt.inet, tt.c.level, tt.c.typ, v, err, tt.v, tt.err)
		}
	}
}

func msghdrBytes(m msghdr) []byte {
	b := make([]byte, sizeofMsghdr)
	binary.NativeEndian.PutUint64(b[0:], m.name)
	binary.NativeEndian.PutUint32(b[8:], uint32(m.namelen))
	binary.NativeEndian.PutUint64(b[16:], m.iov)
	binary.NativeEndian.PutUint64(b[24:], m.iovlen)
	binary.NativeEndian.PutUint64(b[32:], m.control)
	binary.NativeEndian.PutUint64(b[40:], m.controllen)
	binary.NativeEndian.PutUint32(b[48:], uint32(m.flags))
	return b
}

func TestDecodeMsghdr(t *testing.T) {
	tests := []struct {
		in   msghdr
		want msghdr
		err  error
	}{
		{msghdr{name: 0x1000, namelen: 16, iov: 0x2000, iovlen: 2}, msghdr{name: 0x1000, namelen: 16, iov: 0x2000, iovlen: 2}, nil},
		{msghdr{name: 0, namelen: 16}, msghdr{}, nil},
		{msghdr{name: 0x1000, namelen: 0}, msghdr{}, nil},
		{msghdr{name: 0x1000, namelen: 500}, msghdr{name: 0x1000, namelen: 128}, nil},
		{msghdr{name: 0x1000, namelen: -1}, msghdr{}, einval},
		{msghdr{iovlen: 1025}, msghdr{}, emsgsize},
		{msghdr{control: 0x3000, controllen: 1 << 20}, msghdr{}, enobufs},
		{msghdr{control: 0, controllen: 100}, msghdr{}, nil},
	}
	for _, tt := range tests {
		got, err := decodeMsghdr(msghdrBytes(tt.in))
		if err != tt.err || (err == nil && got != tt.want) {
			t.Errorf("decodeMsghdr(%+v) = %+v, %v; want %+v, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
	if _, err := decodeMsghdr(make([]byte, 55)); err != efault {
		t.Errorf("short msghdr: %v", err)
	}
	iov := make([]byte, 32)
	binary.NativeEndian.PutUint64(iov[8:], 1<<63)
	if _, _, err := decodeIovecs(iov); err != einval {
		t.Errorf("negative iov_len: %v", err)
	}
	binary.NativeEndian.PutUint64(iov[8:], maxRWCount-1)
	binary.NativeEndian.PutUint64(iov[24:], 100)
	if _, total, _ := decodeIovecs(iov); total != maxRWCount {
		t.Errorf("total %d, want capped at %d", total, maxRWCount)
	}
}

func TestDecodeCmsgs(t *testing.T) {
	cs := []cmsg{{1, 1, []byte{1, 2, 3, 4}}, {0, 2, []byte{9}}, {41, 50, nil}}
	b := encodeCmsgs(cs)
	got, err := decodeCmsgs(b)
	if err != nil || len(got) != 3 {
		t.Fatalf("round trip: %v, %v", got, err)
	}
	// Without the last message's padding the walk still finds it (CMSG_OK
	// checks cmsg_len, not CMSG_SPACE).
	if got, err := decodeCmsgs(b[:len(b)-0]); err != nil || len(got) != 3 {
		t.Errorf("unpadded: %v %v", got, err)
	}
	// Trailing bytes shorter than a header end the walk.
	if got, err := decodeCmsgs(append(bytes.Clone(b), make([]byte, 15)...)); err != nil || len(got) != 3 {
		t.Errorf("trailing: %v %v", got, err)
	}
	bad := bytes.Clone(b)
	binary.NativeEndian.PutUint64(bad, 15)
	if _, err := decodeCmsgs(bad); err != einval {
		t.Errorf("cmsg_len below the header: %v", err)
	}
	binary.NativeEndian.PutUint64(bad, uint64(len(b)+1))
	if _, err := decodeCmsgs(bad); err != einval {
		t.Errorf("cmsg_len past the end: %v", err)
	}
}

// FuzzDecodeMsghdr: a msghdr followed by bytes read as its iovec array and as
// its control data. Nothing panics; limits hold; control data that decodes
// re-encodes to messages that decode the same; the rules decide every message
// without panicking.
func FuzzDecodeMsghdr(f *testing.F) {
	f.Add(append(msghdrBytes(msghdr{name: 1, namelen: 16, iov: 2, iovlen: 1, control: 3, controllen: 24}),
		encodeCmsgs([]cmsg{{solSocket, scmRights, []byte{3, 0, 0, 0}}})...))
	f.Add(append(msghdrBytes(msghdr{iovlen: 2}), make([]byte, 32)...))
	f.Add(msghdrBytes(msghdr{name: 1, namelen: -5}))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMsghdr(b)
		if err == nil {
			if m.namelen < 0 || m.namelen > sizeofSockaddrStorage || (m.name == 0) != (m.namelen == 0) {
				t.Fatalf("name %#x/%d", m.name, m.namelen)
			}
			if m.iovlen > uioMaxIOV || m.controllen > maxControlLen {
				t.Fatalf("limits: %+v", m)
			}
		}
		rest := b[min(len(b), sizeofMsghdr):]
		if iov, total, err := decodeIovecs(rest); err == nil {
			var sum uint64
			for _, v := range iov {
				sum += v.len
			}
			if sum != total || total > maxRWCount {
				t.Fatalf("total %d, sum %d", total, sum)
			}
			n := total / 2
			var clipped uint64
			for _, v := range clip(iov, n) {
				clipped += v.len
			}
			if clipped != n {
				t.Fatalf("clip %d = %d", n, clipped)
			}
		}
		cs, err := decodeCmsgs(rest)
		if err != nil {
			return
		}
		again, err := decodeCmsgs(encodeCmsgs(cs))
		if err != nil || len(again) != len(cs) {
			t.Fatalf("re-decode: %d messages, %v; want %d", len(again), err, len(cs))
		}
		for i := range cs {
			if again[i].level != cs[i].level || again[i].typ != cs[i].typ || !bytes.Equal(again[i].data, cs[i].data) {
				t.Fatalf("message %d differs", i)
			}
			inetCmsgRule(cs[i])
			unixCmsgRule(cs[i])
		}
	})
}

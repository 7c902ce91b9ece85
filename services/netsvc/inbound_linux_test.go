//go:build linux && (amd64 || arm64)

package netsvc

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The inbound filter is checked against the kernel: a UDP socket with the
// compiled filter, and host sockets on 127.0.0.0/8 and ::1 sending to it.
func TestInboundFilter(t *testing.T) {
	needRoot(t)
	pfx := netip.MustParsePrefix
	// A sender's port is given by the test; 0 means "pick one".
	type send struct {
		from string // address:port of the sender
		keep bool
	}
	p1, p2 := freePort(t, "udp"), freePort(t, "udp")
	ap := func(a string, port int) string {
		return netip.AddrPortFrom(netip.MustParseAddr(a), uint16(port)).String()
	}
	many := make([]Source, 60) // an IPv4 part longer than a short jump reaches
	for i := range many {
		many[i] = Source{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(i), 1}), 32), Port: 9}
	}
	cases := []struct {
		name  string
		in    Inbound
		sends []send
	}{
		{"one destination", Inbound{From: []Source{{pfx("127.0.0.2/32"), uint16(p1)}}}, []send{
			{ap("127.0.0.2", p1), true},
			{ap("127.0.0.2", p2), false},
			{ap("127.0.0.3", p1), false},
			{ap("::1", p1), false},
		}},
		{"prefix, any port", Inbound{From: []Source{{pfx("127.0.0.4/30"), 0}}}, []send{
			{ap("127.0.0.5", p1), true},
			{ap("127.0.0.7", p2), true},
			{ap("127.0.0.8", p1), false},
			{ap("127.0.0.3", p1), false},
		}},
		{"ipv6", Inbound{From: []Source{{pfx("::1/128"), uint16(p1)}, {pfx("127.0.0.2/32"), 0}}}, []send{
			{ap("::1", p1), true},
			{ap("::1", p2), false},
			{ap("127.0.0.2", p2), true},
			{ap("127.0.0.1", p1), false},
		}},
		{"ipv6 prefix", Inbound{From: []Source{{pfx("::/127"), 0}}}, []send{
			{ap("::1", p2), true},
			{ap("127.0.0.1", p2), false},
		}},
		// Published addresses: the receiver's port is filled in below.
		{"published", Inbound{To: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}}, []send{
			{ap("127.0.0.3", p1), true},
			{ap("127.0.0.4", p2), true},
			{ap("::1", p1), false},
		}},
		{"published ipv6 wildcard", Inbound{To: []netip.AddrPort{netip.MustParseAddrPort("[::]:0")}}, []send{
			{ap("::1", p1), true},
			{ap("127.0.0.1", p1), false},
		}},
		{"published ipv6 and ipv4 source", Inbound{To: []netip.AddrPort{netip.MustParseAddrPort("[::1]:0")},
			From: []Source{{pfx("127.0.0.2/32"), 0}}}, []send{
			{ap("::1", p2), true},
			{ap("127.0.0.2", p1), true},
			{ap("127.0.0.3", p1), false},
		}},
		{"long", Inbound{From: append(many, Source{pfx("::1/128"), 0}, Source{pfx("127.0.0.9/32"), 0})}, []send{
			{ap("127.0.0.9", p1), true},
			{ap("::1", p1), true},
			{ap("127.0.0.10", p1), false},
		}},
		{"nothing", Inbound{}, []send{
			{ap("127.0.0.1", p1), false},
			{ap("::1", p1), false},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The receiver: dual-stack, so both families reach it.
			fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(fd)
			unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0)
			if err := unix.Bind(fd, &unix.SockaddrInet6{}); err != nil {
				t.Fatal(err)
			}
			sa, _ := unix.Getsockname(fd)
			port := sa.(*unix.SockaddrInet6).Port
			sends := c.sends
			for i, to := range c.in.To {
				c.in.To[i] = netip.AddrPortFrom(to.Addr(), uint16(port))
			}
			prog, err := compileInbound(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if c.name == "long" && len(prog) < 300 {
				t.Fatalf("the long filter has only %d instructions", len(prog))
			}
			if err := lockInbound(fd, c.in); err != nil {
				t.Fatal(err)
			}
			for i, s := range sends {
				from := netip.MustParseAddrPort(s.from)
				to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
				if from.Addr().Is6() {
					to = netip.AddrPortFrom(netip.IPv6Loopback(), uint16(port))
				}
				msg := []byte{byte('a' + i)}
				sendFrom(t, from, to, msg)
				got := recvOne(fd)
				if s.keep && string(got) != string(msg) {
					t.Errorf("datagram %d from %s: received %q, want it kept", i, from, got)
				}
				if !s.keep && got != nil {
					t.Errorf("datagram %d from %s: received %q, want it dropped", i, from, got)
				}
			}
		})
	}
}

// TestInboundLocked: the locked filter cannot be replaced, detached or
// unlocked.
func TestInboundLocked(t *testing.T) {
	needRoot(t)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := lockInbound(fd, Inbound{}); err != nil {
		t.Fatal(err)
	}
	all := []unix.SockFilter{{Code: bpfRetK, K: keepAll}}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: 1, Filter: &all[0]}); err != unix.EPERM {
		t.Errorf("SO_ATTACH_FILTER on a locked socket: %v, want EPERM", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DETACH_FILTER, 0); err != unix.EPERM {
		t.Errorf("SO_DETACH_FILTER on a locked socket: %v, want EPERM", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_LOCK_FILTER, 0); err != unix.EPERM {
		t.Errorf("clearing SO_LOCK_FILTER: %v, want EPERM", err)
	}
}

func TestInboundTooLong(t *testing.T) {
	in := Inbound{}
	for i := 0; i < 400; i++ {
		in.From = append(in.From, Source{Prefix: netip.PrefixFrom(netip.IPv6Loopback(), 120), Port: uint16(i + 1)})
	}
	if _, err := compileInbound(in); !errors.Is(err, errFilterTooLong) {
		t.Errorf("400 IPv6 sources: %v, want errFilterTooLong", err)
	}
	if p, err := compileInbound(Inbound{AnySource: true, From: in.From}); p != nil || err != nil {
		t.Errorf("any source: %d instructions, %v; want no filter", len(p), err)
	}
}

// sendFrom sends msg to `to` from a socket bound to from.
func sendFrom(t *testing.T, from, to netip.AddrPort, msg []byte) {
	t.Helper()
	fam := unix.AF_INET6
	var local, remote unix.Sockaddr = &unix.SockaddrInet6{Addr: from.Addr().As16(), Port: int(from.Port())},
		&unix.SockaddrInet6{Addr: to.Addr().As16(), Port: int(to.Port())}
	if from.Addr().Is4() {
		fam = unix.AF_INET
		local = &unix.SockaddrInet4{Addr: from.Addr().As4(), Port: int(from.Port())}
		remote = &unix.SockaddrInet4{Addr: to.Addr().As4(), Port: int(to.Port())}
	}
	s, err := unix.Socket(fam, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(s)
	unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.Bind(s, local); err != nil {
		t.Fatalf("bind %s: %v", from, err)
	}
	if err := unix.Sendto(s, msg, 0, remote); err != nil {
		t.Fatalf("send %s -> %s: %v", from, to, err)
	}
}

// recvOne returns the next datagram on fd, or nil if none comes within
// 100 ms (loopback delivers within the sender's call).
func recvOne(fd int) []byte {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	if n, _ := unix.Poll(pfd, int(100*time.Millisecond/time.Millisecond)); n != 1 {
		return nil
	}
	b := make([]byte, 64)
	n, _, err := unix.Recvfrom(fd, b, unix.MSG_DONTWAIT)
	if err != nil {
		return nil
	}
	return b[:n]
}

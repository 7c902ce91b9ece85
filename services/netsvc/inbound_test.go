package netsvc

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// runInbound interprets prog (only the instructions compileInbound emits)
// on a datagram: the IP header ip (SKF_NET_OFF) and the UDP header udp
// (offset 0). It reports whether the datagram is kept.
func runInbound(t *testing.T, prog []bpfInsn, ip, udp []byte) bool {
	t.Helper()
	load := func(k uint32, n int) uint32 {
		b := udp
		if k >= skfNetOff {
			b, k = ip, k-skfNetOff
		}
		if int(k)+n > len(b) {
			t.Fatalf("load of %d bytes at %#x past the headers", n, k)
		}
		switch n {
		case 1:
			return uint32(b[k])
		case 2:
			return uint32(binary.BigEndian.Uint16(b[k:]))
		}
		return binary.BigEndian.Uint32(b[k:])
	}
	var a uint32
	for pc := 0; pc < len(prog); pc++ {
		i := prog[pc]
		switch i.code {
		case bpfLdB:
			a = load(i.k, 1)
		case bpfLdH:
			a = load(i.k, 2)
		case bpfLdW:
			a = load(i.k, 4)
		case bpfAndK:
			a &= i.k
		case bpfJeqK:
			if a == i.k {
				pc += int(i.jt)
			} else {
				pc += int(i.jf)
			}
		case bpfJa:
			pc += int(i.k)
		case bpfRetK:
			return i.k != 0
		default:
			t.Fatalf("instruction %d: unexpected code %#x", pc, i.code)
		}
	}
	t.Fatal("ran off the end of the program")
	return false
}

// keeps is what the filter should decide, from Inbound's documentation.
func keeps(in Inbound, src, dst netip.AddrPort) bool {
	if in.AnySource {
		return true
	}
	for _, s := range in.From {
		if s.Prefix.Contains(src.Addr()) && (s.Port == 0 || s.Port == src.Port()) {
			return true
		}
	}
	for _, d := range in.To {
		a := d.Addr().Unmap()
		if d.Port() == dst.Port() && a.Is4() == dst.Addr().Is4() && (a.IsUnspecified() || a == dst.Addr()) {
			return true
		}
	}
	return false
}

// TestInboundProperty compiles random grants and checks the program's
// decision on random datagrams against keeps.
func TestInboundProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	addr4 := func() netip.Addr { return netip.AddrFrom4([4]byte{10, 0, byte(r.IntN(3)), byte(r.IntN(3))}) }
	addr6 := func() netip.Addr {
		return netip.AddrFrom16([16]byte{0x20, 1, 0xd, 0xb8, 15: byte(r.IntN(3)), 5: byte(r.IntN(2))})
	}
	addr := func() netip.Addr {
		if r.IntN(2) == 0 {
			return addr4()
		}
		return addr6()
	}
	port := func() uint16 { return uint16(1 + r.IntN(3)) }
	for round := 0; round < 2000; round++ {
		var in Inbound
		for n := r.IntN(4); n > 0; n-- {
			a := addr()
			p, _ := a.Prefix(r.IntN(a.BitLen() + 1))
			in.From = append(in.From, Source{Prefix: p, Port: uint16(r.IntN(2)) * port()})
		}
		for n := r.IntN(3); n > 0; n-- {
			a := addr()
			if r.IntN(3) == 0 {
				a = netip.IPv4Unspecified()
				if r.IntN(2) == 0 {
					a = netip.IPv6Unspecified()
				}
			}
			in.To = append(in.To, netip.AddrPortFrom(a, port()))
		}
		prog, err := compileInbound(in)
		if err != nil {
			t.Fatal(err)
		}
		for k := 0; k < 20; k++ {
			src := netip.AddrPortFrom(addr(), port())
			dst := netip.AddrPortFrom(addr(), port())
			if src.Addr().Is4() != dst.Addr().Is4() {
				continue
			}
			var ip []byte
			if src.Addr().Is4() {
				ip = make([]byte, 20)
				ip[0] = 0x45
				s, d := src.Addr().As4(), dst.Addr().As4()
				copy(ip[offSrc4:], s[:])
				copy(ip[offDst4:], d[:])
			} else {
				ip = make([]byte, 40)
				ip[0] = 0x60
				s, d := src.Addr().As16(), dst.Addr().As16()
				copy(ip[offSrc6:], s[:])
				copy(ip[offDst6:], d[:])
			}
			udp := make([]byte, 8)
			binary.BigEndian.PutUint16(udp[offSport:], src.Port())
			binary.BigEndian.PutUint16(udp[offDport:], dst.Port())
			if got, want := runInbound(t, prog, ip, udp), keeps(in, src, dst); got != want {
				t.Fatalf("grants %+v, datagram %v -> %v: kept %v, want %v", in, src, dst, got, want)
			}
		}
	}
}

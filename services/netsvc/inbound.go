package netsvc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// A UDP socket of the host receives every datagram sent to its port, from
// anyone, as soon as it has a port (an explicit bind, or the kernel's
// implicit one on the first send or on connect, or on a write that then
// fails). For a socket made under an egress grant that would be a listen
// grant on a port of the kernel's choice. The service therefore gives every
// UDP socket it makes a classic BPF socket filter, locked with
// SO_LOCK_FILTER, that keeps a datagram only if
//
//   - it comes from a destination an egress grant names (a reply, as a
//     connected socket or a NAT flow would take it: source address in the
//     grant's prefix, source port the grant's port or any), or
//   - it is addressed to a host address and port a listen grant publishes
//     (an unspecified published address stands for every address of its
//     family).
//
// The filter reads the IP header through SKF_NET_OFF (the version nibble,
// then the source or destination address) and the UDP header at offset 0,
// where the socket's receive path has put it. It is made from the grants
// as they stand when the socket is made: a later revoke stops sends on the
// socket but not the replies its filter still admits.

// Inbound is what a datagram socket made now may receive without being
// connected.
type Inbound struct {
	// AnySource: an egress grant to any destination; everything is a
	// possible reply and no filter is needed.
	AnySource bool
	// From lists the egress destinations, whose datagrams are replies.
	From []Source
	// To lists the published host addresses and ports. An unspecified
	// address stands for every address of its family.
	To []netip.AddrPort
}

// Source is an egress destination as a filter sees it: datagrams from an
// address in Prefix and from Port (0: any port).
type Source struct {
	Prefix netip.Prefix
	Port   uint16
}

// bpfInsn is one classic BPF instruction (struct sock_filter).
type bpfInsn struct {
	code   uint16
	jt, jf uint8
	k      uint32
}

// Classic BPF opcodes and the network-header offset base
// (linux/filter.h, linux/bpf_common.h).
const (
	bpfLdW  = 0x00 | 0x00 | 0x20 // BPF_LD | BPF_W | BPF_ABS
	bpfLdH  = 0x00 | 0x08 | 0x20 // BPF_LD | BPF_H | BPF_ABS
	bpfLdB  = 0x00 | 0x10 | 0x20 // BPF_LD | BPF_B | BPF_ABS
	bpfAndK = 0x04 | 0x50 | 0x00 // BPF_ALU | BPF_AND | BPF_K
	bpfJeqK = 0x05 | 0x10 | 0x00 // BPF_JMP | BPF_JEQ | BPF_K
	bpfJa   = 0x05 | 0x00        // BPF_JMP | BPF_JA
	bpfRetK = 0x06 | 0x00        // BPF_RET | BPF_K

	skfNetOff = 0xfff00000 // SKF_NET_OFF (-0x100000) as the unsigned k of a load

	bpfMaxInsns = 4096 // BPF_MAXINSNS

	keepAll = 0xffffffff // a socket filter's "keep the whole datagram"
	dropIt  = 0
)

// Offsets the filter reads: in the IP header (from SKF_NET_OFF) and in the
// UDP header (from 0).
const (
	offVersion = 0
	offSrc4    = 12
	offDst4    = 16
	offSrc6    = 8
	offDst6    = 24
	offSport   = 0
	offDport   = 2
)

// errFilterTooLong says the grants make a filter longer than the kernel takes.
var errFilterTooLong = errors.New("too many grants for one socket filter")

// check is one comparison of a rule: load (a word or half-word at off),
// mask it if mask is not all ones, compare with val.
type check struct {
	load uint16
	off  uint32
	mask uint32
	val  uint32
}

// masked says the loaded value needs an AND before the comparison.
func (c check) masked() bool {
	return c.mask != 0xffffffff && !(c.load == bpfLdH && c.mask == 0xffff)
}

// rule is a conjunction of checks that, all holding, keeps the datagram.
type rule []check

// compileInbound makes the socket filter for in, or nil when none is
// needed (AnySource). Rules are grouped by IP version; a datagram of
// another version, or one no rule keeps, is dropped.
func compileInbound(in Inbound) ([]bpfInsn, error) {
	if in.AnySource {
		return nil, nil
	}
	var v4, v6 []rule
	for _, s := range in.From {
		p := s.Prefix.Masked()
		if !p.IsValid() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			continue // never an egress match either: destinations are unmapped first
		}
		r := addrChecks(p, srcOffset(p.Addr()))
		if s.Port != 0 {
			r = append(r, check{bpfLdH, offSport, 0xffff, uint32(s.Port)})
		}
		if p.Addr().Is4() {
			v4 = append(v4, r)
		} else {
			v6 = append(v6, r)
		}
	}
	for _, d := range in.To {
		a := d.Addr().Unmap()
		if !d.IsValid() || d.Port() == 0 {
			continue
		}
		var r rule
		if !a.IsUnspecified() {
			r = addrChecks(netip.PrefixFrom(a, a.BitLen()), dstOffset(a))
		}
		r = append(r, check{bpfLdH, offDport, 0xffff, uint32(d.Port())})
		if a.Is4() {
			v4 = append(v4, r)
		} else {
			v6 = append(v6, r)
		}
	}

	var prog []bpfInsn
	emit := func(i bpfInsn) { prog = append(prog, i) }
	version := func() {
		emit(bpfInsn{code: bpfLdB, k: skfNetOff + offVersion})
		emit(bpfInsn{code: bpfAndK, k: 0xf0})
	}
	// block emits the rules of one IP version, each falling through to the
	// next on a mismatch, then a drop.
	block := func(rs []rule) {
		for _, r := range rs {
			n := 1 // the keep at the end of the rule
			for _, c := range r {
				n += 2
				if c.masked() {
					n++
				}
			}
			// Every jump of a rule ends at the next rule: at most n-1
			// instructions ahead, short enough for an 8-bit offset.
			at := len(prog)
			for _, c := range r {
				emit(bpfInsn{code: c.load, k: c.off})
				if c.masked() {
					emit(bpfInsn{code: bpfAndK, k: c.mask})
				}
				emit(bpfInsn{code: bpfJeqK, k: c.val, jf: uint8(at + n - len(prog) - 1)})
			}
			emit(bpfInsn{code: bpfRetK, k: keepAll})
		}
		emit(bpfInsn{code: bpfRetK, k: dropIt})
	}
	version()
	emit(bpfInsn{code: bpfJeqK, k: 0x40, jt: 1}) // IPv4: skip the jump to the IPv6 part
	jumpAt := len(prog)                          // patched below
	emit(bpfInsn{code: bpfJa})                   // to the IPv6 part
	block(v4)
	prog[jumpAt].k = uint32(len(prog) - jumpAt - 1) // a 32-bit offset: no limit
	version()
	emit(bpfInsn{code: bpfJeqK, k: 0x60, jt: 1})
	emit(bpfInsn{code: bpfRetK, k: dropIt})
	block(v6)
	if len(prog) > bpfMaxInsns {
		return nil, fmt.Errorf("%w (%d instructions, the kernel takes %d)", errFilterTooLong, len(prog), bpfMaxInsns)
	}
	return prog, nil
}

func srcOffset(a netip.Addr) uint32 {
	if a.Is4() {
		return skfNetOff + offSrc4
	}
	return skfNetOff + offSrc6
}

func dstOffset(a netip.Addr) uint32 {
	if a.Is4() {
		return skfNetOff + offDst4
	}
	return skfNetOff + offDst6
}

// addrChecks compares the address at off (4 or 16 bytes) with prefix p,
// one 32-bit word at a time; words wholly outside the prefix are skipped.
func addrChecks(p netip.Prefix, off uint32) rule {
	b := p.Addr().AsSlice()
	var r rule
	for i, bits := 0, p.Bits(); bits > 0; i, bits = i+1, bits-32 {
		mask := uint32(0xffffffff)
		if bits < 32 {
			mask <<= 32 - bits
		}
		w := binary.BigEndian.Uint32(b[4*i:])
		r = append(r, check{bpfLdW, off + uint32(4*i), mask, w & mask})
	}
	return r
}

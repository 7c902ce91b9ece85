package core

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// The property test and FuzzOps both run a sequence of operations decoded
// from bytes against a fresh Core, and after every operation check the
// core's invariants (Core.check) and, from outside, that:
//
//   - a successful Derive asked only for rights its source held, and the
//     new capability has exactly those rights; a refused one with
//     ErrRightsEscalation asked for more;
//   - after Revoke, every capability derived from the revoked one (as the
//     harness recorded it) is unreachable, and the revoked one is not;
//   - after Delete, the deleted capability and its descendants are gone;
//   - a new sub-factory's limit came out of its parent's remaining quota;
//   - a successful DeriveWithin asked for a part (Within) of its source's
//     object and only rights its source held; a refused one with
//     ErrRightsEscalation asked for more of either;
//   - every live capability of a minted object holds only rights that were
//     minted for it, and one of a part of an object only rights held on
//     the object it was derived from (no operation creates authority).

var testRoot = Quota{MemoryBytes: 100, Tasks: 50, CPUMilli: 100, DiskBytes: 100, Caps: 40}

var testNames = [...]string{"", "/", "/data", "tcp:80"}

// nowhere and nowhereSpace never exist.
var (
	nowhere      = hcap{s: 1, h: 1 << 40, parent: -1}
	nowhereSpace = Space(1 << 40)
)

type harness struct {
	t      testing.TB
	k      *Core
	spaces []Space
	caps   []hcap
	minted map[Object]Rights // union of rights minted for each description
	n      int               // makes minted descriptions distinct
	trace  []string
	data   []byte
}

// hcap is a handle the harness was given, with the index of the one it was
// derived or made from (-1 if minted).
type hcap struct {
	s       Space
	h       Handle
	parent  int
	deleted bool // by Delete on this very handle
}

func (x *harness) byte() byte {
	if len(x.data) == 0 {
		return 0
	}
	b := x.data[0]
	x.data = x.data[1:]
	return b
}

// space picks a space: mostly a live one, sometimes any the harness has seen
// or one that never existed.
func (x *harness) space() Space {
	b := x.byte()
	if b == 255 {
		return nowhereSpace
	}
	n := len(x.spaces)
	for i := range n {
		s := x.spaces[(int(b)+i)%n]
		if _, live := x.k.spaces[s]; live || b >= 224 {
			return s
		}
	}
	return nowhereSpace
}

// cap picks a capability the harness was given, and its index: mostly a
// live one, sometimes any, or one that never existed (index -1).
func (x *harness) cap() (int, hcap) {
	b := x.byte()
	if b == 255 {
		return -1, nowhere
	}
	n := len(x.caps)
	for i := range n {
		j := (int(b) + i) % n
		if b >= 224 || x.live(x.caps[j]) {
			return j, x.caps[j]
		}
	}
	return -1, nowhere
}

func (x *harness) live(c hcap) bool {
	sp, ok := x.k.spaces[c.s]
	return ok && sp.slots[c.h] != nil && !sp.slots[c.h].dead
}

// victim picks a capability to revoke or delete; it picks the root factory
// capability, which takes everything with it, only when a byte says so.
func (x *harness) victim() (int, hcap) {
	i, c := x.cap()
	if i == 0 && x.byte() != 0 {
		return -1, nowhere
	}
	return i, c
}

// The operations, and ops, which maps an opcode byte to one, weighted so
// that sequences build up state before they tear it down.
const (
	opNewSpace = iota
	opMint
	opDerive
	opRevoke
	opDelete
	opNewFactory
	opDeleteSpace
	opLookup
	opDeriveWithin
)

var ops = [...]int{
	opNewSpace, opNewSpace, opNewSpace,
	opMint, opMint, opMint, opMint, opMint,
	opDerive, opDerive, opDerive, opDerive, opDerive, opDerive, opDerive, opDerive,
	opRevoke, opRevoke, opRevoke,
	opDelete, opDelete,
	opNewFactory, opNewFactory, opNewFactory, opNewFactory, opNewFactory,
	opDeleteSpace,
	opLookup, opLookup, opLookup, opLookup,
	opDeriveWithin, opDeriveWithin, opDeriveWithin,
}

// encode returns the bytes that step decodes as operation op with args.
func encode(op int, args ...byte) []byte {
	for i, o := range ops {
		if o == op {
			return append([]byte{byte(i)}, args...)
		}
	}
	panic("no such operation")
}

func (x *harness) fatalf(format string, a ...any) {
	x.t.Helper()
	x.t.Fatalf("after %s\n"+format, append([]any{strings.Join(x.trace, "\n")}, a...)...)
}

func (x *harness) log(format string, a ...any) { x.trace = append(x.trace, fmt.Sprintf(format, a...)) }

// descendants returns the indexes of every recorded capability made from i.
func (x *harness) descendants(i int) []int {
	var out []int
	for j := range x.caps {
		for p := x.caps[j].parent; p >= 0; p = x.caps[p].parent {
			if p == i {
				out = append(out, j)
				break
			}
		}
	}
	return out
}

// mustBeGone checks that recorded capability j is unreachable: revoked, or
// not found if it or its space was deleted.
func (x *harness) mustBeGone(j int, why string) {
	x.t.Helper()
	c := x.caps[j]
	_, err := x.k.Lookup(c.s, c.h, 0)
	_, spaceLive := x.k.spaces[c.s]
	if !errors.Is(err, ErrRevoked) && (spaceLive && !c.deleted || !errors.Is(err, ErrNotFound)) {
		x.fatalf("space %d handle %d %s: lookup says %v", c.s, c.h, why, err)
	}
}

func (x *harness) mint(kind byte) Object {
	x.n++
	switch kind % 6 {
	case opNewSpace:
		return Image{Ref: fmt.Sprint("img", x.n)}
	case opMint:
		return Volume{Name: fmt.Sprint("vol", x.n)}
	case opDerive:
		return Listen{Proto: "tcp", ContainerPort: uint16(x.n), HostPort: 8080}
	case opRevoke:
		return Egress{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(x.n >> 8), byte(x.n)}), 32)}
	case opDelete:
		return Spawn{}
	}
	return Log{}
}

func (x *harness) quota() Quota {
	field := func(mod byte) uint64 {
		if b := x.byte(); b != 0xff {
			return uint64(b % mod)
		}
		return Unlimited
	}
	return Quota{MemoryBytes: field(40), Tasks: field(20), CPUMilli: field(40), DiskBytes: field(40), Caps: uint64(x.byte() % 16)}
}

// unlimitedRoot is a root factory unlimited in every resource but
// capabilities, as the engine's factory tree has.
var unlimitedRoot = Quota{MemoryBytes: Unlimited, Tasks: Unlimited, CPUMilli: 100, DiskBytes: Unlimited, Caps: 40}

func runOps(t testing.TB, data []byte) { runOpsFrom(t, testRoot, data) }

func runOpsFrom(t testing.TB, testRoot Quota, data []byte) {
	k, err := New(testRoot)
	if err != nil {
		t.Fatal(err)
	}
	s, h := k.Root()
	x := &harness{t: t, k: k, spaces: []Space{s}, caps: []hcap{{s: s, h: h, parent: -1}}, minted: map[Object]Rights{}, data: data}
	for len(x.data) > 0 {
		x.step()
		if err := k.check(testRoot); err != nil {
			x.fatalf("invariant: %v", err)
		}
		x.checkAuthority()
	}
}

func (x *harness) step() {
	k := x.k
	switch ops[int(x.byte())%len(ops)] {
	case 0:
		_, c := x.cap()
		s, err := k.NewSpace(c.s, c.h)
		x.log("NewSpace(%d, %d) = %d, %v", c.s, c.h, s, err)
		if err == nil {
			x.spaces = append(x.spaces, s)
		}
	case 1:
		s, name, obj, r := x.space(), testNames[x.byte()%4], x.mint(x.byte()), Rights(x.byte())
		if r&3 != 0 { // mostly ask for meaningful rights, sometimes for anything
			r &= obj.Kind().Rights()
		}
		h, err := k.Mint(s, name, obj, r)
		x.log("Mint(%d, %q, %v %v, %v) = %d, %v", s, name, obj.Kind(), obj, r, h, err)
		if !obj.Kind().Rights().Has(r) && !errors.Is(err, ErrInvalid) {
			x.fatalf("minted rights %v on a %v: %v", r, obj.Kind(), err)
		}
		if err == nil {
			x.minted[obj] |= r
			x.caps = append(x.caps, hcap{s: s, h: h, parent: -1})
		}
	case 2:
		i, c := x.cap()
		r, into, name := Rights(x.byte()), x.space(), testNames[x.byte()%4]
		src, srcErr := k.Lookup(c.s, c.h, 0)
		if r&3 != 0 { // mostly attenuate, sometimes try to escalate
			r &= src.Rights
		}
		h, err := k.Derive(c.s, c.h, r, into, name)
		x.log("Derive(%d, %d, %v, %d, %q) = %d, %v", c.s, c.h, r, into, name, h, err)
		if errors.Is(err, ErrRightsEscalation) && (srcErr != nil || src.Rights.Has(r)) {
			x.fatalf("escalation reported for %v from %v", r, src.Rights)
		}
		if err != nil {
			return
		}
		if srcErr != nil || !src.Rights.Has(r|RightDerive) {
			x.fatalf("derived %v from %v (%v)", r, src.Rights, srcErr)
		}
		got, err := k.Lookup(into, h, 0)
		if err != nil || got.Rights != r || got.Object != src.Object || got.Name != name {
			x.fatalf("derived capability is %+v, %v; want rights %v of %v", got, err, r, src.Object)
		}
		x.caps = append(x.caps, hcap{s: into, h: h, parent: i})
	case 3:
		i, c := x.victim()
		err := k.Revoke(c.s, c.h)
		x.log("Revoke(%d, %d) = %v", c.s, c.h, err)
		if err != nil || i < 0 {
			return
		}
		if _, err := k.Lookup(c.s, c.h, 0); err != nil {
			x.fatalf("revoked capability itself gone: %v", err)
		}
		for _, j := range x.descendants(i) {
			x.mustBeGone(j, "after revoking its ancestor")
		}
	case 4:
		i, c := x.victim()
		err := k.Delete(c.s, c.h)
		x.log("Delete(%d, %d) = %v", c.s, c.h, err)
		if err != nil || i < 0 {
			return
		}
		x.caps[i].deleted = true
		if _, err := k.Lookup(c.s, c.h, 0); !errors.Is(err, ErrNotFound) {
			x.fatalf("deleted capability: lookup %v", err)
		}
		for _, j := range x.descendants(i) {
			x.mustBeGone(j, "after deleting its ancestor")
		}
	case opNewFactory:
		i, c := x.cap()
		q, into, name := x.quota(), x.space(), testNames[x.byte()%4]
		_, before, qerr := k.FactoryQuota(c.s, c.h)
		h, err := k.NewFactory(c.s, c.h, q, into, name)
		x.log("NewFactory(%d, %d, %v, %d, %q) = %d, %v", c.s, c.h, q, into, name, h, err)
		if err != nil {
			return
		}
		if qerr != nil || q.exceeds(before) != nil {
			x.fatalf("sub-factory %v made from remaining %v (%v)", q, before, qerr)
		}
		_, after, _ := k.FactoryQuota(c.s, c.h)
		spent, want := before.minus(after), q
		for i, p := range before.fields() {
			if *p == Unlimited { // an unlimited parent stays so
				*want.fields()[i] = Unlimited
			} else if *want.fields()[i] == Unlimited {
				x.fatalf("unlimited sub-factory %v made from limited remaining %v", q, before)
			}
		}
		if spent.Caps == q.Caps+1 { // the new capability was charged to the parent too
			spent.Caps--
		}
		if spent != want {
			x.fatalf("sub-factory %v cost its parent %v", q, before.minus(after))
		}
		if limit, rem, err := k.FactoryQuota(into, h); err != nil || limit != q || rem != q {
			x.fatalf("sub-factory quota %v, remaining %v, %v; want %v", limit, rem, err, q)
		}
		x.caps = append(x.caps, hcap{s: into, h: h, parent: i})
	case opDeleteSpace:
		s := x.space()
		if s == x.spaces[0] && x.byte() != 0 {
			s = nowhereSpace // the root space takes everything with it; rarely
		}
		err := k.DeleteSpace(s)
		x.log("DeleteSpace(%d) = %v", s, err)
		if err == nil {
			if _, err := k.Caps(s); !errors.Is(err, ErrNotFound) {
				x.fatalf("deleted space still listed: %v", err)
			}
		}
	case opDeriveWithin:
		i, c := x.cap()
		r, into, name := Rights(x.byte()), x.space(), testNames[x.byte()%4]
		src, srcErr := k.Lookup(c.s, c.h, 0)
		if r&3 != 0 { // mostly attenuate, sometimes try to escalate
			r &= src.Rights
		}
		obj := x.part(src.Object)
		h, err := k.DeriveWithin(c.s, c.h, r, obj, into, name)
		x.log("DeriveWithin(%d, %d, %v, %v, %d, %q) = %d, %v", c.s, c.h, r, obj, into, name, h, err)
		part := srcErr == nil && Within(obj, src.Object)
		if errors.Is(err, ErrRightsEscalation) && part && src.Rights.Has(r) {
			x.fatalf("escalation reported for %v %v of %v %v", r, obj, src.Rights, src.Object)
		}
		if err != nil {
			return
		}
		if !part || !src.Rights.Has(r|RightDerive) {
			x.fatalf("derived %v %v from %v %v (%v)", r, obj, src.Rights, src.Object, srcErr)
		}
		got, err := k.Lookup(into, h, 0)
		if err != nil || got.Rights != r || got.Object != obj || got.Name != name {
			x.fatalf("derived capability is %+v, %v; want rights %v of %v", got, err, r, obj)
		}
		if !x.minted[src.Object].Has(r) {
			x.fatalf("derived %v of %v from %v, which holds only %v", r, obj, src.Object, x.minted[src.Object])
		}
		x.minted[obj] |= r // what a part may be held with: what its whole was
		x.caps = append(x.caps, hcap{s: into, h: h, parent: i})
	case opLookup:
		_, c := x.cap()
		need := Rights(x.byte())
		if held, err := k.Lookup(c.s, c.h, 0); err == nil && need&3 != 0 {
			need &= held.Rights | RightRead // mostly within what is held
		}
		got, err := k.Lookup(c.s, c.h, need)
		x.log("Lookup(%d, %d, %v) = %v", c.s, c.h, need, err)
		if err == nil && !got.Rights.Has(need) {
			x.fatalf("lookup for %v returned %v", need, got.Rights)
		}
	}
}

// part returns, from the harness's bytes, an object to derive from o:
// mostly o or a part of it, sometimes more than o or something else.
func (x *harness) part(o Object) Object {
	e, ok := o.(Egress)
	b := x.byte()
	switch {
	case b%5 == 0 || o == nil:
		return x.mint(x.byte()) // another object
	case b%5 == 1 || !ok:
		return o
	}
	n := e
	n.Proto = [...]string{"", "tcp", "udp"}[x.byte()%3]
	if b%5 == 2 {
		n.Port = uint16(x.byte() % 3)
	}
	if bits := 8 + int(x.byte()%25); !e.Any || b%5 == 3 {
		addr := netip.AddrFrom4([4]byte{10, 0, x.byte() % 2, x.byte() % 2})
		if e.Prefix.IsValid() && x.byte()%2 == 0 {
			addr = e.Prefix.Addr()
		}
		n.Any, n.Prefix = false, netip.PrefixFrom(addr, bits).Masked()
	}
	if x.byte()%8 == 0 {
		n.Any, n.Prefix = true, netip.Prefix{}
	}
	return n
}

// checkAuthority checks that no live capability of a minted object holds a
// right that was not minted for it.
func (x *harness) checkAuthority() {
	for s := range x.k.spaces {
		caps, err := x.k.Caps(s)
		if err != nil {
			x.fatalf("listing live space %d: %v", s, err)
		}
		for _, c := range caps {
			if c.Object.Kind() == KindFactory {
				continue // covered by Core.check
			}
			if minted, ok := x.minted[c.Object]; !ok || !minted.Has(c.Rights) {
				x.fatalf("space %d handle %d holds %v on %v, minted %v (%v)", s, c.Handle, c.Rights, c.Object, minted, ok)
			}
		}
	}
}

func TestOpsProperty(t *testing.T) {
	n := 500
	if testing.Short() {
		n = 50
	}
	for seed := range uint64(n) {
		rng := rand.New(rand.NewPCG(seed, 0))
		data := make([]byte, 200+rng.IntN(2000))
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		runOps(t, data)
		runOpsFrom(t, unlimitedRoot, data)
	}
}

// opsSeeds returns FuzzOps's seed corpus: short sequences that each reach
// one interesting state. Comments number capabilities and spaces in the
// order the harness records them, the root's being 0.
func opsSeeds() [][]byte {
	bigFactory := encode(opNewFactory, 0, 39, 19, 39, 39, 15, 0, 0) // from cap 0 into space 0
	return [][]byte{
		// A container: a sub-factory and a space charged to it; an image minted
		// in the root space and derived into the container's as "/"; then the
		// sub-factory deleted, which destroys the space and so the image's copy.
		slices.Concat(
			encode(opNewFactory, 0, 10, 5, 10, 10, 8, 0, 0), // cap 1
			encode(opNewSpace, 1),                           // space 1
			encode(opMint, 0, 0, 0, 0xff),                   // cap 2: image, read|execute|derive
			encode(opDerive, 2, 0x05, 1, 1),                 // cap 3: read|execute in space 1
			encode(opDelete, 1),
			encode(opLookup, 227, 0), // cap 3, though dead
		),
		// A derivation chain across two spaces, its middle revoked, then an
		// attempt to derive execute from a volume.
		slices.Concat(
			encode(opNewSpace, 0),           // space 1
			encode(opMint, 0, 2, 1, 0xff),   // cap 1: volume "/data", read|write|derive
			encode(opDerive, 1, 0xff, 1, 2), // cap 2: all of it, into space 1
			encode(opDerive, 2, 0x01, 0, 1), // cap 3: read, back into space 0
			encode(opRevoke, 2),             // revokes cap 3
			encode(opLookup, 227, 0),        // cap 3, though dead
			encode(opDerive, 1, 0x04, 0, 0), // execute: rights escalation
			encode(opDeleteSpace, 1),        // deletes cap 2
		),
		// Quota: two sub-factories fit, the third does not until the first is
		// deleted.
		slices.Concat(
			bigFactory, // cap 1
			bigFactory, // cap 2
			bigFactory, // quota exceeded: memory
			encode(opDelete, 1),
			bigFactory,
		),
	}
}

func FuzzOps(f *testing.F) {
	f.Add([]byte{})
	for _, seed := range opsSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// About 60 operations. Longer inputs find little more here (the
		// property test runs long sequences) and make the fuzzer's
		// minimization, which is quadratic in the input's length, stall.
		if len(data) > 256 {
			data = data[:256]
		}
		runOps(t, data)
		runOpsFrom(t, unlimitedRoot, data)
	})
}

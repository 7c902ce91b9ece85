package policy

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"golang.org/x/net/bpf"
)

const (
	auditArchI386    = 0x40000003
	auditArchAArch64 = 0xc00000b7
)

// vmInput lays out struct seccomp_data as the kernel does on x86_64
// (little-endian) and hands it to x/net/bpf's VM. That VM loads 32-bit
// words in network (big-endian) order where the kernel's seccomp loads them
// in host order, so each aligned word is byte-swapped: the VM then reads
// exactly the values the kernel would, and the filter only ever loads
// aligned words.
func vmInput(nr, arch uint32, args [6]uint64) []byte {
	le := make([]byte, 64)
	binary.LittleEndian.PutUint32(le[offNr:], nr)
	binary.LittleEndian.PutUint32(le[offArch:], arch)
	binary.LittleEndian.PutUint64(le[8:], 0x0000_7f00_dead_b000) // instruction pointer
	for i, a := range args {
		binary.LittleEndian.PutUint64(le[offArgs+8*i:], a)
	}
	vm := make([]byte, len(le))
	for off := 0; off < len(le); off += 4 {
		binary.BigEndian.PutUint32(vm[off:], binary.LittleEndian.Uint32(le[off:]))
	}
	return vm
}

// newVM loads prog the way the kernel receives it: assembled to raw
// instructions, then decoded again, so the VM runs the very words that
// Program hands to seccomp(2).
func newVM(t testing.TB, prog []bpf.Instruction) *bpf.VM {
	t.Helper()
	raw, err := bpf.Assemble(prog)
	if err != nil {
		t.Fatal(err)
	}
	decoded, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("the program has instructions x/net/bpf cannot decode")
	}
	vm, err := bpf.NewVM(decoded)
	if err != nil {
		t.Fatal(err)
	}
	return vm
}

func run(t testing.TB, vm *bpf.VM, nr, arch uint32, args [6]uint64) uint32 {
	t.Helper()
	out, err := vm.Run(vmInput(nr, arch, args))
	if err != nil {
		t.Fatalf("nr %d: %v", nr, err)
	}
	return uint32(out)
}

// numbers are the system-call numbers every agreement check covers: all of
// 0..1023, their x32 forms, and the edges of the 32-bit range.
func numbers() []uint32 {
	var ns []uint32
	for n := uint32(0); n < 1024; n++ {
		ns = append(ns, n, n|x32Bit)
	}
	return append(ns, x32Bit-1, 0x7fffffff, 0x80000000, 0x80000000|39, 0xfffffffe, 0xffffffff)
}

// genericVectors are argument vectors every number is tried with.
var genericVectors = func() [][6]uint64 {
	vecs := [][6]uint64{{}, {^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 4 {
		var v [6]uint64
		for i := range v {
			v[i] = rng.Uint64()
		}
		vecs = append(vecs, v)
	}
	return vecs
}()

// argVectors returns argument vectors that probe every condition of r from
// both sides: each tested value, its neighbours, its bits with the upper
// half set or cleared, and every Match filled in to hold.
func argVectors(r Rule) [][6]uint64 {
	var vecs [][6]uint64
	probe := func(c Cond) []uint64 {
		low, top := c.Mask&-c.Mask, uint64(0)
		for b := c.Mask; b != 0; b &= b - 1 {
			top = b & -b
		}
		return []uint64{
			c.Value, c.Value | 0xffffffff_00000000, c.Value | 1<<32, c.Value ^ low, c.Value ^ top,
			c.Mask, ^c.Value, c.Value + 1, c.Value - 1, c.Value &^ 0xffffffff, c.Value & 0xffffffff,
		}
	}
	for _, m := range r.When {
		// The whole Match holding (OpNe conds get a value that differs).
		var hold [6]uint64
		for _, c := range m {
			if c.Op == OpEq {
				hold[c.Arg] |= c.Value
			} else {
				hold[c.Arg] |= c.Value ^ (c.Mask & -c.Mask)
			}
		}
		vecs = append(vecs, hold)
		for _, c := range m {
			for _, v := range probe(c) {
				one := hold
				one[c.Arg] = v
				vecs = append(vecs, one)
				var alone [6]uint64
				alone[c.Arg] = v
				vecs = append(vecs, alone)
			}
		}
	}
	return vecs
}

// disagreements runs prog over every number in numbers(), with the generic
// vectors and, for a row with conditions, its argVectors, and lists where
// the result differs from decide.
func disagreements(t testing.TB, prog []bpf.Instruction, rules []Rule, decide func(uint32, [6]uint64) Action) []string {
	t.Helper()
	vm := newVM(t, prog)
	probes := map[uint32][][6]uint64{}
	for _, r := range rules {
		probes[r.Nr] = argVectors(r)
	}
	var bad []string
	for _, n := range numbers() {
		vecs := genericVectors
		if n&x32Bit == 0 {
			vecs = append(slices.Clip(vecs), probes[n]...)
		}
		for _, args := range vecs {
			want := decide(n, args).Ret()
			if got := run(t, vm, n, auditArchX86_64, args); got != want {
				name, _ := SyscallName(n)
				bad = append(bad, fmt.Sprintf("nr %#x (%s) args %#x: filter returns %#x, table says %#x", n, name, args, got, want))
			}
		}
	}
	return bad
}

// TestFilterAgreesWithTable is the unit-level "the allowlist table and the
// installed filter agree" test.
func TestFilterAgreesWithTable(t *testing.T) {
	prog, err := Compile()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range disagreements(t, prog, table(), Decide) {
		t.Error(d)
	}
}

// TestFilterAgreesOnRandomArguments throws random arguments, with the
// upper halves and the tested bits stirred, at the conditional rows.
func TestFilterAgreesOnRandomArguments(t *testing.T) {
	prog, err := Compile()
	if err != nil {
		t.Fatal(err)
	}
	vm := newVM(t, prog)
	var conds []Rule
	for _, r := range table() {
		if len(r.When) > 0 {
			conds = append(conds, r)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 50000 {
		r := conds[rng.IntN(len(conds))]
		var args [6]uint64
		m := r.When[rng.IntN(len(r.When))]
		for _, c := range m {
			switch rng.IntN(3) {
			case 0:
				args[c.Arg] = c.Value | rng.Uint64()&^c.Mask
			case 1:
				args[c.Arg] = c.Value ^ uint64(1)<<rng.IntN(64)
			default:
				args[c.Arg] = rng.Uint64()
			}
		}
		if got, want := run(t, vm, r.Nr, auditArchX86_64, args), Decide(r.Nr, args).Ret(); got != want {
			t.Fatalf("%s args %#x: filter returns %#x, table says %#x", r.Name, args, got, want)
		}
	}
}

// TestAgreementCatchesDrift shows the agreement test fails when the filter
// and the table differ: a filter compiled from an edited table is compared
// with the real table's decisions.
func TestAgreementCatchesDrift(t *testing.T) {
	edits := map[string]func([]Rule) []Rule{
		"row removed": func(rs []Rule) []Rule {
			return slices.DeleteFunc(rs, func(r Rule) bool { return r.Name == "getppid" })
		},
		"row added": func(rs []Rule) []Rule {
			return append(rs, Rule{Nr: 165, Name: "mount", Action: Allow})
		},
		"else changed": func(rs []Rule) []Rule {
			i := slices.IndexFunc(rs, func(r Rule) bool { return r.Name == "ioctl" })
			rs[i].Else = Default
			return rs
		},
		"errno changed": func(rs []Rule) []Rule {
			i := slices.IndexFunc(rs, func(r Rule) bool { return r.Name == "clone3" })
			rs[i].Action = Fail(EPERM)
			return rs
		},
		"condition dropped": func(rs []Rule) []Rule {
			i := slices.IndexFunc(rs, func(r Rule) bool { return r.Name == "ioctl" })
			rs[i].When = rs[i].When[1:]
			return rs
		},
		"condition widened to 64 bits": func(rs []Rule) []Rule {
			i := slices.IndexFunc(rs, func(r Rule) bool { return r.Name == "ioctl" })
			rs[i].When = oneOf(arg64(1), values(ioctlAllowed)...)
			return rs
		},
	}
	for what, edit := range edits {
		prog, err := compileRules(edit(Table()))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if len(disagreements(t, prog, table(), Decide)) == 0 {
			t.Errorf("%s: the agreement check did not notice", what)
		}
	}
}

func TestWrongArchitectureKills(t *testing.T) {
	prog, err := Compile()
	if err != nil {
		t.Fatal(err)
	}
	vm := newVM(t, prog)
	for _, arch := range []uint32{auditArchI386, auditArchAArch64, 0, 0xffffffff, auditArchX86_64 ^ 1} {
		for _, n := range []uint32{0, 1, 11, 39, 59, 165, 435, 1000, x32Bit | 39} {
			if got := run(t, vm, n, arch, [6]uint64{}); got != retKillProcess {
				t.Errorf("arch %#x nr %d: %#x, want SECCOMP_RET_KILL_PROCESS", arch, n, got)
			}
		}
	}
}

func TestX32GetsENOSYS(t *testing.T) {
	prog, err := Compile()
	if err != nil {
		t.Fatal(err)
	}
	vm := newVM(t, prog)
	want := retErrno | uint32(ENOSYS)
	for n := uint32(0); n < 1024; n++ {
		if got := run(t, vm, x32Bit|n, auditArchX86_64, [6]uint64{}); got != want {
			t.Fatalf("x32 nr %d: %#x, want ENOSYS", n, got)
		}
	}
}

// longestPath is the most instructions one system call can execute in
// prog; every jump in it is forward, so the program is a DAG.
func longestPath(prog []bpf.Instruction) int {
	depth := make([]int, len(prog)+1)
	for i := len(prog) - 1; i >= 0; i-- {
		switch ins := prog[i].(type) {
		case bpf.RetConstant, bpf.RetA:
			depth[i] = 1
		case bpf.Jump:
			depth[i] = 1 + depth[i+1+int(ins.Skip)]
		case bpf.JumpIf:
			depth[i] = 1 + max(depth[i+1+int(ins.SkipTrue)], depth[i+1+int(ins.SkipFalse)])
		default:
			depth[i] = 1 + depth[i+1]
		}
	}
	return depth[0]
}

func TestInstructionCount(t *testing.T) {
	prog, err := Compile()
	if err != nil {
		t.Fatal(err)
	}
	if len(prog) > MaxInstructions {
		t.Fatalf("%d instructions, over BPF_MAXINSNS (%d)", len(prog), MaxInstructions)
	}
	// A linear list would run ~2 instructions per row before reaching the
	// last ones; the search keeps every call short.
	if p := longestPath(prog); p > 64 {
		t.Errorf("longest path %d instructions", p)
	}
	t.Logf("%d BPF instructions, %d dispatch segments, longest path %d", len(prog), len(segments(table())), longestPath(prog))
}

// TestLongJumps compiles a table big enough that conditional jumps cannot
// reach over the left subtrees, which forces the unconditional-jump
// trampolines, and checks that program against its own table too.
func TestLongJumps(t *testing.T) {
	var rules []Rule
	for n := uint32(0); n < 150; n++ {
		name, ok := SyscallName(n)
		if !ok {
			continue
		}
		rules = append(rules, Rule{Nr: n, Name: name, Action: Allow,
			When: when(
				all(arg64(0).eq(uint64(n)<<32|uint64(n))),
				all(arg32(1).masked(0xff, uint64(n&0xff)), arg64(2).ne(7), arg64(3).none(0xf0000000_0000000f)),
			),
			Else: Fail(Errno(n%200 + 1)),
		})
	}
	prog, err := compileRules(rules)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(prog, func(i bpf.Instruction) bool { _, ok := i.(bpf.Jump); return ok }) {
		t.Fatalf("a %d-instruction program used no long jump; the test does not test it", len(prog))
	}
	byNr := index(rules)
	decide := func(n uint32, args [6]uint64) Action { return decideIn(byNr, n, args) }
	for _, d := range disagreements(t, prog, rules, decide) {
		t.Error(d)
	}
	t.Logf("synthetic table: %d instructions", len(prog))
}

func TestCompileRefusesOversizedProgram(t *testing.T) {
	var rules []Rule
	for n := uint32(0); n < 336; n++ {
		name, ok := SyscallName(n)
		if !ok {
			continue
		}
		var alts []Match
		for v := range uint64(8) {
			alts = append(alts, all(arg64(0).eq(v<<32|v), arg64(1).ne(v)))
		}
		rules = append(rules, Rule{Nr: n, Name: name, Action: Allow, When: alts})
	}
	if prog, err := compileRules(rules); err == nil {
		t.Fatalf("compiled %d instructions without complaint", len(prog))
	}
}

// TestPodNetworkFilterAgreesWithTable: the pod-network filter does what its
// table says, and differs from the default only in the network rows.
func TestPodNetworkFilterAgreesWithTable(t *testing.T) {
	prog, err := CompilePodNetwork()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range disagreements(t, prog, podNetworkTable(), DecidePodNetwork) {
		t.Error(d)
	}
	var changed []string
	for _, r := range PodNetworkTable() {
		if !slices.ContainsFunc(Table(), func(o Rule) bool { return o.Nr == r.Nr && o.Why == r.Why }) {
			changed = append(changed, r.Name)
		}
	}
	slices.Sort(changed)
	want := []string{"bind", "connect", "listen", "sendmmsg", "sendmsg", "sendto", "socket"}
	if !slices.Equal(changed, want) {
		t.Errorf("pod-network rows differ from the table in %v, want %v", changed, want)
	}
	for _, c := range []struct {
		name string
		args [6]uint64
		want Kind
	}{
		{"socket", [6]uint64{afInet}, KindAllow},
		{"socket", [6]uint64{afUnix}, KindAllow},
		{"socket", [6]uint64{16 /* AF_NETLINK */}, KindErrno},
		{"connect", [6]uint64{}, KindAllow},
		{"io_uring_setup", [6]uint64{}, KindErrno},
		{"mount", [6]uint64{}, KindErrno},
	} {
		nr, _ := SyscallNumber(c.name)
		if got := DecidePodNetwork(nr, c.args).Kind(); got != c.want {
			t.Errorf("pod network: %s%v: %v, want %v", c.name, c.args[:1], got, c.want)
		}
	}
}

package policy

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// Linux seccomp ABI values (include/uapi/linux/seccomp.h, audit.h); a test
// checks them against golang.org/x/sys/unix on Linux.
const (
	retKillProcess = 0x80000000
	retActionFull  = 0xffff0000
	retData        = 0x0000ffff
	retErrno       = 0x00050000
	retUserNotif   = 0x7fc00000
	retAllow       = 0x7fff0000

	auditArchX86_64 = 0xc000003e

	// Offsets in struct seccomp_data { int nr; __u32 arch; __u64
	// instruction_pointer; __u64 args[6]; }, which the kernel lays out in
	// host (little-endian) order: args[i] has its low half at argLow(i) and
	// its high half 4 bytes later.
	offNr   = 0
	offArch = 4
	offArgs = 16

	// MaxInstructions is the kernel's limit on a classic BPF program
	// (BPF_MAXINSNS).
	MaxInstructions = 4096
)

func argLow(i int) uint32  { return offArgs + 8*uint32(i) }
func argHigh(i int) uint32 { return argLow(i) + 4 }

// Compile translates the table into a seccomp filter program:
//
//  1. arch != AUDIT_ARCH_X86_64: kill the process. A call through the i386
//     ABI (int 0x80) uses other numbers, which the table does not describe.
//  2. nr has the x32 bit (0x40000000): ENOSYS (Unknown), exactly what a kernel
//     built without x32 answers; no program in a container needs x32, and
//     ENOSYS keeps syscall(-1) answering as it does unconfined.
//  3. a binary search over the system-call number, down to runs of numbers
//     with the same unconditional action, or to one system call whose
//     arguments are then tested.
//
// The result is independent of the build machine; Program (Linux) returns
// it as the []unix.SockFilter that seccomp(2) takes.
func Compile() ([]bpf.Instruction, error) {
	return compileRules(table())
}

// CompilePodNetwork is Compile for the pod-network policy (PodNetworkTable).
func CompilePodNetwork() ([]bpf.Instruction, error) {
	return compileRules(podNetworkTable())
}

func compileRules(rules []Rule) ([]bpf.Instruction, error) {
	if err := validate(rules); err != nil {
		return nil, err
	}
	dispatch, err := compileDispatch(segments(rules))
	if err != nil {
		return nil, err
	}
	prog := []bpf.Instruction{
		bpf.LoadAbsolute{Off: offArch, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: auditArchX86_64, SkipTrue: 1},
		bpf.RetConstant{Val: Kill.Ret()},
		bpf.LoadAbsolute{Off: offNr, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: x32Bit, SkipFalse: 1},
		bpf.RetConstant{Val: Unknown.Ret()},
	}
	prog = append(prog, dispatch...)
	if len(prog) > MaxInstructions {
		return nil, fmt.Errorf("compile seccomp policy: %d instructions, over the kernel's limit of %d", len(prog), MaxInstructions)
	}
	if _, err := bpf.Assemble(prog); err != nil {
		return nil, fmt.Errorf("compile seccomp policy: %w", err)
	}
	return prog, nil
}

// segment is a run of system-call numbers [lo, hi] that the filter treats
// alike: either one unconditional action, or the rule for a single call.
type segment struct {
	lo, hi uint32
	action Action // when rule is nil
	rule   *Rule  // a rule with conditions; lo == hi == rule.Nr
}

// segments covers every uint32 system-call number with the fewest segments,
// in increasing order. Numbers with the x32 bit never reach them.
func segments(rules []Rule) []segment {
	byNr := make(map[uint32]*Rule, len(rules))
	for i := range rules {
		byNr[rules[i].Nr] = &rules[i]
	}
	// What one number gets without looking at arguments; nil rule means
	// the action alone decides.
	at := func(nr uint32) (Action, *Rule) {
		if r, ok := byNr[nr]; ok {
			if len(r.When) > 0 {
				return 0, r
			}
			return r.Action, nil
		}
		if _, ok := SyscallName(nr); ok {
			return Default, nil
		}
		return Unknown, nil
	}
	var segs []segment
	last := uint32(len(x86_64Syscalls)) // first number past every known call
	for nr := uint32(0); nr < last; nr++ {
		a, r := at(nr)
		if n := len(segs); r == nil && n > 0 && segs[n-1].rule == nil && segs[n-1].action == a && segs[n-1].hi == nr-1 {
			segs[n-1].hi = nr
			continue
		}
		segs = append(segs, segment{lo: nr, hi: nr, action: a, rule: r})
	}
	if n := len(segs); segs[n-1].rule == nil && segs[n-1].action == Unknown {
		segs[n-1].hi = ^uint32(0)
	} else {
		segs = append(segs, segment{lo: last, hi: ^uint32(0), action: Unknown})
	}
	return segs
}

// compileDispatch emits a binary search over segs, which must cover every
// number in order, with the system-call number in A. Every path through the
// returned code ends in a return, so subtrees are laid out one after
// another and jumps only ever skip forward over a sibling.
func compileDispatch(segs []segment) ([]bpf.Instruction, error) {
	if len(segs) == 1 {
		return compileLeaf(segs[0])
	}
	mid := len(segs) / 2
	left, err := compileDispatch(segs[:mid])
	if err != nil {
		return nil, err
	}
	right, err := compileDispatch(segs[mid:])
	if err != nil {
		return nil, err
	}
	// if nr >= segs[mid].lo { goto right } else { fall into left }
	var head []bpf.Instruction
	if len(left) <= 255 {
		head = []bpf.Instruction{bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: segs[mid].lo, SkipTrue: uint8(len(left))}}
	} else {
		// A conditional jump reaches at most 255 instructions; jump over
		// a long left subtree with an unconditional one.
		head = []bpf.Instruction{
			bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: segs[mid].lo, SkipFalse: 1},
			bpf.Jump{Skip: uint32(len(left))},
		}
	}
	out := append(head, left...)
	return append(out, right...), nil
}

func compileLeaf(s segment) ([]bpf.Instruction, error) {
	if s.rule == nil {
		return []bpf.Instruction{bpf.RetConstant{Val: s.action.Ret()}}, nil
	}
	r := s.rule
	// A jeq reaches 255 instructions ahead; a longer list takes the
	// general form below, whose jumps are all short.
	if arg, ok := valueList(r.When); ok && len(r.When) <= 255 {
		return compileValueList(r, arg), nil
	}
	// One block per alternative; a failing test jumps to the next block.
	out := []bpf.Instruction{bpf.RetConstant{Val: r.otherwise().Ret()}}
	for i := len(r.When) - 1; i >= 0; i-- {
		block, err := compileMatch(r.When[i], bpf.RetConstant{Val: r.Action.Ret()})
		if err != nil {
			return nil, fmt.Errorf("compile seccomp policy: rule %q: %w", r.Name, err)
		}
		out = append(block, out...)
	}
	return out, nil
}

// compileMatch emits: if every Cond of m holds, ret; otherwise continue
// after the block.
func compileMatch(m Match, ret bpf.Instruction) ([]bpf.Instruction, error) {
	block := []bpf.Instruction{ret}
	for i := len(m) - 1; i >= 0; i-- {
		// block runs when this and the following conditions hold; failing
		// jumps to just past block.
		code, err := compileCond(m[i], len(block))
		if err != nil {
			return nil, err
		}
		block = append(code, block...)
	}
	return block, nil
}

// compileCond emits a test of c that falls through when c holds and, when
// it does not, skips the rest of its own code and then fail more
// instructions.
func compileCond(c Cond, fail int) ([]bpf.Instruction, error) {
	type half struct {
		off        uint32
		mask, want uint32
	}
	halves := []half{{argLow(c.Arg), uint32(c.Mask), uint32(c.Value)}}
	if c.Width == 64 {
		// High half first: only then is the low half in A for the last test.
		halves = []half{{argHigh(c.Arg), uint32(c.Mask >> 32), uint32(c.Value >> 32)}, halves[0]}
	}
	// A half whose mask is empty always compares equal.
	var live []half
	for _, h := range halves {
		if h.mask != 0 {
			live = append(live, h)
		}
	}
	// Emit each half as: load, and-mask, compare. For OpEq every half must
	// be equal: a mismatch fails. For OpNe some half must differ: a
	// mismatch passes, and equality of the last half fails.
	size := func(h half) int {
		if h.mask == 0xffffffff {
			return 2
		}
		return 3
	}
	total := 0
	for _, h := range live {
		total += size(h)
	}
	var code []bpf.Instruction
	done := 0
	for i, h := range live {
		code = append(code, bpf.LoadAbsolute{Off: h.off, Size: 4})
		if h.mask != 0xffffffff {
			code = append(code, bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: h.mask})
		}
		done += size(h)
		rest := total - done // instructions after this compare in the Cond
		var skipTrue, skipFalse int
		switch {
		case c.Op == OpEq:
			skipTrue, skipFalse = 0, rest+fail
		case i < len(live)-1: // OpNe, more halves to compare
			skipTrue, skipFalse = 0, rest
		default: // OpNe, last half: every half was equal
			skipTrue, skipFalse = rest+fail, 0
		}
		if skipTrue > 255 || skipFalse > 255 {
			return nil, fmt.Errorf("%v: jump of %d instructions is too long", c, max(skipTrue, skipFalse))
		}
		code = append(code, bpf.JumpIf{Cond: bpf.JumpEqual, Val: h.want, SkipTrue: uint8(skipTrue), SkipFalse: uint8(skipFalse)})
	}
	return code, nil
}

// valueList reports whether alternatives all test one 32-bit argument, under
// one mask, for equality with a value (as prctl's option list does), and if
// so returns that shared test.
func valueList(alternatives []Match) (Cond, bool) {
	if len(alternatives) < 2 {
		return Cond{}, false
	}
	first := alternatives[0]
	for _, m := range alternatives {
		if len(m) != 1 || m[0].Op != OpEq || m[0].Width != 32 || m[0].Arg != first[0].Arg || m[0].Mask != first[0].Mask {
			return Cond{}, false
		}
	}
	return first[0], true
}

// compileValueList loads the argument once and compares it with each value
// in turn: ld, [and], jeq v1, jeq v2, ..., ret else, ret action.
func compileValueList(r *Rule, c Cond) []bpf.Instruction {
	out := []bpf.Instruction{bpf.LoadAbsolute{Off: argLow(c.Arg), Size: 4}}
	if c.Mask != 0xffffffff {
		out = append(out, bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: uint32(c.Mask)})
	}
	n := len(r.When)
	for i, m := range r.When {
		// Skip the remaining compares and the "else" return.
		out = append(out, bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(m[0].Value), SkipTrue: uint8(n - i)})
	}
	return append(out,
		bpf.RetConstant{Val: r.otherwise().Ret()},
		bpf.RetConstant{Val: r.Action.Ret()})
}

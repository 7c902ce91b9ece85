// Package policy is Oak's container system-call policy: one fixed seccomp
// allowlist, the same for every container, written as a table (Table) and
// compiled into a classic-BPF seccomp filter (Compile, and Program on Linux).
//
// A container may compute, allocate memory, start threads and processes, use
// the file descriptors it holds, read and write the files its mount namespace
// shows it, signal and wait for its own processes, read the clock and exit.
// Every other system call is refused: EPERM by default, EACCES for calls that
// need network authority the container was not granted (the network service,
// services/netsvc, serves the granted ones through seccomp user
// notification), ENOSYS where programs probe for a feature and fall back
// when the kernel lacks it, and ENOTTY for an ioctl request outside the
// allowlist, as the kernel answers for a request a file does not implement.
//
// The policy is for x86_64 system calls only. The filter kills any process
// that makes a system call through another ABI (i386 via int 0x80), and
// answers x32 calls with ENOSYS. The table, the filter and Decide are pure Go
// and work on any build machine; only Program and InstalledFilter need Linux.
package policy

import (
	"fmt"
	"sort"
	"sync"
)

//go:generate go run gen_sysnum.go

// Kind is what the filter does with a system call.
type Kind uint8

const (
	// KindDefault is the Kind of the zero Action, which in Rule.Else stands
	// for Default. Decide never returns it.
	KindDefault Kind = iota
	// KindAllow lets the call through to the kernel.
	KindAllow
	// KindErrno fails the call with Action.Errno() without running it.
	KindErrno
	// KindNotify suspends the call and hands it to the supervisor holding the
	// seccomp user-notification listener (SECCOMP_RET_USER_NOTIF). With no
	// listener the kernel fails the call with ENOSYS.
	KindNotify
	// KindKill kills the whole process (SECCOMP_RET_KILL_PROCESS).
	KindKill
	// KindOther is any other seccomp return value; the table may not use it.
	KindOther
)

func (k Kind) String() string {
	switch k {
	case KindDefault:
		return "default"
	case KindAllow:
		return "allow"
	case KindErrno:
		return "errno"
	case KindNotify:
		return "notify"
	case KindKill:
		return "kill"
	}
	return "other"
}

// Errno is a Linux error number as the filter returns it to the caller.
// The values are Linux's (x86_64), whatever system this package is built on.
type Errno uint16

// The error numbers the policy returns.
const (
	EPERM  Errno = 1  // operation not permitted: the default refusal
	EACCES Errno = 13 // permission denied: network authority the container lacks
	ENOTTY Errno = 25 // inappropriate ioctl for device: "this file has no such request"
	ENOSYS Errno = 38 // function not implemented: "this kernel has no such feature"
)

func (e Errno) String() string {
	switch e {
	case EPERM:
		return "EPERM"
	case EACCES:
		return "EACCES"
	case ENOSYS:
		return "ENOSYS"
	case ENOTTY:
		return "ENOTTY"
	}
	return fmt.Sprintf("errno %d", uint16(e))
}

// maxErrno is the largest error number the kernel returns (MAX_ERRNO).
const maxErrno = 4095

// Action is the outcome of one system call, held as the seccomp return value
// (SECCOMP_RET_*) that the filter gives for it. The zero Action is no
// outcome; in Rule.Else it means Default.
type Action uint32

// Actions for the table.
const (
	Allow  Action = retAllow
	Notify Action = retUserNotif
	Kill   Action = retKillProcess
	// Default is the answer to every x86_64 system call the table does not
	// name: EPERM.
	Default Action = retErrno | Action(EPERM)
	// Unknown is the answer to numbers that are not x86_64 system calls known
	// to this package: gaps in the numbering, calls newer than this table, and
	// the x32 ABI. ENOSYS is what the kernel itself answers for a number it does
	// not implement, and what libc checks before falling back to an older call;
	// EPERM there would break programs on a newer kernel (runc learnt this with
	// clone3).
	Unknown Action = retErrno | Action(ENOSYS)
)

// Fail returns the action that fails a call with e.
func Fail(e Errno) Action { return retErrno | Action(e) }

// Kind returns what kind of outcome a is.
func (a Action) Kind() Kind {
	switch a & retActionFull {
	case 0:
		if a == 0 {
			return KindDefault
		}
	case retAllow:
		return KindAllow
	case retErrno:
		return KindErrno
	case retUserNotif:
		return KindNotify
	case retKillProcess:
		return KindKill
	}
	return KindOther
}

// Errno returns the error number a fails the call with, or 0 if a is not
// KindErrno.
func (a Action) Errno() Errno {
	if a.Kind() != KindErrno {
		return 0
	}
	return Errno(a & retData)
}

// Ret returns the seccomp return value (SECCOMP_RET_*) for a.
func (a Action) Ret() uint32 { return uint32(a) }

func (a Action) String() string {
	if a.Kind() == KindErrno {
		return a.Errno().String()
	}
	return a.Kind().String()
}

// Op is how a Cond compares an argument with its value.
type Op uint8

const (
	OpEq Op = iota // (arg & Mask) == Value
	OpNe           // (arg & Mask) != Value
)

// Cond tests one system-call argument: (arg & Mask) Op Value.
//
// Width is how wide the kernel reads the argument: 32 for int, unsigned int,
// pid_t, umode_t and the like, whose upper 32 bits the kernel discards on
// x86_64; 64 for pointers, sizes and longs. A 32-bit Cond ignores the upper
// half exactly as the kernel does, so a caller cannot slip a refused value
// past a "!=" test by setting high bits (the TIOCSTI bypass of CVE-2019-10063).
type Cond struct {
	Arg   int // 0..5
	Width int // 32 or 64
	Mask  uint64
	Op    Op
	Value uint64
}

// Holds reports whether the condition holds for argument value v.
func (c Cond) Holds(v uint64) bool {
	if c.Width == 32 {
		v &= 0xffffffff
	}
	eq := v&c.Mask == c.Value
	if c.Op == OpNe {
		return !eq
	}
	return eq
}

func (c Cond) String() string {
	op := "=="
	if c.Op == OpNe {
		op = "!="
	}
	mask := ""
	full := uint64(0xffffffff)
	if c.Width == 64 {
		full = ^uint64(0)
	}
	if c.Mask != full {
		mask = fmt.Sprintf(" & %#x", c.Mask)
	}
	return fmt.Sprintf("arg%d/%d%s %s %#x", c.Arg, c.Width, mask, op, c.Value)
}

// Match is a conjunction: it holds when every Cond in it holds.
type Match []Cond

func (m Match) holds(args [6]uint64) bool {
	for _, c := range m {
		if !c.Holds(args[c.Arg]) {
			return false
		}
	}
	return true
}

// Rule is one row of the table: one x86_64 system call and what the filter
// does with it.
type Rule struct {
	Name string // the kernel's name for it: what a row is keyed by
	Nr   uint32 // its x86_64 number, derived from Name (see numbered)
	// Action is taken when When is empty, or when any Match in When holds.
	Action Action
	// When, if not empty, restricts Action to calls whose arguments satisfy
	// one of its Matches.
	When []Match
	// Else is taken when When is not empty and no Match holds; the zero
	// Action means Default.
	Else Action
	// Why justifies every entry that is wider or narrower than obvious.
	Why string
}

// Decide returns the action for an x86_64 call with these arguments.
func (r Rule) Decide(args [6]uint64) Action {
	if len(r.When) == 0 {
		return r.Action
	}
	for _, m := range r.When {
		if m.holds(args) {
			return r.Action
		}
	}
	return r.otherwise()
}

func (r Rule) otherwise() Action {
	if r.Else == 0 {
		return Default
	}
	return r.Else
}

// mayAllow reports whether some arguments let the call through.
func (r Rule) mayAllow() bool {
	return r.Action == Allow || (len(r.When) > 0 && r.Else == Allow)
}

// Table returns a copy of the policy, one Rule per system call it names, in
// the order written in table.go.
func Table() []Rule { return table() }

// index maps rules by system-call number.
func index(rules []Rule) map[uint32]Rule {
	m := make(map[uint32]Rule, len(rules))
	for _, r := range rules {
		m[r.Nr] = r
	}
	return m
}

// tableByNr is the table's index, made on first use (by Decide, which the
// launch path never calls) and never changed.
var tableByNr = sync.OnceValue(func() map[uint32]Rule { return index(table()) })

// x32Bit marks a system call made through the x32 ABI (__X32_SYSCALL_BIT).
const x32Bit = 0x40000000

// Decide returns what the policy does with x86_64 system call nr called
// with args, computed from the table (not from the BPF program, so that tests
// can compare the two).
func Decide(nr uint32, args [6]uint64) Action {
	return decideIn(tableByNr(), nr, args)
}

func decideIn(byNr map[uint32]Rule, nr uint32, args [6]uint64) Action {
	if nr&x32Bit != 0 {
		return Unknown
	}
	if r, ok := byNr[nr]; ok {
		return r.Decide(args)
	}
	if _, ok := SyscallName(nr); ok {
		return Default
	}
	return Unknown
}

// SyscallName returns the kernel's name for x86_64 system call nr.
func SyscallName(nr uint32) (string, bool) {
	if int(nr) >= len(x86_64Syscalls) || x86_64Syscalls[nr] == "" {
		return "", false
	}
	return x86_64Syscalls[nr], true
}

// SyscallNumber returns the x86_64 number of the system call called name.
func SyscallNumber(name string) (uint32, bool) {
	nr, ok := syscallNumbers()[name]
	return nr, ok
}

// syscallNumbers indexes x86_64Syscalls by name. Numbering the table with
// a search of the list per row cost every oak process a fifth of a
// millisecond at start-up.
var syscallNumbers = sync.OnceValue(func() map[string]uint32 {
	m := make(map[string]uint32, len(x86_64Syscalls))
	for nr, n := range x86_64Syscalls {
		if n != "" {
			m[n] = uint32(nr)
		}
	}
	return m
})

// Allowed returns, sorted, the names of the system calls a container can make
// reach the kernel: those allowed outright and those allowed for some
// arguments.
func Allowed() []string {
	var names []string
	for _, r := range table() {
		if r.mayAllow() {
			names = append(names, r.Name)
		}
	}
	sort.Strings(names)
	return names
}

// Summary counts the policy's answers over all x86_64 system calls.
type Summary struct {
	Total       int // x86_64 system calls known to this package
	Allowed     int // allowed whatever the arguments
	Conditional int // allowed only for some arguments
	Notify      int // handed to the supervisor
	Refused     int // never reach the kernel: Total - Allowed - Conditional - Notify
}

// Reachable is the number of system calls through which a container can
// reach the host kernel itself: Allowed + Conditional.
func (s Summary) Reachable() int { return s.Allowed + s.Conditional }

func (s Summary) String() string {
	return fmt.Sprintf("%d of %d x86_64 system calls reachable (%d allowed, %d for some arguments), %d notify, %d refused",
		s.Reachable(), s.Total, s.Allowed, s.Conditional, s.Notify, s.Refused)
}

// Stats summarises the policy, for `oak bench syscalls` and for tests.
func Stats() Summary {
	var s Summary
	for _, name := range x86_64Syscalls {
		if name != "" {
			s.Total++
		}
	}
	for _, r := range table() {
		switch {
		case r.Action == Allow && len(r.When) == 0:
			s.Allowed++
		case r.mayAllow():
			s.Conditional++
		case r.Action == Notify || r.Else == Notify:
			s.Notify++
		}
	}
	s.Refused = s.Total - s.Allowed - s.Conditional - s.Notify
	return s
}

// noNumber marks a row whose name is no x86_64 system call.
const noNumber = ^uint32(0)

// numbered fills in each rule's number from its name (noNumber for a name
// that is no x86_64 system call, which validate then refuses).
func numbered(rules []Rule) []Rule {
	for i := range rules {
		nr, ok := SyscallNumber(rules[i].Name)
		if !ok {
			nr = noNumber
		}
		rules[i].Nr = nr
	}
	return rules
}

// validate checks the table's structure; Compile refuses a table that fails.
func validate(rules []Rule) error {
	seen := make(map[uint32]string, len(rules))
	for _, r := range rules {
		name, ok := SyscallName(r.Nr)
		if !ok {
			return fmt.Errorf("policy rule %q: not an x86_64 system call", r.Name)
		}
		if name != r.Name {
			return fmt.Errorf("policy rule %q: x86_64 system call %d is %q", r.Name, r.Nr, name)
		}
		if prev, dup := seen[r.Nr]; dup {
			return fmt.Errorf("policy rule %q: system call %d already has a rule (%q)", r.Name, r.Nr, prev)
		}
		seen[r.Nr] = r.Name
		if err := validAction(r.Action, false); err != nil {
			return fmt.Errorf("policy rule %q: action: %w", r.Name, err)
		}
		if len(r.When) == 0 && r.Else != 0 {
			return fmt.Errorf("policy rule %q: Else without When", r.Name)
		}
		if err := validAction(r.Else, true); err != nil {
			return fmt.Errorf("policy rule %q: else: %w", r.Name, err)
		}
		if len(r.When) > 0 && r.Action == r.otherwise() {
			return fmt.Errorf("policy rule %q: conditions change nothing (%v either way)", r.Name, r.Action)
		}
		for _, m := range r.When {
			if len(m) == 0 {
				return fmt.Errorf("policy rule %q: empty Match", r.Name)
			}
			for _, c := range m {
				if err := validCond(c); err != nil {
					return fmt.Errorf("policy rule %q: %v: %w", r.Name, c, err)
				}
			}
		}
	}
	return nil
}

func validAction(a Action, zeroOK bool) error {
	switch a.Kind() {
	case KindDefault:
		if !zeroOK {
			return fmt.Errorf("no action")
		}
	case KindErrno:
		if e := a.Errno(); e == 0 || e > maxErrno {
			return fmt.Errorf("errno %d out of range 1..%d", e, maxErrno)
		}
	case KindAllow, KindNotify, KindKill:
		if a&retData != 0 {
			return fmt.Errorf("%v with data %#x", a.Kind(), uint32(a&retData))
		}
	default:
		return fmt.Errorf("seccomp return value %#x is not one the policy uses", uint32(a))
	}
	return nil
}

func validCond(c Cond) error {
	if c.Arg < 0 || c.Arg > 5 {
		return fmt.Errorf("argument index out of range 0..5")
	}
	switch c.Width {
	case 32:
		if c.Mask>>32 != 0 {
			return fmt.Errorf("mask wider than the 32-bit argument")
		}
	case 64:
	default:
		return fmt.Errorf("width must be 32 or 64")
	}
	if c.Mask == 0 {
		return fmt.Errorf("empty mask")
	}
	if c.Value&^c.Mask != 0 {
		return fmt.Errorf("value has bits outside the mask, so the test is constant")
	}
	if c.Op != OpEq && c.Op != OpNe {
		return fmt.Errorf("unknown op %d", c.Op)
	}
	return nil
}

// Helpers that keep the table's rows short.

type argRef struct{ i, width int }

// arg32 is argument i as the kernel reads an int, unsigned int or pid_t.
func arg32(i int) argRef { return argRef{i, 32} }

// arg64 is argument i as the kernel reads a pointer, size or long.
func arg64(i int) argRef { return argRef{i, 64} }

func (a argRef) full() uint64 {
	if a.width == 32 {
		return 0xffffffff
	}
	return ^uint64(0)
}

// eq: the argument equals v.
func (a argRef) eq(v uint64) Cond { return Cond{a.i, a.width, a.full(), OpEq, v} }

// ne: the argument differs from v.
func (a argRef) ne(v uint64) Cond { return Cond{a.i, a.width, a.full(), OpNe, v} }

// none: the argument has none of bits set.
func (a argRef) none(bits uint64) Cond { return Cond{a.i, a.width, bits, OpEq, 0} }

// masked: the argument's bits under mask equal v.
func (a argRef) masked(mask, v uint64) Cond { return Cond{a.i, a.width, mask, OpEq, v} }

// when builds Rule.When: each Match is one alternative.
func when(alternatives ...Match) []Match { return alternatives }

// all builds one Match: every Cond must hold.
func all(conds ...Cond) Match { return Match(conds) }

// oneOf builds one single-Cond alternative per value: the argument equals one
// of values.
func oneOf(a argRef, values ...uint64) []Match {
	ms := make([]Match, len(values))
	for i, v := range values {
		ms[i] = Match{a.eq(v)}
	}
	return ms
}

// Value is one argument value a rule allows, with its name and the reason
// it is allowed (see ioctlAllowed).
type Value struct {
	V    uint64
	Name string
	Why  string
}

// values returns the bare values of vs, in order, for oneOf.
func values(vs []Value) []uint64 {
	out := make([]uint64, len(vs))
	for i, v := range vs {
		out[i] = v.V
	}
	return out
}

// oneOfMasked is oneOf for the argument's bits under mask.
func oneOfMasked(a argRef, mask uint64, values ...uint64) []Match {
	ms := make([]Match, len(values))
	for i, v := range values {
		ms[i] = Match{a.masked(mask, v)}
	}
	return ms
}

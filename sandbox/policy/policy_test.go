package policy

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func nr(t *testing.T, name string) uint32 {
	t.Helper()
	n, ok := SyscallNumber(name)
	if !ok {
		t.Fatalf("%q is not an x86_64 system call", name)
	}
	return n
}

func TestTableIsValid(t *testing.T) {
	if err := validate(table()); err != nil {
		t.Fatal(err)
	}
}

func TestTableRowsAreUniqueAndNamed(t *testing.T) {
	seenNr := map[uint32]string{}
	seenName := map[string]bool{}
	for _, r := range table() {
		if prev, ok := seenNr[r.Nr]; ok {
			t.Errorf("number %d has two rows: %q and %q", r.Nr, prev, r.Name)
		}
		if seenName[r.Name] {
			t.Errorf("%q has two rows", r.Name)
		}
		seenNr[r.Nr], seenName[r.Name] = r.Name, true
		if got, ok := SyscallName(r.Nr); !ok || got != r.Name {
			t.Errorf("row %q has number %d, which is x86_64's %q", r.Name, r.Nr, got)
		}
	}
}

// Every row says why the call is given to every container, or refused
// otherwise than by default (the shared reasons are consts in table.go).
func TestEveryRowSaysWhy(t *testing.T) {
	for _, r := range table() {
		if strings.TrimSpace(r.Why) == "" {
			t.Errorf("%s: %v needs a Why", r.Name, r.Action)
		}
	}
}

// refusedDespiteEvidence are calls the corpus's programs made under runc
// that Oak does not let through, and what those programs do instead.
var refusedDespiteEvidence = map[string]string{
	"clone3":         "ENOSYS: glibc falls back to clone, whose flags the filter can read",
	"io_uring_setup": "its operations (socket, connect) bypass seccomp; MariaDB falls back to synchronous I/O",
	"io_uring_enter": "as io_uring_setup",
	"get_mempolicy":  "NUMA placement is the host's; the JVM and MariaDB carry on without it",
	"set_mempolicy":  "as get_mempolicy",
}

// The policy follows evidence: every system call the corpus (tests/corpus:
// PostgreSQL, Redis, nginx, MariaDB, Python, Node, OpenJDK, Go, busybox,
// musl, recorded under runc) made is reachable, served by the network
// service, or refused on purpose above; the rest of what is reachable is
// counted, so that growing it is a visible decision.
func TestPolicyFollowsCorpusEvidence(t *testing.T) {
	b, err := os.ReadFile("../../tests/corpus/syscalls.txt")
	if err != nil {
		t.Fatalf("the corpus's evidence: %v", err)
	}
	used := map[string]bool{}
	for _, n := range strings.Fields(string(b)) {
		if _, ok := SyscallNumber(n); !ok {
			t.Errorf("syscalls.txt names %q, no x86_64 system call", n)
		}
		used[n] = true
	}
	byName := map[string]Rule{}
	for _, r := range table() {
		byName[r.Name] = r
	}
	for n := range used {
		r, ok := byName[n]
		switch {
		case ok && (r.mayAllow() || r.Action == Notify):
		case refusedDespiteEvidence[n] != "":
		default:
			t.Errorf("the corpus calls %s, which the policy refuses without saying why in refusedDespiteEvidence", n)
		}
	}
	for n := range refusedDespiteEvidence {
		if !used[n] {
			t.Errorf("refusedDespiteEvidence names %s, which the corpus does not call", n)
		}
	}
	unused := 0
	for _, n := range Allowed() {
		if !used[n] {
			unused++
		}
	}
	// Reachable without evidence from the corpus: kept for programs built
	// against other libcs and runtimes, each row with its reason.
	if want := 130; unused != want {
		t.Errorf("%d reachable system calls are not made by the corpus, want exactly %d: adjust the count with the table, deliberately", unused, want)
	}
}

// TestRefused pins what the issue says a container must not reach, and the
// errno each gets.
func TestRefused(t *testing.T) {
	eperm := strings.Fields(`
		mount umount2 pivot_root unshare setns chroot
		ptrace process_vm_readv process_vm_writev pidfd_getfd kcmp
		process_madvise process_mrelease
		bpf perf_event_open userfaultfd fanotify_init fanotify_mark
		keyctl add_key request_key open_by_handle_at name_to_handle_at
		kexec_load kexec_file_load init_module finit_module delete_module
		create_module reboot swapon swapoff syslog acct quotactl quotactl_fd
		lookup_dcookie mbind set_mempolicy get_mempolicy migrate_pages move_pages
		set_mempolicy_home_node iopl ioperm modify_ldt
		settimeofday clock_settime adjtimex clock_adjtime sethostname setdomainname
		fsopen fsconfig fsmount fspick move_mount open_tree open_tree_attr mount_setattr
		memfd_secret vmsplice remap_file_pages get_robust_list vhangup _sysctl
		uselib ustat sysfs nfsservctl set_thread_area get_thread_area
		sched_setparam sched_setscheduler sched_setattr
		statmount listmount listns lsm_get_self_attr lsm_set_self_attr
		lsm_list_modules cachestat
		msgget msgsnd msgrcv msgctl mq_open mq_unlink mq_timedsend
		mq_timedreceive mq_notify mq_getsetattr
	`)
	enosys := strings.Fields(`
		clone3 io_uring_setup io_uring_enter io_uring_register
		io_setup io_destroy io_getevents io_submit io_cancel io_pgetevents
		epoll_pwait2 futex_waitv futex_wake futex_wait futex_requeue
		setxattrat getxattrat listxattrat removexattrat file_getattr
		file_setattr rseq_slice_yield
	`)
	eacces := strings.Fields(`socket`)
	// connect, bind and listen are never allowed by the filter itself:
	// the network service decides each one.
	for _, name := range strings.Fields(`connect bind listen sendmsg sendmmsg`) {
		if got := Decide(nr(t, name), [6]uint64{}); got != Notify {
			t.Errorf("%s: Decide = %v, want notify", name, got)
		}
	}
	var zero [6]uint64
	check := func(name string, want Action) {
		t.Helper()
		if got := Decide(nr(t, name), zero); got != want {
			t.Errorf("%s: Decide = %v, want %v", name, got, want)
		}
		if slices.Contains(Allowed(), name) {
			t.Errorf("%s is in Allowed()", name)
		}
	}
	for _, name := range eperm {
		check(name, Fail(EPERM))
	}
	for _, name := range enosys {
		check(name, Fail(ENOSYS))
	}
	for _, name := range eacces {
		check(name, Fail(EACCES))
	}
	// vm86 does not exist on x86_64 at all.
	if _, ok := SyscallNumber("vm86"); ok {
		t.Error("vm86 is an x86_64 system call after all: add it to the refused list")
	}
}

func TestArgumentConditions(t *testing.T) {
	const high = 0xdead_beef_0000_0000
	const threadFlags = 0x3d0f00 // what Go's runtime passes to clone for a thread
	a := func(v ...uint64) (args [6]uint64) { copy(args[:], v); return }
	tests := []struct {
		call string
		args [6]uint64
		want Action
	}{
		{"clone", a(threadFlags), Allow},
		{"clone", a(0x11 /* SIGCHLD: fork */), Allow},
		{"clone", a(high | 0x11), Allow},
		{"clone", a(threadFlags | cloneNewUser), Default},
		{"clone", a(0x11 | cloneNewNS), Default},
		{"clone", a(0x11 | cloneNewCgroup), Default},
		{"clone", a(0x11 | cloneNewUTS), Default},
		{"clone", a(0x11 | cloneNewIPC), Default},
		{"clone", a(0x11 | cloneNewPID), Default},
		{"clone", a(0x11 | cloneNewNet), Default},
		{"clone", a(high | 0x11 | cloneNewNet), Default},

		{"ioctl", a(0, 0x5413 /* TIOCGWINSZ */), Allow},
		{"ioctl", a(0, 0x541b /* FIONREAD */), Allow},
		{"ioctl", a(0, high|0x541b), Allow}, // the kernel reads cmd as unsigned int
		{"ioctl", a(0, tiocsti), Fail(ENOTTY)},
		{"ioctl", a(0, high|tiocsti), Fail(ENOTTY)},
		{"ioctl", a(0, 0xffffffff_00000000|tioclinux), Fail(ENOTTY)},
		{"ioctl", a(0, tiocsetd), Fail(ENOTTY)},
		{"ioctl", a(0, siocgifconf), Fail(ENOTTY)},
		{"ioctl", a(0, 1<<32), Fail(ENOTTY)},

		{"socketpair", a(afUnix, 1), Allow},
		{"socketpair", a(high|afUnix, 1), Allow}, // int domain: the kernel sees AF_UNIX
		{"socketpair", a(2 /* AF_INET */, 1), Fail(EACCES)},
		{"socketpair", a(10 /* AF_INET6 */, 1), Fail(EACCES)},
		{"socketpair", a(16 /* AF_NETLINK */, 3), Fail(EACCES)},

		{"prlimit64", a(0, 7, 0, 0x1000), Allow},
		{"prlimit64", a(0, 7, 0x1000, 0), Allow},
		{"prlimit64", a(1, 7, 0, 0x1000), Default},
		{"prlimit64", a(high, 7, 0, 0x1000), Allow}, // pid_t: the kernel sees 0

		{"personality", a(perLinux), Allow},
		{"personality", a(personalityQuery), Allow},
		{"personality", a(^uint64(0)), Allow},
		{"personality", a(0x0040000 /* ADDR_NO_RANDOMIZE */), Default},
		{"personality", a(0x0400000 /* READ_IMPLIES_EXEC */), Default},
		{"personality", a(8 /* PER_LINUX32 */), Default},

		{"prctl", a(15 /* PR_SET_NAME */), Allow},
		{"prctl", a(38 /* PR_SET_NO_NEW_PRIVS */, 1), Allow},
		{"prctl", a(0x53564d41 /* PR_SET_VMA */, 0), Allow},
		{"prctl", a(high | 15), Allow},
		{"prctl", a(35 /* PR_SET_MM */), Default},
		{"prctl", a(0x59616d61 /* PR_SET_PTRACER */), Default},
		{"prctl", a(53 /* PR_SET_SPECULATION_CTRL */), Default},
		{"prctl", a(59 /* PR_SET_SYSCALL_USER_DISPATCH */), Default},
		{"prctl", a(62 /* PR_SCHED_CORE */), Default},

		{"mknod", a(0, sIFIFO|0o644), Allow},
		{"mknod", a(0, sIFREG|0o644), Allow},
		{"mknod", a(0, 0o644), Allow},
		{"mknod", a(0, 0o020000|0o644 /* S_IFCHR */, 0x0103), Default},
		{"mknod", a(0, 0o060000|0o644 /* S_IFBLK */, 0x0801), Default},
		{"mknod", a(0, 0o140000 /* S_IFSOCK */), Default},
		{"mknod", a(0, high|0o020000), Default},
		{"mknodat", a(0, sIFIFO, sIFIFO|0o600), Allow},
		{"mknodat", a(0, 0, 0o020000|0o600, 0x0103), Default},

		{"sendto", a(3, 0, 10, 0, 0, 0), Allow},
		{"sendto", a(3, 0, 10, 0x40 /* MSG_DONTWAIT */, 0, 0), Allow},
		{"sendto", a(3, 0, 10, 0, 0x7ffd_0000_1000, 16), Notify},
		{"sendto", a(3, 0, 10, 0, 1<<40, 16), Notify}, // address only in the high half
		{"sendto", a(3, 0, 10, 0, 0x1000, 16), Notify},
		{"sendto", a(3, 0, 10, msgFastOpen, 0, 0), Notify},
		{"sendto", a(3, 0, 10, high, 0, 0), Allow},
		{"sendmsg", a(3, 0x1000, 0), Notify},
		{"sendmsg", a(3, 0x1000, msgFastOpen), Notify},
		{"sendmmsg", a(3, 0x1000, 2, 0), Notify},
		{"sendmmsg", a(3, 0x1000, 2, msgFastOpen|0x40), Notify},

		{"socket", a(2 /* AF_INET */, 1), Notify},
		{"socket", a(10 /* AF_INET6 */, 2), Notify},
		{"socket", a(high|2, 1), Notify},          // int domain: the kernel sees AF_INET
		{"socket", a(1 /* AF_UNIX */, 1), Notify}, // the service lets it through
		{"clone", a(0x11 /* SIGCHLD */), Allow},
		{"clone", a(0x3d0f00 /* a pthread: VM|FS|FILES|SIGHAND|THREAD|... */), Allow},
		{"clone", a(0x400 | 0x11 /* CLONE_FILES without CLONE_THREAD */), Default},
		{"clone", a(0x10000000 | 0x11 /* CLONE_NEWUSER */), Default},
		{"socket", a(16 /* AF_NETLINK */, 3), Fail(EACCES)},
		{"socket", a(17 /* AF_PACKET */, 3), Fail(EACCES)},

		{"setsockopt", a(3, 1 /* SOL_SOCKET */, 2 /* SO_REUSEADDR */), Allow},
		{"setsockopt", a(3, 41, 26 /* IPV6_V6ONLY */), Allow},
		{"setsockopt", a(3, 0 /* IPPROTO_IP */, 57), Allow},
		{"setsockopt", a(3, 41, 57 /* IPV6_RTHDR */), Default},
		{"setsockopt", a(3, 41, 6 /* IPV6_2292PKTOPTIONS */), Default},
		{"setsockopt", a(3, high|41, high|57), Default}, // int level and name
	}
	for _, tt := range tests {
		if got := Decide(nr(t, tt.call), tt.args); got != tt.want {
			t.Errorf("%s%x: Decide = %v, want %v", tt.call, tt.args, got, tt.want)
		}
	}
}

// TestIoctlAllowlist pins the ioctl policy: every allowed request has a
// name and a reason and is let through whatever the upper half of the
// argument holds; the requests that reveal the host or reach a shared
// terminal get ENOTTY.
func TestIoctlAllowlist(t *testing.T) {
	ioctl := nr(t, "ioctl")
	seen := map[uint64]string{}
	for _, v := range ioctlAllowed {
		if v.Name == "" || strings.TrimSpace(v.Why) == "" {
			t.Errorf("ioctl %#x (%s) needs a name and a Why", v.V, v.Name)
		}
		if v.V>>32 != 0 {
			t.Errorf("%s: %#x is wider than the unsigned int request", v.Name, v.V)
		}
		if prev, dup := seen[v.V]; dup {
			t.Errorf("%s: %#x is listed already as %s", v.Name, v.V, prev)
		}
		seen[v.V] = v.Name
		for _, hi := range []uint64{0, 0xdead_beef_0000_0000} {
			if got := Decide(ioctl, [6]uint64{3, hi | v.V}); got != Allow {
				t.Errorf("ioctl %s (%#x): Decide = %v, want allow", v.Name, hi|v.V, got)
			}
		}
	}
	refused := map[string]uint64{
		"SIOCGIFCONF": siocgifconf, "SIOCGIFADDR": 0x8915, "SIOCGIFINDEX": 0x8933,
		"SIOCGIFHWADDR": 0x8927, "SIOCGIFNAME": 0x8910, "SIOCGIFFLAGS": 0x8913,
		"SIOCADDRT": 0x890b, "SIOCSIFFLAGS": 0x8914,
		"TIOCSTI": tiocsti, "TIOCLINUX": tioclinux, "TIOCSETD": tiocsetd, "TIOCCONS": 0x541d,
		"TIOCMSET": 0x5418, "FS_IOC_FIEMAP": 0xc020660b, "FS_IOC_SETFLAGS": 0x40086602,
		"BLKGETSIZE64": 0x80081272, "LOOP_SET_FD": 0x4c00, "NS_GET_USERNS": 0xb701,
		"SECCOMP_IOCTL_NOTIF_RECV": 0xc0502100, "zero": 0,
	}
	for name, req := range refused {
		for _, hi := range []uint64{0, 1 << 32, 0xffffffff_00000000} {
			if got := Decide(ioctl, [6]uint64{3, hi | req}); got != Fail(ENOTTY) {
				t.Errorf("ioctl %s (%#x): Decide = %v, want ENOTTY", name, hi|req, got)
			}
		}
	}
	t.Logf("%d ioctl requests allowed", len(ioctlAllowed))
}

func TestNumbersThatAreNotSystemCalls(t *testing.T) {
	for _, n := range []uint32{340, 387, 423, 472, 511, 512, 1000, 1 << 20, 0x7fffffff, 0x80000000, 0xffffffff,
		x32Bit, x32Bit | 39, x32Bit | 0, x32Bit | 512} {
		if got := Decide(n, [6]uint64{}); got != Fail(ENOSYS) {
			t.Errorf("Decide(%#x) = %v, want ENOSYS", n, got)
		}
	}
}

// What a static Go 1.26 program, a libc program and busybox need (found
// with strace on each); TestInstalledFilterIsProgram runs them under the
// filter.
func TestRuntimeNeedsAreAllowed(t *testing.T) {
	needs := strings.Fields(`
		arch_prctl brk clone execve exit_group fcntl futex getpid getrlimit
		gettid madvise mmap mprotect munmap nanosleep openat prlimit64 read
		rt_sigaction rt_sigprocmask rt_sigreturn sched_getaffinity sigaltstack
		tgkill write close epoll_create1 epoll_ctl epoll_pwait eventfd2 pipe2
		set_tid_address set_robust_list rseq getrandom uname newfstatat statx
		getdents64 readlinkat ioctl wait4 waitid dup2 dup3 getcwd chdir
		pidfd_open pidfd_send_signal vfork kill clock_nanosleep prctl
	`)
	allowed := Allowed()
	for _, name := range needs {
		if !slices.Contains(allowed, name) {
			t.Errorf("%s is needed by ordinary programs but not allowed", name)
		}
	}
}

func TestStats(t *testing.T) {
	s := Stats()
	if s.Total != 385 {
		t.Errorf("Total = %d, want the 385 x86_64 system calls of golang.org/x/sys v0.50.0", s.Total)
	}
	if got := len(Allowed()); got != s.Reachable() {
		t.Errorf("len(Allowed()) = %d, Reachable() = %d", got, s.Reachable())
	}
	if s.Allowed+s.Conditional+s.Notify+s.Refused != s.Total || s.Refused <= 0 {
		t.Errorf("inconsistent %+v", s)
	}
	// Ratcheted exactly: a change to the surface changes this line.
	if s.Reachable() != 255 || s.Allowed != 245 || s.Conditional != 10 || s.Notify != 6 {
		t.Errorf("surface %v, want 255 reachable (245 always, 10 for some arguments), 6 served by the network service", s)
	}
	t.Log(s)
}

func TestTableReturnsACopy(t *testing.T) {
	rules := Table()
	rules[0].Action = Kill
	for i := range rules {
		if len(rules[i].When) > 0 {
			rules[i].When[0] = nil
			break
		}
	}
	if err := validate(table()); err != nil {
		t.Fatalf("changing Table()'s result changed the policy: %v", err)
	}
	if table()[0].Action == Kill {
		t.Fatal("changing Table()'s result changed the policy")
	}
}

func TestValidateRejects(t *testing.T) {
	ok := Rule{Nr: 0, Name: "read", Action: Allow}
	bad := []struct {
		what string
		r    Rule
	}{
		{"wrong name", Rule{Nr: 0, Name: "write", Action: Allow}},
		{"unknown number", Rule{Nr: 400, Name: "nothing", Action: Allow}},
		{"no action", Rule{Nr: 1, Name: "write"}},
		{"errno 0", Rule{Nr: 1, Name: "write", Action: Fail(0)}},
		{"errno too big", Rule{Nr: 1, Name: "write", Action: Fail(5000)}},
		{"allow with data", Rule{Nr: 1, Name: "write", Action: Action(0x7fff_0001)}},
		{"trap", Rule{Nr: 1, Name: "write", Action: Action(0x0003_0000)}},
		{"kill thread", Rule{Nr: 1, Name: "write", Action: Action(0x0000_0001)}},
		{"else without when", Rule{Nr: 1, Name: "write", Action: Allow, Else: Fail(EACCES)}},
		{"arg 6", Rule{Nr: 1, Name: "write", Action: Allow, When: when(all(Cond{Arg: 6, Width: 64, Mask: 1, Value: 1}))}},
		{"width 16", Rule{Nr: 1, Name: "write", Action: Allow, When: when(all(Cond{Arg: 0, Width: 16, Mask: 1, Value: 1}))}},
		{"value outside mask", Rule{Nr: 1, Name: "write", Action: Allow, When: when(all(arg32(0).masked(0xf0, 0x1)))}},
		{"32-bit mask too wide", Rule{Nr: 1, Name: "write", Action: Allow, When: when(all(Cond{Arg: 0, Width: 32, Mask: 1 << 40, Value: 0}))}},
		{"empty match", Rule{Nr: 1, Name: "write", Action: Allow, When: []Match{{}}}},
		{"pointless condition", Rule{Nr: 1, Name: "write", Action: Fail(EPERM), When: when(all(arg32(0).eq(1)))}},
	}
	for _, b := range bad {
		if err := validate([]Rule{ok, b.r}); err == nil {
			t.Errorf("%s: validate accepted %+v", b.what, b.r)
		}
		if _, err := compileRules([]Rule{ok, b.r}); err == nil {
			t.Errorf("%s: compile accepted %+v", b.what, b.r)
		}
	}
	if err := validate([]Rule{ok, ok}); err == nil {
		t.Error("validate accepted a duplicate row")
	}
}

func TestActions(t *testing.T) {
	for _, tt := range []struct {
		a     Action
		kind  Kind
		errno Errno
		str   string
	}{
		{Allow, KindAllow, 0, "allow"},
		{Notify, KindNotify, 0, "notify"},
		{Kill, KindKill, 0, "kill"},
		{Default, KindErrno, EPERM, "EPERM"},
		{Unknown, KindErrno, ENOSYS, "ENOSYS"},
		{Fail(EACCES), KindErrno, EACCES, "EACCES"},
		{Fail(22), KindErrno, 22, "errno 22"},
		{0, KindDefault, 0, "default"},
		{Action(0x0003_0000), KindOther, 0, "other"},
	} {
		if tt.a.Kind() != tt.kind || tt.a.Errno() != tt.errno || tt.a.String() != tt.str {
			t.Errorf("%#x: Kind %v Errno %d String %q; want %v %d %q", uint32(tt.a), tt.a.Kind(), tt.a.Errno(), tt.a.String(), tt.kind, tt.errno, tt.str)
		}
	}
}

//go:build linux

package integration

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/oak-engine/oak/sandbox/policy"
)

// errnoName is the symbol the probe prints for e.
func errnoName(e syscall.Errno) string { return unix.ErrnoName(e) }

// A container without grants cannot create a socket of any family or type
// but AF_UNIX (its own): socket() answers EACCES (no network capability was
// granted). AF_UNIX socketpairs are allowed, socketpair of any other family
// is EACCES too.
func TestSockets(t *testing.T) {
	needOak(t, true)
	o := newOak(t)

	t.Run("sweep", func(t *testing.T) {
		o := o.sub(t)
		t.Parallel()
		r := o.run("run", rootfsDir, "/bin/probe", "socket-sweep")
		if r.code != 0 {
			t.Fatalf("%s", r)
		}
		ls := lines(r.stdout)
		if len(ls) < 48*4 {
			t.Fatalf("socket-sweep printed %d lines, want one per family and type:\n%s", len(ls), r.stdout)
		}
		bad := 0
		for _, l := range ls {
			f := strings.SplitN(l, " ", 3)
			if len(f) == 3 && f[0] == strconv.Itoa(unix.AF_UNIX) {
				continue // TestUnixSockets
			}
			if len(f) != 3 || f[2] != "err EACCES" {
				if bad < 20 {
					t.Errorf("socket(family %s, type %s): %q, want \"err EACCES\"", f[0], f[1], f[len(f)-1])
				}
				bad++
			}
		}
		if bad > 0 {
			t.Errorf("%d of %d socket() calls were not refused with EACCES", bad, len(ls))
		}
	})

	// A few common ones on their own, with a protocol.
	for _, c := range []struct{ fam, typ, proto int }{
		{unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_TCP},
		{unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_UDP},
		{unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP},
		{unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_ROUTE},
		{unix.AF_PACKET, unix.SOCK_RAW, 0x0300},
		{unix.AF_VSOCK, unix.SOCK_STREAM, 0},
		{unix.AF_ALG, unix.SOCK_SEQPACKET, 0},
	} {
		c := c
		name := fmt.Sprintf("socket %d %d %d", c.fam, c.typ, c.proto)
		t.Run(name, func(t *testing.T) {
			o := o.sub(t)
			t.Parallel()
			got := o.probe("socket", strconv.Itoa(c.fam), strconv.Itoa(c.typ), strconv.Itoa(c.proto))
			if got != "err EACCES" {
				t.Errorf("%s: got %q, want \"err EACCES\"", name, got)
			}
		})
	}

	for _, c := range []struct {
		fam, typ int
		want     string
	}{
		{unix.AF_UNIX, unix.SOCK_STREAM, "ok"},
		{unix.AF_UNIX, unix.SOCK_DGRAM, "ok"},
		{unix.AF_UNIX, unix.SOCK_SEQPACKET, "ok"},
		{unix.AF_INET, unix.SOCK_STREAM, "err EACCES"},
		{unix.AF_INET6, unix.SOCK_DGRAM, "err EACCES"},
		{unix.AF_NETLINK, unix.SOCK_RAW, "err EACCES"},
		{unix.AF_TIPC, unix.SOCK_SEQPACKET, "err EACCES"},
	} {
		c := c
		name := fmt.Sprintf("socketpair %d %d", c.fam, c.typ)
		t.Run(name, func(t *testing.T) {
			o := o.sub(t)
			t.Parallel()
			if got := o.probe("socketpair", strconv.Itoa(c.fam), strconv.Itoa(c.typ)); got != c.want {
				t.Errorf("%s: got %q, want %q", name, got, c.want)
			}
		})
	}
}

// refusal is one system call the sandbox must refuse: the probe
// subcommand that tries it, the system call and its arguments as the probe
// passes them (ptr stands for a pointer), and, where the contract pins it,
// the errno.
type refusal struct {
	args   []string
	nr     uint32
	sysarg [6]uint64
	pinned syscall.Errno // 0: the policy table's errno is the expected one
}

// ptr stands for a pointer argument.
const ptr = 0x7f0000001000

func a(v ...uint64) (out [6]uint64) {
	copy(out[:], v)
	return out
}

// sigchld is the exit signal in clone flags.
const sigchld = uint64(unix.SIGCHLD)

// neg is a negative int as the kernel receives it in a register.
func neg(v int64) uint64 { return uint64(v) }

// refusals are the calls a container must not be able to make.
var refusals = []refusal{
	// Mounts and namespaces.
	{[]string{"mount"}, unix.SYS_MOUNT, a(ptr, ptr, ptr, 0, ptr), 0},
	{[]string{"mount-bind", "/", "/tmp"}, unix.SYS_MOUNT, a(ptr, ptr, ptr, unix.MS_BIND|unix.MS_REC, ptr), 0},
	{[]string{"mount", "proc", "/tmp", "proc"}, unix.SYS_MOUNT, a(ptr, ptr, ptr, 0, ptr), 0},
	{[]string{"umount", "/tmp"}, unix.SYS_UMOUNT2, a(ptr, unix.MNT_DETACH), 0},
	{[]string{"umount", "/proc"}, unix.SYS_UMOUNT2, a(ptr, unix.MNT_DETACH), 0},
	{[]string{"pivot_root", "/tmp", "/tmp"}, unix.SYS_PIVOT_ROOT, a(ptr, ptr), 0},
	{[]string{"chroot", "/tmp"}, unix.SYS_CHROOT, a(ptr), 0},
	{[]string{"fsopen"}, unix.SYS_FSOPEN, a(ptr, 0), 0},
	{[]string{"fsmount"}, unix.SYS_FSMOUNT, a(987, 0, 0), 0},
	{[]string{"open_tree"}, unix.SYS_OPEN_TREE, a(neg(unix.AT_FDCWD), ptr, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC), 0},
	{[]string{"move_mount"}, unix.SYS_MOVE_MOUNT, a(987, ptr, neg(unix.AT_FDCWD), ptr, unix.MOVE_MOUNT_F_EMPTY_PATH), 0},
	{[]string{"mount_setattr"}, unix.SYS_MOUNT_SETATTR, a(neg(unix.AT_FDCWD), ptr, 0, ptr, 32), 0},
	{[]string{"unshare", "user"}, unix.SYS_UNSHARE, a(unix.CLONE_NEWUSER), 0},
	{[]string{"unshare", "mnt"}, unix.SYS_UNSHARE, a(unix.CLONE_NEWNS), 0},
	{[]string{"unshare", "pid"}, unix.SYS_UNSHARE, a(unix.CLONE_NEWPID), 0},
	{[]string{"unshare", "net"}, unix.SYS_UNSHARE, a(unix.CLONE_NEWNET), 0},
	{[]string{"unshare", "ipc"}, unix.SYS_UNSHARE, a(unix.CLONE_NEWIPC), 0},
	{[]string{"unshare", "uts"}, unix.SYS_UNSHARE, a(unix.CLONE_NEWUTS), 0},
	{[]string{"unshare", "cgroup"}, unix.SYS_UNSHARE, a(unix.CLONE_NEWCGROUP), 0},
	{[]string{"unshare", "time"}, unix.SYS_UNSHARE, a(unix.CLONE_NEWTIME), 0},
	{[]string{"unshare", "user,mnt"}, unix.SYS_UNSHARE, a(unix.CLONE_NEWUSER | unix.CLONE_NEWNS), 0},
	{[]string{"setns", "mnt"}, unix.SYS_SETNS, a(3, 0), 0},
	{[]string{"setns", "net"}, unix.SYS_SETNS, a(3, 0), 0},
	{[]string{"setns", "user"}, unix.SYS_SETNS, a(3, 0), 0},
	{[]string{"setns", "pid"}, unix.SYS_SETNS, a(3, 0), 0},
	// The contract pins clone with any CLONE_NEW* flag to EPERM and clone3
	// to ENOSYS.
	{[]string{"clone", "user"}, unix.SYS_CLONE, a(unix.CLONE_NEWUSER | sigchld), unix.EPERM},
	{[]string{"clone", "mnt"}, unix.SYS_CLONE, a(unix.CLONE_NEWNS | sigchld), unix.EPERM},
	{[]string{"clone", "pid"}, unix.SYS_CLONE, a(unix.CLONE_NEWPID | sigchld), unix.EPERM},
	{[]string{"clone", "net"}, unix.SYS_CLONE, a(unix.CLONE_NEWNET | sigchld), unix.EPERM},
	{[]string{"clone", "ipc"}, unix.SYS_CLONE, a(unix.CLONE_NEWIPC | sigchld), unix.EPERM},
	{[]string{"clone", "uts"}, unix.SYS_CLONE, a(unix.CLONE_NEWUTS | sigchld), unix.EPERM},
	{[]string{"clone", "cgroup"}, unix.SYS_CLONE, a(unix.CLONE_NEWCGROUP | sigchld), unix.EPERM},
	{[]string{"clone", "user,net"}, unix.SYS_CLONE, a(unix.CLONE_NEWUSER | unix.CLONE_NEWNET | sigchld), unix.EPERM},
	{[]string{"clone3"}, unix.SYS_CLONE3, a(ptr, 64), unix.ENOSYS},

	// Other processes.
	{[]string{"ptrace-traceme"}, unix.SYS_PTRACE, a(unix.PTRACE_TRACEME), 0},
	{[]string{"ptrace-attach", "1"}, unix.SYS_PTRACE, a(unix.PTRACE_ATTACH, 1), 0},
	{[]string{"process_vm_readv"}, unix.SYS_PROCESS_VM_READV, a(2, ptr, 1, ptr, 1, 0), 0},
	{[]string{"process_vm_readv", "1"}, unix.SYS_PROCESS_VM_READV, a(1, ptr, 1, ptr, 1, 0), 0},
	{[]string{"process_vm_writev"}, unix.SYS_PROCESS_VM_WRITEV, a(2, ptr, 1, ptr, 1, 0), 0},

	// Kernel facilities.
	{[]string{"bpf"}, unix.SYS_BPF, a(unix.BPF_MAP_CREATE, ptr, 128), 0},
	{[]string{"perf_event_open"}, unix.SYS_PERF_EVENT_OPEN, a(ptr, 0, neg(-1), neg(-1), unix.PERF_FLAG_FD_CLOEXEC), 0},
	{[]string{"userfaultfd"}, unix.SYS_USERFAULTFD, a(unix.O_CLOEXEC | 1), 0},
	{[]string{"io_uring_setup"}, unix.SYS_IO_URING_SETUP, a(1, ptr), 0},
	{[]string{"io_uring_enter"}, unix.SYS_IO_URING_ENTER, a(987), 0},
	{[]string{"io_uring_register"}, unix.SYS_IO_URING_REGISTER, a(987), 0},
	{[]string{"keyctl"}, unix.SYS_KEYCTL, a(unix.KEYCTL_GET_KEYRING_ID, neg(unix.KEY_SPEC_SESSION_KEYRING)), 0},
	{[]string{"add_key"}, unix.SYS_ADD_KEY, a(ptr, ptr, ptr, 1, neg(unix.KEY_SPEC_PROCESS_KEYRING)), 0},
	{[]string{"request_key"}, unix.SYS_REQUEST_KEY, a(ptr, ptr, 0, neg(unix.KEY_SPEC_PROCESS_KEYRING)), 0},
	{[]string{"open_by_handle_at"}, unix.SYS_OPEN_BY_HANDLE_AT, a(987, ptr, unix.O_RDONLY), 0},
	{[]string{"kexec_load"}, unix.SYS_KEXEC_LOAD, a(), 0},
	{[]string{"kexec_file_load"}, unix.SYS_KEXEC_FILE_LOAD, a(987, 987, 1, ptr, 4), 0},
	{[]string{"init_module"}, unix.SYS_INIT_MODULE, a(0, 0, ptr), 0},
	{[]string{"finit_module"}, unix.SYS_FINIT_MODULE, a(987, ptr, 0), 0},
	{[]string{"delete_module"}, unix.SYS_DELETE_MODULE, a(ptr, unix.O_NONBLOCK), 0},
	{[]string{"reboot"}, unix.SYS_REBOOT, a(unix.LINUX_REBOOT_MAGIC1, unix.LINUX_REBOOT_MAGIC2, unix.LINUX_REBOOT_CMD_CAD_OFF), 0},
	{[]string{"swapon"}, unix.SYS_SWAPON, a(ptr, 0), 0},
	{[]string{"swapoff"}, unix.SYS_SWAPOFF, a(ptr), 0},
	{[]string{"syslog"}, unix.SYS_SYSLOG, a(10), 0},
	{[]string{"acct"}, unix.SYS_ACCT, a(0), 0},
	{[]string{"sethostname", "evil"}, unix.SYS_SETHOSTNAME, a(ptr, 4), 0},
	// socket through the x32 ABI: the same call with __X32_SYSCALL_BIT.
	{[]string{"syscall", "0x40000029", "2", "1", "0"}, 0x40000029, a(2, 1, 0), 0},
}

// expected is the errno a container must get for c: the contract's where
// it pins one, else the policy table's. It fails t if the policy does not
// refuse the call, or refuses it otherwise than the contract says.
func expected(t *testing.T, c refusal) syscall.Errno {
	t.Helper()
	act := policy.Decide(c.nr, c.sysarg)
	if act.Kind() != policy.KindErrno {
		t.Errorf("the policy table does not refuse %s (%v): %v", strings.Join(c.args, " "), c.sysarg, act)
		if c.pinned != 0 {
			return c.pinned
		}
		return unix.EPERM
	}
	got := syscall.Errno(act.Errno())
	if c.pinned != 0 && got != c.pinned {
		t.Errorf("the policy table answers %s with %v; the contract says %v", strings.Join(c.args, " "), act, errnoName(c.pinned))
		return c.pinned
	}
	return got
}

// The policy table refuses every call in refusals, and agrees with the
// contract where it pins the errno. Needs no root.
func TestPolicyRefusesContractCalls(t *testing.T) {
	for _, c := range refusals {
		expected(t, c)
	}
	// socket of every family and type: EACCES, except that AF_INET and
	// AF_INET6 go to the network service (which refuses them too without
	// a grant: TestSockets), and so does AF_UNIX (which it lets through:
	// TestUnixSockets); socketpair: AF_UNIX only.
	for fam := uint64(0); fam <= 47; fam++ {
		for _, typ := range []uint64{unix.SOCK_STREAM, unix.SOCK_DGRAM, unix.SOCK_RAW, unix.SOCK_SEQPACKET} {
			wantSocket := policy.Fail(policy.EACCES)
			if fam == unix.AF_INET || fam == unix.AF_INET6 || fam == unix.AF_UNIX {
				wantSocket = policy.Notify
			}
			if act := policy.Decide(unix.SYS_SOCKET, a(fam, typ, 0)); act != wantSocket {
				t.Errorf("policy for socket(%d, %d): %v, want %v", fam, typ, act, wantSocket)
			}
			want := policy.Fail(policy.EACCES)
			if fam == unix.AF_UNIX {
				want = policy.Allow
			}
			if act := policy.Decide(unix.SYS_SOCKETPAIR, a(fam, typ, 0, ptr)); act != want {
				t.Errorf("policy for socketpair(%d, %d): %v, want %v", fam, typ, act, want)
			}
		}
	}
}

// Each call in refusals is refused, inside a container, with its errno.
func TestSyscallRefusals(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	for _, c := range refusals {
		c := c
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			o := o.sub(t)
			t.Parallel()
			want := "err " + errnoName(expected(t, c))
			if got := o.probe(c.args...); got != want {
				t.Errorf("probe %s: got %q, want %q", strings.Join(c.args, " "), got, want)
			}
		})
	}
}

// ioctl is an allowlist: inside a container, SIOCGIFCONF on a socket from
// the network service (a socket of the host's network namespace) does not
// list the host's interfaces, and the terminal, FIONREAD and socket-queue
// requests programs need reach the kernel. Refused requests answer ENOTTY,
// so where the kernel would say ENOTTY too the descriptor is a bad one: a
// request that reaches the kernel then answers EBADF.
func TestIoctl(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	cases := []struct{ on, req, want string }{
		{"udp", "SIOCGIFCONF", "err ENOTTY"},
		{"tcp", "SIOCGIFCONF", "err ENOTTY"},
		{"badfd", "SIOCGIFCONF", "err ENOTTY"}, // the kernel would say EBADF
		{"udp", "SIOCGIFINDEX", "err ENOTTY"},
		{"devnull", "TIOCSTI", "err ENOTTY"},
		{"devnull", "TCGETS", "err ENOTTY"}, // the kernel's own answer: not a terminal
		{"badfd", "TCGETS", "err EBADF"},
		{"badfd", "TIOCGWINSZ", "err EBADF"},
		{"pipe", "FIONREAD", "ok"},
		{"udp", "FIONREAD", "ok"},
		{"pipe", "FIONBIO", "ok"},
		{"udp", "TIOCOUTQ", "ok"},
		{"tcp", "SIOCATMARK", "ok"},
	}
	var cmds []string
	for _, c := range cases {
		cmds = append(cmds, "ioctl "+c.on+" "+c.req)
	}
	// The egress grant lets socket() through to the network service, which
	// answers with a socket of the host's; nothing is sent.
	r := o.netScript([]string{"--egress", "127.0.0.1:9"}, cmds...)
	if r.code != 0 {
		t.Fatalf("ioctl probes did not run:\n%s", r)
	}
	got := lines(r.stdout)
	for i, c := range cases {
		g := "(no line)"
		if i < len(got) {
			g = got[i]
		}
		if g != c.want {
			t.Errorf("ioctl %s on %s: got %q, want %q", c.req, c.on, g, c.want)
		}
	}
}

// A system call through the i386 ABI (int $0x80) kills the process: the
// policy is written for x86_64 numbers, and i386 numbers mean other calls.
func TestI386ABIKilled(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	r := o.run("run", rootfsDir, "/bin/probe", "int80-socket")
	if r.code != 128+int(syscall.SIGSYS) || strings.Contains(r.stdout, "ok") {
		t.Errorf("socket through int $0x80: want the probe killed by SIGSYS (oak exit %d)\n%s", 128+int(syscall.SIGSYS), r)
	}
}

// The refusals still hold in a child process and after an execve (the
// filter is inherited and cannot be shed).
func TestRefusalsInherited(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	script := "/bin/probe unshare user; /bin/sh -c '/bin/probe socket 2 1'; (/bin/probe mount)"
	r := o.run("run", rootfsDir, "/bin/sh", "-c", script)
	want := "err EPERM\nerr EACCES\nerr EPERM\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("refusals in children: want %q\n%s", want, r)
	}
}

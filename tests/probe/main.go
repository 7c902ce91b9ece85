//go:build linux

// Command probe runs inside an Oak container and tries one thing the
// integration tests want to know about: a system call that should be
// refused, a file that should not be readable or writable, a resource that
// should run out. It prints one line, "ok" or "err NAME" where NAME is the
// errno symbol (EPERM, EACCES, ...), and exits 0 either way: the test
// decides what the answer should have been.
//
// A few subcommands are informational and print other output (uid-map,
// status, procs, fds, env, ls, socket-sweep, ...).
//
// The probe is built with CGO_ENABLED=0 so that it runs in any image. It
// uses raw system calls rather than os.Open where it matters, so that the
// Go runtime does not open file descriptors (epoll) of its own behind the
// probe's back.
//
// Arguments are chosen so that a call the sandbox wrongly lets through
// usually gives a different answer from the refusal (a bad file descriptor,
// an unprivileged variant that the kernel would allow, a harmless command),
// so that a test expecting the sandbox's errno can fail. Nothing here is
// harmful if it does get through: reboot uses LINUX_REBOOT_CMD_CAD_OFF,
// acct turns accounting off, kexec_load and init_module get no image.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

type command struct {
	usage string
	run   func(args []string) error
}

// commands maps each subcommand to what it does. Subcommands that return
// an error print "err NAME"; a nil error prints "ok". Informational
// subcommands print their own output and return errInfo.
var commands = map[string]command{
	// Sockets.
	// The spawn capability (run -d --spawn).
	"spawn":        {"[-H NAME:VALUE]... METHOD PATH [BODY] (an API request over $OAK_SPAWN_FD; prints STATUS BODY)", doSpawn},
	"socket":       {"FAMILY TYPE [PROTO]", doSocket},
	"socket-sweep": {"(families 0..47 x several types: one line each)", doSocketSweep},
	"socketpair":   {"[FAMILY [TYPE]] (default AF_UNIX SOCK_STREAM)", doSocketpair},

	// Mounts and namespaces.
	"mount":         {"[SRC TARGET FSTYPE] (default tmpfs on /tmp)", doMount},
	"mount-bind":    {"SRC TARGET", doMountBind},
	"umount":        {"[TARGET] (default /tmp)", doUmount},
	"pivot_root":    {"[NEW OLD] (default /tmp /tmp)", doPivotRoot},
	"chroot":        {"[DIR] (default /tmp)", doChroot},
	"unshare":       {"FLAGS (comma list: user,mnt,pid,net,ipc,uts,cgroup,time or a number)", doUnshare},
	"setns":         {"[NS] (default mnt: opens /proc/self/ns/NS)", doSetns},
	"clone":         {"FLAGS (as for unshare; raw clone, the child exits at once)", doClone},
	"clone3":        {"(raw clone3 with no flags)", doClone3},
	"fsopen":        {"(fsopen tmpfs)", doFsopen},
	"fsmount":       {"(fsmount on a bad fd)", doFsmount},
	"open_tree":     {"(open_tree / OPEN_TREE_CLONE)", doOpenTree},
	"move_mount":    {"(move_mount on a bad fd)", doMoveMount},
	"mount_setattr": {"(mount_setattr / to read-write)", doMountSetattr},

	// Other processes.
	"ptrace-traceme":    {"", doPtraceTraceme},
	"ptrace-attach":     {"[PID] (default 1)", doPtraceAttach},
	"process_vm_readv":  {"[PID] (default self)", doProcessVMReadv},
	"process_vm_writev": {"[PID] (default self)", doProcessVMWritev},
	"kill":              {"PID [SIG] (default 0: only check)", doKill},

	// Kernel facilities.
	"bpf":               {"(BPF_MAP_CREATE of a tiny array)", doBPF},
	"perf_event_open":   {"(task clock of self, user space only)", doPerfEventOpen},
	"userfaultfd":       {"(UFFD_USER_MODE_ONLY)", doUserfaultfd},
	"io_uring_setup":    {"", doIOUringSetup},
	"io_uring_enter":    {"(bad fd)", doIOUringEnter},
	"io_uring_register": {"(bad fd)", doIOUringRegister},
	"keyctl":            {"(KEYCTL_GET_KEYRING_ID of the session keyring)", doKeyctl},
	"add_key":           {"(user key in the process keyring)", doAddKey},
	"request_key":       {"(user key, no callout)", doRequestKey},
	"open_by_handle_at": {"(bad mount fd)", doOpenByHandleAt},
	"kexec_load":        {"(no segments)", doKexecLoad},
	"kexec_file_load":   {"(bad fds)", doKexecFileLoad},
	"init_module":       {"(empty image)", doInitModule},
	"finit_module":      {"(bad fd)", doFinitModule},
	"delete_module":     {"(nonexistent module)", doDeleteModule},
	"reboot":            {"(LINUX_REBOOT_CMD_CAD_OFF)", doReboot},
	"swapon":            {"(nonexistent file)", doSwapon},
	"swapoff":           {"(nonexistent file)", doSwapoff},
	"syslog":            {"(SYSLOG_ACTION_SIZE_BUFFER)", doSyslog},
	"acct":              {"(turn accounting off)", doAcct},
	"sethostname":       {"NAME", doSethostname},
	"mknod":             {"PATH (character device 1:3)", doMknod},
	"syscall":           {"NR [ARG...] (raw syscall, integer args)", doRawSyscall},
	"ioctl":             {"ON REQUEST (ON: udp, tcp (sockets from the network service), pipe, devnull, badfd; REQUEST: a name in ioctlRequests or a number)", doIoctl},
	"int80-socket":      {"(socket(AF_INET, SOCK_STREAM) through the i386 ABI, int $0x80)", doInt80Socket},

	// Files.
	"write-file": {"PATH (create or truncate, write one byte)", doWriteFile},
	"read-file":  {"PATH", doReadFile},
	"read-len":   {"PATH (prints the number of bytes read, up to 16 MiB)", doReadLen},
	"cat":        {"PATH (prints the content)", doCat},
	"mkdir":      {"PATH", doMkdir},
	"unlink":     {"PATH", doUnlink},
	"chmod":      {"PATH", doChmod},
	"symlink":    {"PATH (a new symlink at PATH)", doSymlink},
	"rename":     {"OLD NEW", doRename},
	"fill":       {"PATH MiB (write MiB mebibytes, stop at the first error)", doFill},
	"ls":         {"DIR (names, sorted, one a line)", doLs},

	// Resources.
	"alloc":    {"MiB (touch MiB mebibytes of anonymous memory)", doAlloc},
	"forkbomb": {"(start a fork bomb in the background and return: every copy forks forever, retrying on failure)", doForkBomb},

	// Information.
	"uid-map":     {"", func([]string) error { return printFile("/proc/self/uid_map") }},
	"gid-map":     {"", func([]string) error { return printFile("/proc/self/gid_map") }},
	"id":          {"", doID},
	"status":      {"(Uid, Gid, Cap*, NoNewPrivs, Seccomp lines of /proc/self/status)", doStatus},
	"pids":        {"(the numeric entries of /proc, space separated)", doPids},
	"procs":       {"(pid and command line of every visible process)", doProcs},
	"procs-after": {"DELAY_MS HOLD_MS [MARKER...] (sleep, print procs, sleep)", doProcsAfter},
	"fds":         {"(open file descriptors of the probe, but the one used to list them)", doFds},
	"env":         {"(the environment, sorted)", doEnv},
	"hostname":    {"", doHostname},
	"sleep":       {"MS", doSleep},
	"statfs":      {"PATH (prints \"size BYTES\" and \"free BYTES\")", doStatfs},
	"spin":        {"MS (busy loop for MS wall ms, prints \"wall MS cpu MS\")", doSpin},
}

// errInfo is returned by informational subcommands that printed their own
// output.
var errInfo = errors.New("info")

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	c, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "probe: unknown subcommand %q\n", os.Args[1])
		usage()
	}
	err := c.run(os.Args[2:])
	switch {
	case err == nil:
		fmt.Println("ok")
	case err == errInfo:
	default:
		fmt.Println("err", errName(err))
	}
}

func usage() {
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(os.Stderr, "usage: probe SUBCOMMAND [ARGS]")
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %s %s\n", n, commands[n].usage)
	}
	os.Exit(2)
}

// errName gives the errno symbol of err, "errnoN" for an errno without a
// name, or "other:TEXT" for an error that is no errno.
func errName(err error) string {
	var e syscall.Errno
	if errors.As(err, &e) {
		if n := unix.ErrnoName(e); n != "" {
			return n
		}
		return fmt.Sprintf("errno%d", int(e))
	}
	return "other:" + strings.ReplaceAll(err.Error(), "\n", " ")
}

func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

func die(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "probe: "+format+"\n", args...)
	os.Exit(2)
}

func intArg(args []string, i int, def int) int {
	if i >= len(args) {
		return def
	}
	n, err := strconv.ParseInt(args[i], 0, 64)
	if err != nil {
		die("bad number %q", args[i])
	}
	return int(n)
}

func strArg(args []string, i int, def string) string {
	if i >= len(args) {
		return def
	}
	return args[i]
}

func ptr(s string) uintptr {
	p, err := unix.BytePtrFromString(s)
	if err != nil {
		die("bad string %q", s)
	}
	return uintptr(unsafe.Pointer(p))
}

func raw(nr uintptr, a ...uintptr) error {
	var v [6]uintptr
	copy(v[:], a)
	_, _, e := unix.Syscall6(nr, v[0], v[1], v[2], v[3], v[4], v[5])
	return errnoErr(e)
}

// rawFd is raw for calls that return a file descriptor, which it closes.
func rawFd(nr uintptr, a ...uintptr) error {
	var v [6]uintptr
	copy(v[:], a)
	r, _, e := unix.Syscall6(nr, v[0], v[1], v[2], v[3], v[4], v[5])
	if e != 0 {
		return e
	}
	unix.Close(int(r))
	return nil
}

// ---- sockets ----

func doSocket(args []string) error {
	if len(args) < 2 {
		die("socket FAMILY TYPE [PROTO]")
	}
	fd, err := unix.Socket(intArg(args, 0, 0), intArg(args, 1, 0), intArg(args, 2, 0))
	if err == nil {
		unix.Close(fd)
	}
	return err
}

// sweepTypes are the socket types tried for every family, with flag bits
// that a filter matching the type argument exactly would miss.
var sweepTypes = []int{
	unix.SOCK_STREAM, unix.SOCK_DGRAM, unix.SOCK_RAW, unix.SOCK_SEQPACKET,
	unix.SOCK_RDM, unix.SOCK_PACKET,
	unix.SOCK_STREAM | unix.SOCK_CLOEXEC, unix.SOCK_DGRAM | unix.SOCK_NONBLOCK,
}

func doSocketSweep(args []string) error {
	var b strings.Builder
	for fam := 0; fam <= 47; fam++ {
		for _, typ := range sweepTypes {
			fd, err := unix.Socket(fam, typ, 0)
			res := "ok"
			if err != nil {
				res = "err " + errName(err)
			} else {
				unix.Close(fd)
			}
			fmt.Fprintf(&b, "%d %d %s\n", fam, typ, res)
		}
	}
	os.Stdout.WriteString(b.String())
	return errInfo
}

func doSocketpair(args []string) error {
	fds, err := unix.Socketpair(intArg(args, 0, unix.AF_UNIX), intArg(args, 1, unix.SOCK_STREAM), 0)
	if err == nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
	}
	return err
}

// ---- mounts and namespaces ----

func doMount(args []string) error {
	return unix.Mount(strArg(args, 0, "tmpfs"), strArg(args, 1, "/tmp"), strArg(args, 2, "tmpfs"), 0, "")
}

func doMountBind(args []string) error {
	return unix.Mount(strArg(args, 0, "/"), strArg(args, 1, "/tmp"), "", unix.MS_BIND|unix.MS_REC, "")
}

func doUmount(args []string) error {
	return unix.Unmount(strArg(args, 0, "/tmp"), unix.MNT_DETACH)
}

func doPivotRoot(args []string) error {
	return unix.PivotRoot(strArg(args, 0, "/tmp"), strArg(args, 1, "/tmp"))
}

func doChroot(args []string) error {
	return unix.Chroot(strArg(args, 0, "/tmp"))
}

var nsFlags = map[string]int{
	"user":   unix.CLONE_NEWUSER,
	"mnt":    unix.CLONE_NEWNS,
	"pid":    unix.CLONE_NEWPID,
	"net":    unix.CLONE_NEWNET,
	"ipc":    unix.CLONE_NEWIPC,
	"uts":    unix.CLONE_NEWUTS,
	"cgroup": unix.CLONE_NEWCGROUP,
	"time":   unix.CLONE_NEWTIME,
}

func parseFlags(s string) int {
	if n, err := strconv.ParseInt(s, 0, 64); err == nil {
		return int(n)
	}
	f := 0
	for _, name := range strings.Split(s, ",") {
		v, ok := nsFlags[name]
		if !ok {
			die("unknown namespace %q", name)
		}
		f |= v
	}
	return f
}

func doUnshare(args []string) error {
	if len(args) < 1 {
		die("unshare FLAGS")
	}
	return unix.Unshare(parseFlags(args[0]))
}

func doSetns(args []string) error {
	ns := strArg(args, 0, "mnt")
	fd, err := unix.Open("/proc/self/ns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		// Without the namespace file, try a directory: the kernel would
		// answer EINVAL, the sandbox its own errno.
		fd, err = unix.Open("/", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
	}
	defer unix.Close(fd)
	return unix.Setns(fd, 0)
}

// doClone makes a raw clone system call with the given namespace flags. If
// the call is wrongly let through, the child (a copy of this process with
// one thread) exits at once, before touching anything the Go runtime owns.
func doClone(args []string) error {
	if len(args) < 1 {
		die("clone FLAGS")
	}
	flags := uintptr(parseFlags(args[0])) | uintptr(unix.SIGCHLD)
	pid, errno := rawClone(flags)
	if errno != 0 {
		return errno
	}
	var ws unix.WaitStatus
	unix.Wait4(int(pid), &ws, 0, nil)
	return nil
}

//go:nosplit
//go:norace
func rawClone(flags uintptr) (uintptr, syscall.Errno) {
	r, _, e := syscall.RawSyscall6(unix.SYS_CLONE, flags, 0, 0, 0, 0, 0)
	if e == 0 && r == 0 {
		syscall.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
	}
	return r, e
}

func doClone3(args []string) error {
	// struct clone_args: flags, pidfd, child_tid, parent_tid, exit_signal,
	// stack, stack_size, tls (8 x u64 = CLONE_ARGS_SIZE_VER0).
	var ca [8]uint64
	ca[4] = uint64(unix.SIGCHLD)
	pid, errno := rawClone3(uintptr(unsafe.Pointer(&ca[0])), unsafe.Sizeof(ca))
	if errno != 0 {
		return errno
	}
	var ws unix.WaitStatus
	unix.Wait4(int(pid), &ws, 0, nil)
	return nil
}

//go:nosplit
//go:norace
func rawClone3(args, size uintptr) (uintptr, syscall.Errno) {
	r, _, e := syscall.RawSyscall(unix.SYS_CLONE3, args, size, 0)
	if e == 0 && r == 0 {
		syscall.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
	}
	return r, e
}

func doFsopen(args []string) error {
	return rawFd(unix.SYS_FSOPEN, ptr("tmpfs"), 0)
}

func doFsmount(args []string) error {
	return rawFd(unix.SYS_FSMOUNT, 987, 0, 0)
}

func doOpenTree(args []string) error {
	return rawFd(unix.SYS_OPEN_TREE, atFdcwd(), ptr("/"), unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
}

func doMoveMount(args []string) error {
	return raw(unix.SYS_MOVE_MOUNT, 987, ptr(""), atFdcwd(), ptr("/tmp"), unix.MOVE_MOUNT_F_EMPTY_PATH)
}

func doMountSetattr(args []string) error {
	// struct mount_attr: attr_set, attr_clr, propagation, userns_fd.
	attr := [4]uint64{0, unix.MOUNT_ATTR_RDONLY, 0, 0}
	return raw(unix.SYS_MOUNT_SETATTR, atFdcwd(), ptr("/"), 0, uintptr(unsafe.Pointer(&attr[0])), unsafe.Sizeof(attr))
}

func atFdcwd() uintptr {
	v := int64(unix.AT_FDCWD)
	return uintptr(v)
}

// ---- other processes ----

func doPtraceTraceme(args []string) error {
	return raw(unix.SYS_PTRACE, unix.PTRACE_TRACEME, 0, 0, 0)
}

func doPtraceAttach(args []string) error {
	pid := intArg(args, 0, 1)
	err := raw(unix.SYS_PTRACE, unix.PTRACE_ATTACH, uintptr(pid), 0, 0)
	if err == nil {
		// Let the tracee go again: wait for its attach stop, then detach.
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, unix.WALL, nil)
		raw(unix.SYS_PTRACE, unix.PTRACE_DETACH, uintptr(pid), 0, 0)
	}
	return err
}

func doProcessVMReadv(args []string) error {
	src := []byte("probe")
	dst := make([]byte, len(src))
	_, err := unix.ProcessVMReadv(intArg(args, 0, os.Getpid()),
		[]unix.Iovec{{Base: &dst[0], Len: uint64(len(dst))}},
		[]unix.RemoteIovec{{Base: uintptr(unsafe.Pointer(&src[0])), Len: len(src)}}, 0)
	return err
}

func doProcessVMWritev(args []string) error {
	src := []byte("probe")
	dst := make([]byte, len(src))
	_, err := unix.ProcessVMWritev(intArg(args, 0, os.Getpid()),
		[]unix.Iovec{{Base: &src[0], Len: uint64(len(src))}},
		[]unix.RemoteIovec{{Base: uintptr(unsafe.Pointer(&dst[0])), Len: len(dst)}}, 0)
	return err
}

func doKill(args []string) error {
	return unix.Kill(intArg(args, 0, 0), syscall.Signal(intArg(args, 1, 0)))
}

// ---- kernel facilities ----

func doBPF(args []string) error {
	// union bpf_attr for BPF_MAP_CREATE: map_type, key_size, value_size,
	// max_entries, map_flags, ...
	var attr [32]uint32
	attr[0] = unix.BPF_MAP_TYPE_ARRAY
	attr[1] = 4
	attr[2] = 4
	attr[3] = 1
	return rawFd(unix.SYS_BPF, unix.BPF_MAP_CREATE, uintptr(unsafe.Pointer(&attr[0])), unsafe.Sizeof(attr))
}

func doPerfEventOpen(args []string) error {
	attr := unix.PerfEventAttr{
		Type:   unix.PERF_TYPE_SOFTWARE,
		Config: unix.PERF_COUNT_SW_TASK_CLOCK,
		Bits:   unix.PerfBitDisabled | unix.PerfBitExcludeKernel | unix.PerfBitExcludeHv,
	}
	attr.Size = uint32(unsafe.Sizeof(attr))
	fd, err := unix.PerfEventOpen(&attr, 0, -1, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err == nil {
		unix.Close(fd)
	}
	return err
}

func doUserfaultfd(args []string) error {
	const uffdUserModeOnly = 1
	return rawFd(unix.SYS_USERFAULTFD, unix.O_CLOEXEC|uffdUserModeOnly)
}

func doIOUringSetup(args []string) error {
	var params [15]uint64 // struct io_uring_params is 120 bytes
	return rawFd(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&params[0])))
}

func doIOUringEnter(args []string) error {
	return raw(unix.SYS_IO_URING_ENTER, 987, 0, 0, 0, 0, 0)
}

func doIOUringRegister(args []string) error {
	return raw(unix.SYS_IO_URING_REGISTER, 987, 0, 0, 0)
}

func doKeyctl(args []string) error {
	_, err := unix.KeyctlInt(unix.KEYCTL_GET_KEYRING_ID, unix.KEY_SPEC_SESSION_KEYRING, 0, 0, 0)
	return err
}

func doAddKey(args []string) error {
	_, err := unix.AddKey("user", "oak-probe", []byte("x"), unix.KEY_SPEC_PROCESS_KEYRING)
	return err
}

func doRequestKey(args []string) error {
	ring := int64(unix.KEY_SPEC_PROCESS_KEYRING)
	return raw(unix.SYS_REQUEST_KEY, ptr("user"), ptr("oak-probe-none"), 0, uintptr(ring))
}

func doOpenByHandleAt(args []string) error {
	// The kernel checks the mount fd before the capability: a bad fd makes
	// a call that got through answer EBADF rather than EPERM.
	var h struct {
		bytes uint32
		typ   int32
		data  [8]byte
	}
	h.bytes = 8
	h.typ = 1
	return rawFd(unix.SYS_OPEN_BY_HANDLE_AT, 987, uintptr(unsafe.Pointer(&h)), unix.O_RDONLY)
}

func doKexecLoad(args []string) error {
	return raw(unix.SYS_KEXEC_LOAD, 0, 0, 0, 0)
}

func doKexecFileLoad(args []string) error {
	const kexecFileNoInitramfs = 4
	return raw(unix.SYS_KEXEC_FILE_LOAD, 987, 987, 1, ptr(""), kexecFileNoInitramfs)
}

func doInitModule(args []string) error {
	return raw(unix.SYS_INIT_MODULE, 0, 0, ptr(""))
}

func doFinitModule(args []string) error {
	return raw(unix.SYS_FINIT_MODULE, 987, ptr(""), 0)
}

func doDeleteModule(args []string) error {
	return raw(unix.SYS_DELETE_MODULE, ptr("oak_probe_none"), unix.O_NONBLOCK)
}

func doReboot(args []string) error {
	return unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF)
}

func doSwapon(args []string) error {
	return raw(unix.SYS_SWAPON, ptr("/tmp/oak-probe-no-swap"), 0)
}

func doSwapoff(args []string) error {
	return raw(unix.SYS_SWAPOFF, ptr("/tmp/oak-probe-no-swap"))
}

func doSyslog(args []string) error {
	const syslogActionSizeBuffer = 10
	_, err := unix.Klogctl(syslogActionSizeBuffer, nil)
	return err
}

func doAcct(args []string) error {
	return raw(unix.SYS_ACCT, 0)
}

func doSethostname(args []string) error {
	return unix.Sethostname([]byte(strArg(args, 0, "oak-probe")))
}

func doMknod(args []string) error {
	return unix.Mknod(strArg(args, 0, "/tmp/oak-probe-null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3)))
}

func doRawSyscall(args []string) error {
	if len(args) < 1 {
		die("syscall NR [ARG...]")
	}
	var v []uintptr
	for i := 1; i < len(args) && i <= 6; i++ {
		v = append(v, uintptr(intArg(args, i, 0)))
	}
	return raw(uintptr(intArg(args, 0, 0)), v...)
}

func doInt80Socket(args []string) error {
	const i386Socket = 359
	r := int80(i386Socket, unix.AF_INET, unix.SOCK_STREAM, 0)
	if int64(int32(r)) < 0 && int64(int32(r)) > -4096 {
		return syscall.Errno(-int32(r))
	}
	unix.Close(int(int32(r)))
	return nil
}

// ---- files ----

func doWriteFile(args []string) error {
	fd, err := unix.Open(strArg(args, 0, ""), unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	_, err = unix.Write(fd, []byte("x"))
	return err
}

func readAll(path string, limit int) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var out []byte
	buf := make([]byte, 64<<10)
	for len(out) < limit {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return out, err
		}
		if n == 0 {
			break
		}
		out = append(out, buf[:n]...)
	}
	return out, nil
}

func doReadFile(args []string) error {
	_, err := readAll(strArg(args, 0, ""), 1<<20)
	return err
}

func doReadLen(args []string) error {
	b, err := readAll(strArg(args, 0, ""), 16<<20)
	if err != nil {
		return err
	}
	fmt.Println(len(b))
	return errInfo
}

func doCat(args []string) error {
	b, err := readAll(strArg(args, 0, ""), 16<<20)
	if err != nil {
		return err
	}
	os.Stdout.Write(b)
	return errInfo
}

func printFile(path string) error {
	return doCat([]string{path})
}

func doMkdir(args []string) error   { return unix.Mkdir(strArg(args, 0, ""), 0o755) }
func doUnlink(args []string) error  { return unix.Unlink(strArg(args, 0, "")) }
func doChmod(args []string) error   { return unix.Chmod(strArg(args, 0, ""), 0o777) }
func doSymlink(args []string) error { return unix.Symlink("/", strArg(args, 0, "")) }
func doRename(args []string) error  { return unix.Rename(strArg(args, 0, ""), strArg(args, 1, "")) }

func doFill(args []string) error {
	path := strArg(args, 0, "")
	mib := intArg(args, 1, 0)
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	buf := bytes.Repeat([]byte{0xa5}, 1<<20)
	for i := 0; i < mib; i++ {
		for off := 0; off < len(buf); {
			n, err := unix.Write(fd, buf[off:])
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return err
			}
			off += n
		}
	}
	return unix.Fsync(fd)
}

// listDir reads the names in dir with raw getdents, so that no fd other
// than the one for the directory is opened. It returns that fd's number.
func listDir(dir string) ([]string, int, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, -1, err
	}
	defer unix.Close(fd)
	var names []string
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			return nil, fd, err
		}
		if n <= 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	sort.Strings(names)
	return names, fd, nil
}

func doLs(args []string) error {
	names, _, err := listDir(strArg(args, 0, "/"))
	if err != nil {
		return err
	}
	for _, n := range names {
		fmt.Println(n)
	}
	return errInfo
}

// ioctlRequests are the requests the ioctl subcommand knows by name
// (x86_64 values), with the size of the buffer each is given.
var ioctlRequests = map[string]struct {
	req  uint
	size int
}{
	"SIOCGIFCONF":  {unix.SIOCGIFCONF, 0}, // given a struct ifconf with a buffer
	"SIOCGIFINDEX": {unix.SIOCGIFINDEX, 40},
	"TCGETS":       {unix.TCGETS, 60},
	"TIOCGWINSZ":   {unix.TIOCGWINSZ, 8},
	"TIOCSTI":      {unix.TIOCSTI, 1},
	"FIONREAD":     {0x541b, 4},
	"FIONBIO":      {0x5421, 4},
	"TIOCOUTQ":     {unix.TIOCOUTQ, 4},
	"SIOCATMARK":   {unix.SIOCATMARK, 4},
}

// doIoctl makes one ioctl on a descriptor of the kind ON. The arguments
// are chosen so that the kernel's answer differs from the filter's refusal
// (ENOTTY) where it can: badfd gets EBADF from the kernel, a socket query
// succeeds.
func doIoctl(args []string) error {
	if len(args) != 2 {
		die("ioctl ON REQUEST")
	}
	var fd int
	var err error
	switch args[0] {
	case "udp":
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	case "tcp":
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	case "pipe":
		var p [2]int
		err = unix.Pipe2(p[:], unix.O_CLOEXEC)
		fd = p[0]
		if err == nil {
			unix.Write(p[1], []byte("abc"))
		}
	case "devnull":
		fd, err = unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
	case "badfd":
		fd = 1000
	default:
		die("ioctl: unknown descriptor kind %q", args[0])
	}
	if err != nil {
		return fmt.Errorf("make %s descriptor: %w", args[0], err)
	}
	r, ok := ioctlRequests[args[1]]
	if !ok {
		n, err := strconv.ParseUint(args[1], 0, 64)
		if err != nil {
			die("ioctl: unknown request %q", args[1])
		}
		r.req, r.size = uint(n), 64
	}
	buf := make([]byte, 4096)
	arg := unsafe.Pointer(&buf[0])
	if args[1] == "SIOCGIFCONF" {
		ifc := struct {
			len int32
			_   int32
			buf uintptr
		}{len: int32(len(buf)), buf: uintptr(unsafe.Pointer(&buf[0]))}
		arg = unsafe.Pointer(&ifc)
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(r.req), uintptr(arg))
		runtime.KeepAlive(buf)
		if e == 0 && ifc.len > 0 {
			fmt.Printf("ok %d bytes of interfaces\n", ifc.len)
			return errInfo
		}
		return errnoErr(e)
	}
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(r.req), uintptr(arg))
	return errnoErr(e)
}

// ---- resources ----

func doAlloc(args []string) error {
	mib := intArg(args, 0, 0)
	const chunk = 8 << 20
	for done := 0; done < mib<<20; done += chunk {
		m, err := unix.Mmap(-1, 0, chunk, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			return err
		}
		for i := 0; i < len(m); i += 4096 {
			m[i] = 1
		}
	}
	return nil
}

// doForkBomb forks one child that forks forever: every copy loops on a raw
// fork, sleeping a millisecond after a failure instead of exiting, so the
// bomb keeps every task slot the container may have. The copies run only
// raw system calls in nosplit code (as a child between fork and exec does);
// nothing of the Go runtime runs in them. The probe itself returns at once.
func doForkBomb(args []string) error {
	if _, errno := rawForkBomb(); errno != 0 {
		return errno
	}
	return nil
}

//go:nosplit
//go:norace
func rawForkBomb() (uintptr, syscall.Errno) {
	r, _, e := syscall.RawSyscall6(unix.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
	if e != 0 || r != 0 {
		return r, e
	}
	bombLoop()
	return 0, 0
}

//go:nosplit
//go:norace
func bombLoop() {
	ts := unix.Timespec{Nsec: 1000000}
	for {
		_, _, e := syscall.RawSyscall6(unix.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
		if e != 0 {
			syscall.RawSyscall(unix.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
		}
	}
}

// ---- information ----

func doID(args []string) error {
	fmt.Printf("uid=%d gid=%d euid=%d egid=%d\n", unix.Getuid(), unix.Getgid(), unix.Geteuid(), unix.Getegid())
	return errInfo
}

func doStatus(args []string) error {
	b, err := readAll("/proc/self/status", 1<<20)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(b), "\n") {
		for _, p := range []string{"Uid:", "Gid:", "Cap", "NoNewPrivs:", "Seccomp:"} {
			if strings.HasPrefix(line, p) {
				fmt.Println(line)
			}
		}
	}
	return errInfo
}

func numericNames(names []string) []int {
	var pids []int
	for _, n := range names {
		if pid, err := strconv.Atoi(n); err == nil {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	return pids
}

func doPids(args []string) error {
	names, _, err := listDir("/proc")
	if err != nil {
		return err
	}
	var s []string
	for _, p := range numericNames(names) {
		s = append(s, strconv.Itoa(p))
	}
	fmt.Println(strings.Join(s, " "))
	return errInfo
}

func doProcs(args []string) error {
	names, _, err := listDir("/proc")
	if err != nil {
		return err
	}
	for _, pid := range numericNames(names) {
		b, err := readAll(fmt.Sprintf("/proc/%d/cmdline", pid), 1<<16)
		if err != nil {
			fmt.Printf("%d ?%s\n", pid, errName(err))
			continue
		}
		fmt.Printf("%d %s\n", pid, strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " ")))
	}
	return errInfo
}

func doProcsAfter(args []string) error {
	time.Sleep(time.Duration(intArg(args, 0, 0)) * time.Millisecond)
	doProcs(nil)
	time.Sleep(time.Duration(intArg(args, 1, 0)) * time.Millisecond)
	return errInfo
}

func doFds(args []string) error {
	names, dirfd, err := listDir("/proc/self/fd")
	if err != nil {
		return err
	}
	var out []string
	for _, fd := range numericNames(names) {
		if fd == dirfd {
			continue
		}
		buf := make([]byte, 4096)
		n, err := unix.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd), buf)
		target := "?"
		if err == nil {
			target = string(buf[:n])
		}
		out = append(out, fmt.Sprintf("%d %s", fd, target))
	}
	fmt.Println(strings.Join(out, "\n"))
	return errInfo
}

func doEnv(args []string) error {
	env := os.Environ()
	sort.Strings(env)
	for _, e := range env {
		fmt.Println(e)
	}
	return errInfo
}

func doHostname(args []string) error {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return err
	}
	fmt.Println(unix.ByteSliceToString(u.Nodename[:]))
	return errInfo
}

func doSleep(args []string) error {
	time.Sleep(time.Duration(intArg(args, 0, 0)) * time.Millisecond)
	return nil
}

func doStatfs(args []string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(strArg(args, 0, "/"), &st); err != nil {
		return err
	}
	fmt.Printf("size %d\nfree %d\n", int64(st.Blocks)*st.Bsize, int64(st.Bavail)*st.Bsize)
	return errInfo
}

func doSpin(args []string) error {
	d := time.Duration(intArg(args, 0, 1000)) * time.Millisecond
	start := time.Now()
	x := 0
	for time.Since(start) < d {
		for i := 0; i < 100000; i++ {
			x += i
		}
	}
	wall := time.Since(start)
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return err
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	fmt.Printf("wall %d cpu %d\n", wall.Milliseconds(), cpu.Milliseconds()+int64(x&0))
	return errInfo
}

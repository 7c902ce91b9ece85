package policy

// table is the container system-call policy: one row per x86_64 system call
// that is allowed, allowed for some arguments, or refused with something other
// than Default (EPERM). A system call with no row is refused with EPERM; a
// number that is no x86_64 system call gets ENOSYS (see Unknown).
//
// Refused without a row, among others: mount, umount2, pivot_root, chroot,
// unshare, setns and the new mount API (the engine sets up the container's
// file system once); ptrace, process_vm_readv/writev, pidfd_getfd, kcmp,
// process_madvise, process_mrelease (reaching into another process);
// bpf, perf_event_open, userfaultfd, fanotify_init, keyctl, add_key,
// request_key, iopl, ioperm, modify_ldt (large or privileged kernel
// surfaces; vm86 exists only on i386, whose calls the filter kills);
// module, kexec, reboot, swap, quota, acct, syslog and clock-setting calls;
// sethostname (the engine names the host); name_to_handle_at and
// open_by_handle_at (handles bypass path lookup); NUMA placement (mbind,
// set_mempolicy, migrate_pages, move_pages); SysV and POSIX message queues
// (see the IPC rows); vmsplice, remap_file_pages, memfd_secret, cachestat,
// statmount, listmount, listns, the LSM attribute calls, and every obsolete
// or unimplemented call.
//
// Rows are keyed by the kernel's name; numbers are x86_64's, derived from
// the name (numbered), so that a row cannot name one call and number another.
// Reasons shared by many rows. Each row says why the call is safe to give
// every container; a row whose reason is wider than these says so itself.
const (
	whyMemory     = "its own address space"
	whyProcess    = "starts, ends and waits for its own processes, in its own PID namespace"
	whyIdentity   = "reads its own ids, limits and usage; uname shows the host's kernel release, which /proc/version and the vDSO show anyway"
	whySched      = "reads or yields its own scheduling"
	whyRandom     = "the kernel's random numbers, which /dev/urandom gives too"
	whySignals    = "handles its own signals"
	whyTime       = "reads the clocks, sleeps and arms timers of its own; futex waits on its own memory"
	whyWait       = "waits on or makes descriptors of its own"
	whyIO         = "I/O on descriptors it holds: the descriptor is the authority"
	whyFiles      = "files in its own root, /tmp and volumes: the mounts are the authority, and no path leads out of them"
	whyOlder      = "the older form of a call allowed above, made by binaries built against older libcs (before glibc 2.33 and musl 1.2 on x86_64); it reaches nothing the newer form does not"
	whySocketHeld = "on a socket it holds: reading from it or asking about it reaches nothing new"
)

// table is the policy, made afresh at each call: only the launch path
// needs it, once, to compile the filter, and nothing keeps it after, so
// no oak process pays for it at start-up or holds it while it runs.
func table() []Rule {
	return numbered([]Rule{
		// Memory.
		{Name: "brk", Action: Allow, Why: whyMemory},
		{Name: "mmap", Action: Allow, Why: whyMemory},
		{Name: "mprotect", Action: Allow, Why: whyMemory},
		{Name: "munmap", Action: Allow, Why: whyMemory},
		{Name: "mremap", Action: Allow, Why: whyMemory},
		{Name: "msync", Action: Allow, Why: whyMemory},
		{Name: "mincore", Action: Allow, Why: "residency of its own pages; JVMs and allocators probe stacks with it"},
		{Name: "madvise", Action: Allow, Why: whyMemory},
		{Name: "mlock", Action: Allow, Why: "bounded by RLIMIT_MEMLOCK; gpg, ssh-agent and databases pin secrets and buffers"},
		{Name: "munlock", Action: Allow, Why: whyMemory},
		{Name: "mlockall", Action: Allow, Why: "as mlock"},
		{Name: "munlockall", Action: Allow, Why: whyMemory},
		{Name: "mlock2", Action: Allow, Why: "as mlock"},
		{Name: "membarrier", Action: Allow, Why: "memory barrier across its own threads; JITs (.NET, V8) and liburcu"},
		{Name: "pkey_mprotect", Action: Allow, Why: "protection keys only restrict the caller's own memory; V8 uses them for W^X"},
		{Name: "pkey_alloc", Action: Allow, Why: "as pkey_mprotect"},
		{Name: "pkey_free", Action: Allow, Why: "as pkey_mprotect"},
		{Name: "mseal", Action: Allow, Why: "seals its own mappings: can only take abilities away"},
		{Name: "map_shadow_stack", Action: Allow, Why: "glibc allocates CET shadow stacks for new threads"},
		{Name: "memfd_create", Action: Allow, Why: "an anonymous file in its own memory quota; Go, JITs and systemd use it"},

		// Threads and processes. Everything here acts on the caller or on
		// processes in the container's own PID namespace.
		{Name: "clone", Action: Allow,
			When: when(all(arg32(0).none(cloneNewNamespaces), arg32(0).masked(cloneThread, cloneThread)),
				all(arg32(0).none(cloneNewNamespaces|cloneFiles))),
			Why: "threads and fork, but no new namespace: each CLONE_NEW* flag is a kernel subsystem opened up to the container (CLONE_NEWTIME shares its bit with the exit signal in clone, so only clone3 and unshare could ask for it); a descriptor table is shared only by the threads of one process (CLONE_FILES needs CLONE_THREAD), which the network service relies on to let a single-threaded process's AF_UNIX calls through"},
		{Name: "clone3", Action: Fail(ENOSYS),
			Why: "its flags live in memory the filter cannot read; glibc and Go fall back to clone on ENOSYS"},
		{Name: "fork", Action: Allow, Why: whyProcess},
		{Name: "vfork", Action: Allow, Why: whyProcess},
		{Name: "execve", Action: Allow, Why: whyProcess},
		{Name: "execveat", Action: Allow, Why: "execve of a file it holds open (fexecve)"},
		{Name: "exit", Action: Allow, Why: whyProcess},
		{Name: "exit_group", Action: Allow, Why: whyProcess},
		{Name: "wait4", Action: Allow, Why: whyProcess},
		{Name: "waitid", Action: Allow, Why: whyProcess},
		{Name: "kill", Action: Allow, Why: "reaches only processes in its own PID namespace"},
		{Name: "tkill", Action: Allow, Why: "as kill"},
		{Name: "tgkill", Action: Allow, Why: "as kill; the Go runtime preempts goroutines with it"},
		{Name: "rt_sigqueueinfo", Action: Allow, Why: "as kill; the kernel refuses forged si_code for other processes"},
		{Name: "rt_tgsigqueueinfo", Action: Allow, Why: "as rt_sigqueueinfo"},
		{Name: "pidfd_open", Action: Allow, Why: "a handle on its own processes, no more than kill and waitid; Go's os and glibc's pidfd_spawn use it"},
		{Name: "pidfd_send_signal", Action: Allow, Why: "as kill"},
		{Name: "getpid", Action: Allow, Why: whyIdentity},
		{Name: "getppid", Action: Allow, Why: whyIdentity},
		{Name: "gettid", Action: Allow, Why: whyIdentity},
		{Name: "getpgid", Action: Allow, Why: whyIdentity},
		{Name: "getpgrp", Action: Allow, Why: whyIdentity},
		{Name: "getsid", Action: Allow, Why: whyIdentity},
		{Name: "setpgid", Action: Allow, Why: "shell job control, inside its own PID namespace"},
		{Name: "setsid", Action: Allow, Why: "as setpgid"},
		{Name: "set_tid_address", Action: Allow, Why: "libc thread start"},
		{Name: "set_robust_list", Action: Allow, Why: "libc thread start (get_robust_list, which reads another thread's, stays refused)"},
		{Name: "rseq", Action: Allow, Why: "glibc 2.35+ registers restartable sequences for every thread"},
		{Name: "arch_prctl", Action: Allow, Why: "sets its own TLS base (Go runtime, libc) and its own CPU state (CET, AMX permission); every option acts on the caller only"},
		{Name: "prctl", Action: Allow,
			When: oneOf(arg32(0), prctlAllowed...),
			Why:  "only the options in prctlAllowed, which act on the caller and give nothing new; refused are PR_SET_MM, PR_SET_PTRACER, PR_SET_SPECULATION_CTRL, PR_SCHED_CORE, PR_SET_IO_FLUSHER, PR_SET_SYSCALL_USER_DISPATCH, PR_SET_MEMORY_MERGE and everything newer"},
		{Name: "personality", Action: Allow,
			When: oneOf(arg32(0), perLinux, personalityQuery),
			Why:  "query, or set plain PER_LINUX; other personalities turn off ASLR or change the ABI"},
		{Name: "seccomp", Action: Allow, Why: "a filter of its own can only refuse more (the strictest action of all filters wins); sshd, Chromium and systemd services confine themselves with it"},
		{Name: "landlock_create_ruleset", Action: Allow, Why: "as seccomp: Landlock only takes access away (xz and others sandbox themselves)"},
		{Name: "landlock_add_rule", Action: Allow, Why: "as landlock_create_ruleset"},
		{Name: "landlock_restrict_self", Action: Allow, Why: "as landlock_create_ruleset"},
		{Name: "uretprobe", Action: Allow, Why: "called only by the kernel's own trampoline when the host traces the process with uprobes; the kernel refuses any other caller"},
		{Name: "uprobe", Action: Allow, Why: "as uretprobe"},

		// Identity. The container runs in its own user namespace: changing uid,
		// gid, groups or capabilities moves only among the ids mapped into it,
		// all of which are the container's. nginx, su, sshd, postgres and most
		// daemons drop privileges with these at start and fail without them.
		{Name: "getuid", Action: Allow, Why: whyIdentity},
		{Name: "geteuid", Action: Allow, Why: whyIdentity},
		{Name: "getgid", Action: Allow, Why: whyIdentity},
		{Name: "getegid", Action: Allow, Why: whyIdentity},
		{Name: "getresuid", Action: Allow, Why: whyIdentity},
		{Name: "getresgid", Action: Allow, Why: whyIdentity},
		{Name: "getgroups", Action: Allow, Why: whyIdentity},
		{Name: "capget", Action: Allow, Why: whyIdentity},
		{Name: "setuid", Action: Allow, Why: "identity inside its own user namespace (see above)"},
		{Name: "setgid", Action: Allow, Why: "as setuid"},
		{Name: "setreuid", Action: Allow, Why: "as setuid"},
		{Name: "setregid", Action: Allow, Why: "as setuid"},
		{Name: "setresuid", Action: Allow, Why: "as setuid"},
		{Name: "setresgid", Action: Allow, Why: "as setuid"},
		{Name: "setgroups", Action: Allow, Why: "as setuid; the engine starts the container with no supplementary groups, so dropping groups unlocks nothing"},
		{Name: "setfsuid", Action: Allow, Why: "as setuid"},
		{Name: "setfsgid", Action: Allow, Why: "as setuid"},
		{Name: "capset", Action: Allow, Why: "can only drop or rearrange capabilities it holds in its own user namespace"},

		// Scheduling and resources. The kernel bounds every setter by rlimits
		// or by capabilities in the initial user namespace, which the container
		// never has.
		{Name: "sched_yield", Action: Allow, Why: whySched},
		{Name: "sched_getaffinity", Action: Allow, Why: whySched},
		{Name: "sched_setaffinity", Action: Allow, Why: "narrows its own threads within the CPUs it was given (Java, nginx worker_cpu_affinity)"},
		{Name: "sched_getparam", Action: Allow, Why: whySched},
		{Name: "sched_getscheduler", Action: Allow, Why: whySched},
		{Name: "sched_get_priority_max", Action: Allow, Why: whySched},
		{Name: "sched_get_priority_min", Action: Allow, Why: whySched},
		{Name: "sched_rr_get_interval", Action: Allow, Why: whySched},
		{Name: "sched_getattr", Action: Allow, Why: whySched},
		{Name: "getcpu", Action: Allow, Why: whySched},
		{Name: "getpriority", Action: Allow, Why: whyIdentity},
		{Name: "setpriority", Action: Allow, Why: "nice: raising priority needs RLIMIT_NICE, which the factory sets; PRIO_USER reaches only its own PID namespace"},
		{Name: "ioprio_get", Action: Allow, Why: whyIdentity},
		{Name: "ioprio_set", Action: Allow, Why: "ionice: the real-time class needs capabilities the container lacks"},
		{Name: "getrlimit", Action: Allow, Why: whyIdentity},
		{Name: "setrlimit", Action: Allow, Why: "acts on the caller; hard limits are the quota and only fall, since raising one needs CAP_SYS_RESOURCE in the initial user namespace"},
		{Name: "prlimit64", Action: Allow,
			When: when(all(arg32(0).eq(0))),
			Why:  "as setrlimit, for the caller only (pid 0): glibc and Go always pass 0, and Go raises its soft RLIMIT_NOFILE at start"},
		{Name: "getrusage", Action: Allow, Why: whyIdentity},
		{Name: "times", Action: Allow, Why: whyIdentity},
		{Name: "sysinfo", Action: Allow, Why: "uptime, load and memory figures; libc sysconf and free(1) read them"},
		{Name: "uname", Action: Allow, Why: whyIdentity},
		{Name: "umask", Action: Allow, Why: whyIdentity},
		{Name: "getrandom", Action: Allow, Why: whyRandom},

		// Signals.
		{Name: "rt_sigaction", Action: Allow, Why: whySignals},
		{Name: "rt_sigprocmask", Action: Allow, Why: whySignals},
		{Name: "rt_sigreturn", Action: Allow, Why: whySignals},
		{Name: "rt_sigpending", Action: Allow, Why: whySignals},
		{Name: "rt_sigtimedwait", Action: Allow, Why: whySignals},
		{Name: "rt_sigsuspend", Action: Allow, Why: whySignals},
		{Name: "sigaltstack", Action: Allow, Why: whySignals},
		{Name: "pause", Action: Allow, Why: whyOlder},
		{Name: "restart_syscall", Action: Allow, Why: whySignals},
		{Name: "signalfd", Action: Allow, Why: whyOlder},
		{Name: "signalfd4", Action: Allow, Why: whySignals},

		// Clocks, timers and sleeping (setting a clock stays refused).
		{Name: "clock_gettime", Action: Allow, Why: whyTime},
		{Name: "clock_getres", Action: Allow, Why: whyTime},
		{Name: "clock_nanosleep", Action: Allow, Why: whyTime},
		{Name: "gettimeofday", Action: Allow, Why: whyTime},
		{Name: "time", Action: Allow, Why: whyOlder},
		{Name: "nanosleep", Action: Allow, Why: whyTime},
		{Name: "alarm", Action: Allow, Why: whyOlder},
		{Name: "getitimer", Action: Allow, Why: whyOlder},
		{Name: "setitimer", Action: Allow, Why: whyTime},
		{Name: "timer_create", Action: Allow, Why: whyTime},
		{Name: "timer_settime", Action: Allow, Why: whyTime},
		{Name: "timer_gettime", Action: Allow, Why: whyTime},
		{Name: "timer_getoverrun", Action: Allow, Why: whyTime},
		{Name: "timer_delete", Action: Allow, Why: whyTime},
		{Name: "timerfd_create", Action: Allow, Why: whyTime},
		{Name: "timerfd_settime", Action: Allow, Why: whyTime},
		{Name: "timerfd_gettime", Action: Allow, Why: whyTime},

		// Waiting and synchronisation.
		{Name: "futex", Action: Allow, Why: whyTime},
		{Name: "epoll_create", Action: Allow, Why: whyOlder},
		{Name: "epoll_create1", Action: Allow, Why: whyWait},
		{Name: "epoll_ctl", Action: Allow, Why: whyWait},
		{Name: "epoll_wait", Action: Allow, Why: whyOlder},
		{Name: "epoll_pwait", Action: Allow, Why: whyWait},
		{Name: "poll", Action: Allow, Why: whyWait},
		{Name: "ppoll", Action: Allow, Why: whyWait},
		{Name: "select", Action: Allow, Why: whyOlder},
		{Name: "pselect6", Action: Allow, Why: whyWait},
		{Name: "eventfd", Action: Allow, Why: whyOlder},
		{Name: "eventfd2", Action: Allow, Why: whyWait},
		{Name: "pipe", Action: Allow, Why: whyOlder},
		{Name: "pipe2", Action: Allow, Why: whyWait},

		// File descriptors it holds.
		{Name: "read", Action: Allow, Why: whyIO},
		{Name: "write", Action: Allow, Why: whyIO},
		{Name: "close", Action: Allow, Why: whyIO},
		{Name: "readv", Action: Allow, Why: whyIO},
		{Name: "writev", Action: Allow, Why: whyIO},
		{Name: "pread64", Action: Allow, Why: whyIO},
		{Name: "pwrite64", Action: Allow, Why: whyIO},
		{Name: "preadv", Action: Allow, Why: whyIO},
		{Name: "pwritev", Action: Allow, Why: whyIO},
		{Name: "preadv2", Action: Allow, Why: whyIO},
		{Name: "pwritev2", Action: Allow, Why: whyIO},
		{Name: "lseek", Action: Allow, Why: whyIO},
		{Name: "dup", Action: Allow, Why: whyIO},
		{Name: "dup2", Action: Allow, Why: whyIO},
		{Name: "dup3", Action: Allow, Why: whyIO},
		{Name: "fcntl", Action: Allow, Why: whyIO},
		{Name: "ioctl", Action: Allow,
			When: oneOf(arg32(1), values(ioctlAllowed)...), Else: Fail(ENOTTY),
			Why: "only the requests in ioctlAllowed, each with its reason there. An ioctl reaches whatever driver or protocol the descriptor belongs to, and the container holds host-namespace sockets (SIOCGIFCONF and the other SIOCGIF* calls list the host's interfaces and addresses) and terminals it may share with a person (TIOCSTI, TIOCLINUX push input; TIOCSETD attaches exploited line disciplines). Anything else gets ENOTTY, the kernel's own answer for a request the file does not implement, on which programs fall back; EPERM would read as a hard failure. The request is an unsigned int: only its low 32 bits are compared"},
		{Name: "close_range", Action: Allow, Why: whyIO},
		{Name: "sendfile", Action: Allow, Why: whyIO},
		{Name: "splice", Action: Allow, Why: whyIO},
		{Name: "tee", Action: Allow, Why: whyIO},
		{Name: "copy_file_range", Action: Allow, Why: whyIO},
		{Name: "flock", Action: Allow, Why: whyIO},
		{Name: "fadvise64", Action: Allow, Why: whyIO},
		{Name: "readahead", Action: Allow, Why: whyIO},
		{Name: "fallocate", Action: Allow, Why: whyIO},
		{Name: "ftruncate", Action: Allow, Why: whyIO},
		{Name: "fsync", Action: Allow, Why: whyIO},
		{Name: "fdatasync", Action: Allow, Why: whyIO},
		{Name: "sync_file_range", Action: Allow, Why: whyIO},
		{Name: "syncfs", Action: Allow, Why: whyIO},
		{Name: "sync", Action: Allow, Why: "flushes every file system on the host, not only the container's, but gives nothing and dpkg and sync(1) call it"},
		{Name: "fstat", Action: Allow, Why: whyIO},
		{Name: "fstatfs", Action: Allow, Why: whyIO},

		// The file system it sees. Reading and writing are allowed by call; the
		// mount namespace decides what exists (its image read-only, its volumes).
		{Name: "open", Action: Allow, Why: whyFiles},
		{Name: "openat", Action: Allow, Why: whyFiles},
		{Name: "openat2", Action: Allow, Why: "openat with stricter path resolution; Go's os.Root uses it"},
		{Name: "creat", Action: Allow, Why: whyOlder},
		{Name: "stat", Action: Allow, Why: whyFiles},
		{Name: "lstat", Action: Allow, Why: whyFiles},
		{Name: "newfstatat", Action: Allow, Why: whyFiles},
		{Name: "statx", Action: Allow, Why: whyFiles},
		{Name: "access", Action: Allow, Why: whyFiles},
		{Name: "faccessat", Action: Allow, Why: whyFiles},
		{Name: "faccessat2", Action: Allow, Why: whyFiles},
		{Name: "readlink", Action: Allow, Why: whyFiles},
		{Name: "readlinkat", Action: Allow, Why: whyFiles},
		{Name: "getdents", Action: Allow, Why: whyOlder},
		{Name: "getdents64", Action: Allow, Why: whyFiles},
		{Name: "getcwd", Action: Allow, Why: whyFiles},
		{Name: "chdir", Action: Allow, Why: whyFiles},
		{Name: "fchdir", Action: Allow, Why: whyFiles},
		{Name: "statfs", Action: Allow, Why: whyFiles},
		{Name: "truncate", Action: Allow, Why: whyFiles},
		{Name: "rename", Action: Allow, Why: whyFiles},
		{Name: "renameat", Action: Allow, Why: whyFiles},
		{Name: "renameat2", Action: Allow, Why: whyFiles},
		{Name: "mkdir", Action: Allow, Why: whyFiles},
		{Name: "mkdirat", Action: Allow, Why: whyFiles},
		{Name: "rmdir", Action: Allow, Why: whyFiles},
		{Name: "link", Action: Allow, Why: whyFiles},
		{Name: "linkat", Action: Allow, Why: whyFiles},
		{Name: "unlink", Action: Allow, Why: whyFiles},
		{Name: "unlinkat", Action: Allow, Why: whyFiles},
		{Name: "symlink", Action: Allow, Why: whyFiles},
		{Name: "symlinkat", Action: Allow, Why: whyFiles},
		{Name: "chmod", Action: Allow, Why: whyFiles},
		{Name: "fchmod", Action: Allow, Why: whyFiles},
		{Name: "fchmodat", Action: Allow, Why: whyFiles},
		{Name: "fchmodat2", Action: Allow, Why: whyFiles},
		{Name: "chown", Action: Allow, Why: whyFiles},
		{Name: "fchown", Action: Allow, Why: whyFiles},
		{Name: "lchown", Action: Allow, Why: whyFiles},
		{Name: "fchownat", Action: Allow, Why: whyFiles},
		{Name: "utime", Action: Allow, Why: whyOlder},
		{Name: "utimes", Action: Allow, Why: whyOlder},
		{Name: "futimesat", Action: Allow, Why: whyOlder},
		{Name: "utimensat", Action: Allow, Why: whyFiles},
		{Name: "mknod", Action: Allow,
			When: oneOfMasked(arg32(1), sIFMT, 0, sIFREG, sIFIFO),
			Why:  "FIFOs (mkfifo) and regular files only; device nodes would name host devices"},
		{Name: "mknodat", Action: Allow,
			When: oneOfMasked(arg32(2), sIFMT, 0, sIFREG, sIFIFO),
			Why:  "as mknod"},
		{Name: "inotify_init", Action: Allow, Why: whyOlder},
		{Name: "inotify_init1", Action: Allow, Why: whyFiles},
		{Name: "inotify_add_watch", Action: Allow, Why: whyFiles},
		{Name: "inotify_rm_watch", Action: Allow, Why: whyFiles},
		{Name: "setxattr", Action: Allow, Why: "extended attributes of its own files; trusted.* and host security.* names need capabilities it lacks"},
		{Name: "lsetxattr", Action: Allow, Why: "as setxattr"},
		{Name: "fsetxattr", Action: Allow, Why: "as setxattr"},
		{Name: "getxattr", Action: Allow, Why: whyFiles},
		{Name: "lgetxattr", Action: Allow, Why: whyFiles},
		{Name: "fgetxattr", Action: Allow, Why: whyFiles},
		{Name: "listxattr", Action: Allow, Why: whyFiles},
		{Name: "llistxattr", Action: Allow, Why: whyFiles},
		{Name: "flistxattr", Action: Allow, Why: whyFiles},
		{Name: "removexattr", Action: Allow, Why: "as setxattr"},
		{Name: "lremovexattr", Action: Allow, Why: "as setxattr"},
		{Name: "fremovexattr", Action: Allow, Why: "as setxattr"},

		// Sockets. Making a socket, naming an address or listening is network
		// authority: the calls that do it are handed to the network service
		// (services/netsvc), which serves them against the container's grants
		// and answers by injecting a socket of the host's or with an errno; it
		// never lets the kernel re-read a checked argument. Using a socket the
		// container holds — reading, writing, accepting — is the host kernel's
		// own data path, untouched.
		{Name: "socket", Action: Notify,
			When: when(all(arg32(0).eq(afInet)), all(arg32(0).eq(afInet6)), all(arg32(0).eq(afUnix))), Else: Fail(EACCES),
			Why: "TCP/UDP sockets are created by the network service under a grant; AF_UNIX sockets are the container's own and the service lets them be made (the calls on them go through it too, see services/netsvc/local_linux.go); every other family (netlink, packet, raw) is refused"},
		{Name: "socketpair", Action: Allow,
			When: when(all(arg32(0).eq(afUnix))), Else: Fail(EACCES),
			Why: "a connected AF_UNIX pair within the container; other families are network authority"},
		{Name: "connect", Action: Notify, Why: "checked against egress grants"},
		{Name: "bind", Action: Notify, Why: "checked against listen grants; binds the grant's host address"},
		{Name: "listen", Action: Notify, Why: "only on a socket bound under a listen grant (an unbound socket would auto-bind)"},
		{Name: "accept", Action: Allow, Why: "on a listener it holds: the listen grant is the authority"},
		{Name: "accept4", Action: Allow, Why: "as accept"},
		{Name: "sendto", Action: Allow,
			When: when(all(arg64(4).eq(0), arg32(3).none(msgFastOpen))), Else: Notify,
			Why: "send() on a socket it holds is the data path; an address or MSG_FASTOPEN names a peer and is checked"},
		{Name: "sendmsg", Action: Notify,
			Why: "msg_name and control messages are in memory the filter cannot read: the service reads them once and sends itself"},
		{Name: "sendmmsg", Action: Notify, Why: "as sendmsg"},
		{Name: "recvfrom", Action: Allow, Why: whySocketHeld},
		{Name: "recvmsg", Action: Allow, Why: whySocketHeld},
		{Name: "recvmmsg", Action: Allow, Why: whySocketHeld},
		{Name: "shutdown", Action: Allow, Why: whySocketHeld},
		{Name: "getsockname", Action: Allow, Why: whySocketHeld},
		{Name: "getpeername", Action: Allow, Why: whySocketHeld},
		{Name: "setsockopt", Action: Allow,
			When: when(all(arg32(1).ne(solIPv6)), all(arg32(2).ne(ipv6Rthdr), arg32(2).ne(ipv6PktOptions2292))), Else: Default,
			Why: "options of a socket it holds; the ones that reach beyond it need CAP_NET_* over the socket's network namespace — except an IPv6 routing header (IPV6_RTHDR, IPV6_2292PKTOPTIONS), which an unprivileged caller may set and which then sends every later write to the header's segment instead of the checked peer"},
		{Name: "getsockopt", Action: Allow, Why: whySocketHeld},

		// System V shared memory and semaphores: the container has its own IPC
		// namespace, so these reach only its own objects (postgres needs a SysV
		// segment). SysV message queues stay refused: msgsnd/msgrcv are the
		// standard heap-spray primitive of kernel exploits, and nothing common
		// needs them; so do POSIX message queues (mq_notify, CVE-2017-11176).
		{Name: "shmget", Action: Allow, Why: "own IPC namespace"},
		{Name: "shmat", Action: Allow, Why: "own IPC namespace"},
		{Name: "shmctl", Action: Allow, Why: "own IPC namespace"},
		{Name: "shmdt", Action: Allow, Why: "own IPC namespace"},
		{Name: "semget", Action: Allow, Why: "own IPC namespace"},
		{Name: "semop", Action: Allow, Why: "own IPC namespace"},
		{Name: "semctl", Action: Allow, Why: "own IPC namespace"},
		{Name: "semtimedop", Action: Allow, Why: "own IPC namespace"},

		// Refused as "not implemented": programs probe for these and fall back.
		{Name: "io_uring_setup", Action: Fail(ENOSYS), Why: "io_uring operations (socket, connect, open) bypass seccomp entirely; liburing users and libuv fall back on ENOSYS"},
		{Name: "io_uring_enter", Action: Fail(ENOSYS), Why: "as io_uring_setup"},
		{Name: "io_uring_register", Action: Fail(ENOSYS), Why: "as io_uring_setup"},
		{Name: "io_setup", Action: Fail(ENOSYS), Why: "Linux AIO contexts come from a host-wide pool (fs.aio-max-nr) outside any quota; libaio users (InnoDB, fio, QEMU) fall back to threads on ENOSYS, as on kernels without AIO"},
		{Name: "io_destroy", Action: Fail(ENOSYS), Why: "as io_setup"},
		{Name: "io_getevents", Action: Fail(ENOSYS), Why: "as io_setup"},
		{Name: "io_submit", Action: Fail(ENOSYS), Why: "as io_setup"},
		{Name: "io_cancel", Action: Fail(ENOSYS), Why: "as io_setup"},
		{Name: "io_pgetevents", Action: Fail(ENOSYS), Why: "as io_setup"},

		// Newer forms of calls that are allowed. New kernel code is where the bugs
		// are, no program here needs these yet, and their callers fall back on
		// ENOSYS as on the kernels before them. Allow one when a runtime or libc
		// comes to depend on it.
		{Name: "epoll_pwait2", Action: Fail(ENOSYS), Why: "newer form of epoll_pwait (systemd falls back)"},
		{Name: "futex_waitv", Action: Fail(ENOSYS), Why: "newer form of futex (Wine falls back)"},
		{Name: "futex_wake", Action: Fail(ENOSYS), Why: "newer form of futex"},
		{Name: "futex_wait", Action: Fail(ENOSYS), Why: "newer form of futex"},
		{Name: "futex_requeue", Action: Fail(ENOSYS), Why: "newer form of futex"},
		{Name: "setxattrat", Action: Fail(ENOSYS), Why: "newer form of setxattr"},
		{Name: "getxattrat", Action: Fail(ENOSYS), Why: "newer form of getxattr"},
		{Name: "listxattrat", Action: Fail(ENOSYS), Why: "newer form of listxattr"},
		{Name: "removexattrat", Action: Fail(ENOSYS), Why: "newer form of removexattr"},
		{Name: "file_getattr", Action: Fail(ENOSYS), Why: "the FS_IOC_FSGETXATTR ioctl by path"},
		{Name: "file_setattr", Action: Fail(ENOSYS), Why: "the FS_IOC_FSSETXATTR ioctl by path"},
		{Name: "rseq_slice_yield", Action: Fail(ENOSYS), Why: "part of rseq time-slice extensions, newer than this kernel generation"},
	})
}

// Linux constants the table tests arguments against (x86_64 values; a test
// checks them against golang.org/x/sys/unix on Linux).
const (
	cloneFiles     = 0x00000400
	cloneThread    = 0x00010000
	cloneNewNS     = 0x00020000
	cloneNewCgroup = 0x02000000
	cloneNewUTS    = 0x04000000
	cloneNewIPC    = 0x08000000
	cloneNewUser   = 0x10000000
	cloneNewPID    = 0x20000000
	cloneNewNet    = 0x40000000
	// cloneNewNamespaces is every namespace flag clone(2) can carry.
	cloneNewNamespaces = cloneNewNS | cloneNewCgroup | cloneNewUTS | cloneNewIPC | cloneNewUser | cloneNewPID | cloneNewNet

	tiocsti     = 0x5412
	tioclinux   = 0x541c
	tiocsetd    = 0x5423
	siocgifconf = 0x8912

	afUnix             = 1
	afInet             = 2
	afInet6            = 10
	solIPv6            = 41 // IPPROTO_IPV6
	ipv6Rthdr          = 57
	ipv6PktOptions2292 = 6
	msgFastOpen        = 0x20000000

	sIFMT  = 0o170000
	sIFREG = 0o100000
	sIFIFO = 0o010000

	perLinux         = 0x0000
	personalityQuery = 0xffffffff
)

// prctl options a container may use. Each acts on the caller (or its own
// children) and can only keep or narrow what it may do.
var prctlAllowed = []uint64{
	1, 2, // PR_SET_PDEATHSIG, PR_GET_PDEATHSIG: Go's os/exec, daemons
	3, 4, // PR_GET_DUMPABLE, PR_SET_DUMPABLE
	7, 8, // PR_GET_KEEPCAPS, PR_SET_KEEPCAPS: keep capabilities across setuid
	15, 16, // PR_SET_NAME, PR_GET_NAME: thread names
	21, 22, // PR_GET_SECCOMP, PR_SET_SECCOMP: see the seccomp row
	23, 24, // PR_CAPBSET_READ, PR_CAPBSET_DROP: libcap
	27,     // PR_GET_SECUREBITS
	29, 30, // PR_SET_TIMERSLACK, PR_GET_TIMERSLACK
	36, 37, // PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER: tini, dumb-init
	38, 39, // PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS
	40,     // PR_GET_TID_ADDRESS
	41, 42, // PR_SET_THP_DISABLE, PR_GET_THP_DISABLE
	47,     // PR_CAP_AMBIENT: passes on capabilities it already holds
	52,     // PR_GET_SPECULATION_CTRL
	65, 66, // PR_SET_MDWE, PR_GET_MDWE: memory-deny-write-execute, only restricts
	0x53564d41, // PR_SET_VMA: names its own anonymous mappings (the Go runtime does)
	0x41555856, // PR_GET_AUXV
}

// ioctlAllowed are the ioctl requests a container may make (x86_64 values; a
// test checks them against golang.org/x/sys/unix and the kernel). Each acts
// on the descriptor it is made on and tells or changes nothing beyond it.
// Every other request fails with ENOTTY: device, block-device and loop
// requests (the container has no such devices), the SIOCGIF*/SIOCSIF*
// family and routing requests (injected sockets belong to the host's
// network namespace), FS_IOC_FIEMAP (physical block addresses on the host's
// disk), FS_IOC_SETFLAGS, namespace-file queries (NS_GET_*), seccomp
// listener requests, TIOCSTI, TIOCLINUX, TIOCSETD, TIOCCONS, the modem and
// serial-line requests, and anything newer.
var ioctlAllowed = []Value{
	// Any descriptor (fs/ioctl.c): the same as fcntl(2) flags.
	{0x541b, "FIONREAD", "bytes ready to read on a pipe, socket (SIOCINQ) or terminal (TIOCINQ); Java's available(), libuv, busybox"},
	{0x5421, "FIONBIO", "sets O_NONBLOCK, as fcntl does; nginx and libuv (Node) use the ioctl"},
	{0x5451, "FIOCLEX", "sets close-on-exec, as fcntl does; libuv uses the ioctl"},
	{0x5450, "FIONCLEX", "clears close-on-exec, as fcntl does"},
	{0x5452, "FIOASYNC", "sets O_ASYNC, as fcntl does"},

	// Terminals the container holds (its stdio, or a pseudo-terminal it
	// made). Changing modes, size or the foreground group acts on that
	// terminal only; the kernel refuses to make another session's terminal
	// a controlling terminal without CAP_SYS_ADMIN.
	{0x5401, "TCGETS", "tcgetattr; isatty() is this call, so every program that checks for a terminal makes it"},
	{0x5402, "TCSETS", "tcsetattr: echo, raw mode (shells, editors, password prompts)"},
	{0x5403, "TCSETSW", "tcsetattr after output drains"},
	{0x5404, "TCSETSF", "tcsetattr after output drains, discarding input"},
	{0x802c542a, "TCGETS2", "tcgetattr with arbitrary speeds; glibc 2.42 and later use the termios2 calls"},
	{0x402c542b, "TCSETS2", "as TCSETS, termios2"},
	{0x402c542c, "TCSETSW2", "as TCSETSW, termios2"},
	{0x402c542d, "TCSETSF2", "as TCSETSF, termios2"},
	{0x5409, "TCSBRK", "tcdrain (and tcsendbreak): waits for output to drain"},
	{0x540a, "TCXONC", "tcflow: suspends or resumes output"},
	{0x540b, "TCFLSH", "tcflush: discards queued input or output (password prompts, readline)"},
	{0x5411, "TIOCOUTQ", "bytes not yet sent: a terminal's output queue, or a socket's (SIOCOUTQ)"},
	{0x5413, "TIOCGWINSZ", "window size: shells, editors, ls, less, Python's get_terminal_size"},
	{0x5414, "TIOCSWINSZ", "sets the window size of a terminal it holds (terminal multiplexers on their pseudo-terminals)"},
	{0x540e, "TIOCSCTTY", "makes a terminal with no session the controlling terminal of its own new session (sshd, script, tmux, setsid -c)"},
	{0x5422, "TIOCNOTTY", "gives up its controlling terminal (daemons)"},
	{0x540f, "TIOCGPGRP", "tcgetpgrp: job control in shells"},
	{0x5410, "TIOCSPGRP", "tcsetpgrp: job control, to a process group of its own session only"},
	{0x5429, "TIOCGSID", "tcgetsid"},
	{0x80045430, "TIOCGPTN", "ptsname: the number of a pseudo-terminal it opened"},
	{0x40045431, "TIOCSPTLCK", "unlockpt on a pseudo-terminal it opened"},
	{0x5441, "TIOCGPTPEER", "opens the peer of a pseudo-terminal master it holds; glibc's openpty"},

	// Sockets it holds: their own state, nothing of the host's interfaces.
	{0x8905, "SIOCATMARK", "sockatmark(): whether the read position is at urgent data"},
	{0x8906, "SIOCGSTAMP", "receive time of the last packet (ping, NTP clients)"},
	{0x8907, "SIOCGSTAMPNS", "as SIOCGSTAMP, in nanoseconds"},

	// Regular files it holds.
	{0x80086601, "FS_IOC_GETFLAGS", "reads the inode flags (append-only, immutable, noatime) of a file it can open: lsattr, and cp -a, rsync and tar keep them"},
	{0x40049409, "FICLONE", "reflink copy between two files it holds (GNU cp does it first and falls back); copy_file_range, allowed, reaches the same file-system remap code"},
	{0x4020940d, "FICLONERANGE", "as FICLONE, for a range"},
}

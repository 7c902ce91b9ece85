// nsinit: the in-container half of Oak's launch path.
//
// The oak binary re-executes itself as the container's first process, already
// inside fresh user, mount, pid, ipc, uts and network namespaces (the parent
// set the clone flags and the uid/gid maps). This constructor runs before the
// Go runtime starts, so a launch never pays for a second Go runtime: it reads
// a task description from fd 3, builds the container's mount tree, drops every
// privilege, installs the seccomp filter and executes the command. It then stays
// as a minimal pid 1 that forwards signals to the command and reaps orphans.
//
// The task description is written by sandbox/launch_linux.go (the authority on
// what is mounted where); this file only carries it out. Every step that fails
// reports "step: cause" back over fd 3 and exits 127, so the parent can print
// one clear error line. On success the parent sees the REPORT_LISTENER,
// REPORT_CONTROL and REPORT_LOCAL records (and, with TAG_HOLD, REPORT_HELD,
// after which init waits for one more byte), then end of file once the
// command's execve has closed fd 3. Once the command has ended, init sends
// its status on the exec channel (EXEC_EXITED, EXEC_COMMAND_ID) and exits.
//
// Wire format on fd 3: see wire.h, which the Go side reads too.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <dirent.h>
#include <grp.h>
#include <unistd.h>

#include "wire.h" // record tags, report tags, names shared with Go

#define CFG_FD 3
#define MAX_MSG (1 << 20)
#define MAX_LIST 4096
#define MAX_VOLUMES 64
#define MAX_CGROUPS 16

struct op {
	int tag;
	uint64_t flags;
	uint32_t optional;
	char *a, *b, *c, *d; // meaning depends on tag
};

static struct {
	char *rootfs, *hostname, *cwd;
	char *argv[MAX_LIST + 1];
	char *envp[MAX_LIST + 1];
	int argc, envc;
	struct op ops[MAX_LIST];
	int nops;
	struct sock_filter *filter;
	unsigned short filter_len;
	uint32_t uid, gid;
	gid_t groups[USER_MAX_GROUPS];
	size_t ngroups;
	char *volumes[MAX_VOLUMES];
	int bind[MAX_VOLUMES]; // a host directory: never filled
	int nvolumes;
	int tty;
	int hold; // TAG_HOLD
	struct op cgroups[MAX_CGROUPS];
	int ncgroups;
	uint64_t dropcaps;
} cfg;

// report_fd is where failures are reported: fd 3, until the command's
// preserved descriptors take 3.. (place_extra_fds).
static int report_fd = CFG_FD;
// nextra descriptors of the caller's sit at CFG_FD+1.. (OAK_EXTRA_FDS_ENV).
static int nextra;

// report_failure sends a failure record and exits. A REPORT_EXEC record
// starts with err, so that the parent can tell a command that is not there
// from one that cannot run. It is used both before and after the seccomp
// filter is in place: write and exit_group are allowed.
// trace marks a phase on stderr as internal/trace does ("oak-trace
// MONOTONIC_NS PID PHASE"), when the host set OAK_TRACE_ENV; off, one branch.
static int tracing;
static int trace_fd = 2; // init's own stderr goes after the fork; see drop_stdio
static void trace(const char *phase)
{
	struct timespec ts;
	if (!tracing)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	dprintf(trace_fd, "oak-trace %lld %d nsinit: %s\n",
		(long long)ts.tv_sec * 1000000000LL + ts.tv_nsec, (int)getpid(), phase);
}

static void report_failure(uint32_t tag, int err, const char *fmt, va_list ap)
{
	char msg[4 + 1024];
	uint32_t e = err;
	memcpy(msg, &e, sizeof e);
	int n = vsnprintf(msg + 4, sizeof msg - 4, fmt, ap);
	if (n < 0)
		n = 0;
	if (n > (int)sizeof msg - 5)
		n = sizeof msg - 5;
	uint32_t hdr[2] = {tag, n + 4};
	if (write(report_fd, hdr, sizeof hdr) < 0 || write(report_fd, msg, n + 4) < 0) {
		// Nobody to tell; the exit status still says it failed.
	}
	_exit(127);
}

// fail reports "what: cause" to the parent and exits.
static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	report_failure(REPORT_ERROR, 0, fmt, ap);
	va_end(ap);
}

// fail_errno is fail for a system call that failed with err, which the
// host can tell apart (a fork refused for want of tasks: EAGAIN).
static void fail_errno(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	report_failure(REPORT_ERROR, err, fmt, ap);
	va_end(ap);
}

// fail_exec is fail for the command's own execve, which failed with err.
static void fail_exec(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	report_failure(REPORT_EXEC, err, fmt, ap);
	va_end(ap);
}

static void read_full(void *buf, size_t len)
{
	char *p = buf;
	while (len > 0) {
		ssize_t n = read(CFG_FD, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			fail("nsinit: read task description: %s", n == 0 ? "short message" : strerror(errno));
		p += n;
		len -= n;
	}
}

// next_str splits a record payload at the next NUL (or its end).
static char *next_str(char **p, char *end)
{
	char *s = *p;
	char *z = memchr(s, 0, end - s);
	if (z == NULL)
		fail("nsinit: malformed record: missing NUL");
	*p = z + 1;
	return s;
}

static void read_config(void)
{
	for (;;) {
		uint32_t hdr[2];
		read_full(hdr, sizeof hdr);
		uint32_t tag = hdr[0], len = hdr[1];
		if (tag == TAG_END)
			return;
		if (len > MAX_MSG)
			fail("nsinit: record %u too long (%u bytes)", tag, len);
		char *buf = malloc(len + 1);
		if (buf == NULL)
			fail("nsinit: out of memory");
		read_full(buf, len);
		buf[len] = 0; // every string field is terminated, even the last
		char *p = buf, *end = buf + len + 1;
		struct op *op;
		switch (tag) {
		case TAG_ROOTFS:
			cfg.rootfs = buf;
			break;
		case TAG_HOSTNAME:
			cfg.hostname = buf;
			break;
		case TAG_CWD:
			cfg.cwd = buf;
			break;
		case TAG_ARG:
		case TAG_ENV: {
			int *n = tag == TAG_ARG ? &cfg.argc : &cfg.envc;
			char **list = tag == TAG_ARG ? cfg.argv : cfg.envp;
			if (*n >= MAX_LIST)
				fail("nsinit: too many arguments or variables");
			list[(*n)++] = buf;
			break;
		}
		case TAG_SECCOMP:
			if (len % sizeof(struct sock_filter) != 0 || len / sizeof(struct sock_filter) > BPF_MAXINSNS)
				fail("nsinit: bad seccomp program length %u", len);
			cfg.filter = (struct sock_filter *)buf;
			cfg.filter_len = len / sizeof(struct sock_filter);
			break;
		case TAG_VOLUME:
		case TAG_BIND:
			if (cfg.nvolumes >= MAX_VOLUMES)
				fail("nsinit: too many volumes");
			cfg.bind[cfg.nvolumes] = tag == TAG_BIND;
			cfg.volumes[cfg.nvolumes++] = buf;
			break;
		case TAG_TTY:
			cfg.tty = 1;
			break;
		case TAG_HOLD:
			cfg.hold = 1;
			break;
		case TAG_CGROUP:
			if (cfg.ncgroups >= MAX_CGROUPS)
				fail("nsinit: too many cgroup views");
			op = &cfg.cgroups[cfg.ncgroups++];
			op->c = next_str(&p, end); // fstype
			op->b = next_str(&p, end); // directory
			op->d = next_str(&p, end); // options
			break;
		case TAG_DROP_CAPS:
			if (len != 8)
				fail("nsinit: bad capability record");
			memcpy(&cfg.dropcaps, buf, 8);
			break;
		case TAG_USER:
			if (len < 8 || len % 4 != 0 || (len - 8) / 4 > USER_MAX_GROUPS)
				fail("nsinit: bad user record");
			memcpy(&cfg.uid, buf, 4);
			memcpy(&cfg.gid, buf + 4, 4);
			cfg.ngroups = (len - 8) / 4;
			for (size_t i = 0; i < cfg.ngroups; i++) {
				uint32_t g;
				memcpy(&g, buf + 8 + 4 * i, 4);
				cfg.groups[i] = g;
			}
			break;
		case TAG_MOUNT:
		case TAG_MKFILE:
		case TAG_MKDIR:
		case TAG_SYMLINK:
			if (cfg.nops >= MAX_LIST)
				fail("nsinit: too many mount operations");
			op = &cfg.ops[cfg.nops++];
			op->tag = tag;
			if (tag == TAG_MOUNT) {
				if (len < 12)
					fail("nsinit: short mount record");
				memcpy(&op->flags, p, 8);
				memcpy(&op->optional, p + 8, 4);
				p += 12;
				op->a = next_str(&p, end); // source
				op->b = next_str(&p, end); // target
				op->c = next_str(&p, end); // fstype
				op->d = next_str(&p, end); // data
			} else {
				op->b = next_str(&p, end); // target
				if (tag == TAG_SYMLINK)
					op->a = next_str(&p, end); // link text
			}
			break;
		default:
			fail("nsinit: unknown record tag %u", tag);
		}
	}
}

static int rootfd = -1;
static int ctl;   // the exec channel, see serve_exec
static int local; // the local-socket channel, see serve_local

// The parent passes descriptors first thing: the container's root as a
// detached overlay mount it has already made read-only over id-mapped
// layers (treefd), the directory in our mount namespace to attach it on
// (mountfd, opened through /proc/PID/root: our own ids may not be able to
// search the path to it), the command's stdin, stdout and stderr (which
// become our 0, 1 and 2: a sandbox may be made before its task is known),
// and one detached, id-mapped mount per volume.
static int treefd = -1, mountfd = -1;
static int volumefds[MAX_VOLUMES];
static int nvolumefds;

static void receive_root(void)
{
	char byte;
	char ctl[CMSG_SPACE((5 + MAX_VOLUMES) * sizeof(int))];
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
	ssize_t n;
	do
		n = recvmsg(CFG_FD, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (n != 1 || (msg.msg_flags & MSG_CTRUNC) || c == NULL || c->cmsg_level != SOL_SOCKET ||
	    c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(5 * sizeof(int)))
		fail("nsinit: receive root: %s", n < 0 ? strerror(errno) : "malformed message");
	int nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
	int fds[5 + MAX_VOLUMES];
	memcpy(fds, CMSG_DATA(c), nfds * sizeof(int));
	treefd = fds[0];
	mountfd = fds[1];
	// Received descriptors are above fd 3 (everything else was closed), so
	// none of them is 0, 1 or 2 already.
	for (int i = 0; i < 3; i++) {
		if (dup2(fds[2 + i], i) != i)
			fail("nsinit: stdio %d: %s", i, strerror(errno));
		close(fds[2 + i]);
	}
	nvolumefds = nfds - 5;
	memcpy(volumefds, fds + 5, nvolumefds * sizeof(int));
}

// resolve opens target below the root without following any symbolic link,
// so an image cannot redirect a mount to a host path. Returns -1 with errno.
static int resolve(const char *target, int flags)
{
	if (target[0] == 0)
		return openat(rootfd, ".", O_PATH | O_CLOEXEC | flags);
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC | O_NOFOLLOW | flags,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	return syscall(SYS_openat2, rootfd, target, &how, sizeof how);
}

// resolve_parent opens the directory holding target and returns its last element.
static int resolve_parent(char *target, const char **base)
{
	char *slash = strrchr(target, '/');
	if (slash == NULL) {
		*base = target;
		return resolve("", O_DIRECTORY);
	}
	*slash = 0;
	int fd = resolve(target, O_DIRECTORY);
	*slash = '/';
	*base = slash + 1;
	return fd;
}

// locked_flags are the flags of an existing mount that a user namespace may
// not clear on remount; a bind remount must repeat them or it fails with EPERM.
static unsigned long locked_flags(const char *path)
{
	struct statvfs sv;
	unsigned long f = 0;
	if (statvfs(path, &sv) != 0)
		return 0;
	if (sv.f_flag & ST_NOSUID)
		f |= MS_NOSUID;
	if (sv.f_flag & ST_NODEV)
		f |= MS_NODEV;
	if (sv.f_flag & ST_NOEXEC)
		f |= MS_NOEXEC;
	if (sv.f_flag & ST_NOATIME)
		f |= MS_NOATIME;
	if (sv.f_flag & ST_NODIRATIME)
		f |= MS_NODIRATIME;
	if (sv.f_flag & ST_RELATIME)
		f |= MS_RELATIME;
	return f;
}

static void do_op(struct op *op)
{
	char path[64];
	const char *base;
	int fd;
	switch (op->tag) {
	case TAG_MOUNT:
		fd = resolve(op->b, 0);
		if (fd < 0) {
			if (op->optional && errno == ENOENT)
				return;
			fail("mount %s on /%s: resolve target: %s", op->a, op->b, strerror(errno));
		}
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
		unsigned long flags = op->flags;
		if ((flags & MS_REMOUNT) && (flags & MS_BIND))
			flags |= locked_flags(path);
		// A source of "." is the target itself (a read-only path).
		const char *src = strcmp(op->a, ".") == 0 ? path : op->a[0] ? op->a : NULL;
		if (mount(src, path, op->c[0] ? op->c : NULL, flags, op->d[0] ? op->d : NULL) != 0)
			fail("mount %s on /%s (%s): %s", op->a[0] ? op->a : op->c, op->b, op->c, strerror(errno));
		close(fd);
		return;
	case TAG_MKFILE:
	case TAG_MKDIR:
	case TAG_SYMLINK:
		fd = resolve_parent(op->b, &base);
		if (fd < 0)
			fail("create /%s: resolve parent: %s", op->b, strerror(errno));
		// An O_PATH descriptor is enough for the *at calls below.
		int r;
		if (op->tag == TAG_MKFILE) {
			r = mknodat(fd, base, S_IFREG | 0666, 0);
		} else if (op->tag == TAG_MKDIR) {
			r = mkdirat(fd, base, 0755);
		} else {
			r = symlinkat(op->a, fd, base);
		}
		if (r != 0 && errno != EEXIST)
			fail("create /%s: %s", op->b, strerror(errno));
		close(fd);
		return;
	}
}

// copy_tree copies the contents of directory src into directory dst, with
// owners, modes and times: regular files, directories, symbolic links and
// FIFOs (anything else an image has there is left out). Nothing is
// followed: every name is opened with O_NOFOLLOW below src. Returns 0, or
// -1 with errno and the failing name in *what.
static int copy_tree(int src, int dst, int depth, const char **what)
{
	if (depth > 64) {
		errno = ELOOP;
		*what = "(too deep)";
		return -1;
	}
	int dfd = openat(src, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
	if (d == NULL) {
		*what = ".";
		return -1;
	}
	struct dirent *e;
	int r = 0;
	while (r == 0 && (errno = 0, e = readdir(d)) != NULL) {
		const char *n = e->d_name;
		if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
			continue;
		*what = n;
		struct stat st;
		if (fstatat(src, n, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			r = -1;
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			if (mkdirat(dst, n, 0700) != 0) {
				r = -1;
				break;
			}
			int s2 = openat(src, n, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			int d2 = openat(dst, n, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			r = s2 < 0 || d2 < 0 ? -1 : copy_tree(s2, d2, depth + 1, what);
			if (s2 >= 0)
				close(s2);
			if (d2 >= 0)
				close(d2);
		} else if (S_ISREG(st.st_mode)) {
			int in = openat(src, n, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			int out = openat(dst, n, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
			if (in < 0 || out < 0)
				r = -1;
			char buf[65536];
			ssize_t k;
			while (r == 0 && (k = read(in, buf, sizeof buf)) != 0) {
				if (k < 0 || write(out, buf, k) != k)
					r = -1;
			}
			if (in >= 0)
				close(in);
			if (out >= 0 && close(out) != 0)
				r = -1;
		} else if (S_ISLNK(st.st_mode)) {
			char target[4096];
			ssize_t k = readlinkat(src, n, target, sizeof target - 1);
			if (k < 0)
				r = -1;
			else {
				target[k] = 0;
				r = symlinkat(target, dst, n);
			}
		} else if (S_ISFIFO(st.st_mode)) {
			r = mknodat(dst, n, S_IFIFO | 0600, 0);
		} else {
			continue;
		}
		if (r != 0)
			break;
		struct timespec ts[2] = {st.st_atim, st.st_mtim};
		if (fchownat(dst, n, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) != 0 ||
		    (!S_ISLNK(st.st_mode) && fchmodat(dst, n, st.st_mode & 07777, 0) != 0) ||
		    utimensat(dst, n, ts, AT_SYMLINK_NOFOLLOW) != 0)
			r = -1;
	}
	int saved = errno;
	closedir(d);
	errno = saved;
	return r != 0 || errno != 0 ? -1 : 0;
}

// fill_volume gives a new, empty volume what the image has at its target,
// as docker does with a named volume: the directory's owner and mode and
// its contents. A volume is new when its root holds nothing but an empty
// lost+found (which is removed: programs such as initdb refuse a data
// directory that is not empty). A read-only volume is left alone.
static void fill_volume(const char *name, int image, int volume)
{
	struct statvfs sv;
	if (fstatvfs(volume, &sv) != 0 || (sv.f_flag & ST_RDONLY))
		return;
	int vd = openat(volume, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = vd < 0 ? NULL : fdopendir(vd);
	if (d == NULL)
		fail("volume on /%s: read: %s", name, strerror(errno));
	struct dirent *e;
	int lost = 0, other = 0;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (strcmp(e->d_name, "lost+found") == 0)
			lost = 1;
		else
			other = 1;
	}
	closedir(d);
	if (other || (lost && unlinkat(volume, "lost+found", AT_REMOVEDIR) != 0))
		return; // in use already, or lost+found holds something
	struct stat st;
	if (fstat(image, &st) != 0)
		fail("volume on /%s: stat the image's directory: %s", name, strerror(errno));
	const char *what = "";
	if (copy_tree(image, volume, 0, &what) != 0)
		fail("volume on /%s: fill from the image: %s: %s", name, what, strerror(errno));
	int root = openat(volume, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0 || fchown(root, st.st_uid, st.st_gid) != 0 || fchmod(root, st.st_mode & 07777) != 0)
		fail("volume on /%s: owner and mode from the image: %s", name, strerror(errno));
	close(root);
}

static void build_root(void)
{
	// The host's supplementary groups would otherwise stay with us.
	if (setgroups(0, NULL) != 0)
		fail("drop supplementary groups: %s", strerror(errno));

	// Nothing we mount may propagate back to the host, and nothing the host
	// mounts later may appear in the container.
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		fail("make mounts private: %s", strerror(errno));
	if (move_mount(treefd, "", mountfd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0)
		fail("attach root file system %s: %s", cfg.rootfs, strerror(errno));
	close(mountfd);
	rootfd = treefd;
	for (int i = 0; i < cfg.nops; i++)
		do_op(&cfg.ops[i]);
	if (cfg.nvolumes != nvolumefds)
		fail("nsinit: %d volume targets for %d volume mounts", cfg.nvolumes, nvolumefds);
	for (int i = 0; i < cfg.nvolumes; i++) {
		int target = resolve(cfg.volumes[i], O_DIRECTORY);
		if (target < 0)
			fail("volume on /%s: resolve target: %s", cfg.volumes[i], strerror(errno));
		if (!cfg.bind[i])
			fill_volume(cfg.volumes[i], target, volumefds[i]);
		if (move_mount(volumefds[i], "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0)
			fail("volume on /%s: attach: %s", cfg.volumes[i], strerror(errno));
		close(target);
		close(volumefds[i]);
	}

	// pivot_root(".", ".") stacks the old root under the new one; detaching
	// it leaves the container with nothing of the host's tree.
	if (fchdir(rootfd) != 0)
		fail("chdir to root: %s", strerror(errno));
	if (syscall(SYS_pivot_root, ".", ".") != 0)
		fail("pivot_root: %s", strerror(errno));
	if (umount2(".", MNT_DETACH) != 0)
		fail("detach old root: %s", strerror(errno));
	close(rootfd);
	if (chdir("/") != 0)
		fail("chdir /: %s", strerror(errno));
}

// containerCaps are the capabilities a container's root holds, in its own
// user namespace only: ownership and permission of files owned by its own
// mapped ids (CHOWN, DAC_OVERRIDE, FOWNER, FSETID), switching between its own
// users and groups (SETUID, SETGID, SETPCAP for dropping capabilities from
// the bounding set), and signalling its own processes whatever their user
// (KILL). A capability held in a non-initial user namespace acts only on
// objects that namespace owns: files whose owner is mapped into it, processes
// in it. Nothing here reaches a kernel subsystem the filter keeps closed.
// See docs/design.md, "What container root may do".
#define CONTAINER_CAPS                                                                            \
	((1ULL << CAP_CHOWN) | (1ULL << CAP_DAC_OVERRIDE) | (1ULL << CAP_FOWNER) | (1ULL << CAP_FSETID) | \
	 (1ULL << CAP_KILL) | (1ULL << CAP_SETGID) | (1ULL << CAP_SETUID) | (1ULL << CAP_SETPCAP))

// mount_cgroups gives the container a read-only view of its own control
// groups at /sys/fs/cgroup, so that runtimes (JVM, Go, Node, .NET) size
// themselves to its limits. It runs after the cgroup namespace is made:
// each hierarchy then shows the container's group as its root and nothing
// above or beside it. The engine names only hierarchies in which the
// container has a group of its own.
static void mount_cgroups(void)
{
	if (cfg.ncgroups == 0)
		return;
	const unsigned long ro = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY;
	if (mount("sysfs-oak", "/sys", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755,size=16k") != 0)
		fail("mount /sys: %s", strerror(errno));
	if (mkdir("/sys/fs", 0755) != 0 || mkdir("/sys/fs/cgroup", 0755) != 0)
		fail("mkdir /sys/fs/cgroup: %s", strerror(errno));
	for (int i = 0; i < cfg.ncgroups; i++) {
		struct op *g = &cfg.cgroups[i];
		char dir[256];
		if (strchr(g->b, '/') != NULL || strcmp(g->b, "..") == 0 ||
		    snprintf(dir, sizeof dir, "/sys/fs/cgroup%s%s", g->b[0] ? "/" : "", g->b) >= (int)sizeof dir)
			fail("nsinit: bad cgroup view %s", g->b);
		if (g->b[0] && mkdir(dir, 0755) != 0)
			fail("mkdir %s: %s", dir, strerror(errno));
		if (mount("cgroup", dir, g->c, ro, g->d[0] ? g->d : NULL) != 0)
			fail("mount %s %s on %s: %s", g->c, g->d, dir, strerror(errno));
	}
	if (mount(NULL, "/sys", NULL, MS_REMOUNT | ro, NULL) != 0)
		fail("remount /sys read-only: %s", strerror(errno));
}

// drop_bounding removes every capability but CONTAINER_CAPS (less the
// task's dropped ones) from the
// bounding set and clears the ambient set, so no later execve can give any
// process more than those. Root keeps its usual meaning (an execve as uid 0
// gets the bounding set, as on a host); no_new_privs keeps setuid and file
// capabilities from adding anything.
static void drop_bounding(void)
{
	for (int c = 0; c <= 63; c++) {
		if (CONTAINER_CAPS & ~cfg.dropcaps & (1ULL << c))
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL)
			fail("drop capability %d from bounding set: %s", c, strerror(errno));
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0)
		fail("clear ambient capabilities: %s", strerror(errno));
}

// set_caps_pe sets the calling process's permitted and effective sets and
// empties its inheritable set.
static void set_caps_pe(uint64_t permitted, uint64_t effective)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof data);
	data[0].permitted = (uint32_t)permitted;
	data[1].permitted = (uint32_t)(permitted >> 32);
	data[0].effective = (uint32_t)effective;
	data[1].effective = (uint32_t)(effective >> 32);
	if (syscall(SYS_capset, &hdr, data) != 0)
		fail("set capabilities: %s", strerror(errno));
}

// set_caps makes keep the calling process's permitted and effective sets.
static void set_caps(uint64_t keep)
{
	set_caps_pe(keep, keep);
}

// become makes a process forked from init (exec_child, a local-socket
// helper) a user of the container: groups, gid, then uid, with the
// capabilities init holds permitted. Root keeps them for its execve; any
// other user loses every capability with the setresuid, as on a host.
// Returns 0 or the errno of the step that failed.
static int become(uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups)
{
	set_caps(CONTAINER_CAPS & ~cfg.dropcaps);
	if (setgroups(ngroups, groups) != 0 || setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0)
		return errno;
	return 0;
}

// report sends one record to the parent over fd 3.
static void report(uint32_t tag, const void *p, uint32_t len)
{
	uint32_t hdr[2] = {tag, len};
	if (write(CFG_FD, hdr, sizeof hdr) != sizeof hdr || write(CFG_FD, p, len) != (ssize_t)len)
		fail("nsinit: report to parent: %s", strerror(errno));
}

// install_filter installs the seccomp filter for init and everything it
// starts, and hands its notification listener to the parent: the parent
// takes its own copy with pidfd_getfd and acknowledges, and only then is our
// copy closed, so no process in the container ever holds it.
static void install_filter(void)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		fail("set no_new_privs: %s", strerror(errno));
	if (cfg.filter_len == 0)
		fail("nsinit: no seccomp program");
	struct sock_fprog prog = {.len = cfg.filter_len, .filter = cfg.filter};
	int listener = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
			       SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, &prog);
	if (listener < 0)
		fail("install seccomp filter: %s", strerror(errno));
	uint32_t fd = listener;
	report(REPORT_LISTENER, &fd, sizeof fd);
	char ack;
	if (read(CFG_FD, &ack, 1) != 1)
		fail("nsinit: no acknowledgement of the listener");
	close(listener);
}

// open_channel makes a channel to init and hands the host its end (report
// tag), the way install_filter hands over the listener; it returns init's.
static int open_channel(uint32_t tag)
{
	int pair[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0)
		fail("channel %u: %s", tag, strerror(errno));
	uint32_t fd = pair[1];
	report(tag, &fd, sizeof fd);
	char ack;
	if (read(CFG_FD, &ack, 1) != 1)
		fail("nsinit: no acknowledgement of channel %u", tag);
	close(pair[1]);
	return pair[0];
}

// exec_search runs file as execvp would, but searching the PATH of envp,
// inside the container's own root: what the image holds is what the
// command finds. It returns only on failure, with the errno that says why
// (ENOENT: not found anywhere).
static int exec_search(const char *file, char **argv, char **envp)
{
	if (strchr(file, '/') != NULL) {
		execve(file, argv, envp);
		return errno;
	}
	const char *path = OAK_DEFAULT_PATH;
	for (char **e = envp; *e != NULL; e++) {
		if (strncmp(*e, "PATH=", 5) == 0)
			path = *e + 5;
	}
	int saved = ENOENT;
	char buf[4096];
	for (const char *p = path;; p++) {
		const char *end = strchrnul(p, ':');
		int n = end == p ? snprintf(buf, sizeof buf, "%s", file)
				 : snprintf(buf, sizeof buf, "%.*s/%s", (int)(end - p), p, file);
		if (n > 0 && n < (int)sizeof buf) {
			execve(buf, argv, envp);
			// Like execvp: a missing entry means "keep looking"; a file
			// that is there but cannot run is the answer unless a later
			// entry runs.
			if (errno != ENOENT && errno != ENOTDIR)
				saved = errno;
		}
		if (*end == 0)
			break;
		p = end;
	}
	return saved;
}

// exec_path runs the task's command; it only returns by failing.
static void exec_path(const char *file)
{
	int err = exec_search(file, cfg.argv, cfg.envp);
	if (strchr(file, '/') != NULL || err != ENOENT)
		fail_exec(err, "exec %s: %s", file, strerror(err));
	fail_exec(err, "exec %s: not found in the image's PATH", file);
}

// place_extra_fds moves the caller's extra descriptors from CFG_FD+1.. to
// CFG_FD.. for the command, and the report channel above them, where its
// close-on-exec still tells the parent the execve worked.
static void place_extra_fds(void)
{
	if (nextra == 0)
		return;
	report_fd = fcntl(CFG_FD, F_DUPFD_CLOEXEC, CFG_FD + 1 + nextra);
	if (report_fd < 0) {
		report_fd = CFG_FD;
		fail("move the report channel: %s", strerror(errno));
	}
	// Downwards one by one: each target was the previous source.
	for (int i = 0; i < nextra; i++) {
		if (dup2(CFG_FD + 1 + i, CFG_FD + i) < 0)
			fail("preserved descriptor %d: %s", CFG_FD + i, strerror(errno));
	}
	close(CFG_FD + nextra);
}

static void exec_command(const sigset_t *oldmask)
{
	if (setgroups(cfg.ngroups, cfg.groups) != 0)
		fail("supplementary groups: %s", strerror(errno));
	if (setresgid(cfg.gid, cfg.gid, cfg.gid) != 0)
		fail("setgid %u: %s", cfg.gid, strerror(errno));
	// Root keeps CONTAINER_CAPS for its execve; any other user loses every
	// capability with the setresuid, as on a host.
	set_caps(CONTAINER_CAPS & ~cfg.dropcaps);
	if (setresuid(cfg.uid, cfg.uid, cfg.uid) != 0)
		fail("setuid %u: %s", cfg.uid, strerror(errno));
	if (cfg.cwd && chdir(cfg.cwd) != 0)
		fail("working directory %s: %s", cfg.cwd, strerror(errno));
	// With a terminal the command leads a session whose controlling
	// terminal is its stdin, so the terminal's Ctrl-C, Ctrl-Z and window
	// size reach its foreground job.
	if (cfg.tty && (setsid() < 0 || ioctl(0, TIOCSCTTY, 0) != 0))
		fail("controlling terminal: %s", strerror(errno));
	if (sigprocmask(SIG_SETMASK, oldmask, NULL) != 0)
		fail("restore signal mask: %s", strerror(errno));
	cfg.argv[cfg.argc] = NULL;
	cfg.envp[cfg.envc] = NULL;
	trace("exec");
	place_extra_fds();
	exec_path(cfg.argv[0]);
}

// The exec channel: oak exec starts more processes in a running container
// through its init, which is in all its namespaces, its root, its groups
// and under its seccomp filter already, so what it starts is too, with
// nothing of the host's but the descriptors the request carries. The host
// holds one end of a SOCK_SEQPACKET pair (REPORT_CONTROL), init the other;
// messages are wire.h's EXEC_*.
static int ctl = -1;

#define MAX_EXECS 256
static struct {
	uint32_t id;
	pid_t pid;
} execs[MAX_EXECS];

static void ctl_send(uint32_t type, uint32_t id, int32_t val)
{
	uint32_t msg[3] = {type, id, (uint32_t)val};
	while (send(ctl, msg, sizeof msg, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

// exec_child is the child half of an exec request: it becomes the request's
// user in a session of its own with the request's descriptors as 0, 1, 2.
// It reports a failure's errno on errfd (close-on-exec, so a successful
// execve reports nothing) and exits.
static void exec_child(char *p, char *end, uint32_t uid, uint32_t gid, uint32_t flags,
		       uint32_t nargs, uint32_t nenv, uint32_t dropcaps, int *fds, int nfds, int errfd)
{
	char *cwd = next_str(&p, end);
	char *argv[MAX_LIST + 1], *envp[MAX_LIST + 1];
	for (uint32_t i = 0; i < nargs; i++)
		argv[i] = next_str(&p, end);
	for (uint32_t i = 0; i < nenv; i++)
		envp[i] = next_str(&p, end);
	argv[nargs] = envp[nenv] = NULL;
	int err = 0;
	// Every descriptor first goes above the targets 0..nfds-1, so that
	// placing one never overwrites another (or errfd).
	int moved = fcntl(errfd, F_DUPFD_CLOEXEC, nfds);
	if (moved < 0)
		err = errno;
	else
		errfd = moved;
	for (int i = 0; i < nfds && err == 0; i++) {
		if ((fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, nfds)) < 0)
			err = errno;
	}
	for (int i = 0; i < nfds && err == 0; i++) {
		if (dup2(fds[i], i) < 0)
			err = errno;
	}
	if (err == 0 && syscall(SYS_close_range, nfds, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
		err = errno;
	if (err == 0 && setsid() < 0)
		err = errno;
	if (err == 0 && (flags & EXEC_FLAG_TTY) && ioctl(0, TIOCSCTTY, 0) != 0)
		err = errno;
	// Capabilities this request gives up leave the bounding set, which is
	// what root's execve gets (CAP_SETPCAP, made effective, allows it).
	if (err == 0 && dropcaps != 0)
		set_caps(CONTAINER_CAPS & ~cfg.dropcaps);
	for (int c = 0; c <= 63 && err == 0; c++) {
		if ((dropcaps & (1ULL << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL)
			err = errno;
	}
	if (err == 0)
		err = become(uid, gid, NULL, 0);
	if (err == 0 && cwd[0] && chdir(cwd) != 0)
		err = errno;
	sigset_t none;
	sigemptyset(&none);
	if (err == 0 && sigprocmask(SIG_SETMASK, &none, NULL) != 0)
		err = errno;
	if (err == 0)
		err = exec_search(argv[0], argv, envp);
	uint32_t e = err;
	if (write(errfd, &e, sizeof e) < 0) {
		// Init reads EOF and reports EIO.
	}
	_exit(127);
}

// serve_exec answers one message of the exec channel.
static void serve_exec(void)
{
	static char buf[MAX_MSG];
	char cbuf[CMSG_SPACE((3 + OAK_MAX_EXTRA_FDS) * sizeof(int))];
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf - 1};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
	ssize_t n = recvmsg(ctl, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n == 0) {
		// The host closed its end: no more execs. Keep serving signals.
		close(ctl);
		ctl = -1;
		return;
	}
	if (n < 0)
		return;
	int fds[3 + OAK_MAX_EXTRA_FDS], nfds = 0;
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (c != NULL && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
		nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (nfds > 3 + OAK_MAX_EXTRA_FDS)
			nfds = 3 + OAK_MAX_EXTRA_FDS;
		memcpy(fds, CMSG_DATA(c), nfds * sizeof(int));
	}
	uint32_t h[8] = {0};
	memcpy(h, buf, n < (ssize_t)sizeof h ? (size_t)n : sizeof h);
	buf[n] = 0;
	if (h[0] == EXEC_SIGNAL && n >= 12) {
		for (int i = 0; i < MAX_EXECS; i++) {
			if (execs[i].pid > 0 && execs[i].id == h[1])
				kill(execs[i].pid, (int)h[2]);
		}
	} else if (h[0] == EXEC_START && n >= (ssize_t)sizeof h && nfds >= 3 && h[5] >= 1 && h[5] <= MAX_LIST &&
		   h[6] <= MAX_LIST && !(msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		int slot = -1;
		for (int i = 0; i < MAX_EXECS && slot < 0; i++) {
			if (execs[i].pid == 0)
				slot = i;
		}
		// Every string must be there and NUL-terminated: count them.
		char *p = buf + sizeof h, *end = buf + n;
		uint32_t strs = 0;
		for (char *q = p; q < end; q++)
			strs += *q == 0;
		int32_t res = -EINVAL;
		int errp[2];
		if (slot < 0)
			res = -EAGAIN;
		else if (strs >= 1 + h[5] + h[6] && end[-1] == 0 && pipe2(errp, O_CLOEXEC) == 0) {
			pid_t pid = fork();
			if (pid == 0)
				exec_child(p, end + 1, h[2], h[3], h[4], h[5], h[6], h[7], fds, nfds, errp[1]);
			close(errp[1]);
			if (pid < 0) {
				res = -errno;
			} else {
				uint32_t e = 0;
				ssize_t k;
				while ((k = read(errp[0], &e, sizeof e)) < 0 && errno == EINTR)
					;
				if (k == 0) {
					res = pid; // its execve closed the pipe: it runs
					execs[slot].id = h[1];
					execs[slot].pid = pid;
				} else {
					res = -(int32_t)(k == sizeof e ? e : EIO);
					waitpid(pid, NULL, 0);
				}
			}
			close(errp[0]);
		}
		ctl_send(EXEC_STARTED, h[1], res);
	}
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
}

// The local-socket channel: the network service lets a single-threaded
// process's calls on its own AF_UNIX sockets through to the kernel, but a
// process with several threads could swap a host socket behind the
// descriptor number before the kernel re-reads it. For those it hands the
// call here instead, with its own copy of the socket: a helper forked from
// init takes the caller's ids and working directory and makes the call on
// that copy. The helper is single-threaded, so when its call is trapped in
// turn the service lets it through; the path is looked up in the
// container's root with the caller's credentials, exactly as the kernel
// would have for the caller.
static int local = -1;

#define MAX_LOCAL 64
static struct {
	uint32_t id;
	int pipe; // the helper's result; -1 when the slot is free
} locals[MAX_LOCAL];

static void local_send(uint32_t id, int32_t val)
{
	uint32_t msg[3] = {LOCAL_DONE, id, (uint32_t)val};
	while (send(local, msg, sizeof msg, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

// serve_local starts a helper for one message of the local-socket channel.
static void serve_local(void)
{
	uint32_t buf[6 + LOCAL_MAX_GROUPS + 32]; // the header, the groups, a sockaddr_un
	char cbuf[CMSG_SPACE(2 * sizeof(int))];
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
	ssize_t n = recvmsg(local, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n == 0) {
		close(local);
		local = -1;
		return;
	}
	if (n < 0)
		return;
	int fds[2] = {-1, -1}, nfds = 0;
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (c != NULL && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
		nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (nfds > 2)
			nfds = 2;
		memcpy(fds, CMSG_DATA(c), nfds * sizeof(int));
	}
	uint32_t type = buf[0], id = buf[1], ngroups = buf[4], alen = buf[5];
	int32_t res = -EINVAL;
	int slot = -1;
	for (int i = 0; i < MAX_LOCAL && slot < 0; i++) {
		if (locals[i].pipe < 0)
			slot = i;
	}
	int p[2];
	if (n < 24 || (type != LOCAL_BIND && type != LOCAL_CONNECT) || nfds != 2 || ngroups > LOCAL_MAX_GROUPS ||
	    alen < 2 || alen > sizeof(struct sockaddr_un) || (size_t)n != 24 + 4 * ngroups + alen ||
	    (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		res = -EINVAL;
	} else if (slot < 0) {
		res = -EAGAIN;
	} else if (pipe2(p, O_CLOEXEC) != 0) {
		res = -errno;
	} else {
		pid_t pid = fork();
		if (pid == 0) {
			gid_t groups[LOCAL_MAX_GROUPS];
			for (uint32_t i = 0; i < ngroups; i++)
				groups[i] = buf[6 + i];
			struct sockaddr_un sa;
			memset(&sa, 0, sizeof sa);
			memcpy(&sa, (char *)buf + 24 + 4 * ngroups, alen);
			int err = 0;
			if (fchdir(fds[1]) != 0)
				err = errno;
			if (err == 0)
				err = become(buf[2], buf[3], groups, ngroups);
			if (err == 0) {
				int r = type == LOCAL_BIND ? bind(fds[0], (struct sockaddr *)&sa, alen)
							   : connect(fds[0], (struct sockaddr *)&sa, alen);
				if (r != 0)
					err = errno;
			}
			uint32_t e = err;
			if (write(p[1], &e, sizeof e) < 0) {
				// init reads EOF and answers EIO
			}
			_exit(0);
		}
		close(p[1]);
		if (pid < 0) {
			res = -errno;
			close(p[0]);
		} else {
			locals[slot].id = id;
			locals[slot].pipe = p[0];
			res = 1; // answered when the helper is done
		}
	}
	if (res <= 0)
		local_send(id, res);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
}

// finish_local answers for the helper of slot i, whose pipe is readable.
static void finish_local(int i)
{
	uint32_t e = EIO;
	ssize_t k;
	while ((k = read(locals[i].pipe, &e, sizeof e)) < 0 && errno == EINTR)
		;
	if (k != sizeof e)
		e = EIO;
	close(locals[i].pipe);
	locals[i].pipe = -1;
	if (local >= 0)
		local_send(locals[i].id, -(int32_t)e);
}

// reap is pid 1 for the rest of the container's life: it forwards every
// signal it can catch but SIGCHLD to the command, serves the exec channel,
// reports each exec'd process's end, and exits with the command's status
// (128+N if a signal killed it). When it exits the kernel kills whatever is
// left.
//
// A signal goes to the command's process group, as a terminal sends Ctrl-C
// to its foreground job: a shell and the child it waits for both get it, so
// `sh -c 'sleep 30; echo after'` ends at once on SIGINT instead of when the
// sleep is done. Should the command have ended up in init's own group, the
// signal goes to every process of the container but init (kill -1) rather
// than back to init.
static void reap(pid_t child)
{
	// The command leads a process group of its own (both sides set it, so
	// it holds whichever runs first), or with a terminal a session.
	if (!cfg.tty)
		setpgid(child, child);
	sigset_t all;
	sigfillset(&all);
	int sfd = signalfd(-1, &all, SFD_CLOEXEC);
	if (sfd < 0)
		_exit(127);
	for (int i = 0; i < MAX_LOCAL; i++)
		locals[i].pipe = -1;
	for (;;) {
		// Only open descriptors are polled: poll refuses more entries
		// than RLIMIT_NOFILE, which --ulimit may have made small.
		struct pollfd pfd[3 + MAX_LOCAL];
		int slot[3 + MAX_LOCAL]; // which locals[] entry, for pfd[3...]
		int n = 0;
		pfd[n++] = (struct pollfd){.fd = sfd, .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = ctl, .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = local, .events = POLLIN};
		for (int i = 0; i < MAX_LOCAL; i++) {
			if (locals[i].pipe >= 0) {
				slot[n] = i;
				pfd[n++] = (struct pollfd){.fd = locals[i].pipe, .events = POLLIN};
			}
		}
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			_exit(127); // cannot happen with valid entries; never spin
		}
		const short ready = POLLIN | POLLHUP | POLLERR;
		if (ctl >= 0 && (pfd[1].revents & ready))
			serve_exec();
		if (local >= 0 && (pfd[2].revents & ready))
			serve_local();
		for (int j = 3; j < n; j++) {
			if (pfd[j].revents & ready)
				finish_local(slot[j]);
		}
		if (!(pfd[0].revents & POLLIN))
			continue;
		struct signalfd_siginfo si;
		if (read(sfd, &si, sizeof si) != sizeof si)
			continue;
		int sig = si.ssi_signo;
		if (sig != SIGCHLD) {
			pid_t group = getpgid(child);
			if (group > 0 && group != getpgrp())
				kill(-group, sig);
			else if (group == getpgrp())
				kill(-1, sig);
			else
				kill(child, sig);
			continue;
		}
		int status;
		pid_t pid;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			int code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
			if (pid == child) {
				// The host learns the status now; our exit, which
				// tears the namespaces down, comes after.
				trace("command exited");
				if (trace_fd != 2)
					close(trace_fd); // the output's end is not held up by tracing
				if (ctl >= 0)
					ctl_send(EXEC_EXITED, EXEC_COMMAND_ID, code);
				_exit(code);
			}
			for (int i = 0; i < MAX_EXECS; i++) {
				if (execs[i].pid == pid) {
					execs[i].pid = 0;
					if (ctl >= 0)
						ctl_send(EXEC_EXITED, execs[i].id, code);
				}
			}
		}
	}
}

// drop_stdio replaces init's copies of the command's stdin, stdout and
// stderr with the ends of a pipe that carries nothing: the host sees the
// end of the command's output when the command and what it started close
// theirs, not only when init exits. Init writes nothing there after the
// fork; its trace marks, if on, keep a copy of stderr.
static void drop_stdio(void)
{
	if (tracing)
		trace_fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		_exit(127);
	close(p[1]); // reads see end of file, writes EPIPE
	for (int i = 0; i < 3; i++) {
		if (dup2(p[0], i) != i)
			_exit(127);
	}
	close(p[0]);
}

__attribute__((constructor)) static void nsinit(void)
{
	if (getenv(OAK_NSINIT_ENV) == NULL)
		return;
	tracing = getenv(OAK_TRACE_ENV) != NULL;
	trace("start");
	// fd 3 must close when the command's execve succeeds: that EOF is how
	// the parent learns the launch worked.
	if (fcntl(CFG_FD, F_SETFD, FD_CLOEXEC) != 0)
		_exit(127);
	// Whatever else oak inherited from its own caller must not reach the
	// container: Go marks its own descriptors close-on-exec, not those.
	// Only the extra descriptors the launcher named stay, close-on-exec
	// until the command's are placed.
	const char *extra = getenv(OAK_EXTRA_FDS_ENV);
	if (extra != NULL) {
		nextra = atoi(extra);
		if (nextra < 0 || nextra > OAK_MAX_EXTRA_FDS)
			fail("nsinit: %s=%s: want 0..%d", OAK_EXTRA_FDS_ENV, extra, OAK_MAX_EXTRA_FDS);
	}
	if (syscall(SYS_close_range, CFG_FD + 1 + nextra, ~0U, 0) != 0)
		fail("close inherited descriptors: %s", strerror(errno));
	for (int i = 0; i < nextra; i++) {
		if (fcntl(CFG_FD + 1 + i, F_SETFD, FD_CLOEXEC) != 0)
			fail("preserved descriptor %d: %s", CFG_FD + i, strerror(errno));
	}
	receive_root();
	trace("root received");
	read_config();
	if (cfg.rootfs == NULL || cfg.argc < 1)
		fail("nsinit: task description lacks a root or a command");
	trace("task read");
	build_root();
	trace("root built");
	if (cfg.hostname && sethostname(cfg.hostname, strlen(cfg.hostname)) != 0)
		fail("sethostname %s: %s", cfg.hostname, strerror(errno));
	drop_bounding();

	// Moving a process between cgroup v1 groups waits for an RCU grace
	// period (milliseconds), so the parent does it while we build the
	// root, and we wait here for its word before anything of the image runs.
	char go;
	if (read(CFG_FD, &go, 1) != 1)
		fail("nsinit: parent did not confirm the cgroup placement");
	trace("go received");
	// Make the container's groups our cgroup root, so /proc/self/cgroup
	// names nothing of the host.
	if (unshare(CLONE_NEWCGROUP) != 0)
		fail("new cgroup namespace: %s", strerror(errno));
	mount_cgroups();
	trace("cgroup views mounted");
	install_filter();
	trace("filter installed");
	ctl = open_channel(REPORT_CONTROL);
	local = open_channel(REPORT_LOCAL);
	trace("channels open");
	// A held launch (a warm invocation's) waits here, with everything but
	// the command done, until the host lets it go.
	if (cfg.hold) {
		report(REPORT_HELD, "", 0);
		char word;
		if (read(CFG_FD, &word, 1) != 1)
			fail("nsinit: the host abandoned the held launch");
		trace("released");
	}

	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	trace("forking");
	pid_t child = fork();
	if (child < 0)
		fail_errno(errno, "fork: %s", strerror(errno));
	if (child == 0) {
		if (!cfg.tty)
			setpgid(0, 0);
		exec_command(&old);
	}
	// Our copy of fd 3 must go, or the parent would not see the command's
	// exec close it. Errors after this point are the command's own. The
	// preserved descriptors are the command's alone.
	close(CFG_FD);
	for (int i = 0; i < nextra; i++)
		close(CFG_FD + 1 + i);
	drop_stdio();
	// Init keeps CONTAINER_CAPS permitted, for the processes oak exec
	// starts (exec_child), and uses only CAP_KILL: a signal it forwards
	// must reach the command after it switched to another user.
	set_caps_pe(CONTAINER_CAPS & ~cfg.dropcaps, (1ULL << CAP_KILL) & ~cfg.dropcaps);
	// Nothing in the container may inspect or signal-steal from init
	// through /proc/1 (its fds, memory, environment).
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		_exit(127);
	reap(child);
}

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
// one clear error line. On success the parent sees one REPORT_LISTENER
// record, then end of file once the command's execve has closed fd 3.
//
// Wire format on fd 3: records of [u32 tag][u32 len][len bytes], ending with
// TAG_END. Strings are not NUL-terminated on the wire.

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
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <dirent.h>
#include <grp.h>
#include <unistd.h>

enum {
	TAG_END = 0,
	TAG_ROOTFS = 1,   // host path of the root file system, for messages
	TAG_MOUNT = 2,    // u64 flags, u32 optional, then src\0 target\0 fstype\0 data
	TAG_MKFILE = 3,   // target (relative to the root): create an empty file
	TAG_MKDIR = 4,    // target: create a directory
	TAG_SYMLINK = 5,  // target\0 link text
	TAG_HOSTNAME = 6,
	TAG_CWD = 7,
	TAG_ARG = 8,      // repeated: argv
	TAG_ENV = 9,      // repeated: envp
	TAG_SECCOMP = 10, // struct sock_filter[]
	TAG_USER = 11,    // u32 uid, u32 gid
	TAG_VOLUME = 12,  // target (relative to the root); its mount is the next passed descriptor
	TAG_CGROUP = 13,  // fstype\0 directory under /sys/fs/cgroup\0 options: a view of the container's own group
	TAG_DROPCAPS = 15, // u64: capabilities (bit N: capability N) root does not get of CONTAINER_CAPS
};

// Records nsinit sends back on fd 3, in the same framing.
enum {
	REPORT_ERROR = 1,    // what failed: a one-line message; nsinit then exits 127
	REPORT_LISTENER = 2, // u32: our fd number of the seccomp listener
	REPORT_EXEC = 3,     // u32 errno of the command's execve, then a message as REPORT_ERROR's; exits 127
};

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
	char *volumes[MAX_VOLUMES];
	int nvolumes;
	struct op cgroups[MAX_CGROUPS];
	int ncgroups;
	uint64_t dropcaps;
} cfg;

// report_failure sends a failure record and exits. A REPORT_EXEC record
// starts with err, so that the parent can tell a command that is not there
// from one that cannot run. It is used both before and after the seccomp
// filter is in place: write and exit_group are allowed.
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
	int skip = tag == REPORT_EXEC ? 0 : 4;
	uint32_t hdr[2] = {tag, n + 4 - skip};
	if (write(CFG_FD, hdr, sizeof hdr) < 0 || write(CFG_FD, msg + skip, n + 4 - skip) < 0) {
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
			if (cfg.nvolumes >= MAX_VOLUMES)
				fail("nsinit: too many volumes");
			cfg.volumes[cfg.nvolumes++] = buf;
			break;
		case TAG_CGROUP:
			if (cfg.ncgroups >= MAX_CGROUPS)
				fail("nsinit: too many cgroup views");
			op = &cfg.cgroups[cfg.ncgroups++];
			op->c = next_str(&p, end); // fstype
			op->b = next_str(&p, end); // directory
			op->d = next_str(&p, end); // options
			break;
		case TAG_DROPCAPS:
			if (len != 8)
				fail("nsinit: bad capability record");
			memcpy(&cfg.dropcaps, buf, 8);
			break;
		case TAG_USER:
			if (len != 8)
				fail("nsinit: bad user record");
			memcpy(&cfg.uid, buf, 4);
			memcpy(&cfg.gid, buf + 4, 4);
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

// The parent passes descriptors first thing: the container's root as a
// detached overlay mount it has already made read-only over id-mapped
// layers (treefd), the directory in our mount namespace to attach it on
// (mountfd, opened through /proc/PID/root: our own ids may not be able to
// search the path to it), and one detached, id-mapped mount per volume.
static int treefd = -1, mountfd = -1;
static int volumefds[MAX_VOLUMES];
static int nvolumefds;

static void receive_root(void)
{
	char byte;
	char ctl[CMSG_SPACE((2 + MAX_VOLUMES) * sizeof(int))];
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
	ssize_t n;
	do
		n = recvmsg(CFG_FD, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (n != 1 || (msg.msg_flags & MSG_CTRUNC) || c == NULL || c->cmsg_level != SOL_SOCKET ||
	    c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(2 * sizeof(int)))
		fail("nsinit: receive root: %s", n < 0 ? strerror(errno) : "malformed message");
	int nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
	int fds[2 + MAX_VOLUMES];
	memcpy(fds, CMSG_DATA(c), nfds * sizeof(int));
	treefd = fds[0];
	mountfd = fds[1];
	nvolumefds = nfds - 2;
	memcpy(volumefds, fds + 2, nvolumefds * sizeof(int));
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
		if (mount(op->a[0] ? op->a : NULL, path, op->c[0] ? op->c : NULL, flags, op->d[0] ? op->d : NULL) != 0)
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

// set_caps makes keep the calling process's permitted and effective sets and
// empties its inheritable set.
static void set_caps(uint64_t keep)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof data);
	data[0].permitted = data[0].effective = (uint32_t)keep;
	data[1].permitted = data[1].effective = (uint32_t)(keep >> 32);
	if (syscall(SYS_capset, &hdr, data) != 0)
		fail("set capabilities: %s", strerror(errno));
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

// exec_path runs file as execvp would, but searching the PATH of the
// container's environment, inside the container's own root: what the image
// holds is what the command finds. Only returns by failing.
static void exec_path(const char *file)
{
	if (strchr(file, '/') != NULL) {
		execve(file, cfg.argv, cfg.envp);
		int err = errno;
		fail_exec(err, "exec %s: %s", file, strerror(err));
	}
	const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	for (int i = 0; i < cfg.envc; i++) {
		if (strncmp(cfg.envp[i], "PATH=", 5) == 0)
			path = cfg.envp[i] + 5;
	}
	int saved = ENOENT;
	char buf[4096];
	for (const char *p = path;; p++) {
		const char *end = strchrnul(p, ':');
		int n = end == p ? snprintf(buf, sizeof buf, "%s", file)
				 : snprintf(buf, sizeof buf, "%.*s/%s", (int)(end - p), p, file);
		if (n > 0 && n < (int)sizeof buf) {
			execve(buf, cfg.argv, cfg.envp);
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
	fail_exec(saved, "exec %s: %s", file, saved == ENOENT ? "not found in the image's PATH" : strerror(saved));
}

static void exec_command(const sigset_t *oldmask)
{
	if (setresgid(cfg.gid, cfg.gid, cfg.gid) != 0)
		fail("setgid %u: %s", cfg.gid, strerror(errno));
	// Root keeps CONTAINER_CAPS for its execve; any other user loses every
	// capability with the setresuid, as on a host.
	set_caps(CONTAINER_CAPS & ~cfg.dropcaps);
	if (setresuid(cfg.uid, cfg.uid, cfg.uid) != 0)
		fail("setuid %u: %s", cfg.uid, strerror(errno));
	if (cfg.cwd && chdir(cfg.cwd) != 0)
		fail("working directory %s: %s", cfg.cwd, strerror(errno));
	if (sigprocmask(SIG_SETMASK, oldmask, NULL) != 0)
		fail("restore signal mask: %s", strerror(errno));
	cfg.argv[cfg.argc] = NULL;
	cfg.envp[cfg.envc] = NULL;
	exec_path(cfg.argv[0]);
}

// reap is pid 1 for the rest of the container's life: it forwards every
// signal to the command and exits with the command's status (128+N if a
// signal killed it). When it exits the kernel kills whatever is left.
static void reap(pid_t child)
{
	sigset_t all;
	sigfillset(&all);
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&all, &si);
		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			kill(child, sig);
			continue;
		}
		int status;
		pid_t pid;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			if (pid != child)
				continue;
			if (WIFSIGNALED(status))
				_exit(128 + WTERMSIG(status));
			_exit(WEXITSTATUS(status));
		}
	}
}

__attribute__((constructor)) static void nsinit(void)
{
	if (getenv("_OAK_NSINIT") == NULL)
		return;
	// fd 3 must close when the command's execve succeeds: that EOF is how
	// the parent learns the launch worked.
	if (fcntl(CFG_FD, F_SETFD, FD_CLOEXEC) != 0)
		_exit(127);
	// Whatever else oak inherited from its own caller must not reach the
	// container: Go marks its own descriptors close-on-exec, not those.
	if (syscall(SYS_close_range, CFG_FD + 1, ~0U, 0) != 0)
		fail("close inherited descriptors: %s", strerror(errno));
	receive_root();
	read_config();
	if (cfg.rootfs == NULL || cfg.argc < 1)
		fail("nsinit: task description lacks a root or a command");
	build_root();
	if (cfg.hostname && sethostname(cfg.hostname, strlen(cfg.hostname)) != 0)
		fail("sethostname %s: %s", cfg.hostname, strerror(errno));
	drop_bounding();

	// Moving a process between cgroup v1 groups waits for an RCU grace
	// period (milliseconds), so the parent does it while we build the
	// root, and we wait here for its word before anything of the image runs.
	char go;
	if (read(CFG_FD, &go, 1) != 1)
		fail("nsinit: parent did not confirm the cgroup placement");
	// Make the container's groups our cgroup root, so /proc/self/cgroup
	// names nothing of the host.
	if (unshare(CLONE_NEWCGROUP) != 0)
		fail("new cgroup namespace: %s", strerror(errno));
	mount_cgroups();
	install_filter();

	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid_t child = fork();
	if (child < 0)
		fail("fork: %s", strerror(errno));
	if (child == 0)
		exec_command(&old);
	// Our copy of fd 3 must go, or the parent would not see the command's
	// exec close it. Errors after this point are the command's own.
	close(CFG_FD);
	set_caps(0);
	// Nothing in the container may inspect or signal-steal from init
	// through /proc/1 (its fds, memory, environment).
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		_exit(127);
	reap(child);
}

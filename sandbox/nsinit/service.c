// service: confinement of Oak's user-level services (the network service).
//
// A service is the oak binary started with _OAK_SERVICE set. Before the Go
// runtime starts any thread, this constructor takes away everything the
// service does not need, so every thread Go later creates inherits the
// confinement:
//   - a private mount namespace whose root is an empty, read-only tmpfs:
//     no file of the host can be opened;
//   - only the capabilities named by the service kind, every other one gone
//     from the effective, permitted, inheritable, ambient and bounding sets,
//     secure bits locked so no execve can bring uid 0's capabilities back;
//   - no_new_privs.
// The network service ("net") has the host's /proc and keeps CAP_SYS_PTRACE (to copy a trapped
// caller's descriptor with pidfd_getfd and read its arguments with
// process_vm_readv) and CAP_NET_BIND_SERVICE (to publish a granted port
// below 1024); it stays in the host's network and pid namespaces, which are
// what it serves.
//
// The storage service ("storage") unpacks untrusted image archives. Its
// root holds only the state root (read-write, at its own path), the one
// input it was asked to read (read-only, at /input) and, for pulls, the
// host's CA certificates, resolv.conf and hosts (read-only). It keeps what writing image layers
// with their owners needs: CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER,
// CAP_FSETID and CAP_MKNOD, the last one fenced by a seccomp filter that
// lets mknod make only FIFOs, regular files and overlay whiteouts (a 0/0
// character device), never a device that would reach host hardware.

#define _GNU_SOURCE
#include <errno.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "wire.h" // OAK_SERVICE_ENV, shared with Go

static void die(const char *what)
{
	fprintf(stderr, "oak service: confine: %s: %s\n", what, strerror(errno));
	_exit(126);
}

// mkpath creates every directory of path below the current directory.
static void mkpath(const char *path)
{
	char buf[4096];
	if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
		die("path too long");
	for (char *p = buf + 1;; p++) {
		if (*p == '/' || *p == 0) {
			char c = *p;
			*p = 0;
			if (mkdir(buf[0] == '/' ? buf + 1 : buf, 0755) != 0 && errno != EEXIST)
				die("mkdir in empty root");
			if (c == 0)
				break;
			*p = c;
		}
	}
}

// A source to bind into the new root, opened before the new root's tmpfs
// is mounted (which may hide it: the state root can live under /tmp).
struct source {
	int fd;
	const char *dst;
	int readonly;
};

static struct source open_source(const char *src, const char *dst, int readonly)
{
	struct source s = {.fd = open(src, O_PATH | O_CLOEXEC), .dst = dst, .readonly = readonly};
	if (s.fd < 0)
		die(src);
	return s;
}

// bind makes an opened source appear at its path of the new root being
// built in the current directory.
static void bind(struct source s)
{
	const char *dst = s.dst;
	int readonly = s.readonly;
	char src[64];
	snprintf(src, sizeof src, "/proc/self/fd/%d", s.fd);
	struct stat st;
	if (fstat(s.fd, &st) != 0)
		die(dst);
	char target[4096];
	snprintf(target, sizeof target, ".%s", dst);
	if (S_ISDIR(st.st_mode)) {
		mkpath(dst);
	} else {
		char parent[4096];
		snprintf(parent, sizeof parent, "%s", dst);
		char *slash = strrchr(parent, '/');
		if (slash != NULL && slash != parent) {
			*slash = 0;
			mkpath(parent);
		}
		int fd = open(target, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
		if (fd < 0)
			die("create bind target");
		close(fd);
	}
	if (mount(src, target, NULL, MS_BIND | MS_REC, NULL) != 0)
		die("bind into empty root");
	if (readonly && mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0)
		die("make bind read-only");
	close(s.fd);
}

// empty_root gives the process a root of its own with nothing in it but
// what the service kind needs (for storage: see above).
static void empty_root(int storage)
{
	struct source keep[8];
	int nkeep = 0;
	if (unshare(CLONE_NEWNS) != 0)
		die("unshare mount namespace");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		die("make mounts private");
	if (storage) {
		const char *root = getenv("_OAK_STORAGE_ROOT");
		const char *input = getenv("_OAK_STORAGE_INPUT");
		if (root == NULL || root[0] != '/')
			die("_OAK_STORAGE_ROOT must be an absolute path");
		keep[nkeep++] = open_source(root, root, 0);
		if (input != NULL && input[0] != 0)
			keep[nkeep++] = open_source(input, "/input", 1);
		// For pulls: certificates to check registries, and name lookup.
		const char *ro[] = {"/etc/ssl/certs", "/etc/resolv.conf", "/etc/hosts"};
		for (size_t i = 0; i < sizeof ro / sizeof ro[0]; i++) {
			if (access(ro[i], F_OK) == 0)
				keep[nkeep++] = open_source(ro[i], ro[i], 1);
		}
	}
	// Any directory will do as the mount point: the namespace is ours.
	if (mount("oak-service", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,mode=0755") != 0)
		die("mount empty root");
	if (chdir("/tmp") != 0)
		die("chdir to empty root");
	for (int i = 0; i < nkeep; i++)
		bind(keep[i]);
	// The network service counts a caller's threads before it lets a call
	// on the container's own AF_UNIX socket through (services/netsvc,
	// local_linux.go): a read-only /proc of the host's pid namespace, which
	// it serves (read-only: as uid 0 it owns the sysctl files).
	if (!storage && (mkdir("proc", 0555) != 0 ||
			 mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, NULL) != 0))
		die("mount /proc");
	if (syscall(SYS_pivot_root, ".", ".") != 0)
		die("pivot_root");
	if (umount2(".", MNT_DETACH) != 0 || chdir("/") != 0)
		die("detach host tree");
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
		die("remount root read-only");
}

// fence_mknod installs a filter that lets mknod/mknodat create only FIFOs,
// regular files and 0/0 character devices (overlay whiteouts).
static void fence_mknod(void)
{
#define ARG(n) (offsetof(struct seccomp_data, args) + 8 * (n))
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		// The x32 ABI shares the architecture; its numbers carry this bit.
		BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mknod, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mknodat, 6, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		// mknod(path, mode, dev): mode is arg 1, dev arg 2
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG(1)),
		BPF_STMT(BPF_ALU | BPF_AND | BPF_K, S_IFMT),
		BPF_STMT(BPF_ST, 0),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG(2)),
		BPF_JUMP(BPF_JMP | BPF_JA, 4, 0, 0),
		// mknodat(dirfd, path, mode, dev): mode is arg 2, dev arg 3
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG(2)),
		BPF_STMT(BPF_ALU | BPF_AND | BPF_K, S_IFMT),
		BPF_STMT(BPF_ST, 0),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG(3)),
		// A = dev (low half; dev_t is 32 bits in the kernel ABI), M[0] = type
		BPF_STMT(BPF_MISC | BPF_TAX, 0),
		BPF_STMT(BPF_LD | BPF_MEM, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, S_IFIFO, 3, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, S_IFREG, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, S_IFCHR, 2, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_MISC | BPF_TXA, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
#undef ARG
	struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
		die("install mknod fence");
}

static void keep_caps(unsigned long long keep)
{
	if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
				SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
				SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED) != 0)
		die("set securebits");
	for (int c = 0; c <= 63; c++) {
		if (!(keep & (1ULL << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL)
			die("drop bounding capability");
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0)
		die("clear ambient capabilities");
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof data);
	data[0].effective = data[0].permitted = (unsigned)keep;
	data[1].effective = data[1].permitted = (unsigned)(keep >> 32);
	if (syscall(SYS_capset, &hdr, data) != 0)
		die("set capabilities");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		die("set no_new_privs");
}

__attribute__((constructor)) static void service(void)
{
	if (getenv(OAK_USERNS_ENV) != NULL) {
		// Only the user namespace we were started in is wanted, for its
		// id maps; nothing else runs.
		for (;;)
			pause();
	}
	const char *kind = getenv(OAK_SERVICE_ENV);
	if (kind == NULL)
		return;
	if (strcmp(kind, "net") == 0) {
		empty_root(0);
		keep_caps((1ULL << CAP_SYS_PTRACE) | (1ULL << CAP_NET_BIND_SERVICE));
		return;
	}
	if (strcmp(kind, "storage") == 0) {
		empty_root(1);
		keep_caps((1ULL << CAP_CHOWN) | (1ULL << CAP_DAC_OVERRIDE) | (1ULL << CAP_FOWNER) |
			  (1ULL << CAP_FSETID) | (1ULL << CAP_MKNOD));
		fence_mknod();
		return;
	}
	fprintf(stderr, "oak service: unknown kind %s\n", kind);
	_exit(126);
}

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
// The network service keeps CAP_SYS_PTRACE (to copy a trapped caller's
// descriptor with pidfd_getfd and read its arguments with process_vm_readv)
// and CAP_NET_BIND_SERVICE (to publish a granted port below 1024); it stays
// in the host's network and pid namespaces, which are what it serves.

#define _GNU_SOURCE
#include <errno.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "oak service: confine: %s: %s\n", what, strerror(errno));
	_exit(126);
}

static void empty_root(void)
{
	if (unshare(CLONE_NEWNS) != 0)
		die("unshare mount namespace");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		die("make mounts private");
	// Any directory will do as the mount point: the namespace is ours.
	if (mount("oak-service", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0555") != 0)
		die("mount empty root");
	if (chdir("/tmp") != 0 || syscall(SYS_pivot_root, ".", ".") != 0)
		die("pivot_root");
	if (umount2(".", MNT_DETACH) != 0 || chdir("/") != 0)
		die("detach host tree");
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
		die("remount root read-only");
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
	const char *kind = getenv("_OAK_SERVICE");
	if (kind == NULL)
		return;
	if (strcmp(kind, "net") != 0) {
		fprintf(stderr, "oak service: unknown kind %s\n", kind);
		_exit(126);
	}
	empty_root();
	keep_caps((1ULL << CAP_SYS_PTRACE) | (1ULL << CAP_NET_BIND_SERVICE));
}

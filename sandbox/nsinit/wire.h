// wire.h: what the oak binary's Go side and its C launch steps (nsinit.c,
// service.c) must agree on, written once. The Go side reads every name here
// through cgo (wire.go), so a change here changes both.
//
// The task description travels on fd 3 as records of [u32 tag][u32 len][len
// bytes], little-endian, ending with TAG_END; strings are not NUL-terminated
// on the wire. nsinit answers on the same descriptor in the same framing.

#ifndef OAK_WIRE_H
#define OAK_WIRE_H

// OAK_NSINIT_ENV, present in the environment, makes the oak binary a
// container's first process (nsinit.c); fd 3 then carries the task.
#define OAK_NSINIT_ENV "_OAK_NSINIT"

// OAK_TRACE_ENV, present beside OAK_NSINIT_ENV, makes nsinit mark its
// phases on stderr as internal/trace does (set when oak runs with OAK_TRACE=1).
#define OAK_TRACE_ENV "_OAK_NSINIT_TRACE"

// OAK_SERVICE_ENV, set to a service kind ("net", "storage"), confines the oak
// binary as that user-level service before the Go runtime starts (service.c).
#define OAK_SERVICE_ENV "_OAK_SERVICE"

// OAK_USERNS_ENV, present in the environment, makes the oak binary do
// nothing but wait to be killed (service.c): the engine starts it in a new
// user namespace only to hold that namespace's id maps for an id-mapped
// mount (a host directory granted to a container).
#define OAK_USERNS_ENV "_OAK_USERNS_HOLDER"

// OAK_EXTRA_FDS_ENV, set to N (1..OAK_MAX_EXTRA_FDS) beside OAK_NSINIT_ENV,
// says the launcher passed N more descriptors at 4..4+N-1, after fd 3, for
// the command to find at 3..3+N-1 (runc's --preserve-fds). Init itself
// closes its copies once the command is forked.
#define OAK_EXTRA_FDS_ENV "_OAK_EXTRA_FDS"
#define OAK_MAX_EXTRA_FDS 64

// OAK_DEFAULT_PATH is searched for the command when the container's
// environment sets no PATH; the engine gives every container this PATH
// unless told otherwise (docker's).
#define OAK_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Records of the task description, sandbox/launch_linux.go → nsinit.
enum {
	TAG_END = 0,
	TAG_ROOTFS = 1,   // host path of the root file system, for messages
	TAG_MOUNT = 2,    // u64 flags, u32 optional, then src\0 target\0 fstype\0 data; src "." is the target
	TAG_MKFILE = 3,   // target (relative to the root): create an empty file
	TAG_MKDIR = 4,    // target: create a directory
	TAG_SYMLINK = 5,  // target\0 link text
	TAG_HOSTNAME = 6,
	TAG_CWD = 7,
	TAG_ARG = 8,      // repeated: argv
	TAG_ENV = 9,      // repeated: envp
	TAG_SECCOMP = 10, // struct sock_filter[]
	TAG_USER = 11,    // u32 uid, u32 gid, then up to USER_MAX_GROUPS u32 supplementary groups
	TAG_VOLUME = 12,  // target (relative to the root); its mount is the next passed descriptor
	TAG_CGROUP = 13,  // fstype\0 directory under /sys/fs/cgroup\0 options: a view of the container's own group
	TAG_TTY = 14,     // empty: the command's stdin is a terminal to make its controlling one
	TAG_DROP_CAPS = 15, // u64: capabilities root gives up of the eight (a bundle's smaller set)
	TAG_BIND = 16,    // as TAG_VOLUME, attached as it is, never filled from the image (a host directory, an owned volume)
	TAG_HOLD = 17,    // empty: report REPORT_HELD and wait for the host's word before starting the command
};

// Records nsinit sends back on fd 3, in the same framing.
enum {
	REPORT_ERROR = 1,    // u32 errno of the failed system call (0: none), then what failed: a one-line message; exits 127
	REPORT_LISTENER = 2, // u32: our fd number of the seccomp listener
	REPORT_EXEC = 3,     // as REPORT_ERROR, for the command's own execve
	REPORT_CONTROL = 4,  // u32: our fd number of the host's end of the exec channel
	REPORT_LOCAL = 5,    // u32: our fd number of the host's end of the local-socket channel
	REPORT_HELD = 6,     // empty (TAG_HOLD): everything but the command is done; one byte lets it start
};

// Messages of the local-socket channel (SOCK_SEQPACKET, u32 fields, little-
// endian), network service → init: LOCAL_BIND or LOCAL_CONNECT [type][id]
// [uid][gid][ngroups][addrlen] then ngroups u32 group ids and addrlen bytes
// of sockaddr_un, with exactly two descriptors as SCM_RIGHTS: the socket and
// the caller's working directory. Init answers LOCAL_DONE [type][id][i32 0 or
// -errno] once a helper with the caller's ids and directory made the call.
enum {
	LOCAL_BIND = 1,
	LOCAL_CONNECT = 2,
	LOCAL_DONE = 3,
};
#define LOCAL_MAX_GROUPS 64

// USER_MAX_GROUPS bounds the command's supplementary groups (TAG_USER).
#define USER_MAX_GROUPS 64

// Messages of the exec channel (SOCK_SEQPACKET, u32 fields, little-endian).
// Host → init: EXEC_START [type][id][uid][gid][flags][nargs][nenv][dropcaps]
// then cwd, the arguments and the environment, each NUL-terminated, with
// stdin, stdout and stderr as SCM_RIGHTS and up to OAK_MAX_EXTRA_FDS more,
// which the process gets at 3, 4, ...; dropcaps (bit N: capability N) are
// capabilities of the container's root this process does not get.
// EXEC_SIGNAL [type][id][sig].
// Init → host: EXEC_STARTED [type][id][i32 pid inside, or -errno] and, once
// it ends, EXEC_EXITED [type][id][i32 status, 128+N for signal N]. The
// container's command has id EXEC_COMMAND_ID (no exec request has it):
// init sends its EXEC_EXITED just before it exits itself, so that the host
// learns the status before the namespaces are torn down.
enum {
	EXEC_START = 1,
	EXEC_SIGNAL = 2,
	EXEC_STARTED = 3,
	EXEC_EXITED = 4,
};
#define EXEC_FLAG_TTY 1
#define EXEC_COMMAND_ID 0

#endif

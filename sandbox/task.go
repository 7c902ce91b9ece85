// Package sandbox turns a task description into a confined Linux process:
// fresh user, mount, pid, ipc, uts, cgroup and network namespaces, the image
// as a read-only root, a minimal /dev, a size-limited /tmp, its own /proc,
// no capabilities, no_new_privs, Oak's fixed seccomp allowlist and exact
// resource limits.
//
// The description (Task) and the mount plan are plain data and build
// anywhere; the mechanism lives in the _linux.go files and in nsinit.
package sandbox

import (
	"fmt"
	"os"
	"path"
	"strings"
)

// Limits is the part of a container's quota the host enforces on its
// processes. A zero field means "no limit beyond the host's" (for
// TmpfsBytes: DefaultTmpfsBytes). Defaults are the front end's business;
// Check refuses what no container could start with or the kernel would
// not take.
type Limits struct {
	MemoryBytes int64 // memory+tmpfs charge; the OOM killer ends the container past it
	Pids        int64 // processes and threads together
	CPUMilli    int64 // CPU time per wall second, in thousandths of a core
	TmpfsBytes  int64 // size of /tmp
	// WritableBytes bounds the private writable layer over the image
	// (unused with Task.ReadOnly). Like /tmp it lives in memory and is
	// charged to MemoryBytes.
	WritableBytes int64
}

// The smallest and largest limits Check accepts.
const (
	// MinMemoryBytes: starting the demo image's sh (nsinit, init, the
	// command) peaks at about 0.5 MiB of charged memory on this project's
	// machine, a static Go program at about 1.5 MiB; below about 0.25 MiB
	// the launch dies in nsinit. 6 MiB leaves four times the Go figure.
	MinMemoryBytes = 6 << 20
	// MinPids: the container's init and its command. With 1 the init
	// cannot fork the command.
	MinPids = 2
	// MaxPids is the kernel's PID_MAX_LIMIT on 64-bit hosts; pids.max
	// refuses more.
	MaxPids = 4 << 20
	// MinCPUMilli is 0.01 CPU: a 1 ms CFS quota per 100 ms period, the
	// smallest quota the kernel accepts.
	MinCPUMilli = 10
	// MinTmpfsBytes is one page: tmpfs rounds any size up to whole pages,
	// so a smaller /tmp would silently be a page anyway.
	MinTmpfsBytes = 4 << 10
	// MinWritableBytes leaves overlay room for its work files and a copy-up.
	MinWritableBytes = 1 << 20
)

// Check returns nil when every set field of l is within the bounds above,
// and otherwise an error naming the first field that is not and its bound.
// Negative fields are refused: "no limit" is zero.
func (l Limits) Check() error {
	switch {
	case l.MemoryBytes < 0 || l.MemoryBytes > 0 && l.MemoryBytes < MinMemoryBytes:
		return fmt.Errorf("memory limit %d bytes: a container needs at least %d MiB to start (0 means no limit)", l.MemoryBytes, MinMemoryBytes>>20)
	case l.Pids < 0 || l.Pids > 0 && l.Pids < MinPids:
		return fmt.Errorf("pids limit %d: a container needs at least %d (its init and its command; 0 means no limit)", l.Pids, MinPids)
	case l.Pids > MaxPids:
		return fmt.Errorf("pids limit %d: above the kernel's maximum %d", l.Pids, MaxPids)
	case l.CPUMilli < 0 || l.CPUMilli > 0 && l.CPUMilli < MinCPUMilli:
		return fmt.Errorf("CPU limit %d thousandths of a core: the smallest the kernel enforces is %d (0.01 CPU)", l.CPUMilli, MinCPUMilli)
	case l.TmpfsBytes < 0 || l.TmpfsBytes > 0 && l.TmpfsBytes < MinTmpfsBytes:
		return fmt.Errorf("/tmp size %d bytes: the smallest is %d bytes (one page)", l.TmpfsBytes, MinTmpfsBytes)
	case l.WritableBytes < 0 || l.WritableBytes > 0 && l.WritableBytes < MinWritableBytes:
		return fmt.Errorf("writable layer size %d bytes: the smallest is %d MiB", l.WritableBytes, MinWritableBytes>>20)
	}
	return nil
}

// IDRange is the block of host uids and gids a container's user namespace
// maps onto: container id 0 is host id Host, up to Size ids.
type IDRange struct {
	Host uint32
	Size uint32
}

// Volume is a file system a container was granted, attached at Target.
type Volume struct {
	Mount  *os.File // a detached mount (fsmount, open_tree), not yet id-mapped
	Target string   // absolute path inside the container
	// Bind: Mount is a host directory, attached as it is (never filled
	// from the image), with the container's root standing for its owner
	// (Owner) and nobody else's ids mapped: what root creates there is
	// Owner's on the host.
	Bind  bool
	Owner IDPair
	// NoFill: never fill it from the image's directory at Target (a volume
	// given its owner at creation). A host directory is never filled.
	NoFill bool
}

// IDPair is a host uid and gid.
type IDPair struct{ UID, GID uint32 }

// Task describes one container process. Its root is an overlay of Layers,
// each a directory on the host (a plain root file system that passed
// CheckRootFS, or an unpacked image layer), under a top layer Oak makes in
// Scratch with the mount points and files the container needs, and (unless
// ReadOnly) a private writable layer in memory. Args[0] is
// looked up in the PATH of Env inside the container.
type Task struct {
	ID      string
	Layers  []string // host directories, top layer first
	Scratch string   // an empty directory of the container's own, removed by the caller
	Volumes []Volume
	// Tmpfs are absolute paths where the container gets a private tmpfs
	// of its own, like /tmp: Limits.TmpfsBytes each, charged to its memory.
	Tmpfs []string
	// ReadOnlyPaths are absolute paths of the image that the container
	// sees read-only (each bound onto itself, read-only, after Tmpfs); a
	// path the image lacks is skipped. It can only take away.
	ReadOnlyPaths []string
	// DropCaps are capabilities (bit N: capability number N) that the
	// command's root does not get of the eight Oak gives it; zero keeps
	// all eight. It can only take away.
	DropCaps uint64
	// TrustedOverlay says the layers mark opaque directories with
	// trusted.overlay.* attributes, as overlay layers made by root are
	// (podman's, containerd's); Oak's own layers use user.overlay.*.
	TrustedOverlay bool
	// ReadOnly leaves the root as the image is. Otherwise the container
	// writes to a private layer over it, discarded with the container.
	ReadOnly bool
	// Files are placed in the root over what the image has there (the
	// engine's /etc/hosts, /etc/resolv.conf, /etc/hostname).
	Files    []File
	Args     []string // argv, Args[0] included
	Env      []string
	Cwd      string // working directory inside the container; "" means /
	Hostname string
	UID, GID uint32 // the command's ids inside the user namespace
	IDs      IDRange
	Limits   Limits
	// CgroupParent is the group, relative to Oak's own under each
	// controller, that the container's groups are made in: a factory's
	// (see MakeGroup), whose limits bound the sum of its containers. It
	// must exist; "" is Oak's group itself.
	CgroupParent string

	// Rlimits are set on the container's init (and so inherited by its
	// command) before it runs anything of the image.
	Rlimits []Rlimit

	// Groups are the command's supplementary groups inside the user
	// namespace (none when empty), at most nsinit's USER_MAX_GROUPS.
	Groups []uint32

	Stdin, Stdout, Stderr *os.File // nil means /dev/null
	// TTY: Stdin is a terminal, to become the command's controlling one.
	TTY bool
	// ExtraFiles are more descriptors of the caller's for the command,
	// which finds them at 3, 4, ... (runc's --preserve-fds; systemd's
	// socket activation). At most nsinit.MaxExtraFDs. The container's
	// init closes its copies once the command is forked.
	ExtraFiles []*os.File

	// JoinNet, JoinIPC and JoinUTS, when set, are existing namespaces
	// (an opened /proc/PID/ns/… or a CNI plugin's netns file) the
	// container enters instead of making its own. The host enters them on
	// the launching thread before the container's clone, so the container's
	// new user namespace does not own them and its root holds no
	// capability over them. A joined network namespace is the container's
	// network: its sockets are made and used there natively (the filter is
	// policy.PodNetworkProgram) instead of by Oak's network service. With
	// JoinUTS, Hostname must be empty: the namespace keeps its owner's.
	JoinNet, JoinIPC, JoinUTS *os.File

	// Hold, if set, is called with the container's process once
	// everything of the launch but the command is done (its root built,
	// its groups joined, its filter installed, its Listener and channels
	// handed over) and before anything of the image runs; Start goes on
	// when it returns nil and abandons the launch when it returns an
	// error. The OCI runtime holds a created container here until its
	// start verb; the daemon holds a warm invocation here until a request
	// takes it, its network service already serving the Listener.
	Hold func(p *Process) error
}

// Rlimit is one resource limit (setrlimit(2)) of a task.
type Rlimit struct {
	Name       string // as ulimit names it, for errors: "nofile"
	Resource   int    // RLIMIT_*
	Soft, Hard uint64 // RLIM_INFINITY for no limit
}

// File is a small file the engine places in a container's root.
type File struct {
	Path string // absolute path inside the container
	Data []byte
	Mode os.FileMode
}

// DefaultTmpfsBytes is the size of /tmp when a task sets none.
const DefaultTmpfsBytes = 64 << 20

// DefaultWritableBytes bounds the writable layer when a task sets no size.
const DefaultWritableBytes = 1 << 30

func (t *Task) validate() error {
	switch {
	case t.ID == "":
		return fmt.Errorf("task: empty id")
	case len(t.Layers) == 0:
		return fmt.Errorf("task %s: no image layers", t.ID)
	case t.Scratch == "" || t.Scratch[0] != '/':
		return fmt.Errorf("task %s: scratch directory %q is not an absolute path", t.ID, t.Scratch)
	case len(t.Args) == 0 || t.Args[0] == "":
		return fmt.Errorf("task %s: no command", t.ID)
	case t.IDs.Size == 0 || t.IDs.Host == 0:
		return fmt.Errorf("task %s: id range %d+%d would map host root", t.ID, t.IDs.Host, t.IDs.Size)
	}
	if err := t.Limits.Check(); err != nil {
		return fmt.Errorf("task %s: %w", t.ID, err)
	}
	if t.JoinUTS != nil && t.Hostname != "" {
		return fmt.Errorf("task %s: host name %q: a joined uts namespace keeps its own", t.ID, t.Hostname)
	}
	if err := checkGroupPath(t.CgroupParent); err != nil {
		return fmt.Errorf("task %s: cgroup parent: %w", t.ID, err)
	}
	for _, l := range t.Layers {
		if l == "" || l[0] != '/' {
			return fmt.Errorf("task %s: layer %q is not an absolute path", t.ID, l)
		}
	}
	for _, f := range t.Files {
		if !validTarget(f.Path) {
			return fmt.Errorf("task %s: file %q: want an absolute path outside /proc, /dev and /tmp", t.ID, f.Path)
		}
	}
	for _, p := range t.Tmpfs {
		if !validTarget(p) {
			return fmt.Errorf("task %s: tmpfs %q: want an absolute path outside /proc, /dev and /tmp", t.ID, p)
		}
	}
	for _, g := range t.Groups {
		if g >= t.IDs.Size {
			return fmt.Errorf("task %s: supplementary group %d lies outside the container's ids 0..%d", t.ID, g, t.IDs.Size-1)
		}
	}
	for _, p := range t.ReadOnlyPaths {
		if !validTarget(p) {
			return fmt.Errorf("task %s: read-only path %q: want an absolute path outside /proc, /dev and /tmp", t.ID, p)
		}
	}
	for _, v := range t.Volumes {
		if v.Mount == nil || !validTarget(v.Target) {
			return fmt.Errorf("task %s: volume target %q: want an absolute path outside /proc, /dev and /tmp", t.ID, v.Target)
		}
	}
	return nil
}

// validTarget accepts a clean absolute path other than / that does not lie
// in a file system Oak mounts itself.
func validTarget(p string) bool {
	if p == "" || p[0] != '/' || p == "/" || path.Clean(p) != p {
		return false
	}
	for _, m := range []string{"/proc", "/dev", "/tmp", "/sys"} {
		if p == m || strings.HasPrefix(p, m+"/") {
			return false
		}
	}
	return true
}

// checkGroupPath accepts "" and a clean relative path of plain names: one
// that stays inside Oak's group.
func checkGroupPath(rel string) error {
	if rel == "" {
		return nil
	}
	if path.IsAbs(rel) || path.Clean(rel) != rel {
		return fmt.Errorf("%q is not a clean relative path", rel)
	}
	for _, c := range strings.Split(rel, "/") {
		if c == "." || c == ".." || c == "" {
			return fmt.Errorf("%q has a %q component", rel, c)
		}
	}
	return nil
}

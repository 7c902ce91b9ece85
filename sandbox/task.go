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
)

// Limits is the part of a container's quota the host enforces on its
// processes. A zero field means "no limit beyond the host's".
type Limits struct {
	MemoryBytes int64 // memory+tmpfs charge; the OOM killer ends the container past it
	Pids        int64 // processes and threads together
	CPUMilli    int64 // CPU time per wall second, in thousandths of a core
	TmpfsBytes  int64 // size of /tmp
}

// IDRange is the block of host uids and gids a container's user namespace
// maps onto: container id 0 is host id Host, up to Size ids.
type IDRange struct {
	Host uint32
	Size uint32
}

// Task describes one container process. RootFS must already have passed
// CheckRootFS; Path is the command's absolute path inside the root, found
// with LookPath.
type Task struct {
	ID       string
	RootFS   string   // absolute host path of the image's root directory
	Path     string   // command to execute, absolute inside RootFS
	Args     []string // argv, Args[0] included
	Env      []string
	Cwd      string // working directory inside the container; "" means /
	Hostname string
	UID, GID uint32 // the command's ids inside the user namespace
	IDs      IDRange
	Limits   Limits

	Stdin, Stdout, Stderr *os.File // nil means /dev/null
}

// DefaultTmpfsBytes is the size of /tmp when a task sets none.
const DefaultTmpfsBytes = 64 << 20

func (t *Task) validate() error {
	switch {
	case t.ID == "":
		return fmt.Errorf("task: empty id")
	case t.RootFS == "" || t.RootFS[0] != '/':
		return fmt.Errorf("task %s: root file system %q is not an absolute path", t.ID, t.RootFS)
	case t.Path == "" || t.Path[0] != '/':
		return fmt.Errorf("task %s: command path %q is not absolute", t.ID, t.Path)
	case len(t.Args) == 0:
		return fmt.Errorf("task %s: no command", t.ID)
	case t.IDs.Size == 0 || t.IDs.Host == 0:
		return fmt.Errorf("task %s: id range %d+%d would map host root", t.ID, t.IDs.Host, t.IDs.Size)
	}
	return nil
}

package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// This file checks the namespaces a bundle names by path
// (linux.namespaces[].path, OCIContainer.Join) on the host, and ties a
// container that joins another's ipc or uts namespace to that container's
// id block: a Kubernetes pod is one block, so that its containers' files
// and IPC objects have the same owners whichever container made them.
//
// A network namespace may be any: the caller (a CNI plugin, through
// containerd) made it and decides what it reaches; the container's root
// holds no capability over it. An ipc or uts namespace must be one of an
// Oak container of this runtime root (the pod's sandbox), found by
// comparing the namespace with /proc/INIT/ns/TYPE of each live container:
// joining the host's or a foreign runtime's namespace is refused.

// nsTypes maps the bundle's namespace types to their CLONE_NEW* flag and
// their name under /proc/PID/ns.
var nsTypes = map[specs.LinuxNamespaceType]struct {
	flag int
	proc string
}{
	specs.NetworkNamespace: {unix.CLONE_NEWNET, "net"},
	specs.IPCNamespace:     {unix.CLONE_NEWIPC, "ipc"},
	specs.UTSNamespace:     {unix.CLONE_NEWUTS, "uts"},
}

// ociJoined are a container's joined namespaces, open, and the container
// whose id block it shares (nil: a block of its own).
type ociJoined struct {
	net, ipc, uts *os.File
	owner         *ociRecord
}

func (j *ociJoined) close() {
	for _, f := range []*os.File{j.net, j.ipc, j.uts} {
		if f != nil {
			f.Close()
		}
	}
}

// openJoins opens and checks every namespace of oc.Join, or refuses the
// first that is not a namespace of its type, or (ipc, uts) belongs to no
// live Oak container under r.Root, or to another than the rest.
func (r *Runtime) openJoins(oc *OCIContainer) (*ociJoined, error) {
	j := &ociJoined{}
	for _, want := range oc.Join {
		want.Path = r.supervisedPath(want.Path)
		f, err := openNamespace(want)
		if err != nil {
			j.close()
			return nil, err
		}
		switch want.Type {
		case specs.NetworkNamespace:
			if err := notHostNetwork(f, want); err != nil {
				j.close()
				return nil, err
			}
			j.net = f
			continue
		case specs.IPCNamespace:
			j.ipc = f
		case specs.UTSNamespace:
			j.uts = f
		}
		owner, err := r.namespaceOwner(f, nsTypes[want.Type].proc)
		if err == nil && owner == nil {
			err = fmt.Errorf("the %s namespace at %s belongs to no container of this runtime (--root %s); an Oak container joins only its pod's", want.Type, want.Path, r.Root)
		}
		if err == nil && j.owner != nil && owner.Slot != j.owner.Slot {
			err = fmt.Errorf("the %s namespace at %s is container %s's, the others named are %s's", want.Type, want.Path, owner.ID, j.owner.ID)
		}
		if err != nil {
			j.close()
			return nil, refuse(want.Field, "%v", err)
		}
		j.owner = owner
	}
	return j, nil
}

// procNSPath matches /proc/PID/ns/TYPE.
var procNSPath = regexp.MustCompile(`^/proc/([0-9]+)/ns/(net|ipc|uts)$`)

// supervisedPath maps /proc/PID/ns/TYPE, where PID is the supervisor of a
// live container under r.Root, to its init's namespace: the supervisor's
// pid is the container's for callers (containerd names the pod sandbox's
// namespaces through it), but the supervisor itself stays in the host's
// namespaces. Any other path is returned as it is.
func (r *Runtime) supervisedPath(path string) string {
	m := procNSPath.FindStringSubmatch(path)
	if m == nil {
		return path
	}
	pid, err := strconv.Atoi(m[1])
	if err != nil {
		return path
	}
	ents, _ := os.ReadDir(r.Root)
	for _, e := range ents {
		rec, err := r.load(e.Name())
		if err == nil && rec.Supervisor == pid && rec.Init != 0 && alive(rec.Supervisor, rec.SupStart) && alive(rec.Init, rec.InitStart) {
			return "/proc/" + strconv.Itoa(rec.Init) + "/ns/" + m[2]
		}
	}
	return path
}

// notHostNetwork refuses the host's own network namespace (this process's):
// an Oak container never shares it; its network is granted by Oak.
func notHostNetwork(f *os.File, j OCIJoin) error {
	var got, host unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &got); err != nil {
		return refuse(j.Field, "%s: %v", j.Path, err)
	}
	if err := unix.Stat("/proc/self/ns/net", &host); err != nil {
		return refuse(j.Field, "the host's network namespace: %v", err)
	}
	if got.Dev == host.Dev && got.Ino == host.Ino {
		return refuse(j.Field, "%s is the host's network namespace, which an Oak container never shares (its network is granted by Oak)", j.Path)
	}
	return nil
}

// nsfsMagic is NSFS_MAGIC, the file system type of namespace files.
const nsfsMagic = 0x6e736673

// openNamespace opens the namespace file at j.Path and checks it is a
// namespace of j's type. The path is first opened O_PATH and its file
// system checked, so that naming a device or a FIFO opens nothing of it.
func openNamespace(j OCIJoin) (*os.File, error) {
	t, ok := nsTypes[j.Type]
	if !ok {
		return nil, refuse(j.Field, "joining a %s namespace is not supported", j.Type)
	}
	pfd, err := unix.Open(j.Path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, refuse(j.Field, "%s: %v", j.Path, err)
	}
	defer unix.Close(pfd)
	var fs unix.Statfs_t
	if err := unix.Fstatfs(pfd, &fs); err != nil {
		return nil, refuse(j.Field, "%s: %v", j.Path, err)
	}
	if fs.Type != nsfsMagic {
		return nil, refuse(j.Field, "%s is not a namespace (want a %s namespace file such as /proc/PID/ns/%s or one a CNI plugin made)", j.Path, j.Type, t.proc)
	}
	fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(pfd), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, refuse(j.Field, "%s: %v", j.Path, err)
	}
	f := os.NewFile(uintptr(fd), j.Path)
	got, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	switch {
	case err != nil:
		err = refuse(j.Field, "%s: namespace type: %v", j.Path, err)
	case got != t.flag:
		err = refuse(j.Field, "%s is a %s namespace, not a %s namespace", j.Path, nsName(got), j.Type)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func nsName(flag int) string {
	for _, n := range []struct {
		flag int
		name string
	}{{unix.CLONE_NEWNS, "mount"}, {unix.CLONE_NEWUSER, "user"}, {unix.CLONE_NEWPID, "pid"}, {unix.CLONE_NEWCGROUP, "cgroup"},
		{unix.CLONE_NEWTIME, "time"}, {unix.CLONE_NEWNET, "network"}, {unix.CLONE_NEWIPC, "ipc"}, {unix.CLONE_NEWUTS, "uts"}} {
		if n.flag == flag {
			return n.name
		}
	}
	return "type " + strconv.Itoa(flag) + " of"
}

// namespaceOwner returns the live container under r.Root whose init is in
// the namespace open at f (named proc under /proc/PID/ns), or nil.
func (r *Runtime) namespaceOwner(f *os.File, proc string) (*ociRecord, error) {
	var want unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &want); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(r.Root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("state root: %w", unwrapPath(err))
	}
	for _, e := range ents {
		rec, err := r.load(e.Name())
		if err != nil || rec.Init == 0 || rec.status() == ociStopped || !alive(rec.Init, rec.InitStart) {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(filepath.Join("/proc", strconv.Itoa(rec.Init), "ns", proc), &st) != nil {
			continue
		}
		if st.Dev == want.Dev && st.Ino == want.Ino && alive(rec.Init, rec.InitStart) {
			return rec, nil
		}
	}
	return nil, nil
}

// acquireMemberSlot takes a member's lock of owner's id block: the block
// stays held while any member holds one (acquireSlot checks), even when
// the owner (a pod's sandbox) ends first. It returns the member number,
// which names the member's groups apart from the owner's. The owner's
// init is checked after the lock is taken: alive then, the block was
// still the owner's, and whoever takes it next sees this lock.
func acquireMemberSlot(owner *ociRecord) (int, *os.File, error) {
	for k := 1; k < 1<<16; k++ {
		f, err := os.OpenFile(memberLockPath(owner.Slot, k), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return 0, nil, fmt.Errorf("id block %d: %w", owner.Slot, unwrapPath(err))
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
			f.Close()
			continue
		}
		if !alive(owner.Init, owner.InitStart) {
			f.Close()
			return 0, nil, fmt.Errorf("container %s, whose namespaces this one joins, has ended", owner.ID)
		}
		return k, f, nil
	}
	return 0, nil, fmt.Errorf("id block %d: too many members", owner.Slot)
}

func memberLockPath(slot, member int) string {
	return filepath.Join(OCISlotDir, strconv.Itoa(slot)+"."+strconv.Itoa(member))
}

// blockHasMembers reports whether a member still holds a lock of the id
// block slot (whose own lock the caller holds).
func blockHasMembers(slot int) bool {
	names, _ := filepath.Glob(filepath.Join(OCISlotDir, strconv.Itoa(slot)+".*"))
	for _, n := range names {
		f, err := os.OpenFile(n, os.O_RDWR, 0)
		if err != nil {
			continue
		}
		free := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil
		f.Close()
		if !free {
			return true
		}
	}
	return false
}

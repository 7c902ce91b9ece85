package sandbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/oak-engine/oak/sandbox/nsinit"
	"github.com/oak-engine/oak/sandbox/policy"
)

// namespaces are the ones every container gets. The cgroup namespace is
// entered by nsinit once the container sits in its own groups.
const namespaces = unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWPID |
	unix.CLONE_NEWIPC | unix.CLONE_NEWUTS | unix.CLONE_NEWNET

// DefaultPath is the PATH a container's command is looked up in when its
// environment names none (nsinit's OAK_DEFAULT_PATH); the engine gives
// containers this PATH unless told otherwise.
const DefaultPath = nsinit.DefaultPath

// Process is a running container: its init (pid 1 inside) and its groups.
type Process struct {
	// Listener is the container's seccomp notification descriptor: every
	// trapped system call waits on it until someone answers.
	Listener *os.File

	cmd  *exec.Cmd
	cg   *cgroup
	once sync.Once
	werr error
	st   Exit
}

// Exit is how a container ended.
type Exit struct {
	Code      int  // the command's exit status, 128+N if signal N killed it
	OOMKilled bool // the memory limit's OOM killer ended a process in it
}

var filter = sync.OnceValues(func() ([]byte, error) {
	prog, err := policy.Program()
	if err != nil {
		return nil, err
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&prog[0])), len(prog)*int(unsafe.Sizeof(prog[0]))), nil
})

// Start launches t and returns once its command is executing, or with an
// error naming the step that failed (nothing of the container is left then).
func Start(t *Task) (*Process, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	prog, err := filter()
	if err != nil {
		return nil, fmt.Errorf("seccomp policy: %w", err)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("launch %s: socketpair: %w", t.ID, err)
	}
	parent := os.NewFile(uintptr(fds[0]), "nsinit")
	child := os.NewFile(uintptr(fds[1]), "nsinit-child")
	defer parent.Close()

	cg, err := newCgroup(t.ID, t.Limits)
	if err != nil {
		child.Close()
		return nil, err
	}
	idmap := []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(t.IDs.Host), Size: int(t.IDs.Size)}}
	cmd := &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       []string{"oak-init"},
		Env:        []string{nsinit.EnvVar + "=1"},
		ExtraFiles: []*os.File{child},
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags:  namespaces,
			UidMappings: idmap,
			GidMappings: idmap,
			// nsinit drops the host's supplementary groups with it.
			GidMappingsEnableSetgroups: true,
			// Without this the child keeps host kuid 0 until exec.
			Credential: &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true},
			Setsid:     true,
			Pdeathsig:  syscall.SIGKILL,
		},
	}
	// A nil *os.File in an io.Reader would not be nil: set only real files.
	if t.Stdin != nil {
		cmd.Stdin = t.Stdin
	}
	if t.Stdout != nil {
		cmd.Stdout = t.Stdout
	}
	if t.Stderr != nil {
		cmd.Stderr = t.Stderr
	}
	err = cmd.Start()
	child.Close()
	if err != nil {
		cg.destroy()
		return nil, fmt.Errorf("launch %s: %w", t.ID, err)
	}
	p := &Process{cmd: cmd, cg: cg}
	fail := func(err error) (*Process, error) {
		cmd.Process.Kill()
		p.Wait()
		return nil, err
	}
	if err := sendRoot(parent, cmd.Process.Pid, t); err != nil {
		return fail(fmt.Errorf("launch %s: %w", t.ID, err))
	}
	if _, err := parent.Write(encodeTask(t, prog)); err != nil {
		return fail(fmt.Errorf("launch %s: send task: %w", t.ID, err))
	}
	// nsinit builds the root meanwhile and waits for this word before it
	// runs anything of the image.
	if err := cg.add(cmd.Process.Pid); err != nil {
		return fail(err)
	}
	if _, err := parent.Write([]byte{1}); err != nil {
		return fail(fmt.Errorf("launch %s: confirm cgroups: %w", t.ID, err))
	}
	// nsinit reports its seccomp listener, then the command's execve closes
	// fd 3; an error record instead names the step that failed.
	if err := p.readReports(parent); err != nil {
		return fail(err)
	}
	return p, nil
}

func (p *Process) readReports(r io.Reader) error {
	for {
		var hdr [8]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if err == io.EOF {
				if p.Listener == nil {
					return errors.New("launch: nsinit ended without a seccomp listener")
				}
				return nil
			}
			return fmt.Errorf("launch: read nsinit report: %w", err)
		}
		tag, n := binary.LittleEndian.Uint32(hdr[:4]), binary.LittleEndian.Uint32(hdr[4:])
		if n > 4096 {
			return fmt.Errorf("nsinit report %d: %d bytes is too long", tag, n)
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return fmt.Errorf("launch: read nsinit report: %w", err)
		}
		switch {
		case tag == nsinit.ReportError:
			return errors.New(string(body))
		case tag == nsinit.ReportListener && n == 4 && p.Listener == nil:
			l, err := p.takeFD(int(binary.LittleEndian.Uint32(body)))
			if err != nil {
				return fmt.Errorf("launch: take seccomp listener: %w", err)
			}
			p.Listener = l
			if _, err := r.(io.Writer).Write([]byte{1}); err != nil {
				return fmt.Errorf("launch: acknowledge seccomp listener: %w", err)
			}
		default:
			return fmt.Errorf("launch: unexpected nsinit report %d (%d bytes)", tag, n)
		}
	}
}

// takeFD copies descriptor fd of the container's init into this process.
func (p *Process) takeFD(fd int) (*os.File, error) {
	pidfd, err := unix.PidfdOpen(p.cmd.Process.Pid, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(pidfd)
	nfd, err := unix.PidfdGetfd(pidfd, fd, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(nfd), "seccomp-listener"), nil
}

// mountPoints are the directories the top layer provides, so that any
// image can be a root: Oak mounts on them whatever the image has there.
var mountPoints = []string{"proc", "dev", "tmp", "sys"}

// sendRoot gives the container its root and volumes. The root is a
// read-only overlay whose lower layers are the task's layers under a top
// layer of mount points, each layer an id-mapped clone, so that the image's
// owners (host ids 0..65535) appear as the same ids inside while the
// container's processes run as unprivileged host ids. Only the host side
// can build it: it can search any path, and only it may id-map a mount.
// The child attaches it on the top layer's directory, opened through the
// child's own view of the file system (a tree can only be attached onto a
// mount of the attaching process's namespace).
func sendRoot(sock *os.File, pid int, t *Task) error {
	top := filepath.Join(t.Scratch, "mnt")
	dirs := append([]string{top}, mountPoints...)
	for i, d := range dirs[1:] {
		dirs[i+1] = filepath.Join(top, d)
	}
	for _, v := range t.Volumes {
		dirs = append(dirs, filepath.Join(top, v.Target))
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("mount points: %w", err)
		}
	}
	userns, err := unix.Open(fmt.Sprintf("/proc/%d/ns/user", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("user namespace of %d: %w", pid, err)
	}
	defer unix.Close(userns)
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	fs, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("root: overlay: %w", err)
	}
	fds = append(fds, fs)
	// Opaque directories are marked with user.overlay.opaque (see
	// storage/image), which an unpacker without CAP_SYS_ADMIN can write.
	if err := unix.FsconfigSetFlag(fs, "userxattr"); err != nil {
		return fmt.Errorf("root: overlay userxattr: %w", err)
	}
	for _, l := range append([]string{top}, t.Layers...) {
		tree, err := unix.OpenTree(unix.AT_FDCWD, l, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
		if err != nil {
			return fmt.Errorf("layer %s: %w", l, err)
		}
		fds = append(fds, tree)
		if err := idmap(tree, userns, 0); err != nil {
			return fmt.Errorf("layer %s: id-map: %w", l, err)
		}
		if err := unix.FsconfigSetFd(fs, "lowerdir+", tree); err != nil {
			return fmt.Errorf("layer %s: overlay: %w", l, err)
		}
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return fmt.Errorf("root: overlay: %w", err)
	}
	root, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV)
	if err != nil {
		return fmt.Errorf("root: mount overlay: %w", err)
	}
	fds = append(fds, root)
	dir, err := unix.Open(fmt.Sprintf("/proc/%d/root%s", pid, top), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("root: %w", err)
	}
	fds = append(fds, dir)
	pass := []int{root, dir}
	for _, v := range t.Volumes {
		if err := idmap(int(v.Mount.Fd()), userns, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV); err != nil {
			return fmt.Errorf("volume on %s: id-map: %w", v.Target, err)
		}
		pass = append(pass, int(v.Mount.Fd()))
	}
	if err := unix.Sendmsg(int(sock.Fd()), []byte{0}, unix.UnixRights(pass...), nil, 0); err != nil {
		return fmt.Errorf("send root: %w", err)
	}
	return nil
}

// idmap makes the detached mount tree show host ids 0..65535 as the same
// ids of the user namespace userns, and sets attrs on it.
func idmap(tree, userns int, attrs uint64) error {
	return unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE,
		&unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP | attrs, Userns_fd: uint64(userns)})
}

// Pid is the host pid of the container's init.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the container's init, which forwards it to the command
// (SIGKILL ends the whole container at once).
func (p *Process) Signal(sig syscall.Signal) error {
	return p.cmd.Process.Signal(sig)
}

// Wait waits for the container to end, removes its groups and reports how it
// ended. It may be called more than once.
func (p *Process) Wait() (Exit, error) {
	p.once.Do(func() {
		err := p.cmd.Wait()
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			ws := ee.Sys().(syscall.WaitStatus)
			if ws.Signaled() {
				p.st.Code = 128 + int(ws.Signal())
			} else {
				p.st.Code = ws.ExitStatus()
			}
		default:
			p.werr = err
		}
		p.st.OOMKilled = p.cg.oomKills() > 0
		if p.Listener != nil {
			p.Listener.Close()
		}
		if err := p.cg.destroy(); err != nil && p.werr == nil {
			p.werr = err
		}
	})
	return p.st, p.werr
}

// encodeTask writes t as the records nsinit.c reads.
func encodeTask(t *Task, filter []byte) []byte {
	var b []byte
	rec := func(tag uint32, parts ...[]byte) {
		n := 0
		for _, p := range parts {
			n += len(p)
		}
		b = binary.LittleEndian.AppendUint32(b, tag)
		b = binary.LittleEndian.AppendUint32(b, uint32(n))
		for _, p := range parts {
			b = append(b, p...)
		}
	}
	str := func(s string) []byte { return append([]byte(s), 0) }
	rec(nsinit.TagRootFS, []byte(t.Layers[0]))
	for _, o := range mountPlan(t) {
		switch o.kind {
		case opMount:
			var hdr [12]byte
			binary.LittleEndian.PutUint64(hdr[:], uint64(o.flags))
			if o.optional {
				hdr[8] = 1
			}
			rec(nsinit.TagMount, hdr[:], str(o.source), str(o.target), str(o.fstype), []byte(o.data))
		case opSymlink:
			rec(nsinit.TagSymlink, str(o.target), []byte(o.source))
		case opMkfile:
			rec(nsinit.TagMkfile, []byte(o.target))
		case opMkdir:
			rec(nsinit.TagMkdir, []byte(o.target))
		default:
			panic(fmt.Sprintf("sandbox: mount plan has an op of unknown kind %d", o.kind))
		}
	}
	if t.Hostname != "" {
		rec(nsinit.TagHostname, []byte(t.Hostname))
	}
	if t.Cwd != "" {
		rec(nsinit.TagCwd, []byte(t.Cwd))
	}
	for _, v := range t.Volumes {
		rec(nsinit.TagVolume, []byte(v.Target[1:]))
	}
	for _, a := range t.Args {
		rec(nsinit.TagArg, []byte(a))
	}
	for _, e := range t.Env {
		rec(nsinit.TagEnv, []byte(e))
	}
	rec(nsinit.TagSeccomp, filter)
	var ids [8]byte
	binary.LittleEndian.PutUint32(ids[:], t.UID)
	binary.LittleEndian.PutUint32(ids[4:], t.GID)
	rec(nsinit.TagUser, ids[:])
	rec(nsinit.TagEnd)
	return b
}

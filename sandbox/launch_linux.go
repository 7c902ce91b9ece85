package sandbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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
	// Local is the host's end of the container's local-socket channel, for
	// the network service (see netsvc.Server.Local and nsinit.c serve_local).
	Local *os.File

	cmd   *exec.Cmd
	cg    *cgroup
	execs *execChannel
	once  sync.Once
	werr  error
	st    Exit
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
	if len(t.Groups) > nsinit.UserMaxGroups {
		return nil, fmt.Errorf("task %s: %d supplementary groups: at most %d", t.ID, len(t.Groups), nsinit.UserMaxGroups)
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
	if _, err := parent.Write(encodeTask(t, prog, cg.views)); err != nil {
		return fail(fmt.Errorf("launch %s: send task: %w", t.ID, err))
	}
	// nsinit builds the root meanwhile and waits for this word before it
	// runs anything of the image.
	if err := cg.add(cmd.Process.Pid); err != nil {
		return fail(err)
	}
	// The host may lower limits or raise a soft one to its hard limit,
	// never raise a hard one: it holds no CAP_SYS_RESOURCE.
	for _, l := range t.Rlimits {
		if err := unix.Prlimit(cmd.Process.Pid, l.Resource, &unix.Rlimit{Cur: l.Soft, Max: l.Hard}, nil); err != nil {
			return fail(fmt.Errorf("launch %s: ulimit %s=%d:%d: %w", t.ID, l.Name, l.Soft, l.Hard, err))
		}
	}
	if t.Hold != nil {
		if err := t.Hold(cmd.Process.Pid); err != nil {
			return fail(fmt.Errorf("launch %s: %w", t.ID, err))
		}
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
	// take copies a descriptor init hands the host (its number in body)
	// and acknowledges, after which init closes its own copy.
	take := func(what string, body []byte) (*os.File, error) {
		f, err := p.takeFD(int(binary.LittleEndian.Uint32(body)))
		if err != nil {
			return nil, fmt.Errorf("launch: take %s: %w", what, err)
		}
		if _, err := r.(io.Writer).Write([]byte{1}); err != nil {
			f.Close()
			return nil, fmt.Errorf("launch: acknowledge %s: %w", what, err)
		}
		return f, nil
	}
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
		case tag == nsinit.ReportExec && n >= 4:
			return &ExecError{Errno: syscall.Errno(binary.LittleEndian.Uint32(body)), Msg: string(body[4:])}
		case tag == nsinit.ReportListener && n == 4 && p.Listener == nil:
			l, err := take("seccomp listener", body)
			if err != nil {
				return err
			}
			p.Listener = l
		case tag == nsinit.ReportControl && n == 4 && p.execs == nil:
			f, err := take("exec channel", body)
			if err != nil {
				return err
			}
			p.execs = newExecChannel(f)
		case tag == nsinit.ReportLocal && n == 4 && p.Local == nil:
			f, err := take("local-socket channel", body)
			if err != nil {
				return err
			}
			p.Local = f
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

// sendRoot gives the container its root and volumes. The root is an
// overlay whose lower layers are the task's layers under a top layer of
// mount points and engine files, each layer an id-mapped clone, so that
// the image's owners (host ids 0..65535) appear as the same ids inside
// while the container's processes run as unprivileged host ids. Unless the
// task is read-only, the overlay's upper layer is a private tmpfs, id-mapped
// the same way: the container's writes land there, are charged to its
// memory limit and vanish with its mount namespace. Only the host side can
// build it: it can search any path, and only it may id-map a mount.
// The child attaches it on the top layer's directory, opened through the
// child's own view of the file system (a tree can only be attached onto a
// mount of the attaching process's namespace).
func sendRoot(sock *os.File, pid int, t *Task) error {
	top := filepath.Join(t.Scratch, "mnt")
	if err := buildTop(top, t); err != nil {
		return err
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
	if t.TrustedOverlay {
		// Made by root in the host's namespace, the mount reads trusted.*.
	} else if err := unix.FsconfigSetFlag(fs, "userxattr"); err != nil {
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
	attrs := uint64(unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV)
	if t.ReadOnly {
		attrs |= unix.MOUNT_ATTR_RDONLY
	} else {
		upper, err := writableLayer(t.IDs.Host, t.Limits.WritableBytes)
		if err != nil {
			return fmt.Errorf("root: writable layer: %w", err)
		}
		fds = append(fds, upper...)
		if err := unix.FsconfigSetFd(fs, "upperdir", upper[1]); err != nil {
			return fmt.Errorf("root: overlay upperdir: %w", err)
		}
		if err := unix.FsconfigSetFd(fs, "workdir", upper[2]); err != nil {
			return fmt.Errorf("root: overlay workdir: %w", err)
		}
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return fmt.Errorf("root: overlay: %w", err)
	}
	root, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, int(attrs))
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
		ns := userns
		if v.Bind {
			holder, err := ownerNamespace(v.Owner, t.IDs.Host)
			if err != nil {
				return fmt.Errorf("host directory on %s: %w", v.Target, err)
			}
			defer holder.Close()
			ns = int(holder.Fd())
		}
		if err := idmap(int(v.Mount.Fd()), ns, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV); err != nil {
			return fmt.Errorf("volume on %s: id-map: %w", v.Target, err)
		}
		pass = append(pass, int(v.Mount.Fd()))
	}
	if err := unix.Sendmsg(int(sock.Fd()), []byte{0}, unix.UnixRights(pass...), nil, 0); err != nil {
		return fmt.Errorf("send root: %w", err)
	}
	return nil
}

// buildTop makes the top layer in dir: the mount points Oak needs (so any
// image can be a root), the volumes' targets and the working directory
// where the image has none (docker creates a missing WorkingDir), and the
// engine's files. A directory is only made where no layer has it and
// nothing but directories lead to it, so the top layer never hides an
// image's file, link, or a directory's owner and mode.
func buildTop(top string, t *Task) error {
	if err := os.MkdirAll(top, 0o755); err != nil {
		return fmt.Errorf("mount points: %w", err)
	}
	dirs := append([]string(nil), mountPoints...)
	for _, v := range t.Volumes {
		dirs = append(dirs, v.Target[1:])
	}
	for _, p := range t.Tmpfs {
		dirs = append(dirs, p[1:])
	}
	if t.Cwd != "" && t.Cwd != "/" {
		dirs = append(dirs, t.Cwd[1:])
	}
	for _, d := range dirs {
		if free, exists := lookupLayers(t.Layers, d); !free || exists {
			continue
		}
		if err := os.MkdirAll(filepath.Join(top, d), 0o755); err != nil {
			return fmt.Errorf("mount points: %w", err)
		}
	}
	usable := map[string]bool{} // by parent directory: the files share /etc
	for _, f := range t.Files {
		parent := filepath.Dir(f.Path)[1:]
		ok, seen := usable[parent]
		if !seen {
			ok, _ = lookupLayers(t.Layers, parent)
			usable[parent] = ok
			if ok {
				if err := os.MkdirAll(filepath.Join(top, parent), 0o755); err != nil {
					return fmt.Errorf("file %s: %w", f.Path, err)
				}
			}
		}
		if !ok {
			continue // the image made /etc something else; leave it be
		}
		if err := os.WriteFile(filepath.Join(top, f.Path), f.Data, f.Mode.Perm()); err != nil {
			return fmt.Errorf("file %s: %w", f.Path, err)
		}
	}
	return nil
}

// lookupLayers looks rel (relative to the root) up in every layer, never
// following a link of the image: free says that rel and every directory
// above it is, in every layer, a directory or absent; exists that some
// layer has rel.
func lookupLayers(layers []string, rel string) (free, exists bool) {
	if rel == "" {
		return true, true
	}
	parts := strings.Split(rel, "/")
	for _, l := range layers {
		dir, err := unix.Open(l, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return false, false
		}
		f, e := lookupLayer(dir, parts)
		unix.Close(dir)
		if !f {
			return false, false
		}
		exists = exists || e
	}
	return true, exists
}

// lookupLayer is lookupLayers for the one layer open at dir.
func lookupLayer(dir int, parts []string) (free, exists bool) {
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
	for i := range parts {
		fd, err := unix.Openat2(dir, filepath.Join(parts[:i+1]...), how)
		if err == unix.ENOENT {
			return true, false // absent here, and so everything below
		}
		if err != nil {
			return false, false
		}
		var st unix.Stat_t
		err = unix.Fstat(fd, &st)
		unix.Close(fd)
		if err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return false, false
		}
	}
	return true, true
}

// writableLayer makes the container's private upper layer: a tmpfs of
// size bytes (DefaultWritableBytes if 0). It is not id-mapped: overlay
// makes its work files with the mounter's (host root's) ids, which an
// id-mapping would not map, so the layer keeps host ids, the container's
// own (what it copies up keeps the owner it shows through the lower
// layer's mapping). Its top directory, the root's attributes, belongs to
// host id root, container root. It returns the mount and its upper and
// work directories.
func writableLayer(root uint32, size int64) ([]int, error) {
	if size <= 0 {
		size = DefaultWritableBytes
	}
	fs, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fs)
	if err := unix.FsconfigSetString(fs, "size", strconv.FormatInt(size, 10)); err != nil {
		return nil, fmt.Errorf("size %d: %w", size, err)
	}
	if err := unix.FsconfigSetString(fs, "mode", "0755"); err != nil {
		return nil, err
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return nil, err
	}
	mnt, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV)
	if err != nil {
		return nil, err
	}
	fds := []int{mnt}
	fail := func(err error) ([]int, error) {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, err
	}
	for _, d := range []string{"upper", "work"} {
		if err := unix.Mkdirat(mnt, d, 0o755); err != nil {
			return fail(err)
		}
	}
	if err := unix.Fchownat(mnt, "upper", int(root), int(root), 0); err != nil {
		return fail(err)
	}
	for _, d := range []string{"upper", "work"} {
		fd, err := unix.Openat(mnt, d, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fail(err)
		}
		fds = append(fds, fd)
	}
	return fds, nil
}

// ownerNamespace returns a user namespace in which the host ids of owner
// are the ids root, the container's root, has on the host (rootHost): an
// id-mapping of a host directory with it shows owner's files as root's in
// the container, and root's writes land as owner's; no other id is mapped.
// A process of the oak binary that only waits (OAK_USERNS_ENV) holds the
// namespace while its descriptor is taken, and is killed then.
func ownerNamespace(owner IDPair, rootHost uint32) (*os.File, error) {
	cmd := &exec.Cmd{
		Path: "/proc/self/exe",
		Args: []string{"oak-userns"},
		Env:  []string{nsinit.UsernsEnvVar + "=1"},
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags:  unix.CLONE_NEWUSER,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: int(owner.UID), HostID: int(rootHost), Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: int(owner.GID), HostID: int(rootHost), Size: 1}},
			Pdeathsig:   syscall.SIGKILL,
		},
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("user namespace for the owner's ids: %w", err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid))
	if err != nil {
		return nil, fmt.Errorf("user namespace for the owner's ids: %w", err)
	}
	return f, nil
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
		if p.execs != nil {
			p.execs.close()
		}
		if p.Local != nil {
			p.Local.Close()
		}
		if err := p.cg.destroy(); err != nil && p.werr == nil {
			p.werr = err
		}
	})
	return p.st, p.werr
}

// encodeTask writes t as the records nsinit.c reads.
func encodeTask(t *Task, filter []byte, views []cgroupView) []byte {
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
	if t.TTY {
		rec(nsinit.TagTTY)
	}
	if t.Cwd != "" {
		rec(nsinit.TagCwd, []byte(t.Cwd))
	}
	for _, v := range t.Volumes {
		tag := nsinit.TagVolume
		if v.Bind || v.NoFill {
			tag = nsinit.TagBind // attached as it is, never filled
		}
		rec(uint32(tag), []byte(v.Target[1:]))
	}
	for _, v := range views {
		rec(nsinit.TagCgroup, str(v.fstype), str(v.dir), []byte(v.opts))
	}
	for _, a := range t.Args {
		rec(nsinit.TagArg, []byte(a))
	}
	for _, e := range t.Env {
		rec(nsinit.TagEnv, []byte(e))
	}
	rec(nsinit.TagSeccomp, filter)
	ids := binary.LittleEndian.AppendUint32(nil, t.UID)
	ids = binary.LittleEndian.AppendUint32(ids, t.GID)
	for _, g := range t.Groups {
		ids = binary.LittleEndian.AppendUint32(ids, g)
	}
	rec(nsinit.TagUser, ids)
	if t.DropCaps != 0 {
		rec(nsinit.TagDropCaps, binary.LittleEndian.AppendUint64(nil, t.DropCaps))
	}
	rec(nsinit.TagEnd)
	return b
}

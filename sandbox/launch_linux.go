package sandbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/oak-engine/oak/internal/trace"
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

var (
	filter           = sync.OnceValues(func() ([]byte, error) { return filterBytes(policy.Program) })
	podNetworkFilter = sync.OnceValues(func() ([]byte, error) { return filterBytes(policy.PodNetworkProgram) })
)

func filterBytes(program func() ([]unix.SockFilter, error)) ([]byte, error) {
	prog, err := program()
	if err != nil {
		return nil, err
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&prog[0])), len(prog)*int(unsafe.Sizeof(prog[0]))), nil
}

// Start launches t and returns once its command is executing, or with an
// error naming the step that failed (nothing of the container is left then).
// It is Prepare and Prepared.Start at once, with t's parent group and the
// namespaces it joins.
func Start(t *Task) (*Process, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	if len(t.ExtraFiles) > nsinit.MaxExtraFDs || slices.Contains(t.ExtraFiles, nil) {
		return nil, fmt.Errorf("task %s: %d extra descriptors: want at most %d, none nil", t.ID, len(t.ExtraFiles), nsinit.MaxExtraFDs)
	}
	if len(t.Groups) > nsinit.UserMaxGroups {
		return nil, fmt.Errorf("task %s: %d supplementary groups: at most %d", t.ID, len(t.Groups), nsinit.UserMaxGroups)
	}
	pr, err := prepare(t.ID, t.IDs, t.CgroupParent, t.joins(), t.ExtraFiles)
	if err != nil {
		return nil, err
	}
	return pr.Start(t)
}

// Prepared is an empty sandbox made ahead of its task: an init in fresh
// user, mount, pid, ipc, uts and network namespaces, with the id maps of
// its range, sitting in groups of its own (without limits), waiting for a
// root and a task. Nothing of an image has reached it. It serves exactly
// one task (Start) and is never reused; Discard destroys one that will
// serve none. Its init is killed when the OS thread that prepared it ends
// (Pdeathsig), as a started container's is.
type Prepared struct {
	id     string
	ids    IDRange
	group  string     // the parent group (Task.CgroupParent) it sits under
	join   []nsJoin   // the namespaces it joined instead of making its own
	extra  []*os.File // descriptors it holds for the command (Task.ExtraFiles)
	cmd    *exec.Cmd
	parent *os.File // the host's end of nsinit's fd 3
	placed func() (*cgroup, error)
	used   bool
}

// Prepare makes an empty sandbox for the task that will have id and ids,
// in fresh namespaces and groups directly under Oak's.
//
// The steps overlap where they can: the groups are made while the child
// starts, and the child is moved into them while the caller goes on (to
// build the root, in Start). A move in a cgroup v1 hierarchy can wait
// milliseconds for an RCU grace period (see PrimeMoves).
func Prepare(id string, ids IDRange) (*Prepared, error) { return prepare(id, ids, "", nil, nil) }

// PrepareIn is Prepare with the groups under group (Task.CgroupParent, a
// path under Oak's groups that must exist): a sandbox prepared for a
// task made from a factory, charged to the factory from the start.
func PrepareIn(id string, ids IDRange, group string) (*Prepared, error) {
	return prepare(id, ids, group, nil, nil)
}

// prepare is Prepare with the groups under group, the namespaces of join
// entered instead of made, and extra descriptors for the command
// (Task.ExtraFiles), which go with the clone.
func prepare(id string, ids IDRange, group string, join []nsJoin, extra []*os.File) (*Prepared, error) {
	if id == "" || ids.Size == 0 || ids.Host == 0 {
		return nil, fmt.Errorf("prepare sandbox %q: id range %d+%d would map host root", id, ids.Host, ids.Size)
	}
	if err := checkParentGroup(group); err != nil {
		return nil, fmt.Errorf("launch %s: %w", id, err)
	}
	go filter() // compiled once per process; Start uses it
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("launch %s: socketpair: %w", id, err)
	}
	parent := os.NewFile(uintptr(fds[0]), "nsinit")
	child := os.NewFile(uintptr(fds[1]), "nsinit-child")

	type groups struct {
		cg  *cgroup
		err error
	}
	made := make(chan groups, 1)
	go func() {
		cg, err := newCgroup(path.Join(group, id))
		trace.Mark("sandbox: cgroups made")
		made <- groups{cg, err}
	}()
	flags := uintptr(namespaces)
	for _, j := range join {
		flags &^= uintptr(j.flag)
	}
	idmap := []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(ids.Host), Size: int(ids.Size)}}
	// The command's stdio is not known yet: it comes with the root (see
	// sendRoot); until then the child's is /dev/null.
	cmd := &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       []string{"oak-init"},
		Env:        append([]string{nsinit.EnvVar + "=1"}, trace.Env(nsinit.TraceEnvVar)...),
		ExtraFiles: []*os.File{child},
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags:  flags,
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
	if trace.On() {
		// nsinit's marks before the root (and the command's stdio)
		// arrive go to ours; it never keeps this descriptor past then.
		cmd.Stderr = os.Stderr
	}
	if n := len(extra); n > 0 {
		// nsinit finds them at 4.., after its fd 3, and moves them to 3..
		// for the command.
		cmd.ExtraFiles = append(cmd.ExtraFiles, extra...)
		cmd.Env = append(cmd.Env, nsinit.ExtraFDsEnvVar+"="+strconv.Itoa(n))
	}
	err = startJoined(cmd, join)
	child.Close()
	if err != nil {
		parent.Close()
		if g := <-made; g.cg != nil {
			g.cg.destroy()
		}
		return nil, fmt.Errorf("launch %s: %w", id, err)
	}
	trace.Mark("sandbox: cloned")
	pid := cmd.Process.Pid
	moved := make(chan groups, 1)
	go func() {
		g := <-made
		if g.err == nil {
			g.err = g.cg.add(pid)
		}
		moved <- g
	}()
	placed := sync.OnceValues(func() (*cgroup, error) {
		g := <-moved
		return g.cg, g.err
	})
	return &Prepared{id: id, ids: ids, group: group, join: join, extra: extra, cmd: cmd, parent: parent, placed: placed}, nil
}

// sameJoins reports whether a and b join the same namespace files.
func sameJoins(a, b []nsJoin) bool {
	return slices.EqualFunc(a, b, func(x, y nsJoin) bool { return x.flag == y.flag && x.file == y.file })
}

// Placed waits until the prepared sandbox's init sits in its groups (a
// move that can wait for an RCU grace period, see Prepare), and says why
// it could not be moved, if it could not. A sandbox kept ready for later
// is placed first, so that the move neither delays its start nor runs
// alongside others' launches.
func (pr *Prepared) Placed() error {
	_, err := pr.placed()
	return err
}

// Pid is the host pid of the prepared sandbox's init, which becomes the
// container's init.
func (pr *Prepared) Pid() int { return pr.cmd.Process.Pid }

// Discard destroys a prepared sandbox that will serve no task: it kills the
// init and removes its groups.
func (pr *Prepared) Discard() {
	if pr.used {
		return
	}
	pr.used = true
	pr.cmd.Process.Kill()
	cg, _ := pr.placed()
	p := &Process{cmd: pr.cmd, cg: cg}
	p.Wait()
	pr.parent.Close()
}

// Start gives the prepared sandbox its task t, whose ID, IDs, parent group
// and joined namespaces must be the ones it was prepared for, and returns
// once t's command is executing, or with an error naming the step that
// failed (nothing of the container is left then). A Prepared serves one
// Start only.
func (pr *Prepared) Start(t *Task) (*Process, error) {
	if pr.used {
		return nil, fmt.Errorf("launch %s: the prepared sandbox %s was used already", t.ID, pr.id)
	}
	if err := t.validate(); err != nil {
		pr.Discard()
		return nil, err
	}
	if t.ID != pr.id || t.IDs != pr.ids {
		pr.Discard()
		return nil, fmt.Errorf("launch %s: a sandbox prepared for %s, ids %d+%d, cannot take it (ids %d+%d)",
			t.ID, pr.id, pr.ids.Host, pr.ids.Size, t.IDs.Host, t.IDs.Size)
	}
	if t.CgroupParent != pr.group || !sameJoins(t.joins(), pr.join) || !slices.Equal(t.ExtraFiles, pr.extra) {
		pr.Discard()
		return nil, fmt.Errorf("launch %s: a sandbox prepared under group %q with %d joined namespaces and %d extra descriptors cannot take a task under %q with %d and %d",
			t.ID, pr.group, len(pr.join), len(pr.extra), t.CgroupParent, len(t.joins()), len(t.ExtraFiles))
	}
	pr.used = true
	parent, cmd, pid := pr.parent, pr.cmd, pr.cmd.Process.Pid
	defer parent.Close()
	p := &Process{cmd: cmd}
	fail := func(err error) (*Process, error) {
		cmd.Process.Kill()
		p.cg, _ = pr.placed()
		p.Wait()
		return nil, err
	}
	// nsinit builds the root meanwhile and waits for the word below before
	// it runs anything of the image.
	if err := sendRoot(parent, pid, t); err != nil {
		return fail(fmt.Errorf("launch %s: %w", t.ID, err))
	}
	trace.Mark("sandbox: root sent")
	prog, err := filter()
	if t.JoinNet != nil {
		// The caller's network namespace is the container's network:
		// sockets are made natively there (see policy.PodNetworkTable).
		prog, err = podNetworkFilter()
	}
	if err != nil {
		return fail(fmt.Errorf("seccomp policy: %w", err))
	}
	if _, err := parent.Write(encodeTask(t, prog, cgroupViews())); err != nil {
		return fail(fmt.Errorf("launch %s: send task: %w", t.ID, err))
	}
	trace.Mark("sandbox: task sent")
	// The host may lower limits or raise a soft one to its hard limit,
	// never raise a hard one: it holds no CAP_SYS_RESOURCE.
	for _, l := range t.Rlimits {
		if err := unix.Prlimit(pid, l.Resource, &unix.Rlimit{Cur: l.Soft, Max: l.Hard}, nil); err != nil {
			return fail(fmt.Errorf("launch %s: ulimit %s=%d:%d: %w", t.ID, l.Name, l.Soft, l.Hard, err))
		}
	}
	cg, err := pr.placed()
	p.cg = cg
	if err != nil {
		return fail(err)
	}
	if err := cg.setLimits(t.Limits); err != nil {
		return fail(err)
	}
	trace.Mark("sandbox: cgroups joined")
	if _, err := parent.Write([]byte{1}); err != nil {
		return fail(fmt.Errorf("launch %s: confirm cgroups: %w", t.ID, err))
	}
	// nsinit reports its seccomp listener and channels, then the command's
	// execve closes fd 3; an error record instead names the step that
	// failed. A held launch stops before the command (REPORT_HELD), with
	// everything else done, until Hold returns.
	trace.Mark("sandbox: go sent")
	held, err := p.readReports(parent)
	if err != nil {
		return fail(err)
	}
	if held != (t.Hold != nil) {
		return fail(fmt.Errorf("launch %s: nsinit held the launch %v, asked %v", t.ID, held, t.Hold != nil))
	}
	if held {
		trace.Mark("sandbox: held")
		if err := t.Hold(p); err != nil {
			return fail(fmt.Errorf("launch %s: %w", t.ID, err))
		}
		if _, err := parent.Write([]byte{1}); err != nil {
			return fail(fmt.Errorf("launch %s: release: %w", t.ID, err))
		}
		if held, err = p.readReports(parent); err == nil && held {
			err = fmt.Errorf("launch %s: nsinit held the launch twice", t.ID)
		}
		if err != nil {
			return fail(err)
		}
	}
	trace.Mark("sandbox: command executing")
	return p, nil
}

// nsJoin is a namespace a task joins: its file and its CLONE_NEW* type.
type nsJoin struct {
	name string // as /proc/PID/ns/ names it
	file *os.File
	flag int
}

func (t *Task) joins() []nsJoin {
	var js []nsJoin
	for _, j := range []nsJoin{{"net", t.JoinNet, unix.CLONE_NEWNET}, {"ipc", t.JoinIPC, unix.CLONE_NEWIPC},
		{"uts", t.JoinUTS, unix.CLONE_NEWUTS}} {
		if j.file != nil {
			js = append(js, j)
		}
	}
	return js
}

// startJoined starts cmd from an OS thread of its own that has entered
// the namespaces of join, so that the child is created in them (these
// namespaces belong to a thread, not to the process). The thread still
// holds the host's privilege there, which joining needs and the child
// does not keep: its new user namespace owns none of them. The thread
// then goes back to this process's own namespaces; if it cannot, it stays
// locked and ends with its goroutine rather than run other Go code in a
// container's namespaces.
func startJoined(cmd *exec.Cmd, join []nsJoin) error {
	if len(join) == 0 {
		return cmd.Start()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		var own []int
		defer func() {
			for _, fd := range own {
				unix.Close(fd)
			}
		}()
		for _, j := range join {
			fd, err := unix.Open("/proc/thread-self/ns/"+j.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				errc <- fmt.Errorf("own %s namespace: %w", j.name, err)
				return
			}
			own = append(own, fd)
		}
		entered := 0
		err := func() error {
			for _, j := range join {
				if err := unix.Setns(int(j.file.Fd()), j.flag); err != nil {
					return fmt.Errorf("join %s namespace %s: %w", j.name, j.file.Name(), err)
				}
				entered++
			}
			return cmd.Start()
		}()
		for i := entered - 1; i >= 0; i-- {
			if e := unix.Setns(own[i], join[i].flag); e != nil {
				if err == nil {
					cmd.Process.Kill()
					cmd.Wait()
				}
				errc <- fmt.Errorf("return to own %s namespace: %w", join[i].name, e)
				return // the thread stays locked and ends with this goroutine
			}
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

func (p *Process) readReports(r io.Reader) (held bool, err error) {
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
					return false, errors.New("launch: nsinit ended without a seccomp listener")
				}
				return false, nil
			}
			return false, fmt.Errorf("launch: read nsinit report: %w", err)
		}
		tag, n := binary.LittleEndian.Uint32(hdr[:4]), binary.LittleEndian.Uint32(hdr[4:])
		if n > 4096 {
			return false, fmt.Errorf("nsinit report %d: %d bytes is too long", tag, n)
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return false, fmt.Errorf("launch: read nsinit report: %w", err)
		}
		switch {
		case tag == nsinit.ReportError && n >= 4:
			msg := string(body[4:])
			if errno := syscall.Errno(binary.LittleEndian.Uint32(body)); errno != 0 {
				return false, &InitError{Errno: errno, Msg: msg}
			}
			return false, errors.New(msg)
		case tag == nsinit.ReportExec && n >= 4:
			return false, &ExecError{Errno: syscall.Errno(binary.LittleEndian.Uint32(body)), Msg: string(body[4:])}
		case tag == nsinit.ReportListener && n == 4 && p.Listener == nil:
			l, err := take("seccomp listener", body)
			if err != nil {
				return false, err
			}
			p.Listener = l
		case tag == nsinit.ReportControl && n == 4 && p.execs == nil:
			f, err := take("exec channel", body)
			if err != nil {
				return false, err
			}
			p.execs = newExecChannel(f)
		case tag == nsinit.ReportLocal && n == 4 && p.Local == nil:
			f, err := take("local-socket channel", body)
			if err != nil {
				return false, err
			}
			p.Local = f
		case tag == nsinit.ReportHeld && n == 0 && p.Listener != nil && p.execs != nil && p.Local != nil:
			return true, nil
		default:
			return false, fmt.Errorf("launch: unexpected nsinit report %d (%d bytes)", tag, n)
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

// sendRoot gives the container its root, its stdio and its volumes. The
// root is an
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
	trace.Mark("sandbox: top layer written")
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
	trace.Mark("sandbox: layers id-mapped")
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
	trace.Mark("sandbox: writable layer made")
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
	// The command's stdin, stdout and stderr, which nsinit makes its own
	// 0, 1 and 2 (a missing one is /dev/null).
	for i, f := range []*os.File{t.Stdin, t.Stdout, t.Stderr} {
		if f != nil {
			pass = append(pass, int(f.Fd()))
			continue
		}
		null, err := unix.Open("/dev/null", []int{unix.O_RDONLY, unix.O_WRONLY, unix.O_WRONLY}[i]|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("stdio: %w", err)
		}
		fds = append(fds, null)
		pass = append(pass, null)
	}
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

// Exited waits until the container's command has ended and reports how, as
// Wait will, but before the container is torn down: init reports the
// command's status on its exec channel just before it exits, and Exited
// returns then, leaving the rest (init's exit, which ends what the command
// left running, and the removal of the groups) to Wait, which the caller
// must still call. A container that ends without that report (killed
// outright) is waited for as by Wait.
func (p *Process) Exited() (Exit, error) {
	if p.execs != nil {
		if code, ok := p.execs.command(); ok {
			return Exit{Code: code, OOMKilled: p.cg.oomKills() > 0}, nil
		}
	}
	return p.Wait()
}

// Wait waits for the container to end, removes its groups and reports how it
// ended. It may be called more than once.
func (p *Process) Wait() (Exit, error) {
	p.once.Do(func() {
		err := p.cmd.Wait()
		trace.Mark("sandbox: init exited")
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
		trace.Mark("sandbox: cgroups removed")
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
	if t.Hold != nil {
		rec(nsinit.TagHold)
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

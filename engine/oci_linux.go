package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/oak-engine/oak/sandbox"
	"github.com/oak-engine/oak/services/netsvc"
)

// The OCI runtime (oak-runtime) keeps each container in ROOT/ID:
//
//	config.json   the bundle resolved onto Oak's container (OCIContainer)
//	state.json    the record (ociRecord), written atomically
//	sock          the supervisor's unix socket, for the start verb
//	scratch/      the top layer of the container's root
//
// create starts a supervisor, a process of this binary of its own per
// container (`oak-runtime _supervise ID`), and returns once the container
// is created: its init is built and sits in its groups, waiting in nsinit
// for the host's word before anything of the image runs (sandbox.Task.Hold).
// start connects to sock; the supervisor lets the launch go on and answers
// once the command runs. The supervisor then answers the container's
// trapped calls, and exits with the container's exit status when it ends.
// Its pid is the container's pid in the state and the pid file: callers
// (conmon, containerd's shim) are sub-reapers that wait for that process,
// which becomes theirs when create exits.

// ociIDBase is where OCI containers' id blocks start: above the engine's
// (idBase + maxSlots·idSize = 2^31), so that `oak run` and oak-runtime
// containers never share ids whatever state roots they use.
const (
	ociIDBase   = 1 << 31
	ociMaxSlots = (1<<32-ociIDBase)/idSize - 1 // the last block would hold uid 2^32-1, which is no id
)

// OCISlotDir holds one lock file per id block in use by an OCI container,
// whatever its --root: the supervisor holds the block's lock (flock) for
// the container's life, so a killed supervisor frees it.
const OCISlotDir = "/run/oak/oci-slots"

// OCIStatus values, as the runtime spec names them.
const (
	ociCreating = string(specs.StateCreating)
	ociCreated  = string(specs.StateCreated)
	ociRunning  = string(specs.StateRunning)
	ociStopped  = string(specs.StateStopped)
	ociPaused   = "paused" // runc's word; the spec leaves it to runtimes
)

// ociRecord is a container's state.json.
type ociRecord struct {
	ID         string `json:"id"`
	Bundle     string `json:"bundle"`
	Status     string `json:"status"`
	Supervisor int    `json:"supervisor"`
	SupStart   uint64 `json:"supervisor_start"`
	Init       int    `json:"init,omitempty"` // host pid of the container's init
	InitStart  uint64 `json:"init_start,omitempty"`
	Slot       int    `json:"slot"`
	// Member, when not 0, says the container shares the id block of
	// another (a pod's sandbox) whose namespaces it joined; it names its
	// groups apart from the block owner's.
	Member      int               `json:"member,omitempty"`
	Created     time.Time         `json:"created"`
	ExitCode    *int              `json:"exit_code,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Runtime carries out the runc-compatible verbs on the containers under Root.
type Runtime struct {
	Root   string
	Strict bool
	// Warn reports what was narrowed, and the supervisor's problems.
	Warn func(msg string)
}

func (r *Runtime) dir(id string) string { return filepath.Join(r.Root, id) }

func (r *Runtime) warn(format string, a ...any) {
	if r.Warn != nil {
		r.Warn(fmt.Sprintf(format, a...))
	}
}

// ErrOCINotExist is returned for a container id with no state.
var ErrOCINotExist = errors.New("container does not exist")

func (r *Runtime) load(id string) (*ociRecord, error) {
	if err := CheckOCIID(id); err != nil {
		return nil, err
	}
	var rec ociRecord
	if err := readJSON(filepath.Join(r.dir(id), "state.json"), &rec); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("container %s: %w", id, ErrOCINotExist)
		}
		return nil, err
	}
	return &rec, nil
}

func (r *Runtime) save(rec *ociRecord) error {
	return writeFileAtomic(filepath.Join(r.dir(rec.ID), "state.json"), mustJSON(rec))
}

// status is the record's status as the host has it: a container whose
// supervisor is gone has stopped.
func (rec *ociRecord) status() string {
	if rec.Status != ociStopped && !alive(rec.Supervisor, rec.SupStart) {
		return ociStopped
	}
	return rec.Status
}

// LoadBundle reads and maps the bundle in dir, and checks on the host
// what the mapping could only check lexically: the root file system, and
// the files to copy.
func LoadBundle(dir string, opts OCIOptions) (*OCIContainer, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	b, err := os.ReadFile(filepath.Join(abs, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("bundle %s: config.json: %w", abs, unwrapPath(err))
	}
	s, err := ParseOCIConfig(b)
	if err != nil {
		return nil, err
	}
	if opts.HostHardLimit == nil {
		opts.HostHardLimit = func(res int) uint64 {
			var l unix.Rlimit
			if unix.Getrlimit(res, &l) != nil {
				return 0
			}
			return l.Max
		}
	}
	c, err := MapOCISpec(abs, s, opts)
	if err != nil {
		return nil, err
	}
	if !filepath.IsAbs(s.Root.Path) {
		// A relative root must stay in the bundle after its links too.
		realBundle, err1 := filepath.EvalSymlinks(abs)
		realRoot, err2 := filepath.EvalSymlinks(c.RootFS)
		if err := errors.Join(err1, err2); err != nil {
			return nil, refuse("root.path", "%v", unwrapPath(err))
		}
		if rel, err := filepath.Rel(realBundle, realRoot); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			return nil, refuse("root.path", "%q leads outside the bundle, to %s", s.Root.Path, realRoot)
		}
	}
	if err := sandbox.CheckRootFS(c.RootFS); err != nil {
		return nil, refuse("root.path", "%v", err)
	}
	if err := maskIn(c); err != nil {
		return nil, err
	}
	if c.Layers, err = overlayLayers(c.RootFS); err != nil {
		return nil, refuse("root.path", "%v", err)
	}
	if c.Layers != nil {
		c.Warnings = append(c.Warnings, fmt.Sprintf("config.json: root.path: %s is an overlay mount; the container runs on its layers under a private writable layer, so its writes do not reach the overlay's upperdir", c.RootFS))
	}
	for _, f := range c.CopyFiles {
		field := fmt.Sprintf("mounts (%s)", f.Target)
		for i, m := range s.Mounts {
			if filepath.Clean(m.Source) == f.Source && filepath.Clean(m.Destination) == f.Target {
				field = fmt.Sprintf("mounts[%d]", i)
			}
		}
		fi, err := os.Stat(f.Source)
		switch {
		case err != nil:
			return nil, refuse(field, "source: %v", unwrapPath(err))
		case !fi.Mode().IsRegular():
			return nil, refuse(field, "source %s on %s: only a regular file is copied in; Oak grants no host directories", f.Source, f.Target)
		case fi.Size() > maxCopiedFile:
			return nil, refuse(field, "source %s: %d bytes is more than the %d a copied file may have", f.Source, fi.Size(), maxCopiedFile)
		}
	}
	return c, nil
}

// maxCopiedFile bounds a host file copied into the root (/etc/hosts, …).
const maxCopiedFile = 64 << 10

// CreateOptions are the create verb's flags.
type CreateOptions struct {
	Bundle  string
	PidFile string
	// ConsoleSocket is a unix socket that receives the master end of the
	// container's terminal (SCM_RIGHTS) when the bundle asks for one.
	ConsoleSocket string
	// Supervisor is how to start the supervisor: this binary with the
	// arguments that reach Runtime.Supervise for ID. Its stdin, stdout and
	// stderr become the container's.
	Supervisor *exec.Cmd
	// ExtraFiles reach the container's command at 3, 4, ...
	// (--preserve-fds), at most sandbox.MaxExtraFiles.
	ExtraFiles []*os.File
}

// Create makes container id from the bundle and leaves it created: its
// init waits before the command. Its supervisor is the returned process;
// on error nothing of the container is left.
func (r *Runtime) Create(id string, opts CreateOptions) (*exec.Cmd, error) {
	if err := CheckOCIID(id); err != nil {
		return nil, err
	}
	oc, err := LoadBundle(opts.Bundle, OCIOptions{Strict: r.Strict})
	if err != nil {
		return nil, err
	}
	// Checked here for create's error; the supervisor opens them again.
	joined, err := r.openJoins(oc)
	if err != nil {
		return nil, err
	}
	joined.close()
	// Refuse a command that is not in the image now, as runc's create
	// does, rather than at start: callers read the error of create.
	if err := sandbox.LookPathIn(oc.RootFS, oc.Args[0], oc.Env, oc.Cwd); err != nil {
		return nil, err
	}
	switch {
	case oc.Terminal && opts.ConsoleSocket == "":
		return nil, refuse("process.terminal", "a terminal needs --console-socket, where the terminal's master end is sent")
	case !oc.Terminal && opts.ConsoleSocket != "":
		return nil, fmt.Errorf("--console-socket: the bundle asks for no terminal (process.terminal is false)")
	}
	for _, w := range oc.Warnings {
		r.warn("%s", w)
	}
	if len(opts.ExtraFiles) > sandbox.MaxExtraFiles {
		return nil, fmt.Errorf("--preserve-fds %d: at most %d descriptors are passed", len(opts.ExtraFiles), sandbox.MaxExtraFiles)
	}
	oc.PreserveFDs = len(opts.ExtraFiles)
	if err := os.MkdirAll(r.Root, 0o700); err != nil {
		return nil, fmt.Errorf("state root: %w", unwrapPath(err))
	}
	dir := r.dir(id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("container with id exists: %s", id)
		}
		return nil, fmt.Errorf("container %s: %w", id, unwrapPath(err))
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	if err := writeFileAtomic(filepath.Join(dir, "config.json"), mustJSON(oc)); err != nil {
		return nil, err
	}
	rec := &ociRecord{ID: id, Bundle: oc.Bundle, Status: ociCreating, Created: time.Now().UTC(), Annotations: oc.Annotations}
	if err := r.save(rec); err != nil {
		return nil, err
	}
	cmd := opts.Supervisor
	if oc.Terminal {
		// The container's stdio is a new terminal; its master end goes
		// to the caller, who copies between it and its user.
		master, slave, err := openPty(oc.ConsoleRows, oc.ConsoleCols)
		if err != nil {
			return nil, fmt.Errorf("create %s: terminal: %w", id, err)
		}
		defer slave.Close()
		err = sendConsole(opts.ConsoleSocket, master)
		master.Close()
		if err != nil {
			return nil, fmt.Errorf("create %s: --console-socket %s: %w", id, opts.ConsoleSocket, err)
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	}
	rd, wr, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.ExtraFiles = append([]*os.File{wr}, opts.ExtraFiles...) // the report at 3, the command's at 4..
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	wr.Close()
	if err != nil {
		rd.Close()
		return nil, fmt.Errorf("create %s: start supervisor: %w", id, err)
	}
	msg, _ := io.ReadAll(rd)
	rd.Close()
	if string(msg) != ociCreated {
		cmd.Process.Kill()
		cmd.Wait()
		if len(msg) == 0 {
			return nil, fmt.Errorf("create %s: the supervisor ended before the container was created", id)
		}
		return nil, decodeStartFailure(msg)
	}
	if opts.PidFile != "" {
		if err := WritePidFile(opts.PidFile, cmd.Process.Pid); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			return nil, err
		}
	}
	ok = true
	return cmd, nil
}

// WritePidFile writes pid to path (made absolute) atomically, as runc's
// --pid-file: a reader never sees a partial pid.
func WritePidFile(path string, pid int) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	return writeFileAtomic(abs, []byte(strconv.Itoa(pid)))
}

// sockAddr names the supervisor's socket of id through a descriptor of the
// container's directory: a unix socket path holds at most 108 bytes.
func (r *Runtime) sockAddr(id string) (string, func(), error) {
	d, err := os.Open(r.dir(id))
	if err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("/proc/self/fd/%d/sock", d.Fd()), func() { d.Close() }, nil
}

// Start lets a created container run its command, and returns once it
// runs (or with the reason it could not).
func (r *Runtime) Start(id string) error {
	rec, err := r.load(id)
	if err != nil {
		return err
	}
	switch st := rec.status(); st {
	case ociCreated:
	case ociStopped:
		return fmt.Errorf("cannot start a container that has stopped")
	default:
		return fmt.Errorf("cannot start a container in the %s state", st)
	}
	addr, done, err := r.sockAddr(id)
	if err != nil {
		return err
	}
	defer done()
	c, err := net.Dial("unix", addr)
	if err != nil {
		return fmt.Errorf("start %s: reach its supervisor: %w", id, err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "start\n"); err != nil {
		return fmt.Errorf("start %s: %w", id, err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("start %s: the supervisor ended before the command ran", id)
	}
	if line = strings.TrimSuffix(line, "\n"); line != "ok" {
		return decodeStartFailure([]byte(line))
	}
	return nil
}

// State is the runtime-spec state of id. Pid is the supervisor's, the
// process that exits with the container's status.
func (r *Runtime) State(id string) (*specs.State, error) {
	rec, err := r.load(id)
	if err != nil {
		return nil, err
	}
	s := &specs.State{Version: specs.Version, ID: id, Status: specs.ContainerState(rec.status()),
		Bundle: rec.Bundle, Annotations: rec.Annotations}
	if s.Status != specs.StateStopped {
		s.Pid = rec.Supervisor
	}
	return s, nil
}

// List is the state of every container under Root.
func (r *Runtime) List() ([]*specs.State, []time.Time, error) {
	ents, err := os.ReadDir(r.Root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var out []*specs.State
	var created []time.Time
	for _, e := range ents {
		if !e.IsDir() || CheckOCIID(e.Name()) != nil {
			continue
		}
		rec, err := r.load(e.Name())
		if err != nil {
			continue
		}
		s, _ := r.State(e.Name())
		out = append(out, s)
		created = append(created, rec.Created)
	}
	return out, created, nil
}

// Kill sends sig to the container's init, which forwards it to the command
// (SIGKILL ends the whole container); with all, to every process of the
// container as well.
func (r *Runtime) Kill(id string, sig syscall.Signal, all bool) error {
	rec, err := r.load(id)
	if err != nil {
		return err
	}
	if st := rec.status(); st == ociStopped {
		return fmt.Errorf("container not running")
	}
	pid, start := rec.Init, rec.InitStart
	if pid == 0 {
		pid, start = rec.Supervisor, rec.SupStart // still creating: the supervisor forwards
	} else if cmd := commandOf(pid); cmd > 0 && sig != unix.SIGKILL && !all {
		// runc signals the container's process alone; Oak's init would
		// pass it to the command's whole process group (what a terminal
		// does, and oak kill), so the command gets it directly. SIGKILL
		// still goes to the init, which ends the container.
		pid, start = cmd, pidStart(cmd)
	}
	if err := signalExact(pid, start, sig); err != nil {
		return err
	}
	if all && rec.Init != 0 {
		pids, _ := r.Pids(id)
		for _, p := range pids {
			if p != rec.Init {
				signalExact(p, pidStart(p), sig) // one that ended meanwhile is no error
			}
		}
	}
	if sig == unix.SIGKILL && rec.Status == ociPaused {
		// A frozen process may die only once thawed. If it died anyway,
		// its groups may be gone already: that is the kill done.
		if err := sandbox.Freeze(rec.taskID(), false); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

func ociTaskID(slot int) string { return "oci-" + strconv.Itoa(slot) }

// taskID names the container's groups: its block's, or a member's of it.
func (rec *ociRecord) taskID() string {
	if rec.Member != 0 {
		return ociTaskID(rec.Slot) + "-" + strconv.Itoa(rec.Member)
	}
	return ociTaskID(rec.Slot)
}

// Pause freezes every process of a running container (the cgroup
// freezer); Resume lets them go on.
func (r *Runtime) Pause(id string) error { return r.freeze(id, true) }

// Resume lets a paused container's processes go on.
func (r *Runtime) Resume(id string) error { return r.freeze(id, false) }

func (r *Runtime) freeze(id string, frozen bool) error {
	rec, err := r.load(id)
	if err != nil {
		return err
	}
	st := rec.status()
	switch {
	case frozen && st != ociRunning:
		return fmt.Errorf("container not running")
	case !frozen && st != ociPaused:
		return fmt.Errorf("container not paused")
	}
	if err := sandbox.Freeze(rec.taskID(), frozen); err != nil {
		return err
	}
	rec.Status = ociRunning
	if frozen {
		rec.Status = ociPaused
	}
	return r.save(rec)
}

// commandOf is the host pid of the command of the container whose init is
// init (the init's first child), or 0.
func commandOf(init int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", init, init))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	pid, _ := strconv.Atoi(f[0])
	return pid
}

// signalExact signals pid only if it is still the process that started at
// start (a pidfd pins it between the check and the signal).
func signalExact(pid int, start uint64, sig syscall.Signal) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("container not running")
	}
	defer unix.Close(fd)
	if pidStart(pid) != start {
		return fmt.Errorf("container not running")
	}
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil {
		return fmt.Errorf("signal %d: %w", sig, err)
	}
	return nil
}

// Delete removes a stopped container's state; with force it kills a live
// one first and waits for its supervisor to end, and a missing one is no
// error.
func (r *Runtime) Delete(id string, force bool) error {
	rec, err := r.load(id)
	if force && errors.Is(err, ErrOCINotExist) {
		// A create that failed leaves nothing to delete; callers clean up
		// after one with delete --force and expect success (as runc's).
		os.RemoveAll(r.dir(id))
		return nil
	}
	if err != nil {
		return err
	}
	if st := rec.status(); st != ociStopped {
		if !force {
			return fmt.Errorf("cannot delete container %s that is not stopped: %s", id, st)
		}
		if err := r.stop(rec); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(r.dir(id)); err != nil {
		return fmt.Errorf("delete %s: %w", id, unwrapPath(err))
	}
	return nil
}

// stop kills a live container and waits for its supervisor to end.
func (r *Runtime) stop(rec *ociRecord) error {
	fd, err := unix.PidfdOpen(rec.Supervisor, 0)
	if err != nil {
		return nil // gone
	}
	defer unix.Close(fd)
	if pidStart(rec.Supervisor) != rec.SupStart {
		return nil
	}
	if rec.Init != 0 {
		signalExact(rec.Init, rec.InitStart, unix.SIGKILL)
		if rec.Status == ociPaused {
			sandbox.Freeze(rec.taskID(), false)
		}
	} else {
		unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
	}
	// The supervisor removes the container's groups and exits; a
	// supervisor that is not done in 10 s is killed (the next holder of
	// its id block removes what it left).
	for i := 0; i < 2; i++ {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 10000)
		if err == unix.EINTR {
			i--
			continue
		}
		if n > 0 || !alive(rec.Supervisor, rec.SupStart) {
			return nil
		}
		unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
	}
	return fmt.Errorf("delete %s: its supervisor %d does not end", rec.ID, rec.Supervisor)
}

// Pids lists the host pids of the container's processes: its init and
// every descendant.
func (r *Runtime) Pids(id string) ([]int, error) {
	rec, err := r.load(id)
	if err != nil {
		return nil, err
	}
	if rec.status() == ociStopped || rec.Init == 0 || !alive(rec.Init, rec.InitStart) {
		return []int{}, nil
	}
	parent := map[int]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 {
			if f := strings.Fields(s[i+1:]); len(f) > 1 {
				parent[pid], _ = strconv.Atoi(f[1])
			}
		}
	}
	pids := []int{rec.Init}
	for grew := true; grew; {
		grew = false
		for pid, pp := range parent {
			if slices.Contains(pids, pp) && !slices.Contains(pids, pid) {
				pids = append(pids, pid)
				grew = true
			}
		}
	}
	slices.Sort(pids)
	return pids, nil
}

// acquireSlot takes the lowest free OCI id block.
func acquireSlot() (int, *os.File, error) {
	if err := os.MkdirAll(OCISlotDir, 0o700); err != nil {
		return 0, nil, fmt.Errorf("id blocks: %w", unwrapPath(err))
	}
	for n := 0; n < ociMaxSlots; n++ {
		f, err := os.OpenFile(filepath.Join(OCISlotDir, strconv.Itoa(n)), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return 0, nil, fmt.Errorf("id blocks: %w", unwrapPath(err))
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			if !blockHasMembers(n) {
				return n, f, nil
			}
		}
		f.Close()
	}
	return 0, nil, fmt.Errorf("id blocks: all %d are in use", ociMaxSlots)
}

// Supervise is the body of a container's supervisor: it starts the
// container, reports "created" on report once the init waits, lets it run
// on the start verb, serves it, and returns the container's exit status.
func (r *Runtime) Supervise(id string, report *os.File) int {
	sandbox.PrimeMoves() // the grace period runs out while the bundle is read
	syscall.CloseOnExec(int(report.Fd()))
	reported := false
	tell := func(msg []byte) {
		if !reported {
			report.Write(msg)
			report.Close()
			reported = true
		}
	}
	rec, err := r.load(id)
	var oc OCIContainer
	if err == nil {
		err = readJSON(filepath.Join(r.dir(id), "config.json"), &oc)
	}
	if err != nil {
		tell(encodeStartFailure(err))
		return 1
	}
	rec.Supervisor, rec.SupStart = os.Getpid(), pidStart(os.Getpid())
	stopped := func(code int) int {
		rec.Status, rec.ExitCode = ociStopped, &code
		if err := r.save(rec); err != nil && !errors.Is(err, os.ErrNotExist) {
			r.warn("container %s: %v", id, err)
		}
		return code
	}
	fail := func(err error) int {
		tell(encodeStartFailure(err))
		return stopped(1)
	}
	joined, err := r.openJoins(&oc)
	if err != nil {
		return fail(err)
	}
	defer joined.close()
	var slot int
	var lock *os.File
	if joined.owner != nil {
		slot = joined.owner.Slot
		rec.Member, lock, err = acquireMemberSlot(joined.owner)
	} else {
		slot, lock, err = acquireSlot()
	}
	if err != nil {
		return fail(err)
	}
	defer lock.Close()
	rec.Slot = slot
	taskID := rec.taskID()
	sandbox.RemoveCgroups(taskID) // what a killed supervisor of this block left
	sandbox.ReleaseFreezer(taskID)
	if err := r.save(rec); err != nil {
		return fail(err)
	}
	// The sandbox sets rlimits on the container's init alone: set on the
	// supervisor, a bundle's RLIMIT_AS or RLIMIT_DATA would starve its Go
	// runtime (runtime-tools' process_rlimits test gives 1 GiB of
	// address space).
	var rlimits []sandbox.Rlimit
	for _, rl := range oc.Rlimits {
		rlimits = append(rlimits, sandbox.Rlimit{Name: rlimitName(rl.Resource), Resource: rl.Resource, Soft: rl.Soft, Hard: rl.Hard})
	}
	var files []sandbox.File
	for _, p := range oc.MaskFiles {
		files = append(files, sandbox.File{Path: p, Mode: 0o444})
	}
	for _, f := range oc.CopyFiles {
		b, err := readSmallFile(f.Source)
		if err != nil {
			return fail(fmt.Errorf("mount on %s: %w", f.Target, err))
		}
		files = append(files, sandbox.File{Path: f.Target, Data: b, Mode: 0o644})
	}
	addr, closeDir, err := r.sockAddr(id)
	if err != nil {
		return fail(err)
	}
	os.Remove(addr)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: addr, Net: "unix"})
	closeDir()
	if err != nil {
		return fail(fmt.Errorf("container %s: socket: %w", id, err))
	}
	ln.SetUnlinkOnClose(false)
	defer ln.Close()
	starts := make(chan net.Conn, 1)
	var running atomic.Pointer[sandbox.Process] // set once the command runs
	go func() {
		// "start", or an exec request as the engine's control socket
		// takes it (serveExec), once the command runs.
		for {
			c, err := ln.AcceptUnix()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			line, files, err := readControl(c)
			if err == nil && string(line) == "start" {
				c.SetDeadline(time.Time{})
				select {
				case starts <- c:
				default:
					io.WriteString(c, "cannot start a container that is already starting or running\n")
					c.Close()
				}
				continue
			}
			var req controlRequest
			if err == nil {
				err = json.Unmarshal(line, &req)
			}
			p := running.Load()
			switch {
			case err == nil && req.Exec != nil && p != nil:
				go serveExec(c, p, req.Exec, files)
				continue
			case err == nil && req.Exec != nil:
				writeControl(c, controlReply{Error: "cannot exec in a container that has not started"})
			case err != nil:
				writeControl(c, controlReply{Error: "bad request: " + oneLine(err.Error())})
			default:
				writeControl(c, controlReply{Error: "bad request: nothing asked"})
			}
			for _, f := range files {
				f.Close()
			}
			c.Close()
		}
	}()
	// The container's signals: the kill verb signals its init; a signal
	// sent to the supervisor (its pid is the container's for callers) is
	// forwarded there.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2,
		unix.SIGWINCH, unix.SIGCONT)
	var startConn net.Conn
	var extra []*os.File
	for i := 0; i < oc.PreserveFDs; i++ {
		// create passed them at 4.. (the report is 3).
		syscall.CloseOnExec(4 + i)
		extra = append(extra, os.NewFile(uintptr(4+i), "preserved"))
	}
	layers := oc.Layers
	if len(layers) == 0 {
		layers = []string{oc.RootFS}
	}
	task := &sandbox.Task{
		ID: taskID, Layers: layers, TrustedOverlay: len(oc.Layers) > 0, DropCaps: oc.DropCaps, Scratch: filepath.Join(r.dir(id), "scratch"),
		ReadOnly: oc.ReadOnly, Files: files, Tmpfs: oc.Tmpfs, ReadOnlyPaths: oc.ReadOnlyPaths, Args: oc.Args, Env: oc.Env, Cwd: oc.Cwd,
		Hostname: oc.Hostname, UID: oc.UID, GID: oc.GID, Groups: oc.Groups,
		IDs:    sandbox.IDRange{Host: uint32(ociIDBase + slot*idSize), Size: idSize},
		Limits: oc.Limits, Rlimits: rlimits, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, ExtraFiles: extra,
		JoinNet: joined.net, JoinIPC: joined.ipc, JoinUTS: joined.uts,
		Hold: func(p *sandbox.Process) error {
			pid := p.Pid()
			if oc.OOMScoreAdj != nil {
				if err := setOOMScoreAdj(pid, *oc.OOMScoreAdj); err != nil {
					// Lowering it below the runtime's own needs
					// CAP_SYS_RESOURCE (the kubelet asks -998 for every
					// pod sandbox): a claim on the host's memory that
					// the runtime cannot give is narrowed to what it
					// has, as other narrowings are, unless --strict.
					if !errors.Is(err, fs.ErrPermission) || r.Strict {
						return err
					}
					r.warn("%v; the container keeps the runtime's own score", err)
				}
			}
			rec.Init, rec.InitStart, rec.Status = pid, pidStart(pid), ociCreated
			if err := r.save(rec); err != nil {
				return err
			}
			tell([]byte(ociCreated))
			pidfd, err := unix.PidfdOpen(pid, 0)
			if err != nil {
				return fmt.Errorf("container ended before start")
			}
			defer unix.Close(pidfd)
			died := make(chan struct{})
			go func() {
				for {
					_, err := unix.Poll([]unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}, -1)
					if err != unix.EINTR {
						close(died)
						return
					}
				}
			}()
			for {
				select {
				case startConn = <-starts:
					return nil
				case <-died:
					return fmt.Errorf("container ended before start")
				case s := <-sigs:
					signalExact(pid, rec.InitStart, s.(syscall.Signal))
				}
			}
		},
	}
	p, err := sandbox.Start(task)
	for _, f := range extra {
		f.Close() // the command has them, or the launch failed
	}
	if err != nil {
		if startConn != nil {
			io.WriteString(startConn, oneLine(string(encodeStartFailure(err)))+"\n")
			startConn.Close()
		}
		tell(encodeStartFailure(err))
		code := 1
		switch {
		case errors.Is(err, sandbox.ErrCommandNotFound):
			code = 127
		case errors.Is(err, sandbox.ErrCommandNotExecutable):
			code = 126
		case strings.Contains(err.Error(), "ended before start"):
			code = 128 + int(unix.SIGKILL)
		}
		return stopped(code)
	}
	rec.Status = ociRunning
	if err := r.save(rec); err != nil {
		r.warn("container %s: %v", id, err)
	}
	running.Store(p)
	io.WriteString(startConn, "ok\n")
	startConn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// No grants: the container's own AF_UNIX calls are served,
		// everything else refused.
		(&netsvc.Server{Offline: true}).Serve(ctx, int(p.Listener.Fd()))
		runtime.KeepAlive(p.Listener)
	}()
	go func() {
		for s := range sigs {
			p.Signal(s.(syscall.Signal))
		}
	}()
	st, werr := p.Wait()
	if werr != nil {
		r.warn("container %s: %v", id, werr)
	}
	os.RemoveAll(task.Scratch)
	if err := sandbox.ReleaseFreezer(taskID); err != nil {
		r.warn("container %s: %v", id, err)
	}
	return stopped(st.Code)
}

func readSmallFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, unwrapPath(err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCopiedFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxCopiedFile {
		return nil, fmt.Errorf("%s: more than %d bytes", path, maxCopiedFile)
	}
	return b, nil
}

// openPty makes a terminal pair of the host's devpts, sized rows×cols
// when both are set. The container gets the slave end as its stdio; the
// host's devpts is never mounted in it.
func openPty(rows, cols uint16) (master, slave *os.File, err error) {
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	master = os.NewFile(uintptr(m), "/dev/ptmx")
	fail := func(err error) (*os.File, *os.File, error) {
		master.Close()
		return nil, nil, err
	}
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		return fail(fmt.Errorf("unlock: %w", err))
	}
	// TIOCGPTPEER opens the slave from the master, with no path lookup
	// in /dev/pts; its argument is the open flags.
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(m), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		return fail(fmt.Errorf("open peer: %w", errno))
	}
	s := int(r)
	if rows > 0 && cols > 0 {
		if err := unix.IoctlSetWinsize(m, unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
			unix.Close(s)
			return fail(fmt.Errorf("size: %w", err))
		}
	}
	return master, os.NewFile(uintptr(s), "pty"), nil
}

// sendConsole hands master to the process listening on the unix socket
// path, as runc's callers expect: one message with the descriptor.
func sendConsole(path string, master *os.File) error {
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, _, err = c.WriteMsgUnix([]byte(master.Name()), unix.UnixRights(int(master.Fd())), nil)
	return err
}

// overlayLayers returns the directories of the overlay mounted at dir, top
// first (upperdir, then lowerdir), or nil if dir is no overlay mount point.
// Relative lower directories (containers/storage uses them when the
// options would be too long) are taken from the overlay's home, the parent
// of the directory that holds the mount point.
func overlayLayers(dir string) ([]string, error) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var opts string
	for _, line := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 3 || unescapeMountinfo(f[4]) != real {
			continue
		}
		opts = "" // the last mount on dir is the one in view
		if g[0] == "overlay" {
			opts = g[2]
		}
	}
	if opts == "" {
		return nil, nil
	}
	var upper, lower []string
	for _, o := range splitEscaped(unescapeMountinfo(opts), ',') {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "upperdir":
			upper = []string{v}
		case "lowerdir":
			lower = splitEscaped(v, ':')
		}
	}
	if len(lower) == 0 {
		return nil, fmt.Errorf("overlay on %s: no lowerdir in %q", real, opts)
	}
	home := filepath.Dir(filepath.Dir(real))
	var layers []string
	for _, l := range append(upper, lower...) {
		if l == "" {
			continue // "::" separates data-only layers
		}
		if !filepath.IsAbs(l) {
			l = filepath.Join(home, l)
		}
		r, err := filepath.EvalSymlinks(l)
		if err != nil {
			return nil, fmt.Errorf("overlay on %s: layer %s: %w", real, l, unwrapPath(err))
		}
		layers = append(layers, r)
	}
	return layers, nil
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// splitEscaped splits s at sep where no backslash escapes it.
func splitEscaped(s string, sep byte) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case s[i] == sep:
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(s[i])
		}
	}
	return append(out, cur.String())
}

// OCIExecOptions are exec's: the process (see MapOCIExec) and its
// descriptors.
type OCIExecOptions struct {
	Process *specs.Process
	// Input names where Process came from, for errors ("--process FILE").
	Input string
	// IgnorePaused sends the request to a paused container, whose init
	// starts the process once the container is resumed.
	IgnorePaused bool
	// ConsoleSocket receives the master end of the process's terminal
	// (Process.Terminal); Stdin, Stdout and Stderr are then not used.
	ConsoleSocket         string
	Stdin, Stdout, Stderr *os.File
	// ExtraFiles reach the process at 3, 4, ... (--preserve-fds).
	ExtraFiles []*os.File
}

// MaxPreservedFDs bounds --preserve-fds.
const MaxPreservedFDs = sandbox.MaxExtraFiles

// OCIExecSession is a process started by Runtime.Exec.
type OCIExecSession struct{ *execConn }

// Container is the mapped container id, from its state directory.
func (r *Runtime) Container(id string) (*OCIContainer, error) {
	if err := CheckOCIID(id); err != nil {
		return nil, err
	}
	var oc OCIContainer
	if err := readJSON(filepath.Join(r.dir(id), "config.json"), &oc); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("container %s: %w", id, ErrOCINotExist)
		}
		return nil, err
	}
	return &oc, nil
}

// Exec starts a process in running container id, through the container's
// init (the exec channel the engine's oak exec uses): the process is in
// the container's namespaces, root, groups and filter, with no more than
// its root holds. It returns once the process runs, or with the reason it
// could not (an error for which errors.Is(err, ErrCommandNotFound) or
// ErrCommandNotExecutable holds when its command could not be executed).
// The session's connection is the process's handle: closing it before the
// process ended kills it.
func (r *Runtime) Exec(id string, opts OCIExecOptions) (*OCIExecSession, error) {
	rec, err := r.load(id)
	if err != nil {
		return nil, err
	}
	switch st := rec.status(); {
	case st == ociRunning, st == ociPaused && opts.IgnorePaused:
	case st == ociPaused:
		return nil, fmt.Errorf("cannot exec in a paused container (use --ignore-paused)")
	default:
		return nil, fmt.Errorf("cannot exec in a %s container", st)
	}
	oc, err := r.Container(id)
	if err != nil {
		return nil, err
	}
	x, err := MapOCIExec(oc, opts.Process, opts.Input, r.Strict)
	if err != nil {
		return nil, err
	}
	for _, w := range x.Warnings {
		r.warn("%s", w)
	}
	if len(opts.ExtraFiles) > sandbox.MaxExtraFiles {
		return nil, fmt.Errorf("--preserve-fds %d: at most %d descriptors are passed", len(opts.ExtraFiles), sandbox.MaxExtraFiles)
	}
	switch {
	case x.Terminal && opts.ConsoleSocket == "":
		return nil, &FieldError{Input: opts.Input, Field: "process.terminal", Err: "a terminal needs --console-socket, where the terminal's master end is sent"}
	case !x.Terminal && opts.ConsoleSocket != "":
		return nil, fmt.Errorf("--console-socket: the process asks for no terminal")
	}
	stdio := []*os.File{opts.Stdin, opts.Stdout, opts.Stderr}
	if x.Terminal {
		master, slave, err := openPty(x.ConsoleRows, x.ConsoleCols)
		if err != nil {
			return nil, fmt.Errorf("exec %s: terminal: %w", id, err)
		}
		defer slave.Close()
		err = sendConsole(opts.ConsoleSocket, master)
		master.Close()
		if err != nil {
			return nil, fmt.Errorf("exec %s: --console-socket %s: %w", id, opts.ConsoleSocket, err)
		}
		stdio = []*os.File{slave, slave, slave}
	}
	for i, f := range stdio {
		if f == nil {
			// A nil stdio descriptor is /dev/null, as for create.
			null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
			if err != nil {
				return nil, err
			}
			defer null.Close()
			stdio[i] = null
		}
	}
	addr, done, err := r.sockAddr(id)
	if err != nil {
		return nil, err
	}
	defer done()
	req := &execRequest{Args: x.Args, Env: x.Env, Cwd: x.Cwd, UID: x.UID, GID: x.GID, TTY: x.Terminal,
		DropCaps: uint32(x.DropCaps), KillOnClose: true}
	c, err := startExec(addr, id, req, append(stdio, opts.ExtraFiles...))
	if err != nil {
		var ee *sandbox.ExecError
		if errors.As(err, &ee) {
			// As runc words it, which is what callers look for.
			return nil, fmt.Errorf("exec failed: %w", err)
		}
		return nil, err
	}
	return &OCIExecSession{c}, nil
}

// rlimitName is the config.json name of RLIMIT_* resource res.
func rlimitName(res int) string {
	for name, r := range rlimitTypes {
		if r == res {
			return name
		}
	}
	return fmt.Sprintf("resource %d", res)
}

// setOOMScoreAdj writes the container's init's oom_score_adj, before it
// runs anything of the image. The kernel lets the runtime raise it and
// refuses to lower it below the runtime's own without CAP_SYS_RESOURCE.
func setOOMScoreAdj(pid, v int) error {
	err := os.WriteFile(fmt.Sprintf("/proc/%d/oom_score_adj", pid), []byte(strconv.Itoa(v)), 0)
	if err != nil {
		return fmt.Errorf("config.json: process.oomScoreAdj: %d: %w", v, err)
	}
	return nil
}

// maskIn decides, by what the image has at each of c.MaskedPaths, how it
// is masked: a directory gets an empty private tmpfs, any other file an
// empty file over it; a path the image lacks, or one inside a directory
// masked already, needs nothing. It resolves c.ReadOnlyPaths likewise.
func maskIn(c *OCIContainer) error {
	// in resolves p in the root: "" when nothing needs doing there.
	in := func(field, p string) (string, os.FileInfo, error) {
		r, fi, err := sandbox.LstatIn(c.RootFS, p)
		switch {
		case errors.Is(err, os.ErrNotExist):
			return "", nil, nil
		case err != nil:
			return "", nil, refuse(field, "%s: %v", p, unwrapPath(err))
		case ownFS(r) || r == "/":
			return "", nil, nil // a link into Oak's own file systems
		}
		return r, fi, nil
	}
	var dirs, files, readOnly []string
	for _, p := range c.MaskedPaths {
		r, fi, err := in("linux.maskedPaths", p)
		switch {
		case err != nil:
			return err
		case r == "":
		case fi.IsDir():
			dirs = append(dirs, r)
		default:
			files = append(files, r)
		}
	}
	for _, p := range c.ReadOnlyPaths {
		r, _, err := in("linux.readonlyPaths", p)
		if err != nil {
			return err
		}
		if r != "" {
			readOnly = append(readOnly, r)
		}
	}
	hidden := func(p string) bool {
		for _, d := range dirs {
			if strings.HasPrefix(p, d+"/") {
				return true
			}
		}
		return false
	}
	for _, d := range dirs {
		if !hidden(d) && !slices.Contains(c.Tmpfs, d) {
			c.Tmpfs = append(c.Tmpfs, d)
		}
	}
	for _, f := range files {
		if !hidden(f) && !slices.Contains(c.MaskFiles, f) {
			c.MaskFiles = append(c.MaskFiles, f)
		}
	}
	c.ReadOnlyPaths = nil
	for _, r := range readOnly {
		if !hidden(r) && !slices.Contains(c.ReadOnlyPaths, r) {
			c.ReadOnlyPaths = append(c.ReadOnlyPaths, r)
		}
	}
	return nil
}

package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/oak-engine/oak/internal/trace"
	"github.com/oak-engine/oak/sandbox"
)

// RunOptions is a request to run a container, as the front ends take it.
type RunOptions struct {
	Image      string   // a root file system directory, or "demo"
	Args       []string // command and arguments; empty means the image's default
	Name       string
	Env        []string // K=V
	Workdir    string
	Limits     sandbox.Limits // as given, zero is no limit: front ends start from DefaultMemoryBytes and DefaultPids
	Log        LogOptions     // as given, zero is no bound: front ends start from DefaultLogOptions
	AutoRemove bool
	Volumes    []string // -v NAME:/PATH[:ro], or -v /HOST/DIR:/PATH[:ro]
	Tmpfs      []string // --tmpfs PATH: a private tmpfs of --tmpfs-size
	PublishAll bool     // -P: publish every port the image exposes on a host port picked at start
	TTY        bool     // -t with -d: a terminal held by the supervisor, for oak attach
	Publish    []string // -p [HOSTIP:]HOSTPORT:PORT[/PROTO]
	Egress     []string // --egress PREFIX[:PORT][/PROTO] | any
	ReadOnly   bool     // --read-only: no writable layer over the image
	Names      NameOptions
	Restart    RestartPolicy     // --restart
	Labels     map[string]string // --label K=V, kept in the record
	// User overrides the image's User: NAME|UID[:GROUP|GID], looked up
	// in the image's /etc/passwd and /etc/group.
	User string
	// Entrypoint, when not nil, replaces the image's entrypoint (empty:
	// none), and the image's Cmd is not used.
	Entrypoint []string
	Ulimits    []Ulimit // --ulimit, set on the container's init
	// Factory is the factory to make the container from (--factory): its
	// quota bounds the container's and its siblings' sum, and zero
	// Limits fields default to the factory's (see Engine.admit).
	Factory string
	// Tenant, if set, is the tenant the container is made for: the
	// request is narrowed to what a tenant may ask (see admitTenant).
	Tenant string
	// Spawn gives the container the capability to make sub-containers
	// from its own quota (see spawn_linux.go). Parent, if set, is the
	// container a sub-container is made for: the request is narrowed to
	// what that container may give (see admitSpawn).
	Spawn  bool
	Parent string
	// SpawnDisk, with Spawn, is the disk quota of the container's
	// factory (--spawn-disk): what its own writable layer and its
	// sub-containers' may reserve together. 0: none of its own, or,
	// under a factory that limits disk (a tenant's), its own writable
	// layer's size.
	SpawnDisk int64
}

// Spec is the resolved form of RunOptions kept in the record, everything a
// supervisor needs to start the container.
type Spec struct {
	Image   string         `json:"image"`
	Volumes []VolumeMount  `json:"volumes,omitempty"`
	Publish []string       `json:"publish,omitempty"`
	Egress  []string       `json:"egress,omitempty"`
	Log     LogOptions     `json:"log"`
	ImageID string         `json:"image_id,omitempty"`
	Layers  []string       `json:"layers"`
	UID     uint32         `json:"uid"`
	GID     uint32         `json:"gid"`
	Path    string         `json:"path"`
	Args    []string       `json:"args"`
	Env     []string       `json:"env"`
	Cwd     string         `json:"cwd"`
	Limits  sandbox.Limits `json:"limits"`
	// ReadOnly: the root is the image as it is, without a private
	// writable layer.
	ReadOnly bool     `json:"read_only,omitempty"`
	Tmpfs    []string `json:"tmpfs,omitempty"`
	// TTY: a detached run's command gets a terminal of its supervisor's
	// (oak attach).
	TTY   bool        `json:"tty,omitempty"`
	Names NameOptions `json:"names,omitempty"`
	// Labels are the container's --label KEY=VALUE pairs.
	Labels map[string]string `json:"labels,omitempty"`
	// Restart is when the supervisor starts the command again.
	Restart RestartPolicy `json:"restart,omitzero"`
	// StopSignal is the image's, what oak stop sends first; empty is
	// SIGTERM.
	StopSignal string   `json:"stop_signal,omitempty"`
	Ulimits    []Ulimit `json:"ulimits,omitempty"`
}

// defaultPath is the PATH a container gets unless -e sets one (docker's),
// the one nsinit searches when there is none.
const defaultPath = sandbox.DefaultPath

// defaultCommand runs when neither the request nor the image names one.
var defaultCommand = []string{"sh"}

// Host uid/gid ranges: container slot n maps ids 0..65535 onto
// idBase + n*idSize; the block sits far above any ordinary user or subuid range.
const (
	idBase   = 1 << 30
	idSize   = 1 << 16
	maxSlots = 1 << 14
)

// slotIDs is the host uid/gid range of container slot n.
func slotIDs(n int) sandbox.IDRange {
	return sandbox.IDRange{Host: uint32(idBase + n*idSize), Size: idSize}
}

// create validates opts, allocates the container's name, id and id range,
// and writes its record in state "created". Nothing is written on error.
func (e *Engine) create(opts RunOptions) (*Container, *Spec, error) {
	return e.createIn(opts, nil)
}

// reservation is an id and a held id block reserved ahead of a create
// (a standby supervisor's, see standby_linux.go).
type reservation struct {
	id     string
	slot   int
	lease  *os.File
	pooled bool // the container is started in a sandbox prepared ahead
}

// createIn is create with the id and id block of res, if not nil, which
// it then owns (released on error, as one it acquired).
func (e *Engine) createIn(opts RunOptions, res *reservation) (*Container, *Spec, error) {
	if res != nil {
		defer func() {
			if res.lease != nil {
				res.lease.Close()
			}
		}()
	}
	if err := e.admitTenant(&opts); err != nil {
		return nil, nil, err
	}
	if err := errors.Join(opts.Limits.Check(), opts.Log.Check()); err != nil {
		return nil, nil, fmt.Errorf("run: %w", err)
	}
	if opts.AutoRemove && opts.Restart.Name != "" {
		return nil, nil, fmt.Errorf("run: --rm and --restart %s conflict: a container removed when it exits cannot be restarted", opts.Restart)
	}
	if opts.Name != "" {
		if err := checkName(opts.Name); err != nil {
			return nil, nil, err
		}
	}
	img, err := e.ResolveImage(opts.Image)
	if err != nil {
		return nil, nil, err
	}
	env, err := containerEnv(img.Config.Env, opts.Env)
	if err != nil {
		return nil, nil, err
	}
	args := opts.Args
	switch {
	case opts.Entrypoint != nil:
		args = append(append([]string(nil), opts.Entrypoint...), opts.Args...)
	case img.ID != "":
		args = img.Config.Argv(opts.Args)
	}
	if len(args) == 0 {
		args = defaultCommand
	}
	cwd := img.Config.WorkingDir
	if opts.Workdir != "" {
		cwd = opts.Workdir
	}
	if cwd == "" {
		cwd = "/"
	}
	if !strings.HasPrefix(cwd, "/") {
		return nil, nil, fmt.Errorf("invalid -w %q: must be an absolute path", cwd)
	}
	cwd = filepath.Clean(cwd)
	if err := opts.Names.check(); err != nil {
		return nil, nil, err
	}
	for _, p := range opts.Tmpfs {
		if !path.IsAbs(p) || path.Clean(p) != p || p == "/" || p == "/proc" || strings.HasPrefix(p, "/proc/") ||
			p == "/dev" || strings.HasPrefix(p, "/dev/") || p == "/sys" || strings.HasPrefix(p, "/sys/") {
			return nil, nil, fmt.Errorf("invalid --tmpfs %q: want a clean absolute path outside /proc, /dev and /sys", p)
		}
	}
	user := img.Config.User
	if opts.User != "" {
		user = opts.User
	}
	uid, gid, err := lookupUser(img.Layers, user)
	if err != nil && opts.User != "" {
		return nil, nil, fmt.Errorf("invalid --user %q: image %s: %w", opts.User, opts.Image, err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("image %s: %w", opts.Image, err)
	}
	if _, err := checkUlimits(opts.Ulimits); err != nil {
		return nil, nil, err
	}
	publish := opts.Publish
	if opts.PublishAll {
		if len(img.Config.ExposedPorts) == 0 {
			return nil, nil, fmt.Errorf("run -P: image %s exposes no port", opts.Image)
		}
		// Each exposed port on a host port picked at start (see
		// pickHostPorts), as -p PORT does.
		publish = append(append([]string(nil), publish...), img.Config.ExposedPorts...)
	}
	spec := &Spec{Image: opts.Image, ImageID: img.ID, Publish: publish, Egress: opts.Egress,
		Layers: img.Layers, Args: args, Env: env, Cwd: cwd, UID: uid, GID: gid, Limits: opts.Limits,
		ReadOnly: opts.ReadOnly, Names: opts.Names, Tmpfs: opts.Tmpfs, TTY: opts.TTY, Restart: opts.Restart, StopSignal: img.Config.StopSignal,
		Ulimits: opts.Ulimits, Labels: opts.Labels}
	if spec.StopSignal != "" {
		if _, err := ParseSignal(spec.StopSignal); err != nil {
			return nil, nil, fmt.Errorf("image %s: stop %w", opts.Image, err)
		}
	}
	listens, err := parseGrants(publish, opts.Egress)
	if err != nil {
		return nil, nil, err
	}
	if spec.Volumes, err = e.checkVolumes(opts.Volumes); err != nil {
		return nil, nil, err
	}
	spec.Log = opts.Log
	c, err := e.newRecord(opts, spec, args, listens, res)
	if err != nil {
		return nil, nil, err
	}
	return c, spec, nil
}

// containerEnv is the command's environment: the image's, then PATH and
// HOME where the image sets none, then -e. Nothing of the host's.
func containerEnv(image, extra []string) ([]string, error) {
	env := []string{"PATH=" + defaultPath, "HOME=/"}
	for _, kv := range image {
		if k, _, ok := strings.Cut(kv, "="); ok && k != "" {
			env = setEnv(env, kv)
		}
	}
	for _, kv := range extra {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.ContainsRune(kv, 0) {
			return nil, fmt.Errorf("invalid -e %q: want KEY=VALUE", kv)
		}
		env = setEnv(env, kv)
	}
	return env, nil
}

func setEnv(env []string, kv string) []string {
	k, _, _ := strings.Cut(kv, "=")
	for i, e := range env {
		if strings.HasPrefix(e, k+"=") {
			env[i] = kv
			return env
		}
	}
	return append(env, kv)
}

// Stdio is where a foreground container's output goes besides its log.
type Stdio struct {
	Stdin          *os.File // nil: /dev/null
	Stdout, Stderr io.Writer
	// TTY, if set, is the slave of a terminal that becomes the command's
	// stdin, stdout, stderr and controlling terminal; its output then goes
	// to the terminal's master, not to the log.
	TTY *os.File
}

// ForwardedSignals are the signals a user sends a foreground program, which
// a foreground oak (run, exec) passes on to the container instead of ending
// or stopping. Not forwarded: SIGKILL and SIGSTOP (they cannot be caught),
// SIGTSTP, SIGTTIN and SIGTTOU (Ctrl-Z stops oak, so the shell gets its
// prompt back), SIGCHLD, SIGPIPE and SIGURG (about oak's own children,
// pipes and Go's scheduler), and the fault signals.
var ForwardedSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGCONT, syscall.SIGALRM}

// Run runs a container in the foreground: it returns when the container has
// ended, with the command's exit status. ForwardedSignals sent to this
// process go to the container.
func (e *Engine) Run(opts RunOptions, io Stdio) (Exit, error) {
	trace.Mark("engine: run")
	if opts.Spawn {
		return Exit{}, errors.New("invalid --spawn: only a detached container (run -d) may hold the spawn capability, which its supervisor serves")
	}
	sandbox.PrimeMoves()
	c, spec, err := e.create(opts)
	if err != nil {
		return Exit{}, err
	}
	trace.Mark("engine: record created")
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, ForwardedSignals...)
	defer signal.Stop(sigs)
	return e.supervise(c, spec, io, sigs, nil)
}

// Exit is how a run ended, for the front end to report.
type Exit struct {
	ID        string
	Code      int
	OOMKilled bool
	Memory    int64 // the limit that was hit, for the message
}

// supervise starts c and waits for it, keeping its record and log, and
// starts it again while its restart policy asks. ready, if not nil, is
// told the outcome of the first start. A container that never ran leaves
// no record when that start fails; one started again (oak start) is
// recorded as exited.
func (e *Engine) supervise(c *Container, spec *Spec, out Stdio, sigs <-chan os.Signal, ready func(error)) (Exit, error) {
	// The id block is c's until the end is recorded.
	defer c.releaseSlot()
	fail := func(err error) (Exit, error) {
		if c.Finished.IsZero() {
			e.discard(c)
		} else {
			c.Status, c.ExitCode, c.Finished = StatusExited, startFailureCode(err), time.Now().UTC()
			e.finish(c)
		}
		if ready != nil {
			ready(err)
		}
		return Exit{}, err
	}
	lw, err := openLog(filepath.Join(e.dir(c.ID), "log"), spec.Log)
	if err != nil {
		return fail(fmt.Errorf("container %s: log: %w", ShortID(c.ID), unwrapPath(err)))
	}
	defer lw.close()
	// One authority for every run: a grant revoked stays revoked when the
	// policy restarts the command.
	auth, err := grantAuthority(spec)
	if err != nil {
		return fail(err)
	}
	e.dropRevoked(c.ID, auth) // and one revoked before this start stays so
	var delay time.Duration
	for {
		started := time.Now()
		st, signalled, werr, err := e.runOnce(c, spec, auth, lw, out, sigs, ready)
		if err != nil {
			return fail(err)
		}
		ready = nil
		// Ctrl-C to a foreground oak is its user asking the container to
		// end: it ends for good, as after oak stop.
		c.Stopped = c.Stopped || signalled
		ran := time.Since(started)
		c.ExitCode, c.OOMKilled, c.Finished = st.Code, st.OOMKilled, time.Now().UTC()
		exit := Exit{ID: c.ID, Code: st.Code, OOMKilled: st.OOMKilled, Memory: spec.Limits.MemoryBytes}
		if spec.Restart.restarts(st.Code, c.RestartCount) && e.markRestarting(c) {
			delay = restartDelay(delay, ran)
			e.backOff(c, delay, sigs)
			if e.markRestarting(c) {
				c.RestartCount++
				continue
			}
		}
		c.Status = StatusExited
		return exit, errors.Join(werr, e.finish(c))
	}
}

// restartPoll is how often a supervisor waiting to restart a container
// looks for a stop in its record: oak stop need not know where the
// supervisor is, nor share a signal with the ones a foreground run
// forwards.
const restartPoll = 50 * time.Millisecond

// backOff waits d before a restart, less if a user stops c meanwhile: a
// stop in its record, or a signal on sigs that would have ended it.
func (e *Engine) backOff(c *Container, d time.Duration, sigs <-chan os.Signal) {
	deadline := time.Now().Add(d)
	for left := d; left > 0; left = time.Until(deadline) {
		select {
		case s := <-sigs:
			if endsContainer(s) {
				c.Stopped = true
				return
			}
		case <-time.After(min(left, restartPoll)):
		}
		if old, err := e.load(c.ID); err != nil || old.Stopped {
			return // removed or stopped: markRestarting tells which
		}
	}
}

// endsContainer says whether a signal forwarded from a foreground oak is
// its user asking the container to end (Ctrl-C, Ctrl-\, a hang-up, a
// kill), rather than telling it something.
func endsContainer(s os.Signal) bool {
	switch s {
	case syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT,
		syscall.SIGKILL: // a standby whose client went away (api/pool_linux.go)
		return true
	}
	return false
}

// startFailureCode is the exit code recorded for a start that failed
// with err: docker's 127 and 126 for a command missing or not
// executable, 125 for anything else.
func startFailureCode(err error) int {
	switch {
	case errors.Is(err, ErrCommandNotFound):
		return 127
	case errors.Is(err, ErrCommandNotExecutable):
		return 126
	}
	return 125
}

// markRestarting records c as waiting to restart, unless a user stopped
// it meanwhile or removed it; it reports whether c is to restart.
func (e *Engine) markRestarting(c *Container) bool {
	unlock, err := e.lockRecord(c.ID)
	if err != nil {
		return false // removed
	}
	defer unlock()
	old, err := e.load(c.ID)
	if err != nil {
		return false // removed
	}
	if old.Stopped || c.Stopped {
		c.Stopped = true
		return false
	}
	status := c.Status
	c.Status = StatusRestarting
	if err := e.save(c); err != nil {
		c.Status = status
		return false
	}
	return true
}

// runOnce starts the container's command once and waits for it to end,
// returning how it ended, whether a signal that ends it (endsContainer)
// was forwarded from sigs, and any error waiting for it; err means it did
// not start.
func (e *Engine) runOnce(c *Container, spec *Spec, auth *authority, lw *logWriter, out Stdio, sigs <-chan os.Signal, ready func(error)) (st sandbox.Exit, signalled bool, werr, err error) {
	var copiers sync.WaitGroup
	pipe := func(stream byte, term io.Writer) (*os.File, error) {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		copiers.Add(1)
		go func() {
			defer copiers.Done()
			defer r.Close()
			lw.copy(stream, r, term)
		}()
		return w, nil
	}
	stdout, err1 := pipe(streamStdout, out.Stdout)
	stderr, err2 := pipe(streamStderr, out.Stderr)
	if err := errors.Join(err1, err2); err != nil {
		return sandbox.Exit{}, false, nil, err
	}
	closePipes := func() {
		stdout.Close()
		stderr.Close()
		copiers.Wait()
	}
	layers, limits, err := auth.task()
	if err != nil {
		closePipes()
		return sandbox.Exit{}, false, nil, err
	}
	vols, err := e.attachVolumes(auth.volumes())
	if err != nil {
		closePipes()
		return sandbox.Exit{}, false, nil, err
	}
	defer func() {
		for _, v := range vols {
			v.Mount.Close() // the container's mount namespace holds them now
		}
	}()
	host := spec.Names.Hostname
	if host == "" {
		host = ShortID(c.ID)
	}
	limits.WritableBytes = spec.Limits.WritableBytes
	rlimits, err := checkUlimits(spec.Ulimits)
	if err != nil {
		closePipes()
		return sandbox.Exit{}, false, nil, err
	}
	task := &sandbox.Task{
		Rlimits: rlimits,
		Volumes: vols,
		ID:      c.ID, Layers: layers, UID: spec.UID, GID: spec.GID, Scratch: filepath.Join(e.dir(c.ID), "scratch"), Args: spec.Args,
		Env: append(spec.Env, "HOSTNAME="+host), Cwd: spec.Cwd, Hostname: host,
		ReadOnly: spec.ReadOnly, Files: spec.Names.etcFiles(host), Tmpfs: spec.Tmpfs,
		IDs:    slotIDs(c.Slot),
		Limits: limits, Stdin: out.Stdin, Stdout: stdout, Stderr: stderr,
	}
	if out.TTY != nil {
		task.Stdin, task.Stdout, task.Stderr, task.TTY = out.TTY, out.TTY, out.TTY, true
	}
	// A detached container with a terminal gets one of the supervisor's:
	// oak attach reaches it through the control socket.
	var term *termHub
	if spec.TTY && out.TTY == nil {
		master, slave, err := OpenPTY()
		if err != nil {
			closePipes()
			return sandbox.Exit{}, false, nil, err
		}
		defer master.Close()
		defer slave.Close()
		term = newTermHub(master, lw)
		task.Stdin, task.Stdout, task.Stderr, task.TTY = slave, slave, slave, true
	}
	task.CgroupParent = c.CgroupParent
	var sp *spawnProxy
	if c.Spawn && !e.spawnRevokedOf(c) {
		sp, err = e.newSpawnProxy(c.ID)
		if err != nil {
			closePipes()
			return sandbox.Exit{}, false, nil, err
		}
		defer sp.close()
		task.ExtraFiles = []*os.File{sp.theirs} // at SpawnFD
	}
	if err := e.ensureGroups(c); err != nil {
		closePipes()
		return sandbox.Exit{}, false, nil, fmt.Errorf("run %s: %w", c.Image, err)
	}
	trace.Mark("engine: task ready")
	p, err := c.start(task)
	if term != nil {
		task.Stdin.Close() // the container holds the slave now
	}
	stdout.Close()
	stderr.Close()
	if err != nil {
		copiers.Wait()
		return sandbox.Exit{}, false, nil, fmt.Errorf("run %s: %w", c.Image, e.explainLaunch(c, err))
	}
	c.Status, c.Pid, c.PidStart = StatusRunning, p.Pid(), pidStart(p.Pid())
	c.Supervisor, c.SupStart = os.Getpid(), pidStart(os.Getpid())
	if err := e.update(c); err != nil {
		p.Signal(syscall.SIGKILL)
		p.Wait()
		copiers.Wait()
		return sandbox.Exit{}, false, nil, err
	}
	trace.Mark("engine: record running")
	if c.Stopped {
		// oak stop came while it was starting; it waits for the end.
		p.Signal(syscall.SIGKILL)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	// The network service's word (refused calls, and the grant that would
	// allow each) goes to the container's log as its stderr, and to the
	// terminal of a foreground run.
	netlog, err := pipe(streamStderr, out.Stderr)
	if err != nil {
		netlog = nil
	}
	var nsLog io.Writer = io.Discard
	if netlog != nil {
		nsLog = netlog
	}
	ns := serveNetwork(ctx, p, auth, nsLog, e.openNetCounts(c.ID))
	if err := e.serveControl(ctx, c.ID, ns, p, term, sp); err != nil {
		fmt.Fprintln(out.Stderr, "oak:", err)
	}
	trace.Mark("engine: services up")
	if ready != nil {
		ready(nil)
	}
	done := make(chan struct{})
	forwarded := make(chan bool, 1)
	go func() {
		any := false
		for {
			select {
			case s := <-sigs:
				p.Signal(s.(syscall.Signal))
				any = any || endsContainer(s)
			case <-done:
				forwarded <- any
				return
			}
		}
	}()
	st, werr = p.Wait()
	close(done)
	stop() // ends the network service, which holds netlog too
	ns.waitServed()
	if netlog != nil {
		netlog.Close()
	}
	copiers.Wait()
	trace.Mark("engine: output drained")
	return st, <-forwarded, werr, nil
}

// update saves c under its lock unless its record was removed meanwhile
// (the error then Is ErrNoSuchContainer). A stop that another oak
// recorded meanwhile is kept, and set in c.
func (e *Engine) update(c *Container) error {
	unlock, err := e.lockRecord(c.ID)
	if errors.Is(err, ErrNoSuchContainer) {
		return fmt.Errorf("container %s: removed while starting: %w", ShortID(c.ID), err)
	}
	if err != nil {
		return err
	}
	defer unlock()
	old, err := e.load(c.ID)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("container %s: removed while starting: %w", ShortID(c.ID), noSuchContainer(c.ID))
	}
	if err == nil && old.Stopped {
		c.Stopped = true
	}
	return e.save(c)
}

// finish records an ended container, or removes it if it was run with --rm.
// One removed meanwhile (oak rm -f) stays removed.
func (e *Engine) finish(c *Container) error {
	if c.AutoRemove {
		if fn := c.Labels[FunctionLabel]; fn != "" {
			e.foldCalls(fn, c.ID) // its counters go with its record
		}
		unlock, err := e.lockRecord(c.ID)
		if errors.Is(err, ErrNoSuchContainer) {
			return nil
		}
		if err != nil {
			return err
		}
		defer unlock()
		return e.removeRecord(c)
	}
	if err := e.update(c); err != nil && !errors.Is(err, ErrNoSuchContainer) {
		return err
	}
	return nil
}

// discard removes the record of a container that never started, or ran
// with --rm and ended, under its lock.
func (e *Engine) discard(c *Container) {
	if unlock, err := e.lockRecord(c.ID); err == nil {
		e.removeRecord(c)
		unlock()
	}
}

// startedReport is what a detached supervisor writes once the container's
// command runs; anything else it writes is a startFailure, and nothing at
// all means it died first.
const startedReport = "started"

// Causes of a run whose command could not be started, for errors.Is:
// docker's exit statuses 127 and 126.
var (
	ErrCommandNotFound      = sandbox.ErrCommandNotFound
	ErrCommandNotExecutable = sandbox.ErrCommandNotExecutable
)

// startFailure is the error that stopped a detached container, as its
// supervisor reports it: the message, and the errno when the command's
// own execve failed, so that the front end can tell why.
type startFailure struct {
	Error     string `json:"error"`
	ExecErrno int    `json:"exec_errno,omitempty"`
}

func encodeStartFailure(err error) []byte {
	f := startFailure{Error: err.Error()}
	var ee *sandbox.ExecError
	if errors.As(err, &ee) {
		f.ExecErrno = int(ee.Errno)
	}
	return mustJSON(f)
}

// decodeStartFailure is the error a supervisor reported in msg.
func decodeStartFailure(msg []byte) error {
	var f startFailure
	if json.Unmarshal(msg, &f) != nil || f.Error == "" {
		return errors.New(string(msg))
	}
	if f.ExecErrno != 0 {
		return &reportedError{msg: f.Error, cause: &sandbox.ExecError{Errno: syscall.Errno(f.ExecErrno), Msg: f.Error}}
	}
	return errors.New(f.Error)
}

// reportedError is an error another process reported: its message as
// that process wrote it, and the cause it named.
type reportedError struct {
	msg   string
	cause error
}

func (e *reportedError) Error() string { return e.msg }
func (e *reportedError) Unwrap() error { return e.cause }

// supervisorCmd is the hidden command a detached container's supervisor runs as.
const supervisorCmd = "_supervise"

// RunDetached starts a container supervised by a background oak process and
// returns its id once the command is executing.
func (e *Engine) RunDetached(opts RunOptions) (string, error) {
	undo, err := e.prepareSpawn(&opts)
	if err != nil {
		return "", err
	}
	c, _, err := e.create(opts)
	if err != nil {
		undo()
		return "", err
	}
	if err := e.spawnSupervisor(c); err != nil {
		undo()
		return "", err
	}
	return c.ID, nil
}

// spawnSupervisor starts the background supervisor of c, a record in
// state created, and returns once c's command is executing. A container
// that never ran leaves no record when that fails. The supervisor
// inherits the lock of c's id block, which this process then lets go.
func (e *Engine) spawnSupervisor(c *Container) error {
	defer c.releaseSlot()
	fail := func(err error) error {
		if c.Finished.IsZero() {
			e.discard(c)
		}
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	self, err := os.Executable()
	if err != nil {
		return fail(err)
	}
	cmd := exec.Command(self, "--root", e.Root, supervisorCmd, c.ID)
	cmd.ExtraFiles = []*os.File{w, c.lease} // fds 3 and 4: see Supervise
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		return fail(fmt.Errorf("run: start supervisor: %w", err))
	}
	go cmd.Wait()
	msg, _ := io.ReadAll(r)
	r.Close()
	if string(msg) == startedReport {
		return nil
	}
	// The supervisor failed, or died, before it took the record over: it
	// still names this process, which may live on (oak daemon), so settle
	// it now rather than leave it to a reconcile that sees this process
	// alive.
	e.abandon(c.ID)
	if len(msg) == 0 {
		return fmt.Errorf("run: the supervisor of %s ended before the container started", ShortID(c.ID))
	}
	return decodeStartFailure(msg)
}

// abandon settles container id's record as reconcile would had this
// process died, if the record still names this process as its
// supervisor.
func (e *Engine) abandon(id string) {
	unlock, err := e.lockRecord(id)
	if err != nil {
		return
	}
	defer unlock()
	c, err := e.load(id)
	if err != nil || c.Supervisor != os.Getpid() || c.SupStart != pidStart(os.Getpid()) {
		return
	}
	e.settle(c)
}

// Supervise is the body of a detached container's supervisor process: it
// starts container id, reports the start on report (then closes it), and
// waits for the container to end. lease is the held lock of the
// container's id block, handed over by the oak that created it; this
// process holds it until the end is recorded.
func (e *Engine) Supervise(id string, report, lease *os.File) error {
	sandbox.PrimeMoves()
	syscall.CloseOnExec(int(report.Fd()))
	if lease != nil {
		syscall.CloseOnExec(int(lease.Fd())) // the container's processes never get it
	}
	c, err := e.load(id)
	if errors.Is(err, os.ErrNotExist) {
		err = noSuchContainer(id) // removed before its supervisor started
	}
	if err == nil && c.Status != StatusCreated {
		err = fmt.Errorf("container %s: already %s", ShortID(id), c.Status)
	}
	if err == nil {
		if err = e.checkSlotLock(c, lease); err == nil {
			c.lease = lease
		}
	}
	var spec Spec
	if err == nil {
		err = readJSON(filepath.Join(e.dir(id), "spec.json"), &spec)
	}
	if err != nil {
		report.Write(encodeStartFailure(err))
		report.Close()
		return err
	}
	sigs := make(chan os.Signal) // nothing is forwarded: use oak kill
	_, err = e.supervise(c, &spec, Stdio{Stdout: io.Discard, Stderr: io.Discard}, sigs, func(err error) {
		if err != nil {
			report.Write(encodeStartFailure(err))
		} else {
			report.WriteString(startedReport)
		}
		report.Close()
	})
	return err
}

// pidStart is the start time of pid in clock ticks since boot (field 22 of
// /proc/PID/stat), which tells a live process from a later one with its
// pid; 0 if pid is gone or dead (a zombie not yet reaped counts as dead:
// a killed supervisor in its own session waits for the host's init).
func pidStart(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return 0
	}
	v, _ := strconv.ParseUint(f[19], 10, 64)
	return v
}

// alive reports whether pid is still the live process that started at start.
func alive(pid int, start uint64) bool {
	return pid > 0 && start != 0 && pidStart(pid) == start
}

// reconcile brings every record in line with the host before a command
// looks at them: a container whose processes are gone (its oak was killed)
// is marked exited, its groups removed, and removed entirely under --rm.
// A supervisor that died leaves an init behind only if pdeathsig failed;
// that init is killed. Each record is settled under its own lock; the
// root's is needed only by a caller that must order the listing against
// creates (which write records whole, by rename, see writeNewRecord).
func (e *Engine) reconcile() ([]*Container, error) {
	cs, err := e.all()
	if err != nil {
		return nil, err
	}
	var keep []*Container
	for _, c := range cs {
		if c.Status == StatusExited || c.Status == StatusBroken || alive(c.Supervisor, c.SupStart) {
			keep = append(keep, c)
			continue
		}
		now, err := e.settleIfDead(c.ID)
		if err != nil {
			return nil, err
		}
		if now != nil {
			keep = append(keep, now)
		}
	}
	return keep, nil
}

// settle ends c, whose supervisor is gone: its init killed, its groups
// removed, and its record marked exited, or removed if it never ran or
// asked for --rm. kept says whether the record remains. Must be called
// with c's lock held, c read under it.
func (e *Engine) settle(c *Container) (kept bool, err error) {
	if alive(c.Pid, c.PidStart) {
		unix.Kill(c.Pid, unix.SIGKILL)
	}
	sandbox.RemoveCgroups(path.Join(c.CgroupParent, c.ID))
	// A created container that never ran goes; one being started again
	// (oak start) keeps its record.
	if c.AutoRemove || c.Status == StatusCreated && c.Finished.IsZero() {
		return false, e.removeRecord(c)
	}
	if c.Status == StatusRunning {
		c.ExitCode = -1 // unknown; a restarting one keeps its last
	}
	c.Status, c.Finished = StatusExited, time.Now().UTC()
	if err := e.save(c); err != nil {
		return false, err
	}
	return true, nil
}

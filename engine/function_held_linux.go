package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/oak-engine/oak/internal/trace"
	"github.com/oak-engine/oak/sandbox"
)

// A held invocation is a warm sandbox taken further: everything of the
// launch that depends only on the function, not on the request, is done
// ahead — the record, the sandbox with its namespaces and groups, its
// root (the id-mapped overlay and writable layer), its task sent, its
// limits set — and the launch waits at its last step, before anything of
// the image runs (sandbox.Task.Hold, as oak create holds a container
// until oak start). Its stdin, stdout and stderr are pipes made ahead,
// whose other ends the invocation feeds and drains. An invocation lets
// it go: nsinit installs the filter and executes the command.

// errWarmDiscarded abandons a held launch that will serve no invocation.
var errWarmDiscarded = errors.New("warm sandbox discarded")

// recordRunningAfter is how long a held invocation runs before its
// record says so: an invocation shorter than that is never written
// "running" (its record has its init's pid from the hold on, which is
// what a crash needs), so that a short one writes no record on its way.
const recordRunningAfter = 20 * time.Millisecond

// heldLaunch is the launch of a held invocation, waiting at its Hold.
type heldLaunch struct {
	auth    *authority
	p       *sandbox.Process // at its hold: its filter's listener and channels handed over
	stdin   *os.File         // the host's ends of the command's stdio pipes
	stdout  *os.File
	stderr  *os.File
	log     *switchWriter // the network service's word: the invocation's stderr while it runs
	net     *netService
	stopNet context.CancelFunc
	release chan error // nil lets the launch go; an error abandons it
	started chan startResult
}

type startResult struct {
	p   *sandbox.Process
	err error
}

// hold launches c (prepared, see prepare) up to its last step and
// returns once it waits there, its network service serving.
func (e *Engine) hold(c *Container, spec *Spec) (*heldLaunch, error) {
	auth, err := grantAuthority(spec)
	if err != nil {
		return nil, err
	}
	layers, limits, err := auth.task()
	if err != nil {
		return nil, err
	}
	limits.WritableBytes = spec.Limits.WritableBytes
	rlimits, err := checkUlimits(spec.Ulimits)
	if err != nil {
		return nil, err
	}
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	pipe := func() (r, w *os.File, err error) {
		if r, w, err = os.Pipe(); err == nil {
			files = append(files, r, w)
		}
		return
	}
	inR, inW, err1 := pipe()
	outR, outW, err2 := pipe()
	errR, errW, err3 := pipe()
	if err := errors.Join(err1, err2, err3); err != nil {
		closeAll()
		return nil, err
	}
	host := spec.Names.Hostname
	if host == "" {
		host = ShortID(c.ID)
	}
	h := &heldLaunch{auth: auth, stdin: inW, stdout: outR, stderr: errR, log: &switchWriter{},
		release: make(chan error, 1), started: make(chan startResult, 1)}
	held := make(chan *sandbox.Process, 1)
	task := &sandbox.Task{
		Rlimits: rlimits, ID: c.ID, Layers: layers, UID: spec.UID, GID: spec.GID,
		Scratch: filepath.Join(e.dir(c.ID), "scratch"), Args: spec.Args,
		Env: append(spec.Env, "HOSTNAME="+host), Cwd: spec.Cwd, Hostname: host,
		ReadOnly: spec.ReadOnly, Files: spec.Names.etcFiles(host), Tmpfs: spec.Tmpfs,
		IDs: slotIDs(c.Slot), Limits: limits, Stdin: inR, Stdout: outW, Stderr: errW,
		CgroupParent: c.CgroupParent,
		Hold: func(p *sandbox.Process) error {
			// Prepared at a low priority (prepareWarm); the command runs
			// at the usual one.
			if err := unix.Setpriority(unix.PRIO_PROCESS, p.Pid(), 0); err != nil {
				return fmt.Errorf("priority of the held init: %w", err)
			}
			held <- p
			return <-h.release
		},
	}
	go func() {
		p, err := c.start(task)
		h.started <- startResult{p, err}
	}()
	select {
	case p := <-held:
		// nsinit holds its copies of the command's ends now.
		inR.Close()
		outW.Close()
		errW.Close()
		h.p = p
		// The network service answers the container's trapped calls from
		// its first: started now, it is not on the invocation's way.
		sctx, stop := context.WithCancel(context.Background())
		h.stopNet = stop
		h.net = serveNetwork(sctx, p, auth, h.log, e.openNetCounts(c.ID))
		// A crash of this process from here on leaves a record whose
		// init the next oak kills (settle).
		c.Pid, c.PidStart = p.Pid(), pidStart(p.Pid())
		if err := e.update(c); err != nil {
			h.abandon()
			return nil, err
		}
		return h, nil
	case r := <-h.started:
		closeAll()
		return nil, r.err
	}
}

// abandon ends a held launch that will serve no invocation: its init is
// killed and its groups removed, as for a launch that failed.
func (h *heldLaunch) abandon() {
	h.release <- errWarmDiscarded
	<-h.started
	if h.stopNet != nil {
		h.stopNet()
	}
	h.stdin.Close()
	h.stdout.Close()
	h.stderr.Close()
}

// runHeld runs one invocation on a held launch: stdin is fed to the
// command, its output copied to stdout and stderr, and it is killed when
// timeout runs out or ctx ends. It returns once the command has ended and
// its output is drained, with the command's status as its init reported
// it (sandbox.Process.Exited); teardown, which the caller must call (after
// its answer is out), waits for the container's end, removes its groups,
// and removes c's record. started, if not nil, is called once the command
// is executing.
func (e *Engine) runHeld(ctx context.Context, c *Container, h *heldLaunch, timeout time.Duration,
	stdin io.Reader, stdout, stderr io.Writer, started func()) (st sandbox.Exit, ran, timedOut bool, err error, teardown func()) {
	// The command's stderr and the network service's word share stderr;
	// nothing reaches it after runHeld returns.
	var errMu sync.Mutex
	lockedErr := writerFunc(func(b []byte) (int, error) {
		errMu.Lock()
		defer errMu.Unlock()
		return stderr.Write(b)
	})
	h.log.set(lockedErr)
	defer h.log.set(nil)
	var copiers sync.WaitGroup
	copy := func(w io.Writer, r *os.File) {
		copiers.Add(1)
		go func() {
			defer copiers.Done()
			defer r.Close()
			io.Copy(w, r)
		}()
	}
	copy(stdout, h.stdout)
	copy(lockedErr, h.stderr)
	go func() {
		// EPIPE once the command is gone without reading it all. An input
		// that failed is no end of input: the command's stdin stays open
		// until it has ended (see stdinFile).
		if stdin != nil {
			if _, err := io.Copy(h.stdin, stdin); err != nil {
				return
			}
		}
		h.stdin.Close()
	}()
	trace.Mark("function: release")
	h.release <- nil
	r := <-h.started
	trace.Mark("function: command executing")
	if r.err == nil && started != nil {
		started()
	}
	if r.err != nil {
		h.stdin.Close()
		h.stopNet()
		copiers.Wait()
		e.discard(c)
		return st, false, false, r.err, func() {}
	}
	p := r.p
	// Recorded running only if it runs a while: the record has its pid
	// already, which is what a crash needs.
	var recording sync.WaitGroup
	recording.Add(1)
	running := time.AfterFunc(recordRunningAfter, func() {
		defer recording.Done()
		c.Status, c.Supervisor, c.SupStart = StatusRunning, os.Getpid(), pidStart(os.Getpid())
		e.update(c)
	})
	done := make(chan struct{})
	var killed sync.WaitGroup
	killed.Add(1)
	var expired bool
	go func() {
		defer killed.Done()
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-done:
			return
		case <-t.C:
			expired = true
		case <-ctx.Done():
		}
		p.Signal(syscall.SIGKILL)
	}()
	st, werr := p.Exited()
	trace.Mark("function: exited")
	h.stdin.Close() // if its input failed (see above)
	close(done)
	killed.Wait()
	copiers.Wait()
	trace.Mark("function: output drained")
	return st, true, expired, werr, func() {
		p.Wait() // the container's end, its groups removed
		trace.Mark("function: torn down")
		h.stopNet()
		h.net.waitServed() // its calls all counted, before its record (and counters) go
		if running.Stop() {
			recording.Done()
		}
		recording.Wait()
		c.Status, c.ExitCode, c.OOMKilled, c.Finished = StatusExited, st.Code, st.OOMKilled, time.Now().UTC()
		e.finish(c)
	}
}

// WaitTeardown waits until every held invocation that has answered is
// torn down (its container ended, its record removed, its slot free:
// they go after the answer), for a benchmark that must not time one
// invocation's teardown in the next, and for shutdown.
func (e *Engine) WaitTeardown() { e.functions.teardown.Wait() }

// writerFunc is a function as an io.Writer.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// switchWriter writes to the writer last set, or nowhere.
type switchWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *switchWriter) set(w io.Writer) {
	s.mu.Lock()
	s.w = w
	s.mu.Unlock()
}

func (s *switchWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w == nil {
		return len(b), nil
	}
	return s.w.Write(b)
}

// invokeHeld is Invoke's path for a warm sandbox that holds its launch.
// teardown is runHeld's.
func (e *Engine) invokeHeld(ctx context.Context, f *Function, ws *warmSandbox, stdin io.Reader, stdout, stderr io.Writer) (Invocation, func(), error) {
	inv := Invocation{ID: ws.c.ID, Warm: true}
	start := time.Now()
	st, ran, timedOut, err, teardown := e.runHeld(ctx, ws.c, ws.held, f.Limits.Timeout, stdin, stdout, stderr,
		func() { inv.Launch = time.Since(start) })
	inv.Ran = time.Since(start)
	if !ran {
		return Invocation{LaunchFailed: true}, teardown, fmt.Errorf("function invoke %s: run %s: %w", f.Name, f.Image, e.explainLaunch(ws.c, err))
	}
	inv.Code, inv.OOMKilled, inv.TimedOut = st.Code, st.OOMKilled, timedOut
	return inv, teardown, err
}

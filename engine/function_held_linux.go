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

// heldLaunch is the launch of a held invocation, waiting at its Hold.
type heldLaunch struct {
	auth    *authority
	stdin   *os.File // the host's ends of the command's stdio pipes
	stdout  *os.File
	stderr  *os.File
	release chan error // nil lets the launch go; an error abandons it
	started chan startResult
}

type startResult struct {
	p   *sandbox.Process
	err error
}

// hold launches c (prepared, see prepare) up to its last step and
// returns once it waits there.
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
	h := &heldLaunch{auth: auth, stdin: inW, stdout: outR, stderr: errR,
		release: make(chan error, 1), started: make(chan startResult, 1)}
	held := make(chan int, 1)
	task := &sandbox.Task{
		Rlimits: rlimits, ID: c.ID, Layers: layers, UID: spec.UID, GID: spec.GID,
		Scratch: filepath.Join(e.dir(c.ID), "scratch"), Args: spec.Args,
		Env: append(spec.Env, "HOSTNAME="+host), Cwd: spec.Cwd, Hostname: host,
		ReadOnly: spec.ReadOnly, Files: spec.Names.etcFiles(host), Tmpfs: spec.Tmpfs,
		IDs: slotIDs(c.Slot), Limits: limits, Stdin: inR, Stdout: outW, Stderr: errW,
		CgroupParent: c.CgroupParent,
		Hold: func(pid int) error {
			held <- pid
			return <-h.release
		},
	}
	go func() {
		p, err := c.start(task)
		h.started <- startResult{p, err}
	}()
	select {
	case pid := <-held:
		// nsinit holds its copies of the command's ends now.
		inR.Close()
		outW.Close()
		errW.Close()
		// A crash of this process from here on leaves a record whose
		// init the next oak kills (settle).
		c.Pid, c.PidStart = pid, pidStart(pid)
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
	h.stdin.Close()
	h.stdout.Close()
	h.stderr.Close()
}

// runHeld runs one invocation on a held launch: stdin is fed to the
// command, its output copied to stdout and stderr, and it is killed when
// timeout runs out or ctx ends. c's record is removed at the end.
func (e *Engine) runHeld(ctx context.Context, c *Container, h *heldLaunch, timeout time.Duration,
	stdin io.Reader, stdout, stderr io.Writer) (st sandbox.Exit, ran, timedOut bool, err error) {
	h.release <- nil
	r := <-h.started
	if r.err != nil {
		h.stdin.Close()
		h.stdout.Close()
		h.stderr.Close()
		e.discard(c)
		return st, false, false, r.err
	}
	p := r.p
	var copiers sync.WaitGroup
	// The command's stderr and the network service's word share stderr;
	// nothing reaches it after runHeld returns.
	var errMu sync.Mutex
	errClosed := false
	lockedErr := writerFunc(func(b []byte) (int, error) {
		errMu.Lock()
		defer errMu.Unlock()
		if errClosed {
			return len(b), nil
		}
		return stderr.Write(b)
	})
	defer func() {
		errMu.Lock()
		errClosed = true
		errMu.Unlock()
	}()
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
		if stdin != nil {
			io.Copy(h.stdin, stdin) // EPIPE once the command is gone without reading it all
		}
		h.stdin.Close()
	}()
	sctx, stop := context.WithCancel(context.Background())
	defer stop()
	serveNetwork(sctx, p, h.auth, lockedErr, nil)
	// Recorded running while the command runs: the record has its pid
	// already, which is what a crash needs.
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		c.Status, c.Supervisor, c.SupStart = StatusRunning, os.Getpid(), pidStart(os.Getpid())
		e.update(c)
	}()
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
	st, werr := p.Wait()
	close(done)
	killed.Wait()
	stop()
	copiers.Wait()
	// The record goes after the answer (WithAnswered): its removal is not
	// the caller's to wait for (the daemon waits for it before it stops,
	// and a crash before leaves a record of a dead supervisor, which the
	// next oak removes).
	e.functions.teardown.Add(1)
	afterAnswer(ctx, func() {
		defer e.functions.teardown.Done()
		<-recorded
		c.Status, c.ExitCode, c.OOMKilled, c.Finished = StatusExited, st.Code, st.OOMKilled, time.Now().UTC()
		e.finish(c)
	})
	return st, true, expired, werr
}

// WaitTeardown waits until the records of every held invocation that has
// answered are removed (they go after the answer), for a benchmark that
// must not time one invocation's teardown in the next, and for shutdown.
func (e *Engine) WaitTeardown() { e.functions.teardown.Wait() }

// writerFunc is a function as an io.Writer.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// invokeHeld is Invoke's path for a warm sandbox that holds its launch.
func (e *Engine) invokeHeld(ctx context.Context, f *Function, ws *warmSandbox, stdin io.Reader, stdout, stderr io.Writer) (Invocation, error) {
	inv := Invocation{ID: ws.c.ID, Warm: true}
	start := time.Now()
	st, ran, timedOut, err := e.runHeld(ctx, ws.c, ws.held, f.Limits.Timeout, stdin, stdout, stderr)
	inv.Ran = time.Since(start)
	if !ran {
		return Invocation{}, fmt.Errorf("function invoke %s: run %s: %w", f.Name, f.Image, e.explainLaunch(ws.c, err))
	}
	inv.Code, inv.OOMKilled, inv.TimedOut = st.Code, st.OOMKilled, timedOut
	return inv, err
}

package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/oak-engine/oak/internal/trace"
	"github.com/oak-engine/oak/sandbox"
)

// Invocation is how one invocation of a function ended.
type Invocation struct {
	ID        string        // the container that served it (removed since)
	Code      int           // the command's exit status; 137 when killed
	TimedOut  bool          // killed when the function's timeout ran out
	OOMKilled bool          // killed by its memory limit
	Warm      bool          // served by a warm sandbox
	Queued    time.Duration // time waiting for a slot of the function's concurrency
	Ran       time.Duration // time from the container's creation to its end
	// Launch is its launch's time, from its slot taken to its command
	// executing (for a warm sandbox, the release of its held launch);
	// LaunchFailed says
	// a launch was tried and the command never ran. Neither is set for
	// an invocation that never got as far as a launch (no such function,
	// no slot before the caller left). A front end counts launches by
	// them, as it counts any container's.
	Launch       time.Duration
	LaunchFailed bool
}

// FunctionLabel is the label every invocation's container carries: the
// function's name.
const FunctionLabel = "oak.function"

// invokerKey is the context key of the invoking client's identity.
type invokerKey struct{}

// WithInvoker returns ctx naming the client an invocation is for: the
// function's concurrency is shared fairly among clients (see fairQueue).
// The daemon names a client by its socket peer's credentials.
func WithInvoker(ctx context.Context, client string) context.Context {
	return context.WithValue(ctx, invokerKey{}, client)
}

// InvokerOf is the client ctx names (WithInvoker), "" if none.
func InvokerOf(ctx context.Context) string {
	s, _ := ctx.Value(invokerKey{}).(string)
	return s
}

// answeredKey is the context key of the channel closed once the caller's
// answer is out (WithAnswered).
type answeredKey struct{}

// WithAnswered returns ctx telling Invoke that its caller's answer is out
// once answered is closed: what Invoke leaves to do after it returns
// (removing the invocation's record, preparing the next warm sandbox)
// waits until then, so that it does not compete with the answer for the
// CPU. The caller must close answered.
func WithAnswered(ctx context.Context, answered <-chan struct{}) context.Context {
	return context.WithValue(ctx, answeredKey{}, answered)
}

// afterAnswer runs f in the background once ctx's caller has answered.
func afterAnswer(ctx context.Context, f func()) {
	answered, _ := ctx.Value(answeredKey{}).(<-chan struct{})
	go func() {
		if answered != nil {
			<-answered
		}
		f()
	}()
}

// ErrFunctionTimeout is the error of an invocation killed because the
// function's timeout ran out, for errors.Is. Invoke reports it in
// Invocation.TimedOut, with the command's status, not as an error.
var ErrFunctionTimeout = errors.New("timed out")

// Invoke runs one invocation of function name: a container made for it
// from the function's factory, with stdin as its standard input, its
// standard output and error copied to stdout and stderr, removed when it
// ends (a stdin that is not a file is fed from a goroutine, which may
// read it after Invoke returned if the command ended without reading all
// of it, until it ends or fails). It waits for a slot of the function's
// concurrency first, its client's turn decided fairly (see WithInvoker). The command is killed
// when the function's timeout runs out (Invocation.TimedOut) or ctx ends.
// An error means the invocation did not run: no such function, no slot
// before ctx ended, or a container that could not start.
func (e *Engine) Invoke(ctx context.Context, name string, stdin io.Reader, stdout, stderr io.Writer) (Invocation, error) {
	var inv Invocation
	op := "function invoke " + name
	trace.Mark("function: invoke")
	f, err := e.invocable(name)
	if err != nil {
		return inv, fmt.Errorf("%s: %w", op, err)
	}
	if f.Removing {
		return inv, fmt.Errorf("%s: %w: it is being removed", op, ErrNoSuchFunction)
	}
	queued := time.Now()
	release, err := e.functions.queue(f).acquire(ctx, InvokerOf(ctx))
	if err != nil {
		return inv, fmt.Errorf("%s: waiting for a slot of its concurrency %d: %w", op, f.Concurrency, err)
	}
	inv.Queued = time.Since(queued)
	trace.Mark("function: slot taken")
	slotted := time.Now()

	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	ws := e.takeWarm(f)
	if ws != nil && ws.held != nil {
		held, teardown, err := e.invokeHeld(ctx, f, ws, stdin, stdout, stderr)
		held.Queued = inv.Queued
		// The answer goes first; the container's end, its record's
		// removal, and then its slot's release follow it: the slot is
		// held until the container's share of the factory is free again.
		e.functions.teardown.Add(1)
		afterAnswer(ctx, func() {
			defer e.functions.teardown.Done()
			teardown()
			release()
			e.refill(f) // the slot is free for a warm sandbox again
		})
		return held, err
	}
	defer func() {
		release()
		afterAnswer(ctx, func() { e.refill(f) }) // the slot is free for a warm sandbox again
	}()
	in, closeIn, err := stdinFile(stdin)
	if err != nil {
		return inv, fmt.Errorf("%s: stdin: %w", op, err)
	}
	defer closeIn()
	start := time.Now()
	var c *Container
	var spec *Spec
	if ws != nil {
		c, spec, inv.Warm = ws.c, ws.spec, true
	} else {
		sandbox.PrimeMoves()
		if c, spec, err = e.create(invocationOptions(f)); err != nil {
			inv.LaunchFailed = true
			return inv, fmt.Errorf("%s: %w", op, err)
		}
		if err := e.prepare(c); err != nil {
			e.discard(c)
			inv.LaunchFailed = true
			return inv, fmt.Errorf("%s: run %s: %w", op, f.Image, e.explainLaunch(c, err))
		}
	}
	defer func() {
		if c.prepared != nil { // supervise failed before it started it
			c.prepared.Discard()
		}
	}()
	inv.ID = c.ID
	// The kill for the timeout or the caller's going away reaches the
	// container through the channel a foreground run forwards signals
	// from: one sent before the command starts waits there for it.
	sigs := make(chan os.Signal, 1)
	var timedOut atomic.Bool
	done := make(chan struct{})
	var watcher sync.WaitGroup
	watcher.Add(1)
	go func() {
		defer watcher.Done()
		t := time.NewTimer(f.Limits.Timeout)
		defer t.Stop()
		select {
		case <-done:
			return
		case <-t.C:
			timedOut.Store(true)
		case <-ctx.Done():
		}
		sigs <- syscall.SIGKILL
	}()
	launched := func(err error) {
		if err == nil {
			inv.Launch = time.Since(slotted)
		}
	}
	exit, err := e.supervise(c, spec, Stdio{Stdin: in, Stdout: stdout, Stderr: stderr}, sigs, launched)
	close(done)
	watcher.Wait()
	inv.Ran = time.Since(start)
	if err != nil && exit.ID == "" {
		inv.LaunchFailed = inv.Launch == 0
		return inv, fmt.Errorf("%s: %w", op, err)
	}
	inv.Code, inv.OOMKilled, inv.TimedOut = exit.Code, exit.OOMKilled, timedOut.Load()
	return inv, err
}

// invocationOptions is the run of one invocation of f.
func invocationOptions(f *Function) RunOptions {
	opts := RunOptions{Image: f.Image, Env: f.Env, AutoRemove: true, Factory: f.Factory,
		Limits: sandbox.Limits{MemoryBytes: f.Limits.MemoryBytes, Pids: f.Limits.Pids, CPUMilli: f.Limits.CPUMilli},
		Log:    DefaultLogOptions(), Labels: map[string]string{FunctionLabel: f.Name}}
	if len(f.Command) > 0 {
		opts.Entrypoint = f.Command
	}
	return opts
}

// stdinFile is r as a file a container can have as its stdin: r itself
// if it is one, /dev/null (nil) if r is nil, else the read end of a pipe
// fed from r. done closes what stdinFile opened; the feeder ends when r
// does, or at its next write after that close (a command that ended
// without reading all its input). A read of r that fails leaves the
// command's stdin open until done. done does not wait for it: r may be a
// request body still arriving, and the answer must not wait for the
// client to finish sending what the command will never read.
func stdinFile(r io.Reader) (f *os.File, done func(), err error) {
	switch v := r.(type) {
	case nil:
		return nil, func() {}, nil
	case *os.File:
		return v, func() {}, nil
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	ended := make(chan struct{})
	go func() {
		// EPIPE once the container is gone without reading it all. An
		// input that failed (a request body cut short or refused) is no
		// end of input: the command's stdin stays open until the
		// invocation ends (its caller kills it), so that it never acts on
		// a cut input as on a whole one.
		if _, err := io.Copy(pw, r); err != nil {
			<-ended
		}
		pw.Close()
	}()
	return pr, func() {
		pr.Close()
		close(ended)
	}, nil
}

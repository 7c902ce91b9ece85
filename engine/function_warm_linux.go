package engine

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/oak-engine/oak/sandbox"
)

// Warm sandboxes: a daemon (KeepWarm) keeps up to Function.Warm
// invocations of each function made ahead: the container's record is
// written (status "created", its slot's uid range and its name taken,
// admitted into the function's factory) and its sandbox prepared inside
// the factory's group (sandbox.PrepareIn: namespaces, id maps, groups,
// an init waiting for its root). An invocation takes one, gives it its
// root, stdio and command (Prepared.Start) and runs it as a cold one
// would; each serves exactly one invocation and is destroyed with it. The
// pool is topped up in the background after each invocation.
//
// Reserving the slot is writing the record: every process allocating
// slots (create) sees it, and a daemon that dies leaves records whose
// supervisor is gone, which the next reconcile removes (settle), while
// the prepared inits die with the daemon (their parent death signal).
// Warm sandboxes count against the function's concurrency: a function
// never has more prepared and running invocations together than it has
// slots, so its factory's quota (Concurrency times the per-invocation
// limits) holds them all. oak ps -a lists them as created containers.

// launcher is an OS thread kept for cloning the sandboxes of
// invocations. A sandbox's init is killed when the thread that cloned it
// ends (its parent death signal, which is per thread), and a process
// serving many invocations ends threads: the network service's loop locks
// one and lets it end with the container it serves, and that thread may
// be one an earlier invocation was cloned from. The launcher's thread is
// locked by a goroutine that never returns, so no other goroutine ever
// runs on it and it never ends while the engine's process lives.
type launcher struct {
	once sync.Once
	reqs chan func()
}

// do runs f on the launcher's thread and returns when it has.
func (l *launcher) do(f func()) {
	l.once.Do(func() {
		l.reqs = make(chan func())
		go func() {
			runtime.LockOSThread() // for good: see launcher
			for f := range l.reqs {
				f()
			}
		}()
	})
	done := make(chan struct{})
	l.reqs <- func() {
		defer close(done)
		f()
	}
	<-done
}

// prepare makes c's sandbox ahead, on the launcher's thread, inside its
// factory's groups, and sets c.prepared.
func (e *Engine) prepare(c *Container) error {
	if err := e.ensureGroups(c); err != nil {
		return err
	}
	var pr *sandbox.Prepared
	var err error
	e.functions.launcher.do(func() { pr, err = sandbox.PrepareIn(c.ID, slotIDs(c.Slot), c.CgroupParent) })
	if err != nil {
		return err
	}
	c.prepared = pr
	return nil
}

// warmSandbox is one invocation made ahead.
type warmSandbox struct {
	c    *Container
	spec *Spec
	held *heldLaunch // its launch, waiting for the invocation's word
}

// warmPools are the warm sandboxes of an engine's functions, by queueKey.
// The zero value keeps none (only KeepWarm enables them).
type warmPools struct {
	mu      sync.Mutex
	enabled bool
	pools   map[string]*warmPool
}

// warmPool is one function's prepared invocations.
type warmPool struct {
	mu      sync.Mutex
	ready   []*warmSandbox
	filling bool
	closed  bool
	err     error // of the last fill, reported by inspect
}

// KeepWarm makes e keep warm sandboxes for its functions (the daemon
// does; an oak run in-process would only leave them behind) until ctx
// ends, when they are destroyed; the channel it returns is closed then.
func (e *Engine) KeepWarm(ctx context.Context) <-chan struct{} {
	w := &e.functions.warm
	w.mu.Lock()
	w.enabled = true
	w.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if fs, err := e.ListFunctions(); err == nil {
			for _, fi := range fs {
				if f, err := e.loadFunction(fi.Name); err == nil {
					e.refill(f)
				}
			}
		}
		<-ctx.Done()
		w.mu.Lock()
		w.enabled = false
		pools := w.pools
		w.pools = nil
		w.mu.Unlock()
		for _, p := range pools {
			e.closePool(p)
		}
		e.functions.teardown.Wait()
	}()
	return done
}

// pool is f's pool, made when needed; nil when e keeps no warm
// sandboxes or f asks for none.
func (w *warmPools) pool(f *Function) *warmPool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.enabled || f.Warm == 0 || f.Removing {
		return nil
	}
	if w.pools == nil {
		w.pools = map[string]*warmPool{}
	}
	p := w.pools[queueKey(f)]
	if p == nil {
		p = &warmPool{}
		w.pools[queueKey(f)] = p
	}
	return p
}

// lookup is f's pool if it has one.
func (w *warmPools) lookup(f *Function) *warmPool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pools[queueKey(f)]
}

// drop removes every pool of function name and returns them.
func (w *warmPools) drop(name string) []*warmPool {
	w.mu.Lock()
	defer w.mu.Unlock()
	var ps []*warmPool
	for k, p := range w.pools {
		if n, _, _ := cutKey(k); n == name {
			ps = append(ps, p)
			delete(w.pools, k)
		}
	}
	return ps
}

// take is a warm sandbox of f, or nil if none is ready. One whose record
// was removed meanwhile (oak rm -f) is destroyed and not returned.
func (e *Engine) takeWarm(f *Function) *warmSandbox {
	p := e.functions.warm.lookup(f)
	if p == nil {
		return nil
	}
	for {
		p.mu.Lock()
		if len(p.ready) == 0 {
			p.mu.Unlock()
			return nil
		}
		ws := p.ready[0]
		p.ready = p.ready[1:]
		p.mu.Unlock()
		if _, err := os.Stat(e.dir(ws.c.ID)); err == nil {
			return ws
		}
		e.destroyWarm(ws)
	}
}

// refill tops f's pool up in the background: up to f.Warm sandboxes,
// and no more than the slots of f's concurrency that no invocation
// holds. A fill that fails stops until the next invocation, keeping its
// error for inspect.
func (e *Engine) refill(f *Function) {
	p := e.functions.warm.pool(f)
	if p == nil {
		return
	}
	p.mu.Lock()
	if p.filling || p.closed {
		p.mu.Unlock()
		return
	}
	p.filling = true
	p.mu.Unlock()
	q := e.functions.queue(f)
	go func() {
		for {
			holding, _ := q.counts()
			p.mu.Lock()
			if p.closed || len(p.ready) >= min(f.Warm, f.Concurrency-holding) {
				p.filling = false
				p.mu.Unlock()
				return
			}
			p.mu.Unlock()
			ws, err := e.prepareWarm(f)
			p.mu.Lock()
			p.err = err
			if err != nil || p.closed {
				p.filling = false
				p.mu.Unlock()
				if ws != nil {
					e.destroyWarm(ws)
				}
				return
			}
			p.ready = append(p.ready, ws)
			p.mu.Unlock()
		}
	}()
}

// prepareWarm makes one invocation of f ahead: its record, its groups,
// its prepared sandbox.
func (e *Engine) prepareWarm(f *Function) (*warmSandbox, error) {
	// Not for a function removed, or being removed, meanwhile (its
	// factory refuses new containers too; this saves the attempt).
	if cur, err := e.loadFunction(f.Name); err != nil || cur.Removing || !cur.Created.Equal(f.Created) {
		return nil, fmt.Errorf("function %s: %w: removed meanwhile", f.Name, ErrNoSuchFunction)
	}
	c, spec, err := e.create(invocationOptions(f))
	if err != nil {
		return nil, err
	}
	if err := e.prepare(c); err != nil {
		e.discard(c)
		return nil, err
	}
	// Its init builds the root at a low priority: invocations running
	// meanwhile come first on the CPU. hold gives it the usual one back
	// before anything of the image runs.
	unix.Setpriority(unix.PRIO_PROCESS, c.prepared.Pid(), warmNice)
	ws := &warmSandbox{c: c, spec: spec}
	if err := c.prepared.Placed(); err != nil {
		e.destroyWarm(ws)
		return nil, err
	}
	h, err := e.hold(c, spec)
	if err != nil {
		e.destroyWarm(ws)
		return nil, err
	}
	ws.held = h
	return ws, nil
}

// warmNice is the nice value of a warm sandbox's init while it is
// prepared (see prepareWarm).
const warmNice = 10

// destroyWarm destroys a warm sandbox that will serve no invocation: its
// init and groups, and its record.
func (e *Engine) destroyWarm(ws *warmSandbox) {
	if ws.held != nil {
		ws.held.abandon()
		ws.held = nil
	}
	if ws.c.prepared != nil {
		ws.c.prepared.Discard()
		ws.c.prepared = nil
	}
	e.discard(ws.c)
}

// closePool destroys p's warm sandboxes and keeps it from being filled.
func (e *Engine) closePool(p *warmPool) {
	p.mu.Lock()
	p.closed = true
	ready := p.ready
	p.ready = nil
	p.mu.Unlock()
	for _, ws := range ready {
		e.destroyWarm(ws)
	}
}

// warmCounts is how many warm sandboxes f has ready, and why the last
// fill failed, if it did.
func (e *Engine) warmCounts(f *Function) (ready int, err error) {
	p := e.functions.warm.lookup(f)
	if p == nil {
		return 0, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ready), p.err
}

// start starts c's command: in the sandbox prepared for it, if there is
// one, else in a new one.
func (c *Container) start(t *sandbox.Task) (*sandbox.Process, error) {
	if pr := c.prepared; pr != nil {
		c.prepared = nil
		return pr.Start(t)
	}
	return sandbox.Start(t)
}

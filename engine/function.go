package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// A function is a named recipe for short-lived containers: an image, a
// command, an environment and per-invocation limits. Each invocation
// runs one container, made for it and removed when it ends, with the
// request on its stdin and its stdout as the answer (see Invoke).
//
// Every function has a factory of its own, "fn-NAME", made with it and
// removed with it. Its quota is Concurrency times the per-invocation
// limits, so the kernel bounds the sum of the function's concurrent
// invocations by it however they were started; an invocation's own
// limits bound each one.
//
// Functions are records under the state root, STATE/functions/NAME.json,
// each written atomically under the root's lock, like factories'.

// Function is the persistent record of one function.
type Function struct {
	Name    string   `json:"name"`
	Image   string   `json:"image"`
	Command []string `json:"command,omitempty"` // empty: the image's
	Env     []string `json:"env,omitempty"`
	// Limits bound each invocation; the function's factory holds
	// Concurrency times them.
	Limits      FunctionLimits `json:"limits"`
	Concurrency int            `json:"concurrency"`
	// Warm is how many prepared sandboxes the daemon is asked to keep.
	Warm    int       `json:"warm,omitempty"`
	Factory string    `json:"factory"`
	Created time.Time `json:"created"`
	// Removing is set by RemoveFunction before it withdraws the factory:
	// no invocation starts any more, and a removal a crash interrupted is
	// finished by the next.
	Removing bool `json:"removing,omitempty"`
}

// FunctionLimits are one invocation's limits. Every field is set: a
// function's invocations are bounded, never "no limit".
type FunctionLimits struct {
	MemoryBytes int64         `json:"memory_bytes"`
	Pids        int64         `json:"pids"`
	CPUMilli    int64         `json:"cpu_milli"`
	Timeout     time.Duration `json:"timeout"` // nanoseconds, as JSON
}

// FunctionOptions is a request to make a function, as the front ends
// take it. Zero limits take the defaults below.
type FunctionOptions struct {
	Name        string
	Image       string
	Command     []string
	Env         []string
	Limits      FunctionLimits
	Concurrency int
	Warm        int
}

// Defaults and bounds of a function's settings. An invocation is a short
// request: its defaults are smaller than a container's.
const (
	DefaultFunctionMemory      = 128 << 20
	DefaultFunctionPids        = 64
	DefaultFunctionCPUMilli    = 1000
	DefaultFunctionTimeout     = 60 * time.Second
	DefaultFunctionConcurrency = 4
	MaxFunctionConcurrency     = 1024
	MaxFunctionWarm            = 64
	MaxFunctionTimeout         = time.Hour
)

// FunctionFactoryPrefix starts the name of a function's factory.
const FunctionFactoryPrefix = "fn-"

// ErrNoSuchFunction is the cause of every error about a name that names
// no function, for errors.Is.
var ErrNoSuchFunction = errors.New("no such function")

// withDefaults fills o's zero fields.
func (o FunctionOptions) withDefaults() FunctionOptions {
	if o.Limits.MemoryBytes == 0 {
		o.Limits.MemoryBytes = DefaultFunctionMemory
	}
	if o.Limits.Pids == 0 {
		o.Limits.Pids = DefaultFunctionPids
	}
	if o.Limits.CPUMilli == 0 {
		o.Limits.CPUMilli = DefaultFunctionCPUMilli
	}
	if o.Limits.Timeout == 0 {
		o.Limits.Timeout = DefaultFunctionTimeout
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultFunctionConcurrency
	}
	return o
}

// check refuses what no function can be made of, naming the flag.
func (o FunctionOptions) check() error {
	l := o.Limits
	switch {
	case !ValidName(o.Name) || !ValidName(FunctionFactoryPrefix+o.Name):
		return fmt.Errorf("invalid function name %q: must match [a-zA-Z0-9][a-zA-Z0-9_.-]* and be at most %d characters", o.Name, MaxNameLen-len(FunctionFactoryPrefix))
	case o.Image == "":
		return errors.New("function: an image is required")
	case o.Concurrency < 1 || o.Concurrency > MaxFunctionConcurrency:
		return fmt.Errorf("invalid --concurrency %d: want 1 to %d", o.Concurrency, MaxFunctionConcurrency)
	case o.Warm < 0 || o.Warm > MaxFunctionWarm || o.Warm > o.Concurrency:
		return fmt.Errorf("invalid --warm %d: want 0 to %d and at most --concurrency (%d)", o.Warm, MaxFunctionWarm, o.Concurrency)
	case l.Timeout < 0 || l.Timeout > MaxFunctionTimeout:
		return fmt.Errorf("invalid --timeout %v: want more than 0 and at most %v", l.Timeout, MaxFunctionTimeout)
	}
	for _, kv := range o.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" || strings.ContainsRune(kv, 0) {
			return fmt.Errorf("invalid -e %q: want KEY=VALUE", kv)
		}
	}
	// Each invocation must be able to start, at least (the minimums are
	// a container's); the factory holds Concurrency of them.
	if err := (FactoryQuota{MemoryBytes: l.MemoryBytes, Pids: l.Pids, CPUMilli: l.CPUMilli}).Check(); err != nil {
		return err
	}
	q := o.factoryQuota()
	if q.MemoryBytes/int64(o.Concurrency) != l.MemoryBytes || q.Pids/int64(o.Concurrency) != l.Pids ||
		q.CPUMilli/int64(o.Concurrency) != l.CPUMilli {
		return fmt.Errorf("invalid --concurrency %d: its product with the per-invocation limits overflows", o.Concurrency)
	}
	return q.Check()
}

// factoryQuota is the quota of o's factory: room for Concurrency
// invocations at their limits.
func (o FunctionOptions) factoryQuota() FactoryQuota {
	c := int64(o.Concurrency)
	return FactoryQuota{MemoryBytes: c * o.Limits.MemoryBytes, Pids: c * o.Limits.Pids, CPUMilli: c * o.Limits.CPUMilli}
}

func (e *Engine) functionDir() string { return filepath.Join(e.Root, "functions") }

func (e *Engine) functionPath(name string) string {
	return filepath.Join(e.functionDir(), name+".json")
}

// loadFunction reads function name's record.
func (e *Engine) loadFunction(name string) (*Function, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("function %q: %w", name, ErrNoSuchFunction)
	}
	b, err := os.ReadFile(e.functionPath(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("function %s: %w", name, ErrNoSuchFunction)
	}
	if err != nil {
		return nil, fmt.Errorf("function %s: %w", name, unwrapPath(err))
	}
	var f Function
	if err := json.Unmarshal(b, &f); err != nil || f.Name != name {
		return nil, fmt.Errorf("function %s: corrupt record %s", name, e.functionPath(name))
	}
	return &f, nil
}

// invocable is function name's record for an invocation: the copy this
// process read last while the file is that same one (one stat: every
// write of a record replaces its file, see saveFunction), else read anew.
// The record on disk stays the truth; an invocation does not read and
// decode it each time. The *Function returned is shared: not to be
// changed.
func (e *Engine) invocable(name string) (*Function, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("function %q: %w", name, ErrNoSuchFunction)
	}
	s := &e.functions
	fi, err := os.Stat(e.functionPath(name))
	if err == nil {
		s.mu.Lock()
		r, ok := s.records[name]
		s.mu.Unlock()
		if ok && os.SameFile(r.file, fi) && r.file.ModTime().Equal(fi.ModTime()) && r.file.Size() == fi.Size() {
			return r.f, nil
		}
	}
	f, err := e.loadFunction(name)
	if err != nil {
		s.mu.Lock()
		delete(s.records, name)
		s.mu.Unlock()
		return nil, err
	}
	if fi != nil {
		s.mu.Lock()
		if s.records == nil {
			s.records = map[string]cachedFunction{}
		}
		s.records[name] = cachedFunction{f: f, file: fi}
		s.mu.Unlock()
	}
	return f, nil
}

// cachedFunction is a function's record as read, and its file's identity
// before it was read.
type cachedFunction struct {
	f    *Function
	file os.FileInfo
}

func (e *Engine) saveFunction(f *Function) error {
	if err := os.MkdirAll(e.functionDir(), 0o700); err != nil {
		return fmt.Errorf("function %s: %w", f.Name, unwrapPath(err))
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(e.functionPath(f.Name), b)
}

// CreateFunction records a function and makes its factory. The record is
// written first, under the lock: a crash before the factory exists leaves
// a function that oak function rm removes; nothing is left that a later
// create of the same name would trip over unknowingly.
func (e *Engine) CreateFunction(o FunctionOptions) (*FunctionInfo, error) {
	o = o.withDefaults()
	op := "function create " + o.Name
	if err := o.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if _, err := e.ResolveImage(o.Image); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	f := &Function{Name: o.Name, Image: o.Image, Command: o.Command, Env: o.Env, Limits: o.Limits,
		Concurrency: o.Concurrency, Warm: o.Warm, Factory: FunctionFactoryPrefix + o.Name, Created: time.Now().UTC()}
	unlock, err := e.lock()
	if err != nil {
		return nil, err
	}
	if _, err := e.loadFunction(o.Name); !errors.Is(err, ErrNoSuchFunction) {
		unlock()
		if err == nil {
			return nil, fmt.Errorf("%s: a function of that name exists", op)
		}
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	err = e.saveFunction(f)
	unlock()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if _, err := e.CreateFactory(FactoryOptions{Name: f.Factory, Quota: o.factoryQuota()}); err != nil {
		if unlock, lerr := e.lock(); lerr == nil {
			os.Remove(e.functionPath(f.Name))
			unlock()
		}
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	e.refill(f)
	return f.info(), nil
}

// FunctionInfo describes one function for oak function ls and inspect,
// and the API.
type FunctionInfo struct {
	Name        string
	Image       string
	Command     []string // empty: the image's entrypoint and command
	Env         []string
	Limits      FunctionLimitsInfo // of each invocation
	Concurrency int
	Warm        int
	Factory     string // its factory, whose quota is Concurrency × Limits
	Created     time.Time
	Removing    bool `json:",omitempty"`
	// Running and Waiting are the invocations that hold a slot of its
	// concurrency and that wait for one, in the process answering (the
	// daemon serves every client's through it; an oak run with
	// OAK_NO_DAEMON=1 sees only its own).
	Running int
	Waiting int
	// WarmReady is how many warm sandboxes the daemon has ready for it;
	// WarmError why it could not prepare the last one, if it could not.
	WarmReady int
	WarmError string `json:",omitempty"`
}

// FunctionLimitsInfo is FunctionLimits as FunctionInfo shows it: the
// timeout in Go's duration notation ("1m0s").
type FunctionLimitsInfo struct {
	MemoryBytes int64
	Pids        int64
	CPUMilli    int64
	Timeout     string
}

func (f *Function) info() *FunctionInfo {
	return &FunctionInfo{Name: f.Name, Image: f.Image, Command: f.Command, Env: f.Env,
		Limits: FunctionLimitsInfo{MemoryBytes: f.Limits.MemoryBytes, Pids: f.Limits.Pids,
			CPUMilli: f.Limits.CPUMilli, Timeout: f.Limits.Timeout.String()},
		Concurrency: f.Concurrency, Warm: f.Warm, Factory: f.Factory, Created: f.Created, Removing: f.Removing}
}

// describe is f's info with its queue's counts in this process.
func (e *Engine) describe(f *Function) *FunctionInfo {
	fi := f.info()
	if q := e.functions.lookup(f); q != nil {
		fi.Running, fi.Waiting = q.counts()
	}
	ready, err := e.warmCounts(f)
	fi.WarmReady = ready
	if err != nil {
		fi.WarmError = err.Error()
	}
	return fi
}

// ListFunctions describes every function, by name.
func (e *Engine) ListFunctions() ([]*FunctionInfo, error) {
	ents, err := os.ReadDir(e.functionDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("functions: %w", unwrapPath(err))
	}
	var fs []*FunctionInfo
	for _, ent := range ents {
		name, ok := strings.CutSuffix(ent.Name(), ".json")
		if !ok || strings.HasPrefix(name, ".") {
			continue
		}
		f, err := e.loadFunction(name)
		if errors.Is(err, ErrNoSuchFunction) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		fs = append(fs, e.describe(f))
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].Name < fs[j].Name })
	return fs, nil
}

// InspectFunction describes function name.
func (e *Engine) InspectFunction(name string) (*FunctionInfo, error) {
	f, err := e.loadFunction(name)
	if err != nil {
		return nil, err
	}
	return e.describe(f), nil
}

// RemoveFunction removes function name: it marks the record removing (no
// invocation starts from then on), removes its factory with everything
// made from it (invocations still running are killed), then the record.
// A removal a crash interrupted is finished by the next.
func (e *Engine) RemoveFunction(name string) error {
	op := "function rm " + name
	unlock, err := e.lock()
	if err != nil {
		return err
	}
	f, err := e.loadFunction(name)
	if err == nil && !f.Removing {
		f.Removing = true
		err = e.saveFunction(f)
	}
	unlock()
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	e.functions.discard(name)
	for _, p := range e.functions.warm.drop(name) {
		e.closePool(p)
	}
	if err := e.RemoveFactory(f.Factory, true); err != nil && !errors.Is(err, ErrNoSuchFactory) {
		return fmt.Errorf("%s: %w", op, err)
	}
	unlock, err = e.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.Remove(e.functionPath(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: %w", op, unwrapPath(err))
	}
	return nil
}

// functionState is what an engine keeps in memory about functions: each
// function's fair queue of invocations. The zero value is ready.
type functionState struct {
	mu       sync.Mutex
	queues   map[string]*fairQueue
	records  map[string]cachedFunction // see invocable
	warm     warmPools                 // function_warm_linux.go
	launcher launcher                  // function_warm_linux.go
	teardown sync.WaitGroup            // removals of held invocations' records, after their answer
	calls    map[string]*NetCounts     // trapped calls of ended invocations, by function (function_netcounts_linux.go)
}

// queue is function f's queue, made (or made again, after a change of its
// concurrency) when needed.
func (s *functionState) queue(f *Function) *fairQueue {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.queues == nil {
		s.queues = map[string]*fairQueue{}
	}
	key := queueKey(f)
	q := s.queues[key]
	if q == nil {
		q = newFairQueue(f.Concurrency)
		s.queues[key] = q
	}
	return q
}

// lookup is function f's queue, nil if none was made.
func (s *functionState) lookup(f *Function) *fairQueue {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queues[queueKey(f)]
}

// queueKey tells apart a function and one made later under its name.
func queueKey(f *Function) string { return f.Name + "\x00" + f.Created.String() }

// cutKey is the function name of a queueKey.
func cutKey(k string) (name, created string, ok bool) { return strings.Cut(k, "\x00") }

// discard forgets every queue of function name; invocations waiting in
// them find the record gone when they are let through.
func (s *functionState) discard(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.queues {
		if n, _, _ := cutKey(k); n == name {
			delete(s.queues, k)
		}
	}
	delete(s.records, name)
}

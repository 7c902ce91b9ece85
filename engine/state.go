// Package engine turns requests from the front ends (CLI now, API and OCI
// verbs later) into containers: it resolves an image and options into a
// sandbox task, keeps each container's record under the state root, and
// supervises the running ones.
package engine

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/oak-engine/oak/sandbox"
)

// Status values of a container record.
const (
	StatusCreated = "created"
	StatusRunning = "running"
	StatusExited  = "exited"
	// StatusRestarting: the command ended and its supervisor waits out
	// the restart policy's back-off before it starts it again.
	StatusRestarting = "restarting"
	// StatusBroken marks a record that cannot be read (see
	// Container.Problem). It is never saved: such a container is listed
	// with its problem and can only be removed, with force.
	StatusBroken = "broken"
)

// ErrNoSuchContainer is the cause of every error about a reference that
// matches no container, for errors.Is; the message names the reference.
var ErrNoSuchContainer = errors.New("no such container")

// noSuchContainer is the error for ref matching no container (any more).
func noSuchContainer(ref string) error {
	return fmt.Errorf("%w: %s", ErrNoSuchContainer, ref)
}

// Container is the persistent record of one container, one JSON file under
// the state root, always replaced atomically.
type Container struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Image      string    `json:"image"`
	Command    []string  `json:"command"`
	Created    time.Time `json:"created"`
	Status     string    `json:"status"`
	Pid        int       `json:"pid,omitempty"`        // host pid of the container's init
	PidStart   uint64    `json:"pid_start,omitempty"`  // its start time, to tell a reused pid
	Supervisor int       `json:"supervisor,omitempty"` // host pid of the oak process that waits for it
	SupStart   uint64    `json:"supervisor_start,omitempty"`
	ExitCode   int       `json:"exit_code"`
	OOMKilled  bool      `json:"oom_killed,omitempty"`
	Finished   time.Time `json:"finished,omitzero"`
	AutoRemove bool      `json:"auto_remove,omitempty"`
	Slot       int       `json:"slot"` // index of its uid/gid range
	// RestartCount counts the restarts its restart policy made since the
	// container was last started by a user.
	RestartCount int `json:"restart_count"`
	// Stopped says a user stopped it (oak stop, or a kill with its stop
	// signal or SIGKILL): its restart policy no longer applies, until
	// oak start.
	Stopped bool              `json:"stopped,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"` // --label K=V
	// Factory is the factory it was made from (run --factory), and
	// CgroupParent that factory's control group, which holds the
	// container's (see factory.go).
	Factory      string `json:"factory,omitempty"`
	CgroupParent string `json:"cgroup_parent,omitempty"`
	// Tenant is the tenant that made it (through the daemon's API), whose
	// alone it is; "" for the host administrator's (see tenant.go).
	Tenant string `json:"tenant,omitempty"`
	// Spawn: it was run with --spawn, and holds the capability to make
	// sub-containers from its own quota (Factory is then the factory
	// made for it and them; see spawn_linux.go). Parent is, for a
	// sub-container, the id of the container that made it.
	Spawn  bool   `json:"spawn,omitempty"`
	Parent string `json:"parent,omitempty"`
	// Pooled: its sandbox was prepared ahead by a supervisor of the
	// daemon's pool (see standby_linux.go), not made by its launch.
	Pooled bool `json:"pooled,omitempty"`

	// Problem says why the record could not be read when Status is
	// StatusBroken; only ID (the directory's name) and Created (its
	// modification time) are known then.
	Problem string `json:"-"`

	// prepared, if set, is the sandbox cloned ahead for it (a function's
	// invocation, see Engine.prepare in function_warm_linux.go), which its
	// first start takes.
	prepared *sandbox.Prepared
	// lease is the held lock of id block Slot while this process
	// supervises the container, or creates it for a supervisor it
	// starts (see reserve_linux.go); nil otherwise.
	lease *os.File
}

// Engine owns one state root. Each record is replaced atomically, so a
// reader never sees half of one, and every change to a record is made
// under that container's own lock (lockRecord), so concurrent oak
// processes never lose each other's changes. The root's lock (lock) is
// taken only by what must see or change several containers at once: a
// create with a --name, published ports or a factory (see newRecord),
// ps's reconcile, oak start, factories, functions, tenants and image or
// volume pruning.
type Engine struct {
	Root string

	functions functionState // function.go: invocation queues, warm sandboxes
	host      hostState     // hostcore_linux.go: the host core and the records' generation
}

// New opens (creating if needed) the state root dir.
func New(root string) (*Engine, error) {
	if !filepath.IsAbs(root) {
		abs, err := filepath.Abs(root)
		if err != nil {
			return nil, fmt.Errorf("state root %s: %w", root, err)
		}
		root = abs
	}
	if err := os.MkdirAll(filepath.Join(root, "containers"), 0o700); err != nil {
		return nil, fmt.Errorf("state root %s: %w", root, unwrapPath(err))
	}
	return &Engine{Root: root}, nil
}

func (e *Engine) dir(id string) string { return filepath.Join(e.Root, "containers", id) }

func (e *Engine) specPath(id string) string { return filepath.Join(e.dir(id), "spec.json") }

// lock takes the state root's exclusive lock and returns its release.
func (e *Engine) lock() (func(), error) {
	f, err := os.OpenFile(filepath.Join(e.Root, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state root %s: lock: %w", e.Root, unwrapPath(err))
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("state root %s: lock: %w", e.Root, err)
	}
	return func() { f.Close() }, nil
}

// save writes c's record atomically: a reader sees the old or the new file,
// never a mix, and a killed process leaves one of the two. Records are not
// fsynced: they describe processes, which a host crash ends anyway, and
// reconcile repairs any record a crash leaves stale.
func (e *Engine) save(c *Container) error { return saveIn(e.dir(c.ID), c) }

// saveIn writes c's record into directory dir, atomically.
func saveIn(dir string, c *Container) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, "state.json"), b)
}

func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, unwrapPath(err))
	}
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, unwrapPath(err))
	}
	return nil
}

func (e *Engine) load(id string) (*Container, error) {
	b, err := os.ReadFile(filepath.Join(e.dir(id), "state.json"))
	if err != nil {
		return nil, err
	}
	var c Container
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("container %s: corrupt state: %w", ShortID(id), err)
	}
	// The record's own fields name its directory and its processes: one
	// that disagrees with where it lies is not trusted with either.
	switch {
	case c.ID != id:
		return nil, fmt.Errorf("container %s: corrupt state: record names id %q", ShortID(id), c.ID)
	case c.Status != StatusCreated && c.Status != StatusRunning && c.Status != StatusExited && c.Status != StatusRestarting:
		return nil, fmt.Errorf("container %s: corrupt state: unknown status %q", ShortID(id), c.Status)
	}
	return &c, nil
}

// all loads every record, oldest first. A directory without a record is a
// container whose creation was interrupted; it is removed. A record that
// cannot be read is returned as StatusBroken with its Problem, so that one
// damaged file costs one container, not every command. It needs no lock:
// a record's directory appears whole (renamed from .new-ID) and goes at
// once (renamed to .rm-ID).
func (e *Engine) all() ([]*Container, error) {
	entries, err := os.ReadDir(filepath.Join(e.Root, "containers"))
	if err != nil {
		return nil, fmt.Errorf("state root %s: %w", e.Root, unwrapPath(err))
	}
	var cs []*Container
	for _, ent := range entries {
		if strings.HasPrefix(ent.Name(), ".") {
			e.sweepRemoved(ent.Name())
			continue
		}
		c, _ := e.loadCurrent(ent.Name())
		if c == nil {
			os.RemoveAll(e.dir(ent.Name()))
			continue
		}
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].Created.Before(cs[j].Created) })
	return cs, nil
}

// find resolves a name, a full id or an unambiguous id prefix.
func find(cs []*Container, ref string) (*Container, error) {
	if ref == "" {
		return nil, noSuchContainer(`""`)
	}
	var match []*Container
	for _, c := range cs {
		if c.Name == ref || c.ID == ref {
			return c, nil
		}
		if strings.HasPrefix(c.ID, ref) {
			match = append(match, c)
		}
	}
	switch {
	case len(match) == 1:
		return match[0], nil
	case len(match) > 1:
		return nil, fmt.Errorf("container %s: ambiguous id prefix (%d matches)", ref, len(match))
	}
	return nil, noSuchContainer(ref)
}

func newID() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b[:])
}

// ShortID is the 12-character prefix shown to people.
func ShortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

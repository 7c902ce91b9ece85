package engine

// Each container's record is changed under that container's own lock,
// not the state root's, so that the launches of many containers at once
// do not queue on one lock to write "running" and "ended", and removing
// one container reads no other's record.
//
//   - The lock is an exclusive flock on the container's directory,
//     ROOT/containers/ID. Whoever changes the record (its supervisor
//     writing running, restarting or ended; oak stop or kill marking it
//     stopped; oak rm, run --rm or a settle removing it) holds it from
//     reading the record to writing it, so no change is lost. The record
//     itself is replaced atomically (a temporary file renamed over
//     state.json in the same directory), so readers take no lock and see
//     the old record or the new one, never half of one.
//   - Removal holds the lock, removes the name link, then renames the
//     directory to ROOT/containers/.rm-ID (the record is gone at once, as
//     one step) and deletes that. A lock taker that waited meanwhile finds
//     ROOT/containers/ID no longer the directory it locked, and the
//     container gone. A .rm- directory left by a crash is deleted by the
//     next reader of every record (all), which can lock it.
//   - The name link is removed before the record, never after: while the
//     record exists, names it and its supervisor lives (or it has
//     exited), no create takes the link for stale (reserve_linux.go), so
//     the holder removes its own link without the root's lock. A crash
//     between the two leaves a record whose name is free.
//   - Lock order: the root's lock, then one container's, never the other
//     way round. Whoever holds a container's lock takes no other lock.
//
// A plain create (no --name, no published port, no factory) takes no
// lock of the root either (newRecord). A record made or removed advances
// the root's generation (hostcore_linux.go) once it is in place or gone:
// one atomic addition to a shared word, no lock. The root's lock is still taken by
// a create that publishes host ports or uses a factory (both shared with
// every live container, whose records it reads), by one with a --name
// (reclaiming a stale link must not race another create of that name),
// and by oak start (ports and id block again). A listing (oak ps) takes
// none.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/oak-engine/oak/core"
	"github.com/oak-engine/oak/internal/trace"
)

// removedPrefix marks a container directory being deleted.
const removedPrefix = ".rm-"

// lockRecord takes container id's own lock and returns its release. An
// error that Is ErrNoSuchContainer says the container is gone (or was
// removed while this waited for the lock).
func (e *Engine) lockRecord(id string) (func(), error) {
	dir := e.dir(id)
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err == unix.ENOENT || err == unix.ENOTDIR {
		return nil, noSuchContainer(id)
	}
	if err != nil {
		return nil, fmt.Errorf("container %s: lock: %w", ShortID(id), err)
	}
	for {
		err = unix.Flock(fd, unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("container %s: lock: %w", ShortID(id), err)
	}
	// Removed (renamed away, then deleted) while this waited.
	var held, now unix.Stat_t
	if unix.Fstat(fd, &held) != nil || unix.Stat(dir, &now) != nil || held.Dev != now.Dev || held.Ino != now.Ino {
		unix.Close(fd)
		return nil, noSuchContainer(id)
	}
	return func() { unix.Close(fd) }, nil
}

// removeRecord removes c's name, then its record directory. Must be
// called with c's lock held.
func (e *Engine) removeRecord(c *Container) error {
	e.releaseName(c.Name, c.ID)
	gone := filepath.Join(e.Root, "containers", removedPrefix+c.ID)
	if err := os.Rename(e.dir(c.ID), gone); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		// The record stays: so does its name, unless a create took it
		// meanwhile.
		if ValidName(c.Name) {
			os.Symlink(c.ID, e.namePath(c.Name))
		}
		return err
	}
	e.advanceContainers() // hostcore_linux.go
	return os.RemoveAll(gone)
}

// sweepRemoved deletes ROOT/containers/name if it is what is left of a
// removal (.rm-ID) or a create (.new-ID) that did not finish, its
// remover or creator dead: no one holds its lock. A create's directory
// is made before it is locked: a create that finds it swept makes it
// again (writeNewRecord), up to 100 times, since listings under load
// can sweep it several times running (TestParallelRunRm).
func (e *Engine) sweepRemoved(name string) {
	if !strings.HasPrefix(name, removedPrefix) && !strings.HasPrefix(name, newPrefix) {
		return
	}
	dir := filepath.Join(e.Root, "containers", name)
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	if unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) != nil {
		return
	}
	os.RemoveAll(dir)
}

// settleIfDead settles container id (see settle) under its lock if its
// supervisor died before it recorded the end, and returns the record as
// it is then: nil if the container is gone, StatusBroken if its record
// cannot be read.
func (e *Engine) settleIfDead(id string) (*Container, error) {
	unlock, err := e.lockRecord(id)
	if errors.Is(err, ErrNoSuchContainer) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer unlock()
	c, err := e.loadCurrent(id)
	if c == nil || err != nil || c.Status == StatusExited || c.Status == StatusBroken || alive(c.Supervisor, c.SupStart) {
		return c, err
	}
	kept, err := e.settle(c)
	if err != nil || !kept {
		return nil, err
	}
	return c, nil
}

// loadCurrent reads container id's record without any lock: nil if there
// is none (gone, or not written yet), StatusBroken with the problem if it
// cannot be read.
func (e *Engine) loadCurrent(id string) (*Container, error) {
	c, err := e.load(id)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		c = &Container{ID: id, Status: StatusBroken, Problem: oneLine(unwrapPath(err).Error())}
		if fi, err := os.Stat(e.dir(id)); err == nil {
			c.Created = fi.ModTime().UTC()
		}
	}
	return c, nil
}

// Get returns the container a name or id (prefix) refers to, settled
// first if its supervisor died, as ps would settle it. A full id or a
// name is found in a fixed number of steps, through the container's
// directory or ROOT/names/NAME, whatever the number of containers; an id
// prefix reads the names of the directories, not the records. Only a
// root without names links (an older oak's), or a name no create
// accepts (an older oak's record), reads every record.
func (e *Engine) Get(ref string) (*Container, error) {
	id, viaName, err := e.resolve(ref)
	if err != nil {
		return nil, err
	}
	if id == "" {
		cs, err := e.List()
		if err != nil {
			return nil, err
		}
		return find(cs, ref)
	}
	c, err := e.loadCurrent(id)
	if err == nil && c != nil && c.Status != StatusExited && c.Status != StatusBroken && !alive(c.Supervisor, c.SupStart) {
		c, err = e.settleIfDead(id)
	}
	if err != nil {
		return nil, err
	}
	if c == nil || viaName && c.Name != ref {
		return nil, noSuchContainer(ref)
	}
	return c, nil
}

// resolve finds the id ref refers to without reading records: a full id
// whose directory exists, the holder of name ref, or the one directory
// whose name starts with ref. viaName says ref was taken as a name (the
// caller checks the record gives it that name). An empty id and no error
// means ref can only be found by reading every record.
func (e *Engine) resolve(ref string) (id string, viaName bool, err error) {
	if ref == "" {
		return "", false, noSuchContainer(`""`)
	}
	if validID(ref) {
		if _, err := os.Lstat(e.dir(ref)); err == nil {
			return ref, false, nil
		}
	}
	_, err = os.Lstat(filepath.Join(e.Root, namesDir))
	linked := err == nil && ValidName(ref)
	if linked {
		if holder, err := os.Readlink(e.namePath(ref)); err == nil && validID(holder) {
			return holder, true, nil
		}
	}
	if isHex(ref) {
		d, err := os.Open(filepath.Join(e.Root, "containers"))
		if err != nil {
			return "", false, fmt.Errorf("state root %s: %w", e.Root, unwrapPath(err))
		}
		names, err := d.Readdirnames(-1)
		d.Close()
		if err != nil {
			return "", false, fmt.Errorf("state root %s: %w", e.Root, unwrapPath(err))
		}
		var match []string
		for _, n := range names {
			if strings.HasPrefix(n, ref) {
				match = append(match, n)
			}
		}
		switch {
		case len(match) == 1:
			return match[0], false, nil
		case len(match) > 1:
			return "", false, fmt.Errorf("container %s: ambiguous id prefix (%d matches)", ref, len(match))
		}
	}
	if linked {
		// Every record with a name a create accepts has its link
		// (reserve_linux.go).
		return "", false, noSuchContainer(ref)
	}
	return "", false, nil
}

// isHex reports whether s could be the start of a container id.
func isHex(s string) bool {
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return false
		}
	}
	return s != ""
}

// newPrefix marks the directory of a record being written by create,
// renamed to ROOT/containers/ID once whole.
const newPrefix = ".new-"

// newRecord makes the record of a new container for opts, resolved into
// spec, in state created: it reserves the container's name and id block
// and writes the record whole into place. Nothing is left on error.
//
// A request that publishes host ports or uses a factory takes the
// root's lock for all of it: ports and a factory's quota are shared with
// every live container, whose records it reads. So does one with a
// --name: reclaiming a stale name link must not race another create of
// that name. Any other (a plain oak run, -d or --rm, whose name is
// generated from its id) takes no lock of the root: its name link and
// id block are made with symlink(2) and a non-blocking flock, which fail
// if taken, and its record is written in ROOT/containers/.new-ID and
// renamed into place, so that no reader of every record sees it half
// made. It takes the lock only if the root has no reservations yet, or
// if the generated name is taken (someone gave a container that name),
// to reclaim a stale link.
// res, if not nil, gives the id and id block (see createIn).
func (e *Engine) newRecord(opts RunOptions, spec *Spec, args []string, listens []core.Listen, res *reservation) (*Container, error) {
	shared := len(spec.Publish) > 0 || opts.Factory != "" || opts.Name != ""
	if shared {
		unlock, err := e.lock()
		if err != nil {
			return nil, err
		}
		defer unlock()
		trace.Mark("engine: locked") // what is before is the request's checks and the wait for the lock
	}
	if err := e.ensureReservations(shared); err != nil {
		return nil, err
	}
	id := newID()
	if res != nil {
		id = res.id
	}
	c := &Container{ID: id, Name: opts.Name, Image: opts.Image, Command: args, Created: time.Now().UTC(),
		Status: StatusCreated, AutoRemove: opts.AutoRemove, Supervisor: os.Getpid(), SupStart: pidStart(os.Getpid()),
		Labels: opts.Labels, Tenant: opts.Tenant, Spawn: opts.Spawn, Parent: opts.Parent}
	if c.Name == "" {
		c.Name = "oak-" + ShortID(id)
	}
	// Published host ports and a factory's quota are shared with every
	// live container: only requests that use them read the records. The
	// name and the id block are reserved without (see reserve_linux.go).
	if len(spec.Publish) > 0 || opts.Factory != "" {
		// A factory's quota is the host core's to check (admit): a
		// daemon holds it and reads no record; without one it is built
		// from them. Only published ports are decided here from the
		// records. (Reading every record under the lock for each launch
		// into a factory made such launches one at a time, each as slow
		// as the records were many: 13.6 ms held per launch with 32
		// invocations running, docs/functions.md.)
		var cs []*Container
		var err error
		if len(spec.Publish) > 0 || len(listens) > 0 {
			if cs, err = e.reconcile(); err != nil {
				return nil, err
			}
		}
		for _, o := range cs {
			if o.Status == StatusBroken || o.Status == StatusExited {
				continue
			}
			if err := e.checkPorts(o, listens); err != nil {
				return nil, err
			}
		}
		if len(spec.Publish) > 0 { // it reads every other record's spec
			if spec.Publish, err = e.pickHostPorts(spec.Publish, cs); err != nil {
				return nil, err
			}
		}
		if opts.Factory != "" {
			if err := e.admit(opts.Factory, c, spec, cs); err != nil {
				return nil, err
			}
		}
	}
	if err := e.reserveNameAs(c.Name, id, shared); err != nil {
		return nil, err
	}
	done := false
	defer func() {
		if !done {
			e.releaseName(c.Name, id)
		}
	}()
	var err error
	if res != nil {
		c.Slot, c.lease, c.Pooled = res.slot, res.lease, res.pooled
		res.lease = nil
	} else if c.Slot, c.lease, err = e.acquireSlot(id, -1); err != nil {
		return nil, err
	}
	defer func() {
		if !done {
			c.releaseSlot()
		}
	}()
	if err := e.writeNewRecord(c, spec); err != nil {
		return nil, err
	}
	if opts.Factory != "" {
		e.keepCore(1, 0) // admit put it in the host core; its record is written
	}
	done = true
	return c, nil
}

// ensureReservations makes the root's names and slots if it has none
// (openReservations), taking the root's lock for that unless locked says
// the caller holds it.
func (e *Engine) ensureReservations(locked bool) error {
	if _, err := os.Lstat(filepath.Join(e.Root, namesDir)); err == nil {
		return nil
	}
	if !locked {
		unlock, err := e.lock()
		if err != nil {
			return err
		}
		defer unlock()
	}
	return e.openReservations()
}

// reserveNameAs reserves name for container id as reserveName does;
// unless locked says the caller holds the root's lock, it takes it only
// to reclaim a link that exists.
func (e *Engine) reserveNameAs(name, id string, locked bool) error {
	if !locked {
		err := os.Symlink(id, e.namePath(name))
		if err == nil {
			return nil
		}
		if !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("name %q: reserve: %w", name, unwrapPath(err))
		}
		unlock, err := e.lock()
		if err != nil {
			return err
		}
		defer unlock()
	}
	return e.reserveName(name, id)
}

// writeNewRecord writes c's spec and record into ROOT/containers/.new-ID,
// locked so that no sweep takes it, and renames it to ROOT/containers/ID.
func (e *Engine) writeNewRecord(c *Container, spec *Spec) error {
	tmp := filepath.Join(e.Root, "containers", newPrefix+c.ID)
	var fd int
	var err error
	// A sweep (sweepRemoved) may take the directory between its mkdir
	// and its lock: then it is made again.
	for try := 0; ; try++ {
		if fd, err = e.lockedNewDir(tmp); err == nil || try == 100 {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("container %s: %w", ShortID(c.ID), unwrapPath(err))
	}
	defer unix.Close(fd)
	err = writeFileAtomic(filepath.Join(tmp, "spec.json"), mustJSON(spec))
	if err == nil {
		err = saveIn(tmp, c)
	}
	if err == nil {
		err = os.Rename(tmp, e.dir(c.ID))
	}
	if err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("container %s: %w", ShortID(c.ID), unwrapPath(err))
	}
	e.advanceContainers() // hostcore_linux.go
	return nil
}

// lockedNewDir makes directory dir and returns its held flock, or an
// error if a sweep removed it before it was locked.
func (e *Engine) lockedNewDir(dir string) (int, error) {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return -1, err
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		unix.Close(fd)
		return -1, &os.PathError{Op: "lock", Path: dir, Err: err}
	}
	var held, now unix.Stat_t
	if unix.Fstat(fd, &held) != nil || unix.Stat(dir, &now) != nil || held.Dev != now.Dev || held.Ino != now.Ino {
		unix.Close(fd)
		return -1, &os.PathError{Op: "lock", Path: dir, Err: unix.ENOENT}
	}
	return fd, nil
}

package engine

// Creating a container reserves two things that no other container may
// hold at the same time: its name and its id block (slot). Both are
// reserved here in a number of steps that does not grow with the number
// of containers, so that a create neither reads every record nor holds
// the state root's lock for longer as the host fills up.
//
//   - ROOT/names/NAME is a symbolic link to the id of the container that
//     holds NAME, made with symlink(2), which fails if NAME exists, before
//     the record is written, and removed, by the holder under its own
//     lock, just before the record is (record_linux.go). The records
//     stay the truth: a link whose record is gone, cannot be read or names
//     another name is stale, and the create that finds it replaces it; so
//     does one that finds the holder's supervisor dead and its record
//     settled away (run --rm, or a container that never ran).
//   - ROOT/slots/N is the lock file of id block N. The process that
//     supervises the container using block N holds an exclusive flock on
//     it for as long as it does (a detached supervisor inherits it from
//     the oak that created the container), so the kernel frees the block
//     when that process dies, however it dies. The file holds the id of
//     the container last given the block: the create that takes the block
//     after a crash settles that container first (kills what is left of
//     it), as reconcile would.
//   - ROOT/slots/next says where the next search for a free block starts
//     (a hint: any value is safe), so that a host with many live
//     containers finds a free block in a step or two.
//
// A state root used by an oak from before these reservations gets them
// made from its records on the first create (openReservations).

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/oak-engine/oak/sandbox"
)

const (
	namesDir = "names"
	slotsDir = "slots"
)

func (e *Engine) namePath(name string) string { return filepath.Join(e.Root, namesDir, name) }

func (e *Engine) slotPath(n int) string {
	return filepath.Join(e.Root, slotsDir, strconv.Itoa(n))
}

// validID reports whether s has the form of a container id, so that one
// read from a link or a lock file cannot name a path outside the root.
func validID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return false
		}
	}
	return true
}

// openReservations makes sure the root has its names and slots
// directories. A root without them was used by an oak that read every
// record instead: their reservations are made now from the records, and
// the names directory, renamed into place last, says it is done. Must be
// called with the lock held.
func (e *Engine) openReservations() error {
	names := filepath.Join(e.Root, namesDir)
	if _, err := os.Lstat(names); err == nil {
		return nil
	}
	cs, err := e.reconcile()
	if err != nil {
		return err
	}
	fail := func(err error) error {
		return fmt.Errorf("state root %s: reservations: %w", e.Root, err)
	}
	tmp := names + ".new"
	if err := os.RemoveAll(tmp); err != nil {
		return fail(err)
	}
	if err := errors.Join(os.MkdirAll(filepath.Join(e.Root, slotsDir), 0o700), os.Mkdir(tmp, 0o700)); err != nil {
		return fail(err)
	}
	for _, c := range cs {
		if c.Status == StatusBroken {
			continue // its name and slot are unknown; rm -f it
		}
		// A name no create would accept (or a second holder of one)
		// gets no link: the records stay the truth, and one bad record
		// must not stop every create.
		if ValidName(c.Name) {
			if err := os.Symlink(c.ID, filepath.Join(tmp, c.Name)); err != nil && !errors.Is(err, fs.ErrExist) {
				return fail(err)
			}
		}
		if c.Status != StatusExited && c.Slot >= 0 && c.Slot < maxSlots {
			// Its supervisor holds no lock: tryBlock finds it alive
			// through the record this names.
			if err := os.WriteFile(e.slotPath(c.Slot), []byte(c.ID), 0o600); err != nil {
				return fail(err)
			}
		}
	}
	if err := os.Rename(tmp, names); err != nil {
		return fail(err)
	}
	return nil
}

// reserveName makes name container id's, or says which container holds
// it. Must be called with the lock held.
func (e *Engine) reserveName(name, id string) error {
	link := e.namePath(name)
	for retried := false; ; retried = true {
		err := os.Symlink(id, link)
		if err == nil {
			return nil
		}
		if !errors.Is(err, fs.ErrExist) || retried {
			return fmt.Errorf("name %q: reserve: %w", name, unwrapPath(err))
		}
		holder, _ := os.Readlink(link)
		if o := e.nameHolder(name, holder); o != nil {
			return fmt.Errorf("invalid --name %q: already used by container %s", name, ShortID(o.ID))
		}
		if err := os.Remove(link); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("name %q: reclaim: %w", name, unwrapPath(err))
		}
	}
}

// nameHolder returns the container whose record gives it name, if that
// is container id; nil if the reservation is stale. A holder whose
// supervisor died is settled first, which removes it if it never ran or
// asked for --rm. Must be called with the lock held.
func (e *Engine) nameHolder(name, id string) *Container {
	if !validID(id) {
		return nil
	}
	o, err := e.load(id)
	if err != nil || o.Name != name {
		return nil // gone, or broken: its name is unknown, as ps shows it
	}
	if o.Status != StatusExited && !alive(o.Supervisor, o.SupStart) {
		if now, err := e.settleIfDead(id); err == nil && (now == nil || now.Name != name) {
			return nil
		}
	}
	return o
}

// releaseName removes the reservation of name if container id holds it.
// Must be called with id's lock held, before its record is removed: no
// create reclaims the link of a record that exists (see nameHolder).
func (e *Engine) releaseName(name, id string) {
	if !ValidName(name) {
		return // never reserved: see openReservations
	}
	if holder, err := os.Readlink(e.namePath(name)); err == nil && holder == id {
		os.Remove(e.namePath(name))
	}
}

// acquireSlot takes a free id block for container id, trying prefer
// first when it is one (oak start gives a container back its block when
// it can), and returns the block and its held lock, which the caller
// keeps for as long as the container may run. It needs no lock of the
// root: of two takers of a block only one gets its flock, and a dead
// holder is settled under its own container's lock.
func (e *Engine) acquireSlot(id string, prefer int) (int, *os.File, error) {
	start := prefer
	if start < 0 || start >= maxSlots {
		start = e.slotCursor()
	}
	for i := 0; i < maxSlots; i++ {
		n := (start + i) % maxSlots
		f, err := e.tryBlock(n, id)
		if err != nil {
			return 0, nil, err
		}
		if f != nil {
			// A hint only: a lost or torn write costs a longer search.
			os.WriteFile(filepath.Join(e.Root, slotsDir, "next"), []byte(strconv.Itoa((n+1)%maxSlots)), 0o600)
			return n, f, nil
		}
	}
	return 0, nil, fmt.Errorf("run: %d containers are live; no id range left", maxSlots)
}

// slotCursor is where the search for a free block starts.
func (e *Engine) slotCursor() int {
	b, _ := os.ReadFile(filepath.Join(e.Root, slotsDir, "next"))
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 || n >= maxSlots {
		return 0
	}
	return n
}

// tryBlock locks block n for container id and returns the lock, or nil
// if the block is in use: locked by a live supervisor, or held by a live
// one from before slot locks (see openReservations). A container that
// held it and whose supervisor died is settled first.
func (e *Engine) tryBlock(n int, id string) (*os.File, error) {
	f, err := os.OpenFile(e.slotPath(n), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("id block %d: %w", n, unwrapPath(err))
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if err == unix.EWOULDBLOCK {
			return nil, nil
		}
		return nil, fmt.Errorf("id block %d: lock: %w", n, err)
	}
	b := make([]byte, 128)
	k, err := f.ReadAt(b, 0)
	if err != nil && err != io.EOF {
		f.Close()
		return nil, fmt.Errorf("id block %d: %w", n, unwrapPath(err))
	}
	if prev := strings.TrimSpace(string(b[:k])); prev != id && validID(prev) {
		o, err := e.load(prev)
		if errors.Is(err, fs.ErrNotExist) {
			// A standby supervisor that died before it had a container
			// (standby_linux.go) leaves its prepared sandbox's groups.
			sandbox.RemoveCgroups(prev)
		}
		if err == nil && o.Slot == n && o.Status != StatusExited {
			if alive(o.Supervisor, o.SupStart) {
				f.Close()
				return nil, nil
			}
			now, err := e.settleIfDead(prev)
			if err != nil {
				f.Close()
				return nil, err
			}
			if now != nil && now.Slot == n && now.Status != StatusExited && now.Status != StatusBroken {
				f.Close() // its supervisor lives after all
				return nil, nil
			}
		}
	}
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt([]byte(id), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("id block %d: %w", n, unwrapPath(err))
	}
	return f, nil
}

// checkSlotLock verifies that f is the held lock of container c's id
// block, as a detached supervisor is handed it.
func (e *Engine) checkSlotLock(c *Container, f *os.File) error {
	if f == nil {
		return fmt.Errorf("container %s: no lock of id block %d handed over", ShortID(c.ID), c.Slot)
	}
	var got, want unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &got); err != nil {
		return fmt.Errorf("container %s: id block %d lock: %w", ShortID(c.ID), c.Slot, err)
	}
	if err := unix.Stat(e.slotPath(c.Slot), &want); err != nil || got.Dev != want.Dev || got.Ino != want.Ino {
		return fmt.Errorf("container %s: the descriptor handed over is not the lock of id block %d", ShortID(c.ID), c.Slot)
	}
	// Succeeds at once on the description the creating oak locked.
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return fmt.Errorf("container %s: id block %d is not locked for it: %w", ShortID(c.ID), c.Slot, err)
	}
	return nil
}

// releaseSlot closes this process's hold on c's id block, if it has one:
// the block is free once no process holds it.
func (c *Container) releaseSlot() {
	if c.lease != nil {
		c.lease.Close()
		c.lease = nil
	}
}

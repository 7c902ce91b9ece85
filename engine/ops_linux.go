package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/oak-engine/oak/sandbox"
)

// List returns every container, oldest first, after reconciling the records
// with the host so none is reported running that is not. It takes no lock
// of the root: each record is read whole without one, and one whose
// supervisor died is settled under its own lock (record_linux.go). Under
// the root's lock, 200 API clients' oak ps queued behind one another and
// behind named and factory creates: 2.4 s at the median
// (TestDaemonLoad). An operation that must see every record a create in
// flight will write (a withdrawal) takes the root's lock before it lists,
// as withdrawFactory does.
func (e *Engine) List() ([]*Container, error) {
	return e.reconcile()
}

// Kill sends sig to a running container's init, which forwards it to the
// command; SIGKILL ends every process of the container at once. The signal
// goes through a pidfd taken after the start time was checked, so it cannot
// reach a later process that reused the pid. SIGKILL and the container's
// stop signal stop it for good, as docker's kill does: its restart policy
// does not start it again.
func (e *Engine) Kill(ref string, sig syscall.Signal) error {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	if c.Status != StatusRunning {
		return fmt.Errorf("container %s: not running (%s)", ref, c.Status)
	}
	if sig == syscall.SIGKILL || sig == e.stopSignal(c.ID) {
		if c, err = e.markStopped(c.ID); err != nil {
			return err
		}
	}
	err = signalInit(c, sig)
	if err == unix.ESRCH {
		// It ended (or was removed) since the record was read.
		return fmt.Errorf("container %s: not running", ref)
	}
	if err != nil {
		return fmt.Errorf("kill %s: %w", ref, err)
	}
	return nil
}

// Remove deletes a container's record and log. A running container is
// refused unless force is set; then it is killed first and its supervisor
// given up to ten seconds to record the end and exit, so that its volumes
// are free when Remove returns. A broken record (one that
// cannot be read) is refused unless force is set; then whatever is left in
// its control groups is killed and the record removed. Of several Removes
// of one container, exactly one succeeds; the others find no such
// container. It reads no other container's record (see Get) and takes
// only the container's own lock.
func (e *Engine) Remove(ref string, force bool) (err error) {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	if c.Spawn {
		// Its sub-containers go first, theirs before them, once nothing
		// more can be made from its factory; then it; then, after the
		// record is gone and the lock released, its factory.
		if force || c.Status == StatusExited {
			if err := e.withdrawChildren(c, true); err != nil {
				return err
			}
		}
		defer func() {
			if err == nil {
				err = e.withdrawSpawn(c)
			}
		}()
	}
	switch {
	case c.Status == StatusBroken && !force:
		return fmt.Errorf("container %s: broken record (%s); remove it with rm -f", ref, c.Problem)
	case c.Status == StatusBroken, c.Status == StatusExited:
	case !force:
		return fmt.Errorf("container %s: is %s; stop it first or use rm -f", ref, c.Status)
	default:
		if c, err := e.markStopped(c.ID); err == nil && c.Status != StatusExited {
			e.stop(c, ref, syscall.SIGKILL, 0)
		}
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			now, err := e.Get(c.ID)
			if errors.Is(err, ErrNoSuchContainer) {
				if c.AutoRemove {
					return nil // its supervisor removed it, as run --rm asked
				}
				return noSuchContainer(ref) // another rm was quicker
			}
			// Done when the end is recorded and the supervisor has gone:
			// until it exits, descriptors it holds may keep the
			// container's mounts (and so its volumes) busy.
			if err != nil || now.Status == StatusExited && !alive(now.Supervisor, now.SupStart) {
				break
			}
		}
	}
	unlock, err := e.lockRecord(c.ID)
	if errors.Is(err, ErrNoSuchContainer) {
		return noSuchContainer(ref) // removed while its lock was not held
	}
	if err != nil {
		return err
	}
	defer unlock()
	now, err := e.loadCurrent(c.ID)
	switch {
	case err != nil:
		return err
	case now == nil:
		return noSuchContainer(ref)
	case !force && now.Status != StatusExited && now.Status != StatusBroken:
		// oak start came in between.
		return fmt.Errorf("container %s: is %s; stop it first or use rm -f", ref, now.Status)
	case now.Status != StatusBroken:
		c = now
	}
	if c.Status == StatusBroken {
		sandbox.RemoveCgroups(c.ID)
	}
	if err := e.removeRecord(c); err != nil {
		return fmt.Errorf("rm %s: %w", ref, err)
	}
	return nil
}

// Logs writes what the container wrote, each stream to its own writer,
// as opts choose. With opts.Follow it goes on writing what the container
// writes, across rotations of the log and restarts of the container, and
// returns once the container has ended (or ctx has).
func (e *Engine) Logs(ctx context.Context, ref string, opts LogsOptions, stdout, stderr io.Writer) error {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	var ended func() bool
	if opts.Follow {
		ended = func() bool { return e.ended(c.ID) }
	}
	if err := followLog(ctx, filepath.Join(e.dir(c.ID), "log"), opts, stdout, stderr, ended); err != nil {
		return err
	}
	// A log that vanished with its container reads as empty; say why.
	if _, err := os.Lstat(e.dir(c.ID)); errors.Is(err, os.ErrNotExist) && !(opts.Follow && c.AutoRemove) {
		return noSuchContainer(ref)
	}
	return nil
}

// ended reports whether container id will write no more output: its
// record is gone, or says it exited, or the supervisor that would write
// is dead. It reads the record without the lock (records are replaced
// atomically) so that a follower does not hold up other verbs.
func (e *Engine) ended(id string) bool {
	c, err := e.load(id)
	if err != nil {
		return true
	}
	return c.Status == StatusExited || !alive(c.Supervisor, c.SupStart)
}

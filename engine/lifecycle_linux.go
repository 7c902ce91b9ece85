package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultStopTimeout is how long oak stop waits after the stop signal
// before it sends SIGKILL, docker's default.
const DefaultStopTimeout = 10 * time.Second

// exitWait bounds how long a verb waits for a supervisor to record the end
// of a container whose processes are gone.
const exitWait = 10 * time.Second

// Stop stops a container for good: its restart policy no longer applies
// (until Start). A running container is sent sig (0: its stop signal,
// the image's StopSignal, else SIGTERM) and, if it has not ended after
// timeout, SIGKILL; one waiting to restart is not started again. It
// returns once the end is recorded, with the container's exit status.
// Stopping an exited container does nothing.
func (e *Engine) Stop(ref string, sig syscall.Signal, timeout time.Duration) (int, error) {
	c, err := e.markStopped(ref)
	if err != nil {
		return 0, err
	}
	if c.Status == StatusExited {
		return c.ExitCode, nil
	}
	if sig == 0 {
		sig = e.stopSignal(c.ID)
	}
	return e.stop(c, ref, sig, timeout)
}

// stopSignal is the signal that stops container id: its image's
// StopSignal, else SIGTERM.
func (e *Engine) stopSignal(id string) syscall.Signal {
	if spec, err := e.readSpec(id); err == nil && spec.StopSignal != "" {
		if s, err := ParseSignal(spec.StopSignal); err == nil {
			return s
		}
	}
	return syscall.SIGTERM
}

// stop ends c, which markStopped returned: sig to its init, SIGKILL after
// timeout, and waits for its supervisor to record the end.
func (e *Engine) stop(c *Container, ref string, sig syscall.Signal, timeout time.Duration) (int, error) {
	switch c.Status {
	case StatusRunning:
		if sig != syscall.SIGKILL && signalInit(c, sig) == nil && waitPid(c.Pid, c.PidStart, timeout) {
			break
		}
		signalInit(c, syscall.SIGKILL)
		waitPid(c.Pid, c.PidStart, exitWait)
	}
	// The supervisor of a container waiting to restart sees the stop in
	// its back-off; that of a created one once it has started it, and
	// kills it.
	for deadline := time.Now().Add(exitWait + timeout); ; time.Sleep(20 * time.Millisecond) {
		now, err := e.Get(c.ID)
		if errors.Is(err, ErrNoSuchContainer) && c.AutoRemove {
			return 0, nil // its supervisor removed it, as run --rm asked
		}
		if err != nil {
			return 0, err
		}
		switch {
		case now.Status == StatusExited:
			return now.ExitCode, nil
		case now.Status == StatusRunning && now.Pid != c.Pid:
			// It started meanwhile: its supervisor kills it, having
			// seen the stop.
			c = now
		case time.Now().After(deadline):
			return 0, fmt.Errorf("stop %s: still %s after %v", ref, now.Status, exitWait+timeout)
		}
	}
}

// lockedRecord takes the state lock, reconciles the records and returns
// ref's (refusing a broken one) and all of them; the caller releases the
// lock with unlock.
func (e *Engine) lockedRecord(ref string) (c *Container, cs []*Container, unlock func(), err error) {
	unlock, err = e.lock()
	if err != nil {
		return nil, nil, nil, err
	}
	fail := func(err error) (*Container, []*Container, func(), error) {
		unlock()
		return nil, nil, nil, err
	}
	if cs, err = e.reconcile(); err != nil {
		return fail(err)
	}
	if c, err = find(cs, ref); err != nil {
		return fail(err)
	}
	if c.Status == StatusBroken {
		return fail(brokenRecord(ref, c))
	}
	return c, cs, unlock, nil
}

// markStopped records that a user stopped ref, so that no supervisor
// starts it again, and returns its record as it was. It takes only the
// container's own lock.
func (e *Engine) markStopped(ref string) (*Container, error) {
	c, err := e.Get(ref)
	if err != nil {
		return nil, err
	}
	if c.Status == StatusBroken {
		return nil, brokenRecord(ref, c)
	}
	unlock, err := e.lockRecord(c.ID)
	if errors.Is(err, ErrNoSuchContainer) {
		return nil, noSuchContainer(ref)
	}
	if err != nil {
		return nil, err
	}
	defer unlock()
	c, err = e.loadCurrent(c.ID)
	switch {
	case err != nil:
		return nil, err
	case c == nil:
		return nil, noSuchContainer(ref)
	case c.Status == StatusBroken:
		return nil, brokenRecord(ref, c)
	case c.Status == StatusExited:
		return c, nil
	case !alive(c.Supervisor, c.SupStart):
		// Its supervisor died meanwhile: settled, it is ended.
		if kept, err := e.settle(c); err != nil || !kept {
			if err == nil {
				err = noSuchContainer(ref)
			}
			return nil, err
		}
		return c, nil
	}
	if !c.Stopped {
		c.Stopped = true
		if err := e.save(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// brokenRecord is the refusal of a verb other than rm -f on ref, whose
// record c cannot be read.
func brokenRecord(ref string, c *Container) error {
	return fmt.Errorf("container %s: broken record (%s); remove it with rm -f", ref, c.Problem)
}

// readSpec reads the spec container id was created with.
func (e *Engine) readSpec(id string) (*Spec, error) {
	var spec Spec
	if err := readJSON(e.specPath(id), &spec); err != nil {
		return nil, fmt.Errorf("container %s: spec: %w", ShortID(id), unwrapPath(err))
	}
	return &spec, nil
}

// signalInit sends sig to c's init through a pidfd taken after its start
// time was checked, so it cannot reach a later process that reused the pid.
func signalInit(c *Container, sig syscall.Signal) error {
	if c.Pid <= 0 {
		return unix.ESRCH
	}
	fd, err := unix.PidfdOpen(c.Pid, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if !alive(c.Pid, c.PidStart) {
		return unix.ESRCH
	}
	return unix.PidfdSendSignal(fd, sig, nil, 0)
}

// waitPid waits up to d (forever if d < 0) for the process pid that
// started at start to end; it reports whether it has.
func waitPid(pid int, start uint64, d time.Duration) bool {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return true
	}
	defer unix.Close(fd)
	if !alive(pid, start) {
		return true
	}
	deadline := time.Now().Add(d)
	for {
		ms := -1
		if d >= 0 {
			left := time.Until(deadline)
			if left <= 0 {
				return false
			}
			ms = int(left.Milliseconds()) + 1
		}
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, ms)
		if n > 0 {
			return true
		}
		if err != nil && err != unix.EINTR {
			return false
		}
	}
}

// Start starts an exited container again with the spec, grants and
// volumes it was created with, under a new background supervisor, and
// returns once its command runs. Its restart count starts over and its
// restart policy applies again. Starting a running container does
// nothing.
func (e *Engine) Start(ref string) error {
	c, err := e.prepareStart(ref)
	if err != nil || c == nil {
		return err
	}
	return e.spawnSupervisor(c)
}

// StartAttached is Start with this process as the supervisor: the
// container's output goes to out as well as to its log, signals sent to
// this process are forwarded to it, and it returns when the container has
// ended (for good, under a restart policy), with its exit status.
func (e *Engine) StartAttached(ref string, out Stdio) (Exit, error) {
	c, err := e.prepareStart(ref)
	if err != nil {
		return Exit{}, err
	}
	if c == nil {
		return Exit{}, fmt.Errorf("container %s: already running; oak logs -f follows its output", ref)
	}
	spec, err := e.readSpec(c.ID)
	if err != nil {
		return Exit{}, err
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	return e.supervise(c, spec, out, sigs, nil)
}

// prepareStart turns the exited container ref back into a created one
// supervised by this process, with an id range and ports no live
// container holds; nil if it is running already.
func (e *Engine) prepareStart(ref string) (*Container, error) {
	c, cs, unlock, err := e.lockedRecord(ref)
	if err != nil {
		return nil, err
	}
	defer unlock()
	switch c.Status {
	case StatusRunning:
		return nil, nil
	case StatusCreated, StatusRestarting:
		return nil, fmt.Errorf("container %s: is %s; its supervisor starts it", ref, c.Status)
	}
	spec, err := e.readSpec(c.ID)
	if err != nil {
		return nil, err
	}
	listens, err := parseGrants(spec.Publish, spec.Egress)
	if err != nil {
		return nil, err
	}
	for _, o := range cs {
		if o.ID == c.ID || o.Status == StatusBroken || o.Status == StatusExited {
			continue
		}
		if err := e.checkPorts(o, listens); err != nil {
			return nil, err
		}
	}
	if err := e.openReservations(); err != nil {
		return nil, err
	}
	// Its own id block again if that is free, so that what it wrote
	// keeps its owners; else another.
	if c.Slot, c.lease, err = e.acquireSlot(c.ID, c.Slot); err != nil {
		return nil, err
	}
	// The record is changed under its own lock too, taken last (see
	// record_linux.go): oak rm takes no other.
	unlockRecord, err := e.lockRecord(c.ID)
	if err == nil {
		defer unlockRecord()
		if now, lerr := e.load(c.ID); lerr != nil || now.Status != StatusExited {
			err = fmt.Errorf("container %s: removed or changed while starting it", ref)
		}
	}
	if err != nil {
		c.releaseSlot()
		if errors.Is(err, ErrNoSuchContainer) {
			err = noSuchContainer(ref)
		}
		return nil, err
	}
	c.Status, c.Stopped, c.RestartCount = StatusCreated, false, 0
	c.Pid, c.PidStart = 0, 0
	c.Supervisor, c.SupStart = os.Getpid(), pidStart(os.Getpid())
	if err := e.save(c); err != nil {
		c.releaseSlot()
		return nil, err
	}
	return c, nil
}

// Restart stops a container as Stop does (if it runs) and starts it again.
func (e *Engine) Restart(ref string, sig syscall.Signal, timeout time.Duration) error {
	if _, err := e.Stop(ref, sig, timeout); err != nil {
		return err
	}
	return e.Start(ref)
}

// Wait waits until the container is not running and returns its exit
// status: at once for an exited container, or one waiting to restart
// (its last run's status); else when its current run ends.
func (e *Engine) Wait(ctx context.Context, ref string) (int, error) {
	c, err := e.Get(ref)
	for err == nil {
		switch c.Status {
		case StatusBroken:
			return 0, fmt.Errorf("container %s: broken record (%s)", ref, c.Problem)
		case StatusExited, StatusRestarting:
			return c.ExitCode, nil
		case StatusRunning:
			pid := c.Pid
			for !waitPid(pid, c.PidStart, followPoll) {
				if ctx.Err() != nil {
					return 0, ctx.Err()
				}
			}
			// Its supervisor records the end once the output is logged.
			for c.Status == StatusRunning && c.Pid == pid && err == nil {
				time.Sleep(10 * time.Millisecond)
				c, err = e.Get(c.ID)
			}
			if err == nil && c.Status == StatusRunning {
				return c.ExitCode, nil // its policy restarted it already
			}
			continue
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(followPoll):
		}
		c, err = e.Get(c.ID)
	}
	if errors.Is(err, ErrNoSuchContainer) {
		return 0, noSuchContainer(ref) // removed (run --rm) before its status was read
	}
	return 0, err
}

//go:build linux && (amd64 || arm64)

package netsvc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Serve serves the seccomp user-notification listener of one container until
// the container is gone (every task under the filter has exited: nil), ctx
// ends (ctx.Err()), or the listener fails (an error naming the operation).
//
// The calls are served one at a time on a dedicated OS thread with every
// signal blocked (a signal arriving during SECCOMP_IOCTL_NOTIF_ADDFD can lose
// the installed descriptor while the call counts as answered). Serve does
// not close listener; the caller closes it after Serve returns. A call taken
// off the listener is always answered before Serve returns, unless its caller
// is gone; a send still waiting for buffer space when ctx ends is answered
// with the bytes sent so far, or EINTR.
func (s *Server) Serve(ctx context.Context, listener int) error {
	if (s.Grants == nil) != s.Offline {
		return errors.New("netsvc: serve: want grants, or Offline without grants")
	}
	if listener < 0 {
		return fmt.Errorf("netsvc: serve: listener %d is not a descriptor", listener)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return fmt.Errorf("netsvc: serve: eventfd: %w", err)
	}
	defer unix.Close(wake)
	l := &loop{
		srv:      s,
		grants:   s.Grants,
		listener: listener,
		wake:     wake,
		log:      s.Log,
		report:   newReporter(s.Denials),
		stats:    s.Stats,
		tally:    s.Tally,
		bound:    make(map[boundKey]uint16),
		sunk:     make(map[boundKey]bool),
	}
	if l.log == nil {
		l.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if l.stats == nil {
		l.stats = new(Stats)
	}
	if s.Local != nil {
		l.delegate = newDelegate(s.Local)
	}
	done := make(chan error, 1)
	go func() { done <- l.run() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
		unix.Write(wake, one)
		err = <-done
	}
	l.stopping.Store(true)
	l.workers.Wait()
	if errors.Is(err, errWoken) {
		err = ctx.Err()
	}
	return err
}

var errWoken = errors.New("woken")

// loop is the state of one container's serving loop.
type loop struct {
	srv      *Server
	grants   Grants
	listener int
	wake     int
	log      *slog.Logger
	report   *reporter
	delegate *delegate // nil without Server.Local
	stats    *Stats
	tally    *Tally // nil counts nothing
	// bound records, for listen, which container port a host address was
	// bound for (see Server.listen). Only the serving thread touches it.
	bound map[boundKey]uint16
	// sunk are the sockets bound to a sink address (see bindSink), which
	// may listen; sinks counts them, and sinkID tells this loop's apart.
	sunk     map[boundKey]bool
	sinks    uint32
	sinkID   uint8
	stopping atomic.Bool
	workers  sync.WaitGroup
}

type boundKey struct {
	proto string
	host  netip.AddrPort
}

// run is the serving loop. It locks its goroutine to its OS thread and never
// unlocks it: when run returns the thread ends, and with it the blocked
// signal mask.
func (l *loop) run() error {
	runtime.LockOSThread()
	var all unix.Sigset_t
	for i := range all.Val {
		all.Val[i] = ^uint64(0)
	}
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, &all, nil); err != nil {
		return fmt.Errorf("netsvc: serve: block signals: %w", err)
	}
	fds := []unix.PollFd{
		{Fd: int32(l.listener), Events: unix.POLLIN},
		{Fd: int32(l.wake), Events: unix.POLLIN},
	}
	var n seccompNotif
	for {
		fds[0].Revents, fds[1].Revents = 0, 0
		if _, err := unix.Poll(fds, -1); err != nil {
			if err == unix.EINTR {
				continue
			}
			return fmt.Errorf("netsvc: serve: poll listener: %w", err)
		}
		if fds[1].Revents != 0 {
			return errWoken
		}
		ev := fds[0].Revents
		if ev&unix.POLLNVAL != 0 {
			return fmt.Errorf("netsvc: serve: listener %d is not an open descriptor", l.listener)
		}
		if ev&unix.POLLIN == 0 {
			if ev&(unix.POLLHUP|unix.POLLERR) != 0 {
				return nil // every task under the filter has exited
			}
			continue
		}
		// A blocking RECV does not wake when the container exits, which
		// is why it only follows POLLIN. If the call vanished meanwhile
		// (its thread killed) RECV says ENOENT rather than block.
		switch e := recvNotif(l.listener, &n); e {
		case 0:
		case unix.ENOENT:
			continue
		default:
			return fmt.Errorf("netsvc: serve: receive notification: %w", e)
		}
		l.serve(&n)
	}
}

// result is how a handler answers a call.
type result struct {
	val int64
	err error // nil, an errno, a denial, a failure, or errGone
	// answered says the call was answered already (ADDFD with
	// SECCOMP_ADDFD_FLAG_SEND).
	answered bool
	// cont lets the call through to the kernel as made: only for calls
	// whose arguments no one can change in between (see local_linux.go).
	cont bool
	// later, if set, finishes the call on another goroutine (a send that
	// has to wait for buffer space).
	later func() result
	// after runs once the call is answered (SIGPIPE for a send on a
	// broken stream, as the kernel raises it).
	after func()
}

// performed answers with the kernel's own result of the service's action.
func performed(val int, e error) result {
	if e != nil {
		if en, ok := e.(unix.Errno); ok {
			return result{err: performedErr{en}}
		}
		return result{err: e}
	}
	return result{val: int64(val)}
}

// performedErr is an error the kernel returned for the service's action on
// the container's behalf (counted as Allowed: the call was let through).
type performedErr struct{ e unix.Errno }

func (p performedErr) Error() string { return p.e.Error() }

func (l *loop) serve(n *seccompNotif) {
	l.stats.Served.Add(1)
	if l.srv.Offline {
		l.offline(n)
		return
	}
	c := &call{l: l, id: n.ID, nr: n.Data.Nr, tid: int(n.Pid), args: n.Data.Args, pidfd: -1, kind: callKind(n)}
	var r result
	local := false
	if n.Data.Arch != nativeArch {
		r = result{err: deny(enosys, "foreign system-call ABI")}
	} else if r, local = l.localCall(c); !local {
		switch n.Data.Nr {
		case unix.SYS_SOCKET:
			r = l.socket(c)
		case unix.SYS_BIND:
			r = l.bind(c)
		case unix.SYS_LISTEN:
			r = l.listen(c)
		case unix.SYS_CONNECT:
			r = l.connect(c)
		case unix.SYS_SENDTO:
			r = l.sendto(c)
		case unix.SYS_SENDMSG:
			r = l.sendmsg(c)
		case unix.SYS_SENDMMSG:
			r = l.sendmmsg(c)
		default:
			// The filter trapped a call this service does not serve:
			// answer as the kernel does when no one listens.
			r = result{err: deny(enosys, "system call not served")}
		}
	}
	if r.later != nil {
		l.workers.Add(1)
		go func() {
			defer l.workers.Done()
			l.finish(c, r.later())
		}()
		return
	}
	l.finish(c, r)
}

// offline answers a call of a container without network authority.
func (l *loop) offline(n *seccompNotif) {
	var e unix.Errno
	outcome := OutcomeAllowed
	if n.Data.Arch == nativeArch && n.Data.Nr == unix.SYS_SOCKET && int32(n.Data.Args[0]) != afUnix {
		l.stats.Denied.Add(1)
		outcome = OutcomeDenied
		l.report.denied("socket", denial{e: eacces, why: "the container holds no network grant", allow: "--egress DEST or -p [HOSTPORT:]PORT"})
		e = sendResp(l.listener, n.ID, 0, eacces)
	} else {
		l.stats.Allowed.Add(1)
		e = sendContinue(l.listener, n.ID)
	}
	if e == unix.ENOENT {
		l.stats.Gone.Add(1)
		outcome = OutcomeGone
	}
	l.tally.Add(callKind(n), outcome)
}

// callKind is the index in Calls of the trapped call n.
func callKind(n *seccompNotif) int {
	if n.Data.Arch != nativeArch {
		return len(Calls) - 1
	}
	switch n.Data.Nr {
	case unix.SYS_SOCKET:
		return 0
	case unix.SYS_BIND:
		return 1
	case unix.SYS_LISTEN:
		return 2
	case unix.SYS_CONNECT:
		return 3
	case unix.SYS_SENDTO:
		return 4
	case unix.SYS_SENDMSG:
		return 5
	case unix.SYS_SENDMMSG:
		return 6
	}
	return len(Calls) - 1
}

// finish answers the call with r, counts it and releases it.
func (l *loop) finish(c *call, r result) {
	defer c.release()
	outcome := OutcomeAllowed
	defer func() { l.tally.Add(c.kind, outcome) }()
	if r.cont {
		l.stats.Allowed.Add(1)
		if sendContinue(l.listener, c.id) == unix.ENOENT {
			l.stats.Gone.Add(1)
			outcome = OutcomeGone
		}
		return
	}
	var e errno
	switch err := r.err.(type) {
	case nil:
		l.stats.Allowed.Add(1)
	case performedErr:
		l.stats.Allowed.Add(1)
		e = errno(err.e)
	case errno:
		l.stats.Invalid.Add(1)
		outcome = OutcomeInvalid
		e = err
	case denial:
		l.stats.Denied.Add(1)
		outcome = OutcomeDenied
		e = err.e
		l.log.Debug("netsvc: refused", "call", callName(c.nr), "tid", c.tid, "reason", err.why, "errno", err.e.Error())
		l.report.denied(callName(c.nr), err)
	case failure:
		l.stats.Failed.Add(1)
		outcome = OutcomeFailed
		e = err.e
		l.log.Warn("netsvc: service failure", "call", callName(c.nr), "tid", c.tid, "err", err.err, "answer", err.e.Error())
	default:
		if err == errGone {
			l.stats.Gone.Add(1)
			outcome = OutcomeGone
			return
		}
		l.stats.Failed.Add(1)
		outcome = OutcomeFailed
		e = eacces
		l.log.Warn("netsvc: service failure", "call", callName(c.nr), "tid", c.tid, "err", err)
	}
	if !r.answered {
		switch sendResp(l.listener, c.id, r.val, e) {
		case 0:
		case unix.ENOENT:
			l.stats.Gone.Add(1)
			outcome = OutcomeGone
			return
		default:
			l.stats.Failed.Add(1)
			outcome = OutcomeFailed
			return
		}
	}
	if r.after != nil {
		r.after()
	}
}

func callName(nr int32) string {
	switch nr {
	case unix.SYS_SOCKET:
		return "socket"
	case unix.SYS_BIND:
		return "bind"
	case unix.SYS_LISTEN:
		return "listen"
	case unix.SYS_CONNECT:
		return "connect"
	case unix.SYS_SENDTO:
		return "sendto"
	case unix.SYS_SENDMSG:
		return "sendmsg"
	case unix.SYS_SENDMMSG:
		return "sendmmsg"
	}
	return fmt.Sprintf("syscall %d", nr)
}

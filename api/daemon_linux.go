package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Files of the daemon in the state root.
const (
	SocketName = "oak.sock"    // the API's unix socket
	LockName   = "daemon.lock" // flock'ed by the daemon, holds its pid
	LogName    = "daemon.log"  // where a daemon the CLI started writes its log
)

// watchRemoval returns a channel closed when one of the named files of
// dir (the daemon's lock, its socket) is removed or renamed, or dir
// itself. A daemon whose lock file is gone no longer keeps a second one
// out, and one whose socket is gone is out of reach: either way it stops
// rather than linger (the end of a test's or a benchmark's temporary
// root, which removes the files before the directory).
func watchRemoval(dir string, names ...string) (<-chan struct{}, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", dir, err)
	}
	mask := uint32(unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF)
	if _, err := unix.InotifyAddWatch(fd, dir, mask); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("watch %s: %w", dir, err)
	}
	gone := make(chan struct{})
	go func() {
		defer unix.Close(fd)
		defer close(gone)
		buf := make([]byte, 64<<10)
		for {
			n, err := unix.Read(fd, buf)
			if err == unix.EINTR {
				continue
			}
			if err != nil || n <= 0 {
				return
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				name := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
				off += unix.SizeofInotifyEvent + int(ev.Len)
				if ev.Mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_IGNORED) != 0 ||
					slices.Contains(names, strings.TrimRight(string(name), "\x00")) {
					return
				}
			}
		}
	}()
	return gone, nil
}

// ShutdownGrace bounds how long a stopping daemon waits for requests in
// flight (a create, a stop's grace period) before it closes their
// connections. Streams (logs -f, wait) are ended at once.
const ShutdownGrace = 30 * time.Second

// ErrLocked is the cause of Lock's error when another daemon serves the
// root; the message names its pid.
var ErrLocked = errors.New("another oak daemon serves this state root")

// Lock takes root's daemon lock, without waiting, and writes this
// process's pid into it. The lock is held until the file is closed (or
// the process ends, however it ends).
func Lock(root string) (*os.File, error) {
	path := filepath.Join(root, LockName)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("daemon lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			if pid, _ := LockHolder(root); pid > 0 {
				return nil, fmt.Errorf("daemon lock %s: %w (pid %d)", path, ErrLocked, pid)
			}
			return nil, fmt.Errorf("daemon lock %s: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("daemon lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("daemon lock %s: %w", path, err)
	}
	return f, nil
}

// LockHolder reports whether a daemon holds root's lock, and its pid (0
// in the moment between its taking the lock and writing the pid).
func LockHolder(root string) (pid int, held bool) {
	path := filepath.Join(root, LockName)
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	// Held iff a shared lock cannot be had.
	if err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err == nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return 0, false
	}
	b := make([]byte, 32)
	n, _ := f.Read(b)
	pid, err = strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil || pid <= 0 {
		return 0, true
	}
	return pid, true
}

// Listen returns the API's listener: the socket systemd passed (socket
// activation: LISTEN_PID is this process and LISTEN_FDS at least 1, the
// first at fd 3), or a new unix socket ROOT/oak.sock of mode 0600, made
// under the daemon lock (so a socket file left by a dead daemon is
// replaced). activated says which.
func Listen(root string) (l net.Listener, activated bool, err error) {
	if pid, _ := strconv.Atoi(os.Getenv("LISTEN_PID")); pid == os.Getpid() {
		n, _ := strconv.Atoi(os.Getenv("LISTEN_FDS"))
		os.Unsetenv("LISTEN_PID")
		os.Unsetenv("LISTEN_FDS")
		os.Unsetenv("LISTEN_FDNAMES")
		if n < 1 {
			return nil, false, fmt.Errorf("socket activation: LISTEN_FDS=%q passes no socket", os.Getenv("LISTEN_FDS"))
		}
		f := os.NewFile(3, "LISTEN_FD_3")
		syscall.CloseOnExec(3)
		l, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return nil, false, fmt.Errorf("socket activation: fd 3: %w", err)
		}
		return l, true, nil
	}
	path := filepath.Join(root, SocketName)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, false, fmt.Errorf("listen %s: %w", path, err)
	}
	// The socket is made 0600 from the start (umask), not chmod'ed after:
	// nobody else may connect in between. The umask is the process's; the
	// daemon sets it while starting, before it makes anything else.
	old := syscall.Umask(0o177)
	l, err = listenUnix(path)
	syscall.Umask(old)
	if err != nil {
		return nil, false, err
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false) // Serve removes it, once
	return l, false, nil
}

// Config is how a daemon runs.
type Config struct {
	Root string
	Log  *slog.Logger
	// Ready, if set, is told "ready\n" once the daemon answers, or the
	// error that stopped it starting, and then closed.
	Ready *os.File
	// Pool is how many standby supervisors with a prepared sandbox the
	// daemon keeps for foreground runs (pool_linux.go); 0 keeps none, and
	// each foreground run then gets a supervisor started for it.
	Pool int
}

// Serve runs the daemon for eng until ctx ends (oak daemon cancels it on
// SIGTERM or SIGINT), then shuts down gracefully: it stops accepting,
// ends streams, lets other requests in flight finish for up to
// ShutdownGrace, and releases the socket and the lock. Containers keep
// running: they belong to their supervisors.
func Serve(ctx context.Context, eng Engine, cfg Config) (err error) {
	report := func(msg string) {
		if cfg.Ready != nil {
			cfg.Ready.WriteString(msg)
			cfg.Ready.Close()
			cfg.Ready = nil
		}
	}
	defer func() {
		if err != nil {
			report(oneLine(err.Error()) + "\n")
		}
	}()
	lock, err := Lock(cfg.Root)
	if err != nil {
		return err
	}
	defer lock.Close()
	l, activated, err := Listen(cfg.Root)
	if err != nil {
		return err
	}
	if !activated {
		defer os.Remove(filepath.Join(cfg.Root, SocketName))
	}
	defer keepWarm(eng)() // function.go: the functions' warm sandboxes, while this daemon holds the root
	// The host's capability core, built from the records and kept in
	// step with them while this daemon serves the root
	// (engine/hostcore_linux.go). Built beside the first requests, not
	// before them: it reads every record, as ps does, and an operation
	// that needs it first builds it itself, under the root's lock.
	// Records it cannot build it from (a factory record edited by hand)
	// refuse the operations that need it, as without a daemon, not the
	// daemon.
	if ce, ok := eng.(coreEngine); ok {
		go func() {
			if err := ce.HoldCore(); err != nil {
				cfg.Log.Warn("daemon: host core", "error", err)
			}
		}()
	}
	srv := NewServer(eng, cfg.Log)
	streams, endStreams := context.WithCancel(context.Background())
	defer endStreams()
	tl, err := listenTenants(cfg.Root, cfg.Log)
	if err != nil {
		return err
	}
	defer os.Remove(TenantSocket(cfg.Root))
	// After the listeners: making them changes the process's umask for a
	// moment, which a standby started meanwhile would keep.
	if srv.pool, err = newPool(cfg.Root, cfg.Pool, cfg.Log); err != nil {
		return err
	}
	defer srv.pool.close() // after the requests: the ready standbys destroy their sandboxes
	hs := &http.Server{Handler: srv, BaseContext: func(net.Listener) context.Context { return streams },
		// Every request is authorized by its peer's uid (auth.go), and
		// invocations are fair among peers (function.go).
		ConnContext:       peerContext,
		ReadHeaderTimeout: 10 * time.Second,
		// A client that keeps its connection open between requests does
		// not hold a descriptor of the daemon for longer than this.
		IdleTimeout: 2 * time.Minute,
		ErrorLog:    slog.NewLogLogger(cfg.Log.Handler(), slog.LevelWarn)}
	watched := []string{LockName}
	if !activated {
		watched = append(watched, SocketName)
	}
	gone, werr := watchRemoval(cfg.Root, watched...)
	if werr != nil {
		cfg.Log.Warn("daemon: cannot watch the state root; it will not notice its removal", "error", werr)
	}
	// Ready from the first request: the lock is held and the root open.
	srv.SetReady()
	served := make(chan error, 2)
	go func() { served <- hs.Serve(l) }()
	go func() { served <- hs.Serve(tl) }()
	cfg.Log.Info("daemon ready", "root", cfg.Root, "socket", l.Addr().String(), "socket_activated", activated, "pid", os.Getpid())
	report("ready\n")
	if sw, ok := eng.(nameSweeper); ok {
		go func() {
			if n, err := sw.SweepNames(); err != nil {
				cfg.Log.Warn("daemon: sweep of stale name reservations", "error", err)
			} else if n > 0 {
				cfg.Log.Info("daemon: stale name reservations removed", "count", n)
			}
		}()
	}
	select {
	case err := <-served:
		return fmt.Errorf("daemon: serve: %w", err)
	case <-ctx.Done():
	case <-gone:
		cfg.Log.Info("daemon: its lock file or socket was removed", "root", cfg.Root)
	}
	cfg.Log.Info("daemon shutting down", "grace", ShutdownGrace)
	srv.ready.Store(false)
	endStreams()
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		cfg.Log.Warn("daemon: requests still in flight closed", "error", err)
		hs.Close()
	}
	cfg.Log.Info("daemon stopped")
	return nil
}

// nameSweeper removes the name reservations a crash left without a
// record (*engine.Engine has it): a daemon starting after a crash does it
// once, in the background.
type nameSweeper interface {
	SweepNames() (int, error)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

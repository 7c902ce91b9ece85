package api

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startServe runs Serve on a fake engine in root until the returned stop
// is called; it returns once the daemon reported ready.
func startServe(t *testing.T, root string, eng Engine) (stop func() error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, eng, Config{Root: root, Log: quietLog(), Ready: w}) }()
	msg, _ := io.ReadAll(r)
	r.Close()
	if string(msg) != "ready\n" {
		cancel()
		t.Fatalf("daemon reported %q, want ready", msg)
	}
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(ShutdownGrace + 5*time.Second):
			t.Fatal("daemon did not stop")
		}
		return nil
	}
	t.Cleanup(func() { stop() })
	return stop
}

// TestOneDaemonPerRoot: a second daemon of a root is refused, naming the
// first one's pid; once the first stops, the lock is free.
func TestOneDaemonPerRoot(t *testing.T) {
	root := t.TempDir()
	stop := startServe(t, root, &fakeEngine{})
	if pid, held := LockHolder(root); !held || pid != os.Getpid() {
		t.Errorf("lock holder %d %v, want this process %d", pid, held, os.Getpid())
	}
	err := Serve(context.Background(), &fakeEngine{}, Config{Root: root, Log: quietLog()})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("second daemon: %v, want ErrLocked naming pid %d", err, os.Getpid())
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if pid, ok := LockHolder(root); ok {
		t.Errorf("lock still held by %d after shutdown", pid)
	}
	if _, err := os.Lstat(filepath.Join(root, SocketName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
	l, err := Lock(root)
	if err != nil {
		t.Fatalf("lock after shutdown: %v", err)
	}
	l.Close()
}

// TestSocketIsPrivate: the socket is root's alone, from the moment it
// exists.
func TestSocketIsPrivate(t *testing.T) {
	root := t.TempDir()
	startServe(t, root, &fakeEngine{})
	fi, err := os.Lstat(filepath.Join(root, SocketName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want a socket of 0600", fi.Mode())
	}
}

// TestShutdownEndsStreams: a wait in flight when the daemon stops ends
// with 503, and the daemon stops without waiting out its grace period.
func TestShutdownEndsStreams(t *testing.T) {
	root := t.TempDir()
	eng := &fakeEngine{waiting: make(chan struct{})}
	stop := startServe(t, root, eng)
	c := NewClient(root)
	waited := make(chan error, 1)
	go func() {
		_, err := c.Wait(context.Background(), "web") // the fake's wait lasts until its context ends
		waited <- err
	}()
	<-eng.waiting
	t0 := time.Now()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d >= ShutdownGrace {
		t.Errorf("shutdown took %v: the wait held it", d)
	}
	var ae *Error
	if err := <-waited; !errors.As(err, &ae) || ae.Status != 503 {
		t.Errorf("wait across shutdown: %v, want 503", err)
	}
}

// TestSocketActivation runs a daemon in a child process that is handed a
// listening socket as systemd does (fd 3, LISTEN_FDS=1, LISTEN_PID its
// pid): it serves that socket and makes none of its own.
func TestSocketActivation(t *testing.T) {
	if os.Getenv("OAK_TEST_ACTIVATED") == "1" {
		activatedChild()
		return
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o700); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "activation.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	lf, err := l.(*net.UnixListener).File()
	l.Close()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSocketActivation$")
	cmd.Env = append(os.Environ(), "OAK_TEST_ACTIVATED=1", "OAK_TEST_ROOT="+root, "LISTEN_FDS=1")
	cmd.ExtraFiles = []*os.File{lf}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lf.Close()
	defer cmd.Process.Kill()
	tr := newClient(root, func() (net.Conn, error) { return net.Dial("unix", sock) })
	var pingErr error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		// The socket is listening from the start: a connection waits in
		// its backlog until the child serves it.
		if pingErr = tr.Ping(context.Background()); pingErr == nil {
			break
		}
	}
	if pingErr != nil {
		t.Fatalf("no answer on the passed socket: %v", pingErr)
	}
	if _, err := os.Lstat(filepath.Join(root, SocketName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an activated daemon made its own socket: %v", err)
	}
	if pid, ok := LockHolder(root); !ok || pid != cmd.Process.Pid {
		t.Errorf("lock holder %d %v, want the child %d", pid, ok, cmd.Process.Pid)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("activated daemon after SIGTERM: %v", err)
	}
}

// activatedChild is the daemon of TestSocketActivation: it sets
// LISTEN_PID to itself, as systemd does between fork and exec.
func activatedChild() {
	os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := Serve(ctx, &fakeEngine{}, Config{Root: os.Getenv("OAK_TEST_ROOT"), Log: quietLog()}); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	os.Exit(0)
}

// TestStopsWhenRootRemoved: a daemon whose state root is removed stops by
// itself (a test's or a benchmark's temporary root leaves no daemon).
func TestStopsWhenRootRemoved(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o700); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- Serve(context.Background(), &fakeEngine{}, Config{Root: root, Log: quietLog(), Ready: w})
	}()
	if msg, _ := io.ReadAll(r); string(msg) != "ready\n" {
		t.Fatalf("daemon reported %q", msg)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("daemon after its root was removed: %v", err)
		}
	case <-time.After(ShutdownGrace):
		t.Fatal("daemon still serving a removed root")
	}
}

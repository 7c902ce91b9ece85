package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/oak-engine/oak/api"
	"github.com/oak-engine/oak/engine"
)

// backend is what the container verbs that go through the daemon (run -d,
// ps, inspect, stop, start, restart, kill, wait, rm, logs, grants,
// revoke) ask for. The daemon's client has it, and so does the engine
// run in-process (OAK_NO_DAEMON=1, --no-daemon): both answer from the
// same records, with the same errors.
type backend interface {
	RunDetached(opts engine.RunOptions) (string, error)
	// ListContainers lists every container that passes filters, newest first.
	ListContainers(filters []string) ([]*engine.ContainerInfo, error)
	InspectContainer(ref string) (*engine.ContainerInfo, error)
	Start(ref string) error
	Stop(ref string, sig syscall.Signal, timeout time.Duration) (int, error)
	Restart(ref string, sig syscall.Signal, timeout time.Duration) error
	Kill(ref string, sig syscall.Signal) error
	Wait(ctx context.Context, ref string) (int, error)
	Remove(ref string, force bool) error
	Logs(ctx context.Context, ref string, opts engine.LogsOptions, stdout, stderr io.Writer) error
	Exec(ref string, opts engine.ExecOptions, stdin, stdout, stderr *os.File, sigs <-chan os.Signal) (int, error)
	// Attach connects in and out to the terminal of a -dt container
	// until the detach keys (docker's syntax) or its end: see
	// engine.Engine.Attach.
	Attach(ref string, in io.Reader, out io.Writer, size func() (rows, cols uint16), winch <-chan os.Signal, keys string) (code int, detached bool, err error)
	Grants(ref string) ([]string, error)
	Revoke(ref, grant string) error
}

// noDaemon is --no-daemon.
var noDaemon bool

func addDaemonFlags(f *pflag.FlagSet) {
	f.BoolVar(&noDaemon, "no-daemon", false, "run the engine in this process instead of asking the daemon (env OAK_NO_DAEMON=1)")
}

// daemonWanted says whether the verbs go through the daemon.
func daemonWanted() bool {
	v := os.Getenv("OAK_NO_DAEMON")
	return !noDaemon && (v == "" || v == "0" || v == "false")
}

// openBackend is the daemon of root (started if none answers), or the
// engine in this process when the daemon is not wanted.
func openBackend(root string) (backend, error) {
	if asTenant() {
		return openTenantBackend(root)
	}
	e, err := engine.New(root) // makes the root, as a first in-process verb would
	if err != nil {
		return nil, err
	}
	if !daemonWanted() {
		return localBackend{e}, nil
	}
	c := api.NewClient(e.Root)
	if err := ensureDaemon(c, e.Root); err != nil {
		return nil, err
	}
	return clientBackend{c}, nil
}

// asTenant says whether this process reaches the daemon as a tenant: any
// uid but root's, and anyone presenting a tenant's token (docs/tenants.md).
func asTenant() bool { return os.Geteuid() != 0 || tokenPath() != "" }

// openTenantBackend is the daemon of root on its tenants' socket. A
// tenant neither reads the state root (it is root's, 0700) nor starts a
// daemon: the daemon holds the host's authority, so it runs as root, and
// root starts it (oak daemon, a service unit, or any oak verb run as
// root). See openTenantClient.
func openTenantBackend(root string) (backend, error) {
	c, err := openTenantClient(root)
	if err != nil {
		return nil, err
	}
	return clientBackend{c}, nil
}

// Bounds of ensureDaemon: how long a daemon answering the socket may take
// to say it is ready, and how long a starting one may take.
const (
	pingTimeout  = 5 * time.Second
	startTimeout = 30 * time.Second
)

// ensureDaemon makes sure a daemon answers for root: the one on the
// socket, or one it starts, detached in a session of its own, with its log
// in ROOT/daemon.log. When another oak started one at the same moment, it
// waits for that one.
func ensureDaemon(c *api.Client, root string) error {
	ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
	err := c.Ping(ctx)
	cancel()
	if err == nil {
		return nil
	}
	var ce *api.ConnError
	var ae *api.Error
	msg := "it is shutting down"
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable:
		// A daemon answers but is stopping: wait for it, then start one.
	case !errors.As(err, &ce):
		return err // a daemon answered, with an error
	default:
		if msg, err = spawnDaemon(root); err != nil {
			return err
		}
		if msg == "ready" {
			return nil
		}
		if !strings.Contains(msg, api.ErrLocked.Error()) {
			return fmt.Errorf("start daemon for %s: %s (log: %s)", root, msg, filepath.Join(root, api.LogName))
		}
	}
	// Another daemon holds the root: it is starting, or stopping.
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
		err := c.Ping(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("daemon for %s: %s, and it does not answer: %w", root, msg, err)
		}
		if _, held := api.LockHolder(root); !held {
			return ensureDaemon(c, root) // it went away: start one
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// spawnDaemon starts `oak daemon` for root and returns what it reported
// on its ready descriptor: "ready", or why it did not start.
func spawnDaemon(root string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("start daemon: %w", err)
	}
	logf, err := os.OpenFile(filepath.Join(root, api.LogName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return "", fmt.Errorf("start daemon: %w", err)
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return "", fmt.Errorf("start daemon: %w", err)
	}
	defer r.Close()
	// Its log goes to the file from the start (what it says before it
	// has opened the file, too, on its stderr), and is rotated by the
	// daemon once it holds the root.
	cmd := exec.Command(self, "--root", root, "daemon", "--ready-fd", "3", "--log-file", filepath.Join(root, api.LogName))
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return "", fmt.Errorf("start daemon: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait() // reaps it if it fails; a running daemon outlives this process
		close(exited)
	}()
	r.SetReadDeadline(time.Now().Add(startTimeout))
	b, err := io.ReadAll(r)
	msg := strings.TrimSpace(string(b))
	if msg == "" {
		select {
		case <-exited:
			return "", fmt.Errorf("start daemon for %s: it exited (%v) without a word; see %s", root, cmd.ProcessState, filepath.Join(root, api.LogName))
		default:
		}
		return "", fmt.Errorf("start daemon for %s: no answer within %v (%v); see %s", root, startTimeout, err, filepath.Join(root, api.LogName))
	}
	return msg, nil
}

// clientBackend is the daemon's client.
type clientBackend struct{ c *api.Client }

func (b clientBackend) RunDetached(o engine.RunOptions) (string, error) {
	o.Image = absImage(o.Image)
	return b.c.Run(context.Background(), o)
}

// absImage is image as the daemon, which has no working directory of
// ours, must be given it: a root file system directory by its absolute
// path.
func absImage(image string) string {
	if image != engine.DemoImage {
		if fi, err := os.Stat(image); err == nil && fi.IsDir() {
			if abs, err := filepath.Abs(image); err == nil {
				return abs
			}
		}
	}
	return image
}

func (b clientBackend) ListContainers(filters []string) ([]*engine.ContainerInfo, error) {
	return b.c.Containers(context.Background(), true, filters)
}

func (b clientBackend) InspectContainer(ref string) (*engine.ContainerInfo, error) {
	return b.c.Container(context.Background(), ref)
}
func (b clientBackend) Start(ref string) error { return b.c.Start(context.Background(), ref) }
func (b clientBackend) Stop(ref string, sig syscall.Signal, t time.Duration) (int, error) {
	return b.c.Stop(context.Background(), ref, sig, t)
}
func (b clientBackend) Restart(ref string, sig syscall.Signal, t time.Duration) error {
	return b.c.Restart(context.Background(), ref, sig, t)
}
func (b clientBackend) Kill(ref string, sig syscall.Signal) error {
	return b.c.Kill(context.Background(), ref, sig)
}
func (b clientBackend) Wait(ctx context.Context, ref string) (int, error) {
	return b.c.Wait(ctx, ref)
}
func (b clientBackend) Remove(ref string, force bool) error {
	return b.c.Remove(context.Background(), ref, force)
}
func (b clientBackend) Logs(ctx context.Context, ref string, o engine.LogsOptions, stdout, stderr io.Writer) error {
	return b.c.Logs(ctx, ref, o, stdout, stderr)
}
func (b clientBackend) Exec(ref string, o engine.ExecOptions, stdin, stdout, stderr *os.File, sigs <-chan os.Signal) (int, error) {
	req := api.ExecRequest{Cmd: o.Args, Env: o.Env, WorkingDir: o.Workdir, User: o.User, Tty: o.TTY}
	return b.c.Exec(context.Background(), ref, req, stdin, stdout, stderr, sigs)
}
func (b clientBackend) Attach(ref string, in io.Reader, out io.Writer, size func() (uint16, uint16), winch <-chan os.Signal, keys string) (int, bool, error) {
	return b.c.Attach(context.Background(), ref, keys, in, out, size, winch)
}
func (b clientBackend) Grants(ref string) ([]string, error) {
	return b.c.Grants(context.Background(), ref)
}
func (b clientBackend) Revoke(ref, grant string) error {
	return b.c.Revoke(context.Background(), ref, grant)
}

// localBackend is the engine in this process.
type localBackend struct{ *engine.Engine }

func (b localBackend) Attach(ref string, in io.Reader, out io.Writer, size func() (uint16, uint16), winch <-chan os.Signal, keys string) (int, bool, error) {
	seq, err := engine.ParseDetachKeys(keys)
	if err != nil {
		return 0, false, err
	}
	return b.Engine.Attach(ref, in, out, size, winch, seq)
}

func (b localBackend) ListContainers(filters []string) ([]*engine.ContainerInfo, error) {
	f, err := engine.ParseFilter(filters)
	if err != nil {
		return nil, err
	}
	return b.Engine.ListContainers(f)
}

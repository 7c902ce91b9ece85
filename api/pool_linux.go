package api

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/oak-engine/oak/engine"
	"github.com/oak-engine/oak/internal/trace"
)

// StandbyCmd is the hidden oak command a standby supervisor runs as:
// oak --root ROOT _standby [--prepare], with the daemon's end of its
// control socket at fd 3.
const StandbyCmd = "_standby"

// DefaultPool is how many prepared standbys a daemon keeps (oak daemon
// --pool): enough for launches one after another, each taking one while
// the one it replaces is made; each idle one costs a small Go process and
// an empty sandbox.
const DefaultPool = 4

// pool is the daemon's standby supervisors (see engine.Standby): up to
// size of them ready, each with a prepared sandbox, refilled in the
// background as runs take them. A run that finds none ready gets a
// standby started for it without a prepared sandbox, through the same
// path: every foreground run is supervised by a standby, pooled or not.
//
// A standby holds its end of a socket pair with the daemon until it is
// handed a run; when that socket ends without one (the daemon stopped,
// or was killed), the standby destroys its sandbox and exits, leaving
// nothing behind.
type pool struct {
	exe  string
	root string
	size int
	log  *slog.Logger

	mu       sync.Mutex
	ready    []*standbyProc
	starting int
	closed   bool
	failures int       // fills that failed in a row
	retry    time.Time // no fill before this, after failures
	all      sync.WaitGroup
}

// standbyProc is a standby process as the daemon sees it.
type standbyProc struct {
	ctrl     *net.UnixConn
	pid      int
	prepared bool
}

func newPool(root string, size int, log *slog.Logger) (*pool, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("standby pool: %w", err)
	}
	p := &pool{exe: exe, root: root, size: size, log: log}
	p.fill()
	return p, nil
}

// fill starts standbys until ready and starting ones make size.
func (p *pool) fill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || time.Now().Before(p.retry) {
		return
	}
	for len(p.ready)+p.starting < p.size {
		p.starting++
		p.all.Add(1)
		go func() {
			defer p.all.Done()
			sb, err := p.spawn(true)
			p.mu.Lock()
			p.starting--
			switch {
			case err != nil:
				p.failures++
				// A host that cannot prepare sandboxes must not make
				// the daemon spin: wait longer after each failure.
				p.retry = time.Now().Add(min(time.Duration(p.failures)*100*time.Millisecond, 10*time.Second))
				p.mu.Unlock()
				p.log.Warn("standby pool: a prepared supervisor could not be made", "error", err)
				return
			case p.closed:
				p.mu.Unlock()
				sb.ctrl.Close() // it discards its sandbox and exits
				return
			}
			p.failures = 0
			p.ready = append(p.ready, sb)
			p.mu.Unlock()
		}()
	}
}

// take returns a standby for one run: a ready one of the pool, or a new
// one without a prepared sandbox when none is ready.
func (p *pool) take() (*standbyProc, error) {
	p.mu.Lock()
	if n := len(p.ready); n > 0 {
		sb := p.ready[n-1]
		p.ready = p.ready[:n-1]
		p.mu.Unlock()
		p.fill()
		return sb, nil
	}
	p.mu.Unlock()
	p.fill()
	return p.spawn(false)
}

// spawn starts a standby and returns once it has reserved its id block
// (and, with prepare, prepared its sandbox), or with why it could not.
func (p *pool) spawn(prepare bool) (*standbyProc, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("run: start supervisor: %w", err)
	}
	ours := os.NewFile(uintptr(fds[0]), "standby")
	theirs := os.NewFile(uintptr(fds[1]), "standby-ctrl")
	args := []string{"--root", p.root, StandbyCmd}
	if prepare {
		args = append(args, "--prepare")
	}
	cmd := exec.Command(p.exe, args...)
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr // the daemon's log
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	theirs.Close()
	if err != nil {
		ours.Close()
		return nil, fmt.Errorf("run: start supervisor: %w", err)
	}
	go cmd.Wait() // reaps it when it ends; it outlives a killed daemon
	fc, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		cmd.Process.Kill()
		return nil, fmt.Errorf("run: start supervisor: %w", err)
	}
	uc := fc.(*net.UnixConn)
	// One line: "ready", or why not.
	msg, err := bufio.NewReader(io1{uc}).ReadString('\n')
	msg = strings.TrimSpace(msg)
	if msg != standbyReady {
		uc.Close()
		if msg == "" {
			return nil, fmt.Errorf("run: the supervisor (pid %d) ended before it was ready: %v", cmd.Process.Pid, err)
		}
		return nil, errors.New(msg)
	}
	return &standbyProc{ctrl: uc, pid: cmd.Process.Pid, prepared: prepare}, nil
}

// io1 reads one byte at a time, so that the reader buffers nothing past
// the line it is asked for.
type io1 struct{ c net.Conn }

func (r io1) Read(b []byte) (int, error) { return r.c.Read(b[:min(len(b), 1)]) }

const standbyReady = "ready"

// hand gives sb the run h and its descriptors (connection, stdin, stdout,
// stderr); the daemon then lets go of sb, but for one line the standby
// sends on its control socket once the container's command executes
// ("launched") or could not be started, which launched is told of (for
// the launch metrics), in the background: nil, or why not.
func (sb *standbyProc) hand(h handoff, files []*os.File, launched func(error)) error {
	if err := sendHandoff(sb.ctrl, h, files); err != nil {
		sb.ctrl.Close()
		return fmt.Errorf("run: hand over to the supervisor (pid %d): %w", sb.pid, err)
	}
	go func() {
		defer sb.ctrl.Close()
		sb.ctrl.SetReadDeadline(time.Now().Add(launchReportWait))
		msg, err := bufio.NewReader(io1{sb.ctrl}).ReadString('\n')
		switch msg = strings.TrimSpace(msg); {
		case msg == standbyLaunched:
			launched(nil)
		case msg != "":
			launched(errors.New(msg))
		default:
			launched(fmt.Errorf("run: the supervisor (pid %d) did not report the launch: %v", sb.pid, err))
		}
	}()
	return nil
}

// standbyLaunched is a standby's word that its container's command
// executes; launchReportWait bounds the daemon's wait for it.
const (
	standbyLaunched  = "launched"
	launchReportWait = 5 * time.Minute
)

// close ends the pool: the ready standbys are told to go (their sockets
// closed), and close waits, up to a bound, until they have destroyed
// their sandboxes; standbys still starting go as they become ready.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	ready := p.ready
	p.ready = nil
	p.mu.Unlock()
	for _, sb := range ready {
		sb.ctrl.Close()
	}
	waited := make(chan struct{})
	go func() {
		p.all.Wait()
		close(waited)
	}()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, sb := range ready {
		for unix.Kill(sb.pid, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// ServeStandby is the body of a standby supervisor (oak _standby): it
// reserves an id block (and prepares a sandbox, with prepare), says so on
// ctrl, and waits for the daemon to hand it a foreground run, which it
// then serves to its end, talking to the client directly. A ctrl that
// ends without a run ends the standby: it discards what it holds.
func ServeStandby(e *engine.Engine, ctrl *os.File, prepare bool) error {
	syscall.CloseOnExec(int(ctrl.Fd()))
	fc, err := net.FileConn(ctrl)
	ctrl.Close()
	if err != nil {
		return fmt.Errorf("standby: control socket: %w", err)
	}
	uc := fc.(*net.UnixConn)
	defer uc.Close()
	sb, err := e.NewStandby(prepare)
	if err != nil {
		uc.Write([]byte(oneLine(err.Error()) + "\n"))
		return err
	}
	uc.Write([]byte(standbyReady + "\n"))
	h, files, err := recvHandoff(uc)
	if err != nil {
		sb.Discard()
		if errors.Is(err, errEOF) || errors.Is(err, os.ErrClosed) {
			return nil
		}
		return err
	}
	// The daemon counts the launch by one line: "launched", or why not.
	var once sync.Once
	launched := func(err error) {
		once.Do(func() {
			msg := standbyLaunched
			if err != nil {
				msg = oneLine(err.Error())
			}
			uc.Write([]byte(msg + "\n"))
			uc.Close()
		})
	}
	defer launched(errors.New("run: the container was not started"))
	client, err := net.FileConn(files[0])
	files[0].Close()
	stdio := files[1:]
	if err != nil {
		closeAll(stdio)
		sb.Discard()
		return fmt.Errorf("standby: client connection: %w", err)
	}
	defer client.Close()
	return serveRun(sb, h, client, stdio, launched)
}

// serveRun runs h's container on sb for the client on c; launched is
// told whether its command started.
func serveRun(sb *engine.Standby, h handoff, c net.Conn, stdio []*os.File, launched func(error)) error {
	if h.Trace {
		// The marks go where the client's own go, on one time line.
		unix.Dup3(int(stdio[2].Fd()), 2, 0)
		trace.Enable()
		trace.Mark("standby: handed the run")
	}
	var once sync.Once
	closeStdio := func() { once.Do(func() { closeAll(stdio) }) }
	defer closeStdio()
	sigs := make(chan os.Signal, 16)
	go func() {
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			var l runLine
			if json.Unmarshal(sc.Bytes(), &l) != nil || l.Signal <= 0 || l.Signal > 64 {
				continue
			}
			select {
			case sigs <- syscall.Signal(l.Signal):
			default:
			}
		}
		// The client is gone: a foreground container ends with its oak.
		sigs <- syscall.SIGKILL
	}()
	io := engine.Stdio{Stdin: stdio[0], Stdout: stdio[1], Stderr: stdio[2]}
	if h.Tty {
		io.Stdin, io.TTY = nil, stdio[0]
	}
	ex, err := sb.Run(h.Options, io, sigs, launched)
	if err != nil {
		launched(err) // failed before it tried
	}
	// The record is settled (written, or removed with --rm) before the
	// status goes out, as a foreground oak in-process returns after it:
	// the name is free and inspect shows the end once the caller has it.
	// The caller sees its output end with our copies, before the status.
	closeStdio()
	if h.Trace {
		// Nor the marks' copy of the caller's stderr: the caller's end
		// of it would wait for this process's exit.
		if null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil {
			unix.Dup3(int(null.Fd()), 2, 0)
			null.Close()
		}
	}
	l := runLine{ExitCode: &ex.Code, Id: ex.ID, OOMKilled: ex.OOMKilled, Memory: ex.Memory}
	if err != nil {
		_, code := classify(err, true)
		l = runLine{Error: err.Error(), Code: code}
	}
	b, _ := json.Marshal(l)
	c.Write(append(b, '\n'))
	sb.Release() // the container's mounts go now, after the status
	return nil
}

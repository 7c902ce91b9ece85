package engine

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/oak-engine/oak/sandbox"
)

// ExecOptions is a request to start a process in a running container.
type ExecOptions struct {
	Args    []string
	Env     []string // K=V, over the container's environment
	Workdir string   // "" means the container's working directory
	User    string   // NAME|UID[:GROUP|GID] in the image; "" means the container's user
	TTY     bool     // Stdin is a terminal for the process's controlling one
}

// execRequest is an exec as the supervisor gets it: everything resolved.
type execRequest struct {
	Args []string `json:"args"`
	Env  []string `json:"env"`
	Cwd  string   `json:"cwd"`
	UID  uint32   `json:"uid"`
	GID  uint32   `json:"gid"`
	TTY  bool     `json:"tty,omitempty"`
	// DropCaps (bit N: capability N) are capabilities of the container's
	// root this process does not get.
	DropCaps uint32 `json:"drop_caps,omitempty"`
	// KillOnClose kills the process when its connection closes before it
	// ended: the connection is the caller's only handle on it (oak-runtime
	// exec, whose proxy may be killed by SIGKILL).
	KillOnClose bool `json:"kill_on_close,omitempty"`
}

// Exec starts opts in the running container ref with stdin, stdout and
// stderr, forwards each signal from sigs to it, and returns its exit status
// once it ends. The process joins the container through its init (see
// sandbox.Process.Exec): it carries nothing of this process's but the three
// descriptors, which is why callers should pass pipes or a terminal of
// their own rather than a terminal of the host's.
func (e *Engine) Exec(ref string, opts ExecOptions, stdin, stdout, stderr *os.File, sigs <-chan os.Signal) (int, error) {
	if len(opts.Args) == 0 || opts.Args[0] == "" {
		return 0, errors.New("exec: no command")
	}
	c, err := e.Get(ref)
	if err != nil {
		return 0, err
	}
	if c.Status != StatusRunning {
		return 0, fmt.Errorf("exec %s: container is %s, not running", ref, c.Status)
	}
	spec, err := e.readSpec(c.ID)
	if err != nil {
		return 0, fmt.Errorf("exec %s: %w", ref, err)
	}
	req := execRequest{Args: opts.Args, Cwd: spec.Cwd, UID: spec.UID, GID: spec.GID, TTY: opts.TTY}
	if req.Env, err = containerEnv(spec.Env, opts.Env); err != nil {
		return 0, err
	}
	if opts.Workdir != "" {
		if !strings.HasPrefix(opts.Workdir, "/") {
			return 0, fmt.Errorf("invalid -w %q: must be an absolute path", opts.Workdir)
		}
		req.Cwd = filepath.Clean(opts.Workdir)
	}
	if opts.User != "" {
		if req.UID, req.GID, err = lookupUser(spec.Layers, opts.User); err != nil {
			return 0, fmt.Errorf("exec %s: %w", ref, err)
		}
	}
	path, closeDir, err := e.controlAddr(c.ID)
	if os.IsNotExist(err) {
		return 0, noSuchContainer(ref)
	}
	if err != nil {
		return 0, fmt.Errorf("exec %s: %w", ref, err)
	}
	defer closeDir()
	x, err := startExec(path, ref, &req, []*os.File{stdin, stdout, stderr})
	if err != nil {
		return 0, err
	}
	defer x.Close()
	return x.Wait(sigs)
}

// execConn is the caller's end of an exec connection to a container's
// supervisor (the control socket's exec request): the process's handle.
type execConn struct {
	ref  string // the container, for messages
	conn *net.UnixConn
	Pid  int // in the container's pid namespace
}

// startExec asks the supervisor listening on the unix socket addr to
// start req with files as its stdin, stdout, stderr and extra descriptors,
// and returns once the process runs, or with its failure (an
// *sandbox.ExecError when its command could not be executed).
func startExec(addr, ref string, req *execRequest, files []*os.File) (*execConn, error) {
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: addr, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("exec %s: %w", ref, err)
	}
	x := &execConn{ref: ref, conn: conn}
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	b, _ := json.Marshal(controlRequest{Exec: req})
	if _, _, err := conn.WriteMsgUnix(append(b, '\n'), unix.UnixRights(fds...), nil); err != nil {
		conn.Close()
		return nil, fmt.Errorf("exec %s: %w", ref, err)
	}
	// The first answer is read a byte at a time, so that nothing after it
	// is buffered here: the connection may go on in another process.
	var line []byte
	for {
		var c [1]byte
		n, err := conn.Read(c[:])
		if err != nil || n == 0 {
			conn.Close()
			return nil, fmt.Errorf("exec %s: no answer from its supervisor: %v", ref, err)
		}
		if c[0] == '\n' || len(line) > 64<<10 {
			break
		}
		line = append(line, c[0])
	}
	var rep controlReply
	if err := json.Unmarshal(line, &rep); err != nil {
		conn.Close()
		return nil, fmt.Errorf("exec %s: bad answer: %w", ref, err)
	}
	if rep.Error != "" {
		conn.Close()
		if rep.Errno != 0 {
			return nil, &sandbox.ExecError{Errno: syscall.Errno(rep.Errno), Msg: rep.Error}
		}
		return nil, fmt.Errorf("exec %s: %s", ref, rep.Error)
	}
	x.Pid = rep.Pid
	return x, nil
}

// File is a duplicate of the connection, to hand to another process.
func (x *execConn) File() (*os.File, error) { return x.conn.File() }

// Close drops the connection.
func (x *execConn) Close() error { return x.conn.Close() }

// Wait forwards each signal from sigs to the process and returns its exit
// status (128+N if signal N ended it) once it ends.
func (x *execConn) Wait(sigs <-chan os.Signal) (int, error) {
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case s := <-sigs:
				if sig, ok := s.(syscall.Signal); ok {
					b, _ := json.Marshal(controlRequest{Signal: int(sig)})
					x.conn.Write(append(b, '\n'))
				}
			case <-stop:
				return
			}
		}
	}()
	line, err := bufio.NewReader(x.conn).ReadBytes('\n')
	if err != nil {
		return 0, fmt.Errorf("exec %s: no answer from its supervisor: %w", x.ref, err)
	}
	var rep controlReply
	if err := json.Unmarshal(line, &rep); err != nil {
		return 0, fmt.Errorf("exec %s: bad answer: %w", x.ref, err)
	}
	if rep.Exit == nil {
		return 0, fmt.Errorf("exec %s: %s", x.ref, rep.Error)
	}
	return *rep.Exit, nil
}

// serveExec is the supervisor's half of an exec connection: it starts the
// process, answers with its pid, signals it on request and answers with its
// exit status.
func serveExec(c *net.UnixConn, p *sandbox.Process, req *execRequest, files []*os.File) {
	defer c.Close()
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	c.SetDeadline(time.Time{})
	if len(files) < 3 || len(files) > 3+sandbox.MaxExtraFiles {
		writeControl(c, controlReply{Error: fmt.Sprintf("exec: want stdin, stdout, stderr and at most %d more descriptors, got %d", sandbox.MaxExtraFiles, len(files))})
		return
	}
	x, err := p.Exec(sandbox.ExecSpec{Args: req.Args, Env: req.Env, Cwd: req.Cwd, UID: req.UID, GID: req.GID,
		TTY: req.TTY, Stdin: files[0], Stdout: files[1], Stderr: files[2], ExtraFiles: files[3:], DropCaps: req.DropCaps})
	var ee *sandbox.ExecError
	switch {
	case errors.As(err, &ee):
		writeControl(c, controlReply{Error: ee.Msg, Errno: int(ee.Errno)})
		return
	case err != nil:
		writeControl(c, controlReply{Error: oneLine(err.Error())})
		return
	}
	for _, f := range files {
		f.Close() // the process has them now
	}
	files = nil
	writeControl(c, controlReply{Pid: x.Pid})
	go func() {
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				if req.KillOnClose {
					// Its caller is gone, and with it the only handle on
					// the process (an exec'd process of oak-runtime whose
					// proxy was killed): end it too. After its end this
					// finds no process (init forgets it when reaped).
					x.Signal(syscall.SIGKILL)
				}
				return
			}
			var req controlRequest
			if json.Unmarshal(line, &req) == nil && req.Signal > 0 && req.Signal < 65 {
				x.Signal(syscall.Signal(req.Signal))
			}
		}
	}()
	code, err := x.Wait()
	if err != nil {
		writeControl(c, controlReply{Error: err.Error()})
		return
	}
	writeControl(c, controlReply{Exit: &code})
}

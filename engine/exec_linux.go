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
	raddr := &net.UnixAddr{Name: path, Net: "unix"}
	conn, err := net.DialUnix("unix", nil, raddr)
	if err != nil {
		return 0, fmt.Errorf("exec %s: %w", ref, err)
	}
	defer conn.Close()
	b, _ := json.Marshal(controlRequest{Exec: &req})
	rights := unix.UnixRights(int(stdin.Fd()), int(stdout.Fd()), int(stderr.Fd()))
	if _, _, err := conn.WriteMsgUnix(append(b, '\n'), rights, nil); err != nil {
		return 0, fmt.Errorf("exec %s: %w", ref, err)
	}
	r := bufio.NewReader(conn)
	read := func() (controlReply, error) {
		var rep controlReply
		line, err := r.ReadBytes('\n')
		if err != nil {
			return rep, fmt.Errorf("exec %s: no answer from its supervisor: %w", ref, err)
		}
		if err := json.Unmarshal(line, &rep); err != nil {
			return rep, fmt.Errorf("exec %s: bad answer: %w", ref, err)
		}
		return rep, nil
	}
	rep, err := read()
	if err != nil {
		return 0, err
	}
	if rep.Error != "" {
		if rep.Errno != 0 {
			return 0, &sandbox.ExecError{Errno: syscall.Errno(rep.Errno), Msg: rep.Error}
		}
		return 0, fmt.Errorf("exec %s: %s", ref, rep.Error)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case s := <-sigs:
				if sig, ok := s.(syscall.Signal); ok {
					b, _ := json.Marshal(controlRequest{Signal: int(sig)})
					conn.Write(append(b, '\n'))
				}
			case <-stop:
				return
			}
		}
	}()
	rep, err = read()
	if err != nil {
		return 0, err
	}
	if rep.Exit == nil {
		return 0, fmt.Errorf("exec %s: %s", ref, rep.Error)
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
	if len(files) != 3 {
		writeControl(c, controlReply{Error: fmt.Sprintf("exec: want stdin, stdout and stderr, got %d descriptors", len(files))})
		return
	}
	x, err := p.Exec(sandbox.ExecSpec{Args: req.Args, Env: req.Env, Cwd: req.Cwd, UID: req.UID, GID: req.GID,
		TTY: req.TTY, Stdin: files[0], Stdout: files[1], Stderr: files[2]})
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

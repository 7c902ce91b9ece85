package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/oak-engine/oak/engine"
)

// An exec (POST /v1/containers/{id}/exec) hands the daemon the process's
// stdin, stdout and stderr as descriptors, which HTTP cannot carry. The
// request asks to switch protocols (Upgrade: oak-stdio); the daemon
// answers 101 and the connection, a unix socket, then carries:
//
//	client → daemon: one message with the three descriptors (SCM_RIGHTS)
//	                 and one byte;
//	client → daemon: {"Signal":N} lines, each forwarded to the process;
//	daemon → client: one line at the end, {"ExitCode":N} or an ErrorBody.
//
// The process gets the caller's descriptors themselves, as with oak exec
// in-process: nothing of the daemon's.
const execUpgrade = "oak-stdio"

// ExecRequest is the body of an exec.
type ExecRequest struct {
	Cmd        []string
	Env        []string `json:",omitempty"` // KEY=VALUE over the container's environment
	WorkingDir string   `json:",omitempty"` // absolute; "" the container's
	User       string   `json:",omitempty"` // NAME|UID[:GROUP|GID]; "" the container's
	Tty        bool     `json:",omitempty"` // stdin is a terminal to make the process's controlling one
}

// execLine is a line on an exec connection after the switch.
type execLine struct {
	Signal   int    `json:",omitempty"`
	ExitCode *int   `json:",omitempty"`
	Error    string `json:"error,omitempty"`
	Code     string `json:"code,omitempty"`
}

func (s *Server) execContainer(w http.ResponseWriter, r *http.Request) error {
	if err := parseQuery(r.URL).err; err != nil {
		return err
	}
	req, err := decodeBody[ExecRequest](r.Body)
	if err != nil {
		return err
	}
	if len(req.Cmd) == 0 || req.Cmd[0] == "" {
		return &FieldError{"Cmd", "required"}
	}
	if r.Header.Get("Upgrade") != execUpgrade {
		return &FieldError{"Upgrade", "an exec switches to " + execUpgrade + " to be handed its descriptors"}
	}
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); !ok || a.Network() != "unix" {
		return &FieldError{"connection", "an exec is handed descriptors, which only the daemon's unix socket carries"}
	}
	if _, err := s.eng.InspectContainer(r.PathValue("id")); err != nil {
		return err // refused with a status, before the switch
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Time{}) // an exec lasts as long as its process
	if rec, ok := w.(*statusRecorder); ok {
		rec.status = http.StatusSwitchingProtocols
	}
	uc, ok := conn.(*net.UnixConn)
	if !ok || brw.Reader.Buffered() > 0 {
		// Not a unix socket after all, or a client that sent more before
		// the switch: nothing it sends can be trusted to be in step.
		return nil
	}
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + execUpgrade + "\r\n\r\n")
	if err := brw.Flush(); err != nil {
		return nil
	}
	answer := func(l execLine) {
		b, _ := json.Marshal(l)
		uc.Write(append(b, '\n'))
	}
	files, err := recvFiles(uc, 3)
	if err != nil {
		answer(execLine{Error: "exec: " + err.Error(), Code: CodeBadRequest})
		return nil
	}
	defer closeAll(files)
	sigs := make(chan os.Signal, 8)
	go forwardSignals(uc, sigs)
	opts := engine.ExecOptions{Args: req.Cmd, Env: req.Env, Workdir: req.WorkingDir, User: req.User, TTY: req.Tty}
	code, err := s.eng.Exec(r.PathValue("id"), opts, files[0], files[1], files[2], sigs)
	closeAll(files) // the caller sees its output end once the process's copies are gone
	if err != nil {
		_, c := classify(err, false)
		answer(execLine{Error: err.Error(), Code: c})
		return nil
	}
	answer(execLine{ExitCode: &code})
	return nil
}

// forwardSignals passes the signal lines of an exec connection on until
// it closes.
func forwardSignals(c net.Conn, sigs chan<- os.Signal) {
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		var l execLine
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Signal <= 0 || l.Signal > 64 {
			continue
		}
		select {
		case sigs <- syscall.Signal(l.Signal):
		default: // the process is not taking them; drop, as a full signal queue does
		}
	}
}

// recvFiles reads one message carrying exactly n descriptors.
func recvFiles(c *net.UnixConn, n int) ([]*os.File, error) {
	oob := make([]byte, unix.CmsgSpace(4*n))
	buf := make([]byte, 1)
	_, oobn, flags, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("receive descriptors: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, fmt.Errorf("receive descriptors: %w", err)
	}
	var fds []int
	for _, m := range msgs {
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		fds = append(fds, got...)
	}
	if flags&unix.MSG_CTRUNC != 0 || len(fds) != n {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("receive descriptors: got %d, want %d", len(fds), n)
	}
	files := make([]*os.File, n)
	for i, fd := range fds {
		unix.CloseOnExec(fd)
		files[i] = os.NewFile(uintptr(fd), "exec-stdio")
	}
	return files, nil
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// Exec runs a process in a running container with stdin, stdout and
// stderr (which the daemon is handed), forwards each signal from sigs,
// and returns its exit status, as engine.Exec does in-process.
func (c *Client) Exec(ctx context.Context, ref string, req ExecRequest, stdin, stdout, stderr *os.File, sigs <-chan os.Signal) (int, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return 0, err
	}
	conn, err := c.dial()
	if err != nil {
		return 0, &ConnError{Root: c.root, Err: err}
	}
	defer conn.Close()
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return 0, errors.New("exec: the daemon is not on a unix socket")
	}
	hr, err := http.NewRequestWithContext(ctx, "POST", "http://oak/v1/containers/"+url.PathEscape(ref)+"/exec", bytesReader(body))
	if err != nil {
		return 0, err
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Connection", "Upgrade")
	hr.Header.Set("Upgrade", execUpgrade)
	c.authorize(hr)
	if err := hr.Write(uc); err != nil {
		return 0, &ConnError{Root: c.root, Err: err}
	}
	br := bufio.NewReader(uc)
	resp, err := http.ReadResponse(br, hr)
	if err != nil {
		return 0, &ConnError{Root: c.root, Err: err}
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		return 0, errorAnswer(resp, "POST", "exec")
	}
	if err := passStdio(uc, stdin, stdout, stderr); err != nil {
		return 0, fmt.Errorf("exec: %w", err)
	}
	defer sendSignals(uc, sigs)()
	line, err := br.ReadBytes('\n')
	if err != nil {
		return 0, fmt.Errorf("exec: the daemon ended the exec without its status: %w", err)
	}
	var l execLine
	if err := json.Unmarshal(line, &l); err != nil {
		return 0, fmt.Errorf("exec: bad answer %q: %w", line, err)
	}
	if l.ExitCode == nil {
		return 0, &Error{Status: http.StatusOK, Code: l.Code, Message: l.Error}
	}
	return *l.ExitCode, nil
}

// passStdio sends stdin, stdout and stderr over uc (SCM_RIGHTS), as the
// exec and run upgrades take them.
func passStdio(uc *net.UnixConn, stdin, stdout, stderr *os.File) error {
	rights := unix.UnixRights(int(stdin.Fd()), int(stdout.Fd()), int(stderr.Fd()))
	if _, _, err := uc.WriteMsgUnix([]byte{0}, rights, nil); err != nil {
		return fmt.Errorf("pass descriptors: %w", err)
	}
	return nil
}

// sendSignals writes each signal from sigs to uc as a line
// {"Signal":N}, which the exec and run upgrades read alike, until the
// function it returns is called.
func sendSignals(uc *net.UnixConn, sigs <-chan os.Signal) (stop func()) {
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				if n, ok := s.(syscall.Signal); ok {
					b, _ := json.Marshal(execLine{Signal: int(n)})
					uc.Write(append(b, '\n'))
				}
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}

package api

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/oak-engine/oak/engine"
	"github.com/oak-engine/oak/internal/trace"
)

// A foreground run (POST /v1/containers/run, oak run without -d) is
// served by a supervisor of its own, not by the daemon: the daemon must
// not be the parent of a container that is to outlive it. The request
// switches protocols as an exec does (Upgrade: oak-stdio); the daemon
// answers 101 and the connection, a unix socket, then carries:
//
//	client → daemon:     one message with three descriptors (SCM_RIGHTS):
//	                     stdin (a terminal's slave with Tty), stdout,
//	                     stderr; and one byte;
//	daemon → supervisor: the request, the connection and the three
//	                     descriptors (a standby of its pool, see
//	                     pool_linux.go); the daemon then lets go of them
//	                     and is out of the data path;
//	client → supervisor: {"Signal":N} lines, each forwarded to the
//	                     container; the connection's end (the client
//	                     died) kills the container, as the death of a
//	                     foreground oak does;
//	supervisor → client: one line at the end, {"ExitCode":N,...} or an
//	                     ErrorBody, sent once the container's output is
//	                     drained and before its record is written or
//	                     removed (--rm).
//
// The container gets the caller's descriptors themselves, as a
// foreground oak run in-process hands its own.

// traceHeader asks the supervisor of a foreground run to trace it (see
// internal/trace).
const traceHeader = "Oak-Trace"

// runLine is a line on a foreground run's connection after the switch.
type runLine struct {
	Signal    int    `json:",omitempty"`
	ExitCode  *int   `json:",omitempty"`
	Id        string `json:",omitempty"`
	OOMKilled bool   `json:",omitempty"`
	Memory    int64  `json:",omitempty"` // the limit an OOM kill hit
	Error     string `json:"error,omitempty"`
	Code      string `json:"code,omitempty"`
}

// handoff is what the daemon hands a standby with the connection and the
// three descriptors.
type handoff struct {
	Options engine.RunOptions
	Tty     bool // stdin is a terminal's slave, to become the command's
	// Trace: the client traces (OAK_TRACE=1); the supervisor then marks
	// its phases on the client's stderr.
	Trace bool `json:",omitempty"`
}

func (s *Server) runAttached(w http.ResponseWriter, r *http.Request) error {
	if err := parseQuery(r.URL).err; err != nil {
		return err
	}
	req, err := decodeBody[RunRequest](r.Body)
	if err != nil {
		return err
	}
	tty := req.Tty
	req.Tty = false // here: the caller's terminal, not one held for attach
	opts, err := runOptions(r, req)
	if err != nil {
		return err
	}
	if r.Header.Get("Upgrade") != execUpgrade {
		return &FieldError{"Upgrade", "a foreground run switches to " + execUpgrade + " to be handed its descriptors"}
	}
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); !ok || a.Network() != "unix" {
		return &FieldError{"connection", "a foreground run is handed descriptors, which only the daemon's unix socket carries"}
	}
	if s.pool == nil {
		return errors.New("run: this daemon has no supervisors for foreground runs")
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Time{})
	if rec, ok := w.(*statusRecorder); ok {
		rec.status = http.StatusSwitchingProtocols
	}
	uc, ok := conn.(*net.UnixConn)
	if !ok || brw.Reader.Buffered() > 0 {
		return nil // see execContainer
	}
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + execUpgrade + "\r\n\r\n")
	if err := brw.Flush(); err != nil {
		return nil
	}
	answer := func(err error) {
		_, c := classify(err, true)
		b, _ := json.Marshal(runLine{Error: err.Error(), Code: c})
		uc.Write(append(b, '\n'))
	}
	files, err := recvFiles(uc, 3)
	if err != nil {
		answer(fmt.Errorf("run: %w", err))
		return nil
	}
	defer closeAll(files)
	cf, err := uc.File()
	if err != nil {
		answer(fmt.Errorf("run: %w", err))
		return nil
	}
	defer cf.Close()
	start := time.Now()
	sb, err := s.pool.take()
	if err != nil {
		s.metrics.launched(0, err)
		answer(err)
		return nil
	}
	launched := func(err error) { s.metrics.launched(time.Since(start), err) }
	if err := sb.hand(handoff{Options: opts, Tty: tty, Trace: r.Header.Get(traceHeader) == "1"}, append([]*os.File{cf}, files...), launched); err != nil {
		s.metrics.launched(0, err)
		answer(err)
		return nil
	}
	s.log.Info("foreground run handed to a supervisor", "image", opts.Image, "pid", sb.pid, "prepared", sb.prepared)
	return nil
}

// sendHandoff writes h to c with files: a big-endian length with the
// descriptors, then the JSON.
func sendHandoff(c *net.UnixConn, h handoff, files []*os.File) error {
	body, err := json.Marshal(h)
	if err != nil {
		return err
	}
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(body)))
	if _, _, err := c.WriteMsgUnix(n[:], unix.UnixRights(fds...), nil); err != nil {
		return err
	}
	_, err = c.Write(body)
	return err
}

// maxHandoff bounds a handoff's JSON: a request body is at most 1 MiB.
const maxHandoff = 4 << 20

// recvHandoff reads what sendHandoff wrote: the handoff and its four
// descriptors (connection, stdin, stdout, stderr). io.EOF: the daemon
// closed the socket without a handoff.
func recvHandoff(c *net.UnixConn) (handoff, []*os.File, error) {
	var h handoff
	var n [4]byte
	oob := make([]byte, unix.CmsgSpace(4*4))
	k, oobn, flags, _, err := c.ReadMsgUnix(n[:], oob)
	if k == 0 && (err == nil || errors.Is(err, io.EOF)) {
		return h, nil, errEOF
	}
	if err != nil {
		return h, nil, err
	}
	var fds []int
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, m := range msgs {
			if got, err := unix.ParseUnixRights(&m); err == nil {
				fds = append(fds, got...)
			}
		}
	}
	files := make([]*os.File, len(fds))
	for i, fd := range fds {
		unix.CloseOnExec(fd)
		files[i] = os.NewFile(uintptr(fd), "run-stdio")
	}
	fail := func(err error) (handoff, []*os.File, error) {
		closeAll(files)
		return h, nil, err
	}
	if flags&unix.MSG_CTRUNC != 0 || len(files) != 4 {
		return fail(fmt.Errorf("handoff: got %d descriptors, want 4", len(files)))
	}
	if k < 4 {
		if _, err := io.ReadFull(c, n[k:]); err != nil {
			return fail(fmt.Errorf("handoff: %w", err))
		}
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > maxHandoff {
		return fail(fmt.Errorf("handoff: %d bytes: at most %d", size, maxHandoff))
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(c, body); err != nil {
		return fail(fmt.Errorf("handoff: %w", err))
	}
	if err := json.Unmarshal(body, &h); err != nil {
		return fail(fmt.Errorf("handoff: %w", err))
	}
	return h, files, nil
}

var errEOF = errors.New("closed without a handoff")

// RunAttached runs a container in the foreground through the daemon, as
// engine.Run does in-process: the container gets stdin (with tty, a
// terminal's slave that becomes its stdin, stdout, stderr and
// controlling terminal), stdout and stderr themselves; each signal from
// sigs is forwarded; it returns how the container ended. o.TTY must be
// unset (that is a detached run's terminal).
func (c *Client) RunAttached(ctx context.Context, o engine.RunOptions, tty bool, stdin, stdout, stderr *os.File, sigs <-chan os.Signal) (engine.Exit, error) {
	req := NewRunRequest(o)
	req.Tty = tty
	body, err := json.Marshal(req)
	if err != nil {
		return engine.Exit{}, err
	}
	trace.Mark("cli: dial")
	conn, err := c.dial()
	if err != nil {
		return engine.Exit{}, &ConnError{Root: c.root, Err: err}
	}
	defer conn.Close()
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return engine.Exit{}, errors.New("run: the daemon is not on a unix socket")
	}
	hr, err := http.NewRequestWithContext(ctx, "POST", "http://oak/v1/containers/run", bytesReader(body))
	if err != nil {
		return engine.Exit{}, err
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Connection", "Upgrade")
	hr.Header.Set("Upgrade", execUpgrade)
	c.authorize(hr) // a tenant's token: the run is then the tenant's
	if trace.On() {
		hr.Header.Set(traceHeader, "1")
	}
	if err := hr.Write(uc); err != nil {
		return engine.Exit{}, &ConnError{Root: c.root, Err: err}
	}
	br := bufio.NewReader(uc)
	resp, err := http.ReadResponse(br, hr)
	if err != nil {
		return engine.Exit{}, &ConnError{Root: c.root, Err: err}
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		return engine.Exit{}, errorAnswer(resp, "POST", "run")
	}
	trace.Mark("cli: switched")
	if err := passStdio(uc, stdin, stdout, stderr); err != nil {
		return engine.Exit{}, fmt.Errorf("run: %w", err)
	}
	defer sendSignals(uc, sigs)()
	line, err := br.ReadBytes('\n')
	if err != nil {
		return engine.Exit{}, fmt.Errorf("run: the container's supervisor ended without its status: %w", err)
	}
	var l runLine
	if err := json.Unmarshal(line, &l); err != nil {
		return engine.Exit{}, fmt.Errorf("run: bad answer %q: %w", line, err)
	}
	if l.ExitCode == nil {
		return engine.Exit{}, &Error{Status: http.StatusOK, Code: l.Code, Message: l.Error}
	}
	return engine.Exit{ID: l.Id, Code: *l.ExitCode, OOMKilled: l.OOMKilled, Memory: l.Memory}, nil
}

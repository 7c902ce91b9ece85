package api

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/oak-engine/oak/engine"
)

// An attach (POST /v1/containers/{id}/attach, oak attach) connects the
// caller to the terminal of a running container started with -dt, the
// one its supervisor holds (engine/attach_linux.go). Unlike an exec, the
// daemon itself reads what the caller types (it watches for the detach
// keys), so the caller's descriptors are not handed over: a descriptor
// the daemon read from would go on taking the caller's keystrokes after
// the attach ended. The request asks to switch protocols (Upgrade:
// oak-attach); after the daemon's 101 the connection, any stream,
// carries frames as the log stream's (stream.go: one byte naming the
// stream, three zero bytes, a big-endian uint32 length, the payload):
//
//	client → daemon: streamStdin frames, what the caller types (an empty
//	                 one is the end of its input); streamResize frames,
//	                 the window's rows and columns, two big-endian uint16;
//	daemon → client: streamStdout frames, the terminal's output; at the
//	                 end one streamStatus frame, {"ExitCode":N} once the
//	                 container ended or {"Detached":true} after the detach
//	                 keys, or a streamError frame with an ErrorBody.
//
// The detach keys never reach the container. A client that goes away
// is let go; the container runs on.
const attachUpgrade = "oak-attach"

// Frames of an attach connection, beside stream.go's.
const (
	streamStdin  = 0 // client → daemon
	streamStatus = 4 // daemon → client: the last frame
	streamResize = 5 // client → daemon
)

// AttachRequest is the body of an attach.
type AttachRequest struct {
	// DetachKeys are the keys that detach, in docker's syntax
	// (ctrl-<letter> or single characters, comma-separated); empty:
	// ctrl-p,ctrl-q.
	DetachKeys string `json:",omitempty"`
	// Rows and Cols are the caller's window size; 0 leaves the
	// terminal's as it is.
	Rows uint16 `json:",omitempty"`
	Cols uint16 `json:",omitempty"`
}

// attachEnd is the payload of the streamStatus frame.
type attachEnd struct {
	ExitCode *int `json:",omitempty"`
	Detached bool `json:",omitempty"`
}

// AttachEngine is what the server needs of the engine to serve attach;
// *engine.Engine has it (see engine.Engine.Attach).
type AttachEngine interface {
	Attach(ref string, in io.Reader, out io.Writer, size func() (rows, cols uint16), winch <-chan os.Signal, keys []byte) (code int, detached bool, err error)
}

func (s *Server) attachContainer(w http.ResponseWriter, r *http.Request) error {
	if err := parseQuery(r.URL).err; err != nil {
		return err
	}
	req, err := decodeBody[AttachRequest](r.Body)
	if err != nil {
		return err
	}
	if req.DetachKeys == "" {
		req.DetachKeys = engine.DefaultDetachKeys
	}
	keys, err := engine.ParseDetachKeys(req.DetachKeys)
	if err != nil {
		return &FieldError{"DetachKeys", err.Error()}
	}
	if r.Header.Get("Upgrade") != attachUpgrade {
		return &FieldError{"Upgrade", "an attach switches to " + attachUpgrade + " to carry the terminal"}
	}
	ae, ok := s.eng.(AttachEngine)
	if !ok {
		return errors.New("attach: this daemon's engine attaches to no terminal")
	}
	// Refused with a status before the switch, in the engine's words.
	id := r.PathValue("id")
	ci, err := s.eng.InspectContainer(id)
	if err != nil {
		return err
	}
	if !ci.State.Running {
		return fmt.Errorf("attach %s: container is %s, not running", id, ci.State.Status)
	}
	if !ci.Config.Tty {
		return fmt.Errorf("attach %s: %w", id, engine.ErrNoTerminal)
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Time{}) // an attach lasts as long as the caller stays
	if rec, ok := w.(*statusRecorder); ok {
		rec.status = http.StatusSwitchingProtocols
	}
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + attachUpgrade + "\r\n\r\n")
	if err := brw.Flush(); err != nil {
		return nil
	}
	mu := new(sync.Mutex)
	out := frameWriter{mu: mu, w: conn, stream: streamStdout}
	in, stdin := io.Pipe()
	t := &termSize{rows: req.Rows, cols: req.Cols}
	winch := make(chan os.Signal, 1)
	go func() {
		err := readAttachFrames(brw.Reader, stdin, t, winch)
		close(winch)
		if err != nil {
			// The caller went away, or broke the framing: let it go as
			// one that detached (the engine lets the terminal go when
			// it cannot write to the caller).
			conn.Close()
		}
		stdin.CloseWithError(io.EOF)
	}()
	code, detached, err := ae.Attach(id, in, out, t.get, winch, keys)
	in.Close()
	if err != nil {
		_, c := classify(err, false)
		b, _ := json.Marshal(ErrorBody{Error: err.Error(), Code: c})
		frameWriter{mu: mu, w: conn, stream: streamError}.Write(b)
		return nil
	}
	end := attachEnd{Detached: detached}
	if !detached {
		end.ExitCode = &code
	}
	b, _ := json.Marshal(end)
	frameWriter{mu: mu, w: conn, stream: streamStatus}.Write(b)
	s.log.Info("attach ended", "container", id, "detached", detached, "code", code)
	return nil
}

// termSize is the caller's window size, as its last resize frame gave it.
type termSize struct {
	mu         sync.Mutex
	rows, cols uint16
}

func (t *termSize) get() (uint16, uint16) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.rows, t.cols
}

// readAttachFrames reads a caller's frames until its input ends (nil) or
// the connection fails or breaks the framing: what it types goes to
// stdin, each window size to t with a wake-up on winch.
func readAttachFrames(r io.Reader, stdin io.Writer, t *termSize, winch chan<- os.Signal) error {
	var h [frameHeader]byte
	for {
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return fmt.Errorf("attach stream: %w", err)
		}
		n := binary.BigEndian.Uint32(h[4:])
		if h[1]|h[2]|h[3] != 0 || n > maxFrame {
			return errBadFrame
		}
		switch h[0] {
		case streamStdin:
			if n == 0 {
				return nil
			}
			if _, err := io.CopyN(stdin, r, int64(n)); err != nil {
				return fmt.Errorf("attach stream: %w", err)
			}
		case streamResize:
			if n != 4 {
				return errBadFrame
			}
			var b [4]byte
			if _, err := io.ReadFull(r, b[:]); err != nil {
				return fmt.Errorf("attach stream: %w", err)
			}
			t.mu.Lock()
			t.rows, t.cols = binary.BigEndian.Uint16(b[:2]), binary.BigEndian.Uint16(b[2:])
			t.mu.Unlock()
			select {
			case winch <- syscall.SIGWINCH:
			default: // one pending wake-up reads the latest size
			}
		default:
			return errBadFrame
		}
	}
}

// Attach connects to the terminal of the running container ref through
// the daemon, as engine.Attach does in-process: what comes from in goes
// to it (the daemon holds the detach keys back), its output goes to out;
// size gives the window size now and after each signal on winch. It
// returns detached=true after the detach keys, else once the container
// ended, with its exit status. in is read until the attach ends; a read
// in progress then is left behind (for oak attach, whose process ends).
func (c *Client) Attach(ctx context.Context, ref, detachKeys string, in io.Reader, out io.Writer, size func() (rows, cols uint16), winch <-chan os.Signal) (code int, detached bool, err error) {
	rows, cols := size()
	body, err := json.Marshal(AttachRequest{DetachKeys: detachKeys, Rows: rows, Cols: cols})
	if err != nil {
		return 0, false, err
	}
	conn, err := c.dial()
	if err != nil {
		return 0, false, &ConnError{Root: c.root, Err: err}
	}
	defer conn.Close()
	hr, err := http.NewRequestWithContext(ctx, "POST", "http://oak/v1/containers/"+url.PathEscape(ref)+"/attach", bytesReader(body))
	if err != nil {
		return 0, false, err
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Connection", "Upgrade")
	hr.Header.Set("Upgrade", attachUpgrade)
	c.authorize(hr)
	if err := hr.Write(conn); err != nil {
		return 0, false, &ConnError{Root: c.root, Err: err}
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, hr)
	if err != nil {
		return 0, false, &ConnError{Root: c.root, Err: err}
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		return 0, false, errorAnswer(resp, "POST", "attach")
	}
	mu := new(sync.Mutex)
	done := make(chan struct{})
	defer close(done)
	go func() {
		w := frameWriter{mu: mu, w: conn, stream: streamStdin}
		buf := make([]byte, 32<<10)
		for {
			n, err := in.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				w.frame(nil) // the end of the input
				return
			}
		}
	}()
	go func() {
		w := frameWriter{mu: mu, w: conn, stream: streamResize}
		for {
			select {
			case <-winch:
				rows, cols := size()
				var b [4]byte
				binary.BigEndian.PutUint16(b[:2], rows)
				binary.BigEndian.PutUint16(b[2:], cols)
				w.frame(b[:])
			case <-done:
				return
			}
		}
	}()
	var h [frameHeader]byte
	for {
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return 0, false, fmt.Errorf("attach %s: the daemon ended the attach without its status: %w", ref, err)
		}
		n := binary.BigEndian.Uint32(h[4:])
		if h[1]|h[2]|h[3] != 0 || n > maxFrame {
			return 0, false, fmt.Errorf("attach %s: %w", ref, errBadFrame)
		}
		if h[0] == streamStdout {
			if _, err := io.CopyN(out, br, int64(n)); err != nil {
				return 0, false, fmt.Errorf("attach %s: %w", ref, err)
			}
			continue
		}
		msg := make([]byte, n)
		if _, err := io.ReadFull(br, msg); err != nil {
			return 0, false, fmt.Errorf("attach %s: %w", ref, err)
		}
		switch h[0] {
		case streamError:
			var e ErrorBody
			if err := json.Unmarshal(msg, &e); err != nil {
				return 0, false, fmt.Errorf("attach %s: bad error frame: %w", ref, err)
			}
			return 0, false, &Error{Status: http.StatusOK, Code: e.Code, Message: e.Error}
		case streamStatus:
			var end attachEnd
			if err := json.Unmarshal(msg, &end); err != nil || (end.ExitCode == nil && !end.Detached) {
				return 0, false, fmt.Errorf("attach %s: bad status %q", ref, msg)
			}
			if end.Detached {
				return 0, true, nil
			}
			return *end.ExitCode, false, nil
		default:
			return 0, false, fmt.Errorf("attach %s: %w", ref, errBadFrame)
		}
	}
}

package api

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oak-engine/oak/engine"
)

// attachEngine is fakeEngine whose "web" runs with a terminal, "plain"
// runs without one, "old" has exited and "broken" fails once attached.
// Its terminal says the window size it is given, echoes what it reads
// in capitals, and reports each new size; the first detach key detaches,
// the end of the input ends the container with status 7.
type attachEngine struct{ *fakeEngine }

func (f *attachEngine) InspectContainer(ref string) (*engine.ContainerInfo, error) {
	running := engine.ContainerState{Status: engine.StatusRunning, Running: true}
	ci := &engine.ContainerInfo{Id: ref, Name: ref, State: running}
	switch ref {
	case "web", "broken":
		ci.Config.Tty = true
	case "plain":
	case "old":
		ci.State = engine.ContainerState{Status: engine.StatusExited}
	default:
		return nil, fmt.Errorf("%w: %s", engine.ErrNoSuchContainer, ref)
	}
	return ci, nil
}

func (f *attachEngine) Attach(ref string, in io.Reader, out io.Writer, size func() (uint16, uint16), winch <-chan os.Signal, keys []byte) (int, bool, error) {
	if ref == "broken" {
		return 0, false, fmt.Errorf("attach %s: its supervisor went away", ref)
	}
	rows, cols := size()
	fmt.Fprintf(out, "[size %d %d]", rows, cols)
	go func() {
		for range winch {
			rows, cols := size()
			fmt.Fprintf(out, "[size %d %d]", rows, cols)
		}
	}()
	buf := make([]byte, 64)
	for {
		n, err := in.Read(buf)
		if i := bytes.IndexByte(buf[:n], keys[0]); i >= 0 {
			out.Write(bytes.ToUpper(buf[:i]))
			return 0, true, nil
		}
		out.Write(bytes.ToUpper(buf[:n]))
		if err != nil {
			return 7, false, nil
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a poller.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until b holds want.
func waitFor(t *testing.T, b *syncBuffer, want string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(b.String(), want); {
		if time.Now().After(deadline) {
			t.Fatalf("terminal output %q, want %q in it", b.String(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestAttachCarriesTheTerminal attaches through a daemon on its socket:
// what the caller types reaches the terminal and its output comes back,
// the window size goes with the request and with each change, the
// detach keys detach, and the end of the input ends it with the
// container's status.
func TestAttachCarriesTheTerminal(t *testing.T) {
	root := t.TempDir()
	startServe(t, root, &attachEngine{&fakeEngine{}})
	c := NewClient(root)
	var mu sync.Mutex
	rows, cols := uint16(24), uint16(80)
	size := func() (uint16, uint16) {
		mu.Lock()
		defer mu.Unlock()
		return rows, cols
	}
	type result struct {
		code     int
		detached bool
		err      error
	}
	attach := func(keys string) (*io.PipeWriter, *syncBuffer, chan<- os.Signal, <-chan result) {
		in, typed := io.Pipe()
		out := &syncBuffer{}
		winch := make(chan os.Signal, 1)
		done := make(chan result, 1)
		go func() {
			code, detached, err := c.Attach(context.Background(), "web", keys, in, out, size, winch)
			done <- result{code, detached, err}
		}()
		return typed, out, winch, done
	}

	typed, out, winch, done := attach("")
	waitFor(t, out, "[size 24 80]")
	typed.Write([]byte("hello"))
	waitFor(t, out, "HELLO")
	mu.Lock()
	rows, cols = 50, 132
	mu.Unlock()
	winch <- os.Interrupt // any signal: the caller's SIGWINCH
	waitFor(t, out, "[size 50 132]")
	typed.Write([]byte("bye\x10")) // ctrl-p, the first of the default keys
	r := <-done
	if r.err != nil || !r.detached {
		t.Errorf("after the detach keys: %+v, want detached", r)
	}
	waitFor(t, out, "BYE")

	typed, out, _, done = attach("x,y")
	waitFor(t, out, "[size")
	typed.Write([]byte("abc"))
	waitFor(t, out, "ABC")
	typed.Close()
	if r := <-done; r.err != nil || r.detached || r.code != 7 {
		t.Errorf("after the end of the input: %+v, want status 7", r)
	}

	// Keys go to the engine as bytes.
	typed, out, _, done = attach("q")
	typed.Write([]byte("abq"))
	if r := <-done; r.err != nil || !r.detached || !strings.HasSuffix(out.String(), "AB") {
		t.Errorf("detach keys q: %+v, output %q", r, out.String())
	}
}

// TestAttachErrors: what is refused before the switch comes with a
// status, in the engine's words; an engine error after it as an error
// frame; both unwrap as in-process.
func TestAttachErrors(t *testing.T) {
	root := t.TempDir()
	startServe(t, root, &attachEngine{&fakeEngine{}})
	c := NewClient(root)
	size := func() (uint16, uint16) { return 0, 0 }
	for _, tc := range []struct {
		ref, keys string
		status    int
		want      string
	}{
		{"nosuch", "", 404, "no such container: nosuch"},
		{"old", "", 409, "attach old: container is exited, not running"},
		{"plain", "", 409, "attach plain: " + engine.ErrNoTerminal.Error()},
		{"web", "ctrl-", 400, "DetachKeys"},
		{"broken", "", 200, "attach broken: its supervisor went away"},
	} {
		_, _, err := c.Attach(context.Background(), tc.ref, tc.keys, strings.NewReader(""), io.Discard, size, nil)
		var ae *Error
		if !errors.As(err, &ae) || ae.Status != tc.status || !strings.Contains(ae.Message, tc.want) {
			t.Errorf("attach %s keys %q: %v, want %d %q", tc.ref, tc.keys, err, tc.status, tc.want)
		}
	}
	_, _, err := c.Attach(context.Background(), "nosuch", "", strings.NewReader(""), io.Discard, size, nil)
	if !errors.Is(err, engine.ErrNoSuchContainer) {
		t.Errorf("attach to a missing container: %v, want it to unwrap to ErrNoSuchContainer", err)
	}
}

// FuzzReadAttachFrames: whatever a caller sends, the daemon's reader
// ends (nil at the end of the input, an error otherwise) without a
// panic, passes on exactly the stdin frames' payloads, and keeps only
// sizes from well-formed resize frames.
func FuzzReadAttachFrames(f *testing.F) {
	frame := func(stream byte, p []byte) []byte {
		h := []byte{stream, 0, 0, 0, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(h[4:], uint32(len(p)))
		return append(h, p...)
	}
	f.Add(append(frame(streamStdin, []byte("hi")), frame(streamStdin, nil)...))
	f.Add(append(frame(streamResize, []byte{0, 24, 0, 80}), frame(streamStdin, []byte("x"))...))
	f.Add(frame(streamResize, []byte{1, 2, 3}))
	f.Add(frame(streamStdout, []byte("wrong way")))
	f.Add([]byte{0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		var stdin bytes.Buffer
		ts := &termSize{}
		winch := make(chan os.Signal, 1)
		err := readAttachFrames(bytes.NewReader(b), &stdin, ts, winch)
		// Recompute what a correct reader passes on.
		var want bytes.Buffer
		ended := false
		for rest := b; len(rest) >= frameHeader; {
			n := binary.BigEndian.Uint32(rest[4:8])
			if rest[1]|rest[2]|rest[3] != 0 || n > maxFrame || uint64(len(rest)-frameHeader) < uint64(n) {
				break
			}
			p := rest[frameHeader : frameHeader+int(n)]
			if rest[0] == streamStdin && n == 0 {
				ended = true
				break
			}
			if rest[0] == streamStdin {
				want.Write(p)
			} else if rest[0] != streamResize || n != 4 {
				break
			}
			rest = rest[frameHeader+int(n):]
		}
		if ended != (err == nil) {
			t.Errorf("%x: error %v, the input's end seen: %v", b, err, ended)
		}
		if !bytes.Equal(stdin.Bytes(), want.Bytes()) && ended {
			t.Errorf("%x: stdin %q, want %q", b, stdin.Bytes(), want.Bytes())
		}
		if !bytes.HasPrefix(want.Bytes(), stdin.Bytes()) && !bytes.HasPrefix(stdin.Bytes(), want.Bytes()) {
			t.Errorf("%x: stdin %q, want %q", b, stdin.Bytes(), want.Bytes())
		}
	})
}

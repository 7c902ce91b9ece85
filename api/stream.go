package api

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// A log stream (GET /v1/containers/{id}/logs) carries a container's
// stdout and stderr over one response as frames: one byte naming the
// stream, three zero bytes, the payload's length as a big-endian uint32,
// the payload. A frame of streamError ends the response with the error
// that cut it short (the status line was sent before it happened). A
// framed invocation's answer (function.go) is the same, ended by one
// frame of streamResult (an InvokeResult) or streamError.
const (
	streamStdout = 1
	streamStderr = 2
	streamError  = 3
	streamResult = 4

	frameHeader = 8
	// maxFrame bounds a frame's payload on reading: writers send what one
	// read of the log gave, far less.
	maxFrame = 1 << 20
)

// StreamContentType is the media type of a framed log stream.
const StreamContentType = "application/vnd.oak.stream"

// frameWriter writes frames of one stream onto a shared response,
// flushing each, so that a follower sees output as it is written.
type frameWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	flush  func()
	stream byte
}

func (f frameWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), maxFrame)]
		if err := f.frame(chunk); err != nil {
			return n, err
		}
		n += len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}

func (f frameWriter) frame(p []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var h [frameHeader]byte
	h[0] = f.stream
	binary.BigEndian.PutUint32(h[4:], uint32(len(p)))
	if _, err := f.w.Write(h[:]); err != nil {
		return err
	}
	if _, err := f.w.Write(p); err != nil {
		return err
	}
	if f.flush != nil {
		f.flush()
	}
	return nil
}

// newFrameWriters returns the stdout, stderr and error writers of one
// response.
func newFrameWriters(w http.ResponseWriter) (stdout, stderr, errw frameWriter) {
	mu := new(sync.Mutex)
	var flush func()
	if fl, ok := w.(http.Flusher); ok {
		flush = fl.Flush
	}
	return frameWriter{mu, w, flush, streamStdout}, frameWriter{mu, w, flush, streamStderr},
		frameWriter{mu, w, flush, streamError}
}

// errBadFrame is a stream that breaks the framing.
var errBadFrame = errors.New("log stream: bad frame")

// readFrames copies a framed stream to stdout and stderr until it ends,
// and returns the error a streamError frame carried, if any.
func readFrames(r io.Reader, stdout, stderr io.Writer) error {
	return readFramesTo(r, stdout, stderr, nil)
}

// readFramesTo is readFrames that also takes a streamResult frame: its
// payload is handed to result, and ends the stream. Without result it is
// a bad frame.
func readFramesTo(r io.Reader, stdout, stderr io.Writer, result func([]byte) error) error {
	var h [frameHeader]byte
	for {
		if _, err := io.ReadFull(r, h[:]); err != nil {
			if err == io.EOF {
				return nil
			}
			return fmt.Errorf("log stream: %w", err)
		}
		n := binary.BigEndian.Uint32(h[4:])
		if h[1]|h[2]|h[3] != 0 || n > maxFrame {
			return errBadFrame
		}
		var dst io.Writer
		switch h[0] {
		case streamStdout:
			dst = stdout
		case streamStderr:
			dst = stderr
		case streamError:
			msg := make([]byte, n)
			if _, err := io.ReadFull(r, msg); err != nil {
				return fmt.Errorf("log stream: %w", err)
			}
			var e ErrorBody
			if err := json.Unmarshal(msg, &e); err != nil {
				return fmt.Errorf("log stream: error frame: %w", err)
			}
			return &Error{Status: http.StatusOK, Code: e.Code, Message: e.Error}
		case streamResult:
			if result == nil {
				return errBadFrame
			}
			msg := make([]byte, n)
			if _, err := io.ReadFull(r, msg); err != nil {
				return fmt.Errorf("log stream: %w", err)
			}
			return result(msg)
		default:
			return errBadFrame
		}
		if _, err := io.CopyN(dst, r, int64(n)); err != nil {
			return fmt.Errorf("log stream: %w", err)
		}
	}
}

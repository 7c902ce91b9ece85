package engine

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// A container's log is a sequence of frames: one byte naming the stream, a
// little-endian uint32 length, then that many bytes of output, exactly as the
// container wrote them (binary-safe, in the order the supervisor read them).
const (
	streamStdout byte = 1
	streamStderr byte = 2
	maxFrame          = 1 << 20
)

type logWriter struct {
	mu  sync.Mutex
	f   *os.File
	err error
}

// copy moves r to the log and to term until r ends. A failing terminal (a
// closed pipe, say) does not stop the log.
func (l *logWriter) copy(stream byte, r io.Reader, term io.Writer) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			l.write(stream, buf[:n])
			if term != nil {
				if _, werr := term.Write(buf[:n]); werr != nil {
					term = nil
				}
			}
		}
		if err != nil {
			return
		}
	}
}

func (l *logWriter) write(stream byte, p []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return
	}
	var hdr [5]byte
	hdr[0] = stream
	binary.LittleEndian.PutUint32(hdr[1:], uint32(len(p)))
	if _, err := l.f.Write(append(hdr[:], p...)); err != nil {
		l.err = err
	}
}

// readLog copies the log at path to stdout and stderr by stream. A frame cut
// short by a crash ends the log; anything else malformed is an error.
func readLog(path string, stdout, stderr io.Writer) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	for {
		var hdr [5]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return nil // end of log, or a frame header torn by a crash
		}
		n := binary.LittleEndian.Uint32(hdr[1:])
		w := stdout
		switch {
		case hdr[0] == streamStderr:
			w = stderr
		case hdr[0] != streamStdout || n > maxFrame:
			return fmt.Errorf("log %s: corrupt frame (stream %d, %d bytes)", filepath.Base(filepath.Dir(path)), hdr[0], n)
		}
		if _, err := io.CopyN(w, r, int64(n)); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

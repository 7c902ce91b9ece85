package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A container's log is a sequence of frames: one byte naming the stream, a
// little-endian uint32 length, the time the supervisor read the output (a
// little-endian int64 of nanoseconds since 1970, UTC), then that many bytes
// of output, exactly as the container wrote them (binary-safe, in the order
// the supervisor read them). Logs written before frames carried their time
// have stream bytes 1 and 2 and no time; readers take both.
//
// The log is a set of files in the container's directory: "log" is being
// written, "log.1" is the one before it, up to "log.N" with N = MaxFile-1,
// the oldest. When the next frame would take "log" past MaxSize, the
// writer fills it to exactly MaxSize (splitting the frame: frames carry
// bytes, not lines), renames each file one up, the oldest out of the set,
// and starts a new "log". Rotation takes a few renames inline; the writer
// never waits for anything but the container directory's flock, which a
// reader holds only while it opens the files.
const (
	streamStdout byte = 1
	streamStderr byte = 2
	// streamTimed marks a frame whose header carries its time.
	streamTimed byte = 0x10
	maxFrame         = 1 << 20
	// untimedHeader is the header of a frame without time, frameHeader
	// of one with.
	untimedHeader = 5
	frameHeader   = untimedHeader + 8
)

// LogOptions bound a container's log, like docker's json-file max-size and
// max-file. The zero value is one file without bound.
type LogOptions struct {
	MaxSize int64 `json:"max_size,omitempty"` // bytes per file, frame headers included; 0: no rotation
	MaxFile int   `json:"max_file,omitempty"` // files kept, the one being written included
}

// Log defaults and bounds. The defaults keep at most 30 MiB of a
// container's most recent output, which a flood cannot raise.
const (
	DefaultLogMaxSize = 10 << 20
	DefaultLogMaxFile = 3
	// MinLogMaxSize keeps rotation cheap next to the writing: the
	// supervisor reads output 32 KiB at a time, so a file takes at least
	// one eighth of a read.
	MinLogMaxSize = 4 << 10
	// MaxLogMaxFile bounds the renames of one rotation.
	MaxLogMaxFile = 100
)

// DefaultLogOptions are the log bounds of a container whose run names none.
func DefaultLogOptions() LogOptions {
	return LogOptions{MaxSize: DefaultLogMaxSize, MaxFile: DefaultLogMaxFile}
}

// Check refuses bounds the writer cannot keep: MaxSize below
// MinLogMaxSize (other than 0), MaxFile outside 1..MaxLogMaxFile while
// MaxSize is set.
func (o LogOptions) Check() error {
	switch {
	case o.MaxSize < 0 || o.MaxSize > 0 && o.MaxSize < MinLogMaxSize:
		return fmt.Errorf("log max size %d bytes: the smallest is %d KiB (0 means no rotation)", o.MaxSize, MinLogMaxSize>>10)
	case o.MaxSize > 0 && (o.MaxFile < 1 || o.MaxFile > MaxLogMaxFile):
		return fmt.Errorf("log max file %d: must be between 1 and %d", o.MaxFile, MaxLogMaxFile)
	}
	return nil
}

// ParseLogMaxSize reads --log-max-size: a size as ParseBytes takes it, at
// least MinLogMaxSize, or 0 or -1 for a log without bound (returned as 0).
func ParseLogMaxSize(s string) (int64, error) {
	if unlimitedArg(s) {
		return 0, nil
	}
	n, err := ParseBytes("--log-max-size", s)
	if err != nil {
		return 0, err
	}
	if n < MinLogMaxSize {
		return 0, fmt.Errorf("invalid --log-max-size %q: the smallest is %dk (0 means no bound)", s, MinLogMaxSize>>10)
	}
	return n, nil
}

// ParseLogMaxFile reads --log-max-file: 1 to MaxLogMaxFile.
func ParseLogMaxFile(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 || n > MaxLogMaxFile {
		return 0, fmt.Errorf("invalid --log-max-file %q: want a number of files from 1 to %d", s, MaxLogMaxFile)
	}
	return n, nil
}

// logFile names the log file i of path: path itself for 0, path.i for
// the older ones.
func logFile(path string, i int) string {
	if i == 0 {
		return path
	}
	return path + "." + strconv.Itoa(i)
}

// ShiftLogFiles makes room for a new log file at path, keeping files in
// all (the new one included): path.N-2 becomes path.N-1 and so on, the
// oldest dropped, path becomes path.1; with one file, path is removed.
func ShiftLogFiles(path string, files int) error {
	if files == 1 {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	for i := files - 1; i >= 1; i-- {
		if err := os.Rename(logFile(path, i-1), logFile(path, i)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

type logWriter struct {
	mu   sync.Mutex
	path string // the file being written; the rotated ones are path.N
	opts LogOptions
	f    *os.File
	size int64 // bytes in f
	err  error
}

// openLog opens (creating or appending to) the log at path, bounded by
// opts.
func openLog(path string, opts LogOptions) (*logWriter, error) {
	if err := opts.Check(); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &logWriter{path: path, opts: opts, f: f, size: st.Size()}, nil
}

func (l *logWriter) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
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

// write appends p to the log as one frame or, where it would cross
// MaxSize, as a frame that fills the file and more after the rotation. A
// write or rotation that fails stops the log; the container goes on.
func (l *logWriter) write(stream byte, p []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(p) > 0 && l.err == nil {
		n := int64(len(p))
		if l.opts.MaxSize > 0 {
			room := l.opts.MaxSize - l.size - frameHeader
			if room < 1 {
				l.err = l.rotate()
				continue
			}
			n = min(n, room)
		}
		var hdr [frameHeader]byte
		hdr[0] = stream | streamTimed
		binary.LittleEndian.PutUint32(hdr[1:], uint32(n))
		binary.LittleEndian.PutUint64(hdr[untimedHeader:], uint64(time.Now().UnixNano()))
		if _, err := l.f.Write(append(hdr[:], p[:n]...)); err != nil {
			l.err = err
		}
		l.size += frameHeader + n
		p = p[n:]
	}
}

// rotate shifts path.i to path.i+1 (dropping the oldest) and path to
// path.1, and starts a new path, holding the directory's flock so that a
// reader opens either the set before or the set after.
func (l *logWriter) rotate() error {
	unlock, err := lockDir(filepath.Dir(l.path), syscall.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()
	if err := l.f.Close(); err != nil {
		return err
	}
	if err := ShiftLogFiles(l.path, l.opts.MaxFile); err != nil {
		return err
	}
	l.f, err = os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC, 0o600)
	l.size = 0
	return err
}

// lockDir takes a flock of kind how on the directory dir.
func lockDir(dir string, how int) (unlock func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}

package api

import (
	"fmt"
	"os"
	"sync"

	"github.com/oak-engine/oak/engine"
	"golang.org/x/sys/unix"
)

// DaemonLog is a daemon's log file (ROOT/daemon.log for a daemon the CLI
// starts), bounded like a container's log: when the next record would
// take the file past MaxSize, the file is renamed to PATH.1 (PATH.1 to
// PATH.2, and so on, the oldest of MaxFile files dropped) and a new one
// begun. Records are not split: a file ends with a whole record, and a
// single record longer than MaxSize is cut to fit. At most MaxSize ×
// MaxFile bytes are kept.
//
// Only the daemon that holds the root's lock rotates: a daemon that lost
// the start race (it writes its one line, "another oak daemon serves this
// state root", and exits) appends to the file the winner writes, and must
// not rename it under the winner.
//
// With Stdio, the current file is also the process's stdout and stderr
// (dup3 after each rotation), so that what the Go runtime writes there
// itself (a panic, a fatal error) lands in the newest file.
type DaemonLog struct {
	mu    sync.Mutex
	root  string
	path  string
	max   int64 // bytes per file; 0: no rotation
	files int   // files kept, the current one included
	stdio bool
	f     *os.File
	size  int64
	err   error // the rotation that failed; writes go on to the old file
}

// OpenDaemonLog opens (creating, or appending to) the log at path of the
// daemon of root, rotated at maxSize bytes with maxFile files kept
// (maxSize 0: one unbounded file).
func OpenDaemonLog(root, path string, maxSize int64, maxFile int, stdio bool) (*DaemonLog, error) {
	if maxSize < 0 || maxSize > 0 && maxFile < 1 {
		return nil, fmt.Errorf("daemon log %s: max size %d, max files %d: want a size of 0 or more and at least one file", path, maxSize, maxFile)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("daemon log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("daemon log: %w", err)
	}
	l := &DaemonLog{root: root, path: path, max: maxSize, files: maxFile, stdio: stdio, f: f, size: st.Size()}
	if err := l.redirect(); err != nil {
		f.Close()
		return nil, err
	}
	return l, nil
}

// redirect makes the current file the process's stdout and stderr, with
// Stdio.
func (l *DaemonLog) redirect() error {
	if !l.stdio {
		return nil
	}
	for _, fd := range []int{1, 2} {
		if err := unix.Dup3(int(l.f.Fd()), fd, 0); err != nil {
			return fmt.Errorf("daemon log %s: make it fd %d: %w", l.path, fd, err)
		}
	}
	return nil
}

// Write appends one record (log/slog writes a record a call).
func (l *DaemonLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(p)
	if l.max > 0 {
		if int64(len(p)) > l.max {
			p = append(p[:l.max-1:l.max-1], '\n')
		}
		if l.size > 0 && l.size+int64(len(p)) > l.max && l.err == nil && l.holder() {
			if err := l.rotate(); err != nil {
				// Keep writing to the old file rather than lose the
				// log; say why once.
				l.err = err
				fmt.Fprintf(l.f, "oak daemon: log rotation stopped: %v\n", err)
			}
		}
	}
	w, err := l.f.Write(p)
	l.size += int64(w)
	if err != nil {
		return 0, err
	}
	return n, nil
}

// holder says whether this process holds the root's daemon lock.
func (l *DaemonLog) holder() bool {
	pid, held := LockHolder(l.root)
	return held && pid == os.Getpid()
}

// rotate shifts PATH.i to PATH.i+1 (dropping the oldest) and PATH to
// PATH.1, and starts a new PATH.
func (l *DaemonLog) rotate() error {
	if err := engine.ShiftLogFiles(l.path, l.files); err != nil {
		return err
	}
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	old := l.f
	l.f, l.size = f, 0
	if err := l.redirect(); err != nil {
		return err
	}
	old.Close()
	return nil
}

// Close closes the file (not stdout and stderr).
func (l *DaemonLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

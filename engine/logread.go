package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// LogsOptions choose what Logs writes, as docker logs' flags do.
type LogsOptions struct {
	// Follow keeps writing what the container writes until it ends.
	Follow bool
	// Tail writes only the last Tail lines of what was written so far;
	// negative means all of them.
	Tail int
	// Since leaves out lines written before it; zero leaves out none.
	Since time.Time
	// Timestamps starts every line with the time the supervisor read it
	// (RFC 3339, nanoseconds, UTC) and a space.
	Timestamps bool
}

// lines says whether o needs the output cut into lines; without it the
// frames are copied as they are, binary-safe.
func (o LogsOptions) lines() bool { return o.Tail >= 0 || !o.Since.IsZero() || o.Timestamps }

// ParseSince reads --since: an RFC 3339 time (a date alone, or a date and
// time without zone, is UTC), Unix seconds with an optional fraction, or a
// duration such as 10m or 1h30m counted back from now.
func ParseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("invalid --since %q: a duration counts back from now and cannot be negative", s)
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	if sec, frac, _ := strings.Cut(s, "."); sec != "" && strings.Trim(sec, "0123456789") == "" && strings.Trim(frac, "0123456789") == "" {
		n, err := strconv.ParseInt(sec, 10, 64)
		if err == nil {
			f, _ := strconv.ParseFloat("0."+frac+"0", 64)
			return time.Unix(n, int64(f*1e9)).UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid --since %q: want an RFC 3339 time (2006-01-02T15:04:05Z), Unix seconds, or a duration such as 10m", s)
}

// frame is one record of the log. Data is valid until the next read.
type frame struct {
	stream byte // streamStdout or streamStderr
	time   time.Time
	data   []byte
}

// frameReader reads frames from one log file, which the writer may still
// be appending to: a frame not yet complete is left for the next call.
type frameReader struct {
	f   *os.File
	buf []byte // bytes read from f and not yet returned
	off int    // start of the unreturned bytes in buf
}

// next returns the next complete frame; ok is false when f holds none
// (yet). A malformed frame is an error.
func (r *frameReader) next() (fr frame, ok bool, err error) {
	for {
		rest := r.buf[r.off:]
		if len(rest) >= untimedHeader {
			stream, n := rest[0], binary.LittleEndian.Uint32(rest[1:])
			hdr := untimedHeader
			if stream&streamTimed != 0 {
				hdr = frameHeader
			}
			if s := stream &^ streamTimed; s != streamStdout && s != streamStderr || n > maxFrame {
				return frame{}, false, fmt.Errorf("%s: corrupt frame (stream %d, %d bytes)", filepath.Base(r.f.Name()), stream, n)
			}
			if len(rest) >= hdr+int(n) {
				fr = frame{stream: stream &^ streamTimed, data: rest[hdr : hdr+int(n)]}
				if hdr == frameHeader {
					fr.time = time.Unix(0, int64(binary.LittleEndian.Uint64(rest[untimedHeader:]))).UTC()
				}
				r.off += hdr + int(n)
				return fr, true, nil
			}
		}
		// Keep what is left at the start of the buffer and read more.
		n := copy(r.buf, rest)
		r.buf, r.off = r.buf[:n], 0
		if cap(r.buf)-n < 32<<10 {
			r.buf = append(make([]byte, 0, 2*cap(r.buf)+64<<10), r.buf...)
		}
		m, err := r.f.Read(r.buf[n:cap(r.buf)])
		r.buf = r.buf[:n+m]
		if m == 0 {
			if err != nil && err != io.EOF {
				return frame{}, false, err
			}
			return frame{}, false, nil
		}
	}
}

// logSink writes frames to stdout and stderr as LogsOptions ask: as they
// are, or cut into lines, each stream on its own, that are filtered by
// time, held back for Tail, and stamped.
type logSink struct {
	opts           LogsOptions
	stdout, stderr io.Writer
	partial        [3]logLine // by stream: a line not yet ended
	held           []logLine  // the last Tail lines, while Tail applies
	tail           bool       // lines go to held rather than out
}

type logLine struct {
	time time.Time
	data []byte
}

// maxLine ends a line that grows past it, so that output without newlines
// is neither held forever nor kept whole in memory.
const maxLine = 16 << 10

func (s *logSink) writer(stream byte) io.Writer {
	if stream == streamStderr {
		return s.stderr
	}
	return s.stdout
}

func (s *logSink) frame(fr frame) error {
	if !s.opts.lines() {
		_, err := s.writer(fr.stream).Write(fr.data)
		return err
	}
	p := &s.partial[fr.stream]
	for data := fr.data; len(data) > 0; {
		if len(p.data) == 0 {
			p.time = fr.time
		}
		i := bytes.IndexByte(data, '\n')
		if i < 0 && len(p.data)+len(data) < maxLine {
			p.data = append(p.data, data...)
			break
		}
		n := i + 1
		if i < 0 || len(p.data)+n > maxLine {
			n = min(len(data), maxLine-len(p.data))
		}
		p.data = append(p.data, data[:n]...)
		data = data[n:]
		if err := s.line(fr.stream, *p); err != nil {
			return err
		}
		p.data = nil
	}
	return nil
}

// line takes one whole line of stream.
func (s *logSink) line(stream byte, l logLine) error {
	if !s.opts.Since.IsZero() && (l.time.IsZero() || l.time.Before(s.opts.Since)) {
		return nil
	}
	if s.tail {
		if s.opts.Tail == 0 {
			return nil
		}
		if len(s.held) == s.opts.Tail {
			copy(s.held, s.held[1:])
			s.held = s.held[:len(s.held)-1]
		}
		l.data = append([]byte{stream}, l.data...) // held lines remember their stream
		s.held = append(s.held, l)
		return nil
	}
	w := s.writer(stream)
	if s.opts.Timestamps && !l.time.IsZero() {
		if _, err := io.WriteString(w, l.time.Format("2006-01-02T15:04:05.000000000Z07:00")+" "); err != nil {
			return err
		}
	}
	_, err := w.Write(l.data)
	return err
}

// flushTail writes the held lines and lets later ones through.
func (s *logSink) flushTail() error {
	s.tail = false
	held := s.held
	s.held = nil
	for _, l := range held {
		if err := s.line(l.data[0], logLine{time: l.time, data: l.data[1:]}); err != nil {
			return err
		}
	}
	return nil
}

// flushPartial writes the lines not yet ended, as they are.
func (s *logSink) flushPartial() error {
	for stream := range s.partial {
		if p := s.partial[stream]; len(p.data) > 0 {
			s.partial[stream].data = nil
			if err := s.line(byte(stream), p); err != nil {
				return err
			}
		}
	}
	return nil
}

// readLog copies the log at path, its rotated files first, oldest first,
// to stdout and stderr by stream. The files are all opened under the
// directory's flock, so a rotation meanwhile neither hides nor repeats
// one. A frame cut short by a crash ends its file; anything else malformed
// is an error.
func readLog(path string, stdout, stderr io.Writer) error {
	return followLog(context.Background(), path, LogsOptions{Tail: -1}, stdout, stderr, nil)
}

// followLog writes the log at path as opts ask. With ended not nil it
// then follows the newest file, and the files the writer rotates in after
// it, until ended reports that the writer is gone for good and everything
// it wrote has been read, or ctx ends.
func followLog(ctx context.Context, path string, opts LogsOptions, stdout, stderr io.Writer, ended func() bool) error {
	sink := &logSink{opts: opts, stdout: stdout, stderr: stderr, tail: opts.Tail >= 0}
	files, err := openLogFiles(path)
	if err != nil {
		return err
	}
	// Files are closed once read, but for the one being followed, cur.
	var cur *frameReader
	defer func() {
		for _, f := range files {
			f.Close()
		}
		if cur != nil {
			cur.f.Close()
		}
	}()
	name := filepath.Base(filepath.Dir(path))
	// read writes the complete frames r holds so far.
	read := func(r *frameReader) error {
		for {
			fr, ok, err := r.next()
			if err != nil {
				return fmt.Errorf("log %s: %w", name, err)
			}
			if !ok {
				return nil
			}
			if err := sink.frame(fr); err != nil {
				return err
			}
		}
	}
	// readAll reads files to their ends, the last one becoming cur.
	readAll := func() error {
		for len(files) > 0 {
			if cur != nil {
				cur.f.Close()
			}
			cur, files = &frameReader{f: files[0]}, files[1:]
			if err := read(cur); err != nil {
				return err
			}
		}
		return nil
	}
	// What was written so far: every file to its end.
	if err := readAll(); err != nil {
		return err
	}
	if ended == nil {
		if err := sink.flushPartial(); err != nil {
			return err
		}
		return sink.flushTail()
	}
	if err := sink.flushTail(); err != nil {
		return err
	}
	// Then what comes: the newest file as it grows, and after a rotation
	// the files that followed it.
	done := false
	for {
		if cur != nil {
			if err := read(cur); err != nil {
				return err
			}
		}
		next, rotated, err := successors(path, cur)
		if err != nil {
			return err
		}
		if rotated {
			// The writer moved on from cur, and may have written to it
			// since the read above: cur is complete only now.
			if cur != nil {
				if err := read(cur); err != nil {
					return err
				}
			}
			files = next
			if err := readAll(); err != nil {
				return err
			}
			continue
		}
		for _, f := range next {
			f.Close()
		}
		if done {
			return sink.flushPartial()
		}
		if ended() {
			done = true // one more pass: read what was written before the end
			continue
		}
		select {
		case <-ctx.Done():
			return sink.flushPartial()
		case <-time.After(followPoll):
		}
	}
}

// followPoll is how often a follower looks for new output.
const followPoll = 50 * time.Millisecond

// successors reports whether cur is no longer the file being written
// (rotated away, or there was none), and if so opens the files written
// after it, oldest first.
func successors(path string, cur *frameReader) (next []*os.File, rotated bool, err error) {
	if cur != nil {
		a, err1 := cur.f.Stat()
		b, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(a, b) {
			return nil, false, nil
		}
	}
	files, err := openLogFiles(path)
	if err != nil || len(files) == 0 {
		return nil, false, err
	}
	if cur == nil {
		return files, true, nil
	}
	a, err := cur.f.Stat()
	if err != nil {
		return files, false, err
	}
	for i, f := range files {
		if b, err := f.Stat(); err == nil && os.SameFile(a, b) {
			for _, g := range files[:i+1] {
				g.Close()
			}
			// Nothing after cur (its name gone without a new file):
			// nothing to move on to yet.
			return files[i+1:], i+1 < len(files), nil
		}
	}
	// cur was rotated out of the set: every file left came after it.
	return files, true, nil
}

// openLogFiles opens path.N ... path.1, path, those that exist, in that
// order.
func openLogFiles(path string) ([]*os.File, error) {
	dir, base := filepath.Split(path)
	unlock, err := lockDir(dir, syscall.LOCK_SH)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer unlock()
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var rotated []int
	for _, e := range ents {
		if v, ok := strings.CutPrefix(e.Name(), base+"."); ok {
			if i, err := strconv.Atoi(v); err == nil && i > 0 && strconv.Itoa(i) == v {
				rotated = append(rotated, i)
			}
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(rotated)))
	var files []*os.File
	for _, i := range append(rotated, 0) {
		f, err := os.Open(logFile(path, i))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

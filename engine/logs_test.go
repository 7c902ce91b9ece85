package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// writeNumbered writes lines "1 000001" ... "1 LINES" to the log, one a
// write, the multiples of 7 to stderr (as "2 000007").
func writeNumbered(l *logWriter, lines int) {
	for i := 1; i <= lines; i++ {
		stream := streamStdout
		if i%7 == 0 {
			stream = streamStderr
		}
		l.write(stream, fmt.Appendf(nil, "%d %06d\n", stream, i))
	}
}

// numbers parses the output of writeNumbered read back: the numbers of its
// whole lines, in order. A first line cut by the rotation is skipped, and
// so is a last line still being written (when read during the writes).
func numbers(t *testing.T, out string) []int {
	t.Helper()
	var ns []int
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	for i, line := range lines {
		_, num, ok := strings.Cut(line, " ")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || len(num) != 6 {
			if i == 0 || i == len(lines)-1 && !strings.HasSuffix(out, "\n") {
				continue
			}
			t.Fatalf("line %d of the log read back: %q", i, line)
		}
		ns = append(ns, n)
	}
	return ns
}

// TestLogRotation: a log written far past MaxSize*MaxFile keeps at most
// MaxFile files of at most MaxSize bytes each, and readLog returns the tail
// in order with nothing missing inside it. Before the cap, one file grew
// without bound (257 MiB from one flood).
func TestLogRotation(t *testing.T) {
	for _, opts := range []LogOptions{{MaxSize: 8 << 10, MaxFile: 3}, {MaxSize: 4 << 10, MaxFile: 1}, {MaxSize: 5000, MaxFile: 10}} {
		t.Run(fmt.Sprintf("%d×%d", opts.MaxFile, opts.MaxSize), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "log")
			l, err := openLog(path, opts)
			if err != nil {
				t.Fatal(err)
			}
			const lines = 20000 // 180 KB, 280 KB with the frame headers
			writeNumbered(l, lines)
			if err := l.close(); err != nil || l.err != nil {
				t.Fatal(err, l.err)
			}

			ents, _ := os.ReadDir(dir)
			var total int64
			for _, e := range ents {
				fi, _ := e.Info()
				total += fi.Size()
				if fi.Size() > opts.MaxSize {
					t.Errorf("%s is %d bytes, over the %d-byte cap", e.Name(), fi.Size(), opts.MaxSize)
				}
				if e.Name() != "log" && !strings.HasPrefix(e.Name(), "log.") {
					t.Errorf("unexpected file %s", e.Name())
				}
			}
			if len(ents) != opts.MaxFile {
				t.Errorf("%d log files, want %d", len(ents), opts.MaxFile)
			}

			var stdout, stderr bytes.Buffer
			if err := readLog(path, &stdout, &stderr); err != nil {
				t.Fatal(err)
			}
			// Each line is one frame of 9 bytes.
			if int64(stdout.Len()+stderr.Len())/9*(9+frameHeader) < total-int64(opts.MaxFile)*opts.MaxSize/2 {
				t.Errorf("read back %d bytes of %d in the files", stdout.Len()+stderr.Len(), total)
			}
			for _, c := range []struct {
				out    string
				stream byte
			}{{stdout.String(), streamStdout}, {stderr.String(), streamStderr}} {
				ns := numbers(t, c.out)
				if len(ns) == 0 {
					t.Fatalf("stream %d: nothing read back", c.stream)
				}
				last := lines
				if c.stream == streamStderr {
					last = lines / 7 * 7
				}
				if ns[len(ns)-1] != last {
					t.Errorf("stream %d ends at %d, want %d", c.stream, ns[len(ns)-1], last)
				}
				for i := 1; i < len(ns); i++ {
					want := ns[i-1] + 1
					if c.stream == streamStderr {
						want = ns[i-1] + 7
					}
					for want%7 == 0 && c.stream == streamStdout {
						want++
					}
					if ns[i] != want {
						t.Fatalf("stream %d: %d follows %d, want %d", c.stream, ns[i], ns[i-1], want)
					}
				}
			}
		})
	}
}

// TestLogReadDuringRotation: a reader racing the writer's rotations sees a
// contiguous run of output every time: no file skipped or read twice.
func TestLogReadDuringRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "log")
	l, err := openLog(path, LogOptions{MaxSize: 4 << 10, MaxFile: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		for i := 1; i <= 30000; i++ {
			l.write(streamStdout, fmt.Appendf(nil, "1 %06d\n", i))
		}
	}()
	reads := 0
	for {
		select {
		case <-done:
			wg.Wait()
			t.Logf("%d reads during the writes", reads)
			return
		default:
		}
		var out bytes.Buffer
		if err := readLog(path, &out, &out); err != nil {
			t.Fatal(err)
		}
		reads++
		ns := numbers(t, out.String())
		for i := 1; i < len(ns); i++ {
			if ns[i] != ns[i-1]+1 {
				t.Fatalf("read %d: %d follows %d", reads, ns[i], ns[i-1])
			}
		}
	}
}

func TestParseLogOptions(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		err  string
	}{
		{"10m", 10 << 20, ""}, {"4k", 4 << 10, ""}, {"0", 0, ""}, {"-1", 0, ""},
		{"1k", 0, "smallest is 4k"}, {"100", 0, "smallest"}, {"x", 0, "not a number"},
	} {
		got, err := ParseLogMaxSize(c.in)
		if c.err == "" && (err != nil || got != c.want) || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("ParseLogMaxSize(%q) = %d, %v", c.in, got, err)
		}
	}
	for _, c := range []struct {
		in   string
		want int
		ok   bool
	}{{"3", 3, true}, {"1", 1, true}, {"100", 100, true}, {"0", 0, false}, {"-1", 0, false}, {"101", 0, false}, {"x", 0, false}} {
		got, err := ParseLogMaxFile(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseLogMaxFile(%q) = %d, %v", c.in, got, err)
		}
	}
	if err := DefaultLogOptions().Check(); err != nil {
		t.Errorf("default log options: %v", err)
	}
}

// TestFollowLogAcrossRotations: a follower started before the writes sees
// every line exactly once and in order while the writer rotates the file
// under it dozens of times, and returns once the writer has ended.
func TestFollowLogAcrossRotations(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "log")
	l, err := openLog(path, LogOptions{MaxSize: 4 << 10, MaxFile: MaxLogMaxFile})
	if err != nil {
		t.Fatal(err)
	}
	var finished atomic.Bool
	const lines = 5000 // about 27 files of 4 KiB: all kept
	go func() {
		for i := 1; i <= lines; i++ {
			l.write(streamStdout, fmt.Appendf(nil, "1 %06d\n", i))
		}
		l.close()
		finished.Store(true)
	}()
	var out, errOut bytes.Buffer
	err = followLog(context.Background(), path, LogsOptions{Follow: true, Tail: -1}, &out, &errOut, finished.Load)
	if err != nil {
		t.Fatal(err)
	}
	ns := numbers(t, out.String())
	if len(ns) != lines || ns[0] != 1 {
		t.Fatalf("followed %d lines from %v, want %d from 1", len(ns), ns[:min(len(ns), 1)], lines)
	}
	for i := range ns {
		if ns[i] != i+1 {
			t.Fatalf("line %d is %d", i+1, ns[i])
		}
	}
	if errOut.Len() != 0 {
		t.Errorf("stderr got %q", errOut.String())
	}
}

// writeFrame appends one frame to f as the writer lays it out, with time
// at, or without a time when at is zero (as logs written before frames
// carried one).
func writeFrame(t *testing.T, f *os.File, stream byte, at time.Time, data string) {
	t.Helper()
	var hdr []byte
	if at.IsZero() {
		hdr = binary.LittleEndian.AppendUint32([]byte{stream}, uint32(len(data)))
	} else {
		hdr = binary.LittleEndian.AppendUint32([]byte{stream | streamTimed}, uint32(len(data)))
		hdr = binary.LittleEndian.AppendUint64(hdr, uint64(at.UnixNano()))
	}
	if _, err := f.Write(append(hdr, data...)); err != nil {
		t.Fatal(err)
	}
}

// TestLogsOptions: --tail counts lines, not frames, across both streams;
// --since drops lines by the time of their first byte; --timestamps stamps
// each line; stdout and stderr lines stay on their own writers; frames of
// the older untimed format still read.
func TestLogsOptions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	writeFrame(t, f, streamStdout, time.Time{}, "old\n")
	writeFrame(t, f, streamStdout, t0, "a1\na")
	writeFrame(t, f, streamStderr, t0.Add(time.Second), "e1\n")
	writeFrame(t, f, streamStdout, t0.Add(2*time.Second), "2\na3\n")
	writeFrame(t, f, streamStderr, t0.Add(3*time.Second), "e2\ne3")
	f.Close()
	for _, c := range []struct {
		name           string
		opts           LogsOptions
		stdout, stderr string
	}{
		{"all", LogsOptions{Tail: -1}, "old\na1\na2\na3\n", "e1\ne2\ne3"},
		{"tail 2", LogsOptions{Tail: 2}, "", "e2\ne3"},
		{"tail 3", LogsOptions{Tail: 3}, "a3\n", "e2\ne3"},
		{"tail 0", LogsOptions{Tail: 0}, "", ""},
		{"since", LogsOptions{Tail: -1, Since: t0.Add(time.Second)}, "a3\n", "e1\ne2\ne3"},
		{"timestamps", LogsOptions{Tail: 2, Timestamps: true}, "",
			"2026-01-02T03:04:08.000000006Z e2\n2026-01-02T03:04:08.000000006Z e3"},
		{"timestamps of a line across frames", LogsOptions{Tail: -1, Since: t0, Timestamps: true},
			"2026-01-02T03:04:05.000000006Z a1\n2026-01-02T03:04:05.000000006Z a2\n2026-01-02T03:04:07.000000006Z a3\n",
			"2026-01-02T03:04:06.000000006Z e1\n2026-01-02T03:04:08.000000006Z e2\n2026-01-02T03:04:08.000000006Z e3"},
	} {
		var stdout, stderr bytes.Buffer
		if err := followLog(context.Background(), path, c.opts, &stdout, &stderr, nil); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if stdout.String() != c.stdout || stderr.String() != c.stderr {
			t.Errorf("%s: stdout %q stderr %q, want %q and %q", c.name, stdout.String(), stderr.String(), c.stdout, c.stderr)
		}
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"10m", now.Add(-10 * time.Minute), true},
		{"1h30m", now.Add(-90 * time.Minute), true},
		{"2026-12-04T11:00:00Z", now.Add(-time.Hour), true},
		{"2026-12-04T12:00:00+01:00", now.Add(-time.Hour), true},
		{"2026-12-04T11:00:00.5Z", now.Add(-time.Hour + 500*time.Millisecond), true},
		{"2026-12-04T11:00:00", now.Add(-time.Hour), true},
		{"2026-12-04", now.Add(-12 * time.Hour), true},
		{"1796385600", now, true},
		{"1796385600.25", now.Add(250 * time.Millisecond), true},
		{"-5m", time.Time{}, false},
		{"yesterday", time.Time{}, false},
		{"", time.Time{}, false},
		{"12:00", time.Time{}, false},
	} {
		got, err := ParseSince(c.in, now)
		if (err == nil) != c.ok || !got.Equal(c.want) {
			t.Errorf("ParseSince(%q) = %v, %v; want %v (ok %v)", c.in, got, err, c.want, c.ok)
		}
	}
}

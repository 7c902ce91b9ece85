package engine

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
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
			if int64(stdout.Len()+stderr.Len()) < total-int64(opts.MaxFile)*opts.MaxSize/2 {
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

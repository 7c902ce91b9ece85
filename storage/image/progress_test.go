//go:build linux

package image

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

func TestRenderBar(t *testing.T) {
	for _, tc := range []struct {
		n, total int64
		want     []string
	}{
		{0, 1000, []string{"pull alpine", "[>", "  0%", "0 B / 1.0 kB"}},
		{500_000, 1_000_000, []string{" 50%", "500.0 kB / 1.0 MB", "/s"}},
		{2_000_000, 1_000_000, []string{"100%", "1.0 MB / 1.0 MB"}},
		{123_456_789, -1, []string{"pull alpine  123.5 MB"}},
	} {
		line := renderBar("pull alpine", tc.n, tc.total, 2*time.Second, 80)
		if utf8.RuneCountInString(line) != 79 {
			t.Errorf("%q: %d columns, want 79", line, utf8.RuneCountInString(line))
		}
		for _, w := range tc.want {
			if !strings.Contains(line, w) {
				t.Errorf("%q lacks %q", line, w)
			}
		}
	}
	long := renderBar(strings.Repeat("x", 100), 1, 2, time.Second, 60)
	if utf8.RuneCountInString(long) != 59 || !strings.HasPrefix(long, "…") {
		t.Errorf("long label: %q", long)
	}
}

// openPTY returns a pseudo-terminal's master and its terminal side.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("ptsname: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open pts: %v", err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

func TestProgressOnlyOnTerminal(t *testing.T) {
	ctx := context.Background()
	dir := writeLayout(t, t.TempDir(), map[string]v1.Image{"app:1": plainTwoLayers(t)})

	var buf bytes.Buffer
	if _, err := openStore(t).Import(ctx, dir, ImportOptions{Progress: &buf}); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Errorf("progress written to a non-terminal: %q", buf.String())
	}

	master, tty := openPTY(t)
	out := make(chan string)
	go func() {
		b, _ := io.ReadAll(master) // ends with EIO once the tty side is closed
		out <- string(b)
	}()
	if _, err := openStore(t).Import(ctx, dir, ImportOptions{Progress: tty}); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	got := <-out
	if !strings.Contains(got, "import "+filepath.Base(dir)) || !strings.Contains(got, "100%") || !strings.HasSuffix(strings.TrimRight(got, " "), "\n") {
		t.Errorf("terminal got %q", got)
	}
}

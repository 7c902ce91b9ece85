package trace

import (
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
)

// capture returns what f writes to os.Stderr.
func capture(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = w
	f()
	os.Stderr = saved
	w.Close()
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestMark(t *testing.T) {
	saved := on
	defer func() { on = saved }()

	on = false
	if out := capture(t, func() { Mark("engine: run") }); out != "" {
		t.Errorf("off: wrote %q", out)
	}
	if env := Env("_X"); env != nil {
		t.Errorf("off: Env = %q", env)
	}

	on = true
	before := Now()
	out := capture(t, func() { Mark("engine: run"); Mark("sandbox: cloned") })
	after := Now()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("on: wrote %q, want two lines", out)
	}
	var last int64
	for i, want := range []string{"engine: run", "sandbox: cloned"} {
		rest, ok := strings.CutPrefix(lines[i], Prefix)
		f := strings.SplitN(rest, " ", 3)
		if !ok || len(f) != 3 || f[1] != strconv.Itoa(os.Getpid()) || f[2] != want {
			t.Fatalf("line %q", lines[i])
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || ns < before || ns > after || ns < last {
			t.Errorf("time %s not within [%d, %d] after %d", f[0], before, after, last)
		}
		last = ns
	}
	if env := Env("_X"); len(env) != 1 || env[0] != "_X=1" {
		t.Errorf("on: Env = %q", env)
	}
}

// Mark costs nothing when off: no allocation.
func TestMarkOffAllocatesNothing(t *testing.T) {
	saved := on
	defer func() { on = saved }()
	on = false
	if n := testing.AllocsPerRun(100, func() { Mark("engine: run") }); n != 0 {
		t.Errorf("Mark allocates %v times when off", n)
	}
}

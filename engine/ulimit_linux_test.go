package engine

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseUlimit(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Ulimit
		err  string
	}{
		{"nofile=1024:2048", Ulimit{"nofile", 1024, 2048}, ""},
		{"nofile=1024", Ulimit{"nofile", 1024, 1024}, ""},
		{"core=0", Ulimit{"core", 0, 0}, ""},
		{"stack=8192:unlimited", Ulimit{"stack", 8192, -1}, ""},
		{"memlock=-1", Ulimit{"memlock", -1, -1}, ""},
		{"nofile=2048:1024", Ulimit{}, "soft limit is above"},
		{"nofile=unlimited:10", Ulimit{}, "soft limit is above"},
		{"nofile=x", Ulimit{}, "not a limit"},
		{"nofile=-2", Ulimit{}, "not a limit"},
		{"nofile", Ulimit{}, "NAME=SOFT"},
		{"files=1", Ulimit{}, "one of core, cpu"},
	} {
		got, err := ParseUlimit(c.in)
		if c.err == "" && (err != nil || got != c.want) || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("ParseUlimit(%q) = %+v, %v", c.in, got, err)
		}
	}
}

// A hard limit above this process's own is refused, naming the limit; one
// at or below it passes as the rlimit the sandbox sets.
func TestCheckUlimits(t *testing.T) {
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &cur); err != nil {
		t.Fatal(err)
	}
	if cur.Max == unix.RLIM_INFINITY {
		t.Skip("no hard limit on nofile here")
	}
	rl, err := checkUlimits([]Ulimit{{"nofile", 1, int64(cur.Max)}})
	if err != nil || len(rl) != 1 || rl[0].Resource != unix.RLIMIT_NOFILE || rl[0].Soft != 1 || rl[0].Hard != cur.Max {
		t.Errorf("at the hard limit: %+v, %v", rl, err)
	}
	for _, u := range []Ulimit{{"nofile", 1, int64(cur.Max) + 1}, {"nofile", 1, -1}} {
		if _, err := checkUlimits([]Ulimit{u}); err == nil || !strings.Contains(err.Error(), "--ulimit nofile=") {
			t.Errorf("%+v above the hard limit %d: %v", u, cur.Max, err)
		}
	}
}

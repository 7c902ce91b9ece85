package engine

import (
	"strconv"
	"strings"
	"testing"

	"github.com/oak-engine/oak/sandbox"
)

func TestParseBytes(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		err  string
	}{
		{"256m", 256 << 20, ""},
		{"256M", 256 << 20, ""},
		{"64mb", 64 << 20, ""},
		{"1g", 1 << 30, ""},
		{"4096", 4096, ""},
		{"10b", 10, ""},
		{"2k", 2048, ""},
		{"12zz", 0, `unknown unit "zz"`},
		{"m", 0, "not a number"},
		{"", 0, "not a number"},
		{"-5m", 0, "not a number"},
		{"0", 0, "more than zero"},
		{"99999999999999999999", 0, "out of range"},
		{"9999999999t", 0, "too large"},
		{"1.5g", 0, "unknown unit"},
	} {
		got, err := ParseBytes("--memory", c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "--memory") {
				t.Errorf("ParseBytes(%q) = %d, %v; want error containing %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}

func TestParseCPUs(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0.5", 500, true}, {"2", 2000, true}, {"1.25", 1250, true},
		{"3", 0, false}, {"0", 0, false}, {"abc", 0, false}, {"NaN", 0, false}, {"-1", 0, false},
		// The kernel's smallest CFS quota is 1 ms per 100 ms period; below
		// 0.01 the launch used to fail writing cpu.cfs_quota_us.
		{"0.01", 10, true}, {"0.009", 0, false}, {"0.001", 0, false}, {"Inf", 0, false}, {"-Inf", 0, false}, {"1e400", 0, false},
	} {
		got, err := ParseCPUs(c.in, 2)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseCPUs(%q) = %d, %v", c.in, got, err)
		}
	}
}

// TestParseLimits: --memory and --pids take 0 and -1 as "no limit" (0),
// and refuse, naming the flag and the minimum, any limit a container could
// not start with (--memory 1 and 4k used to fail inside the launch with
// "nsinit ended without a seccomp listener", --pids 1 with a failed fork).
func TestParseLimits(t *testing.T) {
	for _, c := range []struct {
		flag, in string
		want     int64
		err      string // "" for success
	}{
		{"--memory", "0", 0, ""},
		{"--memory", "-1", 0, ""},
		{"--memory", "6m", 6 << 20, ""},
		{"--memory", "1g", 1 << 30, ""},
		{"--memory", "1", 0, "6 MiB"},
		{"--memory", "4k", 0, "6 MiB"},
		{"--memory", "5m", 0, "6 MiB"},
		{"--memory", "-2", 0, "not a number"},
		{"--memory", "9999999999t", 0, "too large"},
		{"--pids", "0", 0, ""},
		{"--pids", "-1", 0, ""},
		{"--pids", "2", 2, ""},
		{"--pids", "1024", 1024, ""},
		{"--pids", "1", 0, "at least 2"},
		{"--pids", "-5", 0, "at least 2"},
		{"--pids", "4194305", 0, "maximum 4194304"},
		{"--tmpfs-size", "4k", 4096, ""},
		{"--tmpfs-size", "1", 0, "one page"},
		{"--tmpfs-size", "0", 0, "more than zero"},
	} {
		parsePids := func(s string) (int64, error) {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return ParsePids(n)
		}
		parse := map[string]func(string) (int64, error){"--memory": ParseMemory, "--pids": parsePids, "--tmpfs-size": ParseTmpfsSize}[c.flag]
		got, err := parse(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), c.flag) {
				t.Errorf("%s %q = %d, %v; want an error naming %s and containing %q", c.flag, c.in, got, err, c.flag, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s %q = %d, %v; want %d", c.flag, c.in, got, err, c.want)
		}
	}
}

// TestDefaultLimitsValid: the defaults pass the sandbox's own check and
// are limits, not "no limit".
func TestDefaultLimitsValid(t *testing.T) {
	l := sandbox.Limits{MemoryBytes: DefaultMemoryBytes, Pids: DefaultPids}
	if err := l.Check(); err != nil || l.MemoryBytes == 0 || l.Pids == 0 {
		t.Errorf("default limits %+v: %v", l, err)
	}
}

func FuzzParseBytes(f *testing.F) {
	for _, s := range []string{"256m", "12zz", "1g", "", "0b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseBytes("--memory", s)
		if err == nil && n <= 0 {
			t.Fatalf("ParseBytes(%q) = %d with no error", s, n)
		}
		if err != nil && !strings.Contains(err.Error(), "--memory") {
			t.Fatalf("error does not name the flag: %v", err)
		}
	})
}

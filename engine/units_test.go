package engine

import (
	"strings"
	"testing"
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
	} {
		got, err := ParseCPUs(c.in, 2)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseCPUs(%q) = %d, %v", c.in, got, err)
		}
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

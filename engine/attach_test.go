package engine

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseDetachKeys(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []byte
		err  bool
	}{
		{"ctrl-p,ctrl-q", []byte{16, 17}, false},
		{"ctrl-a", []byte{1}, false},
		{"x,ctrl-z,y", []byte{'x', 26, 'y'}, false},
		{"", nil, true},
		{"ctrl-P", nil, true},
		{"ctrl-", nil, true},
		{"ab", nil, true},
		{"ctrl-p,,ctrl-q", nil, true},
	} {
		got, err := ParseDetachKeys(c.in)
		if (err != nil) != c.err || !bytes.Equal(got, c.want) {
			t.Errorf("ParseDetachKeys(%q) = %v, %v; want %v, error %v", c.in, got, err, c.want, c.err)
		}
		if err != nil && !strings.Contains(err.Error(), "--detach-keys") {
			t.Errorf("ParseDetachKeys(%q): %v, want it to name --detach-keys", c.in, err)
		}
	}
}

// FuzzParseDetachKeys: any input is keys (at least one byte, one per
// comma-separated item) or an error naming it; never a panic.
func FuzzParseDetachKeys(f *testing.F) {
	for _, s := range []string{"ctrl-p,ctrl-q", "a", "", ",", "ctrl-\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		keys, err := ParseDetachKeys(s)
		if err != nil {
			if keys != nil {
				t.Errorf("%q: keys %v with error %v", s, keys, err)
			}
			return
		}
		if len(keys) == 0 || len(keys) != strings.Count(s, ",")+1 {
			t.Errorf("%q: %d keys", s, len(keys))
		}
	})
}

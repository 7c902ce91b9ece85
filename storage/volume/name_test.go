package volume

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$`)

func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"data", true},
		{"a", true},
		{"0", true},
		{"web-data_1.v2", true},
		{"A.", true},
		{strings.Repeat("x", 64), true},
		{strings.Repeat("x", 65), false},
		{"", false},
		{".", false},
		{"..", false},
		{".hidden", false},
		{"-rf", false},
		{"_x", false},
		{"a/b", false},
		{"../x", false},
		{"a b", false},
		{"a\x00", false},
		{"a\n", false},
		{"é", false},
		{"volume:ro", false},
	} {
		if got := ValidName(tc.name); got != tc.ok {
			t.Errorf("ValidName(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

func TestCheckNameError(t *testing.T) {
	err := CheckName("create", "a/b")
	if !errors.Is(err, ErrBadName) {
		t.Fatalf("CheckName(a/b) = %v, want ErrBadName", err)
	}
	if !strings.Contains(err.Error(), `"a/b"`) || !strings.Contains(err.Error(), "create") {
		t.Errorf("error %q does not name the operation and the input", err)
	}
	if err := CheckName("create", "ok"); err != nil {
		t.Errorf("CheckName(ok) = %v", err)
	}
}

// FuzzValidName checks the validator against the regular expression the
// requirement states, and that a valid name is always one safe path
// component.
func FuzzValidName(f *testing.F) {
	for _, s := range []string{"data", "", ".", "..", "a/b", "a..b", strings.Repeat("z", 64), "x\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := ValidName(s)
		if want := nameRE.MatchString(s); got != want {
			t.Fatalf("ValidName(%q) = %v, regexp says %v", s, got, want)
		}
		if got && (s == "." || s == ".." || strings.ContainsAny(s, "/\x00")) {
			t.Fatalf("ValidName(%q) accepted a name that is not a single path component", s)
		}
	})
}

func TestDecodeRecord(t *testing.T) {
	good := &record{V: recordVersion, Name: "data", Size: MinSize, Created: time.Unix(1, 0).UTC()}
	val, err := good.encode()
	if err != nil {
		t.Fatal(err)
	}
	r, err := decodeRecord([]byte("data"), val)
	if err != nil || *r != *good {
		t.Fatalf("round trip: %+v, %v", r, err)
	}
	for _, tc := range []struct{ key, val string }{
		{"data", `{`},
		{"other", string(val)},
		{"data", `{"v":2,"name":"data","size":16777216}`},
		{"data", `{"v":1,"name":"data","size":1}`},
		{"../x", `{"v":1,"name":"../x","size":16777216}`},
	} {
		if _, err := decodeRecord([]byte(tc.key), []byte(tc.val)); err == nil {
			t.Errorf("decodeRecord(%q, %s) accepted", tc.key, tc.val)
		}
	}
}

package engine

import (
	"regexp"
	"strings"
	"testing"
)

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

func TestValidName(t *testing.T) {
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"web", true},
		{"a", true},
		{"9", true},
		{"web-1_b.v2", true},
		{strings.Repeat("x", MaxNameLen), true},
		{strings.Repeat("x", MaxNameLen+1), false},
		{"", false},
		{".", false},
		{"..", false},
		{"../x", false},
		{"a/b", false},
		{"-rf", false},
		{"_x", false},
		{"a b", false},
		{"a\nb", false},
		{"a\tb", false},
		{"a\x00", false},
		{"é", false},
	} {
		if got := ValidName(c.name); got != c.ok {
			t.Errorf("ValidName(%q) = %v, want %v", c.name, got, c.ok)
		}
		err := checkName(c.name)
		if (err == nil) != c.ok {
			t.Errorf("checkName(%q) = %v", c.name, err)
		}
		if err != nil && (strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "--name")) {
			t.Errorf("checkName(%q) = %q: want one line naming --name", c.name, err)
		}
	}
}

// FuzzValidName checks the validator against docker's rule as a regular
// expression, with the length cap.
func FuzzValidName(f *testing.F) {
	for _, s := range []string{"web", "", ".", "a/b", "-x", "a\nb", strings.Repeat("z", MaxNameLen+1)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := nameRE.MatchString(s) && len(s) <= MaxNameLen
		if got := ValidName(s); got != want {
			t.Fatalf("ValidName(%q) = %v, want %v", s, got, want)
		}
	})
}

package engine

import (
	"slices"
	"strings"
	"testing"
)

func TestParseFilterRefuses(t *testing.T) {
	for _, c := range []struct{ arg, want string }{
		{"name", "want KEY=VALUE"},
		{"name=", "want KEY=VALUE"},
		{"colour=red", `unknown key "colour"`},
		{"status=paused", "status is created, running, exited or broken"},
		{"name=(", "missing closing )"},
	} {
		_, err := ParseFilter([]string{c.arg})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.arg) {
			t.Errorf("ParseFilter(%q): %v, want an error naming the argument and %q", c.arg, err, c.want)
		}
	}
}

// The same key ORs, different keys AND, as docker ps --filter.
func TestFilterMatch(t *testing.T) {
	web := &ContainerInfo{Id: "abcdef0123", Name: "web-1", Image: "sha256:1111",
		State:  ContainerState{Status: StatusRunning},
		Config: ContainerConfig{Image: "alpine:3.20", Labels: map[string]string{"tier": "front", "x": ""}}}
	db := &ContainerInfo{Id: "abc9990000", Name: "db", Image: "sha256:2222",
		State:  ContainerState{Status: StatusExited},
		Config: ContainerConfig{Image: "demo"}}
	sameImage := func(v, ref, id string) bool { return v == ref || v == id }
	for _, c := range []struct {
		filters []string
		web, db bool
	}{
		{nil, true, true},
		{[]string{"id=abc"}, true, true},
		{[]string{"id=abcd"}, true, false},
		{[]string{"id=bcd"}, false, false}, // a prefix, not a substring
		{[]string{"name=web"}, true, false},
		{[]string{"name=^db$"}, false, true},
		{[]string{"name=web", "name=db"}, true, true},
		{[]string{"status=running"}, true, false},
		{[]string{"status=running", "status=exited"}, true, true},
		{[]string{"status=running", "name=db"}, false, false},
		{[]string{"label=tier"}, true, false},
		{[]string{"label=tier=front"}, true, false},
		{[]string{"label=tier=back"}, false, false},
		{[]string{"label=x="}, true, false},
		{[]string{"label=tier=back", "label=tier=front"}, true, false},
		{[]string{"ancestor=demo"}, false, true},
		{[]string{"ancestor=sha256:1111"}, true, false},
		{[]string{"ancestor=demo", "status=exited", "id=abc9"}, false, true},
		{[]string{"ancestor=demo", "status=running"}, false, false},
	} {
		f, err := ParseFilter(c.filters)
		if err != nil {
			t.Fatalf("ParseFilter(%q): %v", c.filters, err)
		}
		if got := f.Match(web, sameImage); got != c.web {
			t.Errorf("%q matches web: %v, want %v", c.filters, got, c.web)
		}
		if got := f.Match(db, sameImage); got != c.db {
			t.Errorf("%q matches db: %v, want %v", c.filters, got, c.db)
		}
	}
}

// Whatever the arguments, ParseFilter accepts only known keys with a
// value, and a filter it accepts can be matched without panicking.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"name=web", "status=exited", "label=a=b", "ancestor=alpine:3", "id=ab", "name=(", "x=y", "=", "name"} {
		f.Add(s, "status=running")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		flt, err := ParseFilter([]string{a, b})
		if err != nil {
			return
		}
		for k, vs := range flt.values {
			if _, ok := filterKeys[k]; !ok || len(vs) == 0 || slices.Contains(vs, "") {
				t.Fatalf("ParseFilter(%q, %q) accepted key %q with values %q", a, b, k, vs)
			}
		}
		c := &ContainerInfo{Id: "abc", Name: "n", State: ContainerState{Status: StatusRunning},
			Config: ContainerConfig{Labels: map[string]string{"a": "b"}}}
		flt.Match(c, func(string, string, string) bool { return false })
	})
}

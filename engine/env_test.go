package engine

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func lookupIn(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestResolveEnv(t *testing.T) {
	got := ResolveEnv([]string{"A=1", "SET", "UNSET", "EMPTY", "B=", "=x"}, lookupIn(map[string]string{"SET": "v", "EMPTY": ""}))
	want := []string{"A=1", "SET=v", "EMPTY=", "B=", "=x"} // "=x" is containerEnv's to refuse
	if !slices.Equal(got, want) {
		t.Errorf("ResolveEnv = %q, want %q", got, want)
	}
}

func TestReadEnvFile(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		body string
		want []string
		err  string
	}{
		{"A=1\n# c\n\n  B = 2 \nSET\nUNSET\nC=\"q\"\n", []string{"A=1", "SET=v", "C=\"q\""}, "line 4"},
		{"A=1\n# c\n\n  B=2 \nSET\nUNSET\nC=\"q\"\n", []string{"A=1", "B=2 ", "SET=v", `C="q"`}, ""},
		{"=1\n", nil, "line 1"},
		{"", nil, ""},
	} {
		path := filepath.Join(dir, "env")
		os.WriteFile(path, []byte(c.body), 0o644)
		got, err := ReadEnvFile(path, lookupIn(map[string]string{"SET": "v"}))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: err %v, want %q", c.body, err, c.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%q: %q, %v; want %q", c.body, got, err, c.want)
		}
	}
	if _, err := ReadEnvFile(filepath.Join(dir, "missing"), os.LookupEnv); err == nil || !strings.Contains(err.Error(), "--env-file") {
		t.Errorf("missing file: %v", err)
	}
}

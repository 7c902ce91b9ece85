package main

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
)

// execute runs oak's command tree on args, as main would, and returns
// what it printed and the error main would report.
func execute(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"--root", t.TempDir()}, args...))
	err := root.Execute()
	return out.String(), err
}

// Unknown verbs fail, at every level, naming the verb and the group.
func TestUnknownCommand(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, `unknown command "bogus" for "oak"`},
		{[]string{"image", "bogus"}, `unknown command "bogus" for "oak image"`},
		{[]string{"volume", "bogus"}, `unknown command "bogus" for "oak volume"`},
		{[]string{"bench", "bogus"}, `unknown command "bogus" for "oak bench"`},
	} {
		_, err := execute(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("oak %s: error %v, want %q", strings.Join(c.args, " "), err, c.want)
		}
	}
	// A group alone still shows its help, successfully.
	out, err := execute(t, "image")
	if err != nil || !strings.Contains(out, "Usage:") {
		t.Errorf("oak image: %v, output %q; want its help", err, out)
	}
}

// A flag error points at the help of the command that has the flag.
func TestFlagErrorHint(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "(see 'oak --help')"},
		{[]string{"run", "--bogus", "x"}, "run: unknown flag: --bogus (see 'oak run --help')"},
		{[]string{"image", "ls", "--bogus"}, "image ls: unknown flag: --bogus (see 'oak image ls --help')"},
		{[]string{"volume", "create", "--bogus", "x"}, "(see 'oak volume create --help')"},
	} {
		_, err := execute(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "oak oak") {
			t.Errorf("oak %s: error %v, want %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, err := execute(t, args...)
		if err != nil || !strings.HasPrefix(out, "oak version ") || !strings.Contains(out, runtime.Version()) {
			t.Errorf("oak %s: %v, output %q; want the version and %s", args[0], err, out, runtime.Version())
		}
	}
}

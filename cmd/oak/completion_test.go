package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// Every verb whose first argument names a container, an image or a volume
// completes it: a verb added later without a ValidArgsFunction fails here.
func TestEveryNamedArgumentCompletes(t *testing.T) {
	takesName := regexp.MustCompile(`^\S+( \[[^]]*\])* (CONTAINER|IMAGE|NAME|NAME\|ID)\b`)
	var walk func(c *cobra.Command)
	checked := 0
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.Hidden || !takesName.MatchString(c.Use) {
			return
		}
		checked++
		if c.ValidArgsFunction == nil {
			t.Errorf("%q (%s) takes a name but completes none", c.CommandPath(), c.Use)
		}
	}
	walk(newRootCmd())
	if checked < 15 {
		t.Errorf("only %d verbs look like they take a name; is the pattern still right?", checked)
	}
}

// The completion scripts are cobra's, for the shells docker's are for.
func TestCompletionScripts(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		out, err := execute(t, "completion", sh)
		if err != nil || !strings.Contains(out, "__complete") {
			t.Errorf("oak completion %s: %v; want a script that calls __complete", sh, err)
		}
	}
	// With no containers, nothing is offered and no file names either.
	out, err := execute(t, "__complete", "rm", "")
	if err != nil || !strings.HasPrefix(out, ":4\n") {
		t.Errorf("oak __complete rm '' in an empty state root: %q, %v; want only the no-file directive", out, err)
	}
}

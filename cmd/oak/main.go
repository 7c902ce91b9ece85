// Command oak is the Oak container engine's command-line front end, with
// docker/podman habits: oak run, ps, logs, kill, rm, and oak bench.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	// The container-side launch step; runs before main in a container's init.
	_ "github.com/oak-engine/oak/sandbox/nsinit"
)

// exitError carries a status for main to exit with, after its message (if any).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// Exit statuses of oak's own failures, as docker uses them.
const (
	exitEngine = 125 // oak itself failed: bad flags, bad image, launch error
)

func main() {
	root := newRootCmd()
	err := root.Execute()
	if err == nil {
		return
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(os.Stderr, "oak: "+ee.msg)
		}
		os.Exit(ee.code)
	}
	fmt.Fprintln(os.Stderr, "oak: "+oneLine(err.Error()))
	os.Exit(exitEngine)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

func newRootCmd() *cobra.Command {
	var stateRoot string
	root := &cobra.Command{
		Use:           "oak",
		Short:         "Run containers that have no ambient authority",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	def := os.Getenv("OAK_ROOT")
	if def == "" {
		def = "/var/lib/oak"
	}
	root.PersistentFlags().StringVar(&stateRoot, "root", def, "state root (env OAK_ROOT)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%s: %w (see 'oak %s --help')", c.Name(), err, c.Name())
	})
	st := func() string { return stateRoot }
	root.AddCommand(newRunCmd(st), newPsCmd(st), newKillCmd(st), newRmCmd(st), newLogsCmd(st),
		newRevokeCmd(st), newGrantsCmd(st), newPortCmd(st), newVolumeCmd(st), newImageCmd(st),
		newDemoRootFSCmd(), newBenchCmd(st), newSuperviseCmd(st), newNetServiceCmd(), newNetServerCmd())
	root.AddCommand(newStorageLoadCmd())
	return root
}

// printJSON writes v to standard output as indented JSON.
func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

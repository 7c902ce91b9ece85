// Command oak is the Oak container engine's command-line front end, with
// docker/podman habits: oak run, ps, logs, kill, rm, and oak bench.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/oak-engine/oak/engine"
	"github.com/oak-engine/oak/internal/trace"

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
	exitFailed        = 1   // a verb on an existing object failed, or there is no such container
	exitEngine        = 125 // oak itself failed: bad flags, bad image, launch error
	exitNotExecutable = 126 // the container's command is there but cannot be run
	exitNotFound      = 127 // the container's command is not in the image
)

// exitStatus is the status main exits with after err.
func exitStatus(err error) int {
	switch {
	case errors.Is(err, engine.ErrNoSuchContainer):
		return exitFailed
	case errors.Is(err, engine.ErrCommandNotFound):
		return exitNotFound
	case errors.Is(err, engine.ErrCommandNotExecutable):
		return exitNotExecutable
	}
	return exitEngine
}

func main() {
	trace.Mark("cli: main")
	if filepath.Base(os.Args[0]) == runtimeName {
		os.Exit(runtimeMain(os.Args[1:]))
	}
	if a := os.Args; len(a) == 5 && a[1] == "--root" && a[3] == supervisorVerb {
		// A detached container's supervisor (engine.RunDetached starts it
		// so, always): it lives as long as its container, so it skips the
		// command tree, whose flags alone are a third of its heap.
		if err := supervise(a[2], a[4]); err != nil {
			fmt.Fprintln(os.Stderr, "oak: "+oneLine(err.Error()))
			os.Exit(exitStatus(err))
		}
		return
	}
	root := newRootCmd()
	err := root.Execute()
	trace.Mark("cli: done")
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
	os.Exit(exitStatus(err))
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
	addDaemonFlags(root.PersistentFlags())
	addTokenFlag(root.PersistentFlags())
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		if !c.HasParent() {
			return fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())
		}
		verb := strings.TrimPrefix(c.CommandPath(), c.Root().Name()+" ")
		return fmt.Errorf("%s: %w (see '%s --help')", verb, err, c.CommandPath())
	})
	root.Version = version
	root.SetVersionTemplate("{{versionText}}")
	st := func() string { return stateRoot }
	root.AddCommand(newRunCmd(st), newPsCmd(st), newKillCmd(st), newRmCmd(st), newLogsCmd(st),
		newRevokeCmd(st), newGrantsCmd(st), newPortCmd(st), newExecCmd(st), newAttachCmd(st), newVolumeCmd(st), newFactoryCmd(st), newTenantCmd(st), newFunctionCmd(st), newImageCmd(st),
		newInspectCmd(st), newContainerCmd(st), newSystemCmd(st), newInfoCmd(st),
		// docker's top-level shorthands for image verbs
		newImagesCmd(st, "images"), newRmiCmd(st, "rmi IMAGE..."), newPullCmd(st),
		newImportCmd(st, "load -i FILE|DIR"), newSaveCmd(st),
		newDemoRootFSCmd(), newBenchCmd(st), newSuperviseCmd(st), newNetServiceCmd(), newNetServerCmd(),
		newVersionCmd(), newStopCmd(st), newStartCmd(st), newRestartCmd(st), newWaitCmd(st))
	root.AddCommand(newStorageLoadCmd(), newRuntimeCmd(), newDaemonCmd(st), newStandbyCmd(st))
	refuseUnknown(root)
	return root
}

func init() {
	cobra.AddTemplateFunc("versionText", versionText)
}

// refuseUnknown makes every command group (a command with sub-commands
// and no action of its own) fail on an argument that names none of them,
// with `unknown command "x" for "oak image"`, instead of printing its help
// and exiting 0 as cobra does for groups other than the root. A group
// given no argument prints its help.
func refuseUnknown(c *cobra.Command) {
	if c.HasSubCommands() && !c.Runnable() {
		c.Args = cobra.NoArgs
		c.RunE = func(cmd *cobra.Command, args []string) error { return cmd.Help() }
	}
	for _, sub := range c.Commands() {
		refuseUnknown(sub)
	}
}

// printJSON writes v to standard output as indented JSON.
func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/oak-engine/oak/engine"
)

func newAttachCmd(stateRoot func() string) *cobra.Command {
	var keys string
	cmd := &cobra.Command{
		Use:   "attach [--detach-keys ctrl-p,ctrl-q] CONTAINER",
		Short: "Attach to the terminal of a container started with -dt",
		Long: `Attach this terminal to the terminal of a running container started with
-dt: what you type goes to it, what it prints comes here (this terminal in
raw mode meanwhile). The detach keys (default ctrl-p ctrl-q) leave it
running; otherwise attach ends with the container, with its exit status.
A container without a terminal has none to attach to: use oak logs -f.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeRunning(true, stateRoot),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := engine.ParseDetachKeys(keys); err != nil {
				return err
			}
			// Through the daemon (a tenant's own containers only), or
			// in-process; the same terminal either way.
			b, err := openBackend(stateRoot())
			if err != nil {
				return err
			}
			err = attachTerminal(b, args[0], keys)
			if routeMissing(err) && !asTenant() {
				// A daemon from before attach went through it (an
				// upgrade): this process attaches, as then.
				e, eerr := engine.New(stateRoot())
				if eerr != nil {
					return eerr
				}
				return attachTerminal(localBackend{e}, args[0], keys)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&keys, "detach-keys", engine.DefaultDetachKeys, "keys that detach: a comma-separated list of ctrl-<letter> or single characters")
	return cmd
}

// attachTerminal attaches this process's terminal to that of container
// ref (see oak attach), through b: raw mode meanwhile, the window size
// passed on, the exit status of the container as its own.
func attachTerminal(b backend, ref, keys string) error {
	in := int(os.Stdin.Fd())
	if term.IsTerminal(in) {
		if st, err := term.MakeRaw(in); err == nil {
			defer term.Restore(in, st)
			// Ended by a signal, attach still gives the terminal
			// its mode back (the container runs on).
			ends := make(chan os.Signal, 1)
			signal.Notify(ends, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT)
			go func() {
				s := <-ends
				term.Restore(in, st)
				os.Exit(128 + int(s.(syscall.Signal)))
			}()
		}
	}
	size := func() (uint16, uint16) {
		ws, err := unix.IoctlGetWinsize(in, unix.TIOCGWINSZ)
		if err != nil {
			return 0, 0
		}
		return ws.Row, ws.Col
	}
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	defer signal.Stop(winch)
	code, detached, err := b.Attach(ref, os.Stdin, os.Stdout, size, winch, keys)
	if err != nil {
		return err
	}
	if detached {
		fmt.Fprint(os.Stderr, "\r\noak: detached; the container runs on\r\n")
		return nil
	}
	if code != 0 {
		return &exitError{code: code}
	}
	return nil
}

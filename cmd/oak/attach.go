package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
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
			seq, err := parseDetachKeys(keys)
			if err != nil {
				return err
			}
			e, err := engine.New(stateRoot())
			if err != nil {
				return err
			}
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
			code, detached, err := e.Attach(args[0], os.Stdin, os.Stdout, size, winch, seq)
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
		},
	}
	cmd.Flags().StringVar(&keys, "detach-keys", "ctrl-p,ctrl-q", "keys that detach: a comma-separated list of ctrl-<letter> or single characters")
	return cmd
}

// parseDetachKeys reads docker's --detach-keys syntax.
func parseDetachKeys(s string) ([]byte, error) {
	var seq []byte
	for _, k := range strings.Split(s, ",") {
		switch {
		case len(k) == 6 && strings.HasPrefix(k, "ctrl-") && k[5] >= 'a' && k[5] <= 'z':
			seq = append(seq, k[5]-'a'+1)
		case len(k) == 1:
			seq = append(seq, k[0])
		default:
			return nil, fmt.Errorf("invalid --detach-keys %q: want e.g. ctrl-p,ctrl-q", s)
		}
	}
	return seq, nil
}

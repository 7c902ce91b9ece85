package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/oak-engine/oak/engine"
)

// stopTimeout reads -t SECS: whole seconds, 0 or more.
func stopTimeout(secs int) (time.Duration, error) {
	if secs < 0 {
		return 0, fmt.Errorf("invalid --time %d: want seconds, 0 or more", secs)
	}
	return time.Duration(secs) * time.Second, nil
}

// stopSignalFlag reads -s/--signal of stop and restart: "" is the
// container's own stop signal.
func stopSignalFlag(s string) (syscall.Signal, error) {
	if s == "" {
		return 0, nil
	}
	return parseSignal(s)
}

func newStopCmd(stateRoot func() string) *cobra.Command {
	var secs int
	var sig string
	cmd := &cobra.Command{
		Use:   "stop [-t SECS] [-s SIGNAL] CONTAINER...",
		Short: "Stop containers: the stop signal (the image's, else SIGTERM), then SIGKILL after a grace period",
		Long: `Stop containers. Each is sent its image's stop signal (SIGTERM if the image
names none) and, if it has not ended after -t seconds, SIGKILL. A stopped
container stays stopped: its restart policy does not start it again until
oak start.`,
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: completeRunning(false, stateRoot),
		RunE: func(cmd *cobra.Command, args []string) error {
			timeout, err := stopTimeout(secs)
			if err != nil {
				return err
			}
			s, err := stopSignalFlag(sig)
			if err != nil {
				return err
			}
			b, err := openBackend(stateRoot())
			if err != nil {
				return err
			}
			return eachRef(args, func(ref string) error {
				_, err := b.Stop(ref, s, timeout)
				return err
			})
		},
	}
	cmd.Flags().IntVarP(&secs, "time", "t", int(engine.DefaultStopTimeout/time.Second), "seconds to wait after the stop signal before SIGKILL")
	cmd.Flags().StringVarP(&sig, "signal", "s", "", "signal to send first (default: the image's stop signal, else TERM)")
	return cmd
}

func newStartCmd(stateRoot func() string) *cobra.Command {
	var attach bool
	cmd := &cobra.Command{
		Use:   "start [-a] CONTAINER...",
		Short: "Start stopped containers again, with the same command, grants and volumes",
		Long: `Start exited containers again: the same command, environment, grants and
volumes, under a new supervisor; the output goes on in the same log. With
-a, oak stays attached to one container, prints its stdout and stderr,
forwards signals to it, and exits with its status.`,
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: completeContainers(stateRoot),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !attach {
				b, err := openBackend(stateRoot())
				if err != nil {
					return err
				}
				return eachRef(args, b.Start)
			}
			// Attached, this process is the container's supervisor.
			e, err := engine.New(stateRoot())
			if err != nil {
				return err
			}
			if len(args) > 1 {
				return fmt.Errorf("start: -a attaches to one container, not %d", len(args))
			}
			ex, err := e.StartAttached(args[0], engine.Stdio{Stdout: os.Stdout, Stderr: os.Stderr})
			if err != nil {
				return err
			}
			if ex.Code != 0 {
				return &exitError{code: ex.Code}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&attach, "attach", "a", false, "stay attached: print its output and exit with its status")
	return cmd
}

func newRestartCmd(stateRoot func() string) *cobra.Command {
	var secs int
	var sig string
	cmd := &cobra.Command{
		Use:               "restart [-t SECS] [-s SIGNAL] CONTAINER...",
		Short:             "Stop containers (as oak stop) and start them again",
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: completeContainers(stateRoot),
		RunE: func(cmd *cobra.Command, args []string) error {
			timeout, err := stopTimeout(secs)
			if err != nil {
				return err
			}
			s, err := stopSignalFlag(sig)
			if err != nil {
				return err
			}
			b, err := openBackend(stateRoot())
			if err != nil {
				return err
			}
			return eachRef(args, func(ref string) error { return b.Restart(ref, s, timeout) })
		},
	}
	cmd.Flags().IntVarP(&secs, "time", "t", int(engine.DefaultStopTimeout/time.Second), "seconds to wait after the stop signal before SIGKILL")
	cmd.Flags().StringVarP(&sig, "signal", "s", "", "signal to send first (default: the image's stop signal, else TERM)")
	return cmd
}

func newWaitCmd(stateRoot func() string) *cobra.Command {
	return &cobra.Command{
		Use:               "wait CONTAINER...",
		Short:             "Wait until containers stop, then print their exit statuses",
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: completeContainers(stateRoot),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := openBackend(stateRoot())
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			failed := 0
			for _, ref := range args {
				code, err := b.Wait(ctx, ref)
				if err != nil {
					fmt.Fprintln(os.Stderr, "oak: "+oneLine(err.Error()))
					failed++
					continue
				}
				fmt.Println(code)
			}
			if failed > 0 {
				return &exitError{code: exitFailed}
			}
			return nil
		},
	}
}

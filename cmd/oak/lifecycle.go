package main

import (
	"context"
	"errors"
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
forwards signals to it, and exits with its status; one started with -dt
is attached to as oak attach does (its terminal, the detach keys).`,
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
			if len(args) > 1 {
				return fmt.Errorf("start: -a attaches to one container, not %d", len(args))
			}
			if asTenant() || daemonWanted() {
				b, err := openBackend(stateRoot())
				if err != nil {
					return err
				}
				return startAttached(b, args[0])
			}
			// In-process, this process is the container's supervisor.
			e, err := engine.New(stateRoot())
			if err != nil {
				return err
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

// startAttached is oak start -a through the daemon, whose supervisor
// runs the container: the container is started, then followed, as oak
// attach follows a -dt container's terminal, or else as oak logs -f
// follows its output from its start (signals to this process are sent
// to it meanwhile); it exits with the container's status.
func startAttached(b backend, ref string) error {
	ci, err := b.InspectContainer(ref)
	if err != nil {
		return err
	}
	if ci.State.Running {
		return fmt.Errorf("container %s: already running; oak logs -f follows its output", ref)
	}
	since := time.Now()
	if err := b.Start(ref); err != nil {
		return err
	}
	if ci.Config.Tty {
		err := attachTerminal(b, ref, engine.DefaultDetachKeys)
		var ee *exitError
		if err == nil || errors.As(err, &ee) {
			return err
		}
		if c, ierr := b.InspectContainer(ref); ierr != nil || c.State.Running {
			return err
		}
		// It ended before the terminal was reached: its output is in its log.
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	go func() {
		for s := range sigs {
			b.Kill(ref, s.(syscall.Signal))
		}
	}()
	if err := b.Logs(context.Background(), ref, engine.LogsOptions{Follow: true, Tail: -1, Since: since}, os.Stdout, os.Stderr); err != nil {
		return err
	}
	code, err := b.Wait(context.Background(), ref)
	if err != nil {
		return err
	}
	if code != 0 {
		return &exitError{code: code}
	}
	return nil
}

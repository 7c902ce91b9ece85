package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/oak-engine/oak/api"
	"github.com/oak-engine/oak/engine"
)

func newDaemonCmd(stateRoot func() string) *cobra.Command {
	var logFormat, logLevel, logFile, logMaxSize, logMaxFile string
	var readyFD, poolSize int
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Serve the engine's API on ROOT/oak.sock (started on first use by the CLI)",
		Long: `Serve the engine's HTTP/JSON API on the unix socket ROOT/oak.sock (mode 0600),
or on the socket systemd passes (socket activation), and tenants' requests
on ROOT.tenants.sock (mode 0666; each request is its caller's, by the
peer's uid: root reaches everything, a tenant its own, anyone else is
refused; see docs/tenants.md). One daemon serves a
state root; a second one exits naming the first one's pid. Containers do
not depend on it: each has its own supervisor, so they keep running when
the daemon is stopped, killed or upgraded, and the next daemon answers for
them. SIGTERM or SIGINT stop it gracefully. Metrics are on GET /metrics.
The CLI starts a daemon when none answers (OAK_NO_DAEMON=1 or --no-daemon:
the CLI runs the engine itself). See docs/daemon.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var out io.Writer = os.Stderr
			if logFile != "" {
				size, err := engine.ParseLogMaxSize(logMaxSize)
				if err != nil {
					return err
				}
				files, err := engine.ParseLogMaxFile(logMaxFile)
				if err != nil {
					return err
				}
				dl, err := api.OpenDaemonLog(stateRoot(), logFile, size, files, true)
				if err != nil {
					return err
				}
				defer dl.Close()
				out = dl
			}
			log, err := newLogger(out, logFormat, logLevel)
			if err != nil {
				return err
			}
			if poolSize < 0 || poolSize > maxPool {
				return fmt.Errorf("invalid --pool %d: want 0 to %d", poolSize, maxPool)
			}
			var ready *os.File
			if readyFD > 0 {
				syscall.CloseOnExec(readyFD)
				ready = os.NewFile(uintptr(readyFD), "ready")
			}
			e, err := engine.New(stateRoot())
			if err != nil {
				if ready != nil {
					fmt.Fprintln(ready, oneLine(err.Error()))
				}
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return api.Serve(ctx, e, api.Config{Root: e.Root, Log: log, Ready: ready, Pool: poolSize})
		},
	}
	f := cmd.Flags()
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json (log/slog), on stderr")
	f.StringVar(&logLevel, "log-level", "info", "least level logged: debug (every request), info, warn or error")
	f.StringVar(&logFile, "log-file", "", "append the log to this file, rotated (and make it stdout and stderr), instead of stderr; a daemon the CLI starts logs to ROOT/daemon.log")
	f.StringVar(&logMaxSize, "log-max-size", "10m", "with --log-file: rotate the file at this size (0: never)")
	f.StringVar(&logMaxFile, "log-max-file", "3", "with --log-file: files kept, the current one included")
	f.IntVar(&poolSize, "pool", api.DefaultPool, "supervisors with a prepared sandbox kept for foreground runs (0: none;\neach run then gets a supervisor started for it)")
	f.IntVar(&readyFD, "ready-fd", 0, "report readiness (or the start error) on this descriptor")
	f.MarkHidden("ready-fd")
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "Say whether a daemon serves the state root, its pid and the host core it holds",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if pid, held := api.LockHolder(stateRoot()); held {
				fmt.Printf("running, pid %d\n", pid)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if ci, err := api.NewClient(stateRoot()).Core(ctx); err == nil {
					current := "current"
					if ci.Generation != ci.RecordsGeneration {
						current = fmt.Sprintf("records at %d: rebuilt at its next use", ci.RecordsGeneration)
					}
					fmt.Printf("host core: %d factories, %d containers, %d spaces, %d capabilities; generation %d (%s); %d builds, the last %.1f ms; %d updates in place\n",
						ci.Factories, ci.Containers, ci.Spaces, ci.Capabilities, ci.Generation, current, ci.Builds, ci.BuildSeconds*1000, ci.Syncs)
				}
				return nil
			}
			fmt.Println("not running")
			return &exitError{code: exitFailed}
		},
	}, &cobra.Command{
		Use:   "stop",
		Short: "Stop the state root's daemon gracefully (its containers keep running)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return stopDaemon(stateRoot())
		},
	})
	return cmd
}

// maxPool bounds oak daemon --pool: each idle standby is a process and
// an empty sandbox.
const maxPool = 256

// newStandbyCmd is the body of a standby supervisor the daemon starts
// (api.StandbyCmd, see api/pool_linux.go).
func newStandbyCmd(stateRoot func() string) *cobra.Command {
	var prepare bool
	cmd := &cobra.Command{
		Use:    api.StandbyCmd,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := engine.New(stateRoot())
			if err != nil {
				return err
			}
			if err := api.ServeStandby(e, os.NewFile(3, "standby"), prepare); err != nil {
				return err
			}
			// Its work is done, the status reported: nothing of main's
			// (its trace mark would be taken for the client's).
			os.Exit(0)
			return nil
		},
	}
	cmd.Flags().BoolVar(&prepare, "prepare", false, "prepare a sandbox ahead")
	return cmd
}

// newLogger makes the daemon's structured logger.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("invalid --log-level %q: want debug, info, warn or error", level)
	}
	o := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return nil, fmt.Errorf("invalid --log-format %q: want text or json", format)
}

// stopDaemon sends the root's daemon SIGTERM and waits until it has let
// go of the lock.
func stopDaemon(root string) error {
	var pid int
	for {
		var held bool
		if pid, held = api.LockHolder(root); !held {
			return nil
		}
		if pid > 0 {
			break
		}
		time.Sleep(time.Millisecond) // it took the lock and is writing its pid
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("daemon stop: pid %d: %w", pid, err)
	}
	for deadline := time.Now().Add(api.ShutdownGrace + 5*time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, ok := api.LockHolder(root); !ok {
			return nil
		}
	}
	return fmt.Errorf("daemon stop: pid %d still holds %s after %v", pid, api.LockName, api.ShutdownGrace+5*time.Second)
}

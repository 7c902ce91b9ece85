package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/oak-engine/oak/api"
	"github.com/oak-engine/oak/engine"
)

// functionBackend is what oak function asks for: the daemon's client, or
// the engine in this process (OAK_NO_DAEMON=1, --no-daemon). Through the
// daemon, invocations of every client share each function's concurrency
// fairly; in-process, each oak shares only the kernel's bound of the
// function's factory.
type functionBackend interface {
	CreateFunction(o engine.FunctionOptions) (*engine.FunctionInfo, error)
	ListFunctions() ([]*engine.FunctionInfo, error)
	InspectFunction(name string) (*engine.FunctionInfo, error)
	RemoveFunction(name string) error
	Invoke(ctx context.Context, name string, stdin io.Reader, stdout, stderr io.Writer) (engine.Invocation, error)
}

func openFunctionBackend(root string) (functionBackend, error) {
	e, err := engine.New(root)
	if err != nil {
		return nil, err
	}
	if !daemonWanted() {
		return e, nil
	}
	c := api.NewClient(e.Root)
	if err := ensureDaemon(c, e.Root); err != nil {
		return nil, err
	}
	return functionClient{c}, nil
}

// functionClient is the daemon's client as a functionBackend.
type functionClient struct{ c *api.Client }

func (b functionClient) CreateFunction(o engine.FunctionOptions) (*engine.FunctionInfo, error) {
	req := api.FunctionCreate{Name: o.Name, Image: o.Image, Cmd: o.Command, Env: o.Env,
		Memory: o.Limits.MemoryBytes, PidsLimit: o.Limits.Pids, NanoCpus: o.Limits.CPUMilli * 1_000_000,
		Concurrency: o.Concurrency, Warm: o.Warm}
	if o.Limits.Timeout > 0 {
		req.Timeout = o.Limits.Timeout.String()
	}
	return b.c.CreateFunction(context.Background(), req)
}

func (b functionClient) ListFunctions() ([]*engine.FunctionInfo, error) {
	return b.c.Functions(context.Background())
}

func (b functionClient) InspectFunction(name string) (*engine.FunctionInfo, error) {
	return b.c.Function(context.Background(), name)
}

func (b functionClient) RemoveFunction(name string) error {
	return b.c.RemoveFunction(context.Background(), name)
}

func (b functionClient) Invoke(ctx context.Context, name string, stdin io.Reader, stdout, stderr io.Writer) (engine.Invocation, error) {
	return b.c.Invoke(ctx, name, stdin, stdout, stderr)
}

// functionRow is one row of oak function ls.
type functionRow struct {
	Name        string
	Image       string
	Memory      string
	Pids        int64
	CPUs        string
	Timeout     string
	Concurrency int
	Warm        int
	CreatedAt   string
}

const functionTable = "{{.Name}}\t{{.Image}}\t{{.Memory}}\t{{.Pids}}\t{{.CPUs}}\t{{.Timeout}}\t{{.Concurrency}}\t{{.Warm}}\t{{.CreatedAt}}"

func completeFunctions(stateRoot func() string) completeFunc {
	return completeNames(false, func(e *engine.Engine) []string {
		fs, err := e.ListFunctions()
		if err != nil {
			return nil
		}
		names := make([]string, 0, len(fs))
		for _, f := range fs {
			names = append(names, f.Name)
		}
		return names
	}, stateRoot)
}

func newFunctionCmd(stateRoot func() string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "function",
		Short: "Manage functions: one short-lived container per invocation, input on stdin, answer on stdout",
	}
	var memory, pids, cpus string
	var timeout time.Duration
	var concurrency, warm int
	var env []string
	create := &cobra.Command{
		Use:   "create [flags] NAME IMAGE [COMMAND [ARG...]]",
		Short: "Create a function",
		Long: `Create a function: each invocation (oak function invoke, or POST
/v1/functions/NAME/invoke) runs COMMAND (default: the image's) in a
container of its own, with the request on stdin and its stdout as the
answer; the container is removed when it ends.

--memory, --pids and --cpus bound each invocation. The function gets a
factory of its own, fn-NAME, whose quota is --concurrency times them: the
kernel bounds the sum of its concurrent invocations by it, and the daemon
runs at most --concurrency at once, sharing them fairly among its
clients. --timeout kills an invocation that runs longer.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, a := range args[:2] {
				if len(a) > 1 && a[0] == '-' {
					return fmt.Errorf("flag %s after NAME: oak function create takes its flags before NAME (what follows IMAGE is the command's)", a)
				}
			}
			o := engine.FunctionOptions{Name: args[0], Image: args[1], Command: args[2:], Env: env,
				Concurrency: concurrency, Warm: warm}
			var err error
			if memory != "" {
				if o.Limits.MemoryBytes, err = engine.ParseMemory(memory); err != nil {
					return err
				}
			}
			if pids != "" {
				n, perr := strconv.ParseInt(pids, 10, 64)
				if perr != nil || n <= 0 {
					return fmt.Errorf("invalid --pids %q: want a whole number above 0", pids)
				}
				o.Limits.Pids = n
			}
			if cpus != "" {
				if o.Limits.CPUMilli, err = engine.ParseCPUs(cpus, runtime.NumCPU()); err != nil {
					return err
				}
			}
			if timeout < 0 {
				return fmt.Errorf("invalid --timeout %v: negative", timeout)
			}
			o.Limits.Timeout = timeout
			// The daemon has no working directory of ours: a root file
			// system directory is named by its absolute path.
			if fi, err := os.Stat(o.Image); err == nil && fi.IsDir() && o.Image != engine.DemoImage {
				if abs, err := filepath.Abs(o.Image); err == nil {
					o.Image = abs
				}
			}
			b, err := openFunctionBackend(stateRoot())
			if err != nil {
				return err
			}
			f, err := b.CreateFunction(o)
			if err != nil {
				return err
			}
			fmt.Println(f.Name)
			return nil
		},
	}
	create.Flags().SetInterspersed(false) // flags after IMAGE are the command's
	// NAME is new; IMAGE completes as an image; the command, nothing.
	imagesAt1 := completeImages(false, stateRoot)
	create.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) == 1 {
			return imagesAt1(cmd, args, toComplete)
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	cf := create.Flags()
	cf.StringVarP(&memory, "memory", "m", "", "memory of each invocation, e.g. 128m (default 128m)")
	cf.StringVar(&pids, "pids", "", "processes and threads of each invocation (default 64)")
	cf.StringVar(&cpus, "cpus", "", "CPU time of each invocation, in cores (default 1)")
	cf.DurationVar(&timeout, "timeout", 0, "kill an invocation running longer, e.g. 30s (default 1m)")
	cf.IntVar(&concurrency, "concurrency", 0, "invocations at once; the factory holds this many times the limits (default 4)")
	cf.IntVar(&warm, "warm", 0, "prepared sandboxes the daemon keeps for the function (at most --concurrency)")
	cf.StringArrayVarP(&env, "env", "e", nil, "set an environment variable KEY=VALUE")

	var lsFormat string
	var quiet bool
	ls := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List functions with their per-invocation limits",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFormat(lsFormat, functionTable)
			if err != nil {
				return err
			}
			b, err := openFunctionBackend(stateRoot())
			if err != nil {
				return err
			}
			list, err := b.ListFunctions()
			if err != nil {
				return err
			}
			if quiet {
				for _, fn := range list {
					fmt.Println(fn.Name)
				}
				return nil
			}
			rows := make([]functionRow, 0, len(list))
			for _, fn := range list {
				name := fn.Name
				if fn.Removing {
					name += " (removing)"
				}
				rows = append(rows, functionRow{Name: name, Image: fn.Image, Memory: sizeText(fn.Limits.MemoryBytes),
					Pids: fn.Limits.Pids, CPUs: cpuText(fn.Limits.CPUMilli), Timeout: fn.Limits.Timeout,
					Concurrency: fn.Concurrency, Warm: fn.Warm, CreatedAt: since(fn.Created)})
			}
			return f.rows(os.Stdout, rows, map[string]string{"CreatedAt": "CREATED", "CPUs": "CPUS"})
		},
	}
	ls.Flags().StringVar(&lsFormat, "format", "", "table (default), json, or a Go template such as {{.Name}}")
	ls.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the names")

	var inspectFormat string
	inspect := &cobra.Command{
		Use:   "inspect NAME...",
		Short: "Show functions as JSON",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := openFunctionBackend(stateRoot())
			if err != nil {
				return err
			}
			return printInspected(inspectFormat, args, func(name string) (any, error) {
				fi, err := b.InspectFunction(name)
				if err != nil {
					return nil, err
				}
				return fi, nil
			})
		},
	}
	inspect.ValidArgsFunction = completeFunctions(stateRoot)
	inspect.Flags().StringVarP(&inspectFormat, "format", "f", "", "json (default) or a Go template such as {{.Concurrency}}")

	rm := &cobra.Command{
		Use:   "rm NAME...",
		Short: "Remove functions, their factories and any invocation still running",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := openFunctionBackend(stateRoot())
			if err != nil {
				return err
			}
			return eachRef(args, b.RemoveFunction)
		},
	}
	rm.ValidArgsFunction = completeFunctions(stateRoot)

	invoke := &cobra.Command{
		Use:   "invoke NAME < INPUT",
		Short: "Invoke a function: stdin is its input, its stdout and stderr are printed, its status is oak's",
		Long: `Invoke a function once: oak's stdin is the invocation's, its stdout and
stderr are printed, and oak exits with the command's status (137 if it was
killed; a timeout is reported on stderr). Through the daemon (the default)
the input is streamed to the command as it is read, at most 64 MiB (more
is refused, and the command killed), and stdout and stderr are printed
as the command writes them, all of them.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := openFunctionBackend(stateRoot())
			if err != nil {
				return err
			}
			// Ctrl-C ends the invocation (the container is killed), not
			// just this oak.
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
			defer stop()
			inv, err := b.Invoke(ctx, args[0], os.Stdin, os.Stdout, os.Stderr)
			if err != nil && (inv.ID == "" || inv.LaunchFailed) {
				return err
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "oak: "+oneLine(err.Error()))
			}
			switch {
			case inv.TimedOut:
				fmt.Fprintf(os.Stderr, "oak: function %s: %v: killed\n", args[0], engine.ErrFunctionTimeout)
			case inv.OOMKilled:
				fmt.Fprintf(os.Stderr, "oak: function %s: out of memory: killed\n", args[0])
			}
			if inv.Code != 0 {
				return &exitError{code: inv.Code}
			}
			return nil
		},
	}
	invoke.ValidArgsFunction = completeFunctions(stateRoot)
	cmd.AddCommand(create, ls, inspect, rm, invoke)
	return cmd
}

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/oak-engine/oak/api"
	"github.com/oak-engine/oak/engine"
	"github.com/oak-engine/oak/internal/trace"
)

// newBenchFunctionCmd measures what an invocation of a function costs
// beyond its command's own run.
func newBenchFunctionCmd() *cobra.Command {
	var runs int
	cmd := &cobra.Command{
		Use:   "function",
		Short: "Invocation overhead: a function invoking 'true', in-process and through the API, against a plain process",
		Long: `Measure the engine's overhead of a function invocation: the time from the
request to the command's exit, for a function whose command is 'true' in
the demo image, against a plain process running the same 'true' (os/exec,
start to exit). All run interleaved in this one invocation, in a fresh
state root with a daemon served by this process:

  plain         os/exec of the image's true
  engine-cold   Engine.Invoke: one container made, started, waited for
                and removed per invocation
  engine-warm   the same, served by a warm sandbox (--warm 1); the wait
                for the daemon to prepare it is not timed
  api-cold      POST /v1/functions/NAME/invoke through the daemon's socket
  api-warm      the same, warm

It prints medians, overhead (median minus plain's) and ratio to plain.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runs < 1 {
				return fmt.Errorf("invalid --runs %d: want at least 1", runs)
			}
			return benchFunction(cmd.Context(), runs, os.Stdout)
		},
	}
	cmd.Flags().IntVar(&runs, "runs", 30, "timed runs per variant")
	return cmd
}

func benchFunction(ctx context.Context, runs int, out io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	root, err := os.MkdirTemp("", "oak-bench-function-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	e, err := engine.New(root)
	if err != nil {
		return err
	}
	img, err := e.ResolveImage(engine.DemoImage)
	if err != nil {
		return err
	}
	for _, f := range []engine.FunctionOptions{
		{Name: "cold", Image: engine.DemoImage, Command: []string{"true"}, Concurrency: 1},
		{Name: "warm", Image: engine.DemoImage, Command: []string{"true"}, Concurrency: 1, Warm: 1},
	} {
		if _, err := e.CreateFunction(f); err != nil {
			return err
		}
		defer e.RemoveFunction(f.Name)
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() {
		served <- api.Serve(sctx, e, api.Config{Root: root, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	}()
	defer func() {
		stop()
		<-served
	}()
	c := api.NewClient(root)
	for deadline := time.Now().Add(startTimeout); c.Ping(ctx) != nil; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("bench function: the daemon did not answer within %v", startTimeout)
		}
	}
	trueBin := filepath.Join(img.Layers[len(img.Layers)-1], "bin", "true")
	// A warm variant fails unless the invocation took a warm sandbox.
	warm := func(inv engine.Invocation, err error) error {
		if err == nil && !inv.Warm {
			err = fmt.Errorf("invocation %s was not served warm", inv.ID)
		}
		return invoked(inv, err)
	}
	variants := []struct {
		name string
		run  func() error
	}{
		{"plain", func() error { return exec.Command(trueBin).Run() }},
		{"engine-cold", func() error { return invoked(e.Invoke(ctx, "cold", nil, io.Discard, io.Discard)) }},
		{"engine-warm", func() error { return warm(e.Invoke(ctx, "warm", nil, io.Discard, os.Stderr)) }},
		{"api-cold", func() error { return invoked(c.Invoke(ctx, "cold", nil, io.Discard, io.Discard)) }},
		{"api-warm", func() error { return warm(c.Invoke(ctx, "warm", nil, io.Discard, io.Discard)) }},
	}
	times := make([][]time.Duration, len(variants))
	for i := -3; i < runs; i++ { // three untimed rounds first
		for v, x := range variants {
			// Every variant starts with the warm sandbox ready and the
			// last invocation's record removed: none competes with a
			// refill or a teardown in the background.
			if err := waitWarm(e, "warm"); err != nil {
				return err
			}
			e.WaitTeardown()
			trace.Mark("bench: " + x.name)
			start := time.Now()
			if err := x.run(); err != nil {
				return fmt.Errorf("bench function: %s: %w", x.name, err)
			}
			if i >= 0 {
				times[v] = append(times[v], time.Since(start))
			}
			trace.Mark("bench: done")
		}
	}
	plain := median(times[0])
	fmt.Fprintf(out, "%-12s %12s %12s %8s   (medians of %d, request to exit of 'true')\n", "VARIANT", "MEDIAN", "OVERHEAD", "RATIO", runs)
	for v, x := range variants {
		m := median(times[v])
		fmt.Fprintf(out, "%-12s %12v %12v %8.2f\n", x.name, m.Round(time.Microsecond), (m - plain).Round(time.Microsecond),
			float64(m)/float64(plain))
	}
	return nil
}

// waitWarm waits until function name has a warm sandbox ready.
func waitWarm(e *engine.Engine, name string) error {
	for deadline := time.Now().Add(startTimeout); ; time.Sleep(200 * time.Microsecond) {
		f, err := e.InspectFunction(name)
		if err != nil {
			return err
		}
		if f.WarmReady > 0 {
			return nil
		}
		if f.WarmError != "" {
			return fmt.Errorf("bench function: warm sandbox of %s: %s", name, f.WarmError)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench function: no warm sandbox of %s within %v", name, startTimeout)
		}
	}
}

// invoked is the error of an invocation that did not run or did not
// exit 0.
func invoked(inv engine.Invocation, err error) error {
	if err == nil && inv.Code != 0 {
		err = fmt.Errorf("exit status %d", inv.Code)
	}
	return err
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/oak-engine/oak/api"
	"github.com/oak-engine/oak/bench"
	"github.com/oak-engine/oak/engine"
	"github.com/oak-engine/oak/internal/trace"
)

// newBenchFunctionCmd measures what an invocation of a function costs
// beyond its command's own run.
func newBenchFunctionCmd() *cobra.Command {
	var fl functionBenchFlags
	cmd := &cobra.Command{
		Use:   "function",
		Short: "Invocation overhead and throughput: a function invoking 'true', cold and warm, in-process and through the API, against a plain process and runc run",
		Long: `Measure the engine's overhead of a function invocation: the time from the
request to the command's exit, for a function whose command is 'true' in
the demo image. Two parts, each in fresh state roots.

One at a time (--runs timed rounds, all variants interleaved, the engine
and a daemon served by this process):

  plain         os/exec of the image's true
  runc          runc run of a bundle of the image's root running true
                (runc's default spec, a fresh container per invocation)
  engine-cold   Engine.Invoke: one container made, started, waited for
                and removed per invocation
  engine-warm   the same, served by a warm sandbox (--warm 1); the wait
                for the daemon to prepare it is not timed
  api-cold      POST /v1/functions/NAME/invoke through the daemon's socket
  api-warm      the same, warm
  api-ping      GET /v1/ready through the same socket: a request's own
                round trip, no invocation

It prints medians, 99th percentiles, overhead (median minus plain's) and
ratio to plain.

At once (--clients levels, --invocations per level and variant): a daemon
process of --daemon (default: this oak) serves functions of concurrency 32
(cold; warm with --warm 32), and N clients invoke them through the API as
fast as they can, against N clients each running runc run. It prints
throughput, median and 99th percentile latency, and the share of warm
invocations a warm sandbox served (the rest ran cold: the pool is refilled
in the background). Before each level the warm pool is full again and the
last level's containers are gone.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if fl.runs < 1 {
				return fmt.Errorf("invalid --runs %d: want at least 1", fl.runs)
			}
			if fl.invocations < 1 {
				return fmt.Errorf("invalid --invocations %d: want at least 1", fl.invocations)
			}
			levels, err := parseLevels(fl.clients)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			runc, err := findRunc(fl.runc)
			if err != nil {
				return err
			}
			if fl.runs > 0 && !fl.noSerial {
				if err := benchFunction(ctx, fl.runs, runc, os.Stdout); err != nil {
					return err
				}
			}
			if len(levels) == 0 {
				return nil
			}
			fmt.Fprintln(os.Stdout)
			return benchFunctionLoad(ctx, fl.daemon, runc, levels, fl.invocations, os.Stdout)
		},
	}
	f := cmd.Flags()
	f.IntVar(&fl.runs, "runs", 30, "timed runs per variant, one at a time")
	f.BoolVar(&fl.noSerial, "no-serial", false, "skip the one-at-a-time part")
	f.StringVar(&fl.clients, "clients", "1,2,4,8,16,32", `comma-separated numbers of concurrent clients ("" skips that part)`)
	f.IntVar(&fl.invocations, "invocations", 96, "invocations per level of clients and variant")
	f.StringVar(&fl.daemon, "daemon", "", "oak binary whose daemon serves the concurrent part (default: this one)")
	f.StringVar(&fl.runc, "runc", "", `runc binary (default: runc in $PATH; "none" leaves runc out)`)
	return cmd
}

type functionBenchFlags struct {
	runs, invocations     int
	noSerial              bool
	clients, daemon, runc string
}

// parseLevels parses --clients.
func parseLevels(s string) ([]int, error) {
	var ls []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > engine.MaxFunctionConcurrency {
			return nil, fmt.Errorf("invalid --clients %q: want numbers from 1 to %d", s, engine.MaxFunctionConcurrency)
		}
		ls = append(ls, n)
	}
	return ls, nil
}

// findRunc is the runc binary to compare with, "" to leave it out.
func findRunc(flag string) (string, error) {
	switch flag {
	case "none":
		return "", nil
	case "":
		p, err := exec.LookPath("runc")
		if err != nil {
			return "", nil
		}
		return p, nil
	}
	if _, err := os.Stat(flag); err != nil {
		return "", fmt.Errorf("invalid --runc: %w", err)
	}
	return flag, nil
}

// runcBaseline runs `runc run` of the demo image's true, one fresh
// container per call.
type runcBaseline struct {
	bin, bundle, state string
	ids                atomic.Int64
}

func newRuncBaseline(ctx context.Context, bin, work string, img *engine.Resolved) (*runcBaseline, error) {
	if bin == "" {
		return nil, nil
	}
	if len(img.Layers) != 1 {
		return nil, fmt.Errorf("bench function: runc: the demo image has %d layers, want 1", len(img.Layers))
	}
	r := &runcBaseline{bin: bin, bundle: filepath.Join(work, "runc-bundle"), state: filepath.Join(work, "runc-state")}
	if err := bench.WriteRuncBundle(ctx, bin, r.bundle, img.Layers[0], []string{"true"}); err != nil {
		return nil, err
	}
	return r, os.Mkdir(r.state, 0o700)
}

func (r *runcBaseline) run() error {
	id := fmt.Sprintf("oak-bench-fn-%d-%d", os.Getpid(), r.ids.Add(1))
	out, err := exec.Command(r.bin, "--root", r.state, "run", "--bundle", r.bundle, id).CombinedOutput()
	if err != nil {
		exec.Command(r.bin, "--root", r.state, "delete", "--force", id).Run()
		return fmt.Errorf("runc run: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

func benchFunction(ctx context.Context, runs int, runcBin string, out io.Writer) error {
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
	runc, err := newRuncBaseline(ctx, runcBin, root, img)
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
	if err := waitPing(ctx, c); err != nil {
		return err
	}
	trueBin := filepath.Join(img.Layers[len(img.Layers)-1], "bin", "true")
	// A warm variant fails unless the invocation took a warm sandbox.
	warm := func(inv engine.Invocation, err error) error {
		if err == nil && !inv.Warm {
			err = fmt.Errorf("invocation %s was not served warm", inv.ID)
		}
		return invoked(inv, err)
	}
	type variant struct {
		name string
		run  func() error
	}
	variants := []variant{{"plain", func() error { return exec.Command(trueBin).Run() }}}
	if runc != nil {
		variants = append(variants, variant{"runc", runc.run})
	}
	// Traced (OAK_TRACE=1), the in-process invocations' stderr is ours:
	// the container's init writes its marks there.
	var errOut io.Writer = io.Discard
	if trace.On() {
		errOut = os.Stderr
	}
	variants = append(variants,
		variant{"engine-cold", func() error { return invoked(e.Invoke(ctx, "cold", nil, io.Discard, errOut)) }},
		variant{"engine-warm", func() error { return warm(e.Invoke(ctx, "warm", nil, io.Discard, errOut)) }},
		variant{"api-cold", func() error { return invoked(c.Invoke(ctx, "cold", nil, io.Discard, io.Discard)) }},
		variant{"api-warm", func() error { return warm(c.Invoke(ctx, "warm", nil, io.Discard, io.Discard)) }},
		// A bare request through the same socket: what of the API's
		// share is HTTP's own.
		variant{"api-ping", func() error { return c.Ping(ctx) }},
	)
	times := make([][]time.Duration, len(variants))
	for i := -3; i < runs; i++ { // three untimed rounds first
		for v, x := range variants {
			// Every variant starts with the warm sandbox ready and the
			// last invocation torn down: none competes with a refill or
			// a teardown in the background.
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
	fmt.Fprintf(out, "%-12s %10s %10s %10s %8s   (one at a time, %d runs each, request to exit of 'true')\n",
		"VARIANT", "MEDIAN", "P99", "OVERHEAD", "RATIO", runs)
	for v, x := range variants {
		m := median(times[v])
		fmt.Fprintf(out, "%-12s %10v %10v %10v %8.2f\n", x.name, m.Round(time.Microsecond),
			percentile(times[v], 99).Round(time.Microsecond), (m - plain).Round(time.Microsecond), float64(m)/float64(plain))
	}
	return nil
}

// benchFunctionLoad is the concurrent part: a daemon process of oakBin
// serves functions of concurrency 32, invoked by each level of clients.
func benchFunctionLoad(ctx context.Context, oakBin, runcBin string, levels []int, n int, out io.Writer) error {
	if oakBin == "" {
		oakBin = "/proc/self/exe"
	}
	root, err := os.MkdirTemp("", "oak-bench-function-load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	daemon := exec.Command(oakBin, "--root", root, "daemon", "--log-level", "error")
	daemon.Env = append(os.Environ(), "OAK_TRACE=0")
	daemon.Stderr = os.Stderr
	daemon.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := daemon.Start(); err != nil {
		return fmt.Errorf("bench function: daemon: %w", err)
	}
	defer func() {
		daemon.Process.Signal(syscall.SIGTERM)
		daemon.Wait()
	}()
	c := api.NewClient(root)
	if err := waitPing(ctx, c); err != nil {
		return err
	}
	const conc, warmN = 32, 32
	for _, f := range []api.FunctionCreate{
		{Name: "cold", Image: engine.DemoImage, Cmd: []string{"true"}, Concurrency: conc},
		{Name: "warm", Image: engine.DemoImage, Cmd: []string{"true"}, Concurrency: conc, Warm: warmN},
	} {
		if _, err := c.CreateFunction(ctx, f); err != nil {
			return err
		}
		defer c.RemoveFunction(context.Background(), f.Name)
	}
	var runc *runcBaseline
	if runcBin != "" {
		work, err := os.MkdirTemp("", "oak-bench-function-runc-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(work)
		e, err := engine.New(filepath.Join(work, "oak")) // the demo image's root, for runc
		if err != nil {
			return err
		}
		img, err := e.ResolveImage(engine.DemoImage)
		if err != nil {
			return err
		}
		if runc, err = newRuncBaseline(ctx, runcBin, work, img); err != nil {
			return err
		}
	}
	// settle waits until no invocation runs and the warm pool is full.
	settle := func() error {
		deadline := time.Now().Add(2 * startTimeout)
		for {
			cold, err1 := c.Function(ctx, "cold")
			warm, err2 := c.Function(ctx, "warm")
			if err := errors.Join(err1, err2); err != nil {
				return err
			}
			if warm.WarmError != "" {
				return fmt.Errorf("bench function: warm sandbox: %s", warm.WarmError)
			}
			if cold.Running == 0 && warm.Running == 0 && warm.WarmReady == warmN {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("bench function: the daemon did not settle (%+v)", warm)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	type variant struct {
		name string
		run  func() (warm bool, err error)
	}
	invoke := func(name string) func() (bool, error) {
		return func() (bool, error) {
			inv, err := c.Invoke(ctx, name, nil, io.Discard, io.Discard)
			return inv.Warm, invoked(inv, err)
		}
	}
	variants := []variant{{"api-cold", invoke("cold")}, {"api-warm", invoke("warm")}}
	if runc != nil {
		variants = append(variants, variant{"runc", func() (bool, error) { return false, runc.run() }})
	}
	fmt.Fprintf(out, "%-8s %-10s %6s %12s %10s %10s %6s   (%d invocations per row, functions of concurrency %d, warm %d; %s)\n",
		"CLIENTS", "VARIANT", "N", "PER SECOND", "P50", "P99", "WARM", n, conc, warmN, oakBin)
	for _, level := range levels {
		for _, v := range variants {
			if err := settle(); err != nil {
				return err
			}
			var (
				mu    sync.Mutex
				lat   []time.Duration
				warms int
				errs  []error
				next  atomic.Int64
				wg    sync.WaitGroup
			)
			start := time.Now()
			for range level {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(n) {
						t := time.Now()
						w, err := v.run()
						d := time.Since(t)
						mu.Lock()
						lat = append(lat, d)
						if w {
							warms++
						}
						if err != nil {
							errs = append(errs, err)
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			wall := time.Since(start)
			if len(errs) > 0 {
				return fmt.Errorf("bench function: %s, %d clients: %d of %d failed, the first: %w", v.name, level, len(errs), n, errs[0])
			}
			warm := "-"
			if v.name == "api-warm" {
				warm = fmt.Sprintf("%d%%", 100*warms/n)
			}
			fmt.Fprintf(out, "%-8d %-10s %6d %12.1f %10v %10v %6s\n", level, v.name, n, float64(n)/wall.Seconds(),
				median(lat).Round(10*time.Microsecond), percentile(lat, 99).Round(10*time.Microsecond), warm)
		}
	}
	return nil
}

// waitPing waits until c's daemon answers.
func waitPing(ctx context.Context, c *api.Client) error {
	for deadline := time.Now().Add(startTimeout); c.Ping(ctx) != nil; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("bench function: the daemon did not answer within %v", startTimeout)
		}
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

func median(ds []time.Duration) time.Duration { return percentile(ds, 50) }

// percentile is bench.Percentile of ds, unsorted.
func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return bench.Percentile(s, p)
}

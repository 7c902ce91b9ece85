package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/oak-engine/oak/bench"
	"github.com/oak-engine/oak/engine"
)

func newBenchCmd(stateRoot func() string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure Oak against plain processes and other runtimes",
	}
	startup := newBenchStartupCmd(stateRoot)
	cmd.AddCommand(startup, newBenchDensityCmd(stateRoot), newBenchTraceCmd(), newBenchNetCmd(), newBenchStorageCmd(stateRoot), newBenchFunctionCmd())
	return cmd
}

func newBenchNetCmd() *cobra.Command {
	var (
		cfg      bench.NetConfig
		variants string
		streams  []int
		asJSON   bool
		quiet    bool
	)
	cmd := &cobra.Command{
		Use:   "net",
		Short: "TCP throughput (1–16 streams) and request/response latency: plain process, runc with veth + port forward, oak (interleaved)",
		Long: `Measure TCP throughput with parallel streams, and the latency of a small
request/response exchange, between a load generator in this process (Go) and
a server on the other side of loopback: a plain host process, a runc
container on a bridge/veth network with a docker-style port forward that the
benchmark makes (and removes), and an oak container with a published port.
Each server is started once; for each stream count the variants run in
rounds, in rotated order, and the report gives medians and ratios.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if variants != "" {
				cfg.Variants = strings.Split(variants, ",")
			}
			cfg.Streams = streams
			if !quiet {
				cfg.Log = os.Stderr
			}
			rep, err := bench.Net(ctx, cfg)
			if err != nil {
				return err
			}
			return printReport(rep, asJSON)
		},
	}
	f := cmd.Flags()
	f.StringVar(&variants, "variants", "", "comma-separated subset of plain,runc,oak")
	f.IntSliceVar(&streams, "streams", bench.DefaultNetStreams, "parallel TCP streams to measure")
	f.DurationVar(&cfg.Duration, "duration", bench.DefaultNetDuration, "how long one throughput run writes")
	f.IntVar(&cfg.Rounds, "rounds", bench.DefaultNetRounds, "runs per variant and stream count")
	f.DurationVar(&cfg.Warmup, "warmup", bench.DefaultNetWarmup, "untimed streaming per variant first (negative: none)")
	f.IntVar(&cfg.EchoCount, "rr-count", bench.DefaultEchoCount, "round trips per request/response run (at most)")
	f.DurationVar(&cfg.EchoDuration, "rr-duration", bench.DefaultEchoDuration, "length of a request/response run (at most)")
	f.StringVar(&cfg.RuncNet, "runc-net", bench.RuncNetBridge, "runc's network: bridge (docker's) or veth (no bridge)")
	f.StringVar(&cfg.RuncPath, "runc", "", "runc binary (default: runc in $PATH)")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress lines on stderr")
	return cmd
}

func newBenchStorageCmd(stateRoot func() string) *cobra.Command {
	var (
		cfg      bench.StorageConfig
		variants string
		noImport bool
		asJSON   bool
		quiet    bool
	)
	cmd := &cobra.Command{
		Use:   "storage",
		Short: "Sequential write/read and small-file create+fsync: host directory vs oak volume (interleaved); image import and start",
		Long: `Measure file-system I/O in an oak container's volume against the same I/O by
a host process in a directory on the same file system: a sequential write
with an fsync at the end, a sequential read of it with the page cache dropped
first, and the creation of many 4 KiB files, each fsynced. The load program
times its own I/O, so a container's start is not in the numbers. The tests
run in rounds, in rotated order; the report gives medians and volume/host.

Then it builds a docker-save archive with random data, imports it into a
fresh state root with 'oak image import' (skipped if that fails), and times
the first and next 'oak run' of the imported image.

Everything is made in a temporary directory under --dir (default: the state
root, so that the host directory, the volume's image and the images lie on
the file system Oak keeps its state on) and removed at the end.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if variants != "" {
				cfg.Variants = strings.Split(variants, ",")
			}
			if noImport {
				cfg.ImageMiB = -1
			}
			if cfg.WorkDir == "" {
				e, err := engine.New(stateRoot()) // makes the state root if needed
				if err != nil {
					return err
				}
				cfg.WorkDir = e.Root
			}
			if !quiet {
				cfg.Log = os.Stderr
			}
			rep, err := bench.Storage(ctx, cfg)
			if err != nil {
				return err
			}
			return printReport(rep, asJSON)
		},
	}
	f := cmd.Flags()
	f.StringVar(&variants, "variants", "", "comma-separated subset of host,volume")
	f.IntVar(&cfg.SeqMiB, "seq-mib", bench.DefaultSeqMiB, "MiB written and read sequentially per run")
	f.IntVar(&cfg.SmallFiles, "files", bench.DefaultSmallFiles, "4 KiB files created per run")
	f.IntVar(&cfg.Rounds, "rounds", bench.DefaultStorageRounds, "runs per variant and test, and imports")
	f.IntVar(&cfg.Warmup, "warmup", 1, "untimed sequential writes per variant first (negative: none)")
	f.BoolVar(&cfg.KeepCache, "keep-cache", false, "do not drop the page cache before the read runs")
	f.IntVar(&cfg.ImageMiB, "image-mib", bench.DefaultImageMiB, "MiB of random data in the imported image")
	f.IntVar(&cfg.ImageLayers, "image-layers", bench.DefaultImageLayers, "layers the image data is split into")
	f.BoolVar(&noImport, "no-import", false, "leave out the image import part")
	f.StringVar(&cfg.WorkDir, "dir", "", "where to make the temporary directory (default: the state root)")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress lines on stderr")
	return cmd
}

// printReport prints a benchmark report as a table, or as JSON.
func printReport(rep interface{ Print(io.Writer) error }, asJSON bool) error {
	if asJSON {
		return printJSON(rep)
	}
	return rep.Print(os.Stdout)
}

// startupFlags are the flags of `oak bench startup`.
type startupFlags struct {
	runs, warmup, coldRuns, rounds, responseRuns int
	variants                                     string
	single, cold, firstResponse                  bool
	parallel                                     []int
	asJSON, asCSV, quiet                         bool
	plot, image                                  string
}

// cases returns the cases the flags select: those named by --single,
// --cold, --parallel and --first-response, or all if none is.
func (f *startupFlags) cases(changed func(string) bool) []string {
	var cases []string
	if f.single {
		cases = append(cases, bench.CaseWarm)
	}
	if f.cold {
		cases = append(cases, bench.CaseCold)
	}
	if changed("parallel") {
		cases = append(cases, bench.CaseParallel)
	}
	if f.firstResponse {
		cases = append(cases, bench.CaseFirstResponse)
	}
	return cases
}

// check refuses flags that contradict each other.
func (f *startupFlags) check() error {
	if f.asJSON && f.asCSV {
		return fmt.Errorf("bench startup: --json and --csv: choose one")
	}
	if f.plot != "" {
		if ext := strings.ToLower(filepath.Ext(f.plot)); ext != ".svg" && ext != ".png" {
			return fmt.Errorf("bench startup --plot %s: want a file name ending in .svg or .png", f.plot)
		}
	}
	return nil
}

func newBenchStartupCmd(stateRoot func() string) *cobra.Command {
	var fl startupFlags
	cmd := &cobra.Command{
		Use:   "startup",
		Short: "Launch speed: plain process, runc run, oak run (interleaved): warm, cold, N at once, first HTTP response",
		Long: `Measure how fast a container starts against a plain process and runc, all
run interleaved in this one invocation, and report medians and ratios (with
the targets of the fast-start work where there are some):

  warm            start → exit of 'true', one launch at a time, state
                  prepared (--runs, default 50)
  cold            the same, each launch in a fresh, empty state root
                  (--cold-runs, default 10)
  parallel        N launches of 'true' at once, for each N of --parallel
                  (default 1,8,32,64): time until all exited, launches/s
                  and per-launch p50/p95 (--rounds per N, default 5)
  first-response  start → first HTTP 200 of busybox httpd on a published
                  port (--response-runs, default 20)

With none of --single, --cold, --parallel or --first-response, all four
run; with some, only those. --json and --csv print every figure
(--csv one table); --plot draws latency and rate against N (.svg or .png).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := fl.check(); err != nil {
				return err
			}
			e, err := engine.New(stateRoot())
			if err != nil {
				return err
			}
			img, err := e.ResolveImage(fl.image)
			if err != nil {
				return err
			}
			if len(img.Layers) != 1 {
				return fmt.Errorf("bench startup --image %s: need a root file system directory (runc and the plain process use it as is)", fl.image)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cfg := fl.config(cmd.Flags().Changed)
			cfg.RootFS = img.Layers[0]
			if !fl.quiet {
				cfg.Log = os.Stderr
			}
			reps, err := bench.StartupSuite(ctx, cfg)
			if err != nil {
				return err
			}
			if fl.plot != "" {
				if err := bench.PlotParallel(reps, fl.plot); err != nil {
					return err
				}
			}
			switch {
			case fl.asCSV:
				return reps.WriteCSV(os.Stdout)
			case fl.asJSON:
				return printJSON(reps)
			}
			return reps.Print(os.Stdout)
		},
	}
	fl.register(cmd.Flags())
	return cmd
}

// config is the benchmark's configuration as the flags give it, without
// the root file system; changed tells which flags were given.
func (fl *startupFlags) config(changed func(string) bool) bench.StartupConfig {
	cfg := bench.StartupConfig{
		Cases:        fl.cases(changed),
		Runs:         fl.runs,
		Warmup:       fl.warmup,
		ColdRuns:     fl.coldRuns,
		Parallel:     fl.parallel,
		Rounds:       fl.rounds,
		ResponseRuns: fl.responseRuns,
	}
	if fl.image == engine.DemoImage {
		cfg.OakImage = engine.DemoImage // a cold run makes the image too
	}
	if fl.variants != "" {
		cfg.Variants = strings.Split(fl.variants, ",")
	}
	return cfg
}

func (fl *startupFlags) register(f *pflag.FlagSet) {
	f.BoolVar(&fl.single, "single", false, "run the warm single-launch case")
	f.BoolVar(&fl.cold, "cold", false, "run the cold single-launch case")
	f.IntSliceVar(&fl.parallel, "parallel", bench.DefaultParallel, "run the parallel case with these numbers of launches at once")
	f.BoolVar(&fl.firstResponse, "first-response", false, "run the first-HTTP-response case")
	f.IntVar(&fl.runs, "runs", 0, "timed runs per variant, warm case (default 50)")
	f.IntVar(&fl.warmup, "warmup", 0, "untimed runs per variant first, warm and cold cases (default 3)")
	f.IntVar(&fl.coldRuns, "cold-runs", 0, "timed runs per variant, cold case (default 10)")
	f.IntVar(&fl.rounds, "rounds", 0, "timed rounds per variant and N, parallel case (default 5)")
	f.IntVar(&fl.responseRuns, "response-runs", 0, "timed runs per variant, first-response case (default 20)")
	f.StringVar(&fl.variants, "variants", "", "comma-separated subset of plain,runc,oak,oak-direct (oak: through the daemon's pool;\noak-direct: --no-daemon)")
	f.BoolVar(&fl.asJSON, "json", false, "print the reports as JSON")
	f.BoolVar(&fl.asCSV, "csv", false, "print the reports as one CSV table")
	f.StringVar(&fl.plot, "plot", "", "draw latency and rate against N of the parallel case into FILE.svg or FILE.png")
	f.StringVar(&fl.image, "image", engine.DemoImage, "the demo image, or a root file system directory, to start")
	f.BoolVarP(&fl.quiet, "quiet", "q", false, "no progress lines on stderr")
}

func newBenchDensityCmd(stateRoot func() string) *cobra.Command {
	var (
		cfg      bench.DensityConfig
		variants string
		image    string
		asJSON   bool
		quiet    bool
	)
	cmd := &cobra.Command{
		Use:   "density",
		Short: "Start and hold many idle containers; measure the memory each costs: plain sleep, runc run -d, oak run -d",
		Long: `Start --count idle 'sleep' processes for each variant in turn (plain
processes, runc run -d containers, oak run -d containers), --jobs at a time,
hold them, and measure memory: the PSS of every process by role
(application, the runtime's init in the container, its supervisor on the
host, any service) and the change of the host's kernel memory (Slab,
KernelStack, PageTables, Shmem) from before the first start to after the
last. The runtime's own memory per container is its processes' PSS plus the
kernel memory beyond what a plain process costs. Then everything is
removed, and the time it took reported.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := engine.New(stateRoot())
			if err != nil {
				return err
			}
			img, err := e.ResolveImage(image)
			if err != nil {
				return err
			}
			if len(img.Layers) != 1 {
				return fmt.Errorf("bench density --image %s: need a root file system directory (runc and the plain process use it as is)", image)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cfg.RootFS = img.Layers[0]
			if image == engine.DemoImage {
				cfg.OakImage = engine.DemoImage
			}
			if variants != "" {
				cfg.Variants = strings.Split(variants, ",")
			}
			if !quiet {
				cfg.Log = os.Stderr
			}
			rep, err := bench.Density(ctx, cfg)
			if err != nil && rep == nil {
				return err
			}
			if perr := printReport(rep, asJSON); perr != nil {
				return perr
			}
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Count, "count", bench.DefaultDensityCount, "idle containers per variant")
	f.IntVar(&cfg.Jobs, "jobs", bench.DefaultDensityJobs, "starts and removals in flight at once")
	f.DurationVar(&cfg.Settle, "settle", 2*time.Second, "wait after the last start before measuring")
	f.BoolVar(&cfg.KeepCaches, "keep-caches", false, "do not drop reclaimable slab before each reading")
	f.StringVar(&variants, "variants", "", "comma-separated subset of plain,runc,oak")
	f.StringVar(&image, "image", engine.DemoImage, "the demo image, or a root file system directory, to start")
	f.StringVar(&cfg.RuncPath, "runc", "", "runc binary (default: runc in $PATH)")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress lines on stderr")
	return cmd
}

func newBenchTraceCmd() *cobra.Command {
	var (
		cfg    bench.TraceConfig
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "trace [IMAGE [COMMAND [ARG...]]]",
		Short: "Where the time of one launch goes: oak run --rm with OAK_TRACE=1, phase by phase",
		Long: `Run 'oak run --rm IMAGE COMMAND' (default: demo true) --runs times with
OAK_TRACE=1, which makes the CLI, the engine, the sandbox and the
container's init (nsinit) mark their phases with monotonic timestamps on
stderr, and as many times with GODEBUG=inittrace=1; print the median time
from the start of the command to each mark, the median step from the mark
before, and the costliest Go package initialisers. With --parallel N each
run starts N traced launches at once, to see which phases grow under
contention. A fresh state root is used unless --root-dir is given. The
runs go through the daemon (a supervisor of its pool runs the container)
unless --no-daemon or OAK_NO_DAEMON=1 is given.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				cfg.Image = args[0]
				cfg.Args = args[1:]
			}
			cfg.NoDaemon = !daemonWanted()
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			rep, err := bench.Trace(ctx, cfg)
			if err != nil {
				return err
			}
			return printReport(rep, asJSON)
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.IntVar(&cfg.Runs, "runs", bench.DefaultTraceRuns, "traced runs (and as many init-trace runs)")
	f.IntVar(&cfg.Parallel, "parallel", 1, "launches traced at once in each run")
	f.StringVar(&cfg.OakRoot, "root-dir", "", "state root for the traced runs (default: a fresh one)")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/oak-engine/oak/bench"
	"github.com/oak-engine/oak/engine"
)

func newBenchCmd(stateRoot func() string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure Oak against plain processes and other runtimes",
	}
	var (
		runs, warmup int
		variants     string
		asJSON       bool
		image        string
	)
	startup := &cobra.Command{
		Use:   "startup",
		Short: "Time start → exit of `true`: plain process, runc run, oak run (interleaved)",
		Args:  cobra.NoArgs,
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
				return fmt.Errorf("bench startup --image %s: need a root file system directory (runc and the plain process use it as is)", image)
			}
			rootfs := img.Layers[0]
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cfg := bench.StartupConfig{RootFS: rootfs, Runs: runs, Warmup: warmup}
			if variants != "" {
				cfg.Variants = strings.Split(variants, ",")
			}
			rep, err := bench.Startup(ctx, cfg)
			if err != nil {
				return err
			}
			return printReport(rep, asJSON)
		},
	}
	f := startup.Flags()
	f.IntVar(&runs, "runs", 0, "timed runs per variant (default 50)")
	f.IntVar(&warmup, "warmup", 0, "untimed runs per variant first (default 3)")
	f.StringVar(&variants, "variants", "", "comma-separated subset of plain,runc,oak")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	f.StringVar(&image, "image", engine.DemoImage, "root file system to start (default: the demo image)")
	cmd.AddCommand(startup, newBenchNetCmd(), newBenchStorageCmd(stateRoot))
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

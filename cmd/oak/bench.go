package main

import (
	"context"
	"encoding/json"
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
			rootfs, err := e.ResolveImage(image)
			if err != nil {
				return err
			}
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
			if asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			return rep.Print(os.Stdout)
		},
	}
	f := startup.Flags()
	f.IntVar(&runs, "runs", 0, "timed runs per variant (default 50)")
	f.IntVar(&warmup, "warmup", 0, "untimed runs per variant first (default 3)")
	f.StringVar(&variants, "variants", "", "comma-separated subset of plain,runc,oak")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	f.StringVar(&image, "image", engine.DemoImage, "root file system to start (default: the demo image)")
	cmd.AddCommand(startup, newBenchNetCmd())
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
			if asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			return rep.Print(os.Stdout)
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

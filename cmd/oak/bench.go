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
	cmd.AddCommand(startup)
	return cmd
}

package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/oak-engine/oak/bench"
)

// newNetServerCmd is the server of `oak bench net`, which runs it as a
// plain process and, copied into a root file system as /oak, in runc and
// oak containers.
func newNetServerCmd() *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:    bench.NetServerCommand + " --listen ADDR",
		Short:  "Serve the network benchmark's protocol (sink and echo) on ADDR",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return bench.NetServer(ctx, listen)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", ":8080", "TCP address to listen on")
	return cmd
}

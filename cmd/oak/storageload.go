package main

import (
	"context"
	"encoding/json"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/oak-engine/oak/bench"
)

// newStorageLoadCmd is the load program of `oak bench storage`, which runs
// it as a host process and, copied into a root file system or an image as
// /oak, in containers. It prints one line of JSON (bench.LoadResult).
func newStorageLoadCmd() *cobra.Command {
	var opts bench.LoadOptions
	cmd := &cobra.Command{
		Use:    bench.StorageLoadCommand + " seqwrite|seqread|smallfiles|noop [DIR]",
		Short:  "Do the storage benchmark's I/O in DIR and print what it took as JSON",
		Hidden: true,
		Args:   cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			dir := ""
			if len(args) == 2 {
				dir = args[1]
			}
			res, err := bench.StorageLoad(ctx, args[0], dir, opts)
			if err != nil {
				return err
			}
			return json.NewEncoder(os.Stdout).Encode(res)
		},
	}
	f := cmd.Flags()
	f.IntVar(&opts.SeqMiB, "size-mib", bench.DefaultSeqMiB, "MiB that seqwrite writes")
	f.IntVar(&opts.Files, "files", bench.DefaultSmallFiles, "files that smallfiles creates")
	return cmd
}

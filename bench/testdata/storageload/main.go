// Command storageload is a static stand-in for `oak _storageload MODE
// [DIR] [--size-mib N] [--files N]`, built by the storage benchmark's tests
// without cgo so that it runs in a container's root file system (the test
// binary may need a loader).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/oak-engine/oak/bench"
)

func main() {
	usage := func() {
		fmt.Fprintf(os.Stderr, "usage: %s %s MODE [DIR] [--size-mib N] [--files N]\n", os.Args[0], bench.StorageLoadCommand)
		os.Exit(2)
	}
	if len(os.Args) < 3 || os.Args[1] != bench.StorageLoadCommand {
		usage()
	}
	mode, rest := os.Args[2], os.Args[3:]
	dir := ""
	if len(rest) > 0 && len(rest[0]) > 0 && rest[0][0] != '-' {
		dir, rest = rest[0], rest[1:]
	}
	var opts bench.LoadOptions
	fs := flag.NewFlagSet(bench.StorageLoadCommand, flag.ExitOnError)
	fs.IntVar(&opts.SeqMiB, "size-mib", bench.DefaultSeqMiB, "")
	fs.IntVar(&opts.Files, "files", bench.DefaultSmallFiles, "")
	if err := fs.Parse(rest); err != nil || fs.NArg() != 0 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := bench.StorageLoad(ctx, mode, dir, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(res)
}

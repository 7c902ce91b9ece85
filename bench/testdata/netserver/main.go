// Command netserver is a static stand-in for `oak _netserver --listen
// ADDR`, built by the network benchmark's tests without cgo so that it runs
// in a container's root file system (the test binary may need a loader).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/oak-engine/oak/bench"
)

func main() {
	if len(os.Args) != 4 || os.Args[1] != bench.NetServerCommand || os.Args[2] != "--listen" {
		fmt.Fprintf(os.Stderr, "usage: %s %s --listen ADDR\n", os.Args[0], bench.NetServerCommand)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bench.NetServer(ctx, os.Args[3]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

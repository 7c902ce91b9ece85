// Command oak-bench-plot draws the figures of oak bench: it reads the
// series `oak bench startup --plot FILE` hands it on stdin (JSON) and
// writes FILE (.svg or .png). It is a program of its own so that the
// plotting library is not linked into oak.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/oak-engine/oak/bench"
	"github.com/oak-engine/oak/bench/plot"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: oak-bench-plot FILE.svg|FILE.png < series.json")
		os.Exit(2)
	}
	var series []bench.ParallelSeries
	dec := json.NewDecoder(os.Stdin)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&series); err != nil {
		fmt.Fprintf(os.Stderr, "oak-bench-plot: reading the series: %v\n", err)
		os.Exit(1)
	}
	if err := plot.Parallel(series, os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "oak-bench-plot:", err)
		os.Exit(1)
	}
}

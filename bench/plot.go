package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// ParallelSeries is one variant's figures across the parallel reports:
// per-launch median latency (ms) and launches per second at each N.
type ParallelSeries struct {
	Name      string    `json:"name"`
	N         []int     `json:"n"`
	LatencyMS []float64 `json:"latency_ms"`
	Rate      []float64 `json:"rate_per_s"`
}

// ParallelSeriesOf collects the parallel reports of reps into one series
// per variant that ran, in the order the variants first appear, each
// ordered by N.
func ParallelSeriesOf(reps Reports) []ParallelSeries {
	var out []ParallelSeries
	index := map[string]int{}
	var pars []*Report
	for _, r := range reps {
		if r.Parallel > 0 {
			pars = append(pars, r)
		}
	}
	slices.SortStableFunc(pars, func(a, b *Report) int { return a.Parallel - b.Parallel })
	for _, r := range pars {
		for _, res := range r.Results {
			if res.Skipped != "" || len(res.Launches) == 0 {
				continue
			}
			i, ok := index[res.Name]
			if !ok {
				i = len(out)
				index[res.Name] = i
				out = append(out, ParallelSeries{Name: res.Name})
			}
			s := &out[i]
			s.N = append(s.N, r.Parallel)
			s.LatencyMS = append(s.LatencyMS, msf(res.Launch.Median))
			s.Rate = append(s.Rate, res.Rate)
		}
	}
	return out
}

// PlotCommand is the program that draws plots for oak bench (built from
// cmd/oak-bench-plot). It is a program of its own so that the plotting
// library stays out of the oak binary: linked in, its package
// initialisers cost every oak command about 0.3 ms, and the binary grows
// by 7.7 MB.
const PlotCommand = "oak-bench-plot"

// PlotParallel draws the parallel reports of reps into path (.svg or
// .png) with PlotCommand, found next to this program or in $PATH: the
// per-launch median latency and the launch rate against N, one line per
// variant. It refuses reports with no parallel figures.
func PlotParallel(reps Reports, path string) error {
	series := ParallelSeriesOf(reps)
	if len(series) == 0 {
		return errors.New("bench plot: no parallel launch figures to draw (run the parallel case)")
	}
	if ext := strings.ToLower(filepath.Ext(path)); ext != ".svg" && ext != ".png" {
		return fmt.Errorf("bench plot %s: want a file name ending in .svg or .png", path)
	}
	prog, err := findPlotCommand()
	if err != nil {
		return err
	}
	in, err := json.Marshal(series)
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	cmd := exec.Command(prog, path)
	cmd.Stdin = bytes.NewReader(in)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("bench plot: %s %s: %w: %s", prog, path, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// findPlotCommand looks for PlotCommand next to this program, then in
// $PATH.
func findPlotCommand() (string, error) {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), PlotCommand)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath(PlotCommand); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("bench plot: no %s next to oak or in $PATH (make builds it into bin/)", PlotCommand)
}

// Package plot draws the figures of oak bench with gonum/plot. It is
// linked only into the oak-bench-plot program, never into oak.
package plot

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/oak-engine/oak/bench"
)

// Parallel draws series into path (.svg or .png): per-launch median
// latency against N on the left, launches per second against N on the
// right, one line per variant, every axis logarithmic. It refuses an empty
// series list.
func Parallel(series []bench.ParallelSeries, path string) error {
	if len(series) == 0 {
		return fmt.Errorf("plot %s: nothing to draw", path)
	}
	for _, s := range series {
		if len(s.LatencyMS) != len(s.N) || len(s.Rate) != len(s.N) {
			return fmt.Errorf("plot %s: series %q has %d values of N, %d latencies and %d rates", path, s.Name, len(s.N), len(s.LatencyMS), len(s.Rate))
		}
	}
	lat := plot.New()
	lat.Title.Text = "Per-launch latency (median)"
	lat.X.Label.Text = "launches at once (N)"
	lat.Y.Label.Text = "ms"
	rate := plot.New()
	rate.Title.Text = "Launch rate"
	rate.X.Label.Text = "launches at once (N)"
	rate.Y.Label.Text = "launches/s"
	for _, p := range []*plot.Plot{lat, rate} {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = nTicks(series)
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Add(plotter.NewGrid())
		p.Legend.Top = true
	}
	for i, s := range series {
		if err := addLine(lat, s.Name, i, s.N, s.LatencyMS); err != nil {
			return err
		}
		if err := addLine(rate, s.Name, i, s.N, s.Rate); err != nil {
			return err
		}
	}
	// Room above the highest line for the legend: a tenfold on the log
	// axes.
	for _, p := range []*plot.Plot{lat, rate} {
		if p.Y.Max > p.Y.Min {
			p.Y.Max *= 10
		}
	}

	w, h := 24*vg.Centimeter, 10*vg.Centimeter
	var c draw.Canvas
	var write func() error
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".svg":
		sc := vgsvg.New(w, h)
		c = draw.New(sc)
		write = func() error { return writeFile(path, sc) }
	case ".png":
		ic := vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(120))}
		c = draw.New(ic)
		write = func() error { return writeFile(path, ic) }
	default:
		return fmt.Errorf("plot %s: want a file name ending in .svg or .png", path)
	}
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Centimeter, PadTop: vg.Millimeter, PadBottom: vg.Millimeter, PadLeft: vg.Millimeter, PadRight: vg.Millimeter}
	canvases := plot.Align([][]*plot.Plot{{lat, rate}}, tiles, c)
	lat.Draw(canvases[0][0])
	rate.Draw(canvases[0][1])
	return write()
}

// addLine adds one variant's line with points to p, in the i-th style.
func addLine(p *plot.Plot, name string, i int, ns []int, ys []float64) error {
	pts := make(plotter.XYs, 0, len(ns))
	for k, n := range ns {
		if ys[k] > 0 { // a log axis has no place for 0
			pts = append(pts, plotter.XY{X: float64(n), Y: ys[k]})
		}
	}
	if len(pts) == 0 {
		return nil
	}
	l, s, err := plotter.NewLinePoints(pts)
	if err != nil {
		return fmt.Errorf("plot: %s: %w", name, err)
	}
	l.Color = plotutil.Color(i)
	l.Dashes = plotutil.Dashes(i)
	s.Color = plotutil.Color(i)
	s.Shape = plotutil.Shape(i)
	p.Add(l, s)
	p.Legend.Add(name, l, s)
	return nil
}

// nTicks marks the N values measured on the x axis.
func nTicks(series []bench.ParallelSeries) plot.ConstantTicks {
	var ns []int
	for _, s := range series {
		ns = append(ns, s.N...)
	}
	slices.Sort(ns)
	ns = slices.Compact(ns)
	ticks := make(plot.ConstantTicks, len(ns))
	for i, n := range ns {
		ticks[i] = plot.Tick{Value: float64(n), Label: fmt.Sprint(n)}
	}
	return ticks
}

// writeFile writes what w writes to path.
func writeFile(path string, w io.WriterTo) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	if _, err := w.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("plot %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return nil
}

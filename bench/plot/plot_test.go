package plot

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oak-engine/oak/bench"
)

var series = []bench.ParallelSeries{
	{Name: "plain", N: []int{1, 8, 64}, LatencyMS: []float64{0.7, 2, 15}, Rate: []float64{1400, 1200, 2000}},
	{Name: "runc", N: []int{1, 8, 64}, LatencyMS: []float64{45, 190, 1300}, Rate: []float64{21, 39, 33}},
	{Name: "oak", N: []int{1, 8, 64}, LatencyMS: []float64{44, 160, 0}, Rate: []float64{22, 45, 26}}, // a 0 is left out
}

func TestParallelSVGAndPNG(t *testing.T) {
	dir := t.TempDir()
	svg := filepath.Join(dir, "p.svg")
	if err := Parallel(series, svg); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", "Per-launch latency", "Launch rate", "launches/s"} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	pngPath := filepath.Join(dir, "p.png")
	if err := Parallel(series, pngPath); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 800 || b.Dy() < 300 {
		t.Errorf("PNG is %v", b)
	}
}

func TestParallelRefuses(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		series []bench.ParallelSeries
		path   string
		want   string
	}{
		{nil, filepath.Join(dir, "a.svg"), "nothing to draw"},
		{series, filepath.Join(dir, "a.pdf"), ".svg or .png"},
		{[]bench.ParallelSeries{{Name: "x", N: []int{1, 2}, LatencyMS: []float64{1}, Rate: []float64{1, 2}}}, filepath.Join(dir, "a.svg"), "2 values of N, 1 latencies"},
	}
	for _, tt := range tests {
		err := Parallel(tt.series, tt.path)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("err = %v, want one containing %q", err, tt.want)
		}
	}
}

package bench

import (
	"math"
	"slices"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	// Expected values are numpy.percentile(xs, p) (linear, the default), the
	// same as Python's statistics.quantiles(xs, n=100, method="inclusive").
	tests := []struct {
		xs   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 50, 0},
		{[]time.Duration{7}, 0, 7},
		{[]time.Duration{7}, 50, 7},
		{[]time.Duration{7}, 100, 7},
		{[]time.Duration{1000, 2000, 3000, 4000}, 0, 1000},
		{[]time.Duration{1000, 2000, 3000, 4000}, 25, 1750},
		{[]time.Duration{1000, 2000, 3000, 4000}, 50, 2500}, // mean of the middle two
		{[]time.Duration{1000, 2000, 3000, 4000}, 95, 3850},
		{[]time.Duration{1000, 2000, 3000, 4000}, 100, 4000},
		{[]time.Duration{1000, 2000, 3000, 4000, 5000}, 50, 3000},
		{[]time.Duration{1000, 2000, 3000, 4000, 5000}, 95, 4800},
		{[]time.Duration{10, 10, 10, 90}, 50, 10},
		{[]time.Duration{0, 1}, 50, 1}, // 0.5 ns rounds half away from zero
	}
	for _, tt := range tests {
		if got := Percentile(tt.xs, tt.p); got != tt.want {
			t.Errorf("Percentile(%v, %v) = %v, want %v", tt.xs, tt.p, got, tt.want)
		}
	}
}

func TestPercentileTwentySamples(t *testing.T) {
	// 1..20 ms: p95 at index 0.95*19 = 18.05, between 19 and 20 ms.
	xs := make([]time.Duration, 20)
	for i := range xs {
		xs[i] = time.Duration(i+1) * time.Millisecond
	}
	if got, want := Percentile(xs, 95), 19050*time.Microsecond; got != want {
		t.Errorf("p95 = %v, want %v", got, want)
	}
	if got, want := Percentile(xs, 50), 10500*time.Microsecond; got != want {
		t.Errorf("p50 = %v, want %v", got, want)
	}
}

func TestPercentileRefusesOutOfRange(t *testing.T) {
	for _, p := range []float64{-1, 100.5, math.NaN(), math.Inf(1)} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Percentile(_, %v) did not panic", p)
				}
			}()
			Percentile([]time.Duration{1, 2}, p)
		}()
	}
}

func TestSummarize(t *testing.T) {
	xs := []time.Duration{5000, 1000, 4000, 2000, 3000}
	orig := slices.Clone(xs)
	got := Summarize(xs)
	want := Summary{N: 5, Median: 3000, P95: 4800, Mean: 3000, Min: 1000, Max: 5000}
	if got != want {
		t.Errorf("Summarize = %+v, want %+v", got, want)
	}
	if !slices.Equal(xs, orig) {
		t.Errorf("Summarize modified its input: %v", xs)
	}
	if got := Summarize(nil); got != (Summary{}) {
		t.Errorf("Summarize(nil) = %+v, want zero", got)
	}
	// The mean rounds to the nearest nanosecond.
	if got := Summarize([]time.Duration{1, 2}).Mean; got != 2 {
		t.Errorf("mean of 1ns, 2ns = %v, want 2ns", got)
	}
}

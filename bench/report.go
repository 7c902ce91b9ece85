package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// Report is the outcome of one benchmark invocation. It marshals to JSON
// with durations in milliseconds.
type Report struct {
	// Benchmark names the benchmark ("startup").
	Benchmark string `json:"benchmark"`
	// Description says what one run measures.
	Description string `json:"description,omitempty"`
	// Runs and Warmup are the timed and untimed runs per variant.
	Runs   int `json:"runs"`
	Warmup int `json:"warmup"`
	// Order describes how the runs of the variants were ordered.
	Order string `json:"order"`
	// PercentileMethod describes how Median and P95 were computed.
	PercentileMethod string `json:"percentile_method"`
	// Results has one entry per variant, skipped ones included.
	Results []Result `json:"results"`
	// Ratios compares pairs of variants that both ran.
	Ratios []Ratio `json:"ratios"`
}

// Result is what one variant measured.
type Result struct {
	Name string
	// Skipped, if not empty, is why the variant did not run; then Samples is
	// empty.
	Skipped string
	// Detail describes what the variant ran.
	Detail string
	// Samples holds the timed runs in the order they were taken.
	Samples []time.Duration
	Summary
}

// Ratio compares two variants: the Of variant's statistic divided by the
// Base variant's. A ratio below 1 means Of was faster.
type Ratio struct {
	Of     string  `json:"of"`
	Base   string  `json:"base"`
	Median float64 `json:"median"`
	P95    float64 `json:"p95"`
}

// Result returns the result of the named variant, or false if the report has
// none.
func (r *Report) Result(name string) (Result, bool) {
	for _, res := range r.Results {
		if res.Name == name {
			return res, true
		}
	}
	return Result{}, false
}

// AddRatio appends the ratio of variant of to variant base, if both ran and
// base has a non-zero median and p95. It reports whether it added one.
func (r *Report) AddRatio(of, base string) bool {
	o, ok1 := r.Result(of)
	b, ok2 := r.Result(base)
	if !ok1 || !ok2 || o.N == 0 || b.N == 0 || b.Median <= 0 || b.P95 <= 0 {
		return false
	}
	r.Ratios = append(r.Ratios, Ratio{
		Of:     of,
		Base:   base,
		Median: round(float64(o.Median)/float64(b.Median), 3),
		P95:    round(float64(o.P95)/float64(b.P95), 3),
	})
	return true
}

// MarshalJSON writes r with its durations as milliseconds.
func (r Result) MarshalJSON() ([]byte, error) {
	type out struct {
		Name      string    `json:"name"`
		Skipped   string    `json:"skipped,omitempty"`
		Detail    string    `json:"detail,omitempty"`
		N         int       `json:"n"`
		MedianMS  float64   `json:"median_ms"`
		P95MS     float64   `json:"p95_ms"`
		MeanMS    float64   `json:"mean_ms"`
		MinMS     float64   `json:"min_ms"`
		MaxMS     float64   `json:"max_ms"`
		SamplesMS []float64 `json:"samples_ms"`
	}
	o := out{
		Name:      r.Name,
		Skipped:   r.Skipped,
		Detail:    r.Detail,
		N:         r.N,
		MedianMS:  ms(r.Median),
		P95MS:     ms(r.P95),
		MeanMS:    ms(r.Mean),
		MinMS:     ms(r.Min),
		MaxMS:     ms(r.Max),
		SamplesMS: make([]float64, len(r.Samples)),
	}
	for i, d := range r.Samples {
		o.SamplesMS[i] = ms(d)
	}
	return json.Marshal(o)
}

// ms converts d to milliseconds, to microsecond precision.
func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 3) }

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

// Print writes r as an aligned table: one row per variant with n, median,
// p95, mean and min in milliseconds (2 decimals), then the ratios, then what
// each variant ran.
func (r *Report) Print(w io.Writer) error {
	var b strings.Builder
	title := r.Benchmark
	if r.Description != "" {
		title += ": " + r.Description
	}
	fmt.Fprintf(&b, "%s\n%d runs per variant after %d warm-up, %s; percentiles by %s\n\n",
		title, r.Runs, r.Warmup, r.Order, r.PercentileMethod)

	nameW := len("variant")
	for _, res := range r.Results {
		nameW = max(nameW, len(res.Name))
	}
	fmt.Fprintf(&b, "%-*s  %5s  %9s  %9s  %9s  %9s\n", nameW, "variant", "n", "median ms", "p95 ms", "mean ms", "min ms")
	for _, res := range r.Results {
		if res.Skipped != "" {
			fmt.Fprintf(&b, "%-*s  %5s  skipped: %s\n", nameW, res.Name, "-", res.Skipped)
			continue
		}
		fmt.Fprintf(&b, "%-*s  %5d  %9.2f  %9.2f  %9.2f  %9.2f\n", nameW, res.Name, res.N,
			msf(res.Median), msf(res.P95), msf(res.Mean), msf(res.Min))
	}

	if len(r.Ratios) > 0 {
		ratioW := len("ratio")
		for _, q := range r.Ratios {
			ratioW = max(ratioW, len(q.Of)+1+len(q.Base))
		}
		fmt.Fprintf(&b, "\n%-*s  %9s  %9s\n", ratioW, "ratio", "median", "p95")
		for _, q := range r.Ratios {
			fmt.Fprintf(&b, "%-*s  %8.2fx  %8.2fx\n", ratioW, q.Of+"/"+q.Base, q.Median, q.P95)
		}
	}

	details := false
	for _, res := range r.Results {
		if res.Detail == "" {
			continue
		}
		if !details {
			b.WriteString("\n")
			details = true
		}
		fmt.Fprintf(&b, "%-*s  %s\n", nameW+1, res.Name+":", res.Detail)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// msf is d in milliseconds, unrounded, for printing.
func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

package bench

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Report is the outcome of one benchmark invocation. It marshals to JSON
// with durations in milliseconds.
type Report struct {
	// Benchmark names the benchmark ("startup").
	Benchmark string `json:"benchmark"`
	// Case names the part of the benchmark this report is, where a
	// benchmark has several ("warm", "cold", "parallel", "first-response").
	Case string `json:"case,omitempty"`
	// Description says what one run measures.
	Description string `json:"description,omitempty"`
	// Parallel, if not 0, is the number of launches a run starts at once:
	// a run's time is then from the first start until the last exit, and
	// each Result also has per-launch latencies and a rate.
	Parallel int `json:"parallel,omitempty"`
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
	// Launches holds, for a report with Parallel launches per run, the time
	// of every launch of the timed runs (its start to its exit), and Launch
	// summarises them; both are empty otherwise.
	Launches []time.Duration
	Launch   Summary
	// Rate is, for a report with Parallel launches per run, launches per
	// second: Parallel divided by the median run time. 0 otherwise.
	Rate float64
}

// Ratio compares two variants: the Of variant's statistic divided by the
// Base variant's. A ratio below 1 means Of was faster.
type Ratio struct {
	Of     string  `json:"of"`
	Base   string  `json:"base"`
	Median float64 `json:"median"`
	P95    float64 `json:"p95"`
	// Rate is Of's rate over Base's (above 1 means Of launched more per
	// second), in a report with parallel launches; 0 otherwise.
	Rate float64 `json:"rate,omitempty"`
	// Target, if not empty, is the goal this ratio is held against, as
	// "median <= 2" or "rate >= 10"; Met says whether the ratio meets it.
	Target string `json:"target,omitempty"`
	Met    bool   `json:"met,omitempty"`
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
	q := Ratio{
		Of:     of,
		Base:   base,
		Median: round(float64(o.Median)/float64(b.Median), 3),
		P95:    round(float64(o.P95)/float64(b.P95), 3),
	}
	if o.Rate > 0 && b.Rate > 0 {
		q.Rate = round(o.Rate/b.Rate, 3)
	}
	r.Ratios = append(r.Ratios, q)
	return true
}

// AddTarget adds the ratio of variant of to variant base if it is not
// there yet, and holds it against a target: stat ("median", "p95" or
// "rate") op ("<=" or ">=") value. It reports whether the ratio exists
// (both variants ran); it refuses an unknown stat or op.
func (r *Report) AddTarget(of, base, stat, op string, value float64) (bool, error) {
	i := slices.IndexFunc(r.Ratios, func(q Ratio) bool { return q.Of == of && q.Base == base })
	if i < 0 {
		if !r.AddRatio(of, base) {
			return false, nil
		}
		i = len(r.Ratios) - 1
	}
	q := &r.Ratios[i]
	var x float64
	switch stat {
	case "median":
		x = q.Median
	case "p95":
		x = q.P95
	case "rate":
		x = q.Rate
	default:
		return true, fmt.Errorf("bench: target on %s/%s: unknown statistic %q", of, base, stat)
	}
	switch op {
	case "<=":
		q.Met = x <= value
	case ">=":
		q.Met = x >= value
	default:
		return true, fmt.Errorf("bench: target on %s/%s: unknown comparison %q", of, base, op)
	}
	q.Target = fmt.Sprintf("%s %s %g", stat, op, value)
	return true, nil
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
		// Only with parallel launches:
		LaunchP50MS float64   `json:"launch_p50_ms,omitempty"`
		LaunchP95MS float64   `json:"launch_p95_ms,omitempty"`
		RatePerS    float64   `json:"rate_per_s,omitempty"`
		LaunchesMS  []float64 `json:"launches_ms,omitempty"`
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
	if len(r.Launches) > 0 {
		o.LaunchP50MS = ms(r.Launch.Median)
		o.LaunchP95MS = ms(r.Launch.P95)
		o.RatePerS = round(r.Rate, 3)
		o.LaunchesMS = make([]float64, len(r.Launches))
		for i, d := range r.Launches {
			o.LaunchesMS[i] = ms(d)
		}
	}
	return json.Marshal(o)
}

// ms converts d to milliseconds, to microsecond precision.
func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 3) }

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p)/p + 0 // + 0 turns -0 into 0
}

// Print writes r as an aligned table: one row per variant with n, median,
// p95, mean and min in milliseconds (2 decimals) — with parallel launches
// also the launches' p50 and p95 and the rate —, then the ratios (with
// their targets, if any), then what each variant ran.
func (r *Report) Print(w io.Writer) error {
	var b strings.Builder
	title := r.Benchmark
	if r.Case != "" {
		title += " " + r.Case
	}
	if r.Parallel > 0 {
		title += fmt.Sprintf(", %d at once", r.Parallel)
	}
	if r.Description != "" {
		title += ": " + r.Description
	}
	fmt.Fprintf(&b, "%s\n%d runs per variant after %d warm-up, %s; percentiles by %s\n\n",
		title, r.Runs, r.Warmup, r.Order, r.PercentileMethod)

	nameW := len("variant")
	for _, res := range r.Results {
		nameW = max(nameW, len(res.Name))
	}
	parallel := r.Parallel > 0
	head := fmt.Sprintf("%-*s  %5s  %9s  %9s  %9s  %9s", nameW, "variant", "n", "median ms", "p95 ms", "mean ms", "min ms")
	if parallel {
		head += fmt.Sprintf("  %10s  %10s  %10s", "launch p50", "launch p95", "launches/s")
	}
	b.WriteString(head + "\n")
	for _, res := range r.Results {
		if res.Skipped != "" {
			fmt.Fprintf(&b, "%-*s  %5s  skipped: %s\n", nameW, res.Name, "-", res.Skipped)
			continue
		}
		fmt.Fprintf(&b, "%-*s  %5d  %9.2f  %9.2f  %9.2f  %9.2f", nameW, res.Name, res.N,
			msf(res.Median), msf(res.P95), msf(res.Mean), msf(res.Min))
		if parallel {
			fmt.Fprintf(&b, "  %10.2f  %10.2f  %10.1f", msf(res.Launch.Median), msf(res.Launch.P95), res.Rate)
		}
		b.WriteString("\n")
	}

	if len(r.Ratios) > 0 {
		ratioW := len("ratio")
		for _, q := range r.Ratios {
			ratioW = max(ratioW, len(q.Of)+1+len(q.Base))
		}
		head := fmt.Sprintf("%-*s  %9s  %9s", ratioW, "ratio", "median", "p95")
		if parallel {
			head += fmt.Sprintf("  %9s", "rate")
		}
		fmt.Fprintf(&b, "\n%s\n", head)
		for _, q := range r.Ratios {
			fmt.Fprintf(&b, "%-*s  %8.2fx  %8.2fx", ratioW, q.Of+"/"+q.Base, q.Median, q.P95)
			if parallel {
				fmt.Fprintf(&b, "  %8.2fx", q.Rate)
			}
			if q.Target != "" {
				verdict := "missed"
				if q.Met {
					verdict = "met"
				}
				fmt.Fprintf(&b, "  target %s: %s", q.Target, verdict)
			}
			b.WriteString("\n")
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

// Reports is the outcome of a benchmark made of several cases (oak bench
// startup: warm, cold, parallel at each N, first response), one Report
// each, in the order they ran. It marshals to a JSON array of the reports.
type Reports []*Report

// Print writes every report as Report.Print does, separated by a blank
// line.
func (rs Reports) Print(w io.Writer) error {
	for i, r := range rs {
		if i > 0 {
			if _, err := io.WriteString(w, "\n"); err != nil {
				return err
			}
		}
		if err := r.Print(w); err != nil {
			return err
		}
	}
	return nil
}

// CSVHeader is the header row WriteCSV writes. A row is a result (kind
// "result": one variant of one case) or a ratio (kind "ratio", name
// "OF/BASE", the ratios in the median, p95 and rate columns); columns that
// do not apply are empty. Times are in milliseconds.
var CSVHeader = []string{
	"kind", "benchmark", "case", "parallel", "name", "skipped", "n",
	"median_ms", "p95_ms", "mean_ms", "min_ms", "max_ms",
	"launch_p50_ms", "launch_p95_ms", "rate_per_s",
	"ratio_median", "ratio_p95", "ratio_rate", "target", "met",
}

// WriteCSV writes the reports as one CSV table with the CSVHeader columns.
func (rs Reports) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write(CSVHeader)
	f := func(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
	for _, r := range rs {
		par := ""
		if r.Parallel > 0 {
			par = strconv.Itoa(r.Parallel)
		}
		for _, res := range r.Results {
			row := []string{"result", r.Benchmark, r.Case, par, res.Name, res.Skipped, strconv.Itoa(res.N)}
			if res.Skipped != "" {
				row = append(row, make([]string, len(CSVHeader)-len(row))...)
				cw.Write(row)
				continue
			}
			row = append(row, f(ms(res.Median)), f(ms(res.P95)), f(ms(res.Mean)), f(ms(res.Min)), f(ms(res.Max)))
			if len(res.Launches) > 0 {
				row = append(row, f(ms(res.Launch.Median)), f(ms(res.Launch.P95)), f(round(res.Rate, 3)))
			} else {
				row = append(row, "", "", "")
			}
			row = append(row, "", "", "", "", "")
			cw.Write(row)
		}
		for _, q := range r.Ratios {
			row := []string{"ratio", r.Benchmark, r.Case, par, q.Of + "/" + q.Base, "", "",
				"", "", "", "", "", "", "", "", f(q.Median), f(q.P95), "", q.Target, ""}
			if q.Rate != 0 {
				row[17] = f(q.Rate)
			}
			if q.Target != "" {
				row[19] = strconv.FormatBool(q.Met)
			}
			cw.Write(row)
		}
	}
	cw.Flush()
	return cw.Error()
}

// msf is d in milliseconds, unrounded, for printing.
func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

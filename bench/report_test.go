package bench

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func testReport() *Report {
	ms := time.Millisecond
	mk := func(name string, xs ...time.Duration) Result {
		return Result{Name: name, Samples: xs, Summary: Summarize(xs)}
	}
	return &Report{
		Benchmark:        "startup",
		Description:      "start → exit of `true`",
		Runs:             4,
		Warmup:           1,
		Order:            "interleaved, rotated per round",
		PercentileMethod: PercentileMethod,
		Results: []Result{
			mk("plain", 2*ms, 2*ms, 2*ms, 2*ms),
			mk("runc", 60*ms, 70*ms, 70*ms, 80*ms),
			mk("oak", 7*ms, 7*ms, 7*ms, 7*ms),
			{Name: "crun", Skipped: "crun not found"},
		},
		Ratios: []Ratio{},
	}
}

func TestAddRatio(t *testing.T) {
	r := testReport()
	for _, pair := range [][2]string{{"runc", "plain"}, {"oak", "plain"}, {"oak", "runc"}} {
		if !r.AddRatio(pair[0], pair[1]) {
			t.Errorf("AddRatio(%s, %s) = false", pair[0], pair[1])
		}
	}
	// Skipped, missing or self-less pairs add nothing.
	for _, pair := range [][2]string{{"crun", "plain"}, {"oak", "crun"}, {"nope", "plain"}} {
		if r.AddRatio(pair[0], pair[1]) {
			t.Errorf("AddRatio(%s, %s) = true for a variant that did not run", pair[0], pair[1])
		}
	}
	// runc p95 is at index 2.85 of 60,70,70,80: 70 + 0.85*10 = 78.5 ms.
	want := []Ratio{
		{Of: "runc", Base: "plain", Median: 35, P95: 39.25},
		{Of: "oak", Base: "plain", Median: 3.5, P95: 3.5},
		{Of: "oak", Base: "runc", Median: 0.1, P95: 0.089}, // 7/78.5 = 0.08917
	}
	if len(r.Ratios) != len(want) {
		t.Fatalf("ratios = %+v, want %+v", r.Ratios, want)
	}
	for i := range want {
		if r.Ratios[i] != want[i] {
			t.Errorf("ratio %d = %+v, want %+v", i, r.Ratios[i], want[i])
		}
	}
}

func TestPrint(t *testing.T) {
	r := testReport()
	r.Results[1].Detail = "/usr/sbin/runc (runc version 1.1.5)"
	r.AddRatio("runc", "plain")
	r.AddRatio("oak", "runc")
	var buf bytes.Buffer
	if err := r.Print(&buf); err != nil {
		t.Fatal(err)
	}
	got := buf.String()
	want := "startup: start → exit of `true`\n" +
		"4 runs per variant after 1 warm-up, interleaved, rotated per round; percentiles by " + PercentileMethod + "\n" +
		"\n" +
		"variant      n  median ms     p95 ms    mean ms     min ms\n" +
		"plain        4       2.00       2.00       2.00       2.00\n" +
		"runc         4      70.00      78.50      70.00      60.00\n" +
		"oak          4       7.00       7.00       7.00       7.00\n" +
		"crun         -  skipped: crun not found\n" +
		"\n" +
		"ratio          median        p95\n" +
		"runc/plain     35.00x     39.25x\n" +
		"oak/runc        0.10x      0.09x\n" +
		"\n" +
		"runc:     /usr/sbin/runc (runc version 1.1.5)\n"
	if got != want {
		t.Errorf("Print wrote\n%s\nwant\n%s", got, want)
	}
}

func TestReportJSON(t *testing.T) {
	r := testReport()
	r.AddRatio("oak", "runc")
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Benchmark string `json:"benchmark"`
		Runs      int    `json:"runs"`
		Results   []struct {
			Name      string    `json:"name"`
			Skipped   string    `json:"skipped"`
			N         int       `json:"n"`
			MedianMS  float64   `json:"median_ms"`
			P95MS     float64   `json:"p95_ms"`
			MinMS     float64   `json:"min_ms"`
			SamplesMS []float64 `json:"samples_ms"`
		} `json:"results"`
		Ratios []Ratio `json:"ratios"`
	}
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatalf("%v in %s", err, data)
	}
	if back.Benchmark != "startup" || back.Runs != 4 || len(back.Results) != 4 {
		t.Fatalf("round trip lost the header: %s", data)
	}
	runc := back.Results[1]
	if runc.Name != "runc" || runc.N != 4 || runc.MedianMS != 70 || runc.P95MS != 78.5 || runc.MinMS != 60 {
		t.Errorf("runc result = %+v", runc)
	}
	if len(runc.SamplesMS) != 4 || runc.SamplesMS[0] != 60 {
		t.Errorf("runc samples = %v", runc.SamplesMS)
	}
	if crun := back.Results[3]; crun.Skipped != "crun not found" || crun.N != 0 {
		t.Errorf("crun result = %+v", crun)
	}
	if len(back.Ratios) != 1 || back.Ratios[0].Of != "oak" || back.Ratios[0].Median != 0.1 {
		t.Errorf("ratios = %+v", back.Ratios)
	}
	if !strings.Contains(string(data), `"percentile_method"`) {
		t.Errorf("no percentile method in %s", data)
	}
}

// testParallelReport is a parallel report of 2 launches per run.
func testParallelReport() *Report {
	ms := time.Millisecond
	mk := func(name string, rate float64, runs, launches []time.Duration) Result {
		return Result{Name: name, Samples: runs, Summary: Summarize(runs),
			Launches: launches, Launch: Summarize(launches), Rate: rate}
	}
	return &Report{
		Benchmark: "startup", Case: "parallel", Parallel: 2,
		Description:      "2 launches at once",
		Runs:             2,
		Warmup:           1,
		Order:            "interleaved, rotated per round",
		PercentileMethod: PercentileMethod,
		Results: []Result{
			mk("plain", 1000, []time.Duration{2 * ms, 2 * ms}, []time.Duration{ms, ms, 2 * ms, 2 * ms}),
			mk("runc", 20, []time.Duration{100 * ms, 100 * ms}, []time.Duration{50 * ms, 60 * ms, 90 * ms, 100 * ms}),
			mk("oak", 400, []time.Duration{5 * ms, 5 * ms}, []time.Duration{4 * ms, 4 * ms, 5 * ms, 5 * ms}),
		},
		Ratios: []Ratio{},
	}
}

func TestAddTarget(t *testing.T) {
	r := testParallelReport()
	tests := []struct {
		of, base, stat, op string
		value              float64
		want               Ratio
	}{
		{"oak", "runc", "rate", ">=", 10, Ratio{Of: "oak", Base: "runc", Median: 0.05, P95: 0.05, Rate: 20, Target: "rate >= 10", Met: true}},
		{"oak", "plain", "rate", ">=", 0.5, Ratio{Of: "oak", Base: "plain", Median: 2.5, P95: 2.5, Rate: 0.4, Target: "rate >= 0.5", Met: false}},
		{"oak", "plain", "median", "<=", 2, Ratio{Of: "oak", Base: "plain", Median: 2.5, P95: 2.5, Rate: 0.4, Target: "median <= 2", Met: false}},
		{"runc", "oak", "p95", ">=", 20, Ratio{Of: "runc", Base: "oak", Median: 20, P95: 20, Rate: 0.05, Target: "p95 >= 20", Met: true}},
	}
	for _, tt := range tests {
		ok, err := r.AddTarget(tt.of, tt.base, tt.stat, tt.op, tt.value)
		if !ok || err != nil {
			t.Fatalf("AddTarget(%s/%s) = %v, %v", tt.of, tt.base, ok, err)
		}
		var got *Ratio
		for i := range r.Ratios {
			if r.Ratios[i].Of == tt.of && r.Ratios[i].Base == tt.base {
				got = &r.Ratios[i]
			}
		}
		if got == nil || *got != tt.want {
			t.Errorf("ratio %s/%s = %+v, want %+v", tt.of, tt.base, got, tt.want)
		}
	}
	// A second target on the same pair replaces the first; no new ratio.
	if len(r.Ratios) != 3 {
		t.Errorf("%d ratios, want 3 (oak/runc, oak/plain, runc/oak): %+v", len(r.Ratios), r.Ratios)
	}
	if ok, err := r.AddTarget("crun", "oak", "median", "<=", 1); ok || err != nil {
		t.Errorf("target on a variant that did not run: %v, %v", ok, err)
	}
	if _, err := r.AddTarget("oak", "runc", "mean", "<=", 1); err == nil || !strings.Contains(err.Error(), `"mean"`) {
		t.Errorf("unknown statistic: %v", err)
	}
	if _, err := r.AddTarget("oak", "runc", "rate", "<", 1); err == nil || !strings.Contains(err.Error(), `"<"`) {
		t.Errorf("unknown comparison: %v", err)
	}
}

func TestPrintParallel(t *testing.T) {
	r := testParallelReport()
	r.AddRatio("oak", "plain")
	r.AddTarget("oak", "runc", "rate", ">=", 10)
	var buf bytes.Buffer
	if err := (Reports{r}).Print(&buf); err != nil {
		t.Fatal(err)
	}
	want := "startup parallel, 2 at once: 2 launches at once\n" +
		"2 runs per variant after 1 warm-up, interleaved, rotated per round; percentiles by " + PercentileMethod + "\n" +
		"\n" +
		"variant      n  median ms     p95 ms    mean ms     min ms  launch p50  launch p95  launches/s\n" +
		"plain        2       2.00       2.00       2.00       2.00        1.50        2.00      1000.0\n" +
		"runc         2     100.00     100.00     100.00     100.00       75.00       98.50        20.0\n" +
		"oak          2       5.00       5.00       5.00       5.00        4.50        5.00       400.0\n" +
		"\n" +
		"ratio         median        p95       rate\n" +
		"oak/plain      2.50x      2.50x      0.40x\n" +
		"oak/runc       0.05x      0.05x     20.00x  target rate >= 10: met\n"
	if got := buf.String(); got != want {
		t.Errorf("Print wrote\n%s\nwant\n%s", got, want)
	}
}

func TestReportsPrintSeparates(t *testing.T) {
	var one, two bytes.Buffer
	testReport().Print(&one)
	if err := (Reports{testReport(), testReport()}).Print(&two); err != nil {
		t.Fatal(err)
	}
	if two.String() != one.String()+"\n"+one.String() {
		t.Errorf("two reports printed as\n%s", two.String())
	}
}

func TestWriteCSV(t *testing.T) {
	single := testReport()
	single.Case = "warm"
	single.AddTarget("oak", "plain", "median", "<=", 2)
	par := testParallelReport()
	par.AddTarget("oak", "runc", "rate", ">=", 10)
	var buf bytes.Buffer
	if err := (Reports{single, par}).WriteCSV(&buf); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatalf("%v in\n%s", err, buf.String())
	}
	// header + 4 results + 1 ratio + 3 results + 1 ratio
	if len(rows) != 10 {
		t.Fatalf("%d rows, want 10:\n%q", len(rows), rows)
	}
	if !reflect.DeepEqual(rows[0], CSVHeader) {
		t.Errorf("header %q", rows[0])
	}
	col := func(name string) int { return slices.Index(CSVHeader, name) }
	for i, row := range rows {
		if len(row) != len(CSVHeader) {
			t.Errorf("row %d has %d columns, want %d: %q", i, len(row), len(CSVHeader), row)
		}
	}
	runc := rows[2]
	if runc[col("kind")] != "result" || runc[col("case")] != "warm" || runc[col("name")] != "runc" ||
		runc[col("n")] != "4" || runc[col("median_ms")] != "70" || runc[col("p95_ms")] != "78.5" || runc[col("parallel")] != "" {
		t.Errorf("runc row %q", runc)
	}
	if crun := rows[4]; crun[col("name")] != "crun" || crun[col("skipped")] != "crun not found" || crun[col("median_ms")] != "" {
		t.Errorf("skipped row %q", crun)
	}
	if q := rows[5]; q[col("kind")] != "ratio" || q[col("name")] != "oak/plain" || q[col("ratio_median")] != "3.5" ||
		q[col("target")] != "median <= 2" || q[col("met")] != "false" {
		t.Errorf("ratio row %q", q)
	}
	if p := rows[7]; p[col("parallel")] != "2" || p[col("name")] != "runc" || p[col("launch_p50_ms")] != "75" ||
		p[col("launch_p95_ms")] != "98.5" || p[col("rate_per_s")] != "20" {
		t.Errorf("parallel row %q", p)
	}
	if q := rows[9]; q[col("ratio_rate")] != "20" || q[col("met")] != "true" {
		t.Errorf("parallel ratio row %q", q)
	}
}

func TestResultJSONParallel(t *testing.T) {
	r := testParallelReport()
	data, err := json.Marshal(Reports{r})
	if err != nil {
		t.Fatal(err)
	}
	var back []struct {
		Case     string `json:"case"`
		Parallel int    `json:"parallel"`
		Results  []struct {
			Name        string    `json:"name"`
			LaunchP50MS float64   `json:"launch_p50_ms"`
			LaunchP95MS float64   `json:"launch_p95_ms"`
			RatePerS    float64   `json:"rate_per_s"`
			LaunchesMS  []float64 `json:"launches_ms"`
		} `json:"results"`
	}
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatalf("%v in %s", err, data)
	}
	if len(back) != 1 || back[0].Case != "parallel" || back[0].Parallel != 2 || len(back[0].Results) != 3 {
		t.Fatalf("round trip: %s", data)
	}
	runc := back[0].Results[1]
	if runc.LaunchP50MS != 75 || runc.LaunchP95MS != 98.5 || runc.RatePerS != 20 || len(runc.LaunchesMS) != 4 {
		t.Errorf("runc = %+v", runc)
	}
	// A single-launch result has none of the parallel keys.
	data, _ = json.Marshal(testReport().Results[0])
	for _, k := range []string{"launch_p50_ms", "rate_per_s", "launches_ms"} {
		if strings.Contains(string(data), k) {
			t.Errorf("single result has %s: %s", k, data)
		}
	}
}

func TestParallelSeriesOf(t *testing.T) {
	a := testParallelReport()
	b := testParallelReport()
	b.Parallel = 1
	b.Results[1] = Result{Name: "runc", Skipped: "runc not found"}
	reps := Reports{testReport(), a, b} // a single report, then N=2, then N=1
	got := ParallelSeriesOf(reps)
	want := []ParallelSeries{
		{Name: "plain", N: []int{1, 2}, LatencyMS: []float64{1.5, 1.5}, Rate: []float64{1000, 1000}},
		{Name: "oak", N: []int{1, 2}, LatencyMS: []float64{4.5, 4.5}, Rate: []float64{400, 400}},
		{Name: "runc", N: []int{2}, LatencyMS: []float64{75}, Rate: []float64{20}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("series = %+v, want %+v", got, want)
	}
	if err := PlotParallel(Reports{testReport()}, "x.svg"); err == nil || !strings.Contains(err.Error(), "no parallel") {
		t.Errorf("PlotParallel without parallel reports: %v", err)
	}
}

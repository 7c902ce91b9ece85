package bench

import (
	"bytes"
	"encoding/json"
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

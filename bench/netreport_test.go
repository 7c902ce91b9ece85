package bench

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sampleNetReport has plain and oak measured at two stream counts, runc
// failed after the first, and a skipped variant.
func sampleNetReport() *NetReport {
	tp := func(n int, med float64, retrans int64, gbps ...float64) *NetThroughput {
		return &NetThroughput{Streams: n, Gbps: gbps, Median: med, Retransmits: retrans}
	}
	rep := &NetReport{
		Benchmark:     "net",
		Description:   "TCP throughput",
		LoadGenerator: "Go (in-process), N streams × 128 KiB writes, 3s per run",
		Streams:       []int{1, 16},
		WriteSize:     128 << 10,
		Duration:      3 * time.Second,
		Rounds:        3,
		Order:         "rotated",
		EchoSize:      64,
		EchoCount:     20000,
		EchoDuration:  2 * time.Second,
		Variants: []*NetResult{
			{Name: "plain", Detail: "server --listen 127.0.0.1:1",
				Throughput: []*NetThroughput{tp(1, 10, 0, 9, 10, 11), tp(16, 20, 5, 20, 19, 21)},
				Echo:       &NetLatency{N: 60000, P50: 20 * time.Microsecond, P99: 40 * time.Microsecond}},
			{Name: "runc", Detail: "runc run", Error: "16 streams, round 1: reset",
				Throughput: []*NetThroughput{tp(1, 8, 123, 8, 8, 8), tp(16, 0, -1)}},
			{Name: "oak", Detail: "oak run",
				Throughput: []*NetThroughput{tp(1, 9.5, 1, 9.5, 9.5, 9.5), tp(16, 21, 2, 21, 21, 21)},
				Echo:       &NetLatency{N: 60000, P50: 25 * time.Microsecond, P99: 80 * time.Microsecond}},
			{Name: "crun", Skipped: "crun not found"},
		},
	}
	rep.AddRatio("runc", "plain")
	rep.AddRatio("oak", "plain")
	rep.AddRatio("oak", "runc")
	rep.AddRatio("crun", "plain")
	return rep
}

func TestNetAddRatio(t *testing.T) {
	rep := sampleNetReport()
	want := []NetRatio{
		{Of: "runc", Base: "plain", Throughput: []StreamRatio{{1, 0.8}}},
		{Of: "oak", Base: "plain", Throughput: []StreamRatio{{1, 0.95}, {16, 1.05}}, EchoP50: 1.25, EchoP99: 2},
		{Of: "oak", Base: "runc", Throughput: []StreamRatio{{1, 1.188}}},
	}
	if !reflect.DeepEqual(rep.Ratios, want) {
		t.Errorf("ratios = %+v\nwant     %+v", rep.Ratios, want)
	}
	if rep.AddRatio("oak", "nonesuch") || rep.AddRatio("crun", "oak") {
		t.Error("AddRatio added a ratio with a missing or skipped variant")
	}
}

func TestNetReportPrint(t *testing.T) {
	var b strings.Builder
	if err := sampleNetReport().Print(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"load generator: Go (in-process), N streams × 128 KiB writes, 3s per run\n",
		"streams  plain Gbit/s  runc Gbit/s  oak Gbit/s  crun Gbit/s  runc/plain  oak/plain  oak/runc\n" +
			"      1         10.00         8.00        9.50      skipped       0.80x      0.95x     1.19x\n" +
			"     16         20.00       failed       21.00      skipped           -      1.05x         -\n",
		"variant  round trips  p50 µs  p99 µs\n" +
			"plain          60000    20.0    40.0\n" +
			"runc               -       -       -\n" +
			"oak            60000    25.0    80.0\n" +
			"crun               -       -       -\n",
		"latency ratio    p50    p99\n" +
			"oak/plain      1.25x  2.00x\n",
		"streams  plain  runc  oak\n" +
			"      1      0   123    1\n" +
			"     16      5     -    2\n",
		"plain:  server --listen 127.0.0.1:1\n" +
			"runc:   FAILED: 16 streams, round 1: reset\n" +
			"        runc run\n" +
			"oak:    oak run\n" +
			"crun:   skipped: crun not found\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks\n%s\nin\n%s", want, out)
		}
	}
}

func TestNetReportJSON(t *testing.T) {
	data, err := json.Marshal(sampleNetReport())
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Benchmark string  `json:"benchmark"`
		DurationS float64 `json:"duration_s"`
		WriteB    int     `json:"write_bytes"`
		Variants  []struct {
			Name       string `json:"name"`
			Error      string `json:"error"`
			Throughput []struct {
				Streams     int       `json:"streams"`
				Gbps        []float64 `json:"gbps"`
				Median      float64   `json:"median_gbps"`
				Retransmits int64     `json:"retransmits"`
			} `json:"throughput"`
			Echo *struct {
				N     int     `json:"n"`
				P50US float64 `json:"p50_us"`
				P99US float64 `json:"p99_us"`
			} `json:"echo"`
		} `json:"variants"`
		Ratios []NetRatio `json:"ratios"`
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if got.Benchmark != "net" || got.DurationS != 3 || got.WriteB != 128<<10 || len(got.Variants) != 4 || len(got.Ratios) != 3 {
		t.Fatalf("JSON = %s", data)
	}
	plain := got.Variants[0]
	if plain.Echo == nil || plain.Echo.P50US != 20 || plain.Echo.P99US != 40 || plain.Throughput[1].Median != 20 ||
		!reflect.DeepEqual(plain.Throughput[1].Gbps, []float64{20, 19, 21}) || plain.Throughput[1].Retransmits != 5 {
		t.Errorf("plain in JSON = %+v", plain)
	}
	if got.Variants[1].Error == "" || got.Variants[1].Echo != nil {
		t.Errorf("runc in JSON = %+v", got.Variants[1])
	}
	// An empty report still has lists, not nulls.
	data, err = json.Marshal(&NetReport{})
	if err != nil {
		t.Fatal(err)
	}
	if s := string(data); !strings.Contains(s, `"variants":[]`) || !strings.Contains(s, `"ratios":[]`) {
		t.Errorf("empty report = %s", s)
	}
}

func TestMedianFloat(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
	}
	for _, tt := range tests {
		in := append([]float64(nil), tt.in...)
		if got := medianFloat(tt.in); got != tt.want {
			t.Errorf("medianFloat(%v) = %v, want %v", tt.in, got, tt.want)
		}
		if !reflect.DeepEqual(in, tt.in) {
			t.Errorf("medianFloat modified its input: %v", tt.in)
		}
	}
}

func TestSizeString(t *testing.T) {
	for n, want := range map[int]string{128 << 10: "128 KiB", 1 << 20: "1 MiB", 1000: "1000 B", 1536: "1536 B"} {
		if got := sizeString(n); got != want {
			t.Errorf("sizeString(%d) = %q, want %q", n, got, want)
		}
	}
}

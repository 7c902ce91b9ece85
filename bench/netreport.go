package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// NetReport is the outcome of the network benchmark. It marshals to JSON
// with durations in seconds (run lengths) and microseconds (latencies).
type NetReport struct {
	// Benchmark is "net".
	Benchmark string
	// Description says what is measured.
	Description string
	// LoadGenerator says what generated the load.
	LoadGenerator string
	// Streams are the stream counts measured, in order.
	Streams []int
	// WriteSize is the size of each write of the load generator.
	WriteSize int
	// Duration is how long the streams of one throughput run write.
	Duration time.Duration
	// Rounds is the number of throughput runs per variant and stream
	// count, and of request/response runs per variant.
	Rounds int
	// Order says how the runs of the variants were ordered.
	Order string
	// EchoSize is the size of a request and of its reply; EchoCount and
	// EchoDuration bound one request/response run.
	EchoSize     int
	EchoCount    int
	EchoDuration time.Duration
	// Variants has one entry per variant, skipped and failed ones included.
	Variants []*NetResult
	// Ratios compares pairs of variants that both have results.
	Ratios []NetRatio
}

// NetResult is what one variant measured.
type NetResult struct {
	Name string `json:"name"`
	// Detail describes what the variant set up and ran.
	Detail string `json:"detail,omitempty"`
	// Skipped, if not empty, is why the variant did not run.
	Skipped string `json:"skipped,omitempty"`
	// Error, if not empty, is the failure that stopped the variant; the
	// results it had by then are kept.
	Error string `json:"error,omitempty"`
	// Throughput has one entry per stream count, in the report's order
	// (empty for a skipped variant).
	Throughput []*NetThroughput `json:"throughput"`
	// Echo is the request/response latency, or nil if none was measured.
	Echo *NetLatency `json:"echo,omitempty"`
}

// NetThroughput is one variant's throughput at one stream count.
type NetThroughput struct {
	Streams int `json:"streams"`
	// Gbps holds one value per round, in the order they were taken, in
	// Gbit/s (10⁹ bit/s) of payload the server received.
	Gbps []float64 `json:"gbps"`
	// Median is the median of Gbps, or 0 if it is empty.
	Median float64 `json:"median_gbps"`
	// Retransmits is the growth of the host's TCP RetransSegs counter
	// (/proc/net/snmp) over this variant's runs, or -1 if unknown. The
	// counter is the host's, so other traffic on the host adds to it.
	Retransmits int64 `json:"retransmits"`
}

// NetLatency summarises the round trips of the request/response runs.
type NetLatency struct {
	// N is the number of round trips over all runs.
	N   int
	P50 time.Duration
	P99 time.Duration
}

// NetRatio compares variant Of with variant Base.
type NetRatio struct {
	Of   string `json:"of"`
	Base string `json:"base"`
	// Throughput is Of's median Gbit/s over Base's at each stream count
	// both measured: above 1 means Of moved more data.
	Throughput []StreamRatio `json:"throughput"`
	// EchoP50 and EchoP99 are Of's latency percentiles over Base's (below
	// 1 means Of was faster), or 0 if either has no latency.
	EchoP50 float64 `json:"echo_p50,omitempty"`
	EchoP99 float64 `json:"echo_p99,omitempty"`
}

// StreamRatio is a throughput ratio at one stream count.
type StreamRatio struct {
	Streams int     `json:"streams"`
	Ratio   float64 `json:"ratio"`
}

// Result returns the named variant's result, or nil.
func (r *NetReport) Result(name string) *NetResult {
	for _, v := range r.Variants {
		if v.Name == name {
			return v
		}
	}
	return nil
}

// AddRatio appends the ratio of variant of to variant base if they have a
// throughput or a latency to compare, and reports whether it did.
func (r *NetReport) AddRatio(of, base string) bool {
	o, b := r.Result(of), r.Result(base)
	if o == nil || b == nil {
		return false
	}
	q := NetRatio{Of: of, Base: base, Throughput: []StreamRatio{}}
	for _, ot := range o.Throughput {
		for _, bt := range b.Throughput {
			if ot.Streams == bt.Streams && ot.Median > 0 && bt.Median > 0 {
				q.Throughput = append(q.Throughput, StreamRatio{Streams: ot.Streams, Ratio: round(ot.Median/bt.Median, 3)})
			}
		}
	}
	if o.Echo != nil && b.Echo != nil && b.Echo.P50 > 0 && b.Echo.P99 > 0 {
		q.EchoP50 = round(float64(o.Echo.P50)/float64(b.Echo.P50), 3)
		q.EchoP99 = round(float64(o.Echo.P99)/float64(b.Echo.P99), 3)
	}
	if len(q.Throughput) == 0 && q.EchoP50 == 0 {
		return false
	}
	r.Ratios = append(r.Ratios, q)
	return true
}

// ratio returns the ratio of of to base, or nil.
func (r *NetReport) ratio(of, base string) *NetRatio {
	for i := range r.Ratios {
		if r.Ratios[i].Of == of && r.Ratios[i].Base == base {
			return &r.Ratios[i]
		}
	}
	return nil
}

// MarshalJSON writes r with its run lengths in seconds.
func (r NetReport) MarshalJSON() ([]byte, error) {
	type out struct {
		Benchmark     string       `json:"benchmark"`
		Description   string       `json:"description,omitempty"`
		LoadGenerator string       `json:"load_generator"`
		Streams       []int        `json:"streams"`
		WriteBytes    int          `json:"write_bytes"`
		DurationS     float64      `json:"duration_s"`
		Rounds        int          `json:"rounds"`
		Order         string       `json:"order"`
		EchoBytes     int          `json:"echo_bytes"`
		EchoCount     int          `json:"echo_count"`
		EchoDurationS float64      `json:"echo_duration_s"`
		Variants      []*NetResult `json:"variants"`
		Ratios        []NetRatio   `json:"ratios"`
	}
	o := out{
		Benchmark: r.Benchmark, Description: r.Description, LoadGenerator: r.LoadGenerator,
		Streams: r.Streams, WriteBytes: r.WriteSize, DurationS: r.Duration.Seconds(), Rounds: r.Rounds,
		Order: r.Order, EchoBytes: r.EchoSize, EchoCount: r.EchoCount, EchoDurationS: r.EchoDuration.Seconds(),
		Variants: r.Variants, Ratios: r.Ratios,
	}
	if o.Variants == nil {
		o.Variants = []*NetResult{}
	}
	if o.Ratios == nil {
		o.Ratios = []NetRatio{}
	}
	return json.Marshal(o)
}

// MarshalJSON writes l with its percentiles in microseconds.
func (l NetLatency) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		N     int     `json:"n"`
		P50US float64 `json:"p50_us"`
		P99US float64 `json:"p99_us"`
	}{l.N, us(l.P50), us(l.P99)})
}

// us converts d to microseconds, to nanosecond precision.
func us(d time.Duration) float64 { return round(float64(d)/float64(time.Microsecond), 3) }

// Print writes r as aligned tables: the throughput of each variant at each
// stream count with the ratios, the request/response latencies with their
// ratios, the host's retransmissions, and what each variant ran or why it
// did not.
func (r *NetReport) Print(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s\n", r.Benchmark, r.Description)
	fmt.Fprintf(&b, "load generator: %s\n", r.LoadGenerator)
	fmt.Fprintf(&b, "order: %s; %d rounds; Gbit/s is the median of the rounds; A/B is A's over B's (above 1: A moved more)\n\n", r.Order, r.Rounds)

	// Throughput: streams, a column per variant, a column per ratio.
	header := []string{"streams"}
	for _, v := range r.Variants {
		header = append(header, v.Name+" Gbit/s")
	}
	for _, q := range r.Ratios {
		if len(q.Throughput) > 0 {
			header = append(header, q.Of+"/"+q.Base)
		}
	}
	rows := [][]string{header}
	for i, n := range r.Streams {
		row := []string{fmt.Sprint(n)}
		for _, v := range r.Variants {
			row = append(row, gbpsCell(v, i))
		}
		for _, q := range r.Ratios {
			if len(q.Throughput) == 0 {
				continue
			}
			cell := "-"
			for _, s := range q.Throughput {
				if s.Streams == n {
					cell = fmt.Sprintf("%.2fx", s.Ratio)
				}
			}
			row = append(row, cell)
		}
		rows = append(rows, row)
	}
	writeTable(&b, rows, 0)

	// Request/response latency.
	fmt.Fprintf(&b, "\nrequest/response: one connection, %d-byte request echoed, up to %d round trips or %v per run, %d runs per variant interleaved;\n"+
		"percentiles of all round trips by %s; A/B is A's over B's (below 1: A answered faster)\n\n",
		r.EchoSize, r.EchoCount, r.EchoDuration, r.Rounds, PercentileMethod)
	rows = [][]string{{"variant", "round trips", "p50 µs", "p99 µs"}}
	for _, v := range r.Variants {
		if v.Echo == nil {
			rows = append(rows, []string{v.Name, "-", "-", "-"})
			continue
		}
		rows = append(rows, []string{v.Name, fmt.Sprint(v.Echo.N),
			fmt.Sprintf("%.1f", usf(v.Echo.P50)), fmt.Sprintf("%.1f", usf(v.Echo.P99))})
	}
	writeTable(&b, rows, 1)
	rows = [][]string{{"latency ratio", "p50", "p99"}}
	for _, q := range r.Ratios {
		if q.EchoP50 > 0 {
			rows = append(rows, []string{q.Of + "/" + q.Base, fmt.Sprintf("%.2fx", q.EchoP50), fmt.Sprintf("%.2fx", q.EchoP99)})
		}
	}
	if len(rows) > 1 {
		b.WriteString("\n")
		writeTable(&b, rows, 1)
	}

	// Retransmissions, when the host counted them.
	var rv []*NetResult
	for _, v := range r.Variants {
		if slices.ContainsFunc(v.Throughput, func(t *NetThroughput) bool { return t.Retransmits >= 0 }) {
			rv = append(rv, v)
		}
	}
	if len(rv) > 0 {
		b.WriteString("\nTCP segments the host retransmitted during each variant's throughput runs (all rounds)\n\n")
		header := []string{"streams"}
		for _, v := range rv {
			header = append(header, v.Name)
		}
		rows := [][]string{header}
		for i, n := range r.Streams {
			row := []string{fmt.Sprint(n)}
			for _, v := range rv {
				cell := "-"
				if i < len(v.Throughput) && v.Throughput[i].Retransmits >= 0 {
					cell = fmt.Sprint(v.Throughput[i].Retransmits)
				}
				row = append(row, cell)
			}
			rows = append(rows, row)
		}
		writeTable(&b, rows, 0)
	}

	// What each variant ran, or why it did not.
	b.WriteString("\n")
	nameW := 0
	for _, v := range r.Variants {
		nameW = max(nameW, len(v.Name)+1)
	}
	for _, v := range r.Variants {
		switch {
		case v.Skipped != "":
			fmt.Fprintf(&b, "%-*s  skipped: %s\n", nameW, v.Name+":", v.Skipped)
		case v.Error != "":
			fmt.Fprintf(&b, "%-*s  FAILED: %s\n", nameW, v.Name+":", v.Error)
			if v.Detail != "" {
				fmt.Fprintf(&b, "%-*s  %s\n", nameW, "", v.Detail)
			}
		default:
			fmt.Fprintf(&b, "%-*s  %s\n", nameW, v.Name+":", v.Detail)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// gbpsCell is variant v's median at stream count index i, or why there is
// none.
func gbpsCell(v *NetResult, i int) string {
	switch {
	case v.Skipped != "":
		return "skipped"
	case i < len(v.Throughput) && len(v.Throughput[i].Gbps) > 0:
		return fmt.Sprintf("%.2f", v.Throughput[i].Median)
	case v.Error != "":
		return "failed"
	}
	return "-"
}

// writeTable writes rows with the first left columns left-aligned and the
// others right-aligned, each as wide as its widest cell, two spaces apart.
func writeTable(b *strings.Builder, rows [][]string, left int) {
	var widths []int
	for _, row := range rows {
		for i, c := range row {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	for _, row := range rows {
		var line strings.Builder
		for i, c := range row {
			pad := strings.Repeat(" ", widths[i]-len([]rune(c)))
			if i > 0 {
				line.WriteString("  ")
			}
			if i < left {
				line.WriteString(c + pad)
			} else {
				line.WriteString(pad + c)
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
}

// usf is d in microseconds, unrounded, for printing.
func usf(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// round3 rounds x to three decimals.
func round3(x float64) float64 { return round(x, 3) }

// medianFloat returns the median of xs (the mean of the two middle values
// for an even count), or 0 for none. It does not modify xs.
func medianFloat(xs []float64) float64 {
	n := len(xs)
	if n == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

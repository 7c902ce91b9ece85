package api

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	vm "github.com/VictoriaMetrics/metrics"

	"github.com/oak-engine/oak/engine"
)

// metrics are what the daemon exports on /metrics, in Prometheus's text
// format. Each is measured, none estimated: launches and requests are
// counted as this daemon serves them (a new daemon starts from zero;
// process_start_time_seconds tells when), containers by state are read
// from the records at each scrape.
//
// They are kept with github.com/VictoriaMetrics/metrics rather than
// Prometheus's own client: every oak command is this binary, and the
// client's package start-up (its default registry, procfs, protobuf) cost
// each command about 0.8 ms, a fifth of the CLI's start, where this costs
// about 0.3 (GODEBUG=inittrace=1).
type metrics struct {
	set          *vm.Set
	eng          Engine
	launchOK     *vm.Counter
	launchFailed *vm.Counter
	latency      *vm.PrometheusHistogram
	fn           *functionMetrics // function.go
}

// launchBuckets are oak_launch_seconds' upper bounds: 2 ms to about 16 s
// (a warm launch is a few ms, a loaded host's tens).
var launchBuckets = func() []float64 {
	b := make([]float64, 14)
	for i := range b {
		b[i] = 0.002 * float64(int(1)<<i)
	}
	return b
}()

func newMetrics(eng Engine) *metrics {
	s := vm.NewSet()
	return &metrics{
		set:          s,
		eng:          eng,
		launchOK:     s.NewCounter(`oak_launches_total{result="ok"}`),
		launchFailed: s.NewCounter(`oak_launches_total{result="failed"}`),
		latency:      s.NewPrometheusHistogramExt("oak_launch_seconds", launchBuckets),
		fn:           &functionMetrics{set: s},
	}
}

// launched records one create request's outcome: oak_launches_total by
// result, and oak_launch_seconds (from the request to the container's
// command executing) for those that succeeded.
func (m *metrics) launched(d time.Duration, err error) {
	if err != nil {
		m.launchFailed.Inc()
		return
	}
	m.launchOK.Inc()
	m.latency.Update(d.Seconds())
}

// request counts one answered API request in oak_api_requests_total, by
// route (method and pattern, or "unmatched") and HTTP status.
func (m *metrics) request(route string, status int) {
	m.set.GetOrCreateCounter(`oak_api_requests_total{route=` + strconv.Quote(route) + `,code="` + strconv.Itoa(status) + `"}`).Inc()
}

// containerStates are the states oak_containers always reports, zero
// included, so that a state's series does not vanish when it empties.
var containerStates = []string{engine.StatusCreated, engine.StatusRunning, engine.StatusRestarting,
	engine.StatusExited, engine.StatusBroken}

// write writes every metric: the counters and histogram, containers by
// state, and the daemon process's own (go_*, process_*).
func (m *metrics) write(w io.Writer) error {
	cs, err := m.eng.ListContainers(engine.Filter{})
	if err != nil {
		return fmt.Errorf("metrics: containers by state: %w", err)
	}
	n := map[string]uint64{}
	for _, ci := range cs {
		n[ci.State.Status]++
	}
	m.set.WritePrometheus(w)
	for _, s := range containerStates {
		vm.WriteGaugeUint64(w, `oak_containers{state="`+s+`"}`, n[s])
	}
	vm.WriteProcessMetrics(w)
	return nil
}

// serveMetrics answers GET /metrics.
func (m *metrics) serveMetrics(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	return m.write(w)
}

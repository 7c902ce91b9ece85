package api

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	vm "github.com/VictoriaMetrics/metrics"

	"github.com/oak-engine/oak/engine"
	"github.com/oak-engine/oak/services/netsvc"
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
// state, the containers' network counters and the factories' use of
// their quotas (read at scrape time), and the daemon process's own
// (go_*, process_*).
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
	var fs map[string]*engine.NetCounts
	if fc, ok := m.eng.(functionCounter); ok {
		fs = fc.FunctionNetCounts() // function.go
	}
	if nc, ok := m.eng.(netCounter); ok {
		writeNetCounts(w, nc, cs, fs)
	}
	if fl, ok := m.eng.(factoryLister); ok {
		fs, err := fl.ListFactories()
		if err != nil {
			return fmt.Errorf("metrics: factories: %w", err)
		}
		writeFactories(w, fs)
	}
	writeCore(w, m.eng) // core.go
	vm.WriteProcessMetrics(w)
	return nil
}

// netCounter is how the engine reads a container's network counters
// (*engine.Engine has it; the metrics leave them out for an Engine that
// has not).
type netCounter interface {
	NetCounts(id string) (*engine.NetCounts, error)
}

// writeNetCounts writes, for each container of cs whose supervisor keeps
// network counters (containers/ID/netcalls, shared with its network
// service), the trapped calls its network service answered by call and
// outcome (those that happened: a container makes a few kinds of call,
// and 40 zero series each would drown the rest), and the restarts of the
// service, zero included (a measured zero: the service never died). A
// container's counters run from its first start to its removal; the
// series go with the container. Those of functions' ended invocations,
// fs, follow by function (writeFunctionNetCounts), in the same group.
func writeNetCounts(w io.Writer, nc netCounter, cs []*engine.ContainerInfo, fs map[string]*engine.NetCounts) {
	var restarts []string
	var vals []uint64
	for _, ci := range cs {
		c, err := nc.NetCounts(ci.Id)
		if err != nil {
			continue // none (never ran, or not yet set up) or unreadable: nothing measured
		}
		id := engine.ShortID(ci.Id)
		restarts = append(restarts, `oak_network_service_restarts_total{container="`+id+`"}`)
		vals = append(vals, c.Restarts)
		for k, row := range c.Calls {
			for o, v := range row {
				if v > 0 {
					vm.WriteCounterUint64(w, `oak_trapped_calls_total{container="`+id+`",call="`+netsvc.Calls[k]+
						`",outcome="`+netsvc.Outcomes[o]+`"}`, v)
				}
			}
		}
	}
	writeFunctionNetCounts(w, fs)
	for i, name := range restarts {
		vm.WriteCounterUint64(w, name, vals[i])
	}
}

// factoryLister lists the factories with their use, as oak factory ls.
type factoryLister interface {
	ListFactories() ([]*engine.FactoryInfo, error)
}

// writeFactories writes each factory's use of its quota: what the kernel
// charges its groups now (memory, tasks: its sub-factories' and
// containers' included), what it has given out of its disk quota (its
// volumes' and containers' writable layers' reservations, and its
// sub-factories' disk limits), and its limits, those it has (a resource
// it does not limit has no series).
func writeFactories(w io.Writer, fs []*engine.FactoryInfo) {
	// Each metric's samples together, as the text format wants them.
	for _, g := range []struct {
		name string
		v    func(*engine.FactoryInfo) int64
	}{
		{"oak_factory_memory_bytes", func(f *engine.FactoryInfo) int64 { return f.Usage.MemoryBytes }},
		{"oak_factory_pids", func(f *engine.FactoryInfo) int64 { return f.Usage.Pids }},
		{"oak_factory_disk_reserved_bytes", func(f *engine.FactoryInfo) int64 { return f.Given.DiskBytes }},
	} {
		for _, f := range fs {
			vm.WriteGaugeUint64(w, g.name+`{factory="`+f.Name+`"}`, uint64(max(g.v(f), 0)))
		}
	}
	for _, f := range fs {
		for _, q := range []struct {
			res string
			v   int64
		}{{"memory_bytes", f.Limit.MemoryBytes}, {"pids", f.Limit.Pids}, {"cpu_milli", f.Limit.CPUMilli}, {"disk_bytes", f.Limit.DiskBytes}} {
			if q.v > 0 {
				vm.WriteGaugeUint64(w, `oak_factory_limit{factory="`+f.Name+`",resource="`+q.res+`"}`, uint64(q.v))
			}
		}
	}
}

// serveMetrics answers GET /metrics.
func (m *metrics) serveMetrics(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	return m.write(w)
}

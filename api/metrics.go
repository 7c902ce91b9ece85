package api

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/oak-engine/oak/engine"
)

// metrics are what the daemon exports on /metrics. Each is measured, none
// estimated: launches and requests are counted as this daemon serves
// them (a new daemon starts from zero; process_start_time_seconds tells
// when), containers by state are read from the records at each scrape.
type metrics struct {
	launches *prometheus.CounterVec
	latency  prometheus.Histogram
	requests *prometheus.CounterVec
	fn       *functionMetrics // function.go
}

func newMetrics(reg *prometheus.Registry, eng Engine) *metrics {
	m := &metrics{
		launches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oak_launches_total",
			Help: "Containers this daemon was asked to create and start, by result (ok, failed).",
		}, []string{"result"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "oak_launch_seconds",
			Help: "Time from a create request to the container's command executing, for launches that succeeded.",
			// 2 ms to about 16 s: a warm launch is a few ms, a loaded host's tens.
			Buckets: prometheus.ExponentialBuckets(0.002, 2, 14),
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oak_api_requests_total",
			Help: "API requests answered, by route (method and pattern) and HTTP status.",
		}, []string{"route", "code"}),
	}
	m.fn = newFunctionMetrics(reg)
	m.launches.WithLabelValues("ok")
	m.launches.WithLabelValues("failed")
	reg.MustRegister(m.launches, m.latency, m.requests, containerCollector{eng},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// launched records one create request's outcome.
func (m *metrics) launched(d time.Duration, err error) {
	if err != nil {
		m.launches.WithLabelValues("failed").Inc()
		return
	}
	m.launches.WithLabelValues("ok").Inc()
	m.latency.Observe(d.Seconds())
}

// containerStates are the states oak_containers always reports, zero
// included, so that a state's series does not vanish when it empties.
var containerStates = []string{engine.StatusCreated, engine.StatusRunning, engine.StatusRestarting,
	engine.StatusExited, engine.StatusBroken}

var containersDesc = prometheus.NewDesc("oak_containers",
	"Containers under the state root, by state, read from their records at scrape time.", []string{"state"}, nil)

// containerCollector counts containers by state when scraped.
type containerCollector struct{ eng Engine }

func (c containerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- containersDesc }

func (c containerCollector) Collect(ch chan<- prometheus.Metric) {
	cs, err := c.eng.ListContainers(engine.Filter{})
	if err != nil {
		ch <- prometheus.NewInvalidMetric(containersDesc, err)
		return
	}
	n := map[string]int{}
	for _, ci := range cs {
		n[ci.State.Status]++
	}
	for _, s := range containerStates {
		ch <- prometheus.MustNewConstMetric(containersDesc, prometheus.GaugeValue, float64(n[s]), s)
	}
}

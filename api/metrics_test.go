package api

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/oak-engine/oak/engine"
	"github.com/oak-engine/oak/sandbox"
)

// countingEngine is the fake engine with network counters for container
// "1" (none for "2": it never ran) and two factories.
type countingEngine struct{ *fakeEngine }

func (countingEngine) NetCounts(id string) (*engine.NetCounts, error) {
	if id != "1" {
		return nil, fmt.Errorf("network counters of %s: %w", id, os.ErrNotExist)
	}
	c := &engine.NetCounts{Restarts: 2, Calls: make([][]uint64, 8)}
	for i := range c.Calls {
		c.Calls[i] = make([]uint64, 5)
	}
	c.Calls[0][0] = 3 // socket allowed
	c.Calls[3][1] = 4 // connect denied
	return c, nil
}

func (countingEngine) ListFactories() ([]*engine.FactoryInfo, error) {
	return []*engine.FactoryInfo{
		{Name: "team", Limit: engine.QuotaInfo{MemoryBytes: 1 << 30, Pids: 64}, Given: engine.QuotaInfo{DiskBytes: 5 << 20},
			Usage: sandbox.GroupUsage{MemoryBytes: 4096, Pids: 3}},
		{Name: "open"},
	}, nil
}

// TestMetricsNetworkAndFactories: the trapped calls that happened and
// the service restarts are exported per container that has counters,
// the factories' use and the limits they have, and nothing for what was
// not measured.
func TestMetricsNetworkAndFactories(t *testing.T) {
	s := NewServer(countingEngine{&fakeEngine{}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.SetReady()
	body := do(s, "GET", "/metrics", "").Body.String()
	for _, want := range []string{
		`oak_trapped_calls_total{container="1",call="socket",outcome="allowed"} 3`,
		`oak_trapped_calls_total{container="1",call="connect",outcome="denied"} 4`,
		`oak_network_service_restarts_total{container="1"} 2`,
		`oak_factory_memory_bytes{factory="team"} 4096`,
		`oak_factory_pids{factory="team"} 3`,
		`oak_factory_disk_reserved_bytes{factory="team"} 5242880`,
		`oak_factory_limit{factory="team",resource="memory_bytes"} 1073741824`,
		`oak_factory_limit{factory="team",resource="pids"} 64`,
		`oak_factory_pids{factory="open"} 0`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, unwanted := range []string{
		`container="2"`,                 // no counters: nothing measured
		`call="bind"`,                   // no such call made
		`{factory="team",resource="cpu`, // no CPU limit
		`{factory="open",resource=`,     // no limit at all
	} {
		if strings.Contains(body, unwanted) {
			t.Errorf("metrics have %s:\n%s", unwanted, body)
		}
	}
	// The plain fake engine has neither: no such series at all.
	plain, _ := newTestServer(t)
	if b := do(plain, "GET", "/metrics", "").Body.String(); strings.Contains(b, "oak_trapped") || strings.Contains(b, "oak_factory") {
		t.Errorf("metrics of an engine without counters or factories have them:\n%s", b)
	}
}

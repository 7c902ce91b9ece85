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

// countingEngine is the fake engine with network counters for containers
// "1" and "3" (none for "2": it never ran) and two factories.
type countingEngine struct{ *fakeEngine }

func (f countingEngine) ListContainers(fl engine.Filter) ([]*engine.ContainerInfo, error) {
	cs, err := f.fakeEngine.ListContainers(fl)
	return append(cs, &engine.ContainerInfo{Id: "3", Name: "third", State: engine.ContainerState{Status: engine.StatusRunning}}), err
}

func (countingEngine) NetCounts(id string) (*engine.NetCounts, error) {
	if id != "1" && id != "3" {
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

// FunctionNetCounts: the ended invocations of function "upper" made
// five denied connects.
func (countingEngine) FunctionNetCounts() map[string]*engine.NetCounts {
	c := &engine.NetCounts{Calls: make([][]uint64, 8)}
	for i := range c.Calls {
		c.Calls[i] = make([]uint64, 5)
	}
	c.Calls[3][1] = 5
	return map[string]*engine.NetCounts{"upper": c, "idle": {}}
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
		`oak_trapped_calls_total{function="upper",call="connect",outcome="denied"} 5`,
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
		`function="idle"`,               // no call made
		`call="bind"`,                   // no such call made
		`{factory="team",resource="cpu`, // no CPU limit
		`{factory="open",resource=`,     // no limit at all
	} {
		if strings.Contains(body, unwanted) {
			t.Errorf("metrics have %s:\n%s", unwanted, body)
		}
	}
	// The text format wants each metric's samples together.
	seen, last := map[string]bool{}, ""
	for _, l := range strings.Split(strings.TrimSpace(body), "\n") {
		if strings.HasPrefix(l, "#") {
			continue
		}
		name, _, _ := strings.Cut(strings.Fields(l)[0], "{")
		if name != last && seen[name] {
			t.Errorf("the samples of %s are not together: %q comes after %s", name, l, last)
		}
		seen[name], last = true, name
	}
	if !strings.Contains(body, `oak_network_service_restarts_total{container="3"} 2`) {
		t.Error("metrics lack the second container's restarts")
	}
	// The plain fake engine has neither: no such series at all.
	plain, _ := newTestServer(t)
	if b := do(plain, "GET", "/metrics", "").Body.String(); strings.Contains(b, "oak_trapped") || strings.Contains(b, "oak_factory") {
		t.Errorf("metrics of an engine without counters or factories have them:\n%s", b)
	}
}

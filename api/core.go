package api

import (
	"context"
	"errors"
	"net/http"

	vm "github.com/VictoriaMetrics/metrics"

	"github.com/oak-engine/oak/engine"
)

// coreEngine is what the daemon needs of the engine to hold the host's
// capability core (engine/hostcore.go) and show it; *engine.Engine has
// it.
type coreEngine interface {
	HoldCore() error
	CoreInfo() (*engine.CoreInfo, error)
}

// hostCore answers GET /v1/core: the size of the host core the daemon
// holds and the generation of the records it is current at.
func (s *Server) hostCore(w http.ResponseWriter, r *http.Request) error {
	if err := parseQuery(r.URL).err; err != nil {
		return err
	}
	ce, ok := s.eng.(coreEngine)
	if !ok {
		return errors.New("host core: this engine holds none")
	}
	ci, err := ce.CoreInfo()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ci)
	return nil
}

// writeCore writes the host core's gauges, if the engine holds one.
func writeCore(w interface{ Write([]byte) (int, error) }, eng Engine) {
	ce, ok := eng.(coreEngine)
	if !ok {
		return
	}
	ci, err := ce.CoreInfo()
	if err != nil {
		return
	}
	vm.WriteGaugeUint64(w, "oak_core_capabilities", uint64(ci.Capabilities))
	vm.WriteGaugeUint64(w, "oak_core_spaces", uint64(ci.Spaces))
	vm.WriteGaugeUint64(w, "oak_core_generation", ci.Generation)
	vm.WriteGaugeUint64(w, "oak_core_records_generation", ci.RecordsGeneration)
	vm.WriteCounterUint64(w, "oak_core_builds_total", ci.Builds)
	vm.WriteCounterUint64(w, "oak_core_syncs_total", ci.Syncs)
}

// Core asks the daemon for its host core's size.
func (c *Client) Core(ctx context.Context) (*engine.CoreInfo, error) {
	var ci engine.CoreInfo
	err := c.do(ctx, "GET", "/v1/core", nil, nil, &ci)
	return &ci, err
}

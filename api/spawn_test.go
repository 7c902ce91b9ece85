package api

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/oak-engine/oak/engine"
)

// spawnEngine is tenantEngine whose container "web" (tenant a's) holds
// the spawn capability, factory spawn-web, and has made "kid"; every
// other container holds none.
type spawnEngine struct{ *tenantEngine }

func (f *spawnEngine) SpawnFactoryOf(id string) (string, error) {
	if id == "web" {
		return "spawn-web", nil
	}
	return "", errors.New("container " + id + " holds no spawn capability")
}

func (f *spawnEngine) ListContainers(fl engine.Filter) ([]*engine.ContainerInfo, error) {
	cs, _ := f.tenantEngine.ListContainers(fl)
	kid := &engine.ContainerInfo{Id: "k1d", Name: "spawn-web.kid", State: engine.ContainerState{Status: engine.StatusRunning, Running: true}}
	kid.HostConfig.Parent, kid.HostConfig.Factory = "web", "spawn-web"
	return append(cs, kid), nil
}

func newSpawnServer(t *testing.T) (*Server, *spawnEngine) {
	f := &spawnEngine{&tenantEngine{fakeEngine: &fakeEngine{}}}
	s := NewServer(f, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.SetReady()
	return s, f
}

// TestSpawnPrincipal: the spawn mark narrows root's requests to the
// container's sub-containers, made for it; the mark of a container that
// holds no capability is refused; any other peer's mark counts for
// nothing (it acts as itself).
func TestSpawnPrincipal(t *testing.T) {
	s, f := newSpawnServer(t)
	req := func(uid uint32, parent, method, target, body string) (int, string) {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		r := httptest.NewRequest(method, target, rd)
		if parent != "" {
			r.Header.Set(engine.SpawnHeader, parent)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, asUID(r, uid))
		return w.Code, w.Body.String()
	}

	code, body := req(0, "web", "GET", "/v1/containers", "")
	var cs []engine.ContainerInfo
	if code != 200 || json.Unmarshal([]byte(body), &cs) != nil || len(cs) != 1 || cs[0].Id != "k1d" || cs[0].Name != "kid" {
		t.Errorf("list as web's spawn: %d %s, want its kid only, named kid", code, body)
	}
	if code, body := req(0, "web", "GET", "/v1/containers/rootweb", ""); code != 404 {
		t.Errorf("inspect root's container as web's spawn: %d %s, want 404", code, body)
	}
	if code, body := req(0, "web", "GET", "/v1/containers/web", ""); code != 404 {
		t.Errorf("inspect the parent itself as its spawn: %d %s, want 404", code, body)
	}
	if code, body := req(0, "web", "GET", "/v1/volumes", ""); code != 403 {
		t.Errorf("volumes as a spawn: %d %s, want 403", code, body)
	}
	// A foreground run is a tenant's, not a spawn capability's: its
	// supervisor is handed descriptors the proxy does not carry.
	if code, body := req(0, "web", "POST", "/v1/containers/run", `{"Image":"demo"}`); code != 403 || !strings.Contains(body, "not open") {
		t.Errorf("a foreground run as a spawn: %d %s, want 403", code, body)
	}
	if code, body := req(0, "web", "POST", "/v1/containers", `{"Image":"demo"}`); code != 201 {
		t.Fatalf("create as web's spawn: %d %s", code, body)
	}
	if o := f.run; o.Parent != "web" || o.Tenant != "" || o.Factory != "spawn-web" || o.Limits.MemoryBytes != 0 {
		t.Errorf("create as web's spawn reached the engine as %+v, want parent web, factory spawn-web, the factory's limits", o)
	}
	if code, body := req(0, "rootweb", "GET", "/v1/containers", ""); code != 403 || !strings.Contains(body, "no spawn capability") {
		t.Errorf("the mark of a container without the capability: %d %s, want 403", code, body)
	}
	// Tenant a's peer marking its request: it is tenant a, no more, no less.
	code, body = req(4001, "web", "GET", "/v1/containers", "")
	if code != 200 || !strings.Contains(body, `"Id":"web"`) || strings.Contains(body, "k1d") {
		t.Errorf("tenant a with a spawn mark: %d %s, want tenant a's list", code, body)
	}
	if code, _ := req(4003, "web", "GET", "/v1/containers", ""); code != 403 {
		t.Errorf("an unknown uid with a spawn mark: %d, want 403", code)
	}
}

// A container reaching its sub-containers through its spawn capability
// is not told which tenant the host runs them (and it) for.
func TestSpawnCallerSeesNoTenant(t *testing.T) {
	kid := &engine.ContainerInfo{Id: "k1d", Name: "spawn-web.kid"}
	kid.HostConfig.Parent, kid.HostConfig.Tenant = "web", "a"
	c := caller{tenant: &engine.Tenant{Name: "spawn-web"}, parent: "web"}
	if got := c.own([]*engine.ContainerInfo{kid}); len(got) != 1 || got[0].HostConfig.Tenant != "" || got[0].Name != "kid" {
		t.Errorf("a parent's view of its sub-container: %+v", got)
	}
	if kid.HostConfig.Tenant != "a" {
		t.Error("the view changed the record")
	}
}

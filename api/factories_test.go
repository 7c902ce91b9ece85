package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/oak-engine/oak/engine"
)

// TestTenantFactories pins what root and tenants see and do of factories
// (see testFactories): a tenant sees its own factory and sub-factories by
// its names for them and nothing above or beside them, makes
// sub-factories only inside its own (kept as TENANT.NAME), removes only
// those, and is told of anyone else's what it is told of a missing one.
func TestTenantFactories(t *testing.T) {
	s, f := newTenantServer(t)
	names := func(body string) []string {
		var fs []engine.FactoryInfo
		if err := json.Unmarshal([]byte(body), &fs); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		var out []string
		for _, fi := range fs {
			out = append(out, fi.Name+"<"+fi.Parent)
		}
		return out
	}
	if w := doAs(s, 0, "GET", "/v1/factories", ""); w.Code != 200 || !slices.Equal(names(w.Body.String()), []string{"a.sub<fa", "fa<rootf", "fb<", "rootf<"}) {
		t.Errorf("root's list: %d %s", w.Code, w.Body)
	}
	w := doAs(s, 4001, "GET", "/v1/factories", "")
	if w.Code != 200 || !slices.Equal(names(w.Body.String()), []string{"sub<fa", "fa<"}) {
		t.Errorf("tenant a's list: %d %s, want sub (parent fa) and fa (no parent it may know)", w.Code, w.Body)
	}
	for _, leak := range []string{"rootf", "rootweb", "a.", "f-"} {
		if strings.Contains(w.Body.String(), leak) {
			t.Errorf("tenant a's list names %q: %s", leak, w.Body)
		}
	}
	if !strings.Contains(w.Body.String(), `"Containers":["web"]`) || !strings.Contains(w.Body.String(), `"Children":["sub"]`) {
		t.Errorf("tenant a's list: %s, want fa's container web and child sub by a's names", w.Body)
	}
	if w := doAs(s, 4002, "GET", "/v1/factories", ""); w.Code != 200 || !slices.Equal(names(w.Body.String()), []string{"fb<"}) {
		t.Errorf("tenant b's list: %d %s", w.Code, w.Body)
	}
	for _, c := range []struct {
		uid    uint32
		method string
		target string
		body   string
		status int
		want   string // in the body, or the engine's last call
	}{
		{4001, "GET", "/v1/factories/sub", "", 200, `"Name":"sub"`},
		{4001, "GET", "/v1/factories/fa", "", 200, `"Name":"fa"`},
		{4001, "GET", "/v1/factories/a.sub", "", 404, "factory a.sub: no such factory"}, // the name kept is not its name for it
		{4001, "GET", "/v1/factories/rootf", "", 404, "factory rootf: no such factory"},
		{4002, "GET", "/v1/factories/fa", "", 404, "factory fa: no such factory"},
		{0, "GET", "/v1/factories/a.sub", "", 200, `"Group":"f-rootf-1/f-fa-2/f-a.sub-3"`},
		{0, "GET", "/v1/factories/nosuch", "", 404, CodeNoSuchFactory},
		{4001, "POST", "/v1/factories", `{"Name":"x","Quota":{"MemoryBytes":67108864}}`, 201, "factory create a.x parent fa memory 67108864"},
		{4001, "POST", "/v1/factories", `{"Name":"y","Parent":"sub"}`, 201, "factory create a.y parent a.sub memory 0"},
		{4001, "POST", "/v1/factories", `{"Name":"fa"}`, 400, "own factory"},
		{4001, "POST", "/v1/factories", `{"Name":"z","Parent":"rootf"}`, 404, "factory create z: --parent rootf: no such factory"},
		{4002, "POST", "/v1/factories", `{"Name":"z","Parent":"sub"}`, 404, "factory create z: --parent sub: no such factory"},
		{4002, "POST", "/v1/factories", `{"Name":"z","Parent":"fa"}`, 404, "factory create z: --parent fa: no such factory"},
		{0, "POST", "/v1/factories", `{"Name":"z","Parent":"fa"}`, 201, "factory create z parent fa memory 0"},
		{4001, "POST", "/v1/factories", `{"Name":"x","Quota":{"Pids":1}}`, 400, "invalid --pids"},
		{4001, "DELETE", "/v1/factories/fa", "", 403, "tenant a's own factory is root's"},
		{4001, "DELETE", "/v1/factories/sub?force=1", "", 204, "factory rm a.sub force true"},
		{4002, "DELETE", "/v1/factories/sub", "", 404, "factory sub: no such factory"},
		{0, "DELETE", "/v1/factories/fa", "", 204, "factory rm fa force false"},
		{0, "DELETE", "/v1/factories/fa?force=maybe", "", 400, "force"},
	} {
		f.calls = nil
		w := doAs(s, c.uid, c.method, c.target, c.body)
		got := w.Body.String() + strings.Join(f.calls, "; ")
		if w.Code != c.status || !strings.Contains(got, c.want) {
			t.Errorf("uid %d %s %s %s: %d %s, want %d and %q", c.uid, c.method, c.target, c.body, w.Code, got, c.status, c.want)
		}
		if c.status/100 != 2 && len(f.calls) > 0 {
			t.Errorf("uid %d %s %s: refused, yet the engine was asked: %v", c.uid, c.method, c.target, f.calls)
		}
	}
	// What a tenant made is shown to it by its name, under its parent's.
	w = doAs(s, 4001, "POST", "/v1/factories", `{"Name":"y","Parent":"sub"}`)
	var fi engine.FactoryInfo
	if json.Unmarshal(w.Body.Bytes(), &fi) != nil || fi.Name != "y" || fi.Parent != "sub" || fi.Group != "" {
		t.Errorf("tenant a's new factory shown as %s, want y under sub, no group", w.Body)
	}
	// A container's spawn capability reaches no factory.
	r := asRoot(httptest.NewRequest("GET", "/v1/factories", nil))
	r.Header.Set(engine.SpawnHeader, "web")
	sp, _ := newSpawnServer(t)
	rec := httptest.NewRecorder()
	sp.ServeHTTP(rec, r)
	if rec.Code != http.StatusForbidden {
		t.Errorf("factories through a spawn capability: %d %s, want 403", rec.Code, rec.Body)
	}
}

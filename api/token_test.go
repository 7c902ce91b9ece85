package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/oak-engine/oak/engine"
)

// Tokens of the test tenants: a's is live; revoked was b's once.
var (
	tokenA       = engine.TokenPrefix + strings.Repeat("A", engine.TokenLen-len(engine.TokenPrefix))
	tokenRevoked = engine.TokenPrefix + strings.Repeat("R", engine.TokenLen-len(engine.TokenPrefix))
	tokenWrong   = engine.TokenPrefix + strings.Repeat("w", engine.TokenLen-len(engine.TokenPrefix))
)

func (f *tenantEngine) TenantByToken(tok string) (*engine.Tenant, error) {
	if tok == tokenA {
		return testTenants[4001], nil
	}
	return nil, engine.ErrBadToken
}

// Tenant management, as far as the route checks need: tenant a exists.
func (f *tenantEngine) CreateTenant(o engine.TenantOptions) (*engine.Tenant, error) {
	return &engine.Tenant{Name: o.Name, UIDs: o.UIDs, Factory: o.Factory}, nil
}
func (f *tenantEngine) ListTenants() ([]*engine.Tenant, error) {
	return []*engine.Tenant{testTenants[4001], testTenants[4002]}, nil
}
func (f *tenantEngine) InspectTenant(name string) (*engine.Tenant, error) {
	for _, t := range testTenants {
		if t.Name == name {
			return t, nil
		}
	}
	return nil, engine.ErrNoSuchTenant
}
func (f *tenantEngine) RemoveTenant(name string) error {
	_, err := f.InspectTenant(name)
	return err
}
func (f *tenantEngine) NewTenantToken(name string) (string, error) {
	if _, err := f.InspectTenant(name); err != nil {
		return "", err
	}
	return tokenA, nil
}
func (f *tenantEngine) RevokeTenantToken(name string) error { return f.RemoveTenant(name) }
func (f *tenantEngine) WithdrawTenant(name string) error    { return f.RemoveTenant(name) }

// doWith is doAs with an Authorization header (none if auth is "").
func doWith(s *Server, uid uint32, auth []string, method, target, body string) *httptest.ResponseRecorder {
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	var r *http.Request
	if rd != nil {
		r = httptest.NewRequest(method, target, rd)
	} else {
		r = httptest.NewRequest(method, target, nil)
	}
	r.Header["Authorization"] = auth
	if auth == nil {
		r.Header.Del("Authorization")
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, asUID(r, uid))
	return w
}

// TestTokens: a token acts as its tenant, and only as it, whoever the
// peer is (a uid of no tenant, another tenant's uid, root); a wrong or
// revoked token is 401 with one body naming nobody; a malformed header is
// 401 without repeating its value.
func TestTokens(t *testing.T) {
	s, _ := newTenantServer(t)
	bearerA := []string{"Bearer " + tokenA}
	for _, uid := range []uint32{4009, 4002, 0} {
		w := doWith(s, uid, bearerA, "GET", "/v1/containers", "")
		if w.Code != 200 || !strings.Contains(w.Body.String(), `"Name":"web"`) || strings.Contains(w.Body.String(), "mine") ||
			strings.Contains(w.Body.String(), "rootweb") {
			t.Errorf("uid %d with a's token: GET /v1/containers: %d %s; want a's containers only", uid, w.Code, w.Body)
		}
		if w := doWith(s, uid, bearerA, "GET", "/v1/tenants", ""); w.Code != http.StatusForbidden {
			t.Errorf("uid %d with a's token: GET /v1/tenants: %d %s; want 403", uid, w.Code, w.Body)
		}
		if w := doWith(s, uid, bearerA, "GET", "/v1/containers/f00d", ""); w.Code != http.StatusNotFound {
			t.Errorf("uid %d with a's token: b's container: %d %s; want 404", uid, w.Code, w.Body)
		}
	}
	if w := doWith(s, 4001, []string{"bearer " + tokenA}, "GET", "/v1/containers", ""); w.Code != 200 {
		t.Errorf("the scheme in lower case: %d %s", w.Code, w.Body)
	}
	// Wrong and revoked tokens: one answer, whoever asks.
	var first string
	for _, uid := range []uint32{4009, 4001, 0} {
		for _, tok := range []string{tokenWrong, tokenRevoked} {
			w := doWith(s, uid, []string{"Bearer " + tok}, "GET", "/v1/containers", "")
			if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), CodeUnauthorized) {
				t.Errorf("uid %d with a bad token: %d %s; want 401", uid, w.Code, w.Body)
			}
			if first == "" {
				first = w.Body.String()
			}
			if w.Body.String() != first {
				t.Errorf("bad tokens answered differently: %s and %s", first, w.Body)
			}
			for _, leak := range []string{`"a"`, "tenant a", "tenant b", tok} {
				if strings.Contains(w.Body.String(), leak) {
					t.Errorf("a bad token's answer names %s: %s", leak, w.Body)
				}
			}
		}
	}
	// Malformed headers: 401, the value never echoed.
	for _, auth := range [][]string{
		{"Basic " + tokenA}, {tokenA}, {"Bearer"}, {"Bearer "}, {"Bearer  " + tokenA}, {"Bearer " + tokenA + " "},
		{"Bearer " + tokenA, "Bearer " + tokenA}, {""}, {"Bearer " + tokenA[:20] + "!" + tokenA[21:]},
	} {
		w := doWith(s, 0, auth, "GET", "/v1/containers", "")
		if w.Code != http.StatusUnauthorized || strings.Contains(w.Body.String(), tokenA[len(engine.TokenPrefix):len(engine.TokenPrefix)+8]) {
			t.Errorf("Authorization %q: %d %s; want 401 without the value", auth, w.Code, w.Body)
		}
	}
	// A container's spawn capability carries no token.
	r := httptest.NewRequest("GET", "/v1/containers", nil)
	r.Header.Set(engine.SpawnHeader, "web")
	r.Header.Set("Authorization", "Bearer "+tokenA)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, asRoot(r))
	if w.Code != http.StatusForbidden {
		t.Errorf("spawn capability with a token: %d %s; want 403", w.Code, w.Body)
	}
	// Without credentials a token does not count.
	r = httptest.NewRequest("GET", "/v1/containers", nil)
	r.Header.Set("Authorization", "Bearer "+tokenA)
	w = httptest.NewRecorder()
	s.ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("a token on a connection without peer credentials: %d %s; want 401", w.Code, w.Body)
	}
}

// TestTenantRoutesAreRoots: root manages tenants through the API; a
// tenant, by uid or by token, is refused every /v1/tenants route, saying
// that only root manages tenants; a uid of no tenant is refused too.
func TestTenantRoutesAreRoots(t *testing.T) {
	s, _ := newTenantServer(t)
	for _, c := range []struct {
		method, target, body string
		status               int
		want                 string
	}{
		{"GET", "/v1/tenants", "", 200, `"Name":"b"`},
		{"POST", "/v1/tenants", `{"Name":"c","UIDs":[4005],"Quota":{"MemoryBytes":268435456}}`, 201, `"Name":"c"`},
		{"POST", "/v1/tenants", `{"Name":"c","UIDs":[4005],"Memory":"1g"}`, 400, "Memory"},
		{"POST", "/v1/tenants", `{"Name":"c","UIDs":[4005],"Quota":{"MemoryBytes":-1}}`, 400, "Quota"},
		{"GET", "/v1/tenants/a", "", 200, `"Token":false`},
		{"GET", "/v1/tenants/nosuch", "", 404, CodeNoSuchTenant},
		{"DELETE", "/v1/tenants/a", "", 204, ""},
		{"POST", "/v1/tenants/a/token", "", 201, tokenA},
		{"POST", "/v1/tenants/nosuch/token", "", 404, CodeNoSuchTenant},
		{"DELETE", "/v1/tenants/a/token", "", 204, ""},
	} {
		w := doWith(s, 0, nil, c.method, c.target, c.body)
		if w.Code != c.status || !strings.Contains(w.Body.String(), c.want) {
			t.Errorf("root: %s %s: %d %s; want %d with %q", c.method, c.target, w.Code, w.Body, c.status, c.want)
		}
	}
	for _, rt := range s.Routes() {
		if !strings.HasPrefix(rt.Pattern, "/v1/tenants") || rt.Pattern == "/v1/tenants/self" {
			continue
		}
		target := strings.ReplaceAll(rt.Pattern, "{name}", "a")
		for _, who := range []struct {
			uid  uint32
			auth []string
		}{{4001, nil}, {4002, nil}, {4009, []string{"Bearer " + tokenA}}, {0, []string{"Bearer " + tokenA}}} {
			w := doWith(s, who.uid, who.auth, rt.Method, target, `{"Name":"x","UIDs":[4007],"Factory":"fa"}`)
			if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "only root manages tenants") {
				t.Errorf("%s %s as uid %d (token %v): %d %s; want 403", rt.Method, target, who.uid, who.auth != nil, w.Code, w.Body)
			}
		}
		if w := doWith(s, 4009, nil, rt.Method, target, ""); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "not a tenant") {
			t.Errorf("%s %s as uid 4009: %d %s; want 403", rt.Method, target, w.Code, w.Body)
		}
	}
	// GET /v1/tenants/self: the caller's own tenant, by uid or token;
	// root is none; a uid of no tenant is refused.
	for _, c := range []struct {
		uid    uint32
		auth   []string
		status int
		want   string
	}{
		{4001, nil, 200, `"Name":"a"`},
		{4002, nil, 200, `"Name":"b"`},
		{4002, []string{"Bearer " + tokenA}, 200, `"Name":"a"`},
		{0, []string{"Bearer " + tokenA}, 200, `"Name":"a"`},
		{0, nil, 404, CodeNoSuchTenant},
		{4009, nil, 403, "not a tenant"},
	} {
		w := doWith(s, c.uid, c.auth, "GET", "/v1/tenants/self", "")
		if w.Code != c.status || !strings.Contains(w.Body.String(), c.want) {
			t.Errorf("GET /v1/tenants/self as uid %d (token %v): %d %s; want %d with %s", c.uid, c.auth != nil, w.Code, w.Body, c.status, c.want)
		}
	}
}

// FuzzBearer: whatever the header holds, bearerToken does not panic; what
// it accepts is a well-formed token that the header carried after the
// scheme; what it refuses, it refuses without repeating the value.
func FuzzBearer(f *testing.F) {
	for _, s := range []string{"Bearer " + tokenA, "bearer " + tokenA, "Basic dXNlcjpwYXNz", "Bearer", "Bearer  x", "", "Bearer oak_\x00",
		"BEARER " + tokenA + "\n", "Bearer " + tokenA + ",Bearer " + tokenA} {
		f.Add(s, false)
	}
	f.Add("Bearer "+tokenA, true)
	f.Fuzz(func(t *testing.T, v string, twice bool) {
		h := http.Header{"Authorization": {v}}
		if twice {
			h["Authorization"] = append(h["Authorization"], v)
		}
		tok, ok, err := bearerToken(h)
		if !ok {
			t.Fatalf("bearerToken(%q): a header given counts as no token", v)
		}
		if err != nil {
			if tok != "" {
				t.Fatalf("bearerToken(%q) = %q and an error", v, tok)
			}
			// The messages' own words: anything longer the error holds
			// of the value would be the value.
			const words = "Authorization: given times; want one, Bearer TOKEN the only scheme this daemon takes " +
				"invalid token: want oak_ followed by 43 base64url characters character is not base64url"
			if len(v) > 12 && strings.Contains(err.Error(), v[7:]) && !strings.Contains(words, v[7:]) {
				t.Fatalf("bearerToken(%q): error %q repeats the value", v, err)
			}
			return
		}
		if twice {
			t.Fatalf("bearerToken: two headers accepted")
		}
		if engine.CheckTokenFormat(tok) != nil || !strings.EqualFold(v, "Bearer "+tok) || v[len(v)-len(tok):] != tok {
			t.Fatalf("bearerToken(%q) = %q: not the token the header carries", v, tok)
		}
	})
	if _, ok, err := bearerToken(http.Header{}); ok || err != nil {
		f.Errorf("no header: ok %v err %v", ok, err)
	}
}

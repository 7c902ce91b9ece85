package engine

import (
	"maps"
	"testing"
)

// TestTenantFactories: a tenant's factories are its own and those under
// it, named as it knows them; a name resolves among them only, by the
// tenant's names, the one it made first.
func TestTenantFactories(t *testing.T) {
	fs := []*FactoryInfo{
		{Name: "team"},
		{Name: "ci", Parent: "team"},    // tenant a's factory, root's name for it
		{Name: "a.batch", Parent: "ci"}, // made by a
		{Name: "a.nightly", Parent: "a.batch"},
		{Name: "rootmade", Parent: "ci"}, // root put it under a's factory
		{Name: "x", Parent: "ci"},        // root's, shown to a as x …
		{Name: "a.x", Parent: "a.batch"}, // … and a's own x, which wins
		{Name: "a.stray"},                // a's prefix, outside its factory
		{Name: "b", Parent: "team"},      // tenant b's
		{Name: "b.batch", Parent: "b"},
		{Name: "loop1", Parent: "loop2"}, // corrupt: a cycle
		{Name: "loop2", Parent: "loop1"},
	}
	a := &Tenant{Name: "a", Factory: "ci"}
	want := map[string]string{"ci": "ci", "a.batch": "batch", "a.nightly": "nightly", "rootmade": "rootmade", "x": "x", "a.x": "x"}
	if got := TenantFactories(a, fs); !maps.Equal(got, want) {
		t.Errorf("a's factories = %v, want %v", got, want)
	}
	for ref, want := range map[string]string{
		"ci": "ci", "batch": "a.batch", "nightly": "a.nightly", "rootmade": "rootmade", "x": "a.x",
		"a.batch": "", "team": "", "b": "", "b.batch": "", "stray": "", "a.stray": "", "": "", "loop1": "",
	} {
		got, ok := ResolveTenantFactory(a, fs, ref)
		if got != want || ok != (want != "") {
			t.Errorf("ResolveTenantFactory(a, %q) = %q, %v; want %q", ref, got, ok, want)
		}
	}
}

package engine

import (
	"slices"
	"testing"

	"github.com/oak-engine/oak/core"
)

func egressOf(t *testing.T, args ...string) []core.Egress {
	t.Helper()
	var out []core.Egress
	for _, a := range args {
		g, err := core.ParseEgress(a)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, g)
	}
	return out
}

// TestGrantTree: each sub-container's grant derives in the host core
// from the parent's it is a part of (the equal one first), so revoking a
// grant withdraws exactly its parts below, at any depth, deepest first.
func TestGrantTree(t *testing.T) {
	nodes := func() []hostNode {
		return []hostNode{
			{ID: "top", Egress: egressOf(t, "10.0.0.0/8:443/tcp", "any", "192.168.1.1:80/tcp")},
			{ID: "a", Parent: "top", Egress: egressOf(t, "10.1.2.3:443/tcp", "192.168.1.1:80/tcp", "8.8.8.8:53/udp")},
			{ID: "c", Parent: "top", Egress: egressOf(t, "172.16.0.1:22/tcp")},
			{ID: "b", Parent: "a", Egress: egressOf(t, "10.1.2.3:443/tcp", "8.8.8.8:53/udp")},
		}
	}
	tests := []struct {
		id, name string
		want     [][2]string
	}{
		{"top", "egress 10.0.0.0/8:443/tcp", [][2]string{{"b", "egress 10.1.2.3:443/tcp"}, {"a", "egress 10.1.2.3:443/tcp"}}},
		{"top", "egress any", [][2]string{{"b", "egress 8.8.8.8:53/udp"}, {"c", "egress 172.16.0.1:22/tcp"}, {"a", "egress 8.8.8.8:53/udp"}}},
		// The equal grant is the whole, though "any" holds it too.
		{"top", "egress 192.168.1.1:80/tcp", [][2]string{{"a", "egress 192.168.1.1:80/tcp"}}},
		{"a", "egress 10.1.2.3:443/tcp", [][2]string{{"b", "egress 10.1.2.3:443/tcp"}}},
		{"a", "egress 192.168.1.1:80/tcp", nil},
		{"c", "egress 172.16.0.1:22/tcp", nil},
		{"top", "egress 1.2.3.4", nil}, // not held: nothing derived from it
	}
	for _, tt := range tests {
		h, err := newHostCore(nil, nil, nodes())
		if err != nil {
			t.Fatal(err)
		}
		if len(h.orphans) != 0 {
			t.Fatalf("orphans %v in a consistent tree", h.orphans)
		}
		got, err := h.revokeGrant(tt.id, tt.name)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("revoke %s %q = %v, %v; want %v", tt.id, tt.name, got, err, tt.want)
		}
		if _, ok := h.ctrs[tt.id].holds(tt.name); ok {
			t.Errorf("revoke %s %q: still held", tt.id, tt.name)
		}
	}
	h, _ := newHostCore(nil, nil, nil)
	if _, err := h.revokeGrant("nobody", "egress any"); err == nil {
		t.Error("revoke in a container not in the core: want an error")
	}
}

// TestGrantTreeOrphans: a grant a sub-container holds that is a part of
// none its parent holds (a revocation a crash interrupted) is an orphan,
// withdrawn by the next revocation.
func TestGrantTreeOrphans(t *testing.T) {
	h, err := newHostCore(nil, nil, []hostNode{
		{ID: "b", Parent: "a", Egress: egressOf(t, "11.0.0.1:80/tcp", "10.0.0.0/8")}, // before its parent: ordered
		{ID: "top", Egress: egressOf(t, "10.0.0.0/8")},
		{ID: "a", Parent: "top", Egress: egressOf(t, "10.0.0.1:80/tcp", "11.0.0.1:80/tcp")},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{{"a", "egress 11.0.0.1:80/tcp"}, {"b", "egress 11.0.0.1:80/tcp"}, {"b", "egress 10.0.0.0/8"}}
	if got := h.takeOrphans("top"); !slices.Equal(got, want) {
		t.Errorf("orphans %v, want %v", got, want)
	}
	if got := h.takeOrphans("top"); len(got) != 0 {
		t.Errorf("orphans taken twice: %v", got)
	}
}

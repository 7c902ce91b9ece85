package engine

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/oak-engine/oak/core"
)

// coreModel is the records a host core is built from, as a test keeps
// them: factory records and containers (their grants less those marked
// revoked).
type coreModel struct {
	fs    []*Factory
	nodes []hostNode
}

func (m *coreModel) build(t *testing.T) *hostCore {
	t.Helper()
	fs := make([]*Factory, len(m.fs))
	for i, f := range m.fs {
		c := *f
		fs[i] = &c
	}
	h, err := newHostCore(fs, nil, slices.Clone(m.nodes))
	if err != nil {
		t.Fatalf("build from the records: %v", err)
	}
	return h
}

func (m *coreModel) node(id string) *hostNode {
	for i := range m.nodes {
		if m.nodes[i].ID == id {
			return &m.nodes[i]
		}
	}
	return nil
}

// mark removes grant name from container id's, as its revoked mark does.
func (m *coreModel) mark(id, name string) {
	n := m.node(id)
	if n == nil {
		return
	}
	if name == "spawn" {
		n.Spawn = false
		return
	}
	n.Egress = slices.DeleteFunc(n.Egress, func(g core.Egress) bool { return grantName(g) == name })
}

func sortedPairs(p [][2]string) [][2]string {
	p = slices.Clone(p)
	sort.Slice(p, func(i, j int) bool { return p[i][0]+p[i][1] < p[j][0]+p[j][1] })
	return p
}

// TestHostCoreRebuild is the property that lets a daemon keep its core:
// after any sequence of operations applied to a live core in place (the
// records written alongside), a core built afresh from the records holds
// the same capabilities and the same usage, and a revocation takes the
// same capabilities in both.
func TestHostCoreRebuild(t *testing.T) {
	grants := egressOf(t, "10.0.0.0/8", "10.1.0.0/16:443/tcp", "10.1.2.3:443/tcp", "any", "192.168.0.1:53/udp", "8.8.8.8")
	for seed := uint64(1); seed <= 40; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		m := &coreModel{}
		live := m.build(t)
		nextID := 0
		var log []string
		for step := 0; step < 120; step++ {
			var did string
			switch op := rng.IntN(7); op {
			case 0: // factory create
				o := FactoryOptions{Name: fmt.Sprintf("f%d", step)}
				if len(m.fs) > 0 && rng.IntN(2) == 0 {
					o.Parent = m.fs[rng.IntN(len(m.fs))].Name
				}
				o.Quota = FactoryQuota{MemoryBytes: int64(rng.IntN(4)) * 64 << 20, DiskBytes: int64(rng.IntN(3)) << 30}
				if err := live.fac.add(o); err != nil {
					live = m.build(t) // refused: the daemon's core is built again
					continue
				}
				f := &Factory{Name: o.Name, ID: "0123456789ab", Parent: o.Parent, Quota: o.Quota}
				live.fac.byName[f.Name] = f
				m.fs = append(m.fs, f)
				did = "factory create " + o.Name + " parent " + o.Parent
			case 1: // factory remove, of one with nothing in it
				if len(m.fs) == 0 {
					continue
				}
				f := m.fs[rng.IntN(len(m.fs))]
				if slices.ContainsFunc(m.fs, func(o *Factory) bool { return o.Parent == f.Name }) ||
					slices.ContainsFunc(m.nodes, func(n hostNode) bool { return n.Factory == f.Name }) {
					continue
				}
				// As RemoveFactory does: revoke, and forget the records.
				w, err := live.fac.revoke(f.Name)
				if err != nil || len(w.containers) > 0 || len(w.factories) != 1 {
					t.Fatalf("seed %d: remove factory %s: took %+v, %v", seed, f.Name, w, err)
				}
				live.fac.forget(w.factories)
				m.fs = slices.DeleteFunc(m.fs, func(o *Factory) bool { return o == f })
				did = "factory rm " + f.Name
			case 2, 3: // container admit, of the host's, a factory's or a sub-container
				nextID++
				n := hostNode{ID: fmt.Sprintf("c%03d", nextID), Image: "img", Disk: int64(rng.IntN(2)) << 29}
				var spawners []hostNode
				for _, o := range m.nodes {
					if _, ok := live.ctrs[o.ID].holds("spawn"); ok {
						spawners = append(spawners, o)
					}
				}
				switch {
				case len(spawners) > 0 && rng.IntN(2) == 0:
					p := spawners[rng.IntN(len(spawners))]
					n.Parent, n.Factory, n.Image = p.ID, p.Factory, p.Image
					for _, g := range live.egress(p.ID) {
						if rng.IntN(2) == 0 {
							n.Egress = append(n.Egress, g)
						} else if parts := slices.DeleteFunc(slices.Clone(grants), func(x core.Egress) bool { return !core.Within(x, g) }); len(parts) > 0 {
							n.Egress = append(n.Egress, parts[rng.IntN(len(parts))])
						}
					}
					var es []string
					for _, g := range n.Egress {
						es = append(es, g.String())
					}
					if err := live.partsOf(p.ID, es); err != nil {
						t.Fatalf("seed %d: parts of the parent's: %v", seed, err)
					}
				case len(m.fs) > 0 && rng.IntN(3) > 0:
					n.Factory = m.fs[rng.IntN(len(m.fs))].Name
					for _, g := range grants {
						if rng.IntN(3) == 0 {
							n.Egress = append(n.Egress, g)
						}
					}
				}
				n.Spawn = n.Factory != "" && rng.IntN(2) == 0
				if err := live.add(n); err != nil {
					if !strings.Contains(err.Error(), "quota exhausted") {
						t.Fatalf("seed %d: admit %+v: %v", seed, n, err)
					}
					live = m.build(t)
					continue
				}
				m.nodes = append(m.nodes, n)
				did = fmt.Sprintf("admit %s parent %s factory %s spawn %v egress %v", n.ID, n.Parent, n.Factory, n.Spawn, n.Egress)
			case 4: // container remove: a leaf, as the engine removes sub-containers first
				var leaves []string
				for _, o := range m.nodes {
					if !slices.ContainsFunc(m.nodes, func(x hostNode) bool { return x.Parent == o.ID }) {
						leaves = append(leaves, o.ID)
					}
				}
				if len(leaves) == 0 {
					continue
				}
				id := leaves[rng.IntN(len(leaves))]
				if err := live.remove(id); err != nil {
					t.Fatalf("seed %d: remove %s: %v", seed, id, err)
				}
				m.nodes = slices.DeleteFunc(m.nodes, func(x hostNode) bool { return x.ID == id })
				did = "rm " + id
			case 5, 6: // revoke a grant (or the spawn right), in the live core and in one built now
				if len(m.nodes) == 0 {
					continue
				}
				n := m.nodes[rng.IntN(len(m.nodes))]
				var names []string
				for name := range live.ctrs[n.ID].own {
					if name != "/" && name != "log" {
						names = append(names, name)
					}
				}
				if len(names) == 0 {
					continue
				}
				sort.Strings(names)
				name := names[rng.IntN(len(names))]
				fresh := m.build(t)
				gone, err := live.revokeGrant(n.ID, name)
				if err != nil {
					t.Fatalf("seed %d: revoke %s %q: %v", seed, n.ID, name, err)
				}
				gone2, err := fresh.revokeGrant(n.ID, name)
				if err != nil || !slices.Equal(sortedPairs(gone), sortedPairs(gone2)) {
					t.Fatalf("seed %d: revoke %s %q: live took %v, a rebuilt core %v (%v)", seed, n.ID, name, gone, gone2, err)
				}
				m.mark(n.ID, name)
				if name != "spawn" {
					for _, g := range gone {
						m.mark(g[0], g[1])
					}
				}
				did = fmt.Sprintf("revoke %s %q: %v", n.ID, name, gone)
			}
			log = append(log, did)
			if a, b := live.dump(), m.build(t).dump(); a != b {
				t.Fatalf("seed %d, after\n  %s\nthe live core and one rebuilt from the records differ:\nlive:\n%s\nrebuilt:\n%s",
					seed, strings.Join(log, "\n  "), a, b)
			}
		}
	}
}

// TestHostCoreSize: the core counts the host's space, one space per
// container and what each holds.
func TestHostCoreSize(t *testing.T) {
	h, err := newHostCore([]*Factory{{Name: "f", ID: "0123456789ab"}}, nil, []hostNode{
		{ID: "a", Factory: "f", Image: "img", Spawn: true, Egress: egressOf(t, "10.0.0.0/8")},
		{ID: "b", Parent: "a", Factory: "f", Image: "img", Egress: egressOf(t, "10.0.0.1:80/tcp")},
		{ID: "c", Image: "img"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var ci CoreInfo
	h.size(&ci)
	// Host space: root, factory f, 3 reservations, a's 4 minted, b's
	// log, c's 2 minted = 12; a's space 4, b's 3 (image, log, egress),
	// c's 2 = 9.
	if ci.Factories != 1 || ci.Containers != 3 || ci.Spaces != 4 || ci.Capabilities != 21 {
		t.Errorf("size %+v; want 1 factory, 3 containers, 4 spaces, 21 capabilities", ci)
	}
}

// dump describes everything the core holds, without its handles and
// spaces' numbers (which depend on the order things were made): the
// host's space by name, each container's space, each factory's limit,
// remaining quota and usage. Two cores with the same dump hold the same
// capabilities and the same usage.
func (h *hostCore) dump() string {
	var b strings.Builder
	line := func(where string, c core.Cap) {
		fmt.Fprintf(&b, "%s\t%s\t%v\t%v:%v\n", where, c.Name, c.Rights, c.Object.Kind(), c.Object)
	}
	caps, _ := h.k.Caps(h.space)
	sort.Slice(caps, func(i, j int) bool { return caps[i].Name < caps[j].Name })
	for _, c := range caps {
		line("host", c)
		if c.Object.Kind() == core.KindFactory {
			limit, rem, _ := h.k.FactoryQuota(h.space, c.Handle)
			used, _ := h.k.FactoryUsage(h.space, c.Handle)
			fmt.Fprintf(&b, "quota\t%s\t%v\t%v\t%v\n", c.Name, limit, rem, used)
		}
	}
	ids := make([]string, 0, len(h.ctrs))
	for id := range h.ctrs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		c := h.ctrs[id]
		fmt.Fprintf(&b, "container\t%s\tparent=%s\tfactory=%s\n", id, c.node.Parent, c.node.Factory)
		cs, _ := h.k.Caps(c.space)
		sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
		for _, cp := range cs {
			line("  "+id, cp)
		}
		if o := slices.Clone(h.orphans[id]); len(o) > 0 {
			sort.Strings(o)
			fmt.Fprintf(&b, "orphans\t%s\t%s\n", id, strings.Join(o, ", "))
		}
	}
	used, _ := h.k.FactoryUsage(h.space, h.root)
	fmt.Fprintf(&b, "root\t%v\n", used)
	return b.String()
}

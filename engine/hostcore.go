package engine

import (
	"fmt"
	"slices"

	"github.com/oak-engine/oak/core"
)

// The host core: one capability core for the whole state root.
//
// Its root factory is the host's quota (factoryRoot). In the root's space (the host's
// space) are, as the factory tree has them (factory.go), a factory
// capability per factory record ("factory NAME", tenants' included: a
// tenant is a factory), each made from its parent's, and a reservation
// per volume of a factory ("volume NAME"). Every container is a
// sub-factory "container ID" of its factory (of the root for a container
// of no factory) holding its writable layer's disk, and the space made
// from it, the container's space, holds what the container holds:
//
//   - "/", its image; "log", its log; "spawn", the spawn right of a
//     container run with --spawn whose right was not revoked; one grant
//     per egress grant it still holds ("egress 10.0.0.5:443/tcp").
//   - A container of the host's (no parent) has each minted in the host's
//     space ("mint ID NAME") and derived into its own, so a revocation
//     deletes the minted one and everything derived from it goes.
//   - A sub-container's are derived from its parent's: its image and spawn
//     right from the parent's, each egress grant with
//     [core.Core.DeriveWithin] from the parent's grant it is a part of
//     (the equal one if the parent holds it, else the first that holds
//     it); only its log is minted. A grant that is a part of nothing the
//     parent holds is an orphan: left by a revocation a crash interrupted,
//     and withdrawn by the next.
//
// The records stay the truth: a host core is built from them
// (buildHostCore), and two builds from the same records hold the same
// capabilities and the same usage. A daemon keeps its core between
// operations and builds it again when the records' generation
// (hostcore_linux.go) is no longer the one it holds; without a daemon,
// each operation builds one, uses it and drops it.
type hostCore struct {
	k     *core.Core
	space core.Space  // the host's
	root  core.Handle // the root factory, in the host's space
	fac   *factoryTree
	ctrs  map[string]*coreContainer
	order []string // container ids, parents before their sub-containers
	// orphans are grants a sub-container's records hold that are a part
	// of nothing its parent holds, by container id.
	orphans map[string][]string
}

// hostNode is one container as the host core takes it from the records.
type hostNode struct {
	ID, Parent, Factory string
	Image               string
	Spawn               bool          // holds the spawn right (run with --spawn, not revoked)
	Egress              []core.Egress // held: its spec's less those marked revoked
	Disk                int64         // its writable layer's charge of its factory's disk
}

// coreContainer is one container in the host core.
type coreContainer struct {
	node  hostNode
	space core.Space
	hold  core.Handle            // its "container ID" sub-factory, in the host's space
	own   map[string]core.Handle // its capabilities in its space, by name
	mint  map[string]core.Handle // those minted for it in the host's space, by name
}

// newHostCore builds the host core of factory records fs, the
// reservations of their volumes, and containers nodes (in any order).
// It refuses what newFactoryTree refuses, and a container of a factory
// that has no record, or that does not fit in its factory's disk.
func newHostCore(fs []*Factory, volumes []diskCharge, nodes []hostNode) (*hostCore, error) {
	t, err := newFactoryTree(fs, volumes)
	if err != nil {
		return nil, err
	}
	_, rh := t.k.Root()
	h := &hostCore{k: t.k, space: t.space, root: rh, fac: t, ctrs: map[string]*coreContainer{},
		orphans: map[string][]string{}}
	for _, n := range parentsFirst(nodes) {
		if err := h.add(n); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// parentsFirst orders nodes so that each comes after its parent. A node
// whose parent is not among them (removed first, or records edited into
// a cycle) is a top.
func parentsFirst(nodes []hostNode) []hostNode {
	byID := map[string]bool{}
	kids := map[string][]hostNode{}
	for _, n := range nodes {
		byID[n.ID] = true
	}
	var out, queue []hostNode
	for _, n := range nodes {
		if n.Parent != "" && byID[n.Parent] && n.Parent != n.ID {
			kids[n.Parent] = append(kids[n.Parent], n)
		} else {
			queue = append(queue, n)
		}
	}
	seen := map[string]bool{}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		if seen[n.ID] {
			continue
		}
		seen[n.ID] = true
		out = append(out, n)
		queue = append(queue, kids[n.ID]...)
	}
	// Those in a cycle of parents: tops, in the order given.
	for _, n := range nodes {
		if !seen[n.ID] {
			seen[n.ID] = true
			n.Parent = ""
			out = append(out, n)
		}
	}
	return out
}

// Rights of what a container holds.
const (
	imageRights  = core.RightRead | core.RightExecute | core.RightDerive
	logRights    = core.RightRead | core.RightWrite | core.RightDerive
	spawnRights  = core.RightSpawn | core.RightDerive
	egressRights = core.RightConnect | core.RightDerive
)

// add puts container n into the core: its reservation of its factory,
// its space, and what it holds, minted or derived from its parent's.
func (h *hostCore) add(n hostNode) error {
	if _, dup := h.ctrs[n.ID]; dup {
		return fmt.Errorf("container %s: listed twice", ShortID(n.ID))
	}
	var hold core.Handle
	if n.Factory != "" {
		if err := h.fac.reserve(diskCharge{factory: n.Factory, kind: "container", id: n.ID, bytes: n.Disk}); err != nil {
			return err
		}
		c, err := h.k.LookupName(h.space, "container "+n.ID, 0)
		if err != nil {
			return err
		}
		hold = c.Handle
	} else {
		var err error
		if hold, err = h.k.NewFactory(h.space, h.root, core.Quota{Caps: core.Unlimited}, h.space, "container "+n.ID); err != nil {
			return fmt.Errorf("container %s: %w", ShortID(n.ID), err)
		}
	}
	sp, err := h.k.NewSpace(h.space, hold)
	if err != nil {
		return fmt.Errorf("container %s: %w", ShortID(n.ID), err)
	}
	c := &coreContainer{node: n, space: sp, hold: hold, own: map[string]core.Handle{}, mint: map[string]core.Handle{}}
	h.ctrs[n.ID] = c
	h.order = append(h.order, n.ID)
	p := h.ctrs[n.Parent]
	if n.Parent != "" && p == nil {
		c.node.Parent = "" // its parent is gone: a top
	}
	img := core.Image{Ref: n.Image}
	if img.Ref == "" {
		img.Ref = "unknown"
	}
	if err := h.give(c, p, "/", img, imageRights); err != nil {
		return err
	}
	if err := h.give(c, nil, "log", core.Log{}, logRights); err != nil {
		return err
	}
	// A sub-container's spawn right is a copy of its parent's: none if
	// the parent's was revoked.
	if _, parentHolds := p.holds("spawn"); n.Spawn && (p == nil || parentHolds) {
		if err := h.give(c, p, "spawn", core.Spawn{}, spawnRights); err != nil {
			return err
		}
	}
	for _, g := range n.Egress {
		name := grantName(g)
		if _, ok := c.own[name]; ok {
			continue // given twice in the spec
		}
		if p == nil {
			if err := h.give(c, nil, name, g, egressRights); err != nil {
				return err
			}
			continue
		}
		if !h.deriveGrant(p, g, c, name) {
			h.orphans[n.ID] = append(h.orphans[n.ID], name)
		}
	}
	return nil
}

// holds reports whether c (which may be nil) holds a capability called
// name, and its handle in c's space.
func (c *coreContainer) holds(name string) (core.Handle, bool) {
	if c == nil {
		return 0, false
	}
	h, ok := c.own[name]
	return h, ok
}

// give puts obj into c's space under name: derived from parent p's
// capability of that name if p holds one, else minted in the host's
// space and derived from there.
func (h *hostCore) give(c, p *coreContainer, name string, obj core.Object, r core.Rights) error {
	if p != nil {
		if ph, ok := p.own[name]; ok {
			nh, err := h.k.Derive(p.space, ph, r, c.space, name)
			if err != nil {
				return fmt.Errorf("container %s: %s: %w", ShortID(c.node.ID), name, err)
			}
			c.own[name] = nh
			return nil
		}
	}
	mh, err := h.k.Mint(h.space, "mint "+c.node.ID+" "+name, obj, r)
	if err != nil {
		return fmt.Errorf("container %s: %s: %w", ShortID(c.node.ID), name, err)
	}
	nh, err := h.k.Derive(h.space, mh, r, c.space, name)
	if err != nil {
		return fmt.Errorf("container %s: %s: %w", ShortID(c.node.ID), name, err)
	}
	c.mint[name], c.own[name] = mh, nh
	return nil
}

// deriveGrant derives g into c's space from the grant of p it is a part
// of. It reports false if p holds none.
func (h *hostCore) deriveGrant(p *coreContainer, g core.Egress, c *coreContainer, name string) bool {
	whole, ok := h.wholeOf(p, g)
	if !ok {
		return false
	}
	nh, err := h.k.DeriveWithin(p.space, whole, egressRights, g, c.space, name)
	if err != nil {
		return false
	}
	c.own[name] = nh
	return true
}

// wholeOf is the egress grant of p that g is a part of: the equal one if
// p holds it, else the first (by handle) that holds it.
func (h *hostCore) wholeOf(p *coreContainer, g core.Egress) (core.Handle, bool) {
	caps, err := h.k.Caps(p.space)
	if err != nil {
		return 0, false
	}
	var whole *core.Cap
	for i := range caps {
		if caps[i].Object.Kind() != core.KindEgress {
			continue
		}
		if caps[i].Object == core.Object(g) {
			return caps[i].Handle, true
		}
		if whole == nil && core.Within(g, caps[i].Object) {
			whole = &caps[i]
		}
	}
	if whole == nil {
		return 0, false
	}
	return whole.Handle, true
}

// partsOf refuses egress grants that are not each a part of one that
// container parent holds in the core.
func (h *hostCore) partsOf(parent string, egress []string) error {
	p, ok := h.ctrs[parent]
	if !ok {
		return fmt.Errorf("run: parent %s: %w", ShortID(parent), ErrNoSuchContainer)
	}
	for _, s := range egress {
		g, err := core.ParseEgress(s)
		if err != nil {
			return fmt.Errorf("invalid --egress %s: %w", s, err)
		}
		if _, ok := h.wholeOf(p, g); !ok {
			return fmt.Errorf("invalid --egress %s: not within a grant the parent holds (%s); a sub-container's rights are a part of its parent's", s, egressText(h.egress(parent)))
		}
	}
	return nil
}

// egress is the egress grants container id holds in the core.
func (h *hostCore) egress(id string) []core.Egress {
	var out []core.Egress
	if c, ok := h.ctrs[id]; ok {
		caps, _ := h.k.Caps(c.space)
		for _, cp := range caps {
			if g, ok := cp.Object.(core.Egress); ok {
				out = append(out, g)
			}
		}
	}
	return out
}

// subtree is container id and every container under it, parents first.
func (h *hostCore) subtree(id string) []string {
	in := map[string]bool{id: true}
	out := []string{id}
	for _, cid := range h.order { // parents first: a parent is in before its children are looked at
		if c := h.ctrs[cid]; c != nil && in[c.node.Parent] && !in[cid] {
			in[cid] = true
			out = append(out, cid)
		}
	}
	return out
}

// revokeGrant deletes grant name of container id — the minted one if
// the container is a top, else its own, derived from its parent's — and
// with it everything derived from it: one [core.Core.Delete]. It returns
// what went in the sub-containers' spaces, deepest first. A grant the
// container does not hold is no error: nothing goes.
func (h *hostCore) revokeGrant(id, name string) ([][2]string, error) {
	c, ok := h.ctrs[id]
	if !ok {
		return nil, fmt.Errorf("container %s: %w", ShortID(id), ErrNoSuchContainer)
	}
	ids := h.subtree(id)
	before := map[string][]core.Cap{}
	for _, cid := range ids[1:] {
		before[cid], _ = h.k.Caps(h.ctrs[cid].space)
	}
	var err error
	if mh, ok := c.mint[name]; ok {
		err = h.k.Delete(h.space, mh)
	} else if oh, ok := c.own[name]; ok {
		err = h.k.Delete(c.space, oh)
	}
	if err != nil {
		return nil, err
	}
	delete(c.mint, name)
	delete(c.own, name)
	var gone [][2]string
	for i := len(ids) - 1; i >= 1; i-- {
		sub := h.ctrs[ids[i]]
		after, _ := h.k.Caps(sub.space)
		live := map[core.Handle]bool{}
		for _, a := range after {
			live[a.Handle] = true
		}
		for _, b := range before[ids[i]] {
			if !live[b.Handle] {
				gone = append(gone, [2]string{ids[i], b.Name})
				delete(sub.own, b.Name)
			}
		}
	}
	return gone, nil
}

// takeOrphans returns the orphans of container id's tree, parents
// first, and forgets them: the caller withdraws them.
func (h *hostCore) takeOrphans(id string) [][2]string {
	var out [][2]string
	for _, cid := range h.subtree(id) {
		for _, o := range h.orphans[cid] {
			out = append(out, [2]string{cid, o})
		}
		delete(h.orphans, cid)
	}
	return out
}

// revokeSpawn deletes container id's spawn right, and with it its
// sub-containers' (which are then removed, with theirs).
func (h *hostCore) revokeSpawn(id string) error {
	_, err := h.revokeGrant(id, "spawn")
	return err
}

// remove takes container id out of the core: its reservation (and with
// it its space) and what was minted for it. Its sub-containers go first
// (the engine removes them first); one left would lose what it derived.
func (h *hostCore) remove(id string) error {
	c, ok := h.ctrs[id]
	if !ok {
		return fmt.Errorf("container %s: %w", ShortID(id), ErrNoSuchContainer)
	}
	for _, o := range h.ctrs {
		if o.node.Parent == id {
			return fmt.Errorf("container %s: sub-container %s is still in the core", ShortID(id), ShortID(o.node.ID))
		}
	}
	for _, mh := range c.mint {
		if err := h.k.Delete(h.space, mh); err != nil {
			return err
		}
	}
	if err := h.k.Delete(h.space, c.hold); err != nil {
		return err
	}
	if r := h.fac.reserved[c.node.Factory]; r != nil {
		delete(r, "container "+ShortID(id))
	}
	delete(h.ctrs, id)
	delete(h.orphans, id)
	h.order = slices.DeleteFunc(h.order, func(x string) bool { return x == id })
	return nil
}

// CoreInfo is the size of a host core, as oak daemon status and
// GET /v1/core show it.
type CoreInfo struct {
	// Held says a daemon keeps the core between operations; without
	// one, every operation builds its own from the records.
	Held bool
	// Generation is the records' generation (the count of writes of
	// what the core is built from) the core is current at;
	// RecordsGeneration is the records' now. The core is current when
	// they are equal.
	Generation        uint64
	RecordsGeneration uint64
	Factories         int // factory records, tenants' included
	Containers        int // container spaces
	Spaces            int // the host's, one per container
	Capabilities      int // live, in every space
	// Builds counts the cores built from the records by this process,
	// Syncs the times it brought its core up to date in place (only
	// containers made or removed since); BuildSeconds is what the last
	// build took (reading the records included).
	Builds       uint64
	Syncs        uint64
	BuildSeconds float64
}

// size fills in what the core holds.
func (h *hostCore) size(ci *CoreInfo) {
	ci.Factories = len(h.fac.byName)
	ci.Containers = len(h.ctrs)
	ci.Spaces, ci.Capabilities = h.k.Size()
}

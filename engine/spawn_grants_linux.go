package engine

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/oak-engine/oak/core"
)

// Egress grants that follow revocation down a tree of sub-containers.
//
// A sub-container's egress grants are parts of its parent's (admitSpawn
// refuses any other). Which part came from which whole is the core's
// derivation tree: for a revocation the engine loads the tree of the
// container whose grant goes — it and every sub-container under it, each
// a space in a fresh core — minting the container's own grants and
// deriving each sub-container's from its parent's with
// [core.Core.DeriveWithin]; then it deletes the revoked grant in that
// core and reads, space by space, which capabilities went with it. Each
// is withdrawn from its container as oak revoke withdraws one: marked in
// the container's directory (so no later start gives it back, and no
// sub-container is given a part of it), and revoked in its supervisor,
// whose network service stops serving it before the answer.
//
// The records are the truth, as for factories: a container's grants are
// its spec's less the ones marked revoked, so a crash part-way leaves
// some marks written and some not, and the next revocation or a look at
// the tree (an orphan: a grant no longer within any its parent holds) is
// withdrawn then.

// revokedPath is where the mark of grant name of container id is.
func (e *Engine) revokedPath(id, name string) string {
	return filepath.Join(e.dir(id), revokedDir, hex.EncodeToString([]byte(name)))
}

// markRevoked records that container id no longer holds grant name.
func (e *Engine) markRevoked(id, name string) error {
	// Mkdir, not MkdirAll: a container removed meanwhile gets no directory back.
	if err := os.Mkdir(filepath.Join(e.dir(id), revokedDir), 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("revoke %s %q: %w", ShortID(id), name, unwrapPath(err))
	}
	if err := writeFileAtomic(e.revokedPath(id, name), nil); err != nil {
		return fmt.Errorf("revoke %s %q: %w", ShortID(id), name, err)
	}
	return nil
}

// revokedGrants lists the grants marked revoked of container id.
func (e *Engine) revokedGrants(id string) map[string]bool {
	ents, _ := os.ReadDir(filepath.Join(e.dir(id), revokedDir))
	out := map[string]bool{}
	for _, ent := range ents {
		if b, err := hex.DecodeString(ent.Name()); err == nil {
			out[string(b)] = true
		}
	}
	return out
}

// dropRevoked withdraws from a, the authority a container starts with,
// every grant marked revoked.
func (e *Engine) dropRevoked(id string, a *authority) {
	for name := range e.revokedGrants(id) {
		a.revoke(name) // one it does not hold is no matter
	}
}

// heldEgress is the egress grants container id still holds: its spec's
// less those marked revoked.
func (e *Engine) heldEgress(id string, spec *Spec) []core.Egress {
	revoked := e.revokedGrants(id)
	var out []core.Egress
	for _, s := range spec.Egress {
		g, err := core.ParseEgress(s)
		if err == nil && !revoked[grantName(g)] {
			out = append(out, g)
		}
	}
	return out
}

// grantTree is the egress grants of a container and of every
// sub-container under it, in one core.
type grantTree struct {
	k      *core.Core
	spaces map[string]core.Space // by container id
	ids    []string              // parents first
	// orphans are grants a sub-container holds that are within none its
	// parent holds: left by a revocation a crash interrupted.
	orphans [][2]string // id, grant name
}

// grantNode is one container of a grant tree: its id, its parent's ("" for
// the tree's top) and the egress grants it holds.
type grantNode struct {
	id, parent string
	egress     []core.Egress
}

// loadGrantTree loads the egress grants of container top and of its
// sub-containers, at any depth, from the records.
func (e *Engine) loadGrantTree(top *Container) (*grantTree, error) {
	cs, err := e.List()
	if err != nil {
		return nil, err
	}
	kids := map[string][]*Container{}
	for _, c := range cs {
		if c.Parent != "" {
			kids[c.Parent] = append(kids[c.Parent], c)
		}
	}
	var nodes []grantNode
	seen := map[string]bool{}
	queue := []grantNode{{id: top.ID}}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		if seen[n.id] {
			continue // records edited into a cycle
		}
		seen[n.id] = true
		for _, kid := range kids[n.id] {
			queue = append(queue, grantNode{id: kid.ID, parent: n.id})
		}
		if spec, err := e.readSpec(n.id); err == nil { // a broken record holds nothing
			n.egress = e.heldEgress(n.id, spec)
		}
		nodes = append(nodes, n)
	}
	return newGrantTree(nodes)
}

// newGrantTree loads nodes, parents first, into a fresh core: the first
// node's grants minted, every other's derived from its parent's.
func newGrantTree(nodes []grantNode) (*grantTree, error) {
	k, err := core.New(factoryRoot())
	if err != nil {
		return nil, err
	}
	rs, rh := k.Root()
	t := &grantTree{k: k, spaces: map[string]core.Space{}}
	for i, n := range nodes {
		if _, dup := t.spaces[n.id]; dup {
			return nil, fmt.Errorf("container %s: listed twice", ShortID(n.id))
		}
		from, ok := t.spaces[n.parent]
		if i > 0 && !ok {
			return nil, fmt.Errorf("container %s: parent %s is not before it", ShortID(n.id), ShortID(n.parent))
		}
		sp, err := k.NewSpace(rs, rh)
		if err != nil {
			return nil, err
		}
		t.spaces[n.id] = sp
		t.ids = append(t.ids, n.id)
		for _, g := range n.egress {
			name := grantName(g)
			if i == 0 {
				if _, err := k.Mint(sp, name, g, core.RightConnect|core.RightDerive); err != nil && !errors.Is(err, core.ErrExists) {
					return nil, err
				}
				continue
			}
			if !t.derive(from, g, sp, name) {
				t.orphans = append(t.orphans, [2]string{n.id, name})
			}
		}
	}
	return t, nil
}

// derive derives g into space into from the grant of space from it is a
// part of: the equal one if from holds it, else the first that holds it.
// It reports false if from holds none.
func (t *grantTree) derive(from core.Space, g core.Egress, into core.Space, name string) bool {
	caps, err := t.k.Caps(from)
	if err != nil {
		return false
	}
	var whole *core.Cap
	for i := range caps {
		if caps[i].Object == core.Object(g) {
			whole = &caps[i]
			break
		}
		if whole == nil && core.Within(g, caps[i].Object) {
			whole = &caps[i]
		}
	}
	if whole == nil {
		return false
	}
	_, err = t.k.DeriveWithin(from, whole.Handle, core.RightConnect|core.RightDerive, g, into, name)
	return err == nil || errors.Is(err, core.ErrExists)
}

// revoke deletes grant name of container id from the tree and returns
// what went with it in the other containers' spaces, deepest first.
func (t *grantTree) revoke(id, name string) ([][2]string, error) {
	sp, ok := t.spaces[id]
	if !ok {
		return nil, fmt.Errorf("container %s: %w", ShortID(id), ErrNoSuchContainer)
	}
	c, err := t.k.LookupName(sp, name, 0)
	if err != nil {
		return nil, nil // not a grant its sub-containers could have a part of
	}
	before := map[string][]core.Cap{}
	for _, cid := range t.ids {
		before[cid], _ = t.k.Caps(t.spaces[cid])
	}
	if err := t.k.Delete(sp, c.Handle); err != nil {
		return nil, err
	}
	var gone [][2]string
	for i := len(t.ids) - 1; i >= 0; i-- {
		cid := t.ids[i]
		if cid == id {
			continue
		}
		live := map[core.Handle]bool{}
		after, _ := t.k.Caps(t.spaces[cid])
		for _, a := range after {
			live[a.Handle] = true
		}
		for _, b := range before[cid] {
			if !live[b.Handle] {
				gone = append(gone, [2]string{cid, b.Name})
			}
		}
	}
	return gone, nil
}

// revokeGrant withdraws network grant name from container ref, and every
// part of it from the sub-containers under it, at any depth.
func (e *Engine) revokeGrant(ref, name string) error {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	// What was derived from the grant is read before it goes.
	var t *grantTree
	if c.Spawn && strings.HasPrefix(name, "egress ") {
		if t, err = e.loadGrantTree(c); err != nil {
			return fmt.Errorf("revoke %s %q: %w", ref, name, err)
		}
	}
	if _, err := e.control(ref, "revoke", controlRequest{Revoke: name}); err != nil {
		return err
	}
	if err := e.markRevoked(c.ID, name); err != nil {
		return err
	}
	if t == nil {
		return nil
	}
	if err := e.lockBarrier(); err != nil { // see recheckSpawn
		return err
	}
	gone, err := t.revoke(c.ID, name)
	if err != nil {
		return fmt.Errorf("revoke %s %q: %w", ref, name, err)
	}
	// A sub-container made meanwhile with a part of it is an orphan now
	// (the mark above keeps any later one from being made), and so is
	// what a revocation a crash interrupted left.
	if t, err = e.loadGrantTree(c); err == nil {
		gone = append(gone, t.orphans...)
	}
	var errs []error
	for _, g := range gone {
		if err := e.withdrawGrant(g[0], g[1]); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("revoke %s %q from its sub-containers: %w", ref, name, err)
	}
	return nil
}

// withdrawGrant marks grant name of container id revoked and, if it
// runs, revokes it in its supervisor.
func (e *Engine) withdrawGrant(id, name string) error {
	if err := e.markRevoked(id, name); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil // removed meanwhile
		}
		return err
	}
	c, err := e.Get(id)
	if errors.Is(err, ErrNoSuchContainer) {
		return nil
	}
	if err != nil || c.Status != StatusRunning {
		return err // a later start drops it (dropRevoked)
	}
	if _, err := e.control(id, "revoke", controlRequest{Revoke: name}); err != nil &&
		!errors.Is(err, ErrNoSuchContainer) && !strings.Contains(err.Error(), "not found") {
		return err
	}
	return nil
}

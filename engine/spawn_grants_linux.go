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
// refuses any other). Which part came from which whole is the host
// core's derivation tree (hostcore.go): each sub-container's grants are
// derived there from its parent's with [core.Core.DeriveWithin]. A
// revocation deletes the grant in the core, under the state root's lock
// (one core.Delete), and reads, space by space, which capabilities went
// with it. Each is withdrawn from its container as oak revoke withdraws
// one: marked in the container's directory (so no later start gives it
// back, and no sub-container is given a part of it), and revoked in its
// supervisor, whose network service stops serving it before the answer.
//
// The records are the truth, as for factories: a container's grants are
// its spec's less the ones marked revoked, so a crash part-way leaves
// some marks written and some not, and the next revocation withdraws
// what is left (an orphan: a grant no longer within any its parent
// holds, found when the core is built).

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
	if strings.HasPrefix(name, "egress ") {
		e.advance() // the host core holds egress grants (hostcore_linux.go); publish grants it does not
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

// revokeGrant withdraws network grant name from container ref, and every
// part of it from the sub-containers under it, at any depth.
func (e *Engine) revokeGrant(ref, name string) error {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	if _, err := e.control(ref, "revoke", controlRequest{Revoke: name}); err != nil {
		return err
	}
	if !c.Spawn || !strings.HasPrefix(name, "egress ") {
		return e.markRevoked(c.ID, name)
	}
	gone, err := e.revokeInCore(c, name)
	if err != nil {
		return fmt.Errorf("revoke %s %q: %w", ref, name, err)
	}
	var errs []error
	for _, g := range gone {
		if err := e.tellRevoked(g[0], g[1]); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("revoke %s %q from its sub-containers: %w", ref, name, err)
	}
	return nil
}

// revokeInCore, under the state root's lock, deletes grant name of
// container c in the host core (one core.Delete: what was derived from
// it goes with it, in every sub-container's space) and marks it and
// every part that went revoked, with the orphans of c's tree (grants a
// part of nothing: made while a revocation crashed part-way). It returns
// the parts, for their supervisors. A sub-container being made waits
// for the lock, and then finds the parent's mark.
func (e *Engine) revokeInCore(c *Container, name string) ([][2]string, error) {
	unlock, err := e.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	h, err := e.lockedCore()
	if err != nil {
		return nil, err
	}
	gone, err := h.revokeGrant(c.ID, name)
	if errors.Is(err, ErrNoSuchContainer) {
		gone, err = nil, nil // removed meanwhile
	}
	if err != nil {
		return nil, err
	}
	gone = append(gone, h.takeOrphans(c.ID)...)
	if err := e.markRevoked(c.ID, name); err != nil {
		return nil, err
	}
	n := uint64(1)
	for _, g := range gone {
		if err := e.markRevoked(g[0], g[1]); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // removed meanwhile
			}
			return nil, err
		}
		n++
	}
	e.keepCore(0, n)
	return gone, nil
}

// tellRevoked revokes grant name, marked revoked already, in the
// supervisor of container id if it runs.
func (e *Engine) tellRevoked(id, name string) error {
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

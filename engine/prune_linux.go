package engine

import (
	"errors"
	"fmt"

	"github.com/oak-engine/oak/storage/image"
	"github.com/oak-engine/oak/storage/volume"
)

// specs reads the spec of every container record, broken ones included:
// what they hold is what prune must keep. A record whose spec cannot be
// read makes it fail: what that container uses is unknown. Must be called
// with the lock held.
func (e *Engine) specs() ([]*Spec, error) {
	cs, err := e.reconcile()
	if err != nil {
		return nil, err
	}
	var specs []*Spec
	for _, c := range cs {
		var s Spec
		if err := readJSON(e.specPath(c.ID), &s); err != nil {
			return nil, fmt.Errorf("container %s: cannot tell what it uses (%v); remove it first (oak rm -f %s)",
				ShortID(c.ID), unwrapPath(err), ShortID(c.ID))
		}
		specs = append(specs, &s)
	}
	return specs, nil
}

// PruneImages removes every stored image that no container record (of a
// running or an ended container) was made from, and every layer no
// remaining image uses. It returns the images removed.
func (e *Engine) PruneImages() ([]*image.Image, error) {
	store, err := e.Images()
	if err != nil {
		return nil, err
	}
	unlock, err := e.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	specs, err := e.specs()
	if err != nil {
		return nil, fmt.Errorf("image prune: %w", err)
	}
	used := map[string]bool{}
	for _, s := range specs {
		used[s.ImageID] = true
	}
	return store.Prune(func(id string) bool { return used[id] })
}

// PruneVolumes removes every volume that no container record (of a
// running or an ended container) was granted. It returns the names of the
// volumes removed; one it could not remove (still attached) is in the
// error.
func (e *Engine) PruneVolumes() ([]string, error) {
	vs, err := e.Volumes()
	if err != nil {
		return nil, err
	}
	unlock, err := e.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	specs, err := e.specs()
	if err != nil {
		return nil, fmt.Errorf("volume prune: %w", err)
	}
	used := map[string]bool{}
	for _, s := range specs {
		for _, m := range s.Volumes {
			used[m.Name] = true
		}
	}
	list, err := vs.List()
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, v := range list {
		if used[v.Name] {
			continue
		}
		if err := vs.Remove(v.Name); err != nil {
			if !errors.Is(err, volume.ErrNotFound) { // else removed meanwhile
				errs = append(errs, err)
			}
			continue
		}
		removed = append(removed, v.Name)
	}
	return removed, errors.Join(errs...)
}

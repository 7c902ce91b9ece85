package engine

import (
	"context"
	"fmt"
	"io"

	"github.com/oak-engine/oak/storage/image"
)

// ImportImage imports an archive or layout into the state root's store.
func (e *Engine) ImportImage(ctx context.Context, path, tag string, progress io.Writer) ([]*image.Image, error) {
	store, err := e.Images()
	if err != nil {
		return nil, err
	}
	return store.Import(ctx, path, image.ImportOptions{Tag: tag, Progress: progress})
}

// PullImage pulls ref from its registry into the store.
func (e *Engine) PullImage(ctx context.Context, ref string, insecure bool, progress io.Writer) (*image.Image, error) {
	store, err := e.Images()
	if err != nil {
		return nil, err
	}
	return store.Pull(ctx, ref, image.PullOptions{Insecure: insecure, Progress: progress})
}

// RemoveImage removes an image unless a container that has not been
// removed was made from it (its layers are that container's root).
func (e *Engine) RemoveImage(ref string) error {
	store, err := e.Images()
	if err != nil {
		return err
	}
	img, err := store.Get(ref)
	if err != nil {
		return err
	}
	unlock, err := e.lock()
	if err != nil {
		return err
	}
	defer unlock()
	cs, err := e.reconcile()
	if err != nil {
		return err
	}
	for _, c := range cs {
		var spec Spec
		if readJSON(e.specPath(c.ID), &spec) == nil && spec.ImageID == img.ID {
			return fmt.Errorf("image rm %s: used by container %s (%s); remove it first", ref, c.Name, c.Status)
		}
	}
	return store.Remove(ref)
}

package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// SweepNames removes the name reservations (ROOT/names/NAME) that no
// record holds any more, and returns how many it removed. A create that
// finds such a link replaces it anyway (see reserveName), so a stale link
// never refuses a name; but one whose name is never asked for again
// would stay for good. They are left by a crash between the two steps of
// a removal (the record, then its name) or of a create (the name, then
// the record). The daemon sweeps them when it starts, in the background:
// it reads the record of every named container once, under the state
// root's lock, as a create that found each link would.
func (e *Engine) SweepNames() (int, error) {
	unlock, err := e.lock()
	if err != nil {
		return 0, err
	}
	defer unlock()
	dir := filepath.Join(e.Root, namesDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sweep names: %w", err)
	}
	n := 0
	for _, ent := range ents {
		holder, err := os.Readlink(filepath.Join(dir, ent.Name()))
		if err != nil {
			continue // not a reservation: not ours to remove
		}
		if e.nameHolder(ent.Name(), holder) != nil {
			continue
		}
		if err := os.Remove(filepath.Join(dir, ent.Name())); err == nil {
			n++
		}
	}
	return n, nil
}

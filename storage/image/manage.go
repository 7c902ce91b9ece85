package image

import (
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Tag gives the image ref names the tag tag (normalised, see
// NormalizeTag). A tag names one image: if another image had it, that
// image loses it, as with docker tag. It refuses a tag that is not a valid
// image reference with a tag, and an image it cannot find.
func (s *Store) Tag(ref, tag string) error {
	t, err := NormalizeTag(tag)
	if err != nil {
		return fmt.Errorf("image tag %s %q: invalid tag: %w", ref, tag, err)
	}
	err = s.update(func(db *bolt.DB) error {
		return db.Update(func(tx *bolt.Tx) error {
			img, _, err := resolve(tx, ref)
			if err != nil {
				return err
			}
			if old := tx.Bucket(bucketTags).Get([]byte(t)); old != nil && string(old) != img.ID {
				prev, err := getImage(tx, string(old))
				if err != nil {
					return err
				}
				if prev != nil {
					prev.Tags = without(prev.Tags, t)
					if err := putImage(tx, prev); err != nil {
						return err
					}
				}
			}
			if !contains(img.Tags, t) {
				img.Tags = append(img.Tags, t)
			}
			if err := tx.Bucket(bucketTags).Put([]byte(t), []byte(img.ID)); err != nil {
				return err
			}
			return putImage(tx, img)
		})
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrAmbiguous) {
			return fmt.Errorf("image tag: %w", err)
		}
		return fmt.Errorf("image tag %s %s: %w", ref, tag, err)
	}
	return nil
}

// Prune removes every image whose id keep does not report as in use, and
// then every layer directory no remaining image uses (see Check). It
// returns the images it removed. The caller must make sure keep knows
// every image a container still uses: a layer under a mounted overlay is
// not removed safely.
func (s *Store) Prune(keep func(id string) bool) ([]*Image, error) {
	imgs, err := s.List()
	if err != nil {
		return nil, fmt.Errorf("image prune: %w", err)
	}
	var removed []*Image
	var errs []error
	for _, img := range imgs {
		if keep(img.ID) {
			continue
		}
		if err := s.Remove(img.ID); err != nil {
			if !errors.Is(err, ErrNotFound) { // else removed meanwhile
				errs = append(errs, err)
			}
			continue
		}
		removed = append(removed, img)
	}
	if _, err := s.Check(); err != nil && !errors.Is(err, ErrBroken) {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return removed, fmt.Errorf("image prune: %w", errors.Join(errs...))
	}
	return removed, nil
}

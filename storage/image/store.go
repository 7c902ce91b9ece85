// Package image is Oak's image store: a content-addressed directory under
// the state root that imports docker-save archives and OCI image layouts
// and archives, pulls from OCI registries, and keeps every layer unpacked
// once, as an overlayfs lower directory shared read-only by all the
// containers that use it.
//
// On disk, below the store root:
//
//	meta.db                    image records, tags, layer sizes (bbolt; under
//	                           the engine, STATE/oak.db, shared with the volumes)
//	layers/sha256/<diffid>/    one unpacked layer, named by its uncompressed digest
//	tmp/                       unpacks in progress, archives being decompressed,
//	                           layers being deleted; nothing here is ever used
//
// Layers are untrusted input. Each is unpacked into tmp/ without following
// any link it contains, refused whole if an entry would leave the layer,
// write through a symlink, create a device, or exceed Limits, verified
// against its digests, made durable, and only then renamed into layers/.
// A crash at any point leaves nothing that a later Check does not remove.
package image

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	bolt "go.etcd.io/bbolt"

	"github.com/oak-engine/oak/storage/metadb"
)

// Store is an image store rooted at one directory, which it owns
// entirely (except names it does not use: the engine keeps its built-in
// demo root file system beside it). Several Stores, in one process or in
// several, may share a root.
type Store struct {
	dbPath string // the bbolt file holding the records
	root   string

	// Limits apply to every layer imported or pulled; set them before the
	// store is used.
	Limits Limits

	// Warnings, if set, is told what an import or pull left out of an
	// image (device nodes).
	Warnings io.Writer

	// mu orders this process's use of the database; bbolt's file lock orders
	// processes.
	mu sync.RWMutex
}

// Image is one stored image.
type Image struct {
	ID           string    `json:"id"`               // "sha256:<hex>" of the image config
	Tags         []string  `json:"tags,omitempty"`   // normalised, e.g. "docker.io/library/alpine:3.20"
	Digest       string    `json:"digest,omitempty"` // the manifest's digest, when the source had one
	DiffIDs      []string  `json:"diff_ids"`         // layers, bottom to top
	Config       Config    `json:"config"`
	OS           string    `json:"os,omitempty"`
	Architecture string    `json:"architecture,omitempty"`
	Size         int64     `json:"size"` // uncompressed bytes of its layers
	Created      time.Time `json:"created"`

	root string
}

// Config is the part of an image's configuration a container is started
// from.
type Config struct {
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	Env        []string `json:"env,omitempty"`
	WorkingDir string   `json:"working_dir,omitempty"`
	User       string   `json:"user,omitempty"`
	// StopSignal is the signal oak stop sends first ("SIGQUIT", "3"); empty
	// means SIGTERM.
	StopSignal string `json:"stop_signal,omitempty"`
	// ExposedPorts are the ports the image says it serves ("80/tcp"),
	// which oak run -P publishes.
	ExposedPorts []string `json:"exposed_ports,omitempty"`
}

// Argv is the command a container of this image runs: the entrypoint
// followed by args, or by the image's Cmd when args is empty (Docker's
// rule).
func (c *Config) Argv(args []string) []string {
	argv := append([]string(nil), c.Entrypoint...)
	if len(args) > 0 {
		return append(argv, args...)
	}
	return append(argv, c.Cmd...)
}

// Layers returns the image's layer directories, bottom to top (overlayfs
// wants lowerdir= top first). They are shared and must be mounted
// read-only.
func (img *Image) Layers() []string {
	dirs := make([]string, len(img.DiffIDs))
	for i, d := range img.DiffIDs {
		dirs[i] = layerPath(img.root, d)
	}
	return dirs
}

// Name is the image's first tag, or its short id when it has none.
func (img *Image) Name() string {
	if len(img.Tags) > 0 {
		return img.Tags[0]
	}
	return img.ShortID()
}

// ShortID is the first 12 hex digits of the id, as "docker images" shows.
func (img *Image) ShortID() string { return shortID(img.ID) }

func shortID(id string) string {
	h := strings.TrimPrefix(id, "sha256:")
	if len(h) > 12 {
		h = h[:12]
	}
	return h
}

// Buckets of the metadata database.
var (
	bucketImages = []byte("images") // id → Image (JSON)
	bucketTags   = []byte("tags")   // normalised tag → id
	bucketLayers = []byte("layers") // diffID → layerRecord (JSON); present iff the directory is
)

type layerRecord struct {
	Size int64 `json:"size"`
}

const dbTimeout = time.Minute

// Open opens (creating it if needed) the store at root, e.g.
// STATE/images, and runs Check to clear what a crash left behind. An
// image whose layer data is gone does not make Open fail: Check reports
// it, Get refuses it, Remove removes it.
func Open(root string) (*Store, error) {
	return OpenDB(root, "")
}

// OpenDB is Open with the metadata kept in the bbolt file db (shared with
// other stores of the same state root, each in its own buckets); "" means
// root/meta.db.
func OpenDB(root, db string) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("image store %s: %w", root, err)
	}
	if db == "" {
		db = filepath.Join(abs, "meta.db")
	}
	s := &Store{root: abs, dbPath: db, Limits: DefaultLimits}
	for _, d := range []string{abs, filepath.Join(abs, "layers", "sha256"), s.tmpDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("image store %s: %w", root, err)
		}
	}
	err = s.update(func(db *bolt.DB) error {
		missing := false
		db.View(func(tx *bolt.Tx) error {
			for _, b := range [][]byte{bucketImages, bucketTags, bucketLayers} {
				missing = missing || tx.Bucket(b) == nil
			}
			return nil
		})
		if !missing {
			return nil // no write, no fsync: opening is cheap
		}
		return db.Update(func(tx *bolt.Tx) error {
			for _, b := range [][]byte{bucketImages, bucketTags, bucketLayers} {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("image store %s: %w", root, err)
	}
	if _, err := s.Check(); err != nil && !errors.Is(err, ErrBroken) {
		return nil, err
	}
	return s, nil
}

// Root is the directory the store was opened at (absolute).
func (s *Store) Root() string { return s.root }

func (s *Store) tmpDir() string { return filepath.Join(s.root, "tmp") }

func (s *Store) layersDir() string { return filepath.Join(s.root, "layers", "sha256") }

func layerPath(root, diffID string) string {
	return filepath.Join(root, "layers", "sha256", strings.TrimPrefix(diffID, "sha256:"))
}

// The metadata database (dbPath: STATE/oak.db under the engine, root/meta.db
// for a store opened on its own) is a bbolt file: one file, ACID
// transactions whose commit survives a crash (copy-on-write pages, an
// fsync'd meta page), pure Go (no cgo in the static binary). It is opened
// for each operation and closed after, so its exclusive file lock doubles
// as the store's lock between oak processes: renaming layers into place
// with the record that uses them, and deleting layers no record uses, each
// happen under it.

// update runs fn with the database open read-write, holding the store lock.
func (s *Store) update(fn func(db *bolt.DB) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	db, err := metadb.Open(s.dbPath, false, dbTimeout)
	if err != nil {
		return err
	}
	err = fn(db)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}

// view runs fn in a read-only transaction; readers share the lock.
func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	db, err := metadb.Open(s.dbPath, true, dbTimeout)
	if err != nil {
		return err
	}
	err = db.View(fn)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}

func getImage(tx *bolt.Tx, id string) (*Image, error) {
	v := tx.Bucket(bucketImages).Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	img := new(Image)
	if err := json.Unmarshal(v, img); err != nil {
		return nil, fmt.Errorf("image record %s: %w", id, err)
	}
	return img, nil
}

func putImage(tx *bolt.Tx, img *Image) error {
	v, err := json.Marshal(img)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketImages).Put([]byte(img.ID), v)
}

func allImages(tx *bolt.Tx) ([]*Image, error) {
	var imgs []*Image
	err := tx.Bucket(bucketImages).ForEach(func(k, v []byte) error {
		img := new(Image)
		if err := json.Unmarshal(v, img); err != nil {
			return fmt.Errorf("image record %s: %w", k, err)
		}
		imgs = append(imgs, img)
		return nil
	})
	return imgs, err
}

// List returns every image, newest first.
func (s *Store) List() ([]*Image, error) {
	var imgs []*Image
	err := s.view(func(tx *bolt.Tx) (err error) {
		imgs, err = allImages(tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("image ls: %w", err)
	}
	for _, img := range imgs {
		img.root = s.root
	}
	sort.SliceStable(imgs, func(i, j int) bool {
		if !imgs[i].Created.Equal(imgs[j].Created) {
			return imgs[i].Created.After(imgs[j].Created)
		}
		return imgs[i].ID < imgs[j].ID
	})
	return imgs, nil
}

// Get finds an image by tag ("name[:tag]", the tag defaulting to latest,
// Docker Hub names as Docker spells them), by id ("sha256:<hex>") or by a
// unique prefix of its id. It refuses an image whose layer data is
// missing (ErrBroken): remove it and import it again.
func (s *Store) Get(ref string) (*Image, error) {
	var img *Image
	err := s.view(func(tx *bolt.Tx) (err error) {
		img, _, err = resolve(tx, ref)
		return err
	})
	if err != nil {
		return nil, err
	}
	img.root = s.root
	for i, dir := range img.Layers() {
		if _, err := os.Lstat(dir); err != nil {
			return nil, fmt.Errorf("image %s: %w: layer %s (%v); remove the image and import it again", ref, ErrBroken, img.DiffIDs[i], err)
		}
	}
	return img, nil
}

// resolve finds ref's image; tag is the normalised tag when ref named one.
func resolve(tx *bolt.Tx, ref string) (img *Image, tag string, err error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return nil, "", fmt.Errorf("image %q: %w", ref, ErrNotFound)
	}
	if isID(ref) {
		if img, err = getImage(tx, ref); img != nil || err != nil {
			return img, "", err
		}
		return nil, "", fmt.Errorf("image %s: %w", ref, ErrNotFound)
	}
	if t, terr := NormalizeTag(ref); terr == nil {
		if id := tx.Bucket(bucketTags).Get([]byte(t)); id != nil {
			img, err = getImage(tx, string(id))
			if img == nil && err == nil {
				err = fmt.Errorf("image %s: tag names missing record %s", ref, id)
			}
			return img, t, err
		}
	}
	prefix := strings.TrimPrefix(ref, "sha256:")
	if !isHex(prefix) {
		return nil, "", fmt.Errorf("image %s: %w", ref, ErrNotFound)
	}
	full := []byte("sha256:" + prefix)
	c := tx.Bucket(bucketImages).Cursor()
	var found []byte
	for k, _ := c.Seek(full); k != nil && strings.HasPrefix(string(k), string(full)); k, _ = c.Next() {
		if found != nil {
			return nil, "", fmt.Errorf("image %s: %w", ref, ErrAmbiguous)
		}
		found = append([]byte(nil), k...)
	}
	if found == nil {
		return nil, "", fmt.Errorf("image %s: %w", ref, ErrNotFound)
	}
	img, err = getImage(tx, string(found))
	return img, "", err
}

func isHex(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// isID reports whether s is a full image or layer id, "sha256:<64 hex>".
func isID(s string) bool {
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(h) != 64 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil && strings.ToLower(h) == h
}

// NormalizeTag returns the stored form of an image tag: registry, path and
// tag spelled out ("alpine" is "docker.io/library/alpine:latest"). A
// reference with a digest is not a tag.
func NormalizeTag(ref string) (string, error) {
	t, err := name.NewTag(ref)
	if err != nil {
		return "", err
	}
	n := t.Name()
	if rest, ok := strings.CutPrefix(n, name.DefaultRegistry+"/"); ok {
		n = "docker.io/" + rest
	}
	return n, nil
}

// Remove removes an image and then every layer directory no other image
// uses. When ref is a tag and the image has other tags, only that tag is
// removed. It works on images whose layer data is missing. The caller
// must make sure no container still uses the image: a layer directory
// under a mounted overlay is not removed safely.
func (s *Store) Remove(ref string) error {
	var dead []string
	unlock, err := lockShared(s.tmpDir())
	if err != nil {
		return fmt.Errorf("image rm %s: %w", ref, err)
	}
	defer unlock()
	err = s.update(func(db *bolt.DB) error {
		var victims []string
		err := db.Update(func(tx *bolt.Tx) error {
			img, tag, err := resolve(tx, ref)
			if err != nil {
				return err
			}
			if tag != "" && len(img.Tags) > 1 {
				img.Tags = without(img.Tags, tag)
				if err := tx.Bucket(bucketTags).Delete([]byte(tag)); err != nil {
					return err
				}
				return putImage(tx, img)
			}
			for _, t := range img.Tags {
				if err := tx.Bucket(bucketTags).Delete([]byte(t)); err != nil {
					return err
				}
			}
			if err := tx.Bucket(bucketImages).Delete([]byte(img.ID)); err != nil {
				return err
			}
			used, _, err := usedLayers(tx)
			if err != nil {
				return err
			}
			for _, d := range img.DiffIDs {
				if !used[d] && !contains(victims, d) {
					victims = append(victims, d)
					if err := tx.Bucket(bucketLayers).Delete([]byte(d)); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		// Committed: the layers are unreferenced. Move them out of layers/
		// while still holding the lock, so an import cannot pick one up
		// between our decision and its deletion; a crash before the move
		// leaves orphans that Check removes.
		for _, d := range victims {
			if gone, err := s.retire(d); err != nil {
				return err
			} else if gone != "" {
				dead = append(dead, gone)
			}
		}
		return nil
	})
	for _, d := range dead {
		removeTree(d)
	}
	if err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrAmbiguous) {
			return fmt.Errorf("image rm: %w", err)
		}
		return fmt.Errorf("image rm %s: %w", ref, err)
	}
	return nil
}

// retire moves a layer directory into tmp/ for deletion, returning its new
// path ("" if it was already gone).
func (s *Store) retire(diffID string) (string, error) {
	src := layerPath(s.root, diffID)
	dst, err := os.MkdirTemp(s.tmpDir(), "gc-")
	if err != nil {
		return "", err
	}
	dst = filepath.Join(dst, "layer")
	if err := os.Rename(src, dst); err != nil {
		os.Remove(filepath.Dir(dst))
		if errors.Is(err, os.ErrNotExist) {
			return "", nil
		}
		return "", err
	}
	return filepath.Dir(dst), nil
}

// usedLayers returns the diffIDs the records reference, and the records.
func usedLayers(tx *bolt.Tx) (map[string]bool, []*Image, error) {
	imgs, err := allImages(tx)
	if err != nil {
		return nil, nil, err
	}
	used := map[string]bool{}
	for _, img := range imgs {
		for _, d := range img.DiffIDs {
			used[d] = true
		}
	}
	return used, imgs, nil
}

// CheckReport says what Check found and repaired.
type CheckReport struct {
	ClearedTmp    int           // entries removed from tmp/
	TmpInUse      bool          // another import was running, tmp/ was left alone
	RemovedLayers []string      // layer directories no image used (diffIDs, or names that were not)
	Broken        []BrokenImage // images whose layer data is missing
}

// BrokenImage is an image record that names missing layers. Remove it
// and import or pull it again.
type BrokenImage struct {
	ID      string
	Tags    []string
	Missing []string // diffIDs
}

// Check repairs the store after a crash and reports what it cannot
// repair. It clears tmp/ unless an import is in progress (which holds it
// locked), removes layer directories no record uses (half-done work is
// never in layers/, but a crash between renaming a layer in and
// committing its record leaves one unused), and drops layer sizes whose
// directory is gone. Records that name a missing layer directory are
// reported in the CheckReport and as an ErrBroken error listing them.
func (s *Store) Check() (*CheckReport, error) {
	rep := &CheckReport{}
	unlock, ok, err := tryLockExclusive(s.tmpDir())
	if err != nil {
		return rep, fmt.Errorf("image check: %w", err)
	}
	if ok {
		defer unlock()
		entries, err := os.ReadDir(s.tmpDir())
		if err != nil {
			return rep, fmt.Errorf("image check: %w", err)
		}
		for _, e := range entries {
			if err := removeTree(filepath.Join(s.tmpDir(), e.Name())); err != nil {
				return rep, fmt.Errorf("image check: %w", err)
			}
			rep.ClearedTmp++
		}
	} else {
		rep.TmpInUse = true
	}

	var dead []string
	err = s.update(func(db *bolt.DB) error {
		var orphans []string
		var stale [][]byte
		err := db.View(func(tx *bolt.Tx) error {
			used, imgs, err := usedLayers(tx)
			if err != nil {
				return err
			}
			entries, err := os.ReadDir(s.layersDir())
			if err != nil {
				return err
			}
			present := map[string]bool{}
			for _, e := range entries {
				id := "sha256:" + e.Name()
				if isID(id) && e.IsDir() && used[id] {
					present[id] = true
					continue
				}
				orphans = append(orphans, e.Name())
			}
			// A size without its directory would make an import skip a
			// layer it must unpack.
			if err := tx.Bucket(bucketLayers).ForEach(func(k, _ []byte) error {
				if !present[string(k)] {
					stale = append(stale, append([]byte(nil), k...))
				}
				return nil
			}); err != nil {
				return err
			}
			for _, img := range imgs {
				var missing []string
				for _, d := range img.DiffIDs {
					if !present[d] && !contains(missing, d) {
						missing = append(missing, d)
					}
				}
				if len(missing) > 0 {
					rep.Broken = append(rep.Broken, BrokenImage{ID: img.ID, Tags: img.Tags, Missing: missing})
				}
			}
			return nil
		})
		if err == nil && len(stale) > 0 {
			err = db.Update(func(tx *bolt.Tx) error {
				for _, k := range stale {
					if err := tx.Bucket(bucketLayers).Delete(k); err != nil {
						return err
					}
				}
				return nil
			})
		}
		if err != nil {
			return err
		}
		for _, o := range orphans {
			gone, err := s.retire("sha256:" + o)
			if err != nil {
				return err
			}
			if gone != "" {
				dead = append(dead, gone)
				rep.RemovedLayers = append(rep.RemovedLayers, o)
			}
		}
		return nil
	})
	for _, d := range dead {
		removeTree(d)
	}
	if err != nil {
		return rep, fmt.Errorf("image check: %w", err)
	}
	if len(rep.Broken) > 0 {
		var errs []error
		for _, b := range rep.Broken {
			n := shortID(b.ID)
			if len(b.Tags) > 0 {
				n = strings.Join(b.Tags, ", ") + " (" + n + ")"
			}
			errs = append(errs, fmt.Errorf("image %s: %w: layers %s; remove it and import it again", n, ErrBroken, strings.Join(b.Missing, ", ")))
		}
		return rep, fmt.Errorf("image check: %w", errors.Join(errs...))
	}
	return rep, nil
}

// syncDir makes a directory's entries (a rename into it) durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// removeTree removes a directory tree of the store; if a directory
// without write permission stops it (only without root), it opens them
// up and tries again.
func removeTree(p string) error {
	err := os.RemoveAll(p)
	if err == nil || !errors.Is(err, os.ErrPermission) {
		return err
	}
	filepath.WalkDir(p, func(q string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(q, 0o700)
		}
		return nil
	})
	return os.RemoveAll(p)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func without(list []string, s string) []string {
	out := list[:0:0]
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

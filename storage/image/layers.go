package image

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"slices"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	bolt "go.etcd.io/bbolt"
)

// candidate is an image read from an archive, a layout or a registry,
// before it is stored.
type candidate struct {
	name      string // how errors name it: the archive path or reference, and its tag
	tags      []string
	digest    string // manifest digest, "" if the source has none (docker save)
	rawConfig []byte
	config    *v1.ConfigFile
	layers    []layerSource
}

// layerSource opens one layer of a candidate.
type layerSource struct {
	diffID v1.Hash
	// digest is the stored blob's digest, checked while reading; zero when
	// the source has none (docker-save archives name layers by path).
	digest v1.Hash
	size   int64 // bytes open returns, for progress; -1 if unknown
	// open returns the blob as stored, gzip, zstd or plain (compressed
	// true) or the uncompressed tar (compressed false).
	open       func() (io.ReadCloser, error)
	compressed bool
}

// newCandidate checks an image's config against its digest and the
// layers it lists, and keeps what the store records.
func newCandidate(name string, rawConfig []byte, configDigest v1.Hash, layers []layerSource) (*candidate, error) {
	if got := sha256Hash(rawConfig); configDigest != (v1.Hash{}) && got != configDigest {
		return nil, fmt.Errorf("config: %w: content is %s, the manifest says %s", ErrDigest, got, configDigest)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(rawConfig))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if cfg.OS != "" && cfg.OS != "linux" {
		return nil, fmt.Errorf("image for %s: only linux images run here", cfg.OS)
	}
	if len(cfg.RootFS.DiffIDs) != len(layers) {
		return nil, fmt.Errorf("config lists %d layers, the manifest %d", len(cfg.RootFS.DiffIDs), len(layers))
	}
	for i, d := range cfg.RootFS.DiffIDs {
		if d.Algorithm != "sha256" || !isID(d.String()) {
			return nil, fmt.Errorf("config: layer %d: unsupported diffID %q", i, d)
		}
		layers[i].diffID = d
	}
	return &candidate{name: name, rawConfig: rawConfig, config: cfg, layers: layers}, nil
}

func sha256Hash(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// unpacked is a layer unpacked and verified in tmp/, not yet in place.
type unpacked struct {
	dir  string
	size int64
}

// store unpacks what the candidates need and records them: the one path
// every import and pull takes.
func (s *Store) store(ctx context.Context, op, label string, cands []*candidate, progress io.Writer) ([]*Image, error) {
	unlock, err := lockShared(s.tmpDir())
	if err != nil {
		return nil, err
	}
	defer unlock()

	// Each distinct layer once, whichever image lists it.
	type want struct {
		src  layerSource
		cand *candidate
	}
	wanted := map[string]want{}
	var order []string
	for _, c := range cands {
		for _, l := range c.layers {
			d := l.diffID.String()
			if _, ok := wanted[d]; !ok {
				wanted[d] = want{l, c}
				order = append(order, d)
			}
		}
	}
	todo, err := s.missingLayers(order)
	if err != nil {
		return nil, err
	}

	fresh := map[string]*unpacked{}
	defer func() {
		for _, u := range fresh {
			removeTree(u.dir) // renamed into place, or not needed after all
		}
	}()
	for attempt := 0; ; attempt++ {
		var total int64
		for _, d := range todo {
			if sz := wanted[d].src.size; sz >= 0 && total >= 0 {
				total += sz
			} else {
				total = -1
			}
		}
		bar := newProgress(progress, label, total)
		var mu sync.Mutex
		err := parallel(ctx, 3, len(todo), func(ctx context.Context, i int) error {
			w := wanted[todo[i]]
			u, err := s.unpackLayer(ctx, op, w.cand.name, w.src, bar)
			if err != nil {
				return err
			}
			mu.Lock()
			fresh[todo[i]] = u
			mu.Unlock()
			return nil
		})
		bar.done(err == nil)
		if err != nil {
			return nil, err
		}
		imgs, missing, err := s.commit(cands, fresh)
		if err != nil {
			return nil, err
		}
		if len(missing) == 0 {
			return imgs, nil
		}
		// An image was removed meanwhile and took a layer we meant to
		// share with it; unpack that one too.
		if attempt == 3 {
			return nil, fmt.Errorf("layers %v keep disappearing while this import runs", missing)
		}
		todo = missing
	}
}

// missingLayers returns the diffIDs among want that the store does not
// hold.
func (s *Store) missingLayers(want []string) ([]string, error) {
	var todo []string
	err := s.view(func(tx *bolt.Tx) error {
		for _, d := range want {
			if !s.haveLayer(tx, d) {
				todo = append(todo, d)
			}
		}
		return nil
	})
	return todo, err
}

// haveLayer: the layer's size is recorded and its directory is in place.
func (s *Store) haveLayer(tx *bolt.Tx, diffID string) bool {
	if tx.Bucket(bucketLayers).Get([]byte(diffID)) == nil {
		return false
	}
	fi, err := os.Lstat(layerPath(s.root, diffID))
	return err == nil && fi.IsDir()
}

// commit renames the fresh layers into place and records the images, in
// one hold of the store lock. It commits nothing and returns the diffIDs
// to unpack if a layer it counted on is gone.
func (s *Store) commit(cands []*candidate, fresh map[string]*unpacked) ([]*Image, []string, error) {
	var imgs []*Image
	var missing []string
	err := s.update(func(db *bolt.DB) error {
		sizes := map[string]int64{}
		err := db.View(func(tx *bolt.Tx) error {
			for _, c := range cands {
				for _, l := range c.layers {
					d := l.diffID.String()
					if _, done := sizes[d]; done || contains(missing, d) {
						continue
					}
					if u := fresh[d]; u != nil {
						sizes[d] = u.size
					} else if s.haveLayer(tx, d) {
						var rec layerRecord
						if err := json.Unmarshal(tx.Bucket(bucketLayers).Get([]byte(d)), &rec); err != nil {
							return fmt.Errorf("layer record %s: %w", d, err)
						}
						sizes[d] = rec.Size
					} else {
						missing = append(missing, d)
					}
				}
			}
			return nil
		})
		if err != nil || len(missing) > 0 {
			return err
		}
		renamed := false
		for d, u := range fresh {
			err := renameNoReplace(u.dir, layerPath(s.root, d))
			switch {
			case err == nil:
				renamed = true
				delete(fresh, d)
			case errors.Is(err, os.ErrExist):
				// Unpacked meanwhile by another import, or left by a crash
				// after its rename: verified content either way.
			default:
				return err
			}
		}
		if renamed {
			if err := syncDir(s.layersDir()); err != nil {
				return err
			}
		}
		return db.Update(func(tx *bolt.Tx) error {
			for d, size := range sizes {
				v, _ := json.Marshal(layerRecord{Size: size})
				if err := tx.Bucket(bucketLayers).Put([]byte(d), v); err != nil {
					return err
				}
			}
			for _, c := range cands {
				img, err := record(tx, c, sizes)
				if err != nil {
					return err
				}
				img.root = s.root
				imgs = append(imgs, img)
			}
			return nil
		})
	})
	if err != nil {
		return nil, nil, err
	}
	return imgs, missing, nil
}

// record writes c's image record and moves its tags to it.
func record(tx *bolt.Tx, c *candidate, sizes map[string]int64) (*Image, error) {
	id := sha256Hash(c.rawConfig).String()
	img, err := getImage(tx, id)
	if err != nil {
		return nil, err
	}
	if img == nil {
		img = &Image{ID: id}
	}
	cfg := c.config
	img.Config = Config{
		Entrypoint: cfg.Config.Entrypoint,
		Cmd:        cfg.Config.Cmd,
		Env:        cfg.Config.Env,
		WorkingDir: cfg.Config.WorkingDir,
		User:       cfg.Config.User,
		StopSignal: cfg.Config.StopSignal,
	}
	for p := range cfg.Config.ExposedPorts {
		img.Config.ExposedPorts = append(img.Config.ExposedPorts, p)
	}
	slices.Sort(img.Config.ExposedPorts)
	img.OS, img.Architecture = cfg.OS, cfg.Architecture
	img.Created = cfg.Created.Time.UTC()
	if c.digest != "" {
		img.Digest = c.digest
	}
	img.DiffIDs = img.DiffIDs[:0]
	img.Size = 0
	for _, l := range c.layers {
		d := l.diffID.String()
		img.DiffIDs = append(img.DiffIDs, d)
		img.Size += sizes[d]
	}
	tags := tx.Bucket(bucketTags)
	for _, t := range c.tags {
		if old := tags.Get([]byte(t)); old != nil && string(old) != id {
			prev, err := getImage(tx, string(old))
			if err != nil {
				return nil, err
			}
			if prev != nil {
				prev.Tags = without(prev.Tags, t)
				if err := putImage(tx, prev); err != nil {
					return nil, err
				}
			}
		}
		if err := tags.Put([]byte(t), []byte(id)); err != nil {
			return nil, err
		}
		if !contains(img.Tags, t) {
			img.Tags = append(img.Tags, t)
		}
	}
	return img, putImage(tx, img)
}

// unpackLayer unpacks one layer into a new directory under tmp/ and
// verifies it: the blob against its digest while it is read, the tar
// against the diffID. Any failure removes the directory.
func (s *Store) unpackLayer(ctx context.Context, op, image string, src layerSource, bar *progressBar) (u *unpacked, err error) {
	fail := func(entry string, err error) error {
		return &LayerError{Op: op, Image: image, Layer: src.diffID.String(), Entry: entry, Err: err}
	}
	dir, err := os.MkdirTemp(s.tmpDir(), "layer-")
	if err != nil {
		return nil, fail("", err)
	}
	defer func() {
		if err != nil {
			removeTree(dir)
		}
	}()
	rc, err := src.open()
	if err != nil {
		return nil, fail("", err)
	}
	defer rc.Close()

	// Two stages on two cores: this goroutine parses the tar and writes
	// files while another reads the blob, hashes it and decompresses the
	// next megabyte. The blob's own digest is complete when the pipe ends.
	raw := &hashReader{ctx: ctx, r: rc, h: nopHash{}, bar: bar, limit: -1}
	if src.compressed {
		raw.h = sha256.New()
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(func() error {
			var un io.Reader = raw
			if src.compressed {
				d, err := decompress(raw)
				if err != nil {
					return fmt.Errorf("decompressing: %w", err)
				}
				defer d.Close()
				un = d
			}
			bw := bufio.NewWriterSize(pw, 1<<20)
			if _, err := io.Copy(bw, un); err != nil {
				return err
			}
			if err := bw.Flush(); err != nil {
				return err
			}
			_, err := io.Copy(io.Discard, raw) // whatever follows the compressed stream
			return err
		}())
	}()
	defer func() {
		pr.CloseWithError(errors.New("layer abandoned")) // stops the reader if it still runs
		<-done                                           // before rc is closed under it
	}()

	tarStream := &hashReader{ctx: ctx, r: pr, h: sha256.New(), limit: s.Limits.MaxLayerSize}
	w, err := newLayerWriter(dir)
	if err != nil {
		return nil, fail("", err)
	}
	defer w.Close()
	st, err := unpackTar(ctx, tarStream, w, s.Limits)
	if err != nil {
		if ee, ok := err.(*entryError); ok {
			return nil, fail(ee.entry, ee.err)
		}
		return nil, fail("", err)
	}
	if st.devices > 0 && s.Warnings != nil {
		fmt.Fprintf(s.Warnings, "oak: warning: %s %s: layer %s: left out %d device node(s) (%s); a container gets only Oak's own /dev\n",
			op, image, src.diffID, st.devices, st.firstDevice)
	}
	// The digests cover everything, also what follows the tar's end.
	if _, err := io.Copy(io.Discard, tarStream); err != nil {
		return nil, fail("", fmt.Errorf("reading past the end of the tar: %w", err))
	}
	if got := tarStream.sum(); got != src.diffID {
		return nil, fail("", fmt.Errorf("%w: uncompressed content is %s", ErrDigest, got))
	}
	<-done // the pipe ended without error: raw was read to its end
	if got := raw.sum(); src.compressed && src.digest != (v1.Hash{}) && got != src.digest {
		return nil, fail("", fmt.Errorf("%w: blob is %s, the manifest says %s", ErrDigest, got, src.digest))
	}
	if err := w.Finish(); err != nil {
		return nil, fail("", err)
	}
	return &unpacked{dir: dir, size: tarStream.n}, nil
}

// hashReader hashes and counts what is read through it, stops when the
// context is done, and refuses more than limit bytes (limit < 0: none).
type hashReader struct {
	ctx   context.Context
	r     io.Reader
	h     hash.Hash
	n     int64
	limit int64
	bar   *progressBar
}

func (r *hashReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := r.r.Read(p)
	r.h.Write(p[:n])
	r.n += int64(n)
	r.bar.add(int64(n))
	if r.limit >= 0 && r.n > r.limit {
		return n, fmt.Errorf("%w: layer is larger than %d bytes uncompressed", ErrLimit, r.limit)
	}
	return n, err
}

func (r *hashReader) sum() v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(r.h.Sum(nil))}
}

// parallel runs fn(0..n-1), at most width at a time; the first error
// cancels the rest and is returned.
func parallel(ctx context.Context, width, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, width)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// ImportOptions adjust an Import.
type ImportOptions struct {
	// Tag, if set, is the only tag the imported image gets, instead of the
	// ones the archive names. Refused for an archive of several images.
	Tag string
	// Progress receives a progress bar if it is a terminal.
	Progress io.Writer
	// Name is how messages and the progress bar name the input; "" means
	// its path. (The storage service reads its input at a path of its own.)
	Name string
}

// Sizes past which a manifest, config or index is refused: real ones are a
// few KiB, and they are read into memory.
const (
	maxManifestSize = 4 << 20
	maxConfigSize   = 8 << 20
	maxArchiveNames = 1 << 20
)

// Import stores the images in path, which is one of
//
//   - a docker-save archive (manifest.json and layer tars; Docker's own
//     "docker save" output),
//   - an OCI image layout directory (oci-layout, index.json, blobs/), or
//   - an OCI archive: a tar of such a layout (podman save --format
//     oci-archive; Docker 25 and later write archives that are both),
//
// an archive possibly compressed with gzip or zstd, its layers in any of
// those or plain. From an index it takes the image for linux and this
// machine's architecture. It returns the stored images; on error nothing
// of the failed import is used (layers it completed may stay, shared by
// a later import of the same layer).
func (s *Store) Import(ctx context.Context, path string, opts ImportOptions) ([]*Image, error) {
	name := path
	if opts.Name != "" {
		name = opts.Name
	}
	fail := func(err error) error {
		var le *LayerError
		if errors.As(err, &le) {
			return err
		}
		return fmt.Errorf("image import %s: %w", name, err)
	}
	var override string
	if opts.Tag != "" {
		t, err := NormalizeTag(opts.Tag)
		if err != nil {
			return nil, fail(fmt.Errorf("tag %q: %w", opts.Tag, err))
		}
		override = t
	}
	unlock, err := lockShared(s.tmpDir())
	if err != nil {
		return nil, fail(err)
	}
	defer unlock()
	cands, cleanup, err := s.readArchive(ctx, path)
	if err != nil {
		return nil, fail(err)
	}
	defer cleanup()
	if override != "" {
		if len(cands) != 1 {
			return nil, fail(fmt.Errorf("the archive holds %d images; a tag names one", len(cands)))
		}
		cands[0].tags = []string{override}
		cands[0].name = name + " (" + override + ")"
	}
	imgs, err := s.store(ctx, "import", "import "+filepath.Base(name), cands, opts.Progress)
	if err != nil {
		return nil, fail(err)
	}
	return imgs, nil
}

// readArchive finds what kind of archive path is and reads its images.
// cleanup removes any decompressed copy; call it after the import.
func (s *Store) readArchive(ctx context.Context, p string) ([]*candidate, func(), error) {
	nop := func() {}
	fi, err := os.Stat(p)
	if err != nil {
		return nil, nop, err
	}
	if fi.IsDir() {
		if _, err := os.Stat(filepath.Join(p, "oci-layout")); err != nil {
			return nil, nop, errors.New("a directory must be an OCI image layout (it has no oci-layout file)")
		}
		lp, err := layout.FromPath(p)
		if err != nil {
			return nil, nop, err
		}
		f, err := os.Open(filepath.Join(p, "index.json"))
		if err != nil {
			return nil, nop, err
		}
		raw, err := readLimited(f, maxManifestSize)
		f.Close()
		if err != nil {
			return nil, nop, fmt.Errorf("index.json: %w", err)
		}
		cands, err := fromIndex(p, raw, lp.Blob)
		return cands, nop, err
	}

	f, err := os.Open(p)
	if err != nil {
		return nil, nop, err
	}
	cleanup := func() { f.Close() }
	if !fi.Mode().IsRegular() {
		// A pipe ("docker save app | oak image import /dev/stdin"): the
		// archive is read many times at random places; keep it in tmp/.
		spool, err := s.tmpCopy(ctx, f)
		f.Close()
		if err != nil {
			return nil, nop, err
		}
		f = spool
		cleanup = func() { spool.Close(); os.Remove(spool.Name()) }
	}
	compressed, err := isCompressed(f)
	if err != nil {
		return nil, cleanup, err
	}
	if compressed {
		// Likewise, decompress it once into tmp/.
		plain, err := s.decompressArchive(ctx, f)
		cleanup()
		if err != nil {
			return nil, nop, err
		}
		f = plain
		cleanup = func() { plain.Close(); os.Remove(plain.Name()) }
	}
	st, err := f.Stat()
	if err != nil {
		return nil, cleanup, err
	}
	ta, err := indexTar(f, st.Size())
	if err != nil {
		return nil, cleanup, err
	}
	var cands []*candidate
	switch {
	case ta.has("oci-layout") && ta.has("index.json"):
		raw, err := readLimited(ta.open("index.json"), maxManifestSize)
		if err != nil {
			return nil, cleanup, fmt.Errorf("index.json: %w", err)
		}
		cands, err = fromIndex(p, raw, ta.blob)
		if err != nil {
			return nil, cleanup, err
		}
	case ta.has("manifest.json"):
		if size := ta.files["manifest.json"][1]; size > maxManifestSize {
			return nil, cleanup, fmt.Errorf("manifest.json: %w: %d bytes", ErrLimit, size)
		}
		opener := func() (io.ReadCloser, error) { return io.NopCloser(io.NewSectionReader(f, 0, st.Size())), nil }
		cands, err = fromDockerSave(p, opener, ta)
		if err != nil {
			return nil, cleanup, err
		}
	default:
		return nil, cleanup, errors.New("not a docker-save archive or an OCI image layout or archive (no manifest.json, no oci-layout)")
	}
	return cands, cleanup, nil
}

// isCompressed looks for the gzip or zstd magic number at the start of f
// and rewinds it.
func isCompressed(f *os.File) (bool, error) {
	var magic [4]byte
	n, err := io.ReadFull(f, magic[:])
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return false, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return false, err
	}
	return compressionOf(magic[:n]) != compression.None, nil
}

// compressionOf names the compression a stream starting with b uses.
func compressionOf(b []byte) compression.Compression {
	switch {
	case bytes.HasPrefix(b, []byte{0x1f, 0x8b}):
		return compression.GZip
	case bytes.HasPrefix(b, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return compression.ZStd
	}
	return compression.None
}

// decompress returns r decompressed by what its first bytes say: gzip,
// zstd, or nothing (a plain tar). The decoders are klauspost/compress,
// which go-containerregistry uses for zstd; its gzip decoder is a third
// faster than the standard library's.
func decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(4)
	if err != nil && err != io.EOF {
		return nil, err
	}
	switch compressionOf(magic) {
	case compression.GZip:
		return gzip.NewReader(br)
	case compression.ZStd:
		// A frame may ask for a window of up to 512 MiB (the decoder's
		// limit, enough for zstd --long): the memory one layer can cost.
		d, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	}
	return io.NopCloser(br), nil
}

// decompressArchive writes the uncompressed archive to a file in tmp/.
func (s *Store) decompressArchive(ctx context.Context, f *os.File) (*os.File, error) {
	un, err := decompress(f)
	if err != nil {
		return nil, fmt.Errorf("decompressing: %w", err)
	}
	defer un.Close()
	out, err := s.tmpCopy(ctx, un)
	if err != nil {
		return nil, fmt.Errorf("decompressing: %w", err)
	}
	return out, nil
}

// tmpCopy copies r into a new file in tmp/, which the caller removes.
func (s *Store) tmpCopy(ctx context.Context, r io.Reader) (*os.File, error) {
	out, err := os.CreateTemp(s.tmpDir(), "archive-*.tar")
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(out, &hashReader{ctx: ctx, r: r, h: nopHash{}, limit: -1})
	if err == nil {
		_, err = out.Seek(0, io.SeekStart)
	}
	if err != nil {
		out.Close()
		os.Remove(out.Name())
		return nil, err
	}
	return out, nil
}

// tarArchive is an index of the regular files in an uncompressed tar, so
// that blobs are read in place (io.SectionReader) without extracting them.
type tarArchive struct {
	f     io.ReaderAt
	files map[string][2]int64 // clean name → offset, size
}

func indexTar(f io.ReaderAt, size int64) (*tarArchive, error) {
	sr := io.NewSectionReader(f, 0, size)
	tr := tar.NewReader(sr) // a Seeker: tar skips file contents without reading them
	ta := &tarArchive{f: f, files: map[string][2]int64{}}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return ta, nil
		}
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) {
			return nil, fmt.Errorf("reading the archive: %w", err)
		}
		if len(ta.files) >= maxArchiveNames {
			return nil, fmt.Errorf("%w: more than %d files in the archive", ErrLimit, maxArchiveNames)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		// archive/tar reads whole 512-byte blocks and nothing ahead, so
		// the reader stands at the entry's first byte.
		off, err := sr.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, err
		}
		ta.files[path.Clean(strings.TrimPrefix(hdr.Name, "/"))] = [2]int64{off, hdr.Size}
	}
}

func (ta *tarArchive) has(name string) bool {
	_, ok := ta.files[name]
	return ok
}

func (ta *tarArchive) open(name string) io.ReadCloser {
	e := ta.files[name]
	return io.NopCloser(io.NewSectionReader(ta.f, e[0], e[1]))
}

// blob opens blobs/<alg>/<hex> of the layout the archive holds.
func (ta *tarArchive) blob(h v1.Hash) (io.ReadCloser, error) {
	n := path.Join("blobs", h.Algorithm, h.Hex)
	if !ta.has(n) {
		return nil, fmt.Errorf("blob %s is not in the archive", h)
	}
	return ta.open(n), nil
}

type blobFunc func(v1.Hash) (io.ReadCloser, error)

// fromIndex reads the images an OCI index.json lists. An entry that is an
// index itself (a multi-platform image) yields its linux image for this
// machine's architecture; entries for other platforms are skipped.
func fromIndex(archive string, rawIndex []byte, blob blobFunc) ([]*candidate, error) {
	idx, err := v1.ParseIndexManifest(bytes.NewReader(rawIndex))
	if err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	var cands []*candidate
	byDigest := map[v1.Hash]*candidate{}
	var skipped []string
	for _, d := range idx.Manifests {
		img := d
		switch {
		case d.MediaType.IsImage():
			if d.Platform != nil && !d.Platform.Satisfies(hostPlatform()) {
				skipped = append(skipped, d.Platform.String())
				continue
			}
		case d.MediaType.IsIndex():
			raw, err := readBlob(blob, d.Digest, maxManifestSize)
			if err != nil {
				return nil, fmt.Errorf("index %s: %w", d.Digest, err)
			}
			child, err := v1.ParseIndexManifest(bytes.NewReader(raw))
			if err != nil {
				return nil, fmt.Errorf("index %s: %w", d.Digest, err)
			}
			var ok bool
			if img, ok = choosePlatform(child.Manifests); !ok {
				for _, m := range child.Manifests {
					if m.Platform != nil {
						skipped = append(skipped, m.Platform.String())
					}
				}
				continue
			}
		default:
			continue // not an image (an artifact, a signature)
		}
		tags := annotationTags(d.Annotations)
		if c := byDigest[img.Digest]; c != nil {
			for _, t := range tags {
				if !contains(c.tags, t) {
					c.tags = append(c.tags, t)
				}
			}
			continue
		}
		raw, err := readBlob(blob, img.Digest, maxManifestSize)
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", img.Digest, err)
		}
		c, err := manifestCandidate(archive, img.Digest, raw, func(h v1.Hash) ([]byte, error) {
			return readBlob(blob, h, maxConfigSize)
		}, blob)
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", img.Digest, err)
		}
		c.tags = tags
		byDigest[img.Digest] = c
		cands = append(cands, c)
	}
	if len(cands) == 0 {
		if len(skipped) > 0 {
			return nil, fmt.Errorf("no image for %s (the archive has %s)", hostPlatform(), strings.Join(skipped, ", "))
		}
		return nil, errors.New("index.json lists no image")
	}
	for _, c := range cands {
		c.name = describe(archive, c.tags)
	}
	return cands, nil
}

func hostPlatform() v1.Platform {
	return v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
}

// choosePlatform picks this machine's image from a multi-platform index.
func choosePlatform(ms []v1.Descriptor) (v1.Descriptor, bool) {
	for _, m := range ms {
		if m.MediaType.IsImage() && (m.Platform == nil || m.Platform.Satisfies(hostPlatform())) {
			return m, true
		}
	}
	return v1.Descriptor{}, false
}

// annotationTags reads an index entry's name: containerd's full name, or
// the OCI ref.name when it is a full reference (a bare "latest" names no
// repository and is ignored).
func annotationTags(a map[string]string) []string {
	n := a["io.containerd.image.name"]
	if n == "" {
		if r := a[v1AnnotationRefName]; strings.ContainsAny(r, ":/") {
			n = r
		}
	}
	if n == "" {
		return nil
	}
	t, err := NormalizeTag(n)
	if err != nil {
		return nil
	}
	return []string{t}
}

const v1AnnotationRefName = "org.opencontainers.image.ref.name"

func describe(archive string, tags []string) string {
	if len(tags) == 0 {
		return archive
	}
	return archive + " (" + tags[0] + ")"
}

// manifestCandidate reads an image manifest's config and lists its layers;
// the layers are read (and checked against their digests) later.
func manifestCandidate(what string, digest v1.Hash, rawManifest []byte, config func(v1.Hash) ([]byte, error), blob blobFunc) (*candidate, error) {
	m, err := v1.ParseManifest(bytes.NewReader(rawManifest))
	if err != nil {
		return nil, err
	}
	if m.Config.Digest.Algorithm != "sha256" {
		return nil, fmt.Errorf("config digest %q is not sha256", m.Config.Digest)
	}
	rawConfig, err := config(m.Config.Digest)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	layers := make([]layerSource, len(m.Layers))
	for i, l := range m.Layers {
		if l.Digest.Algorithm != "sha256" {
			return nil, fmt.Errorf("layer %d: digest %q is not sha256", i, l.Digest)
		}
		if !l.MediaType.IsLayer() {
			return nil, fmt.Errorf("layer %s: unsupported media type %q", l.Digest, l.MediaType)
		}
		d := l.Digest
		layers[i] = layerSource{digest: d, size: l.Size, compressed: true, open: func() (io.ReadCloser, error) { return blob(d) }}
	}
	c, err := newCandidate(what, rawConfig, m.Config.Digest, layers)
	if err != nil {
		return nil, err
	}
	c.digest = digest.String()
	return c, nil
}

// fromDockerSave reads a docker-save archive's images with
// go-containerregistry's tarball package. Each layer is read as the
// archive stores it (plain, gzip or zstd) from its entry in ta, so that
// its size, and with it the progress line's total, is known.
func fromDockerSave(archive string, opener tarball.Opener, ta *tarArchive) ([]*candidate, error) {
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, fmt.Errorf("manifest.json: %w", err)
	}
	if len(m) == 0 {
		return nil, errors.New("manifest.json lists no image")
	}
	var cands []*candidate
	for i, d := range m {
		var tag *name.Tag
		if len(m) > 1 {
			if len(d.RepoTags) == 0 {
				return nil, fmt.Errorf("the archive holds %d images and number %d has no tag to select it by", len(m), i+1)
			}
			t, err := name.NewTag(d.RepoTags[0])
			if err != nil {
				return nil, fmt.Errorf("image %d: tag %q: %w", i+1, d.RepoTags[0], err)
			}
			tag = &t
		}
		img, err := tarball.Image(opener, tag)
		if err != nil {
			return nil, fmt.Errorf("image %d: %w", i+1, err)
		}
		rawConfig, err := img.RawConfigFile()
		if err != nil {
			return nil, fmt.Errorf("image %d: config: %w", i+1, err)
		}
		if len(rawConfig) > maxConfigSize {
			return nil, fmt.Errorf("image %d: %w: config of %d bytes", i+1, ErrLimit, len(rawConfig))
		}
		cfg, err := v1.ParseConfigFile(bytes.NewReader(rawConfig))
		if err != nil {
			return nil, fmt.Errorf("image %d: config: %w", i+1, err)
		}
		layers := make([]layerSource, len(cfg.RootFS.DiffIDs))
		for j, diffID := range cfg.RootFS.DiffIDs {
			if len(d.Layers) == len(layers) {
				if entry := path.Clean(strings.TrimPrefix(d.Layers[j], "/")); ta.has(entry) {
					layers[j] = layerSource{size: ta.files[entry][1], compressed: true,
						open: func() (io.ReadCloser, error) { return ta.open(entry), nil }}
					continue
				}
			}
			layers[j] = layerSource{size: -1, open: func() (io.ReadCloser, error) {
				l, err := img.LayerByDiffID(diffID)
				if err != nil {
					return nil, err
				}
				return l.Uncompressed()
			}}
		}
		var tags []string
		for _, t := range d.RepoTags {
			if n, err := NormalizeTag(t); err == nil && !contains(tags, n) {
				tags = append(tags, n)
			}
		}
		c, err := newCandidate(describe(archive, tags), rawConfig, v1.Hash{}, layers)
		if err != nil {
			return nil, fmt.Errorf("image %d: %w", i+1, err)
		}
		c.tags = tags
		cands = append(cands, c)
	}
	return cands, nil
}

// readBlob reads a small blob whole and checks it against its digest.
func readBlob(blob blobFunc, h v1.Hash, max int64) ([]byte, error) {
	if h.Algorithm != "sha256" {
		return nil, fmt.Errorf("digest %q is not sha256", h)
	}
	rc, err := blob(h)
	if err != nil {
		return nil, err
	}
	b, err := readLimited(rc, max)
	if err != nil {
		return nil, err
	}
	if got := sha256Hash(b); got != h {
		return nil, fmt.Errorf("%w: content is %s", ErrDigest, got)
	}
	return b, nil
}

// readLimited reads rc whole, refusing more than max bytes, and closes it.
func readLimited(rc io.ReadCloser, max int64) ([]byte, error) {
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrLimit, max)
	}
	return b, nil
}

// nopHash is a hash.Hash that hashes nothing, for hashReader's counting
// and cancellation alone.
type nopHash struct{}

func (nopHash) Write(p []byte) (int, error) { return len(p), nil }
func (nopHash) Sum(b []byte) []byte         { return b }
func (nopHash) Reset()                      {}
func (nopHash) Size() int                   { return 0 }
func (nopHash) BlockSize() int              { return 1 }

package bench

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// imageArchive describes an archive makeImageArchive wrote.
type imageArchive struct {
	path string
	// tag is the image's tag in the archive (its RepoTags).
	tag string
	// layerBytes is the sum of the layers' uncompressed sizes.
	layerBytes int64
	// layers is the number of layers, the program's included.
	layers int
	// description says what is in it.
	description string
}

// makeImageArchive writes a docker-save archive (as `docker save` writes
// it: manifest.json, the config, uncompressed layer tars) of an image for
// linux and this machine's architecture, tagged tag, to path. Its first
// layer holds the program at prog as /oak and the mount points proc, dev,
// sys, tmp and etc; then come layers data layers that together hold mib MiB
// of pseudo-random data (nothing to compress) in /bench/layerN. The data
// is generated as the archive is written, never held in memory.
func makeImageArchive(path, tag, prog string, mib, layers int) (*imageArchive, error) {
	if layers < 1 || mib < layers {
		return nil, fmt.Errorf("image of %d MiB in %d layers: want at least 1 MiB per layer", mib, layers)
	}
	ref, err := name.NewTag(tag)
	if err != nil {
		return nil, fmt.Errorf("image tag %q: %w", tag, err)
	}
	progInfo, err := os.Stat(prog)
	if err != nil {
		return nil, fmt.Errorf("image program: %w", err)
	}

	var ls []v1.Layer
	base, err := newTarLayer(func(tw *tar.Writer) error { return writeProgramLayer(tw, prog, progInfo.Size()) })
	if err != nil {
		return nil, fmt.Errorf("program layer: %w", err)
	}
	ls = append(ls, base)
	var dataBytes int64
	for i := range layers {
		size := int64(mib/layers) << 20
		if i == layers-1 {
			size = int64(mib)<<20 - dataBytes
		}
		dataBytes += size
		l, err := newTarLayer(func(tw *tar.Writer) error { return writeDataLayer(tw, i, size) })
		if err != nil {
			return nil, fmt.Errorf("data layer %d: %w", i+1, err)
		}
		ls = append(ls, l)
	}

	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		OS:           "linux",
		Architecture: runtime.GOARCH,
		Created:      v1.Time{Time: archiveTime},
		Config:       v1.Config{Cmd: []string{"/oak", StorageLoadCommand, LoadNoop}},
		RootFS:       v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, err
	}
	img, err = mutate.AppendLayers(img, ls...)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	err = tarball.Write(ref, img, w)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	a := &imageArchive{path: path, tag: tag, layers: len(ls)}
	for _, l := range ls {
		n, _ := l.Size()
		a.layerBytes += n
	}
	a.description = fmt.Sprintf("docker-save archive, %d uncompressed layers: /oak (%s) + %d × %s of random data",
		len(ls), sizeString64(progInfo.Size()), layers, sizeString64(int64(mib/layers)<<20))
	if int64(mib/layers)*int64(layers) != int64(mib) {
		a.description = fmt.Sprintf("docker-save archive, %d uncompressed layers: /oak (%s) + %s of random data in %d layers",
			len(ls), sizeString64(progInfo.Size()), sizeString64(int64(mib)<<20), layers)
	}
	return a, nil
}

// archiveTime is the modification time of every file in the archive, and
// the image's creation time: fixed, so that a layer's digest depends only
// on its content.
var archiveTime = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// writeProgramLayer writes the image's base layer to tw: the mount points
// and prog, which must be size bytes, as /oak.
func writeProgramLayer(tw *tar.Writer, prog string, size int64) error {
	for _, d := range []struct {
		name string
		mode int64
	}{{"proc/", 0o755}, {"dev/", 0o755}, {"sys/", 0o755}, {"tmp/", 0o1777}, {"etc/", 0o755}} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d.name, Mode: d.mode, ModTime: archiveTime}); err != nil {
			return err
		}
	}
	f, err := os.Open(prog)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "oak", Mode: 0o755, Size: size, ModTime: archiveTime}); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, f, size); err != nil {
		return fmt.Errorf("%s: %w", prog, err)
	}
	return nil
}

// writeDataLayer writes data layer i to tw: /bench/layerI with size bytes
// of pseudo-random data, the same for the same i and size.
func writeDataLayer(tw *tar.Writer, i int, size int64) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "bench/", Mode: 0o755, ModTime: archiveTime}); err != nil {
		return err
	}
	name := fmt.Sprintf("bench/layer%d", i+1)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size, ModTime: archiveTime}); err != nil {
		return err
	}
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(i))
	copy(seed[8:], "oak-bench-storage-image")
	_, err := io.CopyN(tw, rand.NewChaCha8(seed), size)
	return err
}

// tarLayer is an uncompressed layer whose tar stream is generated anew by
// write each time it is read. Its digest and its diff ID are the same: the
// SHA-256 of that stream.
type tarLayer struct {
	write func(*tar.Writer) error
	hash  v1.Hash
	size  int64
}

// newTarLayer makes a layer of the tar stream write writes, reading it
// once for its digest and size.
func newTarLayer(write func(*tar.Writer) error) (*tarLayer, error) {
	l := &tarLayer{write: write}
	rc := l.open()
	defer rc.Close()
	h, n, err := v1.SHA256(rc)
	if err != nil {
		return nil, err
	}
	l.hash, l.size = h, n
	return l, nil
}

// open returns the layer's tar stream; a goroutine writes it until the
// end or until the reader is closed.
func (l *tarLayer) open() io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := l.write(tw)
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr
}

func (l *tarLayer) Digest() (v1.Hash, error)             { return l.hash, nil }
func (l *tarLayer) DiffID() (v1.Hash, error)             { return l.hash, nil }
func (l *tarLayer) Compressed() (io.ReadCloser, error)   { return l.open(), nil }
func (l *tarLayer) Uncompressed() (io.ReadCloser, error) { return l.open(), nil }
func (l *tarLayer) Size() (int64, error)                 { return l.size, nil }
func (l *tarLayer) MediaType() (types.MediaType, error)  { return types.DockerUncompressedLayer, nil }

// storageImport is the import part of Storage; see there. It never fails
// the benchmark: what goes wrong is in the result.
func storageImport(ctx context.Context, env *storageEnv) *ImportResult {
	cfg := env.cfg
	res := &ImportResult{Archive: fmt.Sprintf("%d MiB of random data in %d layers", cfg.ImageMiB, cfg.ImageLayers)}
	if env.rootfsErr != nil {
		res.Error = env.rootfsErr.Error()
		return res
	}
	if _, err := os.Stat(cfg.OakPath); err != nil {
		res.Error = fmt.Sprintf("oak binary: %v", err)
		return res
	}
	tag := fmt.Sprintf("localhost/oak-bench-storage:%d", os.Getpid())
	env.logf("image: writing a docker-save archive of %d MiB in %d layers", cfg.ImageMiB, cfg.ImageLayers)
	a, err := makeImageArchive(filepath.Join(env.work, "image.tar"), tag, cfg.LoadPath, cfg.ImageMiB, cfg.ImageLayers)
	if err != nil {
		res.Error = "building the archive: " + err.Error()
		return res
	}
	defer os.Remove(a.path)
	res.Archive = a.description
	res.LayerBytes = a.layerBytes
	if st, err := os.Stat(a.path); err == nil {
		res.ArchiveBytes = st.Size()
	}

	noop := []string{"/oak", StorageLoadCommand, LoadNoop}
	res.Detail = strings.Join(env.oak("ROOT", "image", "import", a.path), " ") + "; " +
		strings.Join(env.oak("ROOT", append([]string{"run", "--rm", tag}, noop...)...), " ") + "; " +
		strings.Join(env.oak("ROOT", append([]string{"run", "--rm", env.rootfs}, noop...)...), " ") +
		"; ROOT a fresh state root per round"
	if !cfg.KeepCache {
		res.Detail += ", page cache dropped before each import"
	}

	for round := range cfg.Rounds {
		root := filepath.Join(env.work, fmt.Sprintf("import-%d", round+1))
		err := importRound(ctx, env, res, a, root, round)
		// The round's containers are gone with --rm; the images go with
		// the state root.
		if rerr := removeContainers(context.WithoutCancel(ctx), env.oak, root, a.tag, env.rootfs); rerr != nil && err == nil {
			env.logf("image: %v", rerr)
		}
		os.RemoveAll(root)
		if ctx.Err() != nil {
			return res
		}
		if err != nil {
			if round == 0 && len(res.Seconds.Values) == 0 {
				res.Skipped = err.Error()
			} else {
				res.Error = fmt.Sprintf("round %d: %v", round+1, err)
			}
			env.logf("image: %s%s", res.Skipped, res.Error)
			return res
		}
	}
	return res
}

// importRound imports the archive into the fresh state root root and
// times the starts that follow.
func importRound(ctx context.Context, env *storageEnv, res *ImportResult, a *imageArchive, root string, round int) error {
	if err := os.Mkdir(root, 0o700); err != nil {
		return err
	}
	if !env.cfg.KeepCache {
		// As for the reads: the archive comes from the disk. Storage's
		// reads already reported whether this works.
		_ = dropCaches()
	}
	start := time.Now()
	err := runCommand(ctx, env.oak(root, "image", "import", a.path))
	d := time.Since(start)
	if err != nil {
		return fmt.Errorf("oak image import: %w", err)
	}
	res.Seconds.add(round3(d.Seconds()))
	res.MBps.add(mbps(a.layerBytes, d.Seconds()))
	env.logf("image, round %d/%d: import %.2f s, %.1f MB/s", round+1, env.cfg.Rounds, d.Seconds(), mbps(a.layerBytes, d.Seconds()))

	noop := []string{"/oak", StorageLoadCommand, LoadNoop}
	fromImage := env.oak(root, append([]string{"run", "--rm", a.tag}, noop...)...)
	fromDir := env.oak(root, append([]string{"run", "--rm", env.rootfs}, noop...)...)
	timed := func(argv []string) (float64, error) {
		start := time.Now()
		if _, err := runLoad(ctx, argv, LoadNoop); err != nil {
			return 0, err
		}
		return round3(float64(time.Since(start)) / float64(time.Millisecond)), nil
	}
	first, err := timed(fromImage)
	if err != nil {
		return fmt.Errorf("first start from the image: %w", err)
	}
	res.FirstStart.add(first)
	// The next start from the image and the start from the directory
	// alternate in order from round to round.
	steps := []struct {
		s    *Series
		argv []string
		what string
	}{{&res.NextStart, fromImage, "next start from the image"}, {&res.DirStart, fromDir, "start from the directory"}}
	if round%2 == 1 {
		steps[0], steps[1] = steps[1], steps[0]
	}
	for _, s := range steps {
		ms, err := timed(s.argv)
		if err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
		s.s.add(ms)
	}
	env.logf("image, round %d/%d: first start %.1f ms, next %.1f ms, from the directory %.1f ms", round+1, env.cfg.Rounds,
		first, res.NextStart.Values[len(res.NextStart.Values)-1], res.DirStart.Values[len(res.DirStart.Values)-1])
	return nil
}

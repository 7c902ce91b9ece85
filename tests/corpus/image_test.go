//go:build linux

package corpus

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// The base image: one mmdebstrap of Debian bookworm with every program of
// the corpus installed. One shared root file system costs one download and
// one dpkg run, and Oak stores its one layer once for all the images made
// from it. Measured on a 2-vCPU machine: 82 s and 1.1 GB for all of them,
// against 25 s and 178 MB for redis-server alone and 44 s and 483 MB for
// postgresql alone, so seven separate Debian images would take about four
// minutes.
var baseRecipe = recipe{
	Suite:   "bookworm",
	Variant: "apt",
	Packages: []string{
		"postgresql",              // postgres 15
		"redis-server",            // redis 7.0
		"nginx",                   // nginx 1.22, Debian's default config
		"mariadb-server",          // mariadb 10.11
		"python3",                 // python 3.11
		"nodejs",                  // node 18
		"openjdk-17-jdk-headless", // java 17; the JDK so that `java Prog.java` compiles in the container
		"gosu",                    // what docker-library entrypoints use to drop to a user
		"busybox-static",          // the busybox image takes its one binary from here
	},
	// The images carry no documentation, as Debian's slim images.
	DpkgOpts: []string{
		"path-exclude=/usr/share/doc/*",
		"path-include=/usr/share/doc/*/copyright",
		"path-exclude=/usr/share/man/*",
		"path-exclude=/usr/share/info/*",
	},
	// Debian's postgresql package makes a cluster in
	// /var/lib/postgresql/15/main; the image keeps its data in PGDATA
	// instead, made by the entrypoint, as docker-library's image does.
	CustomizeHooks: []string{`chroot "$1" pg_dropcluster 15 main`},
}

// recipe is everything that decides the base image's content; its hash
// keys the cache.
type recipe struct {
	Suite          string
	Variant        string
	Packages       []string
	DpkgOpts       []string
	CustomizeHooks []string
	// Sources is the content of the machine's apt sources, which
	// mmdebstrap is given so that it uses the same archive the host does.
	Sources string
}

func (r recipe) key() string {
	b, _ := json.Marshal(r)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])[:16]
}

// hostSources returns the path of the machine's deb822 Debian sources, or
// "" to let mmdebstrap pick its default mirror.
func hostSources() (string, string) {
	for _, p := range []string{"/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"} {
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte("debian")) {
			return p, string(b)
		}
	}
	return "", ""
}

// cacheRoot holds built base images across runs and clones; OAK_CORPUS_CACHE
// overrides it.
func cacheRoot() string {
	if d := os.Getenv("OAK_CORPUS_CACHE"); d != "" {
		return d
	}
	return "/var/cache/oak-corpus"
}

// baseImage is the cached result of the recipe: the root file system as an
// uncompressed tar (the image's one big layer) and its sha256.
type baseImage struct {
	Dir    string // cache directory of this recipe
	Tar    string
	Digest string // sha256 hex of Tar: both the layer's digest and its diff id
	Size   int64
	Built  bool          // built in this run (false: taken from the cache)
	Took   time.Duration // build (or cache lookup) time
}

// buildBase returns the base image, from the cache when the recipe's key is
// there, else by running mmdebstrap. A failed or interrupted build leaves
// nothing in the cache: the result is renamed into place last.
func buildBase(logf func(string, ...any)) (*baseImage, error) {
	unlock, err := lockCache()
	if err != nil {
		return nil, err
	}
	defer unlock()
	start := time.Now()
	r := baseRecipe
	srcPath, src := hostSources()
	r.Sources = src
	dir := filepath.Join(cacheRoot(), r.key())
	img := &baseImage{Dir: dir, Tar: filepath.Join(dir, "rootfs.tar")}
	if b, err := os.ReadFile(filepath.Join(dir, "rootfs.tar.sha256")); err == nil {
		if st, err := os.Stat(img.Tar); err == nil {
			img.Digest, img.Size = strings.TrimSpace(string(b)), st.Size()
			img.Took = time.Since(start)
			return img, nil
		}
	}
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		return nil, fmt.Errorf("mmdebstrap not installed (apt-get install mmdebstrap): %w", err)
	}
	tmp, err := os.MkdirTemp(cacheRoot(), ".build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "rootfs.tar")
	args := []string{
		"--mode=root", "--format=tar", "--variant=" + r.Variant,
		// Device nodes in an image are refused by Oak (and by rootless
		// runtimes); the runtime makes /dev.
		"--skip=output/dev",
		"--include=" + strings.Join(r.Packages, ","),
	}
	for _, o := range r.DpkgOpts {
		args = append(args, "--dpkgopt="+o)
	}
	for _, h := range r.CustomizeHooks {
		args = append(args, "--customize-hook="+h)
	}
	args = append(args, r.Suite, out)
	if srcPath != "" {
		args = append(args, srcPath)
	}
	logf("building the base image (cache miss %s): mmdebstrap %s", dir, strings.Join(args, " "))
	cmd := exec.Command("mmdebstrap", args...)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("mmdebstrap: %v\n%s", err, tail(log.String(), 4000))
	}
	sum, size, err := sha256File(out)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "rootfs.tar.sha256"), []byte(sum+"\n"), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "recipe.json"), mustJSON(r), 0o644); err != nil {
		return nil, err
	}
	os.RemoveAll(dir) // a result without its sha256: unfinished, and nobody uses it (we hold the lock)
	if err := os.Rename(tmp, dir); err != nil {
		return nil, err
	}
	img.Digest, img.Size, img.Built, img.Took = sum, size, true, time.Since(start)
	return img, nil
}

// lockCache takes the cache's lock: runs on one machine (CI jobs of several
// clones) share the cache, and one builds or extracts while the others
// wait for its result.
func lockCache() (func(), error) {
	if err := os.MkdirAll(cacheRoot(), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(cacheRoot(), ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

func sha256File(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

func mustJSON(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err)
	}
	return b
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// file is one entry of a small layer made by the test.
type file struct {
	Path   string // without a leading slash
	Mode   int64  // permission bits; 0o755 for programs
	Data   []byte
	Link   string // a symlink to Link when set
	IsDir  bool
	UID    int
	GID    int
	Source string // copy the content of this host file when Data is nil
}

// layerTar writes files as an uncompressed layer tar and returns its sha256.
func layerTar(path string, files []file) (string, int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(f, h))
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	mtime := time.Unix(0, 0)
	dirs := map[string]bool{}
	var parents func(p string) error
	parents = func(p string) error {
		d := filepath.Dir(p)
		if d == "." || dirs[d] {
			return nil
		}
		if err := parents(d); err != nil {
			return err
		}
		dirs[d] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: mtime})
	}
	for _, fl := range files {
		if err := parents(fl.Path); err != nil {
			return "", 0, err
		}
		hdr := &tar.Header{Name: fl.Path, Mode: fl.Mode, Uid: fl.UID, Gid: fl.GID, ModTime: mtime}
		switch {
		case fl.IsDir:
			dirs[fl.Path] = true
			hdr.Typeflag, hdr.Name = tar.TypeDir, fl.Path+"/"
			if err := tw.WriteHeader(hdr); err != nil {
				return "", 0, err
			}
			continue
		case fl.Link != "":
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, fl.Link, 0o777
			if err := tw.WriteHeader(hdr); err != nil {
				return "", 0, err
			}
			continue
		}
		data := fl.Data
		if data == nil && fl.Source != "" {
			if data, err = os.ReadFile(fl.Source); err != nil {
				return "", 0, err
			}
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(data))
		if err := tw.WriteHeader(hdr); err != nil {
			return "", 0, err
		}
		if _, err := tw.Write(data); err != nil {
			return "", 0, err
		}
	}
	if err := tw.Close(); err != nil {
		return "", 0, err
	}
	st, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), st.Size(), f.Close()
}

// imageConfig is the part of an OCI image config the corpus sets: the
// conventions of the corresponding docker-library image.
type imageConfig struct {
	Entrypoint   []string
	Cmd          []string
	Env          []string
	WorkingDir   string
	User         string
	ExposedPorts []string // "5432/tcp"
	Volumes      []string
	StopSignal   string
}

// layout is an OCI image layout being written: blobs by digest and an
// index naming each image.
type layout struct {
	dir   string
	index []map[string]any
}

func newLayout(dir string) (*layout, error) {
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return nil, err
	}
	return &layout{dir: dir}, os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}

// addFile puts an existing file in as a blob: a hard link when the
// file system allows (the base layer is a gigabyte), else a copy.
func (l *layout) addFile(src, digest string) error {
	dst := filepath.Join(l.dir, "blobs", "sha256", digest)
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func (l *layout) addBytes(b []byte) (string, int64, error) {
	h := sha256.Sum256(b)
	d := hex.EncodeToString(h[:])
	return d, int64(len(b)), os.WriteFile(filepath.Join(l.dir, "blobs", "sha256", d), b, 0o644)
}

type layerRef struct {
	Digest string
	Size   int64
}

// addImage writes an image's config and manifest and names it in the index.
func (l *layout) addImage(ref string, layers []layerRef, c imageConfig) error {
	cfg := map[string]any{}
	if c.Entrypoint != nil {
		cfg["Entrypoint"] = c.Entrypoint
	}
	if c.Cmd != nil {
		cfg["Cmd"] = c.Cmd
	}
	cfg["Env"] = c.Env
	if c.WorkingDir != "" {
		cfg["WorkingDir"] = c.WorkingDir
	}
	if c.User != "" {
		cfg["User"] = c.User
	}
	if c.StopSignal != "" {
		cfg["StopSignal"] = c.StopSignal
	}
	set := func(keys []string) map[string]struct{} {
		m := map[string]struct{}{}
		for _, k := range keys {
			m[k] = struct{}{}
		}
		return m
	}
	if len(c.ExposedPorts) > 0 {
		cfg["ExposedPorts"] = set(c.ExposedPorts)
	}
	if len(c.Volumes) > 0 {
		cfg["Volumes"] = set(c.Volumes)
	}
	diffIDs := make([]string, len(layers))
	mlayers := make([]map[string]any, len(layers))
	for i, ly := range layers {
		diffIDs[i] = "sha256:" + ly.Digest
		mlayers[i] = map[string]any{
			"mediaType": "application/vnd.oci.image.layer.v1.tar",
			"digest":    "sha256:" + ly.Digest,
			"size":      ly.Size,
		}
	}
	config := map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"config":       cfg,
		"rootfs":       map[string]any{"type": "layers", "diff_ids": diffIDs},
	}
	cd, cs, err := l.addBytes(mustJSON(config))
	if err != nil {
		return err
	}
	manifest := map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{
			"mediaType": "application/vnd.oci.image.config.v1+json",
			"digest":    "sha256:" + cd,
			"size":      cs,
		},
		"layers": mlayers,
	}
	md, ms, err := l.addBytes(mustJSON(manifest))
	if err != nil {
		return err
	}
	l.index = append(l.index, map[string]any{
		"mediaType":   "application/vnd.oci.image.manifest.v1+json",
		"digest":      "sha256:" + md,
		"size":        ms,
		"annotations": map[string]string{"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": ref},
	})
	return nil
}

func (l *layout) close() error {
	idx := map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests":     l.index,
	}
	return os.WriteFile(filepath.Join(l.dir, "index.json"), mustJSON(idx), 0o644)
}

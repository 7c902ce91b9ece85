//go:build linux

package corpus

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// corpusImages are the images written into one OCI layout.
type corpusImages struct {
	Layout string
	// Layers of each image by its ref, bottom first, as tar files (runc
	// bundles are made from them).
	Layers map[string][]string
	Config map[string]imageConfig
}

// The image refs. Names follow docker-library's images; the tag is the
// Debian bookworm version of the program.
const (
	imgPostgres = "oak-corpus/postgres:15"
	imgRedis    = "oak-corpus/redis:7.0"
	imgNginx    = "oak-corpus/nginx:1.22"
	imgMariaDB  = "oak-corpus/mariadb:10.11"
	imgPython   = "oak-corpus/python:3.11"
	imgNode     = "oak-corpus/node:18"
	imgJava     = "oak-corpus/openjdk:17"
	imgGo       = "oak-corpus/gohttp:latest"
	imgBusybox  = "oak-corpus/busybox:latest"
	imgMusl     = "oak-corpus/musl:latest"
)

const debianPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// makeImages writes the corpus's small layers and every image's config into
// an OCI layout at dir, with the base layer linked in from the cache.
func makeImages(dir string) (*corpusImages, error) {
	l, err := newLayout(dir)
	if err != nil {
		return nil, err
	}
	ci := &corpusImages{Layout: dir, Layers: map[string][]string{}, Config: map[string]imageConfig{}}
	if err := l.addFile(base.Tar, base.Digest); err != nil {
		return nil, err
	}
	baseRef := layerRef{base.Digest, base.Size}
	td := filepath.Join(repo, "tests", "corpus", "testdata")
	layersDir := filepath.Join(workDir, "layers")
	if err := os.MkdirAll(layersDir, 0o755); err != nil {
		return nil, err
	}
	add := func(ref string, onBase bool, files []file, c imageConfig) error {
		p := filepath.Join(layersDir, strings.NewReplacer("/", "_", ":", "_").Replace(ref)+".tar")
		d, size, err := layerTar(p, files)
		if err != nil {
			return fmt.Errorf("layer of %s: %w", ref, err)
		}
		if err := l.addFile(p, d); err != nil {
			return err
		}
		layers := []layerRef{{d, size}}
		ci.Layers[ref] = []string{p}
		if onBase {
			layers = append([]layerRef{baseRef}, layers...)
			ci.Layers[ref] = []string{base.Tar, p}
		}
		ci.Config[ref] = c
		return l.addImage(ref, layers, c)
	}
	src := func(rel string) string { return filepath.Join(td, rel) }
	entry := func(dir string) file {
		return file{Path: "usr/local/bin/entrypoint.sh", Mode: 0o755, Source: src(dir + "/entrypoint.sh")}
	}

	if err := add(imgPostgres, true, []file{
		entry("postgres"),
		{Path: "docker-entrypoint-initdb.d/init.sql", Mode: 0o644, Source: src("postgres/init.sql")},
	}, imageConfig{
		Entrypoint:   []string{"entrypoint.sh"},
		Cmd:          []string{"postgres"},
		Env:          []string{"PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PGDATA=/var/lib/postgresql/data", "LANG=C.UTF-8"},
		ExposedPorts: []string{"5432/tcp"},
		Volumes:      []string{"/var/lib/postgresql/data"},
		StopSignal:   "SIGINT", // fast shutdown, as docker-library's image
	}); err != nil {
		return nil, err
	}
	if err := add(imgRedis, true, []file{
		entry("redis"),
		{Path: "etc/redis/corpus.conf", Mode: 0o644, Source: src("redis/redis.conf")},
		{Path: "data", IsDir: true, Mode: 0o755},
	}, imageConfig{
		Entrypoint:   []string{"entrypoint.sh"},
		Cmd:          []string{"redis-server", "/etc/redis/corpus.conf"},
		Env:          []string{debianPath},
		WorkingDir:   "/data",
		ExposedPorts: []string{"6379/tcp"},
		Volumes:      []string{"/data"},
	}); err != nil {
		return nil, err
	}
	if err := add(imgNginx, true, nil, imageConfig{
		Cmd:          []string{"nginx", "-g", "daemon off;"},
		Env:          []string{debianPath},
		ExposedPorts: []string{"80/tcp"},
		StopSignal:   "SIGQUIT", // graceful shutdown, as docker-library's image
	}); err != nil {
		return nil, err
	}
	if err := add(imgMariaDB, true, []file{
		entry("mariadb"),
		{Path: "etc/mysql/mariadb.conf.d/99-corpus.cnf", Mode: 0o644, Source: src("mariadb/corpus.cnf")},
		// As docker-library's image: an empty data directory (Debian's
		// package installs a database there), so that a new volume filled
		// from the image holds nothing and the entrypoint initialises it.
		{Path: "var/lib/mysql", IsDir: true, Mode: 0o755},
		{Path: "var/lib/mysql/.wh..wh..opq", Mode: 0o644, Data: []byte{}},
	}, imageConfig{
		Entrypoint:   []string{"entrypoint.sh"},
		Cmd:          []string{"mariadbd"},
		Env:          []string{debianPath, "LANG=C.UTF-8"},
		ExposedPorts: []string{"3306/tcp"},
		Volumes:      []string{"/var/lib/mysql"},
	}); err != nil {
		return nil, err
	}
	if err := add(imgPython, true, []file{
		{Path: "app/mp.py", Mode: 0o644, Source: src("app/mp.py")},
	}, imageConfig{
		Cmd: []string{"python3"},
		Env: []string{debianPath, "LANG=C.UTF-8"},
	}); err != nil {
		return nil, err
	}
	if err := add(imgNode, true, []file{
		{Path: "app/server.js", Mode: 0o644, Source: src("app/server.js")},
	}, imageConfig{
		Cmd:          []string{"node"},
		Env:          []string{debianPath},
		ExposedPorts: []string{"3000/tcp"},
	}); err != nil {
		return nil, err
	}
	if err := add(imgJava, true, []file{
		{Path: "app/MaxMemory.java", Mode: 0o644, Source: src("app/MaxMemory.java")},
	}, imageConfig{
		Cmd: []string{"jshell"},
		Env: []string{debianPath, "JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64", "LANG=C.UTF-8"},
	}); err != nil {
		return nil, err
	}

	// The three images without Debian: one static binary each, as FROM
	// scratch images are made.
	bins := filepath.Join(workDir, "bin")
	if err := os.MkdirAll(bins, 0o755); err != nil {
		return nil, err
	}
	gohttp := filepath.Join(bins, "gohttp")
	if out, err := goBuild(gohttp, "./tests/corpus/testdata/gohttp", []string{"CGO_ENABLED=0"}); err != nil {
		return nil, fmt.Errorf("build testdata/gohttp: %v\n%s", err, out)
	}
	if err := add(imgGo, false, []file{{Path: "gohttp", Mode: 0o755, Source: gohttp}}, imageConfig{
		Cmd:          []string{"/gohttp"},
		ExposedPorts: []string{"8080/tcp"},
	}); err != nil {
		return nil, err
	}
	count := filepath.Join(bins, "count")
	if out, err := exec.Command("musl-gcc", "-static", "-O2", "-pthread", "-o", count, src("count.c")).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("musl-gcc testdata/count.c: %v\n%s", err, out)
	}
	if err := add(imgMusl, false, []file{{Path: "count", Mode: 0o755, Source: count}}, imageConfig{
		Cmd: []string{"/count"},
	}); err != nil {
		return nil, err
	}
	bb := filepath.Join(base.Dir, "busybox")
	if err := cached(bb, func() error { return extractOne(base.Tar, "usr/bin/busybox", bb) }); err != nil {
		return nil, err
	}
	applets, err := exec.Command(bb, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", bb, err)
	}
	files := []file{
		{Path: "bin/busybox", Mode: 0o755, Source: bb},
		{Path: "etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n")},
		{Path: "etc/group", Mode: 0o644, Data: []byte("root:x:0:\nnobody:x:65534:\n")},
		{Path: "tmp", IsDir: true, Mode: 0o1777},
		{Path: "root", IsDir: true, Mode: 0o700},
	}
	for _, a := range strings.Fields(string(applets)) {
		if a != "busybox" {
			files = append(files, file{Path: "bin/" + a, Link: "busybox"})
		}
	}
	if err := add(imgBusybox, false, files, imageConfig{
		Cmd: []string{"sh"},
		Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
	}); err != nil {
		return nil, err
	}
	return ci, l.close()
}

// extractOne copies the regular file name (without "./") out of a tar.
func extractOne(tarPath, name, dst string) error {
	f, err := os.Open(tarPath)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return fmt.Errorf("%s: no %s in it", tarPath, name)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", tarPath, err)
		}
		if strings.TrimPrefix(h.Name, "./") != name || h.Typeflag != tar.TypeReg {
			continue
		}
		tmp := fmt.Sprintf("%s.tmp%d", dst, os.Getpid())
		out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, tr); err != nil {
			out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
		return os.Rename(tmp, dst)
	}
}

// cached makes path with build unless it is there, under the cache's lock.
func cached(path string, build func() error) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	unlock, err := lockCache()
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := os.Stat(path); err == nil {
		return nil // made while we waited
	}
	return build()
}

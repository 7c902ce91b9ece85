//go:build linux

package image

import (
	"archive/tar"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"golang.org/x/sys/unix"
)

var testConfig = v1.Config{
	Entrypoint: []string{"/bin/app"},
	Cmd:        []string{"--serve"},
	Env:        []string{"PATH=/usr/bin:/bin", "APP=1"},
	WorkingDir: "/srv",
	User:       "1000:1000",
}

// A base layer and an upper layer that deletes and hides things in it.
func baseTar(t testing.TB) []byte {
	return mkTar(t,
		ent{name: "etc/", typ: tar.TypeDir},
		ent{name: "etc/os-release", body: "ID=test\n"},
		ent{name: "bin/", typ: tar.TypeDir},
		ent{name: "bin/app", body: "#!/bin/sh\necho app\n", mode: 0o755},
		ent{name: "old/", typ: tar.TypeDir},
		ent{name: "old/gone", body: "deleted by the upper layer"},
		ent{name: "cache/", typ: tar.TypeDir},
		ent{name: "cache/stale", body: "hidden by an opaque dir"},
	)
}

func upperTar(t testing.TB) []byte {
	return mkTar(t,
		ent{name: "old/.wh.gone"},
		ent{name: "cache/", typ: tar.TypeDir},
		ent{name: "cache/.wh..wh..opq"},
		ent{name: "cache/fresh", body: "new"},
		ent{name: "srv/", typ: tar.TypeDir, uid: 1000, gid: 1000},
	)
}

// checkImage verifies a stored two-layer test image, layer by layer.
func checkImage(t *testing.T, s *Store, img *Image, wantTags ...string) {
	t.Helper()
	if !reflect.DeepEqual(img.Config, Config{
		Entrypoint: testConfig.Entrypoint, Cmd: testConfig.Cmd, Env: testConfig.Env,
		WorkingDir: testConfig.WorkingDir, User: testConfig.User,
	}) {
		t.Errorf("config = %+v", img.Config)
	}
	if !reflect.DeepEqual(img.Tags, wantTags) && !(len(img.Tags) == 0 && len(wantTags) == 0) {
		t.Errorf("tags = %q, want %q", img.Tags, wantTags)
	}
	if !strings.HasPrefix(img.ID, "sha256:") || img.OS != "linux" || img.Architecture != runtime.GOARCH {
		t.Errorf("id %s os %s arch %s", img.ID, img.OS, img.Architecture)
	}
	want := []string{sha(baseTar(t)).String(), sha(upperTar(t)).String()}
	if !reflect.DeepEqual(img.DiffIDs, want) {
		t.Fatalf("diffIDs = %v, want %v", img.DiffIDs, want)
	}
	if img.Size <= 0 || !img.Created.Equal(testTime) {
		t.Errorf("size %d created %v", img.Size, img.Created)
	}
	got, err := s.Get(img.ID)
	if err != nil || !reflect.DeepEqual(got.Layers(), img.Layers()) {
		t.Fatalf("Get(%s) = %v, %v", img.ID, got, err)
	}
	layers := img.Layers()
	if len(layers) != 2 || layers[0] != filepath.Join(s.Root(), "layers/sha256", sha(baseTar(t)).Hex) {
		t.Fatalf("layers = %v", layers)
	}
	base, upper := layers[0], layers[1]
	if b, err := os.ReadFile(filepath.Join(base, "bin/app")); err != nil || string(b) != "#!/bin/sh\necho app\n" {
		t.Errorf("bin/app = %q, %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(base, "bin/app")); err != nil || fi.Mode().Perm() != 0o755 || !fi.ModTime().Equal(testTime) {
		t.Errorf("bin/app: %v %v", fi.Mode(), err)
	}
	if _, err := os.Stat(filepath.Join(base, "old/gone")); err != nil {
		t.Errorf("base layer lost old/gone: %v", err)
	}
	if os.Geteuid() != 0 {
		return
	}
	// An OCI whiteout becomes an overlayfs whiteout: a 0/0 char device.
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(upper, "old/gone"), &st); err != nil {
		t.Fatalf("whiteout: %v", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("whiteout mode %o rdev %d, want char 0/0", st.Mode, st.Rdev)
	}
	if _, err := os.Lstat(filepath.Join(upper, "old/.wh.gone")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf(".wh.gone kept: %v", err)
	}
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(filepath.Join(upper, "cache"), "user.overlay.opaque", buf)
	if err != nil || string(buf[:n]) != "y" {
		t.Errorf("cache opaque xattr = %q, %v", buf[:n], err)
	}
	if _, err := os.Lstat(filepath.Join(upper, "cache/.wh..wh..opq")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("opaque marker kept as a file: %v", err)
	}
	if err := unix.Lstat(filepath.Join(upper, "srv"), &st); err != nil || st.Uid != 1000 || st.Gid != 1000 {
		t.Errorf("srv owner %d:%d, %v", st.Uid, st.Gid, err)
	}
}

// plainTwoLayers is an image without whiteouts or owners: it imports
// without root.
func plainTwoLayers(t testing.TB) v1.Image {
	return buildImage(t, testConfig, gzLayer(t, baseTar(t)), plainLayer(mkTar(t,
		ent{name: "srv/", typ: tar.TypeDir},
		ent{name: "srv/index.html", body: "hello"},
	)))
}

func twoLayerImage(t testing.TB, c compression.Compression) v1.Image {
	mk := func(b []byte) testLayer {
		switch c {
		case compression.None:
			return plainLayer(b)
		case compression.ZStd:
			return zstdLayer(t, b)
		}
		return gzLayer(t, b)
	}
	return buildImage(t, testConfig, mk(baseTar(t)), mk(upperTar(t)))
}

func TestImportForms(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	for _, c := range []compression.Compression{compression.GZip, compression.ZStd, compression.None} {
		img := twoLayerImage(t, c)
		t.Run("docker-save/"+string(c), func(t *testing.T) {
			if c == compression.ZStd {
				t.Skip("docker save writes gzip or plain layers")
			}
			s := openStore(t)
			p := writeDockerSave(t, filepath.Join(t.TempDir(), "x.tar"), map[string]v1.Image{"example.com/app:1": img})
			imgs, err := s.Import(ctx, p, ImportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			checkImage(t, s, imgs[0], "example.com/app:1")
		})
		t.Run("oci-layout/"+string(c), func(t *testing.T) {
			s := openStore(t)
			dir := writeLayout(t, t.TempDir(), map[string]v1.Image{"example.com/app:1": img})
			imgs, err := s.Import(ctx, dir, ImportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			checkImage(t, s, imgs[0], "example.com/app:1")
			if d, _ := img.Digest(); imgs[0].Digest != d.String() {
				t.Errorf("digest %s, want %s", imgs[0].Digest, d)
			}
		})
		for _, outer := range []compression.Compression{compression.None, compression.GZip, compression.ZStd} {
			t.Run("oci-archive/"+string(c)+"/outer-"+string(outer), func(t *testing.T) {
				s := openStore(t)
				dir := writeLayout(t, t.TempDir(), map[string]v1.Image{"example.com/app:1": img})
				b := tarDir(t, dir)
				if outer != compression.None {
					b = compressed(t, b, outer)
				}
				p := writeFile(t, filepath.Join(t.TempDir(), "x.oci"), b)
				imgs, err := s.Import(ctx, p, ImportOptions{})
				if err != nil {
					t.Fatal(err)
				}
				checkImage(t, s, imgs[0], "example.com/app:1")
				if es := dirEntries(t, s.tmpDir()); len(es) != 0 {
					t.Errorf("tmp/ holds %v", es)
				}
			})
		}
	}
	t.Run("docker-save/outer-gzip", func(t *testing.T) {
		s := openStore(t)
		p := writeDockerSave(t, filepath.Join(t.TempDir(), "x.tar"), map[string]v1.Image{"app:1": twoLayerImage(t, compression.None)})
		b, _ := os.ReadFile(p)
		p = writeFile(t, p+".gz", gzipBytes(t, b))
		imgs, err := s.Import(ctx, p, ImportOptions{Tag: "other/app:2"})
		if err != nil {
			t.Fatal(err)
		}
		checkImage(t, s, imgs[0], "docker.io/other/app:2")
	})
}

// "docker save app | gzip | oak image import /dev/stdin": a pipe.
func TestImportFromPipe(t *testing.T) {
	requireRoot(t)
	s := openStore(t)
	p := writeDockerSave(t, filepath.Join(t.TempDir(), "x.tar"), map[string]v1.Image{"app:1": twoLayerImage(t, compression.GZip)})
	b, _ := os.ReadFile(p)
	fifo := filepath.Join(t.TempDir(), "pipe")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	go func() {
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		w.Write(gzipBytes(t, b))
		w.Close()
	}()
	imgs, err := s.Import(context.Background(), fifo, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkImage(t, s, imgs[0], "docker.io/library/app:1")
	if es := dirEntries(t, s.tmpDir()); len(es) != 0 {
		t.Errorf("tmp/ holds %v", es)
	}
}

func TestImportSeveralImagesAndDedupe(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	base := gzLayer(t, baseTar(t))
	a := buildImage(t, testConfig, base, gzLayer(t, mkTar(t, ent{name: "a", body: "a"})))
	b := buildImage(t, v1.Config{Cmd: []string{"b"}}, base, gzLayer(t, mkTar(t, ent{name: "b", body: "b"})))

	p := writeDockerSave(t, filepath.Join(t.TempDir(), "ab.tar"), map[string]v1.Image{"a:1": a, "b:1": b})
	imgs, err := s.Import(ctx, p, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 2 {
		t.Fatalf("%d images", len(imgs))
	}
	if imgs[0].Layers()[0] != imgs[1].Layers()[0] {
		t.Fatalf("base layer not shared: %v %v", imgs[0].Layers(), imgs[1].Layers())
	}
	if n := len(dirEntries(t, s.layersDir())); n != 3 {
		t.Errorf("%d layer directories, want 3", n)
	}
	ino := func(p string) uint64 {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	before := ino(imgs[0].Layers()[0])

	// The same base in a third image, from another format: not unpacked again.
	c := buildImage(t, v1.Config{}, base)
	imgsC, err := s.Import(ctx, writeLayout(t, t.TempDir(), map[string]v1.Image{"c:1": c}), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ino(imgsC[0].Layers()[0]) != before {
		t.Errorf("shared layer was unpacked again")
	}
	if imgsC[0].Tags[0] != "docker.io/library/c:1" {
		t.Errorf("tags %v", imgsC[0].Tags)
	}

	// Removing a and b keeps the base (c uses it) and drops their own layers.
	for _, ref := range []string{"a:1", "docker.io/library/b:1"} {
		if err := s.Remove(ref); err != nil {
			t.Fatal(err)
		}
	}
	if got := dirEntries(t, s.layersDir()); len(got) != 1 || got[0] != sha(baseTar(t)).Hex {
		t.Errorf("layers after rm: %v", got)
	}
	if err := s.Remove("c"); !errors.Is(err, ErrNotFound) {
		t.Errorf("rm c (c:latest) = %v, want not found", err)
	}
	if err := s.Remove("c:1"); err != nil {
		t.Fatal(err)
	}
	if got := dirEntries(t, s.layersDir()); len(got) != 0 {
		t.Errorf("layers after removing everything: %v", got)
	}
	if got := dirEntries(t, s.tmpDir()); len(got) != 0 {
		t.Errorf("tmp after removing everything: %v", got)
	}
	if l, _ := s.List(); len(l) != 0 {
		t.Errorf("List = %v", l)
	}
}

func TestGetTagsAndIDs(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	one := buildImage(t, v1.Config{Cmd: []string{"one"}})
	two := buildImage(t, v1.Config{Cmd: []string{"two"}})
	imgs, err := s.Import(ctx, writeLayout(t, t.TempDir(), map[string]v1.Image{"app:1": one, "docker.io/library/app:latest": one}), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || len(imgs[0].Tags) != 2 {
		t.Fatalf("one image with two tags expected: %+v", imgs)
	}
	id := imgs[0].ID
	for _, ref := range []string{"app", "app:latest", "library/app:1", "docker.io/library/app:1", "index.docker.io/library/app", id, id[:19], id[7:20]} {
		img, err := s.Get(ref)
		if err != nil || img.ID != id {
			t.Errorf("Get(%q) = %v, %v", ref, img, err)
		}
	}
	for _, ref := range []string{"", "nope", "sha256:00", "app:2"} {
		if _, err := s.Get(ref); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q) = %v, want ErrNotFound", ref, err)
		}
	}
	// Argv follows Docker: entrypoint, then args or Cmd.
	if got := imgs[0].Config.Argv(nil); !reflect.DeepEqual(got, []string{"one"}) {
		t.Errorf("Argv = %q", got)
	}

	// A tag moves to the image imported under it last.
	imgs2, err := s.Import(ctx, writeLayout(t, t.TempDir(), map[string]v1.Image{"app:1": two}), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img, _ := s.Get("app:1"); img.ID != imgs2[0].ID {
		t.Errorf("app:1 still names %s", img.ID)
	}
	if img, _ := s.Get(id); !reflect.DeepEqual(img.Tags, []string{"docker.io/library/app:latest"}) {
		t.Errorf("old image tags %v", img.Tags)
	}
	list, err := s.List()
	if err != nil || len(list) != 2 {
		t.Fatalf("List = %v, %v", list, err)
	}
	// Removing one of two tags untags; removing the last removes.
	if err := s.Remove("app:1"); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.List(); len(list) != 1 {
		t.Errorf("after rm app:1: %d images", len(list))
	}
	if err := s.Remove(id[7:15]); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.List(); len(list) != 0 {
		t.Errorf("after rm by id prefix: %d images", len(list))
	}
}

func TestImportMultiPlatformIndex(t *testing.T) {
	requireRoot(t)
	host := twoLayerImage(t, compression.GZip)
	other := buildImage(t, v1.Config{Cmd: []string{"other"}}, gzLayer(t, mkTar(t, ent{name: "x", body: "other arch"})))
	otherArch := "arm64"
	if runtime.GOARCH == "arm64" {
		otherArch = "amd64"
	}
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: other, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: otherArch}}},
		mutate.IndexAddendum{Add: host, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}},
	)
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"io.containerd.image.name": "example.com/multi:1"})); err != nil {
		t.Fatal(err)
	}
	s := openStore(t)
	imgs, err := s.Import(context.Background(), dir, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkImage(t, s, imgs[0], "example.com/multi:1")
}

func TestImportRefusesNonArchives(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	dir := t.TempDir()
	for _, p := range []string{
		dir, // a directory without oci-layout
		writeFile(t, filepath.Join(dir, "junk"), []byte("not a tar at all")),
		writeFile(t, filepath.Join(dir, "empty.tar"), mkTar(t, ent{name: "hello", body: "x"})),
		filepath.Join(dir, "missing"),
	} {
		if _, err := s.Import(ctx, p, ImportOptions{}); err == nil || !strings.Contains(err.Error(), "image import "+p) {
			t.Errorf("Import(%s) = %v", p, err)
		}
	}
}

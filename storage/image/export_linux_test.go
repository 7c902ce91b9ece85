package image

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// A layer directory written back as a tar says what the layer it was
// unpacked from said: owners, modes, links (a hard link once as a file,
// then as a link), FIFOs, and whiteouts and opaque directories as ".wh."
// entries again. Unpacking that tar gives the same directory.
func TestWriteLayerTarRoundTrip(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	if _, err := unpackInto(t, dir, mkTar(t,
		ent{name: "etc/", typ: tar.TypeDir, mode: 0o755},
		ent{name: "etc/msg", body: "hello", uid: 1000, gid: 1001, mode: 0o640, mtime: testTime},
		ent{name: "etc/.wh.gone"},
		ent{name: "opq/", typ: tar.TypeDir, mode: 0o700},
		ent{name: "opq/.wh..wh..opq"},
		ent{name: "opq/kept", body: "k"},
		ent{name: "bin/a", body: "binary", mode: 0o755},
		ent{name: "bin/b", typ: tar.TypeLink, link: "bin/a"},
		ent{name: "bin/sh", typ: tar.TypeSymlink, link: "a"},
		ent{name: "run/fifo", typ: tar.TypeFifo, mode: 0o620},
	)); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := writeLayerTar(&buf, dir); err != nil {
		t.Fatal(err)
	}
	got := map[string]*tar.Header{}
	tr := tar.NewReader(bytes.NewReader(buf.Bytes()))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h
	}
	for name, want := range map[string]func(h *tar.Header) bool{
		"etc/msg": func(h *tar.Header) bool {
			return h.Typeflag == tar.TypeReg && h.Size == 5 && h.Uid == 1000 && h.Gid == 1001 && h.Mode == 0o640 && h.ModTime.Equal(testTime)
		},
		"etc/.wh.gone":     func(h *tar.Header) bool { return h.Typeflag == tar.TypeReg && h.Size == 0 },
		"opq/":             func(h *tar.Header) bool { return h.Typeflag == tar.TypeDir && h.Mode == 0o700 },
		"opq/.wh..wh..opq": func(h *tar.Header) bool { return h.Typeflag == tar.TypeReg },
		"opq/kept":         func(h *tar.Header) bool { return h.Typeflag == tar.TypeReg },
		"bin/a":            func(h *tar.Header) bool { return h.Typeflag == tar.TypeReg && h.Mode == 0o755 },
		"bin/b":            func(h *tar.Header) bool { return h.Typeflag == tar.TypeLink && h.Linkname == "bin/a" },
		"bin/sh":           func(h *tar.Header) bool { return h.Typeflag == tar.TypeSymlink && h.Linkname == "a" },
		"run/fifo":         func(h *tar.Header) bool { return h.Typeflag == tar.TypeFifo && h.Mode == 0o620 },
	} {
		if h, ok := got[name]; !ok || !want(h) {
			t.Errorf("entry %s: %+v", name, h)
		}
	}
	if _, ok := got["etc/gone"]; ok {
		t.Errorf("the whiteout came back as a file of its own name")
	}

	again := t.TempDir()
	if _, err := unpackInto(t, again, buf.Bytes()); err != nil {
		t.Fatalf("unpacking the written tar: %v", err)
	}
	sameSnapshot(t, "layer unpacked, written, unpacked again", relSnapshot(t, dir), relSnapshot(t, again))
}

// Export writes a docker-save archive that go-containerregistry's reader
// (as docker load reads it) takes, with the image's tags and
// configuration, and that imports back into a store with the same files.
func TestExportImports(t *testing.T) {
	requireRoot(t)
	s := openStore(t)
	cfg := v1.Config{Entrypoint: []string{"/bin/sh"}, Cmd: []string{"-c", "x"}, Env: []string{"A=1"}, WorkingDir: "/w", User: "1:2"}
	img := buildImage(t, cfg,
		gzLayer(t, mkTar(t, ent{name: "a", body: "lower"}, ent{name: "gone", body: "x"})),
		gzLayer(t, mkTar(t, ent{name: "a", body: "upper"}, ent{name: ".wh.gone"})))
	in := writeDockerSave(t, filepath.Join(t.TempDir(), "in.tar"), map[string]v1.Image{"oak.test/x:1": img})
	if _, err := s.Import(context.Background(), in, ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	x, err := s.Exportable("oak.test/x:1")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out.tar")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Export(context.Background(), f, []*Exportable{x}); err != nil {
		t.Fatal(err)
	}
	f.Close()

	tag, _ := name.NewTag("oak.test/x:1")
	back, err := tarball.ImageFromPath(out, &tag)
	if err != nil {
		t.Fatalf("reading the saved archive: %v", err)
	}
	cf, err := back.ConfigFile()
	if err != nil || !slices.Equal(cf.Config.Entrypoint, cfg.Entrypoint) || !slices.Equal(cf.Config.Env, cfg.Env) ||
		cf.Config.WorkingDir != "/w" || cf.Config.User != "1:2" || len(cf.RootFS.DiffIDs) != 2 {
		t.Fatalf("saved config: %+v (%v)", cf, err)
	}

	s2 := openStore(t)
	imgs, err := s2.Import(context.Background(), out, ImportOptions{})
	if err != nil || len(imgs) != 1 || !slices.Equal(imgs[0].Tags, []string{"oak.test/x:1"}) {
		t.Fatalf("re-import: %v, %v", imgs, err)
	}
	orig, _ := s.Get("oak.test/x:1")
	for i, dir := range imgs[0].Layers() {
		sameSnapshot(t, "layer "+strconv.Itoa(i)+" saved and imported again", relSnapshot(t, orig.Layers()[i]), relSnapshot(t, dir))
	}
}

// relSnapshot is snapshot with paths relative to root, to compare two trees.
func relSnapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	rel := map[string]string{}
	for p, v := range snapshot(t, root) {
		rel[strings.TrimPrefix(p, root)] = v
	}
	return rel
}

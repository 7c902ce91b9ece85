//go:build linux

package image

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzUnpackLayer feeds arbitrary bytes to the layer unpacker as a layer
// blob (plain, gzip or zstd: it sniffs) whose diffID is the bytes' own
// digest. Whatever happens, nothing may appear or change outside the store
// root: not in the sentinel directory beside it (which relative escapes
// from the layer, "../../../sentinel", would reach), not anywhere else in
// the test's directory; and on error nothing is left in tmp/.
func FuzzUnpackLayer(f *testing.F) {
	for _, tc := range hostileCases() {
		f.Add(tc.layer(f, "/nonexistent-sentinel").blob)
	}
	f.Add(baseTar(f))
	f.Add(upperTar(f))
	f.Add(gzipBytes(f, mkTar(f,
		ent{name: "d/", typ: tar.TypeDir},
		ent{name: "d/f", body: "x"},
		ent{name: "d/l", typ: tar.TypeSymlink, link: relSentinel},
		ent{name: "h", typ: tar.TypeLink, link: "d/f"},
		ent{name: "d/.wh.f"},
	)))
	f.Add([]byte{})

	f.Add([]byte("\x02evil|" + relSentinel + "\x00\x00evil/pwned|x\x00\x03h|evil/secret"))
	f.Add([]byte("\x01d\x00\x00d/.wh.x\x00\x00d/.wh..wh..opq\x00\x02d/l|/etc\x00\x00d/l/x"))

	f.Fuzz(func(t *testing.T, data []byte) {
		// The bytes as a layer blob, and as a program of tar entries: the
		// first exercises the parsers, the second (archive/tar rejects most
		// mutated headers by their checksum) the unpacker behind them.
		checkUnpackContained(t, data)
		checkUnpackContained(t, entriesTar(t, data))
	})
}

// entriesTar turns fuzz bytes into a well-formed tar: NUL-separated
// records, each a type byte and "name|link".
func entriesTar(t *testing.T, data []byte) []byte {
	types := []byte{tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeFifo, tar.TypeChar, tar.TypeReg}
	var ents []ent
	for _, rec := range bytes.Split(data, []byte{0}) {
		if len(rec) < 2 || len(ents) == 64 {
			continue
		}
		name, link, _ := strings.Cut(string(rec[1:]), "|")
		e := ent{name: name, link: link, typ: types[int(rec[0])%len(types)], mode: int64(rec[0]) << 4}
		if e.typ == tar.TypeReg {
			e.body = link
		}
		ents = append(ents, e)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Size: int64(len(e.body)), Format: tar.FormatPAX}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if tw.WriteHeader(h) != nil {
			continue
		}
		tw.Write([]byte(e.body)[:h.Size])
	}
	tw.Close()
	return buf.Bytes()
}

func checkUnpackContained(t *testing.T, data []byte) {
	t.Helper()
	base := t.TempDir()
	sentinel := filepath.Join(base, "sentinel")
	os.MkdirAll(filepath.Join(sentinel, "sub"), 0o755)
	writeFile(t, filepath.Join(sentinel, "secret"), []byte("keep me"))
	root := filepath.Join(base, "store")
	s := &Store{root: root, Limits: Limits{MaxEntrySize: 1 << 20, MaxEntries: 1000, MaxLayerSize: 8 << 20, MaxID: 65535}}
	if err := os.MkdirAll(s.tmpDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, base, root)

	src := layerSource{
		diffID:     sha(data),
		size:       int64(len(data)),
		compressed: true,
		open:       func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
	}
	u, err := s.unpackLayer(context.Background(), "import", "fuzz", src, nil)

	sameSnapshot(t, "outside the store", before, snapshot(t, base, root))
	if es := dirEntries(t, root); len(es) != 1 || es[0] != "tmp" {
		t.Errorf("store root holds %v", es)
	}
	tmp := dirEntries(t, s.tmpDir())
	if err != nil {
		if len(tmp) != 0 {
			t.Errorf("failed unpack left %v in tmp/", tmp)
		}
		return
	}
	if len(tmp) != 1 || filepath.Dir(u.dir) != s.tmpDir() {
		t.Errorf("unpacked into %s, tmp/ holds %v", u.dir, tmp)
	}
	// Nothing in the layer is reached through a symlink: every
	// directory of the tree is a real directory below the layer root.
	real, err := filepath.EvalSymlinks(u.dir)
	if err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(real, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			t.Errorf("walk: %v", err)
			return nil
		}
		if rp, err := filepath.EvalSymlinks(filepath.Dir(p)); err == nil && rp != filepath.Dir(p) {
			t.Errorf("%s lies below a symlink (%s)", p, rp)
		}
		return nil
	})
	removeTree(u.dir)
}

//go:build linux

package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// hostileCase is one layer that must be refused.
type hostileCase struct {
	name   string
	layer  func(t testing.TB, sentinel string) testLayer
	entry  string // the entry the error must name; "" when it concerns the stream
	want   error  // errors.Is target; nil: any error
	limits func(*Limits)
}

// The store root is BASE/store, a layer unpacks in BASE/store/tmp/layer-*,
// so "../../../sentinel" from a layer root is BASE/sentinel.
const relSentinel = "../../../sentinel"

func plain(ents ...ent) func(testing.TB, string) testLayer {
	return func(t testing.TB, _ string) testLayer { return plainLayer(mkTar(t, ents...)) }
}

func hostileCases() []hostileCase {
	return []hostileCase{
		{name: "dotdot", layer: plain(ent{name: relSentinel + "/pwned", body: "x"}), entry: relSentinel + "/pwned", want: ErrEscape},
		{name: "dotdot-inside", layer: plain(ent{name: "a/../../../../sentinel/pwned", body: "x"}), entry: "a/../../../../sentinel/pwned", want: ErrEscape},
		{name: "dotdot-resolving-inside", layer: plain(ent{name: "a/../b", body: "x"}), entry: "a/../b", want: ErrEscape},
		{name: "absolute", layer: func(t testing.TB, s string) testLayer {
			return plainLayer(mkTar(t, ent{name: s + "/pwned", body: "x"}))
		}, entry: "<sentinel>/pwned", want: ErrEscape},
		{name: "symlink-absolute-then-file", layer: func(t testing.TB, s string) testLayer {
			return plainLayer(mkTar(t, ent{name: "evil", typ: tar.TypeSymlink, link: s}, ent{name: "evil/pwned", body: "x"}))
		}, entry: "evil/pwned", want: ErrSymlinkWrite},
		{name: "symlink-relative-then-file", layer: plain(
			ent{name: "evil", typ: tar.TypeSymlink, link: relSentinel},
			ent{name: "evil/pwned", body: "x"}), entry: "evil/pwned", want: ErrSymlinkWrite},
		{name: "symlink-then-dir", layer: plain(
			ent{name: "evil", typ: tar.TypeSymlink, link: relSentinel},
			ent{name: "evil/sub/", typ: tar.TypeDir}), entry: "evil/sub/", want: ErrSymlinkWrite},
		{name: "symlink-then-nested-file", layer: plain(
			ent{name: "d/", typ: tar.TypeDir},
			ent{name: "d/evil", typ: tar.TypeSymlink, link: "../" + relSentinel},
			ent{name: "d/evil/x/y", body: "x"}), entry: "d/evil/x/y", want: ErrSymlinkWrite},
		{name: "symlink-inside-then-file", layer: plain(
			ent{name: "real/", typ: tar.TypeDir},
			ent{name: "alias", typ: tar.TypeSymlink, link: "real"},
			ent{name: "alias/f", body: "x"}), entry: "alias/f", want: ErrSymlinkWrite},
		{name: "symlink-then-whiteout", layer: plain(
			ent{name: "evil", typ: tar.TypeSymlink, link: relSentinel},
			ent{name: "evil/.wh.secret"}), entry: "evil/.wh.secret", want: ErrSymlinkWrite},
		{name: "symlink-then-opaque", layer: plain(
			ent{name: "evil", typ: tar.TypeSymlink, link: relSentinel},
			ent{name: "evil/.wh..wh..opq"}), entry: "evil/.wh..wh..opq", want: ErrSymlinkWrite},
		{name: "symlink-then-hardlink-into", layer: plain(
			ent{name: "f", body: "x"},
			ent{name: "evil", typ: tar.TypeSymlink, link: relSentinel},
			ent{name: "evil/pwned", typ: tar.TypeLink, link: "f"}), entry: "evil/pwned", want: ErrSymlinkWrite},
		{name: "symlink-then-symlink-into", layer: plain(
			ent{name: "evil", typ: tar.TypeSymlink, link: relSentinel},
			ent{name: "evil/pwned", typ: tar.TypeSymlink, link: "/etc/shadow"}), entry: "evil/pwned", want: ErrSymlinkWrite},
		{name: "symlink-then-fifo", layer: plain(
			ent{name: "evil", typ: tar.TypeSymlink, link: relSentinel},
			ent{name: "evil/pwned", typ: tar.TypeFifo}), entry: "evil/pwned", want: ErrSymlinkWrite},
		{name: "hardlink-dotdot", layer: plain(ent{name: "h", typ: tar.TypeLink, link: relSentinel + "/secret"}), entry: "h", want: ErrEscape},
		{name: "hardlink-absolute", layer: func(t testing.TB, s string) testLayer {
			return plainLayer(mkTar(t, ent{name: "h", typ: tar.TypeLink, link: s + "/secret"}))
		}, entry: "h", want: ErrEscape},
		{name: "hardlink-through-symlink", layer: plain(
			ent{name: "s", typ: tar.TypeSymlink, link: relSentinel},
			ent{name: "h", typ: tar.TypeLink, link: "s/secret"}), entry: "h", want: ErrSymlinkWrite},
		{name: "hardlink-missing", layer: plain(ent{name: "h", typ: tar.TypeLink, link: "nothere"}), entry: "h", want: ErrBadEntry},
		{name: "hardlink-to-dir", layer: plain(ent{name: "d/", typ: tar.TypeDir}, ent{name: "h", typ: tar.TypeLink, link: "d"}), entry: "h", want: ErrBadEntry},
		{name: "absurd-size", layer: plain(ent{name: "big", size: 1 << 40, body: "only this"}), entry: "big", want: ErrLimit},
		{name: "entry-over-limit", layer: plain(ent{name: "big", body: strings.Repeat("x", 4096)}), entry: "big", want: ErrLimit,
			limits: func(l *Limits) { l.MaxEntrySize = 1024 }},
		{name: "too-many-entries", layer: func(t testing.TB, _ string) testLayer {
			var ents []ent
			for i := 0; i < 12; i++ {
				ents = append(ents, ent{name: fmt.Sprintf("f%d", i)})
			}
			return plainLayer(mkTar(t, ents...))
		}, entry: "f9", want: ErrLimit, limits: func(l *Limits) { l.MaxEntries = 9 }}, // the base layer has 8
		{name: "layer-over-limit", layer: plain(ent{name: "a", body: strings.Repeat("x", 64<<10)}), want: ErrLimit,
			limits: func(l *Limits) { l.MaxLayerSize = 48 << 10 }}, // the base layer is smaller
		{name: "uid-too-large", layer: plain(ent{name: "f", uid: 70000}), entry: "f", want: ErrLimit},
		{name: "gid-negative", layer: plain(ent{name: "f", gid: -1}), entry: "f", want: ErrLimit},
		{name: "whiteout-dotdot", layer: plain(ent{name: ".wh..."}), entry: ".wh...", want: ErrBadEntry},
		{name: "whiteout-empty", layer: plain(ent{name: "d/.wh."}), entry: "d/.wh.", want: ErrBadEntry},
		{name: "whiteout-as-dir", layer: plain(ent{name: ".wh.x/y"}), entry: ".wh.x/y", want: ErrBadEntry},
		{name: "name-too-long", layer: plain(ent{name: strings.Repeat("a/", 2100) + "f"}), entry: strings.Repeat("a/", 2100) + "f", want: ErrBadEntry},
		{name: "root-as-file", layer: plain(ent{name: ".", typ: tar.TypeReg}), entry: ".", want: ErrBadEntry},
		{name: "truncated-gzip", layer: func(t testing.TB, _ string) testLayer {
			tb := mkTar(t, ent{name: "a", body: strings.Repeat("abc", 10000)}, ent{name: "b", body: "b"})
			gz := gzipBytes(t, tb)
			return testLayer{gz[:len(gz)/2], types.OCILayer, sha(tb)}
		}},
		{name: "truncated-gzip-trailer", layer: func(t testing.TB, _ string) testLayer {
			tb := mkTar(t, ent{name: "a", body: "abc"})
			gz := gzipBytes(t, tb)
			return testLayer{gz[:len(gz)-4], types.OCILayer, sha(tb)}
		}},
		{name: "corrupted-gzip", layer: func(t testing.TB, _ string) testLayer {
			tb := mkTar(t, ent{name: "a", body: strings.Repeat("abcdefgh", 5000)})
			gz := gzipBytes(t, tb)
			for i := len(gz) / 3; i < len(gz)/3+16; i++ {
				gz[i] ^= 0x5a
			}
			return testLayer{gz, types.OCILayer, sha(tb)}
		}},
		{name: "corrupted-gzip-checksum", layer: func(t testing.TB, _ string) testLayer {
			tb := mkTar(t, ent{name: "a", body: "abc"})
			gz := gzipBytes(t, tb)
			gz[len(gz)-6] ^= 0xff // the CRC-32 in the trailer
			return testLayer{gz, types.OCILayer, sha(tb)}
		}},
		{name: "not-gzip-at-all", layer: func(t testing.TB, _ string) testLayer {
			junk := bytes.Repeat([]byte{0x1f, 0x8b, 0x08, 0xff}, 64)
			return testLayer{junk, types.OCILayer, sha(junk)}
		}},
		{name: "diffid-mismatch", layer: func(t testing.TB, _ string) testLayer {
			l := gzLayer(t, mkTar(t, ent{name: "a", body: "what the config does not say"}))
			l.diffID = sha([]byte("something else"))
			return l
		}, want: ErrDigest},
		{name: "trailing-garbage", layer: func(t testing.TB, _ string) testLayer {
			tb := mkTar(t, ent{name: "a", body: "a"})
			return testLayer{append(append([]byte(nil), tb...), "garbage after the end"...), types.OCIUncompressedLayer, sha(tb)}
		}, want: ErrDigest},
	}
}

// TestHostileLayers imports each hostile layer, above a harmless base
// layer, and checks that the import fails naming image, layer and entry,
// and that nothing changed outside the store, nothing of the image is
// stored, and tmp/ is empty.
func TestHostileLayers(t *testing.T) {
	for _, tc := range hostileCases() {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			sentinel := filepath.Join(base, "sentinel")
			os.MkdirAll(filepath.Join(sentinel, "sub"), 0o755)
			writeFile(t, filepath.Join(sentinel, "secret"), []byte("keep me"))
			s, err := Open(filepath.Join(base, "store"))
			if err != nil {
				t.Fatal(err)
			}
			if tc.limits != nil {
				tc.limits(&s.Limits)
			}
			bad := tc.layer(t, sentinel)
			good := gzLayer(t, baseTar(t))
			if len(baseTar(t)) > 48<<10 {
				t.Fatal("the base layer must pass the limits the cases set")
			}
			img := buildImage(t, testConfig, good, bad)
			in := writeLayout(t, filepath.Join(base, "in"), map[string]v1.Image{"example.com/hostile:1": img})

			outside := snapshot(t, base, s.Root())
			_, err = s.Import(context.Background(), in, ImportOptions{})
			if err == nil {
				t.Fatal("import succeeded")
			}
			t.Log(err)
			msg := err.Error()
			if !strings.Contains(msg, "image import "+in+" (example.com/hostile:1): layer "+bad.diffID.String()+": ") {
				t.Errorf("error does not name the image and layer: %v", err)
			}
			entry := strings.ReplaceAll(tc.entry, "<sentinel>", sentinel)
			if entry != "" && !strings.Contains(msg, fmt.Sprintf("entry %q: ", entry)) {
				t.Errorf("error does not name entry %q: %v", entry, err)
			}
			var le *LayerError
			if !errors.As(err, &le) || le.Layer != bad.diffID.String() {
				t.Errorf("not a LayerError for %s: %#v", bad.diffID, err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error is not %v", tc.want)
			}
			checkNothingStored(t, s, base, outside)
		})
	}
}

// checkNothingStored: no record, no layer directory, tmp/ empty, and the
// rest of base exactly as before.
func checkNothingStored(t *testing.T, s *Store, base string, outside map[string]string) {
	t.Helper()
	sameSnapshot(t, "outside the store", outside, snapshot(t, base, s.Root()))
	if l, err := s.List(); err != nil || len(l) != 0 {
		t.Errorf("List = %v, %v", l, err)
	}
	if es := dirEntries(t, s.layersDir()); len(es) != 0 {
		t.Errorf("layer directories left: %v", es)
	}
	if es := dirEntries(t, s.tmpDir()); len(es) != 0 {
		t.Errorf("tmp/ not empty: %v", es)
	}
	if es := dirEntries(t, s.Root()); len(es) != 3 {
		t.Errorf("store root holds %v", es)
	}
}

// A hostile layer in a docker-save archive (no blob digests there) is
// refused the same way.
func TestHostileDockerSave(t *testing.T) {
	base := t.TempDir()
	os.MkdirAll(filepath.Join(base, "sentinel"), 0o755)
	s, err := Open(filepath.Join(base, "store"))
	if err != nil {
		t.Fatal(err)
	}
	bad := plainLayer(mkTar(t, ent{name: "evil", typ: tar.TypeSymlink, link: relSentinel}, ent{name: "evil/pwned", body: "x"}))
	in := writeDockerSave(t, filepath.Join(base, "in.tar"), map[string]v1.Image{"hostile:1": buildImage(t, v1.Config{}, bad)})
	outside := snapshot(t, base, s.Root())
	_, err = s.Import(context.Background(), in, ImportOptions{})
	want := fmt.Sprintf(`image import %s (docker.io/library/hostile:1): layer %s: entry "evil/pwned": `, in, bad.diffID)
	if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, ErrSymlinkWrite) {
		t.Fatalf("err = %v\nwant prefix %s", err, want)
	}
	checkNothingStored(t, s, base, outside)
}

// A layout whose blob was swapped for another, valid compression of the
// same tar: the diffID still matches, the blob digest does not.
func TestBlobDigestMismatch(t *testing.T) {
	base := t.TempDir()
	s, err := Open(filepath.Join(base, "store"))
	if err != nil {
		t.Fatal(err)
	}
	tb := mkTar(t, ent{name: "a", body: strings.Repeat("a", 1000)})
	l := gzLayer(t, tb)
	in := writeLayout(t, filepath.Join(base, "in"), map[string]v1.Image{"x:1": buildImage(t, v1.Config{}, l)})
	var other bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&other, gzip.BestCompression)
	zw.Write(tb)
	zw.Close()
	writeFile(t, filepath.Join(in, "blobs/sha256", sha(l.blob).Hex), other.Bytes())
	outside := snapshot(t, base, s.Root())
	_, err = s.Import(context.Background(), in, ImportOptions{})
	if !errors.Is(err, ErrDigest) || !strings.Contains(err.Error(), "blob is sha256:") {
		t.Fatalf("err = %v", err)
	}
	checkNothingStored(t, s, base, outside)
}

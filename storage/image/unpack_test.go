//go:build linux

package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func unpackInto(t *testing.T, dir string, b []byte) (unpackStats, error) {
	t.Helper()
	w, err := newLayerWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	st, err := unpackTar(context.Background(), bytes.NewReader(b), w, DefaultLimits)
	if err == nil {
		err = w.Finish()
	}
	return st, err
}

func lstat(t *testing.T, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestUnpackSemantics checks what a layer directory holds for each kind
// of entry: modes (set-id bits stripped), owners, times, links, FIFOs,
// implicit directories, and later entries replacing earlier ones.
func TestUnpackSemantics(t *testing.T) {
	requireRoot(t)
	dirTime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	dir := t.TempDir()
	st, err := unpackInto(t, dir, mkTar(t,
		ent{name: "./", typ: tar.TypeDir, mode: 0o755},
		ent{name: "usr/bin/passwd", body: "suid", mode: 0o4755},
		ent{name: "usr/bin/wall", body: "sgid", mode: 0o2755, gid: 5},
		ent{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		ent{name: "var/mail/", typ: tar.TypeDir, mode: 0o2775, gid: 8, mtime: dirTime},
		ent{name: "var/mail/x", body: "x", uid: 65535, gid: 65534},
		ent{name: "etc/localtime", typ: tar.TypeSymlink, link: "/usr/share/zoneinfo/UTC", uid: 7, gid: 7},
		ent{name: "up", typ: tar.TypeSymlink, link: "../../../.."},
		ent{name: "usr/bin/hard", typ: tar.TypeLink, link: "usr/bin/passwd"},
		ent{name: "run/fifo", typ: tar.TypeFifo, mode: 0o620},
		ent{name: "replace/", typ: tar.TypeDir},
		ent{name: "replace/inner", body: "gone"},
		ent{name: "replace", body: "a file now"},
		ent{name: "link-then-file", typ: tar.TypeSymlink, link: "/etc/passwd"},
		ent{name: "link-then-file", body: "written in place of the link, not through it"},
		ent{name: "file-then-dir", body: "x"},
		ent{name: "file-then-dir/", typ: tar.TypeDir},
		ent{name: "dup", body: "one"},
		ent{name: "dup", body: "two"},
		ent{name: ".wh..wh.plnk/", typ: tar.TypeDir},
		ent{name: "forged", body: "x", pax: map[string]string{"SCHILY.xattr.trusted.overlay.opaque": "y", "SCHILY.xattr.user.overlay.opaque": "y", "SCHILY.xattr.security.capability": "x"}},
	))
	if err != nil {
		t.Fatal(err)
	}
	if st.strippedSetID != 2 {
		t.Errorf("stripped %d set-id bits, want 2", st.strippedSetID)
	}
	mode := func(p string) uint32 { return lstat(t, filepath.Join(dir, p)).Mode }
	for p, want := range map[string]uint32{
		"":               unix.S_IFDIR | 0o755,
		"usr":            unix.S_IFDIR | 0o755, // implicit
		"usr/bin/passwd": unix.S_IFREG | 0o755, // setuid stripped
		"usr/bin/wall":   unix.S_IFREG | 0o755, // setgid stripped
		"tmp":            unix.S_IFDIR | 0o1777,
		"var/mail":       unix.S_IFDIR | 0o2775, // a directory keeps setgid
		"etc/localtime":  unix.S_IFLNK | 0o777,
		"run/fifo":       unix.S_IFIFO | 0o620,
		"replace":        unix.S_IFREG | 0o644,
		"link-then-file": unix.S_IFREG | 0o644,
		"file-then-dir":  unix.S_IFDIR | 0o755,
	} {
		if got := mode(p); got != want {
			t.Errorf("%q: mode %o, want %o", p, got, want)
		}
	}
	if s := lstat(t, filepath.Join(dir, "var/mail/x")); s.Uid != 65535 || s.Gid != 65534 {
		t.Errorf("var/mail/x owner %d:%d", s.Uid, s.Gid)
	}
	if s := lstat(t, filepath.Join(dir, "etc/localtime")); s.Uid != 7 || s.Gid != 7 {
		t.Errorf("symlink owner %d:%d", s.Uid, s.Gid)
	}
	if s := lstat(t, filepath.Join(dir, "usr/bin/wall")); s.Gid != 5 {
		t.Errorf("wall group %d", s.Gid)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "var/mail")); err != nil || !fi.ModTime().Equal(dirTime) {
		t.Errorf("var/mail mtime %v, want %v (%v)", fi.ModTime(), dirTime, err)
	}
	if fi, _ := os.Lstat(filepath.Join(dir, "etc/localtime")); !fi.ModTime().Equal(testTime) {
		t.Errorf("symlink mtime %v", fi.ModTime())
	}
	for p, want := range map[string]string{"etc/localtime": "/usr/share/zoneinfo/UTC", "up": "../../../.."} {
		if got, err := os.Readlink(filepath.Join(dir, p)); got != want {
			t.Errorf("%s -> %q (%v), want %q", p, got, err, want)
		}
	}
	if a, b := lstat(t, filepath.Join(dir, "usr/bin/hard")), lstat(t, filepath.Join(dir, "usr/bin/passwd")); a.Ino != b.Ino || a.Nlink != 2 {
		t.Errorf("hardlink: inodes %d %d nlink %d", a.Ino, b.Ino, a.Nlink)
	}
	for p, want := range map[string]string{"replace": "a file now", "dup": "two", "link-then-file": "written in place of the link, not through it"} {
		if b, err := os.ReadFile(filepath.Join(dir, p)); string(b) != want {
			t.Errorf("%s = %q, %v", p, b, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, ".wh..wh.plnk")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("AUFS metadata kept: %v", err)
	}
	buf := make([]byte, 64)
	for _, x := range []string{"trusted.overlay.opaque", "user.overlay.opaque", "security.capability"} {
		if _, err := unix.Lgetxattr(filepath.Join(dir, "forged"), x, buf); err == nil {
			t.Errorf("xattr %s from the tar was applied", x)
		}
	}
}

func TestCleanEntryName(t *testing.T) {
	for in, want := range map[string]string{
		"a":        "a",
		"./a/b/":   "a/b",
		"a//b/./c": "a/b/c",
		".":        "",
		"./":       "",
	} {
		if got, err := cleanEntryName(in); err != nil || got != want {
			t.Errorf("cleanEntryName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "/a", "/", "..", "../a", "a/..", "a/../b", "./../a"} {
		if got, err := cleanEntryName(in); err == nil {
			t.Errorf("cleanEntryName(%q) = %q, want an error", in, got)
		}
	}
	if _, err := cleanEntryName("/etc/passwd"); !errors.Is(err, ErrEscape) || !strings.Contains(err.Error(), "absolute") {
		t.Errorf("absolute path error: %v", err)
	}
}

// Device nodes in a layer are left out, counted, and the rest of the layer
// is unpacked: a container could not use them (docker does the same).
func TestUnpackLeavesOutDevices(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	st, err := unpackInto(t, dir, mkTar(t,
		ent{name: "dev/", typ: tar.TypeDir, mode: 0o755},
		ent{name: "dev/null", typ: tar.TypeChar, major: 1, minor: 3},
		ent{name: "dev/sda", typ: tar.TypeBlock, major: 8},
		ent{name: "fake-whiteout", typ: tar.TypeChar},
		ent{name: "etc/kept", body: "kept"},
	))
	if err != nil {
		t.Fatalf("a layer with device nodes: %v", err)
	}
	if st.devices != 3 || !strings.HasPrefix(st.firstDevice, "dev/null: ") || !strings.Contains(st.firstDevice, "character device 1,3") {
		t.Errorf("devices = %d, first %q; want 3, dev/null character device 1,3", st.devices, st.firstDevice)
	}
	for _, n := range []string{"dev/null", "dev/sda", "fake-whiteout"} {
		if _, err := os.Lstat(filepath.Join(dir, n)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: left out, but Lstat says %v", n, err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "etc/kept")); err != nil || string(b) != "kept" {
		t.Errorf("etc/kept after the devices: %q, %v", b, err)
	}
}

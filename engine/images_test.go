package engine

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestRenamePath(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"open /input: permission denied", "open /tmp/a.tar: permission denied"},
		{"image import /input: lstat /input/blobs/sha256/ab: no such file", "image import /tmp/a.tar: lstat /tmp/a.tar/blobs/sha256/ab: no such file"},
		{`entry "/input"`, `entry "/tmp/a.tar"`},
		{"/input", "/tmp/a.tar"},
		{"/var/input: x /inputs /input.d /x/input", "/var/input: x /inputs /input.d /x/input"},
		{"nothing to see", "nothing to see"},
	} {
		if got := renamePath(c.in, "/input", "/tmp/a.tar"); got != c.want {
			t.Errorf("renamePath(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// An input the storage service cannot read is refused before it starts.
func TestImportable(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a.tar")
	fifo := filepath.Join(dir, "fifo")
	layout := filepath.Join(dir, "layout")
	plain := filepath.Join(dir, "plain")
	os.WriteFile(file, []byte("x"), 0o600)
	syscall.Mkfifo(fifo, 0o600)
	os.MkdirAll(layout, 0o700)
	os.WriteFile(filepath.Join(layout, "oci-layout"), []byte("{}"), 0o600)
	os.MkdirAll(plain, 0o700)
	for _, c := range []struct {
		path string
		want string // "" for accepted
	}{
		{file, ""},
		{layout, ""},
		{"/dev/zero", "character device"},
		{fifo, "pipe"},
		{plain, "OCI image layout"},
	} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		err = importable(c.path, fi)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("importable(%s) = %v, want %q", c.path, err, c.want)
		}
	}
}

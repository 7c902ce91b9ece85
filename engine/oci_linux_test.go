package engine

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestSplitEscaped(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{`lowerdir=/a:/b,upperdir=/u`, []string{"lowerdir=/a:/b", "upperdir=/u"}},
		{`lowerdir=/a\,b:/c,workdir=/w`, []string{"lowerdir=/a,b:/c", "workdir=/w"}},
		{``, []string{""}},
	} {
		if got := splitEscaped(c.in, ','); !slices.Equal(got, c.want) {
			t.Errorf("splitEscaped(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := unescapeMountinfo(`/a\040b/c`); got != "/a b/c" {
		t.Errorf("unescape: %q", got)
	}
}

// A masked directory gets a tmpfs, a masked file an empty file, read-only
// paths are resolved in the root; what lies inside a masked directory,
// what the image lacks and what a link leads into Oak's own file systems
// need nothing.
func TestMaskIn(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"etc/keys/sub", "srv"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"etc/shadow", "etc/keys/k", "srv/f"} {
		if err := os.WriteFile(filepath.Join(root, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{"etc/toproc": "/proc/kcore", "link-to-srv": "/srv"} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	c := &OCIContainer{RootFS: root, Tmpfs: []string{"/run"},
		MaskedPaths:   []string{"/etc/keys", "/etc/keys/sub", "/etc/keys/k", "/etc/shadow", "/etc/toproc", "/nothing", "/link-to-srv/f"},
		ReadOnlyPaths: []string{"/srv", "/link-to-srv", "/etc/keys/sub", "/etc/toproc", "/nothing"}}
	if err := maskIn(c); err != nil {
		t.Fatal(err)
	}
	if want := []string{"/run", "/etc/keys"}; !slices.Equal(c.Tmpfs, want) {
		t.Errorf("tmpfs %q, want %q", c.Tmpfs, want)
	}
	if want := []string{"/etc/shadow", "/srv/f"}; !slices.Equal(c.MaskFiles, want) {
		t.Errorf("masked files %q, want %q", c.MaskFiles, want)
	}
	if want := []string{"/srv"}; !slices.Equal(c.ReadOnlyPaths, want) {
		t.Errorf("read-only paths %q, want %q", c.ReadOnlyPaths, want)
	}
}

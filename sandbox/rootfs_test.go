package sandbox

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// image builds a small root in a temporary directory: files map a path to
// its content, links a path to its link text.
func image(t *testing.T, files map[string]string, links map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, body := range files {
		full := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, target := range links {
		full := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.Symlink(target, full); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestCheckRootFS(t *testing.T) {
	good := image(t, nil, map[string]string{"bin": "usr/bin", "lib": "/usr/lib"})
	if err := CheckRootFS(good); err != nil {
		t.Errorf("CheckRootFS(good) = %v", err)
	}
	escape := image(t, nil, map[string]string{"bin": "../../../usr/bin"})
	if err := CheckRootFS(escape); !errors.Is(err, ErrEscape) {
		t.Errorf("CheckRootFS(/bin -> ../../../usr/bin) = %v, want ErrEscape", err)
	}
	if err := CheckRootFS(filepath.Join(good, "missing")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("CheckRootFS(missing) = %v", err)
	}
}

func TestClimbsOut(t *testing.T) {
	for _, c := range []struct {
		dir, target string
		want        bool
	}{
		{"/", "usr/bin", false}, {"/", "../x", true}, {"/usr", "../bin", false},
		{"/usr", "../../bin", true}, {"/a/b", "c/../../../../x", true}, {"/a/b", "c/../../../x", false}, {"/a/b", "./../../x", false},
	} {
		if got := climbsOut(c.dir, c.target); got != c.want {
			t.Errorf("climbsOut(%q, %q) = %v", c.dir, c.target, got)
		}
	}
}

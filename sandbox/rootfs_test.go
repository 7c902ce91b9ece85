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

// LstatIn follows links inside the root only and refuses a relative link
// that climbs out of it.
func TestLstatIn(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc/keys"), 0o755); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"abs": "/etc/keys", "out": "../../../etc"} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	r, fi, err := LstatIn(root, "/abs")
	if err != nil || r != "/etc/keys" || !fi.IsDir() {
		t.Errorf("LstatIn(/abs) = %q, %v, %v; want /etc/keys, a directory", r, fi, err)
	}
	if _, _, err := LstatIn(root, "/etc/none"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LstatIn(/etc/none): %v, want not exist", err)
	}
	if _, _, err := LstatIn(root, "/out/passwd"); !errors.Is(err, ErrEscape) {
		t.Errorf("LstatIn(/out/passwd): %v, want ErrEscape", err)
	}
}

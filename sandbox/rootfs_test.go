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
	for _, d := range requiredDirs {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
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

func TestLookPath(t *testing.T) {
	root := image(t, map[string]string{"usr/bin/busybox": "x", "opt/app/run": "x", "etc/data": "x"},
		map[string]string{"bin": "usr/bin", "usr/bin/sh": "busybox", "usr/bin/abs": "/usr/bin/busybox",
			"usr/bin/out": "../../../../etc/passwd", "usr/bin/loop": "loop"})
	os.Chmod(filepath.Join(root, "etc/data"), 0o644)
	for _, c := range []struct {
		name, cwd, want, err string
	}{
		{"sh", "/", "/usr/bin/sh", ""},
		{"/bin/sh", "/tmp", "/bin/sh", ""},
		{"abs", "/", "/usr/bin/abs", ""},
		{"./run", "/opt/app", "/opt/app/run", ""},
		{"app/run", "/opt", "/opt/app/run", ""},
		{"nosuch", "/", "", "not found"},
		{"/etc/data", "/", "", "not executable"},
		{"out", "/", "", "escapes the root"},
		{"loop", "/", "", "not found"},
	} {
		got, err := LookPath(root, c.name, c.cwd, "/usr/local/bin:/usr/bin:/bin")
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("LookPath(%q in %s) = %q, %v; want error %q", c.name, c.cwd, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("LookPath(%q in %s) = %q, %v; want %q", c.name, c.cwd, got, err, c.want)
		}
	}
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
	noproc := t.TempDir()
	os.Mkdir(filepath.Join(noproc, "dev"), 0o755)
	os.Mkdir(filepath.Join(noproc, "tmp"), 0o755)
	if err := CheckRootFS(noproc); err == nil || !strings.Contains(err.Error(), "/proc") {
		t.Errorf("CheckRootFS(without /proc) = %v", err)
	}
	linked := image(t, nil, nil)
	os.Remove(filepath.Join(linked, "tmp"))
	os.Symlink("/", filepath.Join(linked, "tmp"))
	if err := CheckRootFS(linked); err == nil || !strings.Contains(err.Error(), "/tmp") {
		t.Errorf("CheckRootFS(/tmp a link) = %v", err)
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

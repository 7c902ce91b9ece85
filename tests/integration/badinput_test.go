//go:build linux

package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Bad input makes oak exit non-zero with one line on stderr that names
// the input, and leaves nothing under the state root's containers/.
func TestBadInput(t *testing.T) {
	needOak(t, true)

	base := t.TempDir()
	os.Chmod(base, 0o755)
	// mkImage makes a minimal image whose /bin is the symlink link.
	mkImage := func(name, link string) string {
		dir := filepath.Join(base, name)
		for _, d := range []string{"proc", "dev", "tmp", "etc"} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Symlink(link, filepath.Join(dir, "bin")); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	absLink := mkImage("abs-bin", "/usr/bin")
	relLink := mkImage("rel-bin", "../../../../../../../../usr/bin")
	// An image whose /bin/sh points at the host's shell by absolute path.
	shLink := filepath.Join(base, "sh-link")
	for _, d := range []string{"proc", "dev", "tmp", "etc", "bin"} {
		os.MkdirAll(filepath.Join(shLink, d), 0o755)
	}
	os.Symlink("/usr/bin/bash", filepath.Join(shLink, "bin", "sh"))
	notDir := filepath.Join(base, "file")
	os.WriteFile(notDir, []byte("not an image\n"), 0o644)
	missing := filepath.Join(base, "no-such-rootfs")

	cases := []struct {
		name    string
		args    []string
		mention []string // the stderr line must contain one of these
	}{
		{"missing rootfs", []string{"run", missing, "/bin/sh", "-c", "echo ESCAPED"}, []string{missing}},
		{"rootfs is a file", []string{"run", notDir, "/bin/sh", "-c", "echo ESCAPED"}, []string{notDir}},
		{"bin absolute link out", []string{"run", absLink, "/bin/sh", "-c", "echo ESCAPED"}, []string{"bin"}},
		{"bin relative link out", []string{"run", relLink, "/bin/sh", "-c", "echo ESCAPED"}, []string{"bin"}},
		{"bin link out, PATH lookup", []string{"run", absLink, "sh", "-c", "echo ESCAPED"}, []string{"bin", "sh"}},
		{"sh links to host shell", []string{"run", shLink, "/bin/sh", "-c", "echo ESCAPED"}, []string{"/bin/sh", "bash"}},
		{"nonexistent command", []string{"run", rootfsDir, "/bin/oak-no-such-cmd"}, []string{"oak-no-such-cmd"}},
		{"nonexistent command in PATH", []string{"run", rootfsDir, "oak-no-such-cmd"}, []string{"oak-no-such-cmd"}},
		{"command is a directory", []string{"run", rootfsDir, "/etc"}, []string{"/etc"}},
		{"bad --memory", []string{"run", "--memory", "12zz", rootfsDir, "/bin/true"}, []string{"12zz"}},
		{"bad --pids", []string{"run", "--pids", "lots", rootfsDir, "/bin/true"}, []string{"lots"}},
		{"bad --cpus", []string{"run", "--cpus", "half", rootfsDir, "/bin/true"}, []string{"half"}},
		{"bad --tmpfs-size", []string{"run", "--tmpfs-size", "9qq", rootfsDir, "/bin/true"}, []string{"9qq"}},
		{"unknown flag", []string{"run", "--oak-bogus-flag", rootfsDir, "/bin/true"}, []string{"oak-bogus-flag"}},
		{"unknown flag -d", []string{"run", "-d", "--oak-bogus-flag", rootfsDir, "/bin/true"}, []string{"oak-bogus-flag"}},
		{"missing rootfs -d", []string{"run", "-d", missing, "/bin/true"}, []string{missing}},
		{"nonexistent command -d", []string{"run", "-d", rootfsDir, "/bin/oak-no-such-cmd"}, []string{"oak-no-such-cmd"}},
		{"kill unknown", []string{"kill", "oak-nobody"}, []string{"oak-nobody"}},
		{"rm unknown", []string{"rm", "oak-nobody"}, []string{"oak-nobody"}},
		{"logs unknown", []string{"logs", "oak-nobody"}, []string{"oak-nobody"}},
		{"name with a newline", []string{"run", "--name", "x\noak-forged-row", rootfsDir, "/bin/true"}, []string{`"x\noak-forged-row"`}},
		{"name with a slash", []string{"run", "--name", "../x", rootfsDir, "/bin/true"}, []string{`"../x"`}},
		{"name with a space", []string{"run", "--name", "a b", rootfsDir, "/bin/true"}, []string{`"a b"`}},
		{"name like a flag", []string{"run", "--name", "-rf", rootfsDir, "/bin/true"}, []string{`"-rf"`}},
		{"name too long", []string{"run", "--name", strings.Repeat("n", 300), rootfsDir, "/bin/true"}, []string{strings.Repeat("n", 300)}},
		{"kill bad signal", []string{"kill", "-s", "SIGNOPE", "oak-nobody"}, []string{"SIGNOPE", "oak-nobody"}},
	}
	for _, c := range cases {
		c := c
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			o := newOak(t)
			r := o.run(c.args...)
			if r.code == 0 || r.code < 0 {
				t.Errorf("want a non-zero exit status from oak\n%s", r)
			}
			if strings.Contains(r.stdout, "ESCAPED") {
				t.Errorf("a host shell ran\n%s", r)
			}
			msg := strings.TrimRight(r.stderr, "\n")
			if msg == "" || strings.Contains(msg, "\n") {
				t.Errorf("want exactly one line on stderr\n%s", r)
			}
			named := false
			for _, m := range c.mention {
				named = named || strings.Contains(msg, m)
			}
			if !named {
				t.Errorf("the error line does not name the input (%s)\n%s", strings.Join(c.mention, " or "), r)
			}
			if ds := o.containerDirs(); len(ds) != 0 {
				t.Errorf("containers/ holds %v after a failed oak %s", ds, c.args[0])
			}
		})
	}
}

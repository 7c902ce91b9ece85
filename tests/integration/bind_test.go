//go:build linux

package integration

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A host directory granted with -v /DIR:/PATH is the container's to read
// and write, with its root standing for the directory's owner: what it
// makes there is the owner's on the host, a setuid file it makes is not
// root's, it cannot give a file away to another host id, :ro holds, and
// trees no container may hold are refused with the reason.
func TestBindMounts(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	dir := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Dir(dir), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "from-host"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, filepath.Join(dir, "from-host")} {
		if err := os.Chown(p, 1234, 1235); err != nil {
			t.Fatal(err)
		}
	}
	r := o.run("run", "--rm", "-v", dir+":/data", rootfsDir, "/bin/sh", "-c",
		"stat -c '%u:%g' /data/from-host; cat /data/from-host; echo mine > /data/made; "+
			"cp /bin/busybox /data/suid && chmod 4755 /data/suid; chown 77 /data/made 2>&1 | grep -c 'Value too large'")
	if r.code != 0 || r.stdout != "0:0\nhello\n1\n" {
		t.Fatalf("read and write a host directory:\n%s", r)
	}
	for _, name := range []string{"made", "suid"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != 1234 || st.Gid != 1235 {
			t.Errorf("%s is %d:%d on the host, want the directory owner's 1234:1235", name, st.Uid, st.Gid)
		}
		if name == "suid" && fi.Mode()&os.ModeSetuid != 0 && st.Uid == 0 {
			t.Errorf("the container made a setuid-root file on the host")
		}
	}
	r = o.run("run", "--rm", "--mount", "type=bind,source="+dir+",target=/data,readonly", rootfsDir, "/bin/sh", "-c", "cat /data/made; touch /data/x 2>&1")
	if !strings.Contains(r.stdout, "mine") || !strings.Contains(r.stdout, "Read-only file system") {
		t.Errorf("--mount ...,readonly: want the file and EROFS\n%s", r)
	}
	rootOwned := t.TempDir()
	os.Chmod(rootOwned, 0o755)
	for _, c := range []struct{ arg, why string }{
		{"/:/h:ro", "/proc"},
		{"/proc:/h:ro", "/proc"},
		{"/sys/fs:/h:ro", "/sys"},
		{"/dev:/h:ro", "/dev"},
		{o.root + ":/h:ro", o.root},
		{rootOwned + ":/h", "belongs to host root"},
		{"/no/such/dir:/h", "no such file"},
	} {
		r := o.run("run", "--rm", "-v", c.arg, rootfsDir, "/bin/true")
		if r.code == 0 || !strings.Contains(r.stderr, c.why) {
			t.Errorf("-v %s: want a refusal naming %q\n%s", c.arg, c.why, r)
		}
	}
	if r := o.run("run", "--rm", "-v", rootOwned+":/h:ro", rootfsDir, "/bin/ls", "/h"); r.code != 0 {
		t.Errorf("-v of a root-owned directory read-only is allowed:\n%s", r)
	}
}

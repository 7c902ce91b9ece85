package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLookupUser(t *testing.T) {
	top, bottom := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(top, "etc"), 0o755)
	os.MkdirAll(filepath.Join(bottom, "etc"), 0o755)
	os.WriteFile(filepath.Join(top, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/app:/bin/sh\nbig:x:70000:70000::/:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(bottom, "etc/passwd"), []byte("shadowed:x:5:5::/:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(bottom, "etc/group"), []byte("staff:x:50:\n"), 0o644)
	layers := []string{top, bottom}
	for _, c := range []struct {
		user     string
		uid, gid uint32
		err      string
	}{
		{"", 0, 0, ""},
		{"app", 1000, 1001, ""},
		{"app:staff", 1000, 50, ""},
		{"1000", 1000, 1001, ""},
		{"2000", 2000, 2000, ""},
		{"2000:50", 2000, 50, ""},
		{"shadowed", 0, 0, "not found"},
		{"nosuch", 0, 0, "not found"},
		{"app:nogroup", 0, 0, "not found"},
		{"70000", 0, 0, "outside the container's range"},
		{"big", 0, 0, "not found"},
	} {
		uid, gid, err := lookupUser(layers, c.user)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("lookupUser(%q) = %d, %d, %v; want error %q", c.user, uid, gid, err, c.err)
			}
			continue
		}
		if err != nil || uid != c.uid || gid != c.gid {
			t.Errorf("lookupUser(%q) = %d, %d, %v; want %d, %d", c.user, uid, gid, err, c.uid, c.gid)
		}
	}
}

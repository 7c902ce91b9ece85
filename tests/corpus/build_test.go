//go:build linux

package corpus

import (
	"strings"
	"testing"
	"time"
)

// TestImport imports the corpus's images into Oak: the layout must be one
// Oak accepts, with every image named.
func TestImport(t *testing.T) {
	needSetup(t)
	root := importedRoot(t)
	out, err := runOak(root, time.Minute, "image", "ls")
	if err != nil {
		t.Fatalf("oak image ls: %v\n%s", err, out)
	}
	for ref := range images.Config {
		if !containsWord(out, ref) {
			t.Errorf("oak image ls does not list %s:\n%s", ref, out)
		}
	}
}

// containsWord reports whether out lists ref, as NAME:TAG or as NAME and
// TAG in columns of one line.
func containsWord(out, ref string) bool {
	name, tag, _ := strings.Cut(ref, ":")
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, ref) {
			return true
		}
		f := strings.Fields(l)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == name && f[i+1] == tag {
				return true
			}
		}
	}
	return false
}

//go:build linux

package corpus

import (
	"os"
	"sort"
	"strings"
	"testing"
)

// writeSyscalls adds names to the list in path (one system call name a
// line, sorted), keeping what is there: the list is the union over runs,
// as each run may exercise a program a little differently.
func writeSyscalls(t *testing.T, path string, names map[string]bool) {
	t.Helper()
	all := map[string]bool{}
	if b, err := os.ReadFile(path); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				all[l] = true
			}
		}
	}
	for n := range names {
		all[n] = true
	}
	list := make([]string, 0, len(all))
	for n := range all {
		list = append(list, n)
	}
	sort.Strings(list)
	if err := os.WriteFile(path, []byte(strings.Join(list, "\n")+"\n"), 0o644); err != nil {
		t.Errorf("write %s: %v", path, err)
		return
	}
	t.Logf("%d system calls in %s (%d seen in this run)", len(list), path, len(names))
}

package api

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDaemonLogRotation: written far past MaxSize × MaxFile, the log
// keeps MaxFile files of at most MaxSize bytes each, every one of whole
// records, the newest records in the current file, in order across the
// files; a record longer than a file is cut to fit.
func TestDaemonLogRotation(t *testing.T) {
	root := t.TempDir()
	lock, err := Lock(root)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	path := filepath.Join(root, LogName)
	l, err := OpenDaemonLog(root, path, 4096, 3, false)
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	for i := 0; i < n; i++ {
		fmt.Fprintf(l, "record %05d %s\n", i, strings.Repeat("x", i%50))
	}
	l.Write([]byte(strings.Repeat("y", 5000) + "\n"))
	fmt.Fprintf(l, "last\n")
	l.Close()
	var all []string
	for _, name := range []string{path + ".2", path + ".1", path} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 4096 || len(b) == 0 || b[len(b)-1] != '\n' {
			t.Errorf("%s: %d bytes, want 1 to 4096 ending a record", filepath.Base(name), len(b))
		}
		all = append(all, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
	}
	if _, err := os.Stat(path + ".3"); !os.IsNotExist(err) {
		t.Errorf("%s.3 exists (%v): want 3 files in all", LogName, err)
	}
	if all[len(all)-1] != "last" || all[len(all)-2] != strings.Repeat("y", 4095) {
		t.Errorf("the newest records are not at the end of the current file: %.80q", all[len(all)-2:])
	}
	prev := -1
	for _, line := range all[:len(all)-2] {
		var i int
		if _, err := fmt.Sscanf(line, "record %d", &i); err != nil || line != fmt.Sprintf("record %05d %s", i, strings.Repeat("x", i%50)) {
			t.Fatalf("not a whole record: %q", line)
		}
		if prev >= 0 && i != prev+1 {
			t.Fatalf("record %d after %d", i, prev)
		}
		prev = i
	}
	if prev != n-1 {
		t.Errorf("the last record kept is %d, want %d", prev, n-1)
	}
}

// TestDaemonLogNoRotationWithoutTheLock: a daemon that does not hold the
// root's lock (the loser of a start race) appends and never renames the
// winner's file.
func TestDaemonLogNoRotationWithoutTheLock(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, LogName)
	l, err := OpenDaemonLog(root, path, 4096, 2, false)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 500; i++ {
		fmt.Fprintf(l, "record %05d\n", i)
	}
	l.Close()
	if _, err := os.Stat(path + ".1"); !os.IsNotExist(err) {
		t.Errorf("rotated without holding the lock: %v", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != 500*13 {
		t.Errorf("%s: %v, want all %d bytes appended", LogName, err, 500*13)
	}
	if _, err := OpenDaemonLog(root, path, 4096, 0, false); err == nil {
		t.Error("OpenDaemonLog accepted 0 files with a max size")
	}
}

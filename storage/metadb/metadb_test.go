package metadb

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	berrors "go.etcd.io/bbolt/errors"
)

// Every failure to open names the file and says what to do.
func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "oak.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a database ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.db")
	db, err := Open(good, false, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	for _, c := range []struct {
		name     string
		path     string
		readOnly bool
		cause    error
		hint     string
	}{
		{"damaged", garbage, false, berrors.ErrInvalid, "damaged"},
		{"missing", filepath.Join(dir, "none.db"), true, os.ErrNotExist, "created by the first"},
		{"locked", good, false, berrors.ErrTimeout, "fuser " + good},
	} {
		t.Run(c.name, func(t *testing.T) {
			db, err := Open(c.path, c.readOnly, 50*time.Millisecond)
			if err == nil {
				db.Close()
				t.Fatalf("Open(%s) succeeded", c.path)
			}
			var me *Error
			if !errors.As(err, &me) || !errors.Is(err, c.cause) {
				t.Errorf("Open(%s) = %v: want an *Error wrapping %v", c.path, err, c.cause)
			}
			msg := err.Error()
			if strings.Count(msg, c.path) < 1 || !strings.Contains(msg, c.hint) || strings.Contains(msg, "meta.db") {
				t.Errorf("Open(%s) = %q: want the path and %q", c.path, msg, c.hint)
			}
		})
	}
}

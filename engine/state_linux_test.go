package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/oak-engine/oak/sandbox"
)

// exitedRecord writes the record of an ended container named name.
func exitedRecord(t *testing.T, e *Engine, name string) *Container {
	t.Helper()
	c := &Container{ID: newID(), Name: name, Image: "demo", Command: []string{"true"},
		Created: time.Now().UTC(), Status: StatusExited, Finished: time.Now().UTC()}
	if err := os.Mkdir(e.dir(c.ID), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := e.save(c); err != nil {
		t.Fatal(err)
	}
	return c
}

// A record that cannot be read costs that one container: the others are
// listed, the broken one is listed with its problem, and rm -f removes it.
func TestBrokenRecord(t *testing.T) {
	e, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	good := exitedRecord(t, e, "good")
	for _, damage := range []struct {
		name string
		body string
	}{
		{"truncated", `{"id": "`},
		{"empty", ``},
		{"wrong id", `{"id": "../../x", "status": "exited"}`},
		{"unknown status", `{"id": "ID", "status": "zombie"}`},
	} {
		t.Run(damage.name, func(t *testing.T) {
			bad := exitedRecord(t, e, "bad-"+strings.ReplaceAll(damage.name, " ", "-"))
			body := strings.ReplaceAll(damage.body, "ID", bad.ID)
			if err := os.WriteFile(filepath.Join(e.dir(bad.ID), "state.json"), []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			cs, err := e.List()
			if err != nil {
				t.Fatalf("List with one broken record: %v", err)
			}
			var sawGood, sawBad bool
			for _, c := range cs {
				switch c.ID {
				case good.ID:
					sawGood = c.Name == "good" && c.Status == StatusExited
				case bad.ID:
					sawBad = c.Status == StatusBroken && c.Problem != ""
				}
			}
			if !sawGood || !sawBad {
				t.Fatalf("List = %+v: want the good record as it is and the bad one as broken with a problem", cs)
			}
			if err := e.Remove(ShortID(bad.ID), false); err == nil || !strings.Contains(err.Error(), "rm -f") {
				t.Errorf("Remove without force of a broken record = %v, want a refusal pointing at rm -f", err)
			}
			if err := e.Remove(ShortID(bad.ID), true); err != nil {
				t.Fatalf("Remove -f of a broken record: %v", err)
			}
			if _, err := os.Stat(e.dir(bad.ID)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the broken record's directory is still there (%v)", err)
			}
			if _, err := e.Get("good"); err != nil {
				t.Errorf("Get(good) after removing the broken record: %v", err)
			}
		})
	}
}

// Of concurrent Removes of one container exactly one succeeds; every other
// says there is no such container.
func TestRemoveRace(t *testing.T) {
	e, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 20; round++ {
		exitedRecord(t, e, "victim")
		const n = 4
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = e.Remove("victim", true)
			}()
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, ErrNoSuchContainer) || !strings.Contains(err.Error(), "victim"):
				t.Errorf("a losing Remove said %v, want no such container naming victim", err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d Removes succeeded, want exactly 1 (%v)", round, won, errs)
		}
	}
}

// An unreadable metadata database is reported as STATE/oak.db, the file
// that exists, by the image and the volume store alike.
func TestMetaDBErrorsNameTheFile(t *testing.T) {
	e, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(e.Root, "oak.db")
	if err := os.WriteFile(db, []byte(strings.Repeat("garbage ", 2000)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, ierr := e.Images()
	_, verr := e.Volumes()
	for what, err := range map[string]error{"image store": ierr, "volume store": verr} {
		if err == nil || !strings.Contains(err.Error(), db) || strings.Contains(err.Error(), "meta.db") ||
			!strings.Contains(err.Error(), "damaged") {
			t.Errorf("%s with a damaged %s: %v; want an error naming that file and what to do", what, db, err)
		}
	}
}

// A detached supervisor's report keeps why the command could not start.
func TestStartFailureRoundTrip(t *testing.T) {
	for _, c := range []struct {
		err  error
		want error
	}{
		{fmt.Errorf("run x: %w", &sandbox.ExecError{Errno: syscall.ENOENT, Msg: "exec nope: not found"}), ErrCommandNotFound},
		{fmt.Errorf("run x: %w", &sandbox.ExecError{Errno: syscall.EACCES, Msg: "exec /etc: Permission denied"}), ErrCommandNotExecutable},
		{errors.New("run x: cgroup: no space"), nil},
	} {
		got := decodeStartFailure(encodeStartFailure(c.err))
		if got.Error() != c.err.Error() {
			t.Errorf("decoded message %q, want %q", got, c.err)
		}
		if c.want != nil && !errors.Is(got, c.want) {
			t.Errorf("decoded %q is not %v", got, c.want)
		}
		if c.want == nil && (errors.Is(got, ErrCommandNotFound) || errors.Is(got, ErrCommandNotExecutable)) {
			t.Errorf("decoded %q gained an exec cause", got)
		}
	}
}

// An empty reference names nothing, not even a broken record (which has no
// name) or every id (each has the empty prefix).
func TestFindEmptyRef(t *testing.T) {
	cs := []*Container{{ID: newID(), Status: StatusBroken}}
	if c, err := find(cs, ""); !errors.Is(err, ErrNoSuchContainer) {
		t.Errorf(`find("") = %+v, %v; want no such container`, c, err)
	}
}

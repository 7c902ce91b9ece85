//go:build linux

package integration

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// One container record that cannot be read costs that container, not
// every command: ps -a lists it with its problem, other containers and new
// runs work, rm refuses it without -f, and rm -f removes it.
func TestBrokenRecord(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	if r := o.run("run", "--name", "good", rootfsDir, "/bin/true"); r.code != 0 {
		t.Fatalf("run good\n%s", r)
	}
	if r := o.run("run", "--name", "bad", rootfsDir, "/bin/true"); r.code != 0 {
		t.Fatalf("run bad\n%s", r)
	}
	bad, ok := o.find("bad")
	if !ok {
		t.Fatal("ps -a does not list bad")
	}
	if err := os.Truncate(filepath.Join(o.root, "containers", bad.ID, "state.json"), 7); err != nil {
		t.Fatal(err)
	}

	r := o.run("ps", "-a")
	if r.code != 0 || !strings.Contains(r.stdout, "good") || !strings.Contains(r.stdout, bad.ID[:12]) ||
		!strings.Contains(r.stdout, "Broken") {
		t.Errorf("ps -a with a broken record: want a row for good and a Broken row for %s\n%s", bad.ID[:12], r)
	}
	es, err := o.psAll()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range es {
		if e.ID == bad.ID {
			found = e.Status == "broken" && strings.Contains(e.Problem, "corrupt")
		}
	}
	if !found {
		t.Errorf("ps -a --format json: want %s with status broken and its problem\n%s", bad.ID, r)
	}
	if r := o.run("run", "--rm", rootfsDir, "/bin/echo", "still-works"); r.code != 0 || r.stdout != "still-works\n" {
		t.Errorf("run with a broken record beside it\n%s", r)
	}
	if r := o.run("logs", "good"); r.code != 0 {
		t.Errorf("logs good\n%s", r)
	}
	if r := o.run("rm", bad.ID); r.code == 0 || !strings.Contains(r.stderr, "rm -f") {
		t.Errorf("rm of a broken record without -f: want a refusal that points at rm -f\n%s", r)
	}
	if r := o.run("rm", "-f", bad.ID); r.code != 0 {
		t.Errorf("rm -f of a broken record\n%s", r)
	}
	if _, ok := o.find(bad.ID); ok {
		t.Errorf("the broken record is still listed after rm -f")
	}
	if r := o.run("rm", "good"); r.code != 0 {
		t.Errorf("rm good\n%s", r)
	}
}

// Concurrent rm -f of one running container: exactly one wins, every
// other says there is no such container (exit 1), and none crashes.
func TestRemoveRace(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	for round := 0; round < 3; round++ {
		o.runD("--name", "victim", rootfsDir, "/bin/sleep", "100")
		const n = 3
		rs := make([]result, n)
		var wg sync.WaitGroup
		for i := range rs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rs[i] = o.run("rm", "-f", "victim")
			}()
		}
		wg.Wait()
		won := 0
		for _, r := range rs {
			switch {
			case strings.Contains(r.stderr, "panic"):
				t.Errorf("oak crashed\n%s", r)
			case r.code == 0:
				won++
			case r.code != 1 || !strings.Contains(r.stderr, "no such container: victim"):
				t.Errorf("a losing rm -f: want exit 1 and \"no such container: victim\"\n%s", r)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d of %d rm -f succeeded, want exactly 1\n%v", round, won, n, rs)
		}
	}
}

// Exit statuses are docker's: 127 for a command that is not in the image,
// 126 for one that cannot be run, 125 for oak's own failures, and 1 with
// "no such container: X" from every verb that names a missing container.
func TestExitStatuses(t *testing.T) {
	needOak(t, true)
	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"not found", []string{"run", "--rm", rootfsDir, "/bin/oak-no-such-cmd"}, 127, "oak-no-such-cmd"},
		{"not in PATH", []string{"run", "--rm", rootfsDir, "oak-no-such-cmd"}, 127, "oak-no-such-cmd"},
		{"not found -d", []string{"run", "-d", rootfsDir, "/bin/oak-no-such-cmd"}, 127, "oak-no-such-cmd"},
		{"directory", []string{"run", "--rm", rootfsDir, "/etc"}, 126, "/etc"},
		{"not executable", []string{"run", "--rm", rootfsDir, "/etc/passwd"}, 126, "/etc/passwd"},
		{"directory -d", []string{"run", "-d", rootfsDir, "/etc"}, 126, "/etc"},
		{"bad flag", []string{"run", "--memory", "lots", rootfsDir, "/bin/true"}, 125, "lots"},
		{"no image", []string{"run", "--rm", "oak-no-such-image", "/bin/true"}, 125, "oak-no-such-image"},
		{"unknown verb", []string{"image", "oak-bogus"}, 125, `unknown command "oak-bogus" for "oak image"`},
	}
	for _, verb := range [][]string{{"rm"}, {"rm", "-f"}, {"kill"}, {"logs"}, {"grants"}, {"revoke", "oak-nobody", "egress any"}} {
		args := append(verb, "oak-nobody")
		if verb[0] == "revoke" {
			args = verb
		}
		cases = append(cases, struct {
			name string
			args []string
			code int
			msg  string
		}{strings.Join(verb, " ") + " unknown", args, 1, "no such container: oak-nobody"})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			o := newOak(t)
			r := o.run(c.args...)
			if r.code != c.code || !strings.Contains(r.stderr, c.msg) {
				t.Errorf("want exit %d and %q on stderr\n%s", c.code, c.msg, r)
			}
		})
	}
}

// Import errors name the input as the person gave it, never the storage
// service's own path for it (/input), and inputs the service cannot read
// are refused before it starts.
func TestImportNamesInput(t *testing.T) {
	needOak(t, true)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.tar")
	os.WriteFile(garbage, []byte(strings.Repeat("not a tar archive\n", 100)), 0o644)
	// An OCI layout whose index names a blob that is not there.
	layout := filepath.Join(dir, "layout")
	os.MkdirAll(filepath.Join(layout, "blobs", "sha256"), 0o755)
	os.WriteFile(filepath.Join(layout, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	os.WriteFile(filepath.Join(layout, "index.json"), []byte(`{"schemaVersion":2,"manifests":[{"mediaType":`+
		`"application/vnd.oci.image.manifest.v1+json","size":100,"digest":"sha256:`+strings.Repeat("a", 64)+`"}]}`), 0o644)
	for _, c := range []struct {
		name, input, want string
	}{
		{"device", "/dev/zero", "character device"},
		{"fifo", fifo, "pipe"},
		{"directory", dir, "OCI image layout"},
		{"garbage", garbage, "garbage.tar"},
		{"layout missing blob", layout, layout + "/blobs/sha256/"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := newOak(t)
			r := o.run("image", "import", c.input)
			if r.code != 125 || !strings.Contains(r.stderr, c.input) || !strings.Contains(r.stderr, c.want) ||
				strings.Contains(r.stderr, "/input") {
				t.Errorf("want exit 125 and an error naming %s and %q, not /input\n%s", c.input, c.want, r)
			}
		})
	}
}

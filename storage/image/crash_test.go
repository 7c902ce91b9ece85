//go:build linux

package image

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

const crashEnv = "OAK_IMAGE_CRASH_ROOT"

// noiseTar is a layer of n files of size bytes each, compressible about
// twofold (random letters from a 16-letter alphabet), like real binaries.
func noiseTar(t testing.TB, seed uint64, n, size int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	var ents []ent
	for i := 0; i < n; i++ {
		b := make([]byte, size)
		for j := range b {
			b[j] = "abcdefghijklmnop"[r.IntN(16)]
		}
		ents = append(ents, ent{name: fmt.Sprintf("data/%d/f%d", i%8, i), body: string(b)})
	}
	return mkTar(t, ents...)
}

// TestCrashDuringImport kills an oak-like process (this test binary,
// running TestCrashHelper) with SIGKILL at random points while it imports
// and removes images sharing layers, and checks after each kill that Check
// leaves a consistent store: no record naming missing data, no layer
// directory without a record, nothing in tmp/.
func TestCrashDuringImport(t *testing.T) {
	if testing.Short() {
		t.Skip("kills subprocesses; not in -short")
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "images")
	shared := gzLayer(t, noiseTar(t, 1, 24, 128<<10))
	a := buildImage(t, v1.Config{Cmd: []string{"a"}}, shared, gzLayer(t, noiseTar(t, 2, 24, 128<<10)), gzLayer(t, noiseTar(t, 3, 8, 128<<10)))
	b := buildImage(t, v1.Config{Cmd: []string{"b"}}, shared, plainLayer(noiseTar(t, 4, 24, 128<<10)))
	archA := writeLayout(t, filepath.Join(dir, "a"), map[string]v1.Image{"a:1": a})
	archB := writeDockerSave(t, filepath.Join(dir, "b.tar"), map[string]v1.Image{"b:1": b})
	phase := filepath.Join(dir, "phase")

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 2))
	hit := map[string]int{}
	for i := 0; i < 8; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+root, "OAK_IMAGE_CRASH_A="+archA, "OAK_IMAGE_CRASH_B="+archB, "OAK_IMAGE_CRASH_PHASE="+phase)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(100+r.IntN(900)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		p, _ := os.ReadFile(phase)
		hit[string(p)]++
		checkInvariants(t, root)
	}
	t.Logf("killed during: %v", hit)

	// What survived is usable, and a full import still works.
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := s.Import(context.Background(), archA, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(imgs[0].Layers()[2], "data/0/f0")); err != nil {
		t.Error(err)
	}
	checkInvariants(t, root)
}

// TestCrashHelper is the process TestCrashDuringImport kills: it imports
// and removes two images forever, noting the operation it is in.
func TestCrashHelper(t *testing.T) {
	root := os.Getenv(crashEnv)
	if root == "" {
		t.Skip("run by TestCrashDuringImport")
	}
	note := func(p string) { os.WriteFile(os.Getenv("OAK_IMAGE_CRASH_PHASE"), []byte(p), 0o644) }
	note("open")
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; ; i++ {
		for _, x := range []string{"A", "B"} {
			note("import " + x)
			if _, err := s.Import(ctx, os.Getenv("OAK_IMAGE_CRASH_"+x), ImportOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		tag := []string{"a:1", "b:1"}[i%2]
		note("rm " + strings.TrimSuffix(tag, ":1"))
		if err := s.Remove(tag); err != nil {
			t.Fatal(err)
		}
	}
}

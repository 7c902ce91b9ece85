//go:build linux

package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	bolt "go.etcd.io/bbolt"
)

func TestCheckRepairsAndReports(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	imgs, err := s.Import(ctx, writeLayout(t, t.TempDir(), map[string]v1.Image{"app:1": plainTwoLayers(t)}), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	img := imgs[0]

	// What a crash can leave: a layer renamed in without its record, a
	// half-unpacked layer in tmp/ (with a read-only directory in it).
	orphan := filepath.Join(s.layersDir(), strings.Repeat("ab", 32))
	os.MkdirAll(filepath.Join(orphan, "etc"), 0o755)
	writeFile(t, filepath.Join(orphan, "etc/x"), []byte("x"))
	os.MkdirAll(filepath.Join(s.tmpDir(), "layer-123/ro"), 0o755)
	writeFile(t, filepath.Join(s.tmpDir(), "layer-123/ro/f"), nil)
	os.Chmod(filepath.Join(s.tmpDir(), "layer-123/ro"), 0o555)
	writeFile(t, filepath.Join(s.layersDir(), "not-a-digest"), nil)

	rep, err := s.Check()
	if err != nil {
		t.Fatal(err)
	}
	if rep.ClearedTmp != 1 || len(rep.RemovedLayers) != 2 || len(rep.Broken) != 0 {
		t.Errorf("report %+v", rep)
	}
	if got := dirEntries(t, s.layersDir()); len(got) != 2 {
		t.Errorf("layers after Check: %v", got)
	}
	if got := dirEntries(t, s.tmpDir()); len(got) != 0 {
		t.Errorf("tmp after Check: %v", got)
	}
	if _, err := s.Get("app:1"); err != nil {
		t.Fatal(err)
	}

	// Lost layer data: reported, Get refuses, Remove still works.
	if err := os.RemoveAll(img.Layers()[1]); err != nil {
		t.Fatal(err)
	}
	rep, err = s.Check()
	if !errors.Is(err, ErrBroken) || !strings.Contains(err.Error(), "docker.io/library/app:1") || !strings.Contains(err.Error(), img.DiffIDs[1]) {
		t.Errorf("Check = %v", err)
	}
	if len(rep.Broken) != 1 || rep.Broken[0].ID != img.ID || len(rep.Broken[0].Missing) != 1 || rep.Broken[0].Missing[0] != img.DiffIDs[1] {
		t.Errorf("broken = %+v", rep.Broken)
	}
	if _, err := s.Get("app:1"); !errors.Is(err, ErrBroken) {
		t.Errorf("Get broken = %v", err)
	}
	if l, _ := s.List(); len(l) != 1 {
		t.Errorf("List hides the broken image: %v", l)
	}
	// Reimporting while broken restores the missing layer.
	if _, err := s.Import(ctx, writeLayout(t, t.TempDir(), map[string]v1.Image{"app:1": plainTwoLayers(t)}), ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(); err != nil {
		t.Errorf("Check after reimport: %v", err)
	}
	os.RemoveAll(img.Layers()[0])
	if _, err := s.Check(); !errors.Is(err, ErrBroken) {
		t.Fatal(err)
	}
	if err := s.Remove("app:1"); err != nil {
		t.Fatal(err)
	}
	if rep, err := s.Check(); err != nil || len(dirEntries(t, s.layersDir())) != 0 {
		t.Errorf("after rm: %+v %v %v", rep, err, dirEntries(t, s.layersDir()))
	}
}

func TestCheckLeavesRunningImportsAlone(t *testing.T) {
	s := openStore(t)
	unlock, err := lockShared(s.tmpDir())
	if err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(s.tmpDir(), "layer-busy"), 0o700)
	rep, err := s.Check()
	if err != nil || !rep.TmpInUse {
		t.Fatalf("Check = %+v, %v", rep, err)
	}
	if got := dirEntries(t, s.tmpDir()); len(got) != 1 {
		t.Errorf("tmp = %v", got)
	}
	unlock()
	if rep, err := s.Check(); err != nil || rep.ClearedTmp != 1 {
		t.Errorf("Check after unlock = %+v, %v", rep, err)
	}
}

// checkInvariants: every record's layers are present, every layer
// directory is used, every layer size belongs to a present layer, and
// tmp/ is empty.
func checkInvariants(t testing.TB, root string) {
	t.Helper()
	s, err := Open(root) // runs Check
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	rep, err := s.Check()
	if err != nil {
		t.Fatalf("Check: %v (%+v)", err, rep)
	}
	used := map[string]bool{}
	err = s.view(func(tx *bolt.Tx) error {
		imgs, err := allImages(tx)
		if err != nil {
			return err
		}
		for _, img := range imgs {
			for _, d := range img.DiffIDs {
				used[strings.TrimPrefix(d, "sha256:")] = true
				if !s.haveLayer(tx, d) {
					return fmt.Errorf("image %s: layer %s missing", img.ID, d)
				}
			}
		}
		return tx.Bucket(bucketLayers).ForEach(func(k, _ []byte) error {
			if !used[strings.TrimPrefix(string(k), "sha256:")] {
				return fmt.Errorf("size recorded for unused layer %s", k)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirEntries(t, s.layersDir()) {
		if !used[d] {
			t.Errorf("layer directory %s is not used", d)
		}
	}
	if es := dirEntries(t, s.tmpDir()); len(es) != 0 {
		t.Errorf("tmp/ holds %v", es)
	}
}

// Two stores on one root (as two oak processes would be) import images
// sharing layers and remove them, at the same time.
func TestConcurrentStores(t *testing.T) {
	root := filepath.Join(t.TempDir(), "images")
	base := gzLayer(t, baseTar(t))
	var archives []string
	for i := 0; i < 4; i++ {
		img := buildImage(t, v1.Config{Cmd: []string{fmt.Sprint(i)}}, base, gzLayer(t, mkTar(t, ent{name: fmt.Sprintf("f%d", i), body: strings.Repeat("x", 1000*i)})))
		archives = append(archives, writeLayout(t, t.TempDir(), map[string]v1.Image{fmt.Sprintf("img%d:1", i): img}))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for w := 0; w < 2; w++ {
		s, err := Open(root)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := 0; round < 5; round++ {
				for i, a := range archives {
					if _, err := s.Import(context.Background(), a, ImportOptions{}); err != nil {
						errs <- err
						return
					}
					if (i+round+w)%2 == 0 {
						if err := s.Remove(fmt.Sprintf("img%d:1", i)); err != nil && !errors.Is(err, ErrNotFound) {
							errs <- err
							return
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	checkInvariants(t, root)
	// Whatever survived is complete.
	s, _ := Open(root)
	list, _ := s.List()
	for _, img := range list {
		if _, err := s.Get(img.ID); err != nil {
			t.Error(err)
		}
		if b, err := os.ReadFile(filepath.Join(img.Layers()[0], "bin/app")); err != nil || len(b) == 0 {
			t.Errorf("%s: base layer content: %v", img.Name(), err)
		}
	}
}

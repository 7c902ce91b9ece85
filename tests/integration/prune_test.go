//go:build linux

package integration

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// oak image inspect, tag and prune: inspect prints the records as JSON,
// tag adds a name, prune removes exactly the images no container record
// uses and the layers no image uses.
func TestImageInspectTagPrune(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	dir := imageDir(t)
	used := writeDockerSave(t, filepath.Join(dir, "used.tar"), "oak.test/used:1", greeterImage(t))
	// A second image sharing no layer with the first.
	unused := writeDockerSave(t, filepath.Join(dir, "unused.tar"), "oak.test/unused:1",
		imageOf(t, greeterConfig, gzLayerOf(t, layerTar(t, "", tarEnt{name: "only-here", body: "x"}))))
	for _, a := range []string{used, unused} {
		if r := o.run("image", "import", a); r.code != 0 {
			t.Fatalf("import\n%s", r)
		}
	}

	r := o.run("image", "inspect", "oak.test/used:1")
	var imgs []struct {
		Id       string
		RepoTags []string
		RootFS   struct{ Layers []string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &imgs); r.code != 0 || err != nil || len(imgs) != 1 ||
		!slices.Contains(imgs[0].RepoTags, "oak.test/used:1") || len(imgs[0].RootFS.Layers) == 0 {
		t.Fatalf("image inspect: want one JSON record with its tag and layers (%v)\n%s", err, r)
	}
	if r := o.run("image", "inspect", "oak.test/nope:1"); r.code == 0 || !strings.Contains(r.stderr, "oak.test/nope:1") {
		t.Errorf("image inspect of a missing image\n%s", r)
	}

	if r := o.run("image", "tag", "oak.test/used:1", "oak.test/alias:2"); r.code != 0 {
		t.Fatalf("image tag\n%s", r)
	}
	if r := o.run("image", "inspect", "oak.test/alias:2"); r.code != 0 || !strings.Contains(r.stdout, imgs[0].Id) {
		t.Errorf("the new tag does not name the image\n%s", r)
	}
	if r := o.run("image", "tag", "oak.test/used:1", "Not A Tag"); r.code == 0 || !strings.Contains(r.stderr, "Not A Tag") {
		t.Errorf("image tag with an invalid name\n%s", r)
	}

	// An ended container made from used keeps it.
	if r := o.run("run", "--name", "user", "oak.test/alias:2"); r.code != 0 {
		t.Fatalf("run\n%s", r)
	}
	layersBefore := len(o.layerDirs())
	r = o.run("image", "prune")
	if r.code != 0 || !strings.Contains(r.stdout, "oak.test/unused:1") || strings.Contains(r.stdout, "oak.test/used:1") {
		t.Errorf("image prune: want exit 0 and only the unused image listed\n%s", r)
	}
	names := o.imageNames()
	if slices.Contains(names, "oak.test/unused:1") || !slices.ContainsFunc(names, func(n string) bool { return strings.Contains(n, "oak.test/used:1") }) {
		t.Errorf("after prune the images are %v; want used kept and unused gone", names)
	}
	if n := len(o.layerDirs()); n != layersBefore-1 {
		t.Errorf("%d layer directories after prune, want %d (the unused image's one layer gone)", n, layersBefore-1)
	}
	// Once the container is gone, prune takes the image too.
	if r := o.run("rm", "user"); r.code != 0 {
		t.Fatalf("rm\n%s", r)
	}
	if r := o.run("image", "prune"); r.code != 0 || len(o.imageNames()) != 0 || len(o.layerDirs()) != 0 {
		t.Errorf("image prune with no containers: images %v, layers %v\n%s", o.imageNames(), o.layerDirs(), r)
	}
}

// oak volume prune removes exactly the volumes no container record was
// granted.
func TestVolumePrune(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	o.newVolume("kept", "16m")
	o.newVolume("loose", "16m")
	if r := o.run("run", "--name", "holder", "-v", "kept:/data", rootfsDir, "/bin/true"); r.code != 0 {
		t.Fatalf("run\n%s", r)
	}
	r := o.run("volume", "prune")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "loose" {
		t.Errorf("volume prune: want exit 0 and only loose removed\n%s", r)
	}
	if names, r := o.volumeNames(); !slices.Equal(names, []string{"kept"}) {
		t.Errorf("volumes after prune: %v, want [kept]\n%s", names, r)
	}
	if r := o.run("rm", "holder"); r.code != 0 {
		t.Fatal(r)
	}
	if r := o.run("volume", "prune"); r.code != 0 || strings.TrimSpace(r.stdout) != "kept" {
		t.Errorf("volume prune after the container went\n%s", r)
	}
}

package image

import (
	"context"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestTag(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	s := openStore(t)
	imgs, err := s.Import(ctx, writeLayout(t, t.TempDir(), map[string]v1.Image{"app:1": plainTwoLayers(t)}), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id := imgs[0].ID
	if err := s.Tag("app:1", "registry.example/team/app:stable"); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get("registry.example/team/app:stable")
	if err != nil || got.ID != id {
		t.Fatalf("Get(new tag) = %v, %v; want %s", got, err, id)
	}
	if !slices.Equal(got.Tags, []string{"docker.io/library/app:1", "registry.example/team/app:stable"}) {
		t.Errorf("tags %v", got.Tags)
	}
	for _, c := range []struct{ src, dst string }{
		{"app:1", "Bad Tag"},
		{"app:1", "app@sha256:" + id[7:]},
		{"nope:1", "app:2"},
	} {
		if err := s.Tag(c.src, c.dst); err == nil {
			t.Errorf("Tag(%q, %q) succeeded", c.src, c.dst)
		}
	}
}

func TestPrune(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	s := openStore(t)
	kept, err := s.Import(ctx, writeLayout(t, t.TempDir(), map[string]v1.Image{"kept:1": plainTwoLayers(t)}), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other := buildImage(t, v1.Config{Cmd: []string{"/other"}}, plainLayer(mkTar(t, ent{name: "other", body: "x"})))
	gone, err := s.Import(ctx, writeLayout(t, t.TempDir(), map[string]v1.Image{"gone:1": other}), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	removed, err := s.Prune(func(id string) bool { return id == kept[0].ID })
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0].ID != gone[0].ID {
		t.Fatalf("Prune removed %v, want only %s", removed, gone[0].ID)
	}
	if _, err := s.Get("kept:1"); err != nil {
		t.Errorf("the kept image: %v", err)
	}
	if _, err := s.Get("gone:1"); err == nil {
		t.Errorf("the pruned image is still there")
	}
	if got := dirEntries(t, s.layersDir()); len(got) != len(kept[0].DiffIDs) {
		t.Errorf("layers after prune: %v, want the kept image's %v", got, kept[0].DiffIDs)
	}
	checkInvariants(t, s.Root())
}

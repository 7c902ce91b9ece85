package engine

import (
	"strings"
	"testing"
)

func TestParseVolumeMount(t *testing.T) {
	for _, c := range []struct {
		in   string
		want VolumeMount
		err  string
	}{
		{"data:/data", VolumeMount{Name: "data", Target: "/data"}, ""},
		{"data:/srv/db:ro", VolumeMount{Name: "data", Target: "/srv/db", ReadOnly: true}, ""},
		{"data:/srv:rw", VolumeMount{Name: "data", Target: "/srv"}, ""},
		{"data", VolumeMount{}, "want NAME:/PATH"},
		{"data:/a:ro:x", VolumeMount{}, "want NAME:/PATH"},
		{"da ta:/a", VolumeMount{}, "bad volume name"},
		{"data:rel", VolumeMount{}, "clean absolute path"},
		{"data:/a/../b", VolumeMount{}, "clean absolute path"},
		{"data:/", VolumeMount{}, "clean absolute path"},
		{"data:/proc/x", VolumeMount{}, "inside /proc"},
		{"data:/tmp", VolumeMount{}, "inside /tmp"},
		{"data:/a:rx", VolumeMount{}, "unknown mode"},
	} {
		got, err := ParseVolumeMount(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "-v "+c.in) {
				t.Errorf("ParseVolumeMount(%q) = %+v, %v; want error %q naming the flag", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseVolumeMount(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

func FuzzParseVolumeMount(f *testing.F) {
	for _, s := range []string{"data:/data", "data:/srv:ro", "x:/proc", "::", "a:/b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseVolumeMount(s)
		if err != nil {
			return
		}
		if !strings.HasPrefix(m.Target, "/") || m.Target == "/" || strings.Contains(m.Target, "..") {
			t.Fatalf("ParseVolumeMount(%q) accepted target %q", s, m.Target)
		}
	})
}

func TestVolumeCapabilities(t *testing.T) {
	a, err := grantAuthority(&Spec{Image: "demo", Layers: []string{"/img"}, Volumes: []VolumeMount{
		{Name: "data", Target: "/data"}, {Name: "conf", Target: "/etc/app", ReadOnly: true}}})
	if err != nil {
		t.Fatal(err)
	}
	got := a.volumes()
	if len(got) != 2 || got[0] != (VolumeMount{Name: "data", Target: "/data"}) ||
		got[1] != (VolumeMount{Name: "conf", Target: "/etc/app", ReadOnly: true}) {
		t.Errorf("volumes() = %+v", got)
	}
}

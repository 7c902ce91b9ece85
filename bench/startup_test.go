package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// testRootFS makes a root file system with a static busybox, as the demo
// image has, or skips the test if the host has no /bin/busybox.
func testRootFS(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("no busybox to build a root file system: %v", err)
	}
	root := filepath.Join(t.TempDir(), "rootfs")
	for _, d := range []string{"bin", "proc", "dev", "sys", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, applet := range []string{"true", "sh"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestStartupPlain(t *testing.T) {
	root := testRootFS(t)
	rep, err := Startup(context.Background(), StartupConfig{
		RootFS:   root,
		Variants: []string{VariantPlain},
		Runs:     3,
		Warmup:   1,
		WorkDir:  t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 {
		t.Fatalf("results = %+v, want one", rep.Results)
	}
	res := rep.Results[0]
	if res.Name != VariantPlain || res.N != 3 || len(res.Samples) != 3 {
		t.Errorf("plain result: name %q, N %d, %d samples; want plain with 3", res.Name, res.N, len(res.Samples))
	}
	if len(rep.Ratios) != 0 {
		t.Errorf("ratios with one variant: %+v", rep.Ratios)
	}
}

// standIn writes an executable shell script to stand in for oak.
func standIn(t *testing.T, script string) string {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh for a stand-in oak")
	}
	p := filepath.Join(t.TempDir(), "oak")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// The oak variant runs `oak --root DIR run --rm ROOTFS true`.
func TestStartupOakCommandLine(t *testing.T) {
	root := testRootFS(t)
	oakRoot := t.TempDir()
	oak := standIn(t, `
[ "$1 $3 $4 $6 $#" = "--root run --rm true 6" ] || { echo "bad args: $*" >&2; exit 2; }
[ -d "$2" ] || { echo "no root $2" >&2; exit 2; }
exec "$5/bin/$6"
`)
	rep, err := Startup(context.Background(), StartupConfig{
		RootFS:   root,
		Variants: []string{VariantOak, VariantPlain}, // reported in standard order
		OakPath:  oak,
		OakRoot:  oakRoot,
		Runs:     2,
		Warmup:   -1,
		WorkDir:  t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 2 || rep.Results[0].Name != VariantPlain || rep.Results[1].Name != VariantOak {
		t.Fatalf("results = %+v, want plain then oak", rep.Results)
	}
	want := oak + " --root " + oakRoot + " run --rm " + root + " true"
	if got := rep.Results[1].Detail; got != want {
		t.Errorf("oak ran %q, want %q", got, want)
	}
	if rep.Results[1].N != 2 {
		t.Errorf("oak N = %d, want 2", rep.Results[1].N)
	}
	if len(rep.Ratios) != 1 || rep.Ratios[0].Of != VariantOak || rep.Ratios[0].Base != VariantPlain {
		t.Errorf("ratios = %+v, want oak/plain", rep.Ratios)
	}
}

func TestStartupFailingRunNamesVariantAndStderr(t *testing.T) {
	root := testRootFS(t)
	oak := standIn(t, "echo 'container refused: no such image' >&2\nexit 3\n")
	_, err := Startup(context.Background(), StartupConfig{
		RootFS:   root,
		Variants: []string{VariantOak},
		OakPath:  oak,
		Runs:     1,
		WorkDir:  t.TempDir(),
	})
	if err == nil {
		t.Fatal("Startup succeeded with an oak that exits 3")
	}
	for _, want := range []string{"oak", "exit status 3", "container refused: no such image"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestStartupRuncSkippedWhenAbsent(t *testing.T) {
	root := testRootFS(t)
	t.Setenv("PATH", t.TempDir()) // no runc in it
	rep, err := Startup(context.Background(), StartupConfig{
		RootFS:   root,
		Variants: []string{VariantPlain, VariantRunc},
		Runs:     1,
		WorkDir:  t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	runc, ok := rep.Result(VariantRunc)
	if !ok || runc.Skipped != "runc not found" || runc.N != 0 {
		t.Errorf("runc result = %+v, want skipped", runc)
	}
	if len(rep.Ratios) != 0 {
		t.Errorf("ratios = %+v, want none with runc skipped", rep.Ratios)
	}
}

// TestStartupRunc starts real runc containers; it needs root and runc.
func TestStartupRunc(t *testing.T) {
	if testing.Short() {
		t.Skip("starts containers")
	}
	if os.Geteuid() != 0 {
		t.Skip("runc needs root")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("no runc")
	}
	root := testRootFS(t)
	rep, err := Startup(context.Background(), StartupConfig{
		RootFS:   root,
		Variants: []string{VariantPlain, VariantRunc},
		Runs:     3,
		Warmup:   -1,
		WorkDir:  t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if runc, _ := rep.Result(VariantRunc); runc.N != 3 {
		t.Errorf("runc N = %d, want 3", runc.N)
	}
	if len(rep.Ratios) != 1 || rep.Ratios[0].Of != VariantRunc {
		t.Errorf("ratios = %+v, want runc/plain", rep.Ratios)
	}
}

func TestStartupRefuses(t *testing.T) {
	empty := t.TempDir()
	tests := []struct {
		name string
		cfg  StartupConfig
		want string
	}{
		{"no rootfs", StartupConfig{}, "no root file system"},
		{"no bin/true", StartupConfig{RootFS: empty}, "bin/true"},
		{"unknown variant", StartupConfig{RootFS: empty, Variants: []string{"crun"}}, `unknown variant "crun"`},
	}
	for _, tt := range tests {
		_, err := Startup(context.Background(), tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

func TestStartupMissingOakBinary(t *testing.T) {
	root := testRootFS(t)
	_, err := Startup(context.Background(), StartupConfig{
		RootFS: root, Variants: []string{VariantOak}, OakPath: "/nonexistent/oak", WorkDir: t.TempDir(),
	})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/oak") {
		t.Errorf("err = %v, want one naming the missing binary", err)
	}
}

// editRuncSpec keeps runc's defaults and changes only root and process.
func TestEditRuncSpec(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.json")
	in := `{"ociVersion":"1.0.2","process":{"terminal":true,"args":["sh"],"cwd":"/"},` +
		`"root":{"path":"rootfs"},"hostname":"runc","linux":{"namespaces":[{"type":"pid"}]}}`
	if err := os.WriteFile(p, []byte(in), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := editRuncSpec(p, "/abs/rootfs", []string{"true"}, true); err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Join(strings.Fields(string(out)), "")
	for _, want := range []string{
		`"args":["true"]`, `"terminal":false`, `"cwd":"/"`,
		`"root":{"path":"/abs/rootfs","readonly":true}`,
		`"hostname":"runc"`, `"namespaces":[{"type":"pid"}]`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("edited spec lacks %s:\n%s", want, out)
		}
	}
	if err := os.WriteFile(p, []byte(`{"root":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := editRuncSpec(p, "/abs/rootfs", []string{"true"}, true); err == nil {
		t.Error("editRuncSpec accepted a spec without process")
	}
}

func TestTailBuffer(t *testing.T) {
	var b tailBuffer
	b.Write([]byte("head "))
	big := strings.Repeat("x", tailMax)
	b.Write([]byte(big))
	b.Write([]byte(" tail"))
	got := b.String()
	if len(got) != tailMax || !strings.HasSuffix(got, "x tail") || strings.Contains(got, "head") {
		t.Errorf("tail buffer kept %d bytes ending %q", len(got), got[max(0, len(got)-10):])
	}
	var small tailBuffer
	small.Write([]byte("a"))
	small.Write([]byte("b"))
	if small.String() != "ab" {
		t.Errorf("small = %q", small.String())
	}
}

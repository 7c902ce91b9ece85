package bench

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
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
	for _, applet := range []string{"true", "sh", "sleep"} {
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

// Each cold launch gets a state root of its own, absent before the launch
// and removed after it.
func TestStartupColdFreshRoots(t *testing.T) {
	root := testRootFS(t)
	log := filepath.Join(t.TempDir(), "roots")
	oak := standIn(t, `
[ -e "$2" ] && { echo "state root $2 exists before the launch" >&2; exit 2; }
mkdir "$2" && echo "$2" >> `+log+`
exec "$5/bin/$6"
`)
	reps, err := StartupSuite(context.Background(), StartupConfig{
		RootFS:   root,
		Cases:    []string{CaseCold},
		Variants: []string{VariantPlain, VariantOak},
		OakPath:  oak,
		ColdRuns: 3,
		Warmup:   1,
		WorkDir:  t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 1 || reps[0].Case != CaseCold || reps[0].Description != ColdDescription {
		t.Fatalf("reports = %+v, want one cold", reps)
	}
	if res, _ := reps[0].Result(VariantOak); res.N != 3 {
		t.Errorf("oak N = %d, want 3", res.N)
	}
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	roots := strings.Fields(string(data))
	if len(roots) != 4 { // one warm-up and three timed
		t.Fatalf("oak ran with roots %q, want 4 launches", roots)
	}
	seen := map[string]bool{}
	for _, r := range roots {
		if seen[r] {
			t.Errorf("state root %s used twice", r)
		}
		seen[r] = true
		if _, err := os.Stat(r); err == nil {
			t.Errorf("state root %s left behind", r)
		}
	}
}

// A parallel run starts N launches at once: each round has N launch
// times, the rate is N over the median round, and the launches overlap.
func TestStartupParallel(t *testing.T) {
	root := testRootFS(t)
	dir := t.TempDir()
	// Each launch leaves a file and waits (bounded) until all 3 of its
	// round are there: it would time out if they ran one after another.
	oak := standIn(t, `
f=$(mktemp `+dir+`/launch.XXXXXX)
i=0
while [ $(ls `+dir+` | wc -l) -lt 3 ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done
[ $i -lt 500 ] || { echo "the other launches never started" >&2; exit 2; }
exit 0
`)
	var rounds atomic.Int32
	reps, err := StartupSuite(context.Background(), StartupConfig{
		RootFS:   root,
		Cases:    []string{CaseParallel},
		Parallel: []int{3},
		Rounds:   2,
		Variants: []string{VariantPlain, VariantOak},
		OakPath:  oak,
		WorkDir:  t.TempDir(),
		Log:      writerFunc(func(p []byte) { rounds.Add(1) }),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 1 || reps[0].Parallel != 3 || reps[0].Case != CaseParallel {
		t.Fatalf("reports = %+v", reps)
	}
	for _, name := range []string{VariantPlain, VariantOak} {
		res, _ := reps[0].Result(name)
		if res.N != 2 || len(res.Launches) != 6 || res.Launch.N != 6 {
			t.Errorf("%s: N %d, %d launches, want 2 rounds of 3", name, res.N, len(res.Launches))
		}
		if want := 3 / res.Median.Seconds(); res.Rate != want {
			t.Errorf("%s: rate %v, want %v", name, res.Rate, want)
		}
		for _, l := range res.Launches {
			if l > res.Max {
				t.Errorf("%s: a launch took %v, longer than its round (max %v)", name, l, res.Max)
			}
		}
	}
	if rounds.Load() != 1 {
		t.Errorf("%d progress lines, want 1", rounds.Load())
	}
}

type writerFunc func(p []byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }

func TestStartupParallelFailureNamesLaunch(t *testing.T) {
	root := testRootFS(t)
	oak := standIn(t, "echo 'no slot left' >&2\nexit 4\n")
	_, err := StartupSuite(context.Background(), StartupConfig{
		RootFS: root, Cases: []string{CaseParallel}, Parallel: []int{2}, Rounds: 1,
		Variants: []string{VariantOak}, OakPath: oak, WorkDir: t.TempDir(),
	})
	if err == nil || !strings.Contains(err.Error(), "no slot left") || !strings.Contains(err.Error(), "exit status 4") {
		t.Errorf("err = %v, want the launch's stderr and status", err)
	}
}

func TestStartupSuiteRefuses(t *testing.T) {
	root := testRootFS(t)
	tests := []struct {
		cfg  StartupConfig
		want string
	}{
		{StartupConfig{RootFS: root, Cases: []string{"hot"}}, `unknown case "hot"`},
		{StartupConfig{RootFS: root, Parallel: []int{0}}, "parallel launches 0"},
		{StartupConfig{RootFS: root, Parallel: []int{8, 100000}}, "parallel launches 100000"},
	}
	for _, tt := range tests {
		_, err := StartupSuite(context.Background(), tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: err = %v, want one containing %q", tt.cfg, err, tt.want)
		}
	}
}

// The first-response case of a plain busybox httpd: each run ends at a
// 200, and the servers are gone afterwards.
func TestFirstResponsePlain(t *testing.T) {
	if out, err := exec.Command("/bin/busybox", "httpd", "--help").CombinedOutput(); err != nil && !strings.Contains(string(out), "httpd") {
		t.Skip("busybox has no httpd")
	}
	root := testRootFS(t)
	reps, err := StartupSuite(context.Background(), StartupConfig{
		RootFS: root, Cases: []string{CaseFirstResponse}, Variants: []string{VariantPlain},
		ResponseRuns: 2, WorkDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	res, _ := reps[0].Result(VariantPlain)
	if reps[0].Case != CaseFirstResponse || res.N != 2 {
		t.Fatalf("report %+v", reps[0])
	}
	if !strings.Contains(res.Detail, "httpd -f -p 127.0.0.1:") {
		t.Errorf("detail %q", res.Detail)
	}
	out, _ := exec.Command("pgrep", "-f", "httpd-root/www").Output()
	if len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("httpd left running: pids %s", out)
	}
}

func TestParseStatusLine(t *testing.T) {
	tests := []struct {
		line string
		code int
		ok   bool
	}{
		{"HTTP/1.0 200 OK\r\n", 200, true},
		{"HTTP/1.1 404 Not Found\r\n", 404, true},
		{"HTTP/1.1 200\r\n", 200, true},
		{"HTTP/2 200\r\n", 0, false},
		{"HTTP/1.1 20 OK", 0, false},
		{"HTTP/1.1 abc OK", 0, false},
		{"SSH-2.0-OpenSSH", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		code, err := parseStatusLine(tt.line)
		if (err == nil) != tt.ok || code != tt.code {
			t.Errorf("parseStatusLine(%q) = %d, %v; want %d, ok %v", tt.line, code, err, tt.code, tt.ok)
		}
	}
}

func FuzzParseStatusLine(f *testing.F) {
	for _, s := range []string{"HTTP/1.0 200 OK\r\n", "HTTP/1.1 999 x", "HTTP/1. 2000", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		code, err := parseStatusLine(line)
		if err == nil && (code < 100 || code > 999) {
			t.Errorf("parseStatusLine(%q) = %d without error", line, code)
		}
	})
}

// waitHTTP200 stops at once when the server is gone, and refuses a status
// other than 200.
func TestWaitHTTP200(t *testing.T) {
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	gone := errors.New("server exited")
	err = waitHTTP200(context.Background(), addr, time.Minute, func() error { return gone })
	if !errors.Is(err, gone) {
		t.Errorf("nothing listening, server gone: err = %v", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			bufio.NewReader(c).ReadString('\n')
			io.WriteString(c, "HTTP/1.0 404 Not Found\r\n\r\n")
			c.Close()
		}
	}()
	err = waitHTTP200(context.Background(), addr, time.Minute, func() error { return nil })
	if err == nil || !strings.Contains(err.Error(), "status 404") {
		t.Errorf("404: err = %v", err)
	}
}

// Without its own network namespace, the runc spec keeps every other
// namespace.
func TestEditRuncSpecHostNetwork(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.json")
	in := `{"process":{"args":["sh"]},"linux":{"namespaces":[{"type":"pid"},{"type":"network"},{"type":"mount"}]}}`
	if err := os.WriteFile(p, []byte(in), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := editRuncSpec(p, "/r", []string{"/bin/busybox", "httpd"}, false); err != nil {
		t.Fatal(err)
	}
	out, _ := os.ReadFile(p)
	s := strings.Join(strings.Fields(string(out)), "")
	if !strings.Contains(s, `"namespaces":[{"type":"pid"},{"type":"mount"}]`) || !strings.Contains(s, `"args":["/bin/busybox","httpd"]`) {
		t.Errorf("edited spec:\n%s", out)
	}
	if err := os.WriteFile(p, []byte(`{"process":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := editRuncSpec(p, "/r", []string{"x"}, false); err == nil {
		t.Error("a spec without linux accepted for the host network")
	}
}

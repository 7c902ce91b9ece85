//go:build linux

// Package conformance runs the OCI runtime-tools validation suite
// (v0.9.0, the last release that carries validation/) against
// oak-runtime and, as the reference, runc, in the same run.
//
// The suite comes from the Go module proxy (`go mod download`, cached in
// /var/cache/oak-conformance) and is built with the pinned dependencies
// of testdata/runtime-tools.go.mod. Each validation program is a TAP
// producer driving the runtime named by $RUNTIME; this test runs every
// program once per runtime, in sequence, in a mount namespace of its own
// (runc's rootfs-propagation test would otherwise leave mounts on the
// host), with its bundles in the test's temporary directory, and records
// every assertion's result. Oak's results are held to expected.txt:
// a program listed as passing must pass, and a failing one must fail only
// for the listed, documented reasons — and still fail for each of them.
// runc's results are recorded, not judged: it fails some tests on this
// host's hybrid cgroup layout.
//
// OAK_CONFORMANCE=0 skips the test; OAK_CONFORMANCE_REPORT=FILE writes
// the per-program table and every assertion's result there.
package conformance

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	suiteModule  = "github.com/opencontainers/runtime-tools"
	suiteVersion = "v0.9.0"
	// defaultCache keeps the downloaded module between runs.
	defaultCache = "/var/cache/oak-conformance"
	// programTimeout bounds one validation program; the slowest take
	// about 20 s (they poll state once a second).
	programTimeout = 2 * time.Minute
	// parallelPrograms is how many programs run at once.
	parallelPrograms = 3
)

//go:embed expected.txt
var expectedText string

//go:embed testdata/runtime-tools.go.mod
var suiteGoMod []byte

//go:embed testdata/runtime-tools.go.sum
var suiteGoSum []byte

// result is one program's run under one runtime.
type result struct {
	run      *tapRun
	verdict  outcome
	failures []failure
	elapsed  time.Duration
}

func TestConformance(t *testing.T) {
	switch {
	case os.Getenv("OAK_CONFORMANCE") == "0":
		t.Skip("OAK_CONFORMANCE=0")
	case os.Geteuid() != 0:
		t.Skip("the validation suite starts containers and needs root")
	case runtime.GOARCH != "amd64":
		t.Skipf("the suite ships a root file system for amd64 only, not %s", runtime.GOARCH)
	}
	exp, err := parseExpectations(expectedText)
	if err != nil {
		t.Fatal(err)
	}
	runcPath, err := exec.LookPath("runc")
	if err != nil {
		t.Fatalf("runc, the reference runtime, is not installed: %v", err)
	}

	work := t.TempDir()
	// Containers run as unprivileged host users and must reach their
	// bundles.
	if err := os.Chmod(work, 0o755); err != nil {
		t.Fatal(err)
	}
	binDir := filepath.Join(work, "bin")
	programs := buildSuite(t, binDir)
	oakBin := buildOak(t, work)

	if err := os.Symlink(oakBin, filepath.Join(work, "oak-runtime")); err != nil {
		t.Fatal(err)
	}
	runtimes := map[string]string{"oak": filepath.Join(work, "oak-runtime"), "runc": runcPath}
	tmp := filepath.Join(work, "tmp")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	cgroupsBefore := suiteCgroups()
	t.Cleanup(func() { removeSuiteCgroups(t, cgroupsBefore) })

	// The programs mostly wait (they poll state once a second): a few run
	// at once, each with a state root of its own, except that those using
	// the suite's fixed cgroup paths run one at a time.
	type job struct{ program, runtime string }
	jobs := make(chan job)
	results := map[string]map[string]*result{} // program → runtime → result
	wrappers := map[job]string{}
	for _, p := range programs {
		results[p] = map[string]*result{}
		for rt, bin := range runtimes {
			wrappers[job{p, rt}] = wrapper(t, work, rt+"-"+p, bin)
		}
	}
	var mu, cgroupLock sync.Mutex
	var wg sync.WaitGroup
	for range parallelPrograms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				wrap := wrappers[j]
				if usesSuiteCgroups(j.program) {
					cgroupLock.Lock()
				}
				res := runProgram(t, binDir, j.program, wrap, tmp)
				removeLeftovers(t, wrap, j.runtime, j.program)
				if usesSuiteCgroups(j.program) {
					cgroupLock.Unlock()
				}
				mu.Lock()
				results[j.program][j.runtime] = res
				mu.Unlock()
			}
		}()
	}
	for _, p := range programs {
		for _, rt := range []string{"oak", "runc"} {
			jobs <- job{p, rt}
		}
	}
	close(jobs)
	wg.Wait()

	report := formatReport(programs, results, exp)
	t.Log("\n" + report)
	if path := os.Getenv("OAK_CONFORMANCE_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(report+"\n"+formatAssertions(programs, results)), 0o644); err != nil {
			t.Errorf("write report: %v", err)
		}
	}
	for _, p := range programs {
		r := results[p]["oak"]
		for _, problem := range exp.check(p, r.verdict, r.failures) {
			t.Error(problem)
		}
	}
	for _, p := range exp.unrun(programs) {
		t.Errorf("%s: listed in expected.txt but the suite has no such program", p)
	}
}

// buildSuite downloads runtime-tools and builds runtimetest and every
// validation program into dir, beside the suite's root file system
// archive (the programs look for both in their working directory). It
// returns the programs' names.
func buildSuite(t *testing.T, dir string) []string {
	t.Helper()
	cache := os.Getenv("OAK_CONFORMANCE_CACHE")
	if cache == "" {
		cache = defaultCache
	}
	env := append(os.Environ(),
		"GOMODCACHE="+filepath.Join(cache, "gomod"),
		"GOFLAGS=-mod=mod -buildvcs=false",
		"GOWORK=off",
		"GOTOOLCHAIN=local",
	)
	out, err := command(env, "", "go", "mod", "download", "-json", suiteModule+"@"+suiteVersion)
	if err != nil {
		t.Fatalf("go mod download %s@%s: %v\n%s", suiteModule, suiteVersion, err, out)
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download %s@%s: no module directory in %q (%v)", suiteModule, suiteVersion, out, err)
	}
	// The module has no go.mod of its own (it vendored with Godeps):
	// build a copy with ours.
	src := filepath.Join(filepath.Dir(dir), "runtime-tools")
	if err := os.CopyFS(src, os.DirFS(mod.Dir)); err != nil {
		t.Fatalf("copy %s: %v", mod.Dir, err)
	}
	for name, data := range map[string][]byte{"go.mod": suiteGoMod, "go.sum": suiteGoSum} {
		if err := os.WriteFile(filepath.Join(src, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := command(env, src, "go", "build", "-o", dir+"/", "./validation/..."); err != nil {
		t.Fatalf("build the validation programs: %v\n%s", err, out)
	}
	// runtimetest runs inside the containers: static.
	if out, err := command(append(env, "CGO_ENABLED=0"), src, "go", "build", "-o", filepath.Join(dir, "runtimetest"), "./cmd/runtimetest"); err != nil {
		t.Fatalf("build runtimetest: %v\n%s", err, out)
	}
	archive := fmt.Sprintf("rootfs-%s.tar.gz", runtime.GOARCH)
	data, err := os.ReadFile(filepath.Join(src, archive))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, archive), data, 0o644); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(src, "validation"))
	if err != nil {
		t.Fatal(err)
	}
	var programs []string
	for _, e := range entries {
		if e.IsDir() && e.Name() != "util" {
			programs = append(programs, e.Name())
		}
	}
	sort.Strings(programs)
	if len(programs) == 0 {
		t.Fatalf("no validation programs in %s", mod.Dir)
	}
	return programs
}

// buildOak builds the oak binary of this tree.
func buildOak(t *testing.T, work string) string {
	t.Helper()
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(work, "oak")
	if out, err := command(os.Environ(), repo, "go", "build", "-o", bin, "./cmd/oak"); err != nil {
		t.Fatalf("build oak: %v\n%s", err, out)
	}
	return bin
}

// wrapper writes a script that runs bin with a state root of its own:
// the suite calls $RUNTIME with runc's verbs and no global flags.
func wrapper(t *testing.T, work, name, bin string) string {
	t.Helper()
	root := filepath.Join(work, "state-"+name)
	path := filepath.Join(work, "runtime-"+name)
	script := fmt.Sprintf("#!/bin/sh\nexec %q --root %q \"$@\"\n", bin, root)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func command(env []string, dir, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Env, cmd.Dir = env, dir
	return cmd.CombinedOutput()
}

// runProgram runs one validation program against one runtime.
func runProgram(t *testing.T, binDir, program, runtimePath, tmp string) *result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), programTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, program))
	cmd.Dir = binDir
	cmd.Env = append(os.Environ(), "RUNTIME="+runtimePath, "TMPDIR="+tmp)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Go makes every mount private in the new namespace: what the
		// runtimes mount there never reaches the host.
		Unshareflags: syscall.CLONE_NEWNS,
		Setpgid:      true,
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	start := time.Now()
	err := cmd.Run()
	res := &result{run: parseTAP(stdout.String()), elapsed: time.Since(start)}
	var exitErr error
	switch {
	case ctx.Err() != nil:
		exitErr = fmt.Errorf("timed out after %v", programTimeout)
	case err != nil:
		exitErr = errors.New(err.Error() + lastLine(stderr.String()))
	}
	res.verdict, res.failures = verdict(res.run, exitErr, loggedErrors(stderr.String()))
	return res
}

// removeLeftovers deletes, by force, every container a program left
// under the runtime's state root (a program that failed half-way does
// not clean up after itself).
func removeLeftovers(t *testing.T, runtimePath, name, program string) {
	t.Helper()
	out, err := exec.Command(runtimePath, "list", "-q").Output()
	if err != nil {
		return // no state root yet
	}
	for _, id := range strings.Fields(string(out)) {
		if out, err := exec.Command(runtimePath, "delete", "--force", id).CombinedOutput(); err != nil {
			t.Errorf("%s left container %s under %s; delete --force: %v\n%s", program, id, name, err, out)
		}
	}
}

// usesSuiteCgroups tells whether a program puts its containers in the
// suite's fixed cgroup paths.
func usesSuiteCgroups(program string) bool {
	return strings.Contains(program, "cgroups") || strings.HasPrefix(program, "delete_")
}

// suiteCgroups is the cgroup directories the suite's cgroup tests use
// that exist: runtime-tools' cgroups.AbsCgroupPath at each hierarchy's
// root, and its RelCgroupPath under this process's own group, where runc
// takes a relative path to be.
func suiteCgroups() map[string]bool {
	patterns := []string{"/sys/fs/cgroup/*/cgrouptest"}
	bases := []string{"/sys/fs/cgroup/*"}
	if b, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			parts := strings.SplitN(line, ":", 3)
			if len(parts) != 3 || parts[2] == "/" {
				continue
			}
			dir := strings.TrimPrefix(parts[1], "name=")
			if dir == "" {
				dir = "unified"
			}
			bases = append(bases, filepath.Join("/sys/fs/cgroup", dir, parts[2]))
		}
	}
	for _, base := range bases {
		patterns = append(patterns, base+"/testdir", base+"/testdir/cgrouptest", base+"/testdir/cgrouptest/container")
	}
	found := map[string]bool{}
	for _, pattern := range patterns {
		matches, _ := filepath.Glob(pattern)
		for _, m := range matches {
			found[m] = true
		}
	}
	return found
}

// removeSuiteCgroups removes the suite's cgroup directories that were
// not there before it ran, deepest first.
func removeSuiteCgroups(t *testing.T, before map[string]bool) {
	var made []string
	for dir := range suiteCgroups() {
		if !before[dir] {
			made = append(made, dir)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(made)))
	for _, dir := range made {
		if err := os.Remove(dir); err != nil {
			t.Errorf("remove the suite's cgroup %s: %v", dir, err)
		}
	}
}

// formatReport is the per-program table: each runtime's ok / not ok /
// skipped assertions and verdict, and Oak's expectation.
func formatReport(programs []string, results map[string]map[string]*result, exp *expectations) string {
	var b strings.Builder
	totals := map[string][3]int{}     // programs passed, failed, skipped
	assertions := map[string][3]int{} // assertions ok, not ok, skipped
	fmt.Fprintf(&b, "runtime-tools %s validation: assertions ok/not ok/skipped\n\n", suiteVersion)
	fmt.Fprintf(&b, "| program | Oak | runc | expected for Oak |\n|---|---|---|---|\n")
	for _, p := range programs {
		cells := []string{p}
		for _, rt := range []string{"oak", "runc"} {
			r := results[p][rt]
			ok, bad, sk := r.run.counts()
			cells = append(cells, fmt.Sprintf("%s %d/%d/%d", r.verdict, ok, bad, sk))
			tot := totals[rt]
			tot[r.verdict]++
			totals[rt] = tot
			a := assertions[rt]
			assertions[rt] = [3]int{a[0] + ok, a[1] + bad, a[2] + sk}
		}
		want := "not listed"
		if e, ok := exp.programs[p]; ok {
			switch {
			case e.pass:
				want = "pass"
			case e.flaky:
				want = "pass or fail: " + strings.Join(e.classes, ", ")
			default:
				want = "fail: " + strings.Join(e.classes, ", ")
			}
		}
		cells = append(cells, want)
		fmt.Fprintf(&b, "| %s |\n", strings.Join(cells, " | "))
	}
	fmt.Fprintln(&b)
	for _, rt := range []string{"oak", "runc"} {
		tot := totals[rt]
		a := assertions[rt]
		fmt.Fprintf(&b, "%s: %d programs passed, %d failed, %d skipped; assertions: %d ok, %d not ok, %d skipped\n",
			rt, tot[pass], tot[fail], tot[skip], a[0], a[1], a[2])
	}
	return b.String()
}

// formatAssertions lists every assertion of every program under each
// runtime, and each failure that decided a verdict.
func formatAssertions(programs []string, results map[string]map[string]*result) string {
	var b strings.Builder
	for _, p := range programs {
		for _, rt := range []string{"oak", "runc"} {
			r := results[p][rt]
			fmt.Fprintf(&b, "\n## %s under %s: %v (%.1fs)\n", p, rt, r.verdict, r.elapsed.Seconds())
			var list func(run *tapRun, indent string)
			list = func(run *tapRun, indent string) {
				for _, a := range run.assertions {
					fmt.Fprintf(&b, "%s%d\t%v\t%s\n", indent, a.num, a.result, a.desc)
					if a.inner != nil {
						list(a.inner, indent+"\t")
					}
				}
			}
			list(r.run, "")
			for _, f := range r.failures {
				fmt.Fprintf(&b, "FAILURE\t%s\n", f.describe())
			}
		}
	}
	return b.String()
}

//go:build linux

// Package integration starts real Oak containers and checks, from inside
// them and from the host, that what must be impossible is.
//
// The tests drive the oak binary only through its command line (oak run,
// ps, logs, kill, rm, demo-rootfs with a --root state directory), each test
// with its own state root, so they can run in parallel. They need root on Linux; elsewhere, or
// as another user, every test skips.
//
// TestMain builds oak (./cmd/oak) and the probe (./tests/probe, a static Go
// program that tries one thing inside a container and prints "ok" or
// "err ERRNO"), and a test image: `oak demo-rootfs` plus the probe at
// /bin/probe (or, if demo-rootfs fails, the host's static busybox with its
// applet links, so that the other tests can still say something).
package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	// skipReason, if set, makes every test skip.
	skipReason string
	// setupErr, if set, makes every test fail: the suite could not build
	// what it tests.
	setupErr error

	workDir    string // holds the binaries and images, removed at the end
	oakBin     string // the oak binary under test
	probeBin   string // the probe, also copied into rootfsDir/bin/probe
	rootfsDir  string // the shared test image; never written by tests
	rootfsNote string // how the image was made
)

// Default bound on one oak invocation: a hung oak fails its test instead of
// the whole run.
const oakTimeout = 60 * time.Second

func TestMain(m *testing.M) {
	switch {
	case runtime.GOOS != "linux":
		skipReason = "Oak containers need Linux"
	case os.Geteuid() != 0:
		skipReason = "integration tests start containers and need root"
	default:
		setupErr = setup()
	}
	code := m.Run()
	if workDir != "" {
		os.RemoveAll(workDir)
	}
	os.Exit(code)
}

func setup() error {
	repo, err := filepath.Abs("../..")
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(repo, "go.mod")); err != nil {
		return fmt.Errorf("repository root not found at %s: %w", repo, err)
	}
	workDir, err = os.MkdirTemp("", "oak-it-")
	if err != nil {
		return err
	}
	// The container's user is an unprivileged host uid: everything the
	// image needs must be reachable by "others".
	if err := os.Chmod(workDir, 0o755); err != nil {
		return err
	}
	oakBin = filepath.Join(workDir, "oak")
	probeBin = filepath.Join(workDir, "probe")
	if out, err := goBuild(repo, oakBin, "./cmd/oak", false); err != nil {
		return fmt.Errorf("build oak: %v\n%s", err, out)
	}
	if out, err := goBuild(repo, probeBin, "./tests/probe", true); err != nil {
		return fmt.Errorf("build probe: %v\n%s", err, out)
	}
	rootfsDir = filepath.Join(workDir, "rootfs")
	out, err := exec.Command(oakBin, "--root", filepath.Join(workDir, "state"), "demo-rootfs", rootfsDir).CombinedOutput()
	if err != nil {
		rootfsNote = fmt.Sprintf("oak demo-rootfs failed (%v: %s); image built from the host's busybox", err, bytes.TrimSpace(out))
		os.RemoveAll(rootfsDir)
		if err := busyboxRootfs(rootfsDir); err != nil {
			return fmt.Errorf("%s: %w", rootfsNote, err)
		}
	} else {
		rootfsNote = "image made by oak demo-rootfs"
	}
	// A C program with one thread, as most servers are when they set up
	// their sockets (the probe, in Go, always has several).
	if out, err := exec.Command("gcc", "-static", "-O2", "-o", filepath.Join(rootfsDir, "bin", "unixsock"),
		filepath.Join(repo, "tests/integration/testdata/unixsock.c"), "-lpthread").CombinedOutput(); err != nil {
		return fmt.Errorf("build testdata/unixsock.c: %v\n%s", err, out)
	}
	return copyFile(probeBin, filepath.Join(rootfsDir, "bin", "probe"), 0o755)
}

func goBuild(repo, out, pkg string, static bool) ([]byte, error) {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = repo
	cmd.Env = os.Environ()
	if static {
		cmd.Env = append(cmd.Env, "CGO_ENABLED=0")
	}
	return cmd.CombinedOutput()
}

// busyboxRootfs makes a minimal image from the host's busybox, which must
// be statically linked.
func busyboxRootfs(dir string) error {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		return err
	}
	for _, d := range []string{"bin", "proc", "dev", "tmp", "etc", "sys"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := copyFile(bb, filepath.Join(dir, "bin", "busybox"), 0o755); err != nil {
		return err
	}
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		return fmt.Errorf("busybox --list: %w", err)
	}
	for _, name := range strings.Fields(string(out)) {
		if name == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", name)); err != nil && !os.IsExist(err) {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "etc", "passwd"), []byte("root:x:0:0:root:/:/bin/sh\n"), 0o644)
}

func copyFile(src, dst string, mode os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		return err
	}
	return os.Chmod(dst, mode)
}

// needOak skips or fails t when the suite cannot run, and otherwise marks
// it parallel when parallel is true.
func needOak(t *testing.T, parallel bool) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	if setupErr != nil {
		t.Fatalf("suite setup: %v", setupErr)
	}
	if parallel {
		t.Parallel()
	}
}

// ---- running oak ----

// oakEnv is one test's view of oak: its own state root and environment.
type oakEnv struct {
	t    *testing.T
	root string
	env  []string // extra environment for oak
	// files are passed to oak as fds 3, 4, ...: what a shell's 3<file
	// would hand it.
	files []*os.File
}

// newOak gives t a fresh state root. At the end of the test every container
// still running under it is removed, and every host process it recorded is
// killed, so a failing test leaves nothing behind.
func newOak(t *testing.T) *oakEnv {
	t.Helper()
	o := &oakEnv{t: t, root: t.TempDir()}
	t.Cleanup(o.cleanup)
	return o
}

func (o *oakEnv) cleanup() {
	entries, err := o.psAll()
	if err != nil {
		o.t.Logf("cleanup: oak ps: %v", err)
	}
	for _, e := range entries {
		if e.Status == "running" {
			r := o.run("rm", "-f", e.ID)
			if r.code != 0 {
				o.t.Logf("cleanup: oak rm -f %s: %s", e.ID, r)
			}
		}
		if e.Pid > 0 {
			syscall.Kill(e.Pid, syscall.SIGKILL)
		}
	}
	// The daemon the CLI started for this root (none with OAK_NO_DAEMON=1).
	if r := o.run("daemon", "stop"); r.code != 0 {
		o.t.Errorf("cleanup: %s", r)
	}
}

// result is one finished oak invocation.
type result struct {
	args     []string
	stdout   string
	stderr   string
	code     int // exit status; -N if oak itself died by signal N; -1000 on timeout
	elapsed  time.Duration
	timedOut bool
}

func (r result) String() string {
	return fmt.Sprintf("oak %s: exit %d after %v\n--- stdout:\n%s--- stderr:\n%s---",
		strings.Join(r.args, " "), r.code, r.elapsed.Round(time.Millisecond), r.stdout, r.stderr)
}

func (o *oakEnv) command(ctx context.Context, args ...string) *exec.Cmd {
	full := append([]string{"--root", o.root}, args...)
	cmd := exec.CommandContext(ctx, oakBin, full...)
	cmd.Env = append(os.Environ(), o.env...)
	cmd.ExtraFiles = o.files
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGKILL) }
	// oak -d must not leave the caller's stdout/stderr open in its
	// background supervisor; if it does, Wait returns ErrWaitDelay.
	cmd.WaitDelay = 3 * time.Second
	return cmd
}

// run runs oak with args, bounded by oakTimeout.
func (o *oakEnv) run(args ...string) result {
	return o.runTimeout(oakTimeout, args...)
}

func (o *oakEnv) runTimeout(d time.Duration, args ...string) result {
	o.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := o.command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{args: args, elapsed: time.Since(start)}
	r.stdout, r.stderr = stdout.String(), stderr.String()
	r.code = exitCode(cmd, err)
	if ctx.Err() != nil {
		r.timedOut = true
		r.code = -1000
		o.t.Errorf("oak %s did not return within %v (killed)\n%s", strings.Join(args, " "), d, r)
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		o.t.Errorf("oak %s returned but left its stdout/stderr open in another process", strings.Join(args, " "))
	}
	return r
}

func exitCode(cmd *exec.Cmd, err error) int {
	if cmd.ProcessState == nil {
		if err != nil {
			return -2000
		}
		return 0
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -int(ws.Signal())
	}
	return cmd.ProcessState.ExitCode()
}

// bg is an oak process running in the background.
type bg struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	mu     sync.Mutex
	stdout bytes.Buffer
	stderr bytes.Buffer
	done   chan struct{}
	res    result
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// start starts oak with args and returns at once; wait collects it.
func (o *oakEnv) start(args ...string) *bg {
	o.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*oakTimeout)
	b := &bg{cancel: cancel, done: make(chan struct{})}
	b.cmd = o.command(ctx, args...)
	b.cmd.Stdout = lockedWriter{&b.mu, &b.stdout}
	b.cmd.Stderr = lockedWriter{&b.mu, &b.stderr}
	t0 := time.Now()
	if err := b.cmd.Start(); err != nil {
		cancel()
		o.t.Fatalf("start oak %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		err := b.cmd.Wait()
		b.mu.Lock()
		b.res = result{args: args, stdout: b.stdout.String(), stderr: b.stderr.String(),
			code: exitCode(b.cmd, err), elapsed: time.Since(t0)}
		b.mu.Unlock()
		close(b.done)
	}()
	o.t.Cleanup(func() {
		b.cmd.Process.Kill()
		<-b.done
		cancel()
	})
	return b
}

// wait waits up to d for the background oak to end; ok is false if it is
// still running.
func (b *bg) wait(d time.Duration) (r result, ok bool) {
	select {
	case <-b.done:
		return b.res, true
	case <-time.After(d):
		return result{}, false
	}
}

func (b *bg) output() (string, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stdout.String(), b.stderr.String()
}

// ---- oak ps ----

// psEntry is one line of oak ps --no-trunc --format json (keys as docker's).
type psEntry struct {
	ID       string          `json:"ID"`
	Name     string          `json:"Names"`
	Status   string          `json:"State"` // created, running, exited, broken
	ExitCode int             `json:"ExitCode"`
	Pid      int             `json:"Pid"`
	Command  json.RawMessage `json:"Command"`
	Created  json.RawMessage `json:"CreatedAt"`
	Problem  string          `json:"Problem"`
}

func (o *oakEnv) ps(all bool) ([]psEntry, error) {
	args := []string{"ps", "--no-trunc", "--format", "json"}
	if all {
		args = append(args, "-a")
	}
	r := o.run(args...)
	if r.code != 0 {
		return nil, fmt.Errorf("%s", r)
	}
	es, err := jsonLines[psEntry](r.stdout)
	if err != nil {
		return nil, fmt.Errorf("oak ps: %v\n%s", err, r.stdout)
	}
	return es, nil
}

// jsonLines parses what --format json of a listing prints: one JSON
// object a line.
func jsonLines[T any](out string) ([]T, error) {
	var vs []T
	for i, l := range lines(out) {
		var v T
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			return nil, fmt.Errorf("line %d is not JSON: %v: %q", i+1, err, l)
		}
		vs = append(vs, v)
	}
	return vs, nil
}

func (o *oakEnv) psAll() ([]psEntry, error) { return o.ps(true) }

// find returns the ps -a entry whose id or name is ref.
func (o *oakEnv) find(ref string) (psEntry, bool) {
	o.t.Helper()
	es, err := o.psAll()
	if err != nil {
		o.t.Fatal(err)
	}
	for _, e := range es {
		if e.ID == ref || e.Name == ref {
			return e, true
		}
	}
	return psEntry{}, false
}

// waitFor polls ps -a until cond holds for ref's entry, up to d.
func (o *oakEnv) waitFor(ref string, d time.Duration, what string, cond func(psEntry, bool) bool) psEntry {
	o.t.Helper()
	deadline := time.Now().Add(d)
	for {
		e, ok := o.find(ref)
		if cond(e, ok) {
			return e
		}
		if time.Now().After(deadline) {
			o.t.Fatalf("container %s: not %s after %v; last ps entry: %+v (found %v)", ref, what, d, e, ok)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (o *oakEnv) waitRunning(ref string) psEntry {
	o.t.Helper()
	return o.waitFor(ref, 20*time.Second, "running", func(e psEntry, ok bool) bool {
		return ok && e.Status == "running" && e.Pid > 0
	})
}

func (o *oakEnv) waitExited(ref string, d time.Duration) psEntry {
	o.t.Helper()
	return o.waitFor(ref, d, "exited", func(e psEntry, ok bool) bool {
		return ok && e.Status == "exited"
	})
}

// runD starts a detached container and returns its id.
func (o *oakEnv) runD(args ...string) string {
	o.t.Helper()
	r := o.run(append([]string{"run", "-d"}, args...)...)
	id := strings.TrimSpace(r.stdout)
	if r.code != 0 || id == "" || strings.ContainsAny(id, " \n\t") {
		o.t.Fatalf("oak run -d did not print one container id and exit 0:\n%s", r)
	}
	return id
}

// containerDirs lists what is under the state root's containers/ folder.
func (o *oakEnv) containerDirs() []string {
	ents, err := os.ReadDir(filepath.Join(o.root, "containers"))
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// probe runs /bin/probe ARGS in a fresh container and returns its one
// output line; the run must succeed.
func (o *oakEnv) probe(args ...string) string {
	o.t.Helper()
	return o.probeWith(nil, args...)
}

// probeWith is probe with extra flags for oak run.
func (o *oakEnv) probeWith(flags []string, args ...string) string {
	o.t.Helper()
	run := append(append([]string{"run"}, flags...), rootfsDir, "/bin/probe")
	r := o.run(append(run, args...)...)
	if r.code != 0 {
		o.t.Fatalf("probe %s did not run:\n%s", strings.Join(args, " "), r)
	}
	return strings.TrimSpace(r.stdout)
}

// ---- host processes ----

// procStat is what the tests need from /proc/PID/stat.
type procStat struct {
	state byte
	ppid  int
	start uint64
}

func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return procStat{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	start, _ := strconv.ParseUint(f[19], 10, 64)
	return procStat{state: f[0][0], ppid: ppid, start: start}, true
}

// hostProc identifies a host process across pid reuse.
type hostProc struct {
	pid   int
	start uint64
}

func (p hostProc) alive() bool {
	st, ok := readStat(p.pid)
	return ok && st.start == p.start && st.state != 'Z' && st.state != 'X'
}

// pidNS is the pid namespace of pid as "pid:[inode]".
func pidNS(pid int) (string, error) {
	return os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/pid")
}

// procsInNS lists the live host processes in pid namespace ns.
func procsInNS(ns string) []hostProc {
	ents, _ := os.ReadDir("/proc")
	var ps []hostProc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, err := pidNS(pid); err != nil || l != ns {
			continue
		}
		if st, ok := readStat(pid); ok && st.state != 'Z' {
			ps = append(ps, hostProc{pid, st.start})
		}
	}
	return ps
}

// childrenOf lists the host pids whose parent is pid.
func childrenOf(pid int) []int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func comm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

// waitChildComm waits until the process pid (a container's init) has a
// child named name, and returns that child's pid.
func waitChildComm(t *testing.T, pid int, name string, d time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		for _, c := range childrenOf(pid) {
			if comm(c) == name {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d has no child %q after %v (children %v)", pid, name, d, childrenOf(pid))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// statusField returns the value of a "Key:" line of /proc/PID/status.
func statusField(pid int, key string) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("/proc/%d/status has no %s line", pid, key)
}

// readFirst reads a small file and trims it; "" if it cannot be read.
func readFirst(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 1<<16))
	return strings.TrimSpace(string(b))
}

func lines(s string) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func randHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	f, err := os.Open("/dev/urandom")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.ReadFull(f, b); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", b)
}

// sub is o as seen from subtest t: same state root, failures reported to t.
func (o *oakEnv) sub(t *testing.T) *oakEnv {
	c := *o
	c.t = t
	return &c
}

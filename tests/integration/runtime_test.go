//go:build linux

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The OCI runtime (oak-runtime, a link to the oak binary) driven the way
// podman's conmon and containerd's shim drive runc, then by podman and
// containerd themselves.

// rtEnv is one test's oak-runtime: its link and its state root.
type rtEnv struct {
	t    *testing.T
	bin  string
	root string
}

func newRuntime(t *testing.T) *rtEnv {
	t.Helper()
	dir := t.TempDir()
	r := &rtEnv{t: t, bin: filepath.Join(dir, "oak-runtime"), root: filepath.Join(dir, "state")}
	if err := os.Symlink(oakBin, r.bin); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ents, _ := os.ReadDir(r.root)
		for _, e := range ents {
			if res := r.run(nil, "delete", "--force", e.Name()); res.code != 0 {
				t.Logf("cleanup: %s", res)
			}
		}
	})
	return r
}

// run runs oak-runtime with args. Its stdout and stderr are files, as
// conmon's pipes would be: create hands them to the container, whose
// supervisor outlives the call. out, if not nil, receives stdout.
func (r *rtEnv) run(out *os.File, args ...string) result {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), oakTimeout)
	defer cancel()
	full := append([]string{"--root", r.root}, args...)
	cmd := exec.CommandContext(ctx, r.bin, full...)
	cmd.Env = os.Environ()
	stdout, stderr := out, tempFile(r.t)
	if stdout == nil {
		stdout = tempFile(r.t)
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	start := time.Now()
	err := cmd.Run()
	res := result{args: full, elapsed: time.Since(start), code: exitCode(cmd, err)}
	res.stdout, res.stderr = readAll(stdout), readAll(stderr)
	if ctx.Err() != nil {
		res.timedOut, res.code = true, -1000
		r.t.Errorf("oak-runtime %s did not return within %v\n%s", strings.Join(args, " "), oakTimeout, res)
	}
	return res
}

func tempFile(t *testing.T) *os.File {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func readAll(f *os.File) string {
	b, _ := os.ReadFile(f.Name())
	return string(b)
}

func (r *rtEnv) state(id string) (specs.State, result) {
	r.t.Helper()
	res := r.run(nil, "state", id)
	var st specs.State
	if res.code == 0 {
		if err := json.Unmarshal([]byte(res.stdout), &st); err != nil {
			r.t.Fatalf("state %s: %v\n%s", id, err, res)
		}
	}
	return st, res
}

// waitState polls until id's status is want (bounded; not a timing claim).
func (r *rtEnv) waitState(id string, want specs.ContainerState) specs.State {
	r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, res := r.state(id)
		if st.Status == want {
			return st
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("container %s did not become %s: %+v\n%s", id, want, st, res)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// bundle writes a bundle whose root is the shared test image (an absolute
// root.path, as podman writes) and returns its directory.
func bundle(t *testing.T, args []string, change func(*specs.Spec)) string {
	t.Helper()
	dir := t.TempDir()
	s := &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{Args: args, Cwd: "/", Env: []string{"PATH=/bin:/usr/bin"}},
		Root:    &specs.Root{Path: rootfsDir},
		Mounts:  []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc"}},
		Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: "pid"}, {Type: "network"}, {Type: "ipc"},
			{Type: "uts"}, {Type: "mount"}}},
	}
	if change != nil {
		change(s)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// childPids lists the processes whose parent is pid (any of its threads).
func childPids(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if f := strings.Fields(s[i+1:]); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, n)
		}
	}
	return out
}

// TestRuntimeLifecycle: create leaves the container built but its command
// not run; start runs it; kill, state and delete follow runc's contract.
func TestRuntimeLifecycle(t *testing.T) {
	needOak(t, true)
	r := newRuntime(t)
	b := bundle(t, []string{"sh", "-c", "echo ran; cat /proc/self/uid_map; exec sleep 1000"}, func(s *specs.Spec) {
		s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL", "CAP_NET_RAW"}}
	})
	id := "life-" + randHex(t)
	out := tempFile(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	logFile := filepath.Join(t.TempDir(), "log.json")
	if res := r.run(out, "--log", logFile, "--log-format", "json", "create", "--bundle", b, "--pid-file", pidFile, id); res.code != 0 {
		t.Fatalf("create: %s", res)
	}
	// The capability beyond Oak's eight was narrowed, and the log says so
	// in runc's JSON lines.
	var entry struct{ Level, Msg, Time string }
	lb, _ := os.ReadFile(logFile)
	if json.Unmarshal(bytes.SplitN(lb, []byte("\n"), 2)[0], &entry) != nil || entry.Level != "warning" ||
		!strings.Contains(entry.Msg, "process.capabilities: CAP_NET_RAW not granted") || entry.Time == "" {
		t.Errorf("log %q, want a JSON warning about CAP_NET_RAW", lb)
	}
	st, res := r.state(id)
	if st.Status != specs.StateCreated || st.ID != id || st.Bundle != b {
		t.Fatalf("after create: %+v\n%s", st, res)
	}
	pf, _ := os.ReadFile(pidFile)
	if strings.TrimSpace(string(pf)) != strconv.Itoa(st.Pid) {
		t.Errorf("pid file says %q, state says %d", pf, st.Pid)
	}
	// The supervisor (the state's pid) has the container's init as its
	// child, and the init has not started the command.
	kids := childPids(st.Pid)
	if len(kids) != 1 {
		t.Fatalf("supervisor %d has children %v, want the container's init", st.Pid, kids)
	}
	init := kids[0]
	if c := childPids(init); len(c) != 0 {
		t.Errorf("created container's init %d already has children %v", init, c)
	}
	if s := readAll(out); s != "" {
		t.Errorf("created container already wrote %q", s)
	}
	if res := r.run(nil, "start", id); res.code != 0 {
		t.Fatalf("start: %s", res)
	}
	if st := r.waitState(id, specs.StateRunning); st.Pid == 0 {
		t.Errorf("running container without a pid: %+v", st)
	}
	if res := r.run(nil, "start", id); res.code != 1 {
		t.Errorf("second start: %s, want exit 1", res)
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(strings.Fields(readAll(out))) < 4 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	got := strings.Fields(readAll(out))
	if len(got) != 4 || got[0] != "ran" || got[1] != "0" || got[3] != "65536" {
		t.Fatalf("container output %q, want ran and a uid map of 65536 ids", got)
	}
	// Its ids are a block above the engine's (which end at 2^31).
	if host, _ := strconv.ParseUint(got[2], 10, 64); host < 1<<31 {
		t.Errorf("container root is host uid %d, want an OCI block at or above 2^31", host)
	}
	res = r.run(nil, "delete", id)
	if res.code != 1 || !strings.Contains(res.stderr, "not stopped") {
		t.Errorf("delete of a running container: %s, want exit 1 saying not stopped", res)
	}
	if res := r.run(nil, "kill", id, "KILL"); res.code != 0 {
		t.Fatalf("kill: %s", res)
	}
	r.waitState(id, specs.StateStopped)
	if res := r.run(nil, "kill", id, "9"); res.code != 1 || !strings.Contains(res.stderr, "not running") {
		t.Errorf("kill of a stopped container: %s, want exit 1 saying not running", res)
	}
	if res := r.run(nil, "delete", id); res.code != 0 {
		t.Fatalf("delete: %s", res)
	}
	if _, res := r.state(id); res.code != 1 || !strings.Contains(res.stderr, "does not exist") {
		t.Errorf("state after delete: %s, want exit 1 saying does not exist", res)
	}
	if _, err := os.Stat(filepath.Join(r.root, id)); !os.IsNotExist(err) {
		t.Errorf("state directory left after delete: %v", err)
	}
	if syscall.Kill(init, 0) == nil && comm(init) != "" {
		t.Errorf("init %d (%s) outlived its container", init, comm(init))
	}
}

// TestRuntimeRunAndErrors: run returns the command's status; a command that
// is not in the image fails create with runc's words, leaving no state; a
// TERM reaches the command through the init.
func TestRuntimeRunAndErrors(t *testing.T) {
	needOak(t, true)
	r := newRuntime(t)
	out := tempFile(t)
	// The bundle's rlimits and resources are the container's.
	b := bundle(t, []string{"sh", "-c", "echo out; echo $0 >&2; ulimit -n; ulimit -Hn; " +
		"cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; exit 7"}, func(s *specs.Spec) {
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 333, Hard: 444}}
		s.Linux.Resources = &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: 50}}
	})
	res := r.run(out, "run", "--bundle", b, "run-"+randHex(t))
	if res.code != 7 || res.stdout != "out\n333\n444\n50\n" || !strings.Contains(res.stderr, "sh") {
		t.Errorf("run: %s, want exit 7, out, rlimit 333/444 and pids.max 50", res)
	}
	// A bundle that gives root fewer capabilities than Oak's eight is
	// obeyed: only KILL here, so root cannot chown.
	b = bundle(t, []string{"sh", "-c", "grep CapBnd /proc/self/status; chown 1 /tmp && echo chowned"}, func(s *specs.Spec) {
		k := []string{"CAP_KILL"}
		s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: k, Effective: k, Permitted: k}
	})
	res = r.run(nil, "run", "--bundle", b, "caps-"+randHex(t))
	if res.code != 1 || res.stdout != "CapBnd:\t0000000000000020\n" || !strings.Contains(res.stderr, "Operation not permitted") {
		t.Errorf("run with only CAP_KILL: %s, want the bounding set 0x20 and a refused chown", res)
	}
	id := "nf-" + randHex(t)
	res = r.run(nil, "create", "--bundle", bundle(t, []string{"no-such-command"}, nil), id)
	if res.code != 1 || !strings.Contains(res.stderr, "no-such-command") || !strings.Contains(res.stderr, "executable file not found in $PATH") {
		t.Errorf("create with a missing command: %s, want exit 1 and runc's not-found words", res)
	}
	if _, err := os.Stat(filepath.Join(r.root, id)); !os.IsNotExist(err) {
		t.Errorf("failed create left state: %v", err)
	}
	if res := r.run(nil, "delete", "--force", id); res.code != 0 {
		t.Errorf("delete --force of a container that does not exist: %s, want success as runc", res)
	}

	id = "term-" + randHex(t)
	out = tempFile(t)
	b = bundle(t, []string{"sh", "-c", "trap 'echo got TERM; exit 3' TERM; echo ready; while :; do sleep 0.05; done"}, nil)
	if res := r.run(out, "create", "--bundle", b, id); res.code != 0 {
		t.Fatalf("create: %s", res)
	}
	if res := r.run(nil, "start", id); res.code != 0 {
		t.Fatalf("start: %s", res)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(readAll(out), "ready") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if res := r.run(nil, "kill", id); res.code != 0 { // SIGTERM, runc's default
		t.Fatalf("kill: %s", res)
	}
	r.waitState(id, specs.StateStopped)
	if got := readAll(out); got != "ready\ngot TERM\n" {
		t.Errorf("output %q, want the trap's line", got)
	}
	var rec struct {
		ExitCode *int `json:"exit_code"`
	}
	b2, _ := os.ReadFile(filepath.Join(r.root, id, "state.json"))
	if json.Unmarshal(b2, &rec) != nil || rec.ExitCode == nil || *rec.ExitCode != 3 {
		t.Errorf("recorded exit %s, want 3", b2)
	}
}

// TestRuntimeNarrowingFields: what a bundle asks that only narrows the
// container is done, seen from inside: linux.maskedPaths hide the image's
// files and directories, linux.readonlyPaths refuse writes (EROFS) while
// the rest of the root stays writable, process.oomScoreAdj and
// process.user.additionalGids are the command's.
func TestRuntimeNarrowingFields(t *testing.T) {
	needOak(t, true)
	// What is masked must be there to hide.
	if fi, err := os.Stat(filepath.Join(rootfsDir, "etc/group")); err != nil || fi.Size() == 0 {
		t.Fatalf("the test image needs a non-empty /etc/group: %v", err)
	}
	if ents, err := os.ReadDir(filepath.Join(rootfsDir, "usr")); err != nil || len(ents) == 0 {
		t.Fatalf("the test image needs a non-empty /usr: %v", err)
	}
	r := newRuntime(t)
	b := bundle(t, []string{"sh", "-c", "wc -c < /etc/group; ls /usr | wc -l; cat /proc/self/oom_score_adj; " +
		"touch /etc/new 2>&1; touch /var/new && echo var writable; id -G"}, func(s *specs.Spec) {
		s.Process.User.AdditionalGids = []uint32{5, 100}
		s.Linux.MaskedPaths = []string{"/etc/group", "/usr", "/proc/kcore"}
		s.Linux.ReadonlyPaths = []string{"/etc", "/proc/sys"}
		adj := 500
		s.Process.OOMScoreAdj = &adj
	})
	res := r.run(nil, "run", "--bundle", b, "narrow-"+randHex(t))
	want := "0\n0\n500\ntouch: /etc/new: Read-only file system\nvar writable\n0 5 100\n"
	if res.code != 0 || res.stdout != want {
		t.Errorf("run: %s, want stdout %q", res, want)
	}
}

// TestRuntimeOOMScoreLowered: a bundle that asks for an oom_score_adj
// below the runtime's own (the kubelet asks -998 for every pod sandbox)
// gets it where the runtime holds CAP_SYS_RESOURCE; without it the score
// is narrowed to the runtime's own with a warning in the log, and
// --strict refuses the bundle naming the field.
func TestRuntimeOOMScoreLowered(t *testing.T) {
	needOak(t, true)
	own, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		t.Fatal(err)
	}
	r := newRuntime(t)
	b := bundle(t, []string{"cat", "/proc/self/oom_score_adj"}, func(s *specs.Spec) {
		adj := -998
		s.Process.OOMScoreAdj = &adj
	})
	log := filepath.Join(t.TempDir(), "log")
	res := r.run(nil, "--log", log, "run", "--bundle", b, "oom-"+randHex(t))
	logged, _ := os.ReadFile(log)
	if hasCapability(unix.CAP_SYS_RESOURCE) {
		if res.code != 0 || res.stdout != "-998\n" {
			t.Errorf("run with CAP_SYS_RESOURCE: %s, want -998", res)
		}
		return
	}
	if res.code != 0 || res.stdout != string(own) || !strings.Contains(string(logged), "process.oomScoreAdj: -998") {
		t.Errorf("run without CAP_SYS_RESOURCE: %s\nlog: %s\nwant the runtime's own score %q and a warning naming process.oomScoreAdj", res, logged, own)
	}
	res = r.run(nil, "--strict", "run", "--bundle", b, "oom-"+randHex(t))
	if res.code == 0 || !strings.Contains(res.stderr, "process.oomScoreAdj") {
		t.Errorf("run --strict: %s, want a refusal naming process.oomScoreAdj", res)
	}
}

// hasCapability reports whether this process holds capability c in its
// effective set.
func hasCapability(c int) bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[c/32].Effective&(1<<(c%32)) != 0
}

// TestRuntimeBadBundles: every bundle Oak cannot run as asked fails create
// with exit 1, an error naming the file or field, and no state left.
func TestRuntimeBadBundles(t *testing.T) {
	needOak(t, true)
	r := newRuntime(t)
	sh := []string{"sh", "-c", "true"}
	var hard syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &hard)
	outside := t.TempDir()
	regular := filepath.Join(t.TempDir(), "netns")
	if err := os.WriteFile(regular, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		bundle func() string
		flags  []string
		says   string
	}{
		{"no config.json", func() string { return t.TempDir() }, nil, "config.json: no such file"},
		{"not JSON", func() string {
			d := t.TempDir()
			os.WriteFile(filepath.Join(d, "config.json"), []byte("{\"ociVersion\": "), 0o644)
			return d
		}, nil, "config.json: unexpected EOF"},
		{"unknown major version", func() string { return bundle(t, sh, func(s *specs.Spec) { s.Version = "2.0.0" }) }, nil, "ociVersion"},
		{"root outside the bundle", func() string { return bundle(t, sh, func(s *specs.Spec) { s.Root.Path = "../x" }) }, nil, "root.path"},
		{"root linked outside the bundle", func() string {
			d := bundle(t, sh, func(s *specs.Spec) { s.Root.Path = "rootfs" })
			os.Symlink(outside, filepath.Join(d, "rootfs"))
			return d
		}, nil, "root.path"},
		{"missing mount source", func() string {
			return bundle(t, sh, func(s *specs.Spec) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/etc/hosts", Type: "bind", Source: "/nonexistent/hosts", Options: []string{"bind"}})
			})
		}, nil, "mounts[1]: source"},
		{"host directory", func() string {
			return bundle(t, sh, func(s *specs.Spec) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/host", Type: "bind", Source: "/", Options: []string{"rbind"}})
			})
		}, nil, "mounts[1]"},
		{"privileged capability, strict", func() string {
			return bundle(t, sh, func(s *specs.Spec) {
				s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN", "CAP_SYS_ADMIN"}}
			})
		}, []string{"--strict"}, "process.capabilities.bounding[1]: CAP_SYS_ADMIN"},
		{"namespace path that is no namespace", func() string {
			return bundle(t, sh, func(s *specs.Spec) { s.Linux.Namespaces[1].Path = outside })
		}, nil, "linux.namespaces[1].path: " + outside + " is not a namespace"},
		{"network namespace path that is a regular file", func() string {
			return bundle(t, sh, func(s *specs.Spec) { s.Linux.Namespaces[1].Path = regular })
		}, nil, "linux.namespaces[1].path: " + regular + " is not a namespace"},
		{"network namespace path that is /dev/null", func() string {
			return bundle(t, sh, func(s *specs.Spec) { s.Linux.Namespaces[1].Path = "/dev/null" })
		}, nil, "linux.namespaces[1].path: /dev/null is not a namespace"},
		{"network namespace path to a mount namespace", func() string {
			return bundle(t, sh, func(s *specs.Spec) { s.Linux.Namespaces[1].Path = "/proc/self/ns/mnt" })
		}, nil, "linux.namespaces[1].path: /proc/self/ns/mnt is a mount namespace, not a network namespace"},
		{"nonexistent network namespace path", func() string {
			return bundle(t, sh, func(s *specs.Spec) { s.Linux.Namespaces[1].Path = "/nonexistent/netns" })
		}, nil, "linux.namespaces[1].path: /nonexistent/netns: no such file"},
		{"the host's network namespace", func() string {
			return bundle(t, sh, func(s *specs.Spec) { s.Linux.Namespaces[1].Path = "/proc/self/ns/net" })
		}, nil, "linux.namespaces[1].path: /proc/self/ns/net is the host's network namespace"},
		{"mount namespace path", func() string {
			return bundle(t, sh, func(s *specs.Spec) { s.Linux.Namespaces[4].Path = "/proc/self/ns/mnt" })
		}, nil, "linux.namespaces[4].path: joining the mount namespace"},
		{"ipc namespace of no Oak container", func() string {
			return bundle(t, sh, func(s *specs.Spec) { s.Linux.Namespaces[2].Path = "/proc/self/ns/ipc" })
		}, nil, "linux.namespaces[2].path: the ipc namespace at /proc/self/ns/ipc belongs to no container of this runtime"},
		{"rlimit above the host's", func() string {
			return bundle(t, sh, func(s *specs.Spec) {
				s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: hard.Max + 1, Soft: 1024}}
			})
		}, nil, "process.rlimits[0]"},
		{"terminal without a console socket", func() string { return bundle(t, sh, func(s *specs.Spec) { s.Process.Terminal = true }) }, nil, "process.terminal"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := "bad-" + randHex(t)
			args := append(append([]string{}, c.flags...), "create", "--bundle", c.bundle(), id)
			res := r.run(nil, args...)
			if res.code != 1 || !strings.Contains(res.stderr, c.says) {
				t.Errorf("%s\nwant exit 1 and an error saying %q", res, c.says)
			}
			if _, err := os.Stat(filepath.Join(r.root, id)); !os.IsNotExist(err) {
				t.Errorf("refused create left state: %v", err)
			}
		})
	}
}

// podmanCmd is podman as root on this kind of host (see LINUX-NOTES): its
// own storage, cgroupfs, file events, no network and rlimits within the
// host's hard limits.
func podmanCmd(t *testing.T, dir, runtime string, args ...string) *exec.Cmd {
	base := []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "runroot"),
		"--tmpdir", filepath.Join(dir, "tmp"), "--cgroup-manager=cgroupfs", "--events-backend=file",
		"--runtime", runtime}
	return exec.Command("podman", append(base, args...)...)
}

func runCmd(cmd *exec.Cmd) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	return o.String(), e.String(), exitCode(cmd, err)
}

// TestRuntimePodman runs containers with podman --runtime oak-runtime.
func TestRuntimePodman(t *testing.T) {
	needOak(t, true)
	if _, err := exec.LookPath("podman"); err != nil {
		t.Fatalf("podman is not installed (make deps installs it): %v", err)
	}
	r := newRuntime(t)
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs") // podman may make mount points in it
	if out, err := exec.Command("cp", "-a", rootfsDir, rootfs).CombinedOutput(); err != nil {
		t.Fatalf("copy image: %v %s", err, out)
	}
	run := []string{"run", "--rm", "--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096", "--rootfs", rootfs}
	out, errs, code := runCmd(podmanCmd(t, dir, r.bin, append(run, "sh", "-c",
		"echo out; echo err >&2; grep CapBnd /proc/self/status; cat /etc/hostname; exit 7")...))
	// Root's bounding set is Oak's eight (0x1fb), not podman's eleven, and
	// podman's /etc/hostname was copied in.
	if code != 7 || !strings.Contains(out, "out\n") || !strings.Contains(errs, "err") ||
		!strings.Contains(out, "CapBnd:\t00000000000001fb") || len(lines(out)) != 3 {
		t.Errorf("podman run: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	_, errs, code = runCmd(podmanCmd(t, dir, r.bin, append(run, "no-such-command")...))
	if code != 127 {
		t.Errorf("podman run of a missing command: exit %d, want 127\n%s", code, errs)
	}
	// From an image: podman's root is an overlay mount, which Oak runs as
	// its layers (an overlay cannot be id-mapped). A write lands in the
	// container's private layer.
	tar := filepath.Join(dir, "rootfs.tar")
	if out, err := exec.Command("tar", "-C", rootfsDir, "-cf", tar, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	if _, errs, code := runCmd(podmanCmd(t, dir, r.bin, "import", "-q", tar, "oaktest:1")); code != 0 {
		t.Fatalf("podman import: exit %d\n%s", code, errs)
	}
	out, errs, code = runCmd(podmanCmd(t, dir, r.bin, append(append([]string{"run"}, run[1:len(run)-2]...),
		"localhost/oaktest:1", "sh", "-c", "echo w > /etc/w && cat /etc/w && id -u && exit 9")...))
	if code != 9 || out != "w\n0\n" {
		t.Errorf("podman run IMAGE: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	// A terminal: podman's conmon receives the master end over
	// --console-socket; the command's stdin and stdout are the slave.
	out, errs, code = runCmd(podmanCmd(t, dir, r.bin, append(append([]string{"run", "-t"}, run[1:]...),
		"sh", "-c", "test -t 0 && test -t 1 && echo on a tty; exit 4")...))
	if code != 4 || !strings.Contains(out, "on a tty\r\n") {
		t.Errorf("podman run -t: exit %d\nstdout: %q\nstderr:\n%s", code, out, errs)
	}
	// Detached, stopped with TERM, removed.
	out, errs, code = runCmd(podmanCmd(t, dir, r.bin, "run", "-d", "--network", "none", "--ulimit", "nofile=1024:1024",
		"--ulimit", "nproc=4096:4096", "--rootfs", rootfs, "sh", "-c", "trap 'exit 3' TERM; while :; do sleep 0.05; done"))
	if code != 0 {
		t.Fatalf("podman run -d: exit %d\n%s", code, errs)
	}
	cid := strings.TrimSpace(out)
	if _, errs, code := runCmd(podmanCmd(t, dir, r.bin, "stop", "-t", "30", cid)); code != 0 {
		t.Errorf("podman stop: exit %d\n%s", code, errs)
	}
	out, _, _ = runCmd(podmanCmd(t, dir, r.bin, "inspect", "--format", "{{.State.ExitCode}}", cid))
	if strings.TrimSpace(out) != "3" {
		t.Errorf("stopped container's exit code %q, want 3 (its TERM trap)", out)
	}
	if _, errs, code := runCmd(podmanCmd(t, dir, r.bin, "rm", cid)); code != 0 {
		t.Errorf("podman rm: exit %d\n%s", code, errs)
	}
}

// TestRuntimeContainerd runs a container with a private containerd and
// ctr run --runc-binary oak-runtime.
func TestRuntimeContainerd(t *testing.T) {
	needOak(t, true)
	ctr, log := startContainerd(t)
	r := newRuntime(t)
	id := "c" + randHex(t)
	out, errs, code := runCmd(ctr("run", "--rm", "--runc-binary", r.bin, "--rootfs", rootfsDir, id,
		"sh", "-c", "echo hello from ctr; grep CapBnd /proc/self/status; grep -c ' /run tmpfs' /proc/mounts; exit 5"))
	if code != 5 || out != "hello from ctr\nCapBnd:\t00000000000001fb\n1\n" {
		t.Errorf("ctr run: exit %d\nstdout:\n%s\nstderr:\n%s\ncontainerd:\n%s", code, out, errs, readAll(log))
	}
	// From an imported image: the shim mounts the snapshot (an overlay)
	// as the bundle's rootfs. The archive is made with podman.
	pdir := t.TempDir()
	tar, archive := filepath.Join(pdir, "rootfs.tar"), filepath.Join(pdir, "image.tar")
	if out, err := exec.Command("tar", "-C", rootfsDir, "-cf", tar, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	for _, args := range [][]string{{"import", "-q", tar, "oaktest:1"}, {"save", "-q", "-o", archive, "localhost/oaktest:1"}} {
		if _, errs, code := runCmd(podmanCmd(t, pdir, r.bin, args...)); code != 0 {
			t.Fatalf("podman %v: exit %d\n%s", args, code, errs)
		}
	}
	if _, errs, code := runCmd(ctr("images", "import", archive)); code != 0 {
		t.Fatalf("ctr images import: exit %d\n%s", code, errs)
	}
	out, errs, code = runCmd(ctr("run", "--rm", "--runc-binary", r.bin, "localhost/oaktest:1", "i"+id,
		"sh", "-c", "echo w > /w && cat /w && exit 6"))
	if code != 6 || out != "w\n" {
		t.Errorf("ctr run IMAGE: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	// A bundle Oak refuses fails ctr run with the field named.
	_, errs, code = runCmd(ctr("run", "--rm", "--runc-binary", r.bin, "--mount", "type=bind,src=/etc,dst=/host,options=rbind:ro",
		"--rootfs", rootfsDir, "b"+id, "true"))
	if code == 0 || !strings.Contains(errs, "Oak grants no host directories") {
		t.Errorf("ctr run with a host bind mount: exit %d\n%s", code, errs)
	}
}

// TestRuntimeIDBlocksAcrossRoots: containers of runtimes with different
// state roots (podman's and containerd's are different) never share an id
// block, nor with the engine's containers.
func TestRuntimeIDBlocksAcrossRoots(t *testing.T) {
	needOak(t, true)
	seen := map[string]string{}
	for i := 0; i < 3; i++ {
		r := newRuntime(t) // a state root of its own
		out := tempFile(t)
		id := fmt.Sprintf("blk%d-%s", i, randHex(t))
		b := bundle(t, []string{"sh", "-c", "cat /proc/self/uid_map; exec sleep 1000"}, nil)
		if res := r.run(out, "create", "--bundle", b, id); res.code != 0 {
			t.Fatalf("create: %s", res)
		}
		if res := r.run(nil, "start", id); res.code != 0 {
			t.Fatalf("start: %s", res)
		}
		deadline := time.Now().Add(20 * time.Second)
		for len(strings.Fields(readAll(out))) < 3 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		f := strings.Fields(readAll(out))
		if len(f) != 3 {
			t.Fatalf("uid map %q", f)
		}
		if host, _ := strconv.ParseUint(f[1], 10, 64); host < 1<<31 || f[2] != "65536" {
			t.Errorf("container %s maps onto %s+%s, want a block of 65536 at or above 2^31", id, f[1], f[2])
		}
		if other, ok := seen[f[1]]; ok {
			t.Errorf("containers %s and %s share the id block at %s", other, id, f[1])
		}
		seen[f[1]] = id
	}
}

// TestRuntimePauseResume: a paused container makes no progress at all; a
// resumed one goes on; a paused one can still be killed.
func TestRuntimePauseResume(t *testing.T) {
	needOak(t, true)
	r := newRuntime(t)
	out := tempFile(t)
	id := "pause-" + randHex(t)
	b := bundle(t, []string{"sh", "-c", "while :; do echo x; sleep 0.01; done"}, nil)
	if res := r.run(out, "create", "--bundle", b, id); res.code != 0 {
		t.Fatalf("create: %s", res)
	}
	if res := r.run(nil, "start", id); res.code != 0 {
		t.Fatalf("start: %s", res)
	}
	grows := func(from int) bool {
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if len(readAll(out)) > from {
				return true
			}
			time.Sleep(10 * time.Millisecond)
		}
		return false
	}
	if !grows(0) {
		t.Fatal("the container wrote nothing")
	}
	if res := r.run(nil, "pause", id); res.code != 0 {
		t.Fatalf("pause: %s", res)
	}
	if st, _ := r.state(id); st.Status != "paused" {
		t.Errorf("state after pause: %+v", st)
	}
	n := len(readAll(out))
	for i := 0; i < 5; i++ { // a frozen group writes nothing, however long we look
		time.Sleep(20 * time.Millisecond)
		if m := len(readAll(out)); m != n {
			t.Fatalf("paused container wrote %d more bytes", m-n)
		}
	}
	if res := r.run(nil, "resume", id); res.code != 0 {
		t.Fatalf("resume: %s", res)
	}
	if !grows(n) {
		t.Error("resumed container makes no progress")
	}
	if res := r.run(nil, "resume", id); res.code != 1 || !strings.Contains(res.stderr, "not paused") {
		t.Errorf("resume of a running container: %s", res)
	}
	if res := r.run(nil, "pause", id); res.code != 0 {
		t.Fatalf("pause: %s", res)
	}
	if res := r.run(nil, "kill", id, "KILL"); res.code != 0 {
		t.Fatalf("kill of a paused container: %s", res)
	}
	r.waitState(id, specs.StateStopped)
}

// TestRuntimeKillAll: kill signals the command through the init; kill
// --all signals every process of the container.
func TestRuntimeKillAll(t *testing.T) {
	needOak(t, true)
	r := newRuntime(t)
	out := tempFile(t)
	id := "all-" + randHex(t)
	b := bundle(t, []string{"sh", "-c", `trap "echo outer got it" USR1; sleep 1000 & P=$!; echo ready; ` +
		`while kill -0 $P 2>/dev/null; do sleep 0.02; done; echo sleep gone`}, nil)
	if res := r.run(out, "create", "--bundle", b, id); res.code != 0 {
		t.Fatalf("create: %s", res)
	}
	if res := r.run(nil, "start", id); res.code != 0 {
		t.Fatalf("start: %s", res)
	}
	waitOut := func(want string) {
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(readAll(out), want) {
			if time.Now().After(deadline) {
				t.Fatalf("output %q never had %q", readAll(out), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitOut("ready")
	if res := r.run(nil, "kill", id, "USR1"); res.code != 0 {
		t.Fatalf("kill: %s", res)
	}
	waitOut("outer got it")
	if res := r.run(nil, "ps", "--format", "json", id); res.code != 0 || strings.Count(res.stdout, ",") < 2 {
		t.Errorf("after kill without --all: %s, want the init, sh and sleep alive", res)
	}
	if res := r.run(nil, "kill", "--all", id, "USR1"); res.code != 0 {
		t.Fatalf("kill --all: %s", res)
	}
	waitOut("sleep gone")
	r.waitState(id, specs.StateStopped)
}

package sandbox

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// testRootFS makes an image of the host's static busybox, or skips.
func testRootFS(t testing.TB) string {
	if os.Geteuid() != 0 {
		t.Skip("launching a sandbox needs root")
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("no busybox on this host")
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"sh", "cat", "ls", "grep", "awk", "hostname", "id", "readlink", "sort", "true"} {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", n)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// testIDs is an id range of the test's own, above the engine's and the
// OCI runtime's blocks.
var testIDs = IDRange{Host: 3 << 30, Size: 1 << 16}

// isolationScript prints, from inside a container, what confines it: its
// credentials and capabilities, seccomp and no_new_privs, id maps, each
// namespace (new or the host's, compared with HOST_* links), groups and
// their limits, mounts, network devices and host name.
const isolationScript = `
grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status
cat /proc/self/uid_map /proc/self/gid_map /proc/self/cgroup
for ns in user mnt pid net ipc uts cgroup; do
	eval host=\$HOST_$ns
	if [ "$(readlink /proc/self/ns/$ns)" = "$host" ]; then echo "$ns host"; else echo "$ns new"; fi
done
awk '{print $5, $6, $(NF-2), $(NF-1)}' /proc/self/mountinfo | sort
cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max 2>&1
cat /proc/net/dev | awk 'NR > 2 {print $1}'
hostname; id; ls /dev
`

// runIsolation runs isolationScript in a container with id, prepared ahead
// or not, and returns what it printed.
func runIsolation(t *testing.T, rootfs, id string, prepared bool) string {
	t.Helper()
	env := []string{"PATH=/bin"}
	for _, ns := range []string{"user", "mnt", "pid", "net", "ipc", "uts", "cgroup"} {
		link, err := os.Readlink("/proc/self/ns/" + ns)
		if err != nil {
			t.Fatal(err)
		}
		env = append(env, "HOST_"+ns+"="+link)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	task := &Task{ID: id, Layers: []string{rootfs}, Scratch: t.TempDir(), Args: []string{"sh", "-c", isolationScript},
		Env: env, Hostname: "box", IDs: testIDs, Limits: Limits{MemoryBytes: 64 << 20, Pids: 64},
		Stdout: w, Stderr: w}
	var p *Process
	if prepared {
		pr, err := Prepare(id, testIDs)
		if err != nil {
			t.Fatal(err)
		}
		p, err = pr.Start(task)
	} else {
		p, err = Start(task)
	}
	w.Close()
	if err != nil {
		t.Fatalf("start (prepared %v): %v", prepared, err)
	}
	var out bytes.Buffer
	out.ReadFrom(r)
	st, err := p.Wait()
	if err != nil || st.Code != 0 {
		t.Fatalf("container (prepared %v) ended %+v, %v:\n%s", prepared, st, err, out.String())
	}
	return out.String()
}

// A sandbox prepared ahead of its task confines the task exactly as one
// made for it: the same capabilities, filter, id maps, new namespaces,
// groups and limits, mounts, devices and network.
func TestPreparedIsolationIsStart(t *testing.T) {
	rootfs := testRootFS(t)
	direct := runIsolation(t, rootfs, "h5-test-direct", false)
	prepared := runIsolation(t, rootfs, "h5-test-prepared", true)
	if direct != prepared {
		t.Errorf("a prepared sandbox differs from a started one:\n--- Start\n%s\n--- Prepare, Start\n%s", direct, prepared)
	}
	// The comparison means something only if the confinement is there.
	for _, want := range []string{"NoNewPrivs:\t1", "Seccomp:\t2", "user new", "mnt new", "pid new", "net new",
		"cgroup new", "67108864\n64\n", "lo:\nbox\n"} {
		if !strings.Contains(direct, want) {
			t.Errorf("container output lacks %q:\n%s", want, direct)
		}
	}
	if strings.Contains(direct, " host\n") {
		t.Errorf("a namespace is the host's:\n%s", direct)
	}
}

// A prepared sandbox serves one task: a second Start is refused, and a task
// with another id or id range is refused (and the sandbox destroyed).
func TestPreparedServesOneTask(t *testing.T) {
	rootfs := testRootFS(t)
	task := func(id string, ids IDRange) *Task {
		return &Task{ID: id, Layers: []string{rootfs}, Scratch: t.TempDir(), Args: []string{"true"},
			Env: []string{"PATH=/bin"}, IDs: ids}
	}
	pr, err := Prepare("h5-test-once", testIDs)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pr.Start(task("h5-test-once", testIDs))
	if err != nil {
		t.Fatal(err)
	}
	p.Wait()
	if _, err := pr.Start(task("h5-test-once", testIDs)); err == nil {
		t.Error("a prepared sandbox took a second task")
	}
	other := IDRange{Host: testIDs.Host + testIDs.Size, Size: testIDs.Size}
	pr, err = Prepare("h5-test-other", testIDs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pr.Start(task("h5-test-other", other)); err == nil {
		t.Error("a sandbox prepared for one id range took a task of another")
	}
	if _, err := os.Stat(filepath.Join(cgroupRoot, "pids", cgroupParent, "h5-test-other")); err == nil {
		t.Error("the refused sandbox's group is left behind")
	}
	if _, err := Prepare("h5-test-root", IDRange{Host: 0, Size: 65536}); err == nil {
		t.Error("Prepare accepted an id range that maps host root")
	}
}

// BenchmarkStart times a launch of true from nothing; BenchmarkPreparedStart
// times the same launch into a sandbox prepared outside the timer, which is
// what a pool of prepared sandboxes leaves on the launch path.
func BenchmarkStart(b *testing.B)         { benchStart(b, false) }
func BenchmarkPreparedStart(b *testing.B) { benchStart(b, true) }

func benchStart(b *testing.B, prepared bool) {
	rootfs := testRootFS(b)
	for i := range b.N {
		id := fmt.Sprintf("h5-bench-%d", i)
		task := &Task{ID: id, Layers: []string{rootfs}, Scratch: b.TempDir(), Args: []string{"true"},
			Env: []string{"PATH=/bin"}, IDs: testIDs}
		var p *Process
		var err error
		if prepared {
			b.StopTimer()
			pr, perr := Prepare(id, testIDs)
			if perr != nil {
				b.Fatal(perr)
			}
			if _, perr := pr.placed(); perr != nil {
				b.Fatal(perr)
			}
			b.StartTimer()
			p, err = pr.Start(task)
		} else {
			p, err = Start(task)
		}
		if err != nil {
			b.Fatal(err)
		}
		if st, err := p.Wait(); err != nil || st.Code != 0 {
			b.Fatalf("true ended %+v, %v", st, err)
		}
	}
}

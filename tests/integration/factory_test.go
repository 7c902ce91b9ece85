//go:build linux

package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// factoryInfo is what the tests read of oak factory inspect.
type factoryInfo struct {
	Name       string
	Parent     string
	Group      string
	Limit      struct{ MemoryBytes, Pids, CPUMilli, DiskBytes int64 }
	Given      struct{ MemoryBytes, Pids, CPUMilli, DiskBytes int64 }
	Reserved   map[string]int64
	Containers []string
	Children   []string
	Volumes    []string
}

// factory runs oak factory create ARGS (the name last); the factory and
// everything made from it are removed at the end of the test, so that a
// failing test leaves no group behind.
func (o *oakEnv) factory(args ...string) {
	o.t.Helper()
	r := o.run(append([]string{"factory", "create"}, args...)...)
	if r.code != 0 {
		o.t.Fatalf("oak factory create failed\n%s", r)
	}
	name := args[len(args)-1]
	o.t.Cleanup(func() {
		f := o.run("factory", "inspect", name, "--format", "{{.Group}}")
		if f.code != 0 {
			return // removed by the test, or with its parent
		}
		if r := o.run("factory", "rm", "-f", name); r.code != 0 {
			o.t.Errorf("cleanup: oak factory rm -f %s\n%s", name, r)
		}
		if g := strings.TrimSpace(f.stdout); g != "" {
			if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/pids/oak", g)); !os.IsNotExist(err) {
				o.t.Errorf("cleanup: factory %s's group %s is left", name, g)
			}
		}
	})
}

func (o *oakEnv) inspectFactory(name string) factoryInfo {
	o.t.Helper()
	r := o.run("factory", "inspect", name)
	var fs []factoryInfo
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &fs) != nil || len(fs) != 1 {
		o.t.Fatalf("oak factory inspect %s\n%s", name, r)
	}
	return fs[0]
}

// factoryFile is a control file of a factory's group.
func factoryFile(f factoryInfo, ctrl, file string) string {
	return filepath.Join("/sys/fs/cgroup", ctrl, "oak", f.Group, file)
}

// waitOutput waits until the log of container ref, stdout or stderr, holds
// want.
func (o *oakEnv) waitOutput(ref, want string, d time.Duration) string {
	o.t.Helper()
	var r result
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		r = o.run("logs", ref)
		if strings.Contains(r.stdout+r.stderr, want) {
			return r.stdout + r.stderr
		}
	}
	o.t.Fatalf("the log of %s never showed %q\n%s", ref, want, r)
	return ""
}

// lastStarted returns N of the last "started N" line of out, or 0.
func lastStarted(out string) int {
	n := 0
	for _, l := range lines(out) {
		if v, ok := strings.CutPrefix(l, "started "); ok {
			n, _ = strconv.Atoi(v)
		}
	}
	return n
}

// Fork until fork fails (the subshell exits on a failed fork), then keep
// the sleepers and hold on: the container keeps what it got.
const forkAndHold = `( i=0; while [ $i -lt 100 ]; do sleep 300 & i=$((i+1)); echo started $i; done ); exec sleep 300`

// Fork until fork fails, count, and exit.
const forkAndCount = `( i=0; while [ $i -lt 100 ]; do sleep 300 & i=$((i+1)); echo started $i; done ); set -- /proc/[0-9]*; echo procs $#`

// A factory's pids quota bounds the sum of its containers' tasks: with
// --pids 16, a container that holds some leaves the rest to its sibling,
// whose failing fork gets EAGAIN inside the container though its own limit
// (the factory's 16) is not reached; the factory's group never counts more
// than 16; once the tasks are used up, a launch into the factory is refused
// saying so; a container outside the factory forks on unaffected.
//
// Not parallel: it forks many processes.
func TestFactoryPids(t *testing.T) {
	needOak(t, false)
	o := newOak(t)
	o.factory("--pids", "16", "tasks")
	f := o.inspectFactory("tasks")
	if got := readFirst(factoryFile(f, "pids", "pids.max")); got != "16" {
		t.Fatalf("factory group %s: pids.max %q, want 16", f.Group, got)
	}

	// a narrows its own limit to 10 and keeps what it forks.
	o.runD("--name", "a", "--factory", "tasks", "--pids", "10", rootfsDir, "/bin/sh", "-c", forkAndHold)
	logA := o.waitOutput("a", "Resource temporarily unavailable", time.Minute)
	// a's subshell exits after its failed fork: count once it has gone.
	heldA := settledCount(t, factoryFile(f, "pids", "pids.current"))
	if heldA < 3 || heldA > 10 {
		t.Fatalf("factory counts %d tasks after a forked up to its own --pids 10\n%s", heldA, logA)
	}

	// b may use the factory's 16 itself, but only what a left is there.
	r := o.runTimeout(2*time.Minute, "run", "--name", "b", "--factory", "tasks", rootfsDir, "/bin/sh", "-c", forkAndCount)
	startedB := lastStarted(r.stdout)
	if !strings.Contains(r.stderr, "Resource temporarily unavailable") {
		t.Errorf("b's failed fork did not report EAGAIN\n%s", r)
	}
	// b's init, shell and subshell, its sleepers, and what a holds.
	if startedB < 1 || heldA+3+startedB > 16 {
		t.Errorf("b started %d sleepers while a held %d tasks of the factory's 16\n%s", startedB, heldA, r)
	}
	t.Logf("a holds %d tasks of the factory's 16; b started %d sleepers", heldA, startedB)
	if peak := readFirst(factoryFile(f, "pids", "pids.peak")); peak != "" {
		if n, _ := strconv.Atoi(peak); n > 16 || n < heldA+3 {
			t.Errorf("factory pids.peak %d, want between %d and 16", n, heldA+3)
		}
	}

	// c takes what is left and holds it; then nothing fits.
	o.runD("--name", "c", "--factory", "tasks", rootfsDir, "/bin/sh", "-c", forkAndHold)
	o.waitOutput("c", "Resource temporarily unavailable", time.Minute)
	if n, _ := strconv.Atoi(readFirst(factoryFile(f, "pids", "pids.current"))); n < 15 || n > 16 {
		t.Errorf("factory counts %d tasks with a and c holding all they could get, want 15 or 16", n)
	}
	r = o.run("run", "--factory", "tasks", rootfsDir, "/bin/true")
	if r.code == 0 || !strings.Contains(r.stderr, "factory tasks: pids quota exhausted") {
		t.Errorf("a launch into the exhausted factory: want a refusal naming its pids quota\n%s", r)
	}

	// Outside the factory, the same forks go on.
	script := strings.Replace(forkAndCount, "-lt 100", "-lt 30", 1)
	r = o.runTimeout(2*time.Minute, "run", "--pids", "64", rootfsDir, "/bin/sh", "-c", script)
	if n := lastStarted(r.stdout); n != 30 || r.code != 0 {
		t.Errorf("a container outside the full factory started %d of 30 sleepers\n%s", n, r)
	}

	if r := o.run("factory", "rm", "-f", "tasks"); r.code != 0 {
		t.Fatalf("oak factory rm -f tasks\n%s", r)
	}
	if _, err := os.Stat(factoryFile(f, "pids", "")); !os.IsNotExist(err) {
		t.Errorf("factory group %s left after rm -f: %v", f.Group, err)
	}
}

// settledCount reads a count file (pids.current) until three reads 50 ms
// apart agree, so that tasks on their way out are not counted.
func settledCount(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	last, same := -1, 0
	for {
		n, err := strconv.Atoi(readFirst(path))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if n == last {
			same++
		} else {
			last, same = n, 0
		}
		if same == 2 || time.Now().After(deadline) {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A factory's memory quota bounds the sum of its containers' memory: with
// --memory 64m, one container holding 40 MiB (in its /tmp) and a sibling
// allocating 40 MiB do not both fit, though each fits its own limit (the
// factory's 64m). The kernel (cgroup v1, use_hierarchy=1) reclaims and
// then OOM-kills within the factory's group: the victim is the task with
// the most resident memory in it, the allocating sibling (tmpfs pages
// count against the group but belong to no process). A container in
// another factory is untouched.
//
// Not parallel: it puts memory pressure on the machine.
func TestFactoryMemory(t *testing.T) {
	needOak(t, false)
	o := newOak(t)
	// Control: alone, with the factory's limit as its own, it fits.
	if r := o.run("run", "--memory", "64m", rootfsDir, "/bin/probe", "alloc", "40"); r.code != 0 || strings.TrimSpace(r.stdout) != "ok" {
		t.Fatalf("alloc 40 MiB under --memory 64m alone failed\n%s", r)
	}
	o.factory("--memory", "64m", "one")
	o.factory("--memory", "64m", "other")
	o.runD("--name", "z", "--factory", "other", rootfsDir, "/bin/sleep", "300")
	ze := o.waitRunning("z")
	o.runD("--name", "y1", "--factory", "one", rootfsDir, "/bin/sh", "-c",
		"dd if=/dev/zero of=/tmp/fill bs=1M count=40 && echo filled; exec sleep 300")
	o.waitOutput("y1", "filled", time.Minute)
	y1 := o.waitRunning("y1")

	r := o.run("run", "--name", "y2", "--factory", "one", rootfsDir, "/bin/probe", "alloc", "40")
	if r.code != 137 || !strings.Contains(r.stderr, "out of memory") {
		t.Errorf("y2 allocating 40 MiB beside y1's 40 MiB in a 64m factory: want OOM-killed (137)\n%s", r)
	}
	for _, c := range []struct {
		name string
		was  psEntry
	}{{"y1", y1}, {"z", ze}} {
		if e, ok := o.find(c.name); !ok || e.Status != "running" || e.Pid != c.was.Pid {
			t.Errorf("%s after the OOM kill in factory one: %+v, want running as pid %d", c.name, e, c.was.Pid)
		}
	}
	f := o.inspectFactory("one")
	// The kernel lets a task it OOM-killed charge past the limit while it
	// exits (forced charges): a peak of 64 MiB and a page has been seen.
	n, _ := strconv.ParseInt(readFirst(factoryFile(f, "memory", "memory.max_usage_in_bytes")), 10, 64)
	t.Logf("factory one's group peaked at %d bytes (limit %d)", n, 64<<20)
	if n > 65<<20 || n < 40<<20 {
		t.Errorf("factory one's group peaked at %d bytes, want between 40 MiB and its 64 MiB (and a little for the dying victim)", n)
	}
	if r := o.run("factory", "rm", "-f", "one", "other"); r.code != 0 {
		t.Errorf("oak factory rm -f\n%s", r)
	}
}

// Sub-factories take a part of their parent's quota, never more; a
// container's limits may only narrow its factory's; the disk quota holds
// volumes and writable layers; removing a factory with -f withdraws
// everything made from it, recursively, and without -f is refused.
func TestFactoryTreeAndRemove(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	o.factory("--pids", "64", "--memory", "256m", "--disk", "4g", "top")
	o.factory("--parent", "top", "--pids", "32", "--memory", "128m", "--disk", "2g", "sub")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"factory", "create", "--parent", "top", "--pids", "33", "--memory", "64m", "--disk", "1g", "x"}, "33 tasks requested, 32 remaining"},
		{[]string{"factory", "create", "--parent", "top", "--pids", "8", "--disk", "1g", "x"}, "--memory is required"},
		{[]string{"run", "--factory", "sub", "--pids", "64", rootfsDir, "/bin/true"}, "invalid --pids 64: above the limit of factory sub"},
		{[]string{"run", "--factory", "sub", "--storage-size", "3g", rootfsDir, "/bin/true"}, "factory sub: disk quota exhausted"},
		{[]string{"run", "--factory", "nope", rootfsDir, "/bin/true"}, "no such factory"},
		{[]string{"volume", "create", "--factory", "sub", "--size", "3g", "big"}, "disk quota exhausted"},
	} {
		if r := o.run(c.args...); r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("want a refusal saying %q\n%s", c.want, r)
		}
	}

	o.runD("--name", "a", "--factory", "top", rootfsDir, "/bin/sleep", "300")
	o.runD("--name", "b", "--factory", "sub", "--storage-size", "64m", rootfsDir, "/bin/sleep", "300")
	ae, be := o.waitRunning("a"), o.waitRunning("b")
	if r := o.run("volume", "create", "--factory", "sub", "--size", "16m", "vol"); r.code != 0 {
		t.Fatalf("oak volume create --factory sub\n%s", r)
	}
	// A volume of the factory's that was removed, and one of the same name
	// made since without --factory: that one is not the factory's.
	for _, args := range [][]string{{"volume", "create", "--factory", "sub", "--size", "16m", "other"},
		{"volume", "rm", "other"}, {"volume", "create", "--size", "16m", "other"}} {
		if r := o.run(args...); r.code != 0 {
			t.Fatalf("%s", r)
		}
	}
	sub := o.inspectFactory("sub")
	if sub.Reserved["volume vol"] != 16<<20 || sub.Given.DiskBytes != 16<<20+64<<20 {
		t.Errorf("sub reserves %v (%d in all), want the volume's 16 MiB and b's 64 MiB", sub.Reserved, sub.Given.DiskBytes)
	}
	if r := o.run("inspect", "--format", "{{.HostConfig.Factory}}", "b"); strings.TrimSpace(r.stdout) != "sub" {
		t.Errorf("oak inspect b: factory %q, want sub\n%s", r.stdout, r)
	}
	// The kernel sees b inside sub inside top.
	if got := readFirst(cgroupFile(be.Pid, "pids", "pids.max", "pids.max")); got != "32" {
		t.Errorf("b's own pids.max %q, want its factory's 32", got)
	}
	if p := cgroupFile(be.Pid, "pids", "pids.max", "pids.max"); !strings.Contains(p, "/oak/"+sub.Group+"/") {
		t.Errorf("b's pids group %s is not inside factory group %s", p, sub.Group)
	}

	r := o.run("factory", "rm", "top")
	if r.code == 0 || !strings.Contains(r.stderr, "containers a") || !strings.Contains(r.stderr, "sub-factories sub") {
		t.Errorf("rm of a factory with containers and a sub-factory: want a refusal listing them\n%s", r)
	}
	top := o.inspectFactory("top")
	if r := o.run("factory", "rm", "-f", "top"); r.code != 0 {
		t.Fatalf("oak factory rm -f top\n%s", r)
	}
	for _, e := range []psEntry{ae, be} {
		if err := syscall.Kill(e.Pid, 0); err == nil {
			t.Errorf("container %s's init %d still alive after its factory was removed", e.Name, e.Pid)
		}
	}
	if es, _ := o.psAll(); len(es) != 0 {
		t.Errorf("containers left after factory rm -f: %+v", es)
	}
	if r := o.run("volume", "ls", "-q"); strings.TrimSpace(r.stdout) != "other" {
		t.Errorf("volumes after factory rm -f: %q, want only the one made without --factory", r.stdout)
	}
	if r := o.run("factory", "ls", "-q"); r.code != 0 || strings.TrimSpace(r.stdout) != "" {
		t.Errorf("factories left after factory rm -f top\n%s", r)
	}
	for _, ctrl := range []string{"memory", "pids", "cpu", "cpuacct", "cpuset"} {
		if _, err := os.Stat(factoryFile(top, ctrl, "")); !os.IsNotExist(err) {
			t.Errorf("%s group of factory top left: %v", ctrl, err)
		}
	}
}

// A factory's --cpus bounds the CPU time of its containers together: two
// containers spinning in a factory of 0.5 CPU, each with the factory's 0.5
// as its own limit (the default), use at most half a CPU between them, not
// one (CFS throttles the factory's group; one period of 100 ms is allowed
// as slack).
//
// Not parallel: it spins the CPUs.
func TestFactoryCPU(t *testing.T) {
	needOak(t, false)
	o := newOak(t)
	o.factory("--cpus", "0.5", "half")
	f := o.inspectFactory("half")
	if q := readFirst(factoryFile(f, "cpu", "cpu.cfs_quota_us")); q != "50000" {
		t.Fatalf("factory group cpu.cfs_quota_us %q, want 50000", q)
	}
	start := time.Now()
	o.runD("--name", "s1", "--factory", "half", rootfsDir, "/bin/probe", "spin", "2000")
	o.runD("--name", "s2", "--factory", "half", rootfsDir, "/bin/probe", "spin", "2000")
	o.waitExited("s1", time.Minute)
	o.waitExited("s2", time.Minute)
	wall := time.Since(start)
	ns, err := strconv.ParseInt(readFirst(factoryFile(f, "cpuacct", "cpuacct.usage")), 10, 64)
	if err != nil {
		t.Fatalf("factory cpuacct.usage: %v", err)
	}
	used := time.Duration(ns)
	t.Logf("two spinners in a 0.5 CPU factory used %v of CPU in %v; factory cpu.stat: %s", used.Round(time.Millisecond),
		wall.Round(time.Millisecond), strings.Join(lines(readFirstAll(factoryFile(f, "cpu", "cpu.stat"))), ", "))
	if limit := wall/2 + 100*time.Millisecond; used > limit {
		t.Errorf("the factory's containers used %v of CPU in %v, more than its 0.5 CPU allows (%v)", used, wall, limit)
	}
	if used < 100*time.Millisecond {
		t.Errorf("the factory's group counted %v of CPU: the spinners did not run in it", used)
	}
}

// readFirstAll is the whole content of a file, "" if it cannot be read.
func readFirstAll(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// A factory's groups are not persistent (a reboot clears them): the launch
// of one of its containers makes them again, with the factory's limits,
// before the container's groups go in.
func TestFactoryGroupsRemade(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	o.factory("--pids", "12", "--memory", "96m", "outer")
	o.factory("--parent", "outer", "--pids", "8", "--memory", "64m", "inner")
	inner, outer := o.inspectFactory("inner"), o.inspectFactory("outer")
	for _, ctrl := range []string{"memory", "pids", "cpu", "cpuacct", "cpuset"} {
		for _, f := range []factoryInfo{inner, outer} { // deepest first
			if err := os.Remove(factoryFile(f, ctrl, "")); err != nil {
				t.Fatalf("remove %s group of %s: %v", ctrl, f.Name, err)
			}
		}
	}
	r := o.run("run", "--rm", "--factory", "inner", rootfsDir, "/bin/cat", "/sys/fs/cgroup/pids/pids.max")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "8" {
		t.Errorf("a container of inner after its groups were removed: want pids.max 8 inside\n%s", r)
	}
	for _, c := range []struct {
		f          factoryInfo
		ctrl, file string
		want       string
	}{{inner, "pids", "pids.max", "8"}, {outer, "pids", "pids.max", "12"},
		{inner, "memory", "memory.limit_in_bytes", strconv.Itoa(64 << 20)}, {outer, "memory", "memory.limit_in_bytes", strconv.Itoa(96 << 20)}} {
		if got := readFirst(factoryFile(c.f, c.ctrl, c.file)); got != c.want {
			t.Errorf("%s's %s after the launch: %q, want %q", c.f.Name, c.file, got, c.want)
		}
	}
}

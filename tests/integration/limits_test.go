//go:build linux

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A container that exceeds --memory is killed by the OOM killer: oak exits
// 137 and says "out of memory"; a neighbour container and oak itself are
// unharmed.
//
// Not parallel: it puts memory pressure on the machine.
func TestMemoryLimit(t *testing.T) {
	needOak(t, false)
	o := newOak(t)
	neighbour := o.runD("--name", "neighbour", "--memory", "64m", rootfsDir, "/bin/sleep", "300")
	ne := o.waitRunning(neighbour)

	r := o.run("run", "--memory", "32m", rootfsDir, "/bin/probe", "alloc", "200")
	if r.code != 137 {
		t.Errorf("oak exit status %d, want 137 (killed by SIGKILL)\n%s", r.code, r)
	}
	if !strings.Contains(r.stderr, "out of memory") {
		t.Errorf("oak did not report \"out of memory\" on stderr\n%s", r)
	}
	if strings.Contains(r.stdout, "ok") {
		t.Errorf("the probe allocated 200 MiB under a 32 MiB limit\n%s", r)
	}
	// Still running, and the same process.
	e, ok := o.find(neighbour)
	if !ok || e.Status != "running" || e.Pid != ne.Pid {
		t.Errorf("neighbour container after the OOM kill: %+v (found %v), want running as pid %d", e, ok, ne.Pid)
	}
	if err := syscall.Kill(ne.Pid, 0); err != nil {
		t.Errorf("neighbour's process %d: %v", ne.Pid, err)
	}

	// Within the limit, the same allocation succeeds.
	r = o.run("run", "--memory", "64m", rootfsDir, "/bin/probe", "alloc", "16")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "ok" {
		t.Errorf("alloc 16 MiB under --memory 64m failed\n%s", r)
	}
}

// A container's tasks never exceed --pids: forks past it fail with EAGAIN
// ("Resource temporarily unavailable"), and oak returns as soon as the main
// process exits even though its children are still sleeping.
func TestPidsLimit(t *testing.T) {
	needOak(t, false)
	o := newOak(t)
	// The subshell forks sleepers until fork fails (ash exits the subshell
	// on a failed fork); the main shell then counts the processes with a
	// builtin glob (no fork needed) and exits, leaving ~30 sleepers.
	script := `( i=0; while [ $i -lt 100 ]; do sleep 30 & i=$((i+1)); echo started $i; done ); set -- /proc/[0-9]*; echo procs $#`
	r := o.runTimeout(40*time.Second, "run", "--pids", "32", rootfsDir, "/bin/sh", "-c", script)
	started, procs := -1, -1
	for _, l := range lines(r.stdout) {
		if v, ok := strings.CutPrefix(l, "started "); ok {
			started, _ = strconv.Atoi(v)
		}
		if v, ok := strings.CutPrefix(l, "procs "); ok {
			procs, _ = strconv.Atoi(v)
		}
	}
	if started < 1 || started >= 32 {
		t.Errorf("started %d sleepers under --pids 32, want between 1 and 31\n%s", started, r)
	}
	if procs < 0 || procs > 32 {
		t.Errorf("%d processes visible in the container under --pids 32\n%s", procs, r)
	}
	if !strings.Contains(r.stderr, "Resource temporarily unavailable") {
		t.Errorf("the failed fork did not report EAGAIN (\"Resource temporarily unavailable\")\n%s", r)
	}
	if r.code != 0 {
		t.Errorf("oak exit status %d, want 0 (the main shell's)\n%s", r.code, r)
	}
	if r.elapsed > 15*time.Second {
		t.Errorf("oak took %v to return after the main process exited (its children sleep 30 s)", r.elapsed)
	}
}

// A real recursive fork bomb stays within --pids, and oak, sent SIGTERM,
// ends the container and returns within 20 s; nothing of it remains.
// Two bombs: the probe's, whose copies fork forever and retry on failure
// (so the container sits at its limit), and the shell classic, whose copies
// die when a fork fails.
func TestForkBomb(t *testing.T) {
	needOak(t, false)
	for _, c := range []struct{ name, script string }{
		{"probe", "/bin/probe forkbomb; exec sleep 1000"},
		{"sh", "f() { f | f & }; f; exec sleep 1000"},
	} {
		t.Run(c.name, func(t *testing.T) { forkBomb(t, c.script, c.name == "probe") })
	}
}

func forkBomb(t *testing.T, script string, persistent bool) {
	o := newOak(t)
	const limit = 32
	b := o.start("run", "--name", "bomb", "--pids", strconv.Itoa(limit), rootfsDir, "/bin/sh", "-c", script)
	e := o.waitRunning("bomb")
	ns, err := pidNS(e.Pid)
	if err != nil {
		t.Fatalf("container init %d: %v", e.Pid, err)
	}
	if self, _ := pidNS(os.Getpid()); self == ns {
		t.Fatalf("oak ps pid %d is in the host pid namespace", e.Pid)
	}
	pidsFile := pidsCurrentFile(e.Pid)
	if pidsFile == "" {
		t.Logf("no pids cgroup found for pid %d; counting processes in its pid namespace instead", e.Pid)
	}

	// Let it rage for 3 s, sampling the number of tasks.
	max := 0
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		n := -1
		if pidsFile != "" {
			n, _ = strconv.Atoi(readFirst(pidsFile))
		} else {
			n = len(procsInNS(ns))
		}
		if n > max {
			max = n
		}
		if _, done := b.wait(0); done {
			break
		}
	}
	if pidsFile != "" {
		peak := filepath.Join(filepath.Dir(pidsFile), "pids.peak")
		if n, err := strconv.Atoi(readFirst(peak)); err == nil && n > max {
			max = n
		}
	}
	t.Logf("peak tasks: %d", max)
	if max > limit {
		t.Errorf("the container reached %d tasks under --pids %d", max, limit)
	}
	if persistent && max < limit/2 {
		t.Errorf("the bomb reached only %d tasks under --pids %d: it did not run", max, limit)
	}

	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		r, _ := b.wait(0)
		t.Fatalf("oak ended before SIGTERM: %v\n%s", err, r)
	}
	r, ok := b.wait(20 * time.Second)
	if !ok {
		stdout, stderr := b.output()
		t.Fatalf("oak did not return within 20 s of SIGTERM during a fork bomb\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
	if r.code != 143 {
		t.Errorf("oak exit status %d after SIGTERM, want 143 (the main process killed by SIGTERM)\n%s", r.code, r)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(procsInNS(ns)) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if left := procsInNS(ns); len(left) > 0 {
		t.Errorf("%d processes of the fork bomb remain after oak returned", len(left))
	}
	e, ok = o.find("bomb")
	if ok && e.Status == "running" {
		t.Errorf("oak ps -a still shows the bomb running: %+v", e)
	}
}

// pidsCurrentFile finds the pids.current file of pid's pids cgroup (v1
// pids controller or v2), or "".
func pidsCurrentFile(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return ""
	}
	for _, l := range lines(string(b)) {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 {
			continue
		}
		var dir string
		switch {
		case strings.Contains(","+f[1]+",", ",pids,"):
			dir = filepath.Join("/sys/fs/cgroup/pids", f[2])
		case f[0] == "0" && f[1] == "":
			dir = filepath.Join("/sys/fs/cgroup/unified", f[2])
			if _, err := os.Stat(dir); err != nil {
				dir = filepath.Join("/sys/fs/cgroup", f[2])
			}
		default:
			continue
		}
		p := filepath.Join(dir, "pids.current")
		if _, err := os.Stat(p); err == nil && f[2] != "/" {
			return p
		}
	}
	return ""
}

// Writing more than --tmpfs-size to /tmp fails with ENOSPC; /tmp is 64 MiB
// by default.
func TestTmpfsQuota(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	t.Run("8m", func(t *testing.T) {
		o := o.sub(t)
		t.Parallel()
		r := o.run("run", "--tmpfs-size", "8m", "--memory", "256m", rootfsDir, "/bin/sh", "-c",
			"/bin/probe fill /tmp/a 4; /bin/probe fill /tmp/b 8; /bin/probe statfs /tmp")
		want := "ok\nerr ENOSPC\n"
		if r.code != 0 || !strings.HasPrefix(r.stdout, want) {
			t.Errorf("--tmpfs-size 8m: 4 MiB then 8 MiB more into /tmp: want %q\n%s", want, r)
		}
		if size := statfsSize(r.stdout); size != 8<<20 {
			t.Errorf("/tmp size %d, want %d", size, 8<<20)
		}
	})
	t.Run("default", func(t *testing.T) {
		o := o.sub(t)
		t.Parallel()
		if size := statfsSize(o.probe("statfs", "/tmp")); size != 64<<20 {
			t.Errorf("/tmp size %d by default, want %d", size, 64<<20)
		}
	})
	t.Run("cannot escape by /dev/shm", func(t *testing.T) {
		o := o.sub(t)
		t.Parallel()
		r := o.run("run", "--tmpfs-size", "8m", "--memory", "256m", rootfsDir, "/bin/probe", "fill", "/dev/shm/a", "16")
		if got := strings.TrimSpace(r.stdout); got != "err ENOSPC" && got != "err ENOENT" && got != "err EROFS" {
			t.Errorf("16 MiB into /dev/shm under --tmpfs-size 8m: got %q, want ENOSPC (or no /dev/shm)\n%s", got, r)
		}
	})
}

// statfsSize parses the "size N" line the probe's statfs prints.
func statfsSize(out string) int64 {
	for _, l := range lines(out) {
		if v, ok := strings.CutPrefix(l, "size "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return -1
}

// --cpus 0.5 holds a busy process to about half a CPU.
func TestCPULimit(t *testing.T) {
	needOak(t, false)
	o := newOak(t)
	r := o.run("run", "--cpus", "0.5", rootfsDir, "/bin/probe", "spin", "1500")
	var wall, cpu int64
	if _, err := fmt.Sscanf(strings.TrimSpace(r.stdout), "wall %d cpu %d", &wall, &cpu); err != nil || r.code != 0 {
		t.Fatalf("probe spin: %v\n%s", err, r)
	}
	if ratio := float64(cpu) / float64(wall); ratio > 0.7 {
		t.Errorf("--cpus 0.5: the probe used %d ms of CPU in %d ms (%.2f of a CPU)", cpu, wall, ratio)
	}
}

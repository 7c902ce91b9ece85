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
	return cgroupFile(pid, "pids", "pids.current", "pids.current")
}

// cgroupFile finds the file of pid's cgroup for the controller ctrl: v1 in
// ctrl's own hierarchy, v2 (file2) in the unified one; "" if there is
// none.
func cgroupFile(pid int, ctrl, file1, file2 string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return ""
	}
	for _, l := range lines(string(b)) {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 {
			continue
		}
		var p string
		switch {
		case strings.Contains(","+f[1]+",", ","+ctrl+","):
			p = filepath.Join("/sys/fs/cgroup", ctrl, f[2], file1)
		case f[0] == "0" && f[1] == "":
			dir := filepath.Join("/sys/fs/cgroup/unified", f[2])
			if _, err := os.Stat(dir); err != nil {
				dir = filepath.Join("/sys/fs/cgroup", f[2])
			}
			p = filepath.Join(dir, file2)
		default:
			continue
		}
		if _, err := os.Stat(p); err == nil && f[2] != "/" {
			return p
		}
	}
	return ""
}

// A container run without --memory and --pids has the defaults, 1 GiB and
// 1024 tasks, and oak run --help says so; --memory 0 and --pids 0 (or -1)
// ask for no limit explicitly. Before the defaults a fork bomb without
// --pids could take the host's whole pid space.
func TestDefaultLimits(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	help := o.run("run", "--help")
	for _, want := range []string{`(default "1g")`, `(default 1024)`, `(default "64m")`, "0 or -1: none"} {
		if !strings.Contains(help.stdout, want) {
			t.Errorf("oak run --help does not show %s\n%s", want, help)
		}
	}
	for _, c := range []struct {
		args         []string
		memory, pids string
	}{
		{nil, strconv.Itoa(1 << 30), "1024"},
		{[]string{"--memory", "0", "--pids", "0"}, "", "max"},
		{[]string{"--memory", "-1", "--pids", "-1"}, "", "max"},
		{[]string{"--memory", "64m", "--pids", "50"}, strconv.Itoa(64 << 20), "50"},
	} {
		id := o.runD(append(c.args, rootfsDir, "/bin/sleep", "300")...)
		e := o.waitRunning(id)
		mem := readFirst(cgroupFile(e.Pid, "memory", "memory.limit_in_bytes", "memory.max"))
		pids := readFirst(cgroupFile(e.Pid, "pids", "pids.max", "pids.max"))
		// No limit reads "max" (v2) or a page-rounded 2^63-1 (v1): "".
		if n, err := strconv.ParseInt(mem, 10, 64); mem == "max" || err == nil && n >= 1<<62 {
			mem = ""
		}
		if mem != c.memory || pids != c.pids {
			t.Errorf("oak run %s: memory limit %q, pids.max %q; want %q, %q", strings.Join(c.args, " "), mem, pids, c.memory, c.pids)
		}
		if r := o.run("rm", "-f", id); r.code != 0 {
			t.Errorf("rm -f: %s", r)
		}
	}
}

// Limits no container can start with are refused before anything starts,
// naming the flag and the minimum (--memory 1 and 4k used to end in
// "launch: nsinit ended without a seccomp listener"); limits at the
// minimums run the demo shell.
func TestLimitMinimums(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--memory", "1"}, `--memory "1": below the 6 MiB`},
		{[]string{"--memory", "4k"}, `--memory "4k": below the 6 MiB`},
		{[]string{"--memory", "-2"}, `--memory "-2"`},
		{[]string{"--pids", "1"}, `--pids 1: a container needs at least 2`},
		{[]string{"--pids", "-7"}, `--pids -7: a container needs at least 2`},
		{[]string{"--pids", "5000000"}, `--pids 5000000: above the kernel's maximum 4194304`},
		{[]string{"--cpus", "0"}, `--cpus "0": must be at least 0.01`},
		{[]string{"--cpus", "-1"}, `--cpus "-1": must be at least 0.01`},
		{[]string{"--cpus", "0.001"}, `--cpus "0.001": must be at least 0.01`},
		{[]string{"--cpus", "1000"}, `--cpus "1000": this host has`},
		{[]string{"--tmpfs-size", "1"}, `--tmpfs-size "1": the smallest /tmp is 4096 bytes`},
		{[]string{"--tmpfs-size", "0"}, `--tmpfs-size "0"`},
	} {
		r := o.run(append(append([]string{"run", "--rm"}, c.args...), rootfsDir, "/bin/true")...)
		if r.code != 125 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("want exit 125 and %q\n%s", c.want, r)
		}
	}
	if dirs := o.containerDirs(); len(dirs) != 0 {
		t.Errorf("refused runs left records: %v", dirs)
	}
	r := o.run("run", "--rm", "--memory", "6m", "--pids", "2", "--cpus", "0.01", "--tmpfs-size", "4k", rootfsDir, "/bin/sh", "-c", "echo ok")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "ok" {
		t.Errorf("the demo shell at the minimum limits:\n%s", r)
	}
	// A static Go program (the probe) starts at the memory minimum too.
	r = o.run("run", "--rm", "--memory", "6m", rootfsDir, "/bin/probe", "alloc", "0")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "ok" {
		t.Errorf("the probe under --memory 6m:\n%s", r)
	}
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

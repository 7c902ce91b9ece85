package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The daemon's pool of standby supervisors (api/pool_linux.go): a
// foreground oak run goes through the daemon, which hands it to a
// supervisor of its own with a sandbox prepared ahead. These tests run
// through the daemon whatever OAK_NO_DAEMON says, and compare with the
// in-process path (--no-daemon) where they compare.

// throughDaemon makes o's oak go through the daemon even when the suite
// runs with OAK_NO_DAEMON=1.
func throughDaemon(o *oakEnv) *oakEnv {
	o.env = append(o.env, "OAK_NO_DAEMON=0")
	return o
}

// poolIsolationScript prints, from inside a container, what confines it
// (as sandbox's isolationScript does), leaving out what differs from one
// container to the next by design: the host ids its id block maps to.
const poolIsolationScript = `
grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status
awk '{print $1, $3}' /proc/self/uid_map /proc/self/gid_map
cat /proc/self/cgroup
for ns in user mnt pid net ipc uts cgroup; do
	eval host=\$HOST_$ns
	if [ "$(readlink /proc/self/ns/$ns)" = "$host" ]; then echo "$ns host"; else echo "$ns new"; fi
done
awk '{print $5, $6, $(NF-2), $(NF-1)}' /proc/self/mountinfo | sort
cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max 2>&1
cat /proc/net/dev | awk 'NR > 2 {print $1}'
hostname; id; ls /dev
for f in 0 1 2; do readlink /proc/self/fd/$f | sed 's/:.*//'; done; ls /proc/self/fd | wc -l
/bin/probe ptrace-attach 1; /bin/probe mount; /bin/probe unshare user
`

// isolationRunArgs is oak run of poolIsolationScript; the HOST_* links
// are the test process's namespaces.
func isolationRunArgs(t *testing.T, name string) []string {
	args := []string{"run", "--name", name, "--hostname", "box", "-m", "64m", "--pids", "64"}
	for _, ns := range []string{"user", "mnt", "pid", "net", "ipc", "uts", "cgroup"} {
		link, err := os.Readlink("/proc/self/ns/" + ns)
		if err != nil {
			t.Fatal(err)
		}
		args = append(args, "-e", "HOST_"+ns+"="+link)
	}
	return append(args, rootfsDir, "/bin/sh", "-c", poolIsolationScript)
}

// pooled reports whether container ref's sandbox came from the pool.
func (o *oakEnv) pooled(ref string) bool {
	o.t.Helper()
	r := o.run("inspect", "-f", "{{.HostConfig.Pooled}}", ref)
	if r.code != 0 {
		o.t.Fatalf("%s", r)
	}
	return strings.TrimSpace(r.stdout) == "true"
}

// A container launched in a sandbox of the pool is confined exactly as
// one the CLI launches itself, and as one a standby without a prepared
// sandbox launches: the same script prints the same from inside all three,
// and that output shows the confinement. The run is asserted to have been
// served from the pool.
func TestPooledRunIsolation(t *testing.T) {
	needOak(t, true)
	o := throughDaemon(newOak(t))
	direct := o.run(append([]string{"--no-daemon"}, isolationRunArgs(t, "direct")...)...)
	if direct.code != 0 {
		t.Fatalf("%s", direct)
	}
	if o.pooled("direct") {
		t.Error("a --no-daemon run is marked pooled")
	}
	for _, want := range []string{"NoNewPrivs:\t1", "Seccomp:\t2", "user new", "mnt new", "pid new", "net new",
		"cgroup new", "67108864\n64\n", "lo:\n", "box\n", "err EPERM", "/dev/null\npipe\npipe\n4\n"} {
		if !strings.Contains(direct.stdout, want) {
			t.Errorf("the --no-daemon container's output lacks %q:\n%s", want, direct)
		}
	}
	if strings.Contains(direct.stdout, " host\n") {
		t.Errorf("a namespace is the host's:\n%s", direct)
	}
	// The daemon started by the first run fills its pool meanwhile: a
	// run that finds it empty gets a standby without a prepared sandbox,
	// which must confine alike too.
	served := false
	for i := 0; i < 40 && !served; i++ {
		name := fmt.Sprintf("pooled-%d", i)
		r := o.run(isolationRunArgs(t, name)...)
		if r.code != 0 {
			t.Fatalf("%s", r)
		}
		served = o.pooled(name)
		if r.stdout != direct.stdout || r.stderr != direct.stderr {
			t.Errorf("run %d (pooled %v) differs from the --no-daemon run:\n--- pooled\n%s\n--- direct\n%s", i, served, r, direct)
		}
		if !served {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if !served {
		t.Fatal("no run was served from the daemon's pool")
	}
}

// With --pool 0 every foreground run gets a standby started for it, with
// no prepared sandbox: same path, same result.
func TestUnpooledStandbyRun(t *testing.T) {
	needOak(t, true)
	o := throughDaemon(newOak(t))
	d := o.start("daemon", "--pool", "0")
	t.Cleanup(func() { d.cmd.Process.Signal(syscall.SIGTERM); d.wait(10 * time.Second) })
	o.waitDaemon()
	r := o.run(isolationRunArgs(t, "unpooled")...)
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	if o.pooled("unpooled") {
		t.Error("a run under --pool 0 is marked pooled")
	}
	for _, want := range []string{"NoNewPrivs:\t1", "Seccomp:\t2", "user new", "pid new", "67108864\n64\n", "box\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r)
		}
	}
	// The run's own standby ends once it has reported; none is kept.
	deadline := time.Now().Add(10 * time.Second)
	for len(o.standbys()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(o.standbys()); n != 0 {
		t.Errorf("%d standbys live under --pool 0", n)
	}
}

// waitDaemon waits until o's daemon answers.
func (o *oakEnv) waitDaemon() {
	o.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if r := o.run("daemon", "status"); r.code == 0 {
			return
		}
		if time.Now().After(deadline) {
			o.t.Fatal("the daemon did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// standbys are the live standby supervisors of o's root.
func (o *oakEnv) standbys() []int {
	var out []int
	for _, pid := range markedProcs(o.root) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.Contains(string(b), "\x00_standby") {
			out = append(out, pid)
		}
	}
	return out
}

// slotIDs are the container ids the slot files of o's root name, by
// slot file.
func (o *oakEnv) slotIDs() map[string]string {
	ids := map[string]string{}
	ms, _ := filepath.Glob(filepath.Join(o.root, "slots", "[0-9]*"))
	for _, m := range ms {
		if b, err := os.ReadFile(m); err == nil && len(b) == 64 {
			ids[m] = string(b)
		}
	}
	return ids
}

// lockedSlots are the slot files of o's root some process holds locked.
func (o *oakEnv) lockedSlots() []string {
	var out []string
	for m := range o.slotIDs() {
		f, err := os.Open(m)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			out = append(out, m)
		}
		f.Close()
	}
	return out
}

// An idle pool leaves nothing behind when its daemon goes: stopped, its
// standbys destroy their sandboxes; killed, they notice their socket end
// and do the same. Nothing of them is left: no process, no group, no
// locked id block, no mount.
func TestPoolLeavesNothing(t *testing.T) {
	needOak(t, true)
	for _, how := range []string{"stop", "SIGKILL"} {
		t.Run(how, func(t *testing.T) {
			o := throughDaemon(newOak(t))
			const size = 3
			d := o.start("daemon", "--pool", strconv.Itoa(size))
			t.Cleanup(func() { d.cmd.Process.Kill(); d.wait(10 * time.Second) })
			o.waitDaemon()
			// Ready: each standby has its id block locked and its
			// sandbox's groups made, with its init in them.
			var ids []string
			deadline := time.Now().Add(30 * time.Second)
			for {
				ids = ids[:0]
				for _, id := range o.slotIDs() {
					if cgs := cgroupDirs(id); len(cgs) > 0 {
						if b, _ := os.ReadFile(filepath.Join(cgs[0], "cgroup.procs")); len(strings.Fields(string(b))) > 0 {
							ids = append(ids, id)
						}
					}
				}
				if len(ids) == size && len(o.standbys()) == size && len(o.lockedSlots()) == size {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("pool not filled after 30 s: %d prepared sandboxes, %d standbys, %d locked slots",
						len(ids), len(o.standbys()), len(o.lockedSlots()))
				}
				time.Sleep(50 * time.Millisecond)
			}
			if es, _ := o.psAll(); len(es) != 0 {
				t.Errorf("idle standbys show in ps -a: %+v", es)
			}
			if how == "stop" {
				if r := o.run("daemon", "stop"); r.code != 0 {
					t.Fatalf("%s", r)
				}
			} else {
				d.cmd.Process.Kill()
			}
			d.wait(20 * time.Second)
			var left []string
			for end := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				left = left[:0]
				for _, pid := range o.standbys() {
					left = append(left, fmt.Sprintf("standby %d", pid))
				}
				for _, id := range ids {
					left = append(left, cgroupDirs(id)...)
				}
				left = append(left, o.lockedSlots()...)
				mi, _ := os.ReadFile("/proc/self/mountinfo")
				for _, l := range strings.Split(string(mi), "\n") {
					if strings.Contains(l, o.root) {
						left = append(left, "mount "+l)
					}
				}
				if len(left) == 0 || time.Now().After(end) {
					break
				}
			}
			if len(left) > 0 {
				t.Errorf("after the daemon's %s, left behind:\n%s", how, strings.Join(left, "\n"))
			}
		})
	}
}

// A foreground container supervised by a standby is not the daemon's:
// it runs on when the daemon is killed, and its oak run still gets its
// output and exit status.
func TestForegroundSurvivesDaemonKill(t *testing.T) {
	needOak(t, true)
	o := throughDaemon(newOak(t))
	b := o.start("run", "--name", "fg", rootfsDir, "/bin/sh", "-c", "sleep 1; echo still-here; exit 7")
	o.waitRunning("fg")
	r := o.run("daemon", "status")
	var pid int
	if _, err := fmt.Sscanf(r.stdout, "running, pid %d", &pid); err != nil || pid <= 0 {
		t.Fatalf("daemon status: %v\n%s", err, r)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	res, ok := b.wait(30 * time.Second)
	if !ok {
		t.Fatal("oak run did not return")
	}
	if res.code != 7 || res.stdout != "still-here\n" {
		t.Errorf("after the daemon's SIGKILL: want exit 7 and the output\n%s", res)
	}
}

// When the oak run of a foreground container dies, the container dies
// with it, as when oak runs it in-process; and the record says it ended.
func TestForegroundClientKilled(t *testing.T) {
	needOak(t, true)
	o := throughDaemon(newOak(t))
	b := o.start("run", "--name", "orphan", rootfsDir, "/bin/sleep", "1000")
	e := o.waitRunning("orphan")
	rec := o.diskRecords()[e.ID]
	init := hostProc{rec.Pid, rec.PidStart}
	if !init.alive() {
		t.Fatalf("the container's init %d is not alive", rec.Pid)
	}
	b.cmd.Process.Kill()
	b.wait(10 * time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for init.alive() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if init.alive() {
		t.Fatalf("the container's init %d outlived its oak run", rec.Pid)
	}
	o.waitExited("orphan", 10*time.Second)
}

// heldByStandby reports whether the id block file at path is locked by a
// standby supervisor of the daemon's pool (oak _standby), which reserves
// its block before any request comes. Checks for leftovers call it only
// once no container record is left, so such a standby is an idle one: a
// reservation by design, not a leak.
func heldByStandby(path string) bool {
	var st syscall.Stat_t
	if syscall.Stat(path, &st) != nil {
		return false
	}
	locks, err := os.ReadFile("/proc/locks")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(locks), "\n") {
		f := strings.Fields(l)
		// "1: FLOCK  ADVISORY  WRITE PID MAJ:MIN:INODE START END"
		if len(f) < 6 || f[1] != "FLOCK" || !strings.HasSuffix(f[5], fmt.Sprintf(":%d", st.Ino)) {
			continue
		}
		cmd, _ := os.ReadFile("/proc/" + f[4] + "/cmdline")
		if slices.Contains(strings.Split(string(cmd), "\x00"), "_standby") {
			return true
		}
	}
	return false
}

// TestForegroundRunMetrics: a foreground run through the daemon, served
// by a standby, is a launch the daemon counts and times like a detached
// one; a run whose command does not exist is a failed launch.
func TestForegroundRunMetrics(t *testing.T) {
	needOak(t, true)
	o := throughDaemon(newOak(t))
	if r := o.run("run", "--rm", rootfsDir, "/bin/true"); r.code != 0 {
		t.Fatalf("%s", r)
	}
	if r := o.run("run", "--rm", rootfsDir, "/no/such/command"); r.code == 0 {
		t.Fatalf("a run of a missing command succeeded\n%s", r)
	}
	// The standby reports the launch just before the container's
	// command runs on; the daemon counts it when that word arrives.
	want := map[string]float64{`oak_launches_total{result="ok"}`: 1, `oak_launches_total{result="failed"}`: 1,
		`oak_launch_seconds_count`: 1}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		m := o.scrape()
		ok := true
		for k, v := range want {
			ok = ok && m[k] == v
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("launch metrics %v, want %v", with(m, "oak_launch"), want)
		}
	}
}

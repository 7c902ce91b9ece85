//go:build linux

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A container cannot read any host file outside its image, by any path:
// absolute, climbing with ../, through /proc/PID/root or cwd, or through
// the host path of the image itself.
func TestHostFilesInvisible(t *testing.T) {
	needOak(t, true)
	o := newOak(t)

	// A host file that is certainly not in the image, in a directory that
	// is not a mount point inside the container.
	secretDir, err := os.MkdirTemp("/var/tmp", "oak-it-secret-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(secretDir) })
	os.Chmod(secretDir, 0o755)
	secret := filepath.Join(secretDir, "secret")
	if err := os.WriteFile(secret, []byte("host secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	paths := []string{
		secret,
		"/../../.." + secret,
		"../../../../../.." + secret,
		"/proc/self/root/../../.." + secret,
		"/proc/self/cwd/../../.." + secret,
		"/dev/../.." + secret,
		"/tmp/../../.." + secret,
		rootfsDir + "/../../../.." + secret, // the image's own host path
		rootfsDir + "/bin/busybox",
	}
	// Host files the image does not have.
	for _, p := range []string{"/etc/shadow", "/etc/hostname", "/root/.bashrc", "/usr/bin/env", "/var/log/dpkg.log"} {
		if _, err := os.Stat(p); err != nil {
			continue // not on this host: proves nothing
		}
		if _, err := os.Lstat(filepath.Join(rootfsDir, p)); err == nil {
			continue // in the image
		}
		paths = append(paths, p, "/../.."+p)
	}
	for _, p := range paths {
		t.Run(strings.ReplaceAll(p, "/", "|"), func(t *testing.T) {
			o := o.sub(t)
			t.Parallel()
			if got := o.probe("read-file", p); got != "err ENOENT" {
				t.Errorf("read %s inside the container: got %q, want \"err ENOENT\"", p, got)
			}
		})
	}
	// Through the init's (pid 1) root and cwd links: these must resolve
	// inside the container (ENOENT) or be refused (EACCES: pid 1 is not
	// dumpable), never reach the host.
	for _, p := range []string{"/proc/1/root" + secret, "/proc/1/root/../../.." + secret, "/proc/1/cwd/../.." + secret} {
		t.Run(strings.ReplaceAll(p, "/", "|"), func(t *testing.T) {
			o := o.sub(t)
			t.Parallel()
			if got := o.probe("read-file", p); got != "err ENOENT" && got != "err EACCES" {
				t.Errorf("read %s inside the container: got %q, want \"err ENOENT\" or \"err EACCES\"", p, got)
			}
		})
	}
	t.Run("find", func(t *testing.T) {
		o := o.sub(t)
		t.Parallel()
		// The whole visible tree, /proc included: no trace of the file.
		r := o.run("run", rootfsDir, "/bin/find", "/", "-name", "oak-it-secret-*")
		if strings.Contains(r.stdout, filepath.Base(secretDir)) {
			t.Errorf("find / inside the container sees the host file:\n%s", r)
		}
	})
	t.Run("own image readable", func(t *testing.T) {
		o := o.sub(t)
		t.Parallel()
		// So that the refusals above are not just a broken probe.
		if got := o.probe("read-file", "/bin/probe"); got != "ok" {
			t.Errorf("read /bin/probe: got %q, want ok", got)
		}
	})
}

// A container sees only its own processes: not the host's, not another
// container's. Two detached containers each list /proc while the other is
// running; a host process with a distinctive command line is running too.
func TestProcessesInvisible(t *testing.T) {
	needOak(t, true)
	o := newOak(t)

	host := exec.Command("sleep", "98765")
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Process.Kill(); host.Wait() })

	// A lists at 2.5 s and B at 1.0 s after their starts; both live 5 s
	// (A) and 3.5 s (B), so each lists while the other runs as long as B
	// starts within 2.5 s of A.
	t0 := time.Now()
	a := o.runD("--name", "procs-a", rootfsDir, "/bin/probe", "procs-after", "2500", "2500", "MARK-A")
	b := o.runD("--name", "procs-b", rootfsDir, "/bin/probe", "procs-after", "1000", "2500", "MARK-B")
	if d := time.Since(t0); d > 2*time.Second {
		t.Fatalf("starting two detached containers took %v: the overlap this test relies on is gone", d)
	}
	o.waitExited(a, 30*time.Second)
	o.waitExited(b, 30*time.Second)

	check := func(id, own, other string) {
		r := o.run("logs", id)
		if r.code != 0 {
			t.Fatalf("oak logs %s:\n%s", id, r)
		}
		ls := lines(r.stdout)
		if !strings.Contains(r.stdout, own) {
			t.Errorf("container %s does not see its own process (%s):\n%s", id, own, r.stdout)
		}
		if strings.Contains(r.stdout, other) {
			t.Errorf("container %s sees the other container's process (%s):\n%s", id, other, r.stdout)
		}
		if strings.Contains(r.stdout, "98765") {
			t.Errorf("container %s sees a host process (sleep 98765):\n%s", id, r.stdout)
		}
		if len(ls) > 3 {
			t.Errorf("container %s sees %d processes, want its init and its command only:\n%s", id, len(ls), r.stdout)
		}
		if len(ls) == 0 || !strings.HasPrefix(ls[0], "1 ") {
			t.Errorf("container %s: first visible process is not pid 1 of its own namespace:\n%s", id, r.stdout)
		}
	}
	check(a, "MARK-A", "MARK-B")
	check(b, "MARK-B", "MARK-A")

	// Nor can it signal them: a host pid means nothing inside.
	hp := strconv.Itoa(host.Process.Pid)
	if got := o.probe("kill", hp, "9"); got != "err ESRCH" {
		t.Errorf("kill -9 of host pid %s from a container: got %q, want \"err ESRCH\"", hp, got)
	}
	if err := host.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("host process %s after the container tried to kill it: %v", hp, err)
	}
}

// A container's process holds no file descriptor but its stdin, stdout and
// stderr: nothing of oak's (state files, the image directory, pipes to the
// supervisor) leaks in, nor anything oak itself inherited from its caller
// (here the host's root directory and /etc/passwd, open as fds 3 and 4:
// either would hand the container the host's file system).
//
// The probe is a Go program, whose runtime (Go 1.25+) keeps the
// container's own cgroup CPU files open to follow its limit; noCgroupFiles
// turns that off so that every descriptor left is one the probe did not open.
func TestNoLeakedFileDescriptors(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	for _, p := range []string{"/", "/etc/passwd"} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		o.files = append(o.files, f)
	}
	check := func(how, out string) {
		var fds []string
		for _, l := range lines(out) {
			fd, _, _ := strings.Cut(l, " ")
			fds = append(fds, fd)
		}
		if strings.Join(fds, ",") != "0,1,2" {
			t.Errorf("%s: the container's process has file descriptors %v, want only 0,1,2:\n%s", how, fds, out)
		}
	}
	t.Run("foreground", func(t *testing.T) {
		o := o.sub(t)
		t.Parallel()
		r := o.run("run", "-e", noCgroupFiles, rootfsDir, "/bin/probe", "fds")
		if r.code != 0 {
			t.Fatalf("%s", r)
		}
		check("oak run", r.stdout)
	})
	t.Run("detached", func(t *testing.T) {
		o := o.sub(t)
		t.Parallel()
		id := o.runD("-e", noCgroupFiles, rootfsDir, "/bin/probe", "fds")
		o.waitExited(id, 20*time.Second)
		r := o.run("logs", id)
		check("oak run -d", r.stdout)
	})
}

// /dev holds only null, zero, full, random and urandom (plus the fd
// symlinks and, optionally, pts, ptmx and shm).
func TestDevices(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	out := o.probe("ls", "/dev")
	got := map[string]bool{}
	for _, n := range strings.Fields(out) {
		if n != "." && n != ".." {
			got[n] = true
		}
	}
	for _, n := range []string{"null", "zero", "full", "random", "urandom"} {
		if !got[n] {
			t.Errorf("/dev/%s is missing; /dev has %v", n, keys(got))
		}
	}
	allowed := map[string]bool{"null": true, "zero": true, "full": true, "random": true, "urandom": true,
		"fd": true, "stdin": true, "stdout": true, "stderr": true, "pts": true, "ptmx": true, "shm": true}
	for n := range got {
		if !allowed[n] {
			t.Errorf("/dev/%s should not be in a container", n)
		}
	}
	if got := o.probe("mknod", "/tmp/oak-null"); got != "err EPERM" {
		t.Errorf("mknod of a character device in /tmp: got %q, want \"err EPERM\"", got)
	}
	if got := o.probe("write-file", "/dev/null"); got != "ok" {
		t.Errorf("write /dev/null: got %q, want ok", got)
	}
}

func keys(m map[string]bool) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// /proc is the container's own, read-only, with the host-revealing files
// masked (read as empty or refused); /sys has nothing mounted.
func TestProcAndSys(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	for _, f := range []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sysrq-trigger",
		"/proc/kallsyms", "/proc/sched_debug", "/proc/key-users"} {
		t.Run(strings.TrimPrefix(f, "/proc/"), func(t *testing.T) {
			o := o.sub(t)
			t.Parallel()
			got := o.probe("read-len", f)
			if got != "0" && !strings.HasPrefix(got, "err ") {
				t.Errorf("%s reads %s bytes; want empty or refused", f, got)
			}
		})
	}
	t.Run("proc read-only", func(t *testing.T) {
		o := o.sub(t)
		t.Parallel()
		if got := o.probe("write-file", "/proc/sys/kernel/hostname"); got != "err EROFS" {
			t.Errorf("write /proc/sys/kernel/hostname: got %q, want \"err EROFS\"", got)
		}
	})
	t.Run("own pid namespace", func(t *testing.T) {
		o := o.sub(t)
		t.Parallel()
		got := o.probe("pids")
		for _, f := range strings.Fields(got) {
			if n, _ := strconv.Atoi(f); n > 10 {
				t.Errorf("/proc lists pid %d: not a fresh pid namespace (pids: %s)", n, got)
			}
		}
	})
	t.Run("sys holds only the container's own cgroups", func(t *testing.T) {
		o := o.sub(t)
		t.Parallel()
		ls := func(dir string) []string {
			var names []string
			for _, n := range strings.Fields(o.probe("ls", dir)) {
				if n != "." && n != ".." {
					names = append(names, n)
				}
			}
			return names
		}
		if got := ls("/sys"); strings.Join(got, " ") != "fs" {
			t.Errorf("/sys holds %v, want only fs", got)
		}
		if got := ls("/sys/fs"); strings.Join(got, " ") != "cgroup" {
			t.Errorf("/sys/fs holds %v, want only cgroup", got)
		}
		for _, f := range []string{"/sys/kernel/uevent_seqnum", "/sys/class/net/lo/address", "/sys/fs/cgroup/unified/cgroup.procs",
			"/sys/fs/cgroup/devices/devices.list", "/sys/fs/cgroup/systemd/cgroup.procs"} {
			if got := o.probe("read-file", f); got != "err ENOENT" {
				t.Errorf("read %s: got %q, want \"err ENOENT\"", f, got)
			}
		}
		views := ls("/sys/fs/cgroup")
		if len(views) == 0 {
			t.Fatalf("/sys/fs/cgroup is empty")
		}
		for _, v := range views {
			// The root of each view is the container's own group: no
			// child groups (other containers, the host's) in it.
			for _, n := range ls("/sys/fs/cgroup/" + v) {
				if !strings.Contains(n, ".") && n != "tasks" && n != "notify_on_release" && n != "release_agent" {
					t.Errorf("/sys/fs/cgroup/%s holds a group %q that is not the container's", v, n)
				}
			}
			if got := o.probe("write-file", "/sys/fs/cgroup/"+v+"/cgroup.procs"); got != "err EROFS" {
				t.Errorf("write /sys/fs/cgroup/%s/cgroup.procs: %q, want err EROFS", v, got)
			}
		}
	})
	t.Run("cgroup limits visible", func(t *testing.T) {
		o := o.sub(t)
		t.Parallel()
		r := o.run("run", "--rm", "--memory", "200m", "--cpus", "0.5", "--pids", "77", rootfsDir, "/bin/sh", "-c",
			"cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu.max /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max 2>/dev/null")
		got := strings.Fields(r.stdout)
		v1 := []string{strconv.Itoa(200 << 20), "50000", "77"}
		v2 := []string{strconv.Itoa(200 << 20), "50000", "100000", "77"}
		if strings.Join(got, " ") != strings.Join(v1, " ") && strings.Join(got, " ") != strings.Join(v2, " ") {
			t.Errorf("limits read inside: %q, want %q (v1) or %q (v2)\n%s", got, v1, v2, r)
		}
	})
}

// The /proc files that show the host's kernel, hardware, boot or activity
// read as empty inside a container (or do not exist on this kernel), the
// masked directories are empty, and /proc/version stays: it adds nothing to
// what uname(2) tells (see maskedFiles in sandbox/mounts.go). One container
// reads them all.
func TestProcHostStateMasked(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	files := []string{"cmdline", "iomem", "ioports", "dma", "mtrr", "modules", "vmallocinfo",
		"slabinfo", "buddyinfo", "pagetypeinfo", "zoneinfo", "devices", "misc", "consoles",
		"partitions", "swaps", "diskstats", "interrupts", "softirqs", "schedstat", "kmsg",
		"kallsyms", "kcore", "sys/kernel/random/boot_id"}
	dirs := []string{"pressure", "irq", "bus", "fs", "driver"}
	var script strings.Builder
	for _, f := range files {
		fmt.Fprintf(&script, "echo %s $(/bin/probe read-len /proc/%s)\n", f, f)
	}
	for _, d := range dirs {
		fmt.Fprintf(&script, "echo %s/ $(/bin/probe ls /proc/%s | grep -cv '^\\.\\.\\?$')\n", d, d)
	}
	script.WriteString("echo version $(/bin/probe cat /proc/version)\n")
	r := o.run("run", rootfsDir, "/bin/sh", "-c", script.String())
	if r.code != 0 {
		t.Fatalf("reading /proc in a container failed:\n%s", r)
	}
	got := map[string]string{}
	for _, l := range lines(r.stdout) {
		k, v, _ := strings.Cut(l, " ")
		got[k] = v
	}
	for _, f := range files {
		switch v, ok := got[f]; {
		case !ok:
			t.Errorf("/proc/%s: no answer\n%s", f, r)
		case v == "err ENOENT":
			t.Logf("/proc/%s does not exist on this kernel", f)
		case v != "0":
			t.Errorf("/proc/%s reads %q; want 0 bytes (masked)", f, v)
		}
	}
	for _, d := range dirs {
		if v := got[d+"/"]; v != "0" {
			t.Errorf("/proc/%s lists %q entries; want none (masked)", d, v)
		}
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	if release := unix.ByteSliceToString(uts.Release[:]); !strings.Contains(got["version"], release) {
		t.Errorf("/proc/version = %q; want it left readable, naming release %s as uname does", got["version"], release)
	}
}

// noCgroupFiles keeps a Go program from opening its cgroup files.
const noCgroupFiles = "GODEBUG=containermaxprocs=0"

// With --read-only the image is mounted as it is: every way to change it
// answers EROFS, while /tmp and /dev/null stay writable.
func TestRootReadOnly(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	cases := [][]string{
		{"write-file", "/oak-new"},
		{"write-file", "/bin/oak-new"},
		{"write-file", "/etc/oak-new"},
		{"write-file", "/bin/busybox"}, // truncating an existing file
		{"write-file", "/bin/probe"},
		{"mkdir", "/oak-dir"},
		{"mkdir", "/etc/oak-dir"},
		{"unlink", "/bin/probe"},
		{"chmod", "/bin/busybox"},
		{"symlink", "/bin/oak-link"},
		{"rename", "/bin/probe", "/bin/probe2"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c, " "), func(t *testing.T) {
			o := o.sub(t)
			t.Parallel()
			if got := o.probeWith([]string{"--read-only"}, c...); got != "err EROFS" {
				t.Errorf("probe %s: got %q, want \"err EROFS\"", strings.Join(c, " "), got)
			}
		})
	}
	t.Run("tmp writable", func(t *testing.T) {
		o := o.sub(t)
		t.Parallel()
		if got := o.probe("write-file", "/tmp/x"); got != "ok" {
			t.Errorf("write /tmp/x: got %q, want ok", got)
		}
	})
	if _, err := os.Stat(filepath.Join(rootfsDir, "bin", "probe2")); err == nil {
		t.Errorf("the image on the host was changed")
	}
}

// The container runs as uid 0 in its user namespace, which maps 0 to an
// unprivileged host uid: the host sees a non-zero uid, and the container's
// root holds only the file-owner and credential capabilities (CHOWN,
// DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP = 0x1fb), in
// its own user namespace, with no_new_privs and a seccomp filter.
func TestUserNamespace(t *testing.T) {
	needOak(t, true)
	o := newOak(t)

	t.Run("inside", func(t *testing.T) {
		o := o.sub(t)
		t.Parallel()
		if got := o.probe("id"); got != "uid=0 gid=0 euid=0 egid=0" {
			t.Errorf("probe id: got %q, want uid 0 inside", got)
		}
		st := o.probe("status")
		want := map[string]string{
			"CapInh": "0000000000000000", "CapPrm": "00000000000001fb", "CapEff": "00000000000001fb",
			"CapBnd": "00000000000001fb", "CapAmb": "0000000000000000", "NoNewPrivs": "1", "Seccomp": "2",
		}
		got := map[string]string{}
		for _, l := range lines(st) {
			k, v, _ := strings.Cut(l, ":")
			got[k] = strings.TrimSpace(v)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("/proc/self/status %s: got %q, want %q\n%s", k, got[k], v, st)
			}
		}
	})

	t.Run("maps", func(t *testing.T) {
		o := o.sub(t)
		t.Parallel()
		for _, m := range []string{"uid-map", "gid-map"} {
			out := o.probe(m)
			ls := lines(out)
			if len(ls) == 0 {
				t.Errorf("%s is empty", m)
			}
			for _, l := range ls {
				f := strings.Fields(l)
				if len(f) != 3 {
					t.Errorf("%s: bad line %q", m, l)
					continue
				}
				in, _ := strconv.ParseUint(f[0], 10, 64)
				host, _ := strconv.ParseUint(f[1], 10, 64)
				n, _ := strconv.ParseUint(f[2], 10, 64)
				if host == 0 || n == 0 {
					t.Errorf("%s maps host id 0 (or nothing): %q", m, l)
				}
				if in == 0 && host < 1000 {
					t.Errorf("%s maps container root to host id %d, a system id", m, host)
				}
			}
		}
	})

	t.Run("from the host", func(t *testing.T) {
		o := o.sub(t)
		t.Parallel()
		id := o.runD(rootfsDir, "/bin/sleep", "100")
		e := o.waitRunning(id)
		pids := []int{e.Pid}
		pids = append(pids, waitChildComm(t, e.Pid, "sleep", 10*time.Second))
		for _, pid := range pids {
			for _, key := range []string{"Uid", "Gid"} {
				v, err := statusField(pid, key)
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range strings.Fields(v) {
					if f == "0" {
						t.Errorf("host pid %d (%s) has %s %q: a container process is host root", pid, comm(pid), key, v)
					}
				}
			}
		}
		// The maps seen from the host agree.
		m := readFirst(fmt.Sprintf("/proc/%d/uid_map", e.Pid))
		f := strings.Fields(m)
		uid, _ := statusField(e.Pid, "Uid")
		if len(f) < 3 || f[0] != "0" || f[1] == "0" || !strings.HasPrefix(uid, f[1]) {
			t.Errorf("host view: uid_map %q, Uid %q: container root is not the mapped unprivileged uid", m, uid)
		}
		self, _ := os.Readlink("/proc/self/ns/user")
		theirs, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", e.Pid))
		if self == theirs {
			t.Errorf("container process is in the host's user namespace (%s)", self)
		}
	})
}

// The environment is only what the image and the flags give, plus PATH,
// HOSTNAME and HOME; nothing of oak's environment leaks.
func TestEnvironment(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	leak := "oak-leak-" + randHex(t)
	o.env = []string{"OAK_IT_LEAK=" + leak, "OAK_ROOT_IT_DUMMY=" + leak}

	r := o.run("run", "--name", "envtest", "-e", "FOO=bar", "-e", "WITH_EQ=a=b", rootfsDir, "/bin/probe", "env")
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	if strings.Contains(r.stdout, leak) {
		t.Errorf("host environment leaks into the container:\n%s", r.stdout)
	}
	got := map[string]string{}
	for _, l := range lines(r.stdout) {
		k, v, _ := strings.Cut(l, "=")
		got[k] = v
	}
	want := map[string]string{
		"PATH":     "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOSTNAME": got["HOSTNAME"], // checked below
		"HOME":     "/",
		"FOO":      "bar",
		"WITH_EQ":  "a=b",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("container env %s=%q, want %q", k, got[k], v)
		}
	}
	if got["HOSTNAME"] == "" {
		t.Errorf("container env has no HOSTNAME (its value is checked by TestHostname)")
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("container env has unexpected %s=%q", k, got[k])
		}
	}

	r = o.run("run", "-w", "/etc", rootfsDir, "/bin/sh", "-c", "pwd")
	if r.code != 0 || r.stdout != "/etc\n" {
		t.Errorf("-w /etc: want \"/etc\" printed\n%s", r)
	}
	r = o.run("run", "-e", "PATH=/oak-nowhere", rootfsDir, "/bin/sh", "-c", "echo $PATH")
	if r.code != 0 || r.stdout != "/oak-nowhere\n" {
		t.Errorf("-e PATH=... does not replace PATH\n%s", r)
	}
}

// The hostname is the container's short ID or its --name (the contract
// allows either: docker uses the short id even with --name), and HOSTNAME
// in the environment is the same.
func TestHostname(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	script := "/bin/probe hostname; echo $HOSTNAME"
	check := func(r result, id, name string) {
		t.Helper()
		ls := lines(r.stdout)
		if r.code != 0 || len(ls) != 2 {
			t.Fatalf("want hostname and $HOSTNAME\n%s", r)
		}
		h := ls[0]
		if ls[1] != h {
			t.Errorf("HOSTNAME=%q but the hostname is %q", ls[1], h)
		}
		isID := len(h) >= 8 && strings.Trim(h, "0123456789abcdef") == "" && (id == "" || strings.HasPrefix(id, h))
		if h != name && !isID {
			t.Errorf("hostname %q is neither the name %q nor a short id (id %q)", h, name, id)
		}
	}
	check(o.run("run", "--name", "web1", rootfsDir, "/bin/sh", "-c", script), "", "web1")
	id := o.runD(rootfsDir, "/bin/sh", "-c", script)
	o.waitExited(id, 20*time.Second)
	check(o.run("logs", id), id, "")
	id = o.runD("--name", "web2", rootfsDir, "/bin/sh", "-c", script)
	o.waitExited(id, 20*time.Second)
	check(o.run("logs", id), id, "web2")
}

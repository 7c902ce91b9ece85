//go:build linux

package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// volumeInfo is what oak volume inspect prints.
type volumeInfo struct {
	Name      string
	Size      int64
	Allocated int64
	Device    string
	Missing   bool
}

// newVolume creates a volume of size (e.g. "32m") under o's state root.
func (o *oakEnv) newVolume(name, size string) {
	o.t.Helper()
	if r := o.run("volume", "create", "--size", size, name); r.code != 0 || strings.TrimSpace(r.stdout) != name {
		o.t.Fatalf("oak volume create --size %s %s\n%s", size, name, r)
	}
}

func (o *oakEnv) inspectVolume(name string) (volumeInfo, result) {
	o.t.Helper()
	r := o.run("volume", "inspect", name)
	var vs []volumeInfo
	if r.code == 0 {
		if err := json.Unmarshal([]byte(r.stdout), &vs); err != nil || len(vs) != 1 {
			o.t.Fatalf("oak volume inspect %s: want a JSON array of one volume (%v)\n%s", name, err, r)
		}
		return vs[0], r
	}
	return volumeInfo{}, r
}

// volumeNames lists the NAME column of oak volume ls.
func (o *oakEnv) volumeNames() ([]string, result) {
	o.t.Helper()
	r := o.run("volume", "ls")
	ls := lines(r.stdout)
	if r.code != 0 || len(ls) == 0 || !strings.HasPrefix(ls[0], "NAME") {
		return nil, r
	}
	var names []string
	for _, l := range ls[1:] {
		if f := strings.Fields(l); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names, r
}

// hostFreeBytes is the space unprivileged users may still take on the file
// system holding path.
func hostFreeBytes(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// A container writing more than its volume's size gets ENOSPC inside,
// and the host gives the volume no more than that size. Not parallel: it
// measures the host's free space.
func TestVolumeQuota(t *testing.T) {
	needOak(t, false)
	o := newOak(t)
	o.newVolume("q", "32m")
	before := hostFreeBytes(t, o.root)

	// 256 MiB into a 32 MiB volume.
	r := o.run("run", "--rm", "-v", "q:/data", rootfsDir, "/bin/sh", "-c",
		"/bin/probe fill /data/big 256; /bin/probe statfs /data; dd if=/dev/zero of=/data/more bs=1M count=8")
	if got := lines(r.stdout); r.code == 0 || len(got) == 0 || got[0] != "err ENOSPC" {
		t.Errorf("256 MiB into a 32 MiB volume: want \"err ENOSPC\" from the probe and dd failing\n%s", r)
	}
	if !strings.Contains(r.stderr, "No space left on device") {
		t.Errorf("dd into the full volume: want \"No space left on device\"\n%s", r)
	}
	if size := statfsSize(r.stdout); size <= 0 || size > 32<<20 {
		t.Errorf("statfs of /data inside: size %d, want at most %d", size, 32<<20)
	}
	after := hostFreeBytes(t, o.root)
	// 16 MiB of slack for whatever else writes to that file system
	// meanwhile; without the quota the drop would be 256 MiB.
	if drop := before - after; drop > 32<<20+16<<20 {
		t.Errorf("the host's free space dropped by %d MiB after filling a 32 MiB volume", drop>>20)
	}
	img := filepath.Join(o.root, "volumes", "vols", "q", "disk.img")
	var st syscall.Stat_t
	if err := syscall.Stat(img, &st); err != nil {
		t.Errorf("volume image: %v", err)
	} else if st.Size != 32<<20 || st.Blocks*512 > 32<<20+1<<20 {
		t.Errorf("volume image %s: size %d, %d bytes allocated; want exactly %d and no more allocated", img, st.Size, st.Blocks*512, 32<<20)
	}
	// The data that did fit is there for the next container.
	r = o.run("run", "--rm", "-v", "q:/data", rootfsDir, "/bin/probe", "read-len", "/data/big")
	if n, err := strconv.Atoi(strings.TrimSpace(r.stdout)); err != nil || n < 16<<20 {
		t.Errorf("reading back what fit: want at least 16 MiB\n%s", r)
	}
}

// Two containers with different volumes do not see each other's data; a
// container without -v has no /data; :ro cannot be written.
func TestVolumeIsolation(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	o.newVolume("va", "16m")
	o.newVolume("vb", "16m")
	probeV := func(vol string, args ...string) string {
		t.Helper()
		a := []string{"run", "--rm"}
		if vol != "" {
			a = append(a, "-v", vol)
		}
		r := o.run(append(append(a, rootfsDir, "/bin/probe"), args...)...)
		if r.code != 0 {
			t.Fatalf("probe %s with -v %s did not run\n%s", strings.Join(args, " "), vol, r)
		}
		return strings.TrimSpace(r.stdout)
	}
	if got := probeV("va:/data", "write-file", "/data/secret-a"); got != "ok" {
		t.Fatalf("writing into volume va: %s", got)
	}
	if got := probeV("va:/data", "read-file", "/data/secret-a"); got != "ok" {
		t.Errorf("a second container with va cannot read back /data/secret-a: %s", got)
	}
	if got := probeV("vb:/data", "read-file", "/data/secret-a"); got != "err ENOENT" {
		t.Errorf("a container with vb reading va's file: %s, want err ENOENT", got)
	}
	if got := probeV("vb:/data", "ls", "/data"); strings.Contains(got, "secret-a") {
		t.Errorf("vb's /data lists va's file:\n%s", got)
	}
	for _, p := range []string{"/data", "/data/secret-a"} {
		if got := probeV("", "read-file", p); got != "err ENOENT" {
			t.Errorf("without -v, reading %s: %s, want err ENOENT", p, got)
		}
	}
	if got := probeV("", "ls", "/"); strings.Contains("\n"+got+"\n", "\ndata\n") {
		t.Errorf("without -v, / lists data:\n%s", got)
	}
	// Read-only: reading works, every kind of write is EROFS.
	if got := probeV("va:/data:ro", "read-file", "/data/secret-a"); got != "ok" {
		t.Errorf(":ro reading /data/secret-a: %s, want ok", got)
	}
	for _, args := range [][]string{
		{"write-file", "/data/new"},
		{"write-file", "/data/secret-a"},
		{"mkdir", "/data/dir"},
		{"unlink", "/data/secret-a"},
		{"chmod", "/data/secret-a"},
	} {
		if got := probeV("va:/data:ro", args...); got != "err EROFS" {
			t.Errorf(":ro %s: %s, want err EROFS", strings.Join(args, " "), got)
		}
	}
	if got := probeV("va:/data", "read-file", "/data/secret-a"); got != "ok" {
		t.Errorf("after the :ro attempts, /data/secret-a is gone: %s", got)
	}
}

// Data written and fsync'd into a volume survives kill -9 of the oak
// process supervising the container, and a new container reads it back.
func TestVolumeSurvivesSupervisorKill(t *testing.T) {
	needOak(t, true)
	const mib = 4
	readBack := func(t *testing.T, o *oakEnv, file string) {
		t.Helper()
		r := o.run("run", "--rm", "-v", "d:/data", rootfsDir, "/bin/probe", "read-len", file)
		if got := strings.TrimSpace(r.stdout); r.code != 0 || got != strconv.Itoa(mib<<20) {
			t.Errorf("reading back %s after the kill: want %d bytes\n%s", file, mib<<20, r)
		}
		r = o.run("run", "--rm", "-v", "d:/data", rootfsDir, "/bin/cat", "/data/note")
		if r.code != 0 || r.stdout != "synced\n" {
			t.Errorf("reading back /data/note after the kill: want \"synced\"\n%s", r)
		}
	}
	script := "/bin/probe fill /data/keep " + strconv.Itoa(mib) + " && echo synced > /data/note && sync && echo written && exec sleep 300"

	t.Run("foreground", func(t *testing.T) {
		t.Parallel()
		o := newOak(t)
		o.newVolume("d", "32m")
		b := o.start("run", "--name", "w", "-v", "d:/data", rootfsDir, "/bin/sh", "-c", script)
		waitStdoutIs(t, b, "ok\nwritten\n", 20*time.Second)
		e := o.waitRunning("w")
		st, _ := readStat(e.Pid)
		init := hostProc{e.Pid, st.start}
		b.cmd.Process.Signal(syscall.SIGKILL)
		if _, ok := b.wait(10 * time.Second); !ok {
			t.Fatal("oak survived SIGKILL")
		}
		waitProcGone(t, init, 10*time.Second)
		readBack(t, o, "/data/keep")
	})

	t.Run("detached", func(t *testing.T) {
		t.Parallel()
		o := newOak(t)
		o.newVolume("d", "32m")
		id := o.runD("-v", "d:/data", rootfsDir, "/bin/sh", "-c", script)
		e := o.waitRunning(id)
		// Wait for the write to be done: the log says so.
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(o.run("logs", id).stdout, "written") {
			if time.Now().After(deadline) {
				t.Fatalf("the container did not write its data within 20 s\n%s", o.run("logs", id))
			}
			time.Sleep(50 * time.Millisecond)
		}
		var rec struct {
			Supervisor int    `json:"supervisor"`
			SupStart   uint64 `json:"supervisor_start"`
		}
		b, err := os.ReadFile(filepath.Join(o.root, "containers", id, "state.json"))
		if err == nil {
			err = json.Unmarshal(b, &rec)
		}
		if err != nil || rec.Supervisor <= 0 {
			t.Fatalf("no supervisor pid in the state record: %v\n%s", err, b)
		}
		sup := hostProc{rec.Supervisor, rec.SupStart}
		if !sup.alive() || !strings.Contains(readFirst("/proc/"+strconv.Itoa(sup.pid)+"/cmdline"), id) {
			t.Fatalf("supervisor %d from the state record is not the live oak supervising %s", sup.pid, id)
		}
		st, _ := readStat(e.Pid)
		init := hostProc{e.Pid, st.start}
		syscall.Kill(sup.pid, syscall.SIGKILL)
		waitProcGone(t, sup, 10*time.Second)
		waitProcGone(t, init, 10*time.Second)
		if e, ok := o.find(id); ok && e.Status == "running" {
			t.Errorf("oak ps -a shows the container of a killed supervisor as running (status %q, pid %d); "+
				"supervisor %d is %s, init %d is %s", e.Status, e.Pid, sup.pid, describeProc(sup.pid), init.pid, describeProc(init.pid))
		}
		readBack(t, o, "/data/keep")
	})
}

// describeProc describes what /proc says of pid: "gone", or its state
// letter ("Z (zombie)" for a dead process nobody has reaped yet).
func describeProc(pid int) string {
	st, ok := readStat(pid)
	switch {
	case !ok:
		return "gone"
	case st.state == 'Z':
		return "Z (zombie: dead, not yet reaped by its parent " + strconv.Itoa(st.ppid) + ")"
	}
	return string(st.state)
}

// waitStdoutIs waits until the background oak's stdout is want.
func waitStdoutIs(t *testing.T, b *bg, want string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		out, errOut := b.output()
		if out == want {
			return
		}
		if _, done := b.wait(0); done || time.Now().After(deadline) {
			t.Fatalf("waiting for stdout %q: have %q, stderr %q", want, out, errOut)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitProcGone waits until p is gone.
func waitProcGone(t *testing.T, p hostProc, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for p.alive() {
		if time.Now().After(deadline) {
			t.Fatalf("process %d (%s) still alive %v after its oak was killed", p.pid, comm(p.pid), d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// oak volume rm is refused while a container holds the volume, and works
// once the container is removed.
func TestVolumeRmInUse(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	o.newVolume("u", "16m")
	id := o.runD("-v", "u:/data", rootfsDir, "/bin/sleep", "300")
	o.waitRunning(id)
	if v, r := o.inspectVolume("u"); r.code != 0 || v.Device == "" {
		t.Errorf("oak volume inspect u while in use: want a device\n%s", r)
	}
	r := o.run("volume", "rm", "u")
	if r.code == 0 {
		t.Errorf("oak volume rm succeeded while container %s uses the volume\n%s", id, r)
	} else if msg, ok := singleLine(r.stderr); !ok || !strings.Contains(msg, "u") {
		t.Errorf("oak volume rm refused: want one line naming the volume\n%s", r)
	}
	if names, r := o.volumeNames(); len(names) != 1 || names[0] != "u" {
		t.Errorf("after a refused rm, oak volume ls lists %q\n%s", names, r)
	}
	if r := o.run("rm", "-f", id); r.code != 0 {
		t.Fatalf("oak rm -f\n%s", r)
	}
	if r := o.run("volume", "rm", "u"); r.code != 0 {
		t.Errorf("oak volume rm after oak rm -f\n%s", r)
	}
	if names, r := o.volumeNames(); len(names) != 0 {
		t.Errorf("oak volume ls lists %q after rm\n%s", names, r)
	}
	if ents, _ := os.ReadDir(filepath.Join(o.root, "volumes", "vols")); len(ents) != 0 {
		t.Errorf("volumes/vols holds %d entries after the only volume was removed", len(ents))
	}
}

// A new, empty volume is filled from the image's directory at its target,
// with its owners and modes (docker's named volumes do this), once: later
// containers see what earlier ones wrote. lost+found is not left behind
// (initdb refuses a data directory that is not empty).
func TestVolumeFilledFromImage(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	img := filepath.Join(t.TempDir(), "rootfs")
	if out, err := exec.Command("cp", "-a", rootfsDir, img).CombinedOutput(); err != nil {
		t.Fatalf("copy the test image: %v\n%s", err, out)
	}
	data := filepath.Join(img, "srv", "data")
	if err := os.MkdirAll(filepath.Join(data, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "sub", "seed"), []byte("from the image\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub/seed", filepath.Join(data, "link")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{data, filepath.Join(data, "sub"), filepath.Join(data, "sub", "seed")} {
		if err := os.Lchown(p, 100, 101); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(data, 0o750); err != nil {
		t.Fatal(err)
	}
	o.newVolume("vf", "32m")
	r := o.run("run", "--rm", "-v", "vf:/srv/data", img, "/bin/sh", "-c",
		"stat -c '%u:%g %a' /srv/data /srv/data/sub/seed; readlink /srv/data/link; cat /srv/data/link; ls -a /srv/data; echo changed > /srv/data/sub/seed")
	want := "100:101 750\n100:101 640\nsub/seed\nfrom the image\n.\n..\nlink\nsub\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("first container on a new volume: got\n%s\nwant\n%s\n%s", r.stdout, want, r)
	}
	r = o.run("run", "--rm", "-v", "vf:/srv/data", img, "/bin/cat", "/srv/data/sub/seed")
	if r.code != 0 || r.stdout != "changed\n" {
		t.Errorf("second container: the volume was filled again or lost the write: %q\n%s", r.stdout, r)
	}
}

// oak volume create --owner gives the volume's root to the container ids
// named, starts it empty (no lost+found), and never fills it from an image
// (whose directory would set another owner).
func TestVolumeOwner(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	if r := o.run("volume", "create", "--size", "32m", "--owner", "65534:65534", "vo"); r.code != 0 {
		t.Fatalf("%s", r)
	}
	// Over /usr, which the image fills: an owned volume stays empty.
	r := o.run("run", "--rm", "-v", "vo:/usr", rootfsDir, "/bin/sh", "-c",
		"stat -c %u:%g /usr; ls -A /usr | wc -l; su -s /bin/sh nobody -c 'echo x > /usr/made && echo written'")
	if r.code != 0 || r.stdout != "65534:65534\n0\nwritten\n" {
		t.Errorf("owned volume over /usr: want it nobody's, empty, and writable by nobody\n%s", r)
	}
	for _, bad := range []string{"70000:1", "1", "a:b", "-1:0"} {
		if r := o.run("volume", "create", "--size", "32m", "--owner", bad, "vbad"); r.code == 0 {
			t.Errorf("--owner %s accepted:\n%s", bad, r)
		}
	}
	if names, _ := o.volumeNames(); len(names) != 1 {
		t.Errorf("volumes after refused creates: %v, want only vo", names)
	}
}

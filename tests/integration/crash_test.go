//go:build linux

package integration

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/oak-engine/oak/storage/image"
)

// The crash tests kill oak with SIGKILL at random points of an operation
// (an image import, a write into a volume, a container's creation), a
// bounded number of times, and after each kill let the next oak commands
// (ps -a, image ls, volume ls) repair the state root and check its
// invariants. The random delays come from one seed per test, logged; set
// OAK_CRASH_SEED to replay a run.

// crashIterations is how many kills each test makes.
const crashIterations = 12

// settleTime bounds how long the state may take to become consistent
// after a kill: processes the kill orphaned must die, and a detached
// container's supervisor may still be finishing its start.
const settleTime = 8 * time.Second

func crashRand(t *testing.T) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("OAK_CRASH_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("OAK_CRASH_SEED=%q: %v", s, err)
		}
		seed = n
	}
	t.Logf("seed %d (OAK_CRASH_SEED=%d replays it)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// killAfter starts oak args and SIGKILLs it after d unless it ended first;
// killed says which.
func (o *oakEnv) killAfter(d time.Duration, args ...string) (r result, killed bool) {
	o.t.Helper()
	b := o.start(args...)
	select {
	case <-b.done:
		return b.res, false
	case <-time.After(d):
	}
	b.cmd.Process.Signal(syscall.SIGKILL)
	r, ok := b.wait(10 * time.Second)
	if !ok {
		o.t.Fatalf("oak %s survived SIGKILL", strings.Join(args, " "))
	}
	return r, r.code == -int(syscall.SIGKILL)
}

// timed runs oak args to the end and returns how long it took; it must
// succeed.
func (o *oakEnv) timed(args ...string) time.Duration {
	o.t.Helper()
	r := o.run(args...)
	if r.code != 0 {
		o.t.Fatalf("calibration run failed\n%s", r)
	}
	return r.elapsed
}

// delayBound is the upper bound of the kill delays for an operation that
// takes about took: 0-300 ms, but not much past the operation's end.
func delayBound(took time.Duration) time.Duration {
	return min(300*time.Millisecond, max(20*time.Millisecond, took+took/5))
}

// settleInvariants runs check until it reports nothing, for up to
// settleTime, and reports what it still finds then. What the first round
// found, when a later one was clean, is logged: processes orphaned by the
// kill take a moment to die.
func settleInvariants(t *testing.T, what string, check func() []string) bool {
	t.Helper()
	start := time.Now()
	var first []string
	for {
		v := check()
		if len(v) == 0 {
			if first != nil {
				t.Logf("%s: consistent after %v; the first check found:\n  %s", what,
					time.Since(start).Round(time.Millisecond), strings.Join(first, "\n  "))
			}
			return true
		}
		if first == nil {
			first = v
		}
		if time.Since(start) > settleTime {
			t.Errorf("%s: invariants still broken %v after the kill:\n  %s", what, settleTime, strings.Join(v, "\n  "))
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ---- containers ----

// diskRecord is a container's state.json as it is on disk.
type diskRecord struct {
	ID         string `json:"id"`
	Status     string `json:"status"`
	Pid        int    `json:"pid"`
	PidStart   uint64 `json:"pid_start"`
	Supervisor int    `json:"supervisor"`
	SupStart   uint64 `json:"supervisor_start"`
}

// diskRecords reads every container record under the state root without
// going through oak (which would reconcile them first).
func (o *oakEnv) diskRecords() map[string]diskRecord {
	recs := map[string]diskRecord{}
	for _, id := range o.containerDirs() {
		var r diskRecord
		if b, err := os.ReadFile(filepath.Join(o.root, "containers", id, "state.json")); err == nil && json.Unmarshal(b, &r) == nil {
			recs[id] = r
		} else {
			recs[id] = diskRecord{ID: id}
		}
	}
	return recs
}

// markedProcs lists the live host processes whose command line holds
// marker.
func markedProcs(marker string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !bytes.Contains(b, []byte(marker)) {
			continue
		}
		if st, ok := readStat(pid); ok && st.state != 'Z' {
			pids = append(pids, pid)
		}
	}
	return pids
}

// containerViolations checks the container invariants of o's state root
// after oak ps -a has reconciled it:
//   - every record listed is running with a live init and supervisor, or
//     exited;
//   - every directory under containers/ is a listed container;
//   - no cgroup is named after a container that is not running, and no
//     init recorded before the kill (in seen) lives on unless its
//     container is running;
//   - every live process of the test's containers (marker in its command
//     line) is in the pid namespace of a running container.
func (o *oakEnv) containerViolations(marker string, seen map[string]diskRecord) []string {
	var v []string
	es, err := o.psAll()
	if err != nil {
		return []string{err.Error()}
	}
	recs := o.diskRecords()
	running := map[string]string{} // id → pid namespace of its init
	listed := map[string]bool{}
	for _, e := range es {
		listed[e.ID] = true
		switch e.Status {
		case "exited":
		case "running":
			rec := recs[e.ID]
			init := hostProc{rec.Pid, rec.PidStart}
			sup := hostProc{rec.Supervisor, rec.SupStart}
			if !init.alive() {
				v = append(v, fmt.Sprintf("container %s is listed running but its init %d is %s", shortOf(e.ID), rec.Pid, describeProc(rec.Pid)))
			}
			if !sup.alive() {
				v = append(v, fmt.Sprintf("container %s is listed running but its supervisor %d is %s", shortOf(e.ID), rec.Supervisor, describeProc(rec.Supervisor)))
			}
			if ns, err := pidNS(rec.Pid); err == nil && init.alive() {
				running[e.ID] = ns
			}
		default:
			v = append(v, fmt.Sprintf("container %s is listed %q with no oak operation in progress", shortOf(e.ID), e.Status))
		}
	}
	for id := range recs {
		if !listed[id] {
			v = append(v, fmt.Sprintf("containers/%s exists but oak ps -a does not list it", id))
		}
	}
	all := map[string]diskRecord{}
	for id, r := range seen {
		all[id] = r
	}
	for id, r := range recs {
		all[id] = r
	}
	for id, r := range all {
		if _, ok := running[id]; ok {
			continue
		}
		if cgs := cgroupDirs(id); len(cgs) > 0 {
			v = append(v, fmt.Sprintf("container %s has no live init (listed: %v) but its cgroups remain: %v", shortOf(id), listed[id], cgs))
		}
		if p := (hostProc{r.Pid, r.PidStart}); r.Pid > 0 && p.alive() {
			v = append(v, fmt.Sprintf("container %s is not listed running (listed: %v) but its init %d (%s) lives", shortOf(id), listed[id], r.Pid, comm(r.Pid)))
		}
	}
	nss := map[string]bool{}
	for _, ns := range running {
		nss[ns] = true
	}
	for _, pid := range markedProcs(marker) {
		ns, err := pidNS(pid)
		if err != nil {
			continue // gone meanwhile
		}
		if !nss[ns] {
			v = append(v, fmt.Sprintf("process %d (%s, %s) of a test container lives, but no running container has its pid namespace %s",
				pid, comm(pid), readFirst(fmt.Sprintf("/proc/%d/cmdline", pid)), ns))
		}
	}
	sort.Strings(v)
	return v
}

// shortOf is the 12-character prefix oak shows of a container id.
func shortOf(id string) string { return id[:min(12, len(id))] }

// ---- images ----

// imageViolations checks the image store after oak image ls has opened
// (and so checked and repaired) it: images/tmp is empty, every layer
// directory belongs to an image, every image's layers are all there and
// Get accepts it, and oak image ls lists exactly the stored images.
func (o *oakEnv) imageViolations() []string {
	var v []string
	names := o.imageNames() // opens the store: Check runs here
	root := filepath.Join(o.root, "images")
	// What oak's Check left, before this test's own Open checks again.
	tmp, _ := os.ReadDir(filepath.Join(root, "tmp"))
	for _, e := range tmp {
		v = append(v, "images/tmp/"+e.Name()+" is left after oak image ls (Check)")
	}
	layers := o.layerDirs()

	s, err := image.OpenDB(root, filepath.Join(o.root, "oak.db")) // as engine.Images opens it
	if err != nil {
		return append(v, fmt.Sprintf("image.OpenDB: %v", err))
	}
	imgs, err := s.List()
	if err != nil {
		return append(v, fmt.Sprintf("image store List: %v", err))
	}
	var tags []string
	for _, img := range imgs {
		tags = append(tags, img.Tags...)
	}
	sort.Strings(tags)
	sort.Strings(names)
	if strings.Join(names, " ") != strings.Join(tags, " ") {
		v = append(v, fmt.Sprintf("oak image ls lists %v, the store holds %d images tagged %v", names, len(imgs), tags))
	}
	used := map[string]bool{}
	for _, img := range imgs {
		for _, d := range img.DiffIDs {
			used[strings.TrimPrefix(d, "sha256:")] = true
		}
		if _, err := s.Get(img.ID); err != nil {
			v = append(v, fmt.Sprintf("image %s %v is listed but Get refuses it: %v", img.ShortID(), img.Tags, err))
		}
		for _, dir := range img.Layers() {
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				v = append(v, fmt.Sprintf("image %s %v: layer directory %s: %v", img.ShortID(), img.Tags, dir, err))
			}
		}
	}
	for _, l := range layers {
		if !used[l] {
			v = append(v, "layer directory layers/sha256/"+l+" belongs to no image after oak image ls (Check)")
		}
	}
	return v
}

// crashImage is the greeter image with a third layer of incompressible
// data (size bytes in 8 MiB files), so that an import takes a while.
func crashImage(t *testing.T, size int) v1.Image {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2)) // content need not vary between runs
	var ents []tarEnt
	ents = append(ents, tarEnt{name: "noise/", typ: tar.TypeDir})
	for i := 0; size > 0; i++ {
		n := min(size, 8<<20)
		b := make([]byte, n)
		for j := 0; j+8 <= n; j += 8 {
			u := rng.Uint64()
			for k := 0; k < 8; k++ {
				b[j+k] = byte(u >> (8 * k))
			}
		}
		ents = append(ents, tarEnt{name: fmt.Sprintf("noise/%d", i), body: string(b)})
		size -= n
	}
	layers := append(greeterLayers(t), gzLayerOf(t, layerTar(t, "", ents...)))
	return imageOf(t, greeterConfig, layers...)
}

// Kill oak image import at random points; after each kill the store holds
// only whole images, no orphan layers and no temporary files, every image
// listed runs, and a last import without a kill succeeds.
func TestCrashImport(t *testing.T) {
	needOak(t, true)
	rng := crashRand(t)
	dir := imageDir(t)
	img := crashImage(t, 24<<20)
	archives := []struct{ path, tag string }{
		{writeDockerSave(t, filepath.Join(dir, "crash.tar"), "oak.test/crash:save", img), "oak.test/crash:save"},
		{writeOCILayout(t, filepath.Join(dir, "crash-oci"), "oak.test/crash:oci", img), "oak.test/crash:oci"},
	}
	o := newOak(t)
	took := o.timed("image", "import", archives[0].path)
	if r := o.run("image", "rm", archives[0].tag); r.code != 0 {
		t.Fatalf("oak image rm after the calibration import\n%s", r)
	}
	bound := delayBound(took)
	t.Logf("an import takes %v; kill delays 0-%v", took.Round(time.Millisecond), bound)

	for i := 0; i < crashIterations; i++ {
		a := archives[i%2]
		d := time.Duration(rng.Int64N(int64(bound) + 1))
		r, killed := o.killAfter(d, "image", "import", a.path)
		t.Logf("#%d: import %s, SIGKILL after %v: killed %v (exit %d)", i, filepath.Base(a.path), d.Round(time.Millisecond), killed, r.code)
		if !killed && r.code != 0 {
			t.Errorf("#%d: an import that was not killed failed\n%s", i, r)
		}
		what := fmt.Sprintf("#%d (import %s killed after %v)", i, filepath.Base(a.path), d.Round(time.Millisecond))
		settleInvariants(t, what, o.imageViolations)
		// Every image listed can be run.
		for _, n := range o.imageNames() {
			if r := o.run("run", "--rm", n, "cat /etc/msg; ls /noise | wc -l"); r.code != 0 || r.stdout != greeterMsg2+"\n3\n" {
				t.Errorf("%s: image %s is listed but does not run whole\n%s", what, n, r)
			}
		}
		// Start the next import from nothing every other time, and on top
		// of the layers already stored otherwise.
		if i%2 == 1 {
			for _, n := range o.imageNames() {
				if r := o.run("image", "rm", n); r.code != 0 {
					t.Errorf("%s: oak image rm %s\n%s", what, n, r)
				}
			}
			settleInvariants(t, what+", then image rm", o.imageViolations)
		}
	}

	for _, a := range archives {
		if r := o.run("image", "import", a.path); r.code != 0 {
			t.Errorf("the import of %s retried without a kill failed\n%s", a.path, r)
		}
		if r := o.run("run", "--rm", a.tag); r.code != 0 || r.stdout != greeterOutput {
			t.Errorf("oak run %s after the retried import: want %q\n%s", a.tag, greeterOutput, r)
		}
	}
	settleInvariants(t, "after the retried imports", o.imageViolations)
}

// ---- volumes ----

// volumeViolations checks the volume store after oak volume ls has
// opened (and so repaired) it: volumes/tmp is empty, vols/ holds exactly
// the listed volumes, each with an image of its recorded size holding a
// clean ext4 file system (checked when it is not attached), and no volume
// is attached while none of the test's containers runs.
func (o *oakEnv) volumeViolations(anyRunning bool) []string {
	var v []string
	names, r := o.volumeNames() // opens the store: Repair runs here
	if r.code != 0 {
		return []string{r.String()}
	}
	root := filepath.Join(o.root, "volumes")
	tmp, _ := os.ReadDir(filepath.Join(root, "tmp"))
	for _, e := range tmp {
		v = append(v, "volumes/tmp/"+e.Name()+" is left after oak volume ls (Repair)")
	}
	listed := map[string]bool{}
	for _, n := range names {
		listed[n] = true
	}
	vols, _ := os.ReadDir(filepath.Join(root, "vols"))
	for _, e := range vols {
		if !listed[e.Name()] {
			v = append(v, "volumes/vols/"+e.Name()+" has no record after oak volume ls (Repair)")
		}
	}
	e2fsck, _ := exec.LookPath("e2fsck")
	if e2fsck == "" {
		if _, err := os.Stat("/sbin/e2fsck"); err == nil {
			e2fsck = "/sbin/e2fsck"
		}
	}
	for _, n := range names {
		info, r := o.inspectVolume(n)
		if r.code != 0 {
			v = append(v, fmt.Sprintf("volume %s is listed but inspect fails: %s", n, strings.TrimSpace(r.stderr)))
			continue
		}
		img := filepath.Join(root, "vols", n, "disk.img")
		fi, err := os.Stat(img)
		switch {
		case err != nil:
			v = append(v, fmt.Sprintf("volume %s: %v", n, err))
			continue
		case info.Missing:
			v = append(v, fmt.Sprintf("volume %s: inspect says its image is missing", n))
		case fi.Size() != info.Size:
			v = append(v, fmt.Sprintf("volume %s: image of %d bytes, record says %d", n, fi.Size(), info.Size))
		}
		if info.Device != "" {
			if !anyRunning {
				v = append(v, fmt.Sprintf("volume %s is attached to %s but no container of the test runs", n, info.Device))
			}
			continue
		}
		if e2fsck != "" {
			if out, err := exec.Command(e2fsck, "-fn", img).CombinedOutput(); err != nil {
				v = append(v, fmt.Sprintf("volume %s: e2fsck -fn: %v\n%s", n, err, out))
			}
		}
	}
	sort.Strings(v)
	return v
}

// Kill oak while it creates volumes and while a container writes into
// one; after each kill the volume store is consistent, no container or
// attachment is left behind, everything written and synced before the
// kill is there, and the volumes can all be removed at the end.
func TestCrashVolume(t *testing.T) {
	needOak(t, true)
	rng := crashRand(t)
	o := newOak(t)
	marker := "oak-crash-" + randHex(t)
	o.newVolume("v", "128m")
	const chunks = 64 // 64 KiB each: 4 MiB a file
	write := func(i int) []string {
		script := fmt.Sprintf(": %s; dd if=/dev/urandom of=/data/f%d bs=64k count=%d conv=fsync 2>/dev/null && echo done", marker, i, chunks)
		return []string{"run", "--name", fmt.Sprintf("w%d", i), "-v", "v:/data", rootfsDir, "/bin/sh", "-c", script}
	}
	tookWrite := o.timed(write(-1)...)
	tookCreate := o.timed("volume", "create", "--size", "16m", "cal")
	bw, bc := delayBound(tookWrite), delayBound(tookCreate)
	t.Logf("a write takes %v, a create %v; kill delays 0-%v and 0-%v", tookWrite.Round(time.Millisecond),
		tookCreate.Round(time.Millisecond), bw, bc)

	written := []int{-1}
	check := func(what string) {
		t.Helper()
		seen := o.diskRecords()
		settleInvariants(t, what, func() []string {
			v := o.containerViolations(marker, seen)
			anyRunning := false
			if es, err := o.ps(false); err == nil {
				anyRunning = len(es) > 0
			}
			return append(v, o.volumeViolations(anyRunning)...)
		})
	}
	for i := 0; i < crashIterations; i++ {
		d := time.Duration(rng.Int64N(int64(bc) + 1))
		name := fmt.Sprintf("c%d", i)
		r, killed := o.killAfter(d, "volume", "create", "--size", "16m", name)
		t.Logf("#%d: volume create %s, SIGKILL after %v: killed %v (exit %d)", i, name, d.Round(time.Millisecond), killed, r.code)
		if !killed && r.code != 0 {
			t.Errorf("#%d: a volume create that was not killed failed\n%s", i, r)
		}
		check(fmt.Sprintf("#%d (volume create killed after %v)", i, d.Round(time.Millisecond)))

		d = time.Duration(rng.Int64N(int64(bw) + 1))
		r, killed = o.killAfter(d, write(i)...)
		done := strings.Contains(r.stdout, "done")
		t.Logf("#%d: write f%d, SIGKILL after %v: killed %v (exit %d), synced %v", i, i, d.Round(time.Millisecond), killed, r.code, done)
		if !killed && (r.code != 0 || !done) {
			t.Errorf("#%d: a write that was not killed failed\n%s", i, r)
		}
		if done {
			written = append(written, i)
		}
		check(fmt.Sprintf("#%d (write killed after %v)", i, d.Round(time.Millisecond)))
	}

	// A last write without a kill; then every file whose write finished
	// before its kill is whole.
	if r := o.run(write(crashIterations)...); r.code != 0 || r.stdout != "done\n" {
		t.Errorf("the write retried without a kill failed\n%s", r)
	}
	written = append(written, crashIterations)
	var script strings.Builder
	for _, i := range written {
		fmt.Fprintf(&script, "/bin/probe read-len /data/f%d; ", i)
	}
	r := o.run("run", "--rm", "-v", "v:/data", rootfsDir, "/bin/sh", "-c", script.String())
	got := lines(r.stdout)
	for k, i := range written {
		if k >= len(got) || got[k] != strconv.Itoa(chunks<<16) {
			t.Errorf("/data/f%d, written and synced before its oak was killed, is not whole\n%s", i, r)
		}
	}
	check("at the end")
	// Nothing holds any volume now: all can be removed.
	names, _ := o.volumeNames()
	for _, n := range names {
		if r := o.run("volume", "rm", n); r.code != 0 {
			t.Errorf("oak volume rm %s at the end\n%s", n, r)
		}
	}
	if names, r := o.volumeNames(); len(names) != 0 {
		t.Errorf("volumes left after removing them all: %v\n%s", names, r)
	}
}

// ---- containers ----

// Kill oak run -d at random points of a container's creation: the
// client oak on even rounds, the detached supervisor it starts (which
// does the actual start) on odd ones. After each kill every record is
// running (with live processes) or exited, nothing of a dead container
// lives on (processes, cgroups, directories), and a last oak run -d
// without a kill works.
func TestCrashCreate(t *testing.T) {
	needOak(t, true)
	rng := crashRand(t)
	o := newOak(t)
	marker := "oak-crash-" + randHex(t)
	// Without a name, create takes no lock of the state root (its record
	// is written aside and renamed into place): half the kills hit that.
	run := func(name string) []string {
		args := []string{"run", "-d"}
		if name != "" {
			args = append(args, "--name", name)
		}
		return append(args, rootfsDir, "/bin/sh", "-c", ": "+marker+"; sleep 60; true")
	}
	took := o.timed(run("cal")...)
	if r := o.run("rm", "-f", "cal"); r.code != 0 {
		t.Fatalf("oak rm -f cal\n%s", r)
	}
	bound := delayBound(took)
	t.Logf("oak run -d takes %v; kill delays 0-%v", took.Round(time.Millisecond), bound)

	for i := 0; i < crashIterations; i++ {
		d := time.Duration(rng.Int64N(int64(bound) + 1))
		name := fmt.Sprintf("c%d", i)
		if i/2%2 == 1 {
			name = ""
		}
		var what, printed string
		if i%2 == 0 {
			r, killed := o.killAfter(d, run(name)...)
			t.Logf("#%d: run -d --name %s, SIGKILL to oak run after %v: killed %v (exit %d)", i, name, d.Round(time.Millisecond), killed, r.code)
			if !killed && r.code != 0 {
				t.Errorf("#%d: an oak run -d that was not killed failed\n%s", i, r)
			}
			what = fmt.Sprintf("#%d (oak run -d killed after %v)", i, d.Round(time.Millisecond))
			if r.code == 0 {
				printed = strings.TrimSpace(r.stdout)
			}
		} else {
			b := o.start(run(name)...)
			sup, ok := o.waitSupervise(b, 10*time.Second)
			killed := false
			if ok {
				select {
				case <-time.After(d):
				case <-b.done:
				}
				killed = syscall.Kill(sup, syscall.SIGKILL) == nil
			}
			r, done := b.wait(20 * time.Second)
			if !done {
				t.Fatalf("#%d: oak run -d did not return after its supervisor was killed", i)
			}
			t.Logf("#%d: run -d --name %s, SIGKILL to its supervisor %d after %v: sent %v; oak run -d exit %d", i, name, sup, d.Round(time.Millisecond), killed, r.code)
			if !ok && r.code != 0 {
				t.Errorf("#%d: oak run -d failed before its supervisor started\n%s", i, r)
			}
			what = fmt.Sprintf("#%d (supervisor killed %v after it appeared)", i, d.Round(time.Millisecond))
			if r.code == 0 {
				printed = strings.TrimSpace(r.stdout)
			}
		}
		seen := o.diskRecords()
		settleInvariants(t, what, func() []string { return o.containerViolations(marker, seen) })
		// oak run -d exits 0, printing an id, only once the command is
		// executing: that container exists and was started.
		// (ps shows a pid only while running: the record keeps the one it
		// had.)
		if printed != "" {
			rec, ok := o.diskRecords()[printed]
			if !ok || rec.Pid <= 0 {
				t.Errorf("%s: oak run -d exited 0 and printed %s, but its record %s", what, printed,
					map[bool]string{false: "is gone", true: fmt.Sprintf("shows it never started: %+v", rec)}[ok])
			}
		}
		// Remove what runs, so that the next kill starts from quiet.
		if es, err := o.ps(false); err == nil {
			for _, e := range es {
				if r := o.run("rm", "-f", e.ID); r.code != 0 {
					t.Errorf("%s: oak rm -f %s\n%s", what, e.Name, r)
				}
			}
		}
	}

	id := o.runD(run("final")[2:]...)
	o.waitRunning(id)
	if r := o.run("run", "--rm", rootfsDir, "/bin/echo", "still works"); r.code != 0 || r.stdout != "still works\n" {
		t.Errorf("oak run after the kills\n%s", r)
	}
	if r := o.run("rm", "-f", id); r.code != 0 {
		t.Errorf("oak rm -f final\n%s", r)
	}
	seen := o.diskRecords()
	settleInvariants(t, "at the end", func() []string { return o.containerViolations(marker, seen) })
}

// waitSupervise waits for the detached supervisor (oak _supervise) that
// the oak run -d in b starts under o's state root, and returns its pid;
// ok is false if b ended first.
func (o *oakEnv) waitSupervise(b *bg, d time.Duration) (pid int, ok bool) {
	o.t.Helper()
	want := [][]byte{[]byte("\x00" + o.root + "\x00"), []byte("\x00_supervise\x00")}
	deadline := time.Now().Add(d)
	for {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			cl, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			if err == nil && bytes.Contains(cl, want[0]) && bytes.Contains(cl, want[1]) {
				return pid, true
			}
		}
		if _, done := b.wait(0); done || time.Now().After(deadline) {
			return 0, false
		}
		time.Sleep(time.Millisecond)
	}
}

package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// spawnScript is a --spawn container's command: each line a request
// through its spawn capability, its answer logged after a label; then
// "done", and it stays up (its sub-containers live as long as it).
func spawnScript(steps [][2]string) string {
	var b strings.Builder
	for _, s := range steps {
		fmt.Fprintf(&b, "echo %s: $(/bin/probe spawn %s)\n", s[0], s[1])
	}
	b.WriteString("echo done\nexec sleep 1000\n")
	return b.String()
}

// spawnAnswers is what the log says of each label.
func spawnAnswers(log string) map[string]string {
	got := map[string]string{}
	for _, l := range strings.Split(log, "\n") {
		if k, v, ok := strings.Cut(l, ": "); ok {
			got[k] = v
		}
	}
	return got
}

func runReq(fields string) string {
	return fmt.Sprintf(`POST /v1/containers '{"Image":%q,%s}'`, rootfsDir, fields)
}

// TestSpawn: a --spawn container makes a sub-container from inside, of
// its image, within its quota, and is refused whatever would widen its
// rights; removing it withdraws its sub-containers.
func TestSpawn(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	// A container of root's: a request marked as its spawn, were the
	// mark the container's to set, would be answered for it.
	other := o.runD(rootfsDir, "sleep", "1000")
	steps := [][2]string{
		{"kid", runReq(`"Cmd":["sleep","1000"],"Name":"kid"`)},
		{"list", "GET /v1/containers"},
		{"memory", runReq(`"Cmd":["true"],"Memory":134217728`)},
		{"pids", runReq(`"Cmd":["true"],"PidsLimit":64`)},
		{"egress", runReq(`"Cmd":["true"],"Egress":["10.9.9.9:80/tcp"]`)},
		{"egress-ok", runReq(`"Cmd":["sleep","1000"],"Egress":["10.1.2.3:80/tcp"]`)},
		{"bind", runReq(`"Cmd":["true"],"Volumes":["/etc:/x:ro"]`)},
		{"publish", runReq(`"Cmd":["true"],"Publish":["8080"]`)},
		{"image", `POST /v1/containers '{"Image":"/","Cmd":["true"]}'`},
		{"factory", runReq(`"Cmd":["true"],"Factory":"other"`)},
		// Nesting needs limits of its own, a part of the parent's (see
		// TestSpawnNested).
		{"nest", runReq(`"Cmd":["true"],"Spawn":true`)},
		{"self", "DELETE /v1/containers/$HOSTNAME?force=true"},
		{"volumes", "GET /v1/volumes"},
		{"log", runReq(`"Cmd":["true"],"LogMaxSize":0`)},
		{"forged", "-H Oak-Spawn-Parent:" + other + " -H oak-spawn-parent:" + other + " GET /v1/containers/" + other},
		{"forged-list", "-H Oak-Spawn-Parent:" + other + " GET /v1/containers"},
	}
	parent := o.runD("--spawn", "--memory", "64m", "--pids", "32", "--egress", "10.1.2.3:80/tcp",
		rootfsDir, "/bin/sh", "-c", spawnScript(steps))
	got := spawnAnswers(o.waitOutput(parent, "done", 90*time.Second))
	t.Logf("answers: %v", got)
	want := map[string]string{
		"kid":       "201 ",
		"memory":    "400 ",
		"pids":      "400 ",
		"egress":    "400 ",
		"egress-ok": "201 ",
		"bind":      "400 ",
		"publish":   "400 ",
		"image":     "400 ",
		"factory":   "400 ",
		"nest":      "400 ",
		"self":      "404 ",
		"volumes":   "403 ",
		"log":       "400 ",
		"forged":    "404 ", // the mark is the supervisor's: still the parent's spawn
	}
	for k, w := range want {
		if !strings.HasPrefix(got[k], w) {
			t.Errorf("%s: got %q, want status %s", k, got[k], w)
		}
	}
	if !strings.Contains(got["nest"], "needs a --memory and a --pids limit") {
		t.Errorf("nest: got %q, want refused for want of limits of its own", got["nest"])
	}
	if !strings.Contains(got["list"], `"Name":"kid"`) || strings.Count(got["list"], `"Id":`) != 1 {
		t.Errorf("list: got %q, want the sub-container kid only", got["list"])
	}
	if l := got["forged-list"]; !strings.HasPrefix(l, "200 ") || !strings.Contains(l, `"Name":"kid"`) || strings.Contains(l, `"Id":"`+other) {
		t.Errorf("list with a forged mark: got %q, want the parent's own sub-containers", l)
	}

	// From the host: the sub-containers are the parent's, in its factory.
	var kids []psEntry
	all, err := o.psAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range all {
		if e.ID != parent && e.ID != other {
			kids = append(kids, e)
		}
	}
	if len(kids) != 2 {
		t.Fatalf("want 2 sub-containers beside the parent, got %+v", kids)
	}
	var info []struct {
		HostConfig struct {
			Factory string
			Parent  string
			Spawn   bool
		}
	}
	r := o.run("inspect", parent)
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &info) != nil || len(info) != 1 || !info[0].HostConfig.Spawn {
		t.Fatalf("oak inspect %s: want a --spawn container\n%s", parent, r)
	}
	factory := info[0].HostConfig.Factory
	f := o.inspectFactory(factory)
	if f.Group == "" {
		t.Fatalf("factory %s has no group", factory)
	}
	// The kernel bounds the parent and its sub-containers together: one
	// pids and one memory limit, the parent's, over their groups.
	if got := readFirst(factoryFile(f, "pids", "pids.max")); got != "32" {
		t.Errorf("factory %s pids.max = %q, want the parent's 32", factory, got)
	}
	for _, k := range kids {
		r := o.run("inspect", k.ID)
		info = nil
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &info) != nil || len(info) != 1 {
			t.Fatalf("oak inspect %s\n%s", k.ID, r)
		}
		if hc := info[0].HostConfig; hc.Parent != parent || hc.Factory != factory {
			t.Errorf("sub-container %s: parent %q factory %q, want %s and %s", k.Name, hc.Parent, hc.Factory, parent, factory)
		}
		cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", k.Pid))
		if !strings.Contains(string(cg), f.Group) {
			t.Errorf("sub-container %s (pid %d) is not in its parent's factory group %s:\n%s", k.Name, k.Pid, f.Group, cg)
		}
	}

	// Removing the parent withdraws its sub-containers.
	if r := o.run("rm", "-f", parent); r.code != 0 {
		t.Fatalf("oak rm -f %s\n%s", parent, r)
	}
	if r := o.run("rm", "-f", other); r.code != 0 {
		t.Fatalf("oak rm -f %s\n%s", other, r)
	}
	if left, _ := o.psAll(); len(left) != 0 {
		t.Errorf("after rm of the parent, containers are left: %+v", left)
	}
	for _, k := range kids {
		if k.Pid > 0 && syscall.Kill(k.Pid, 0) == nil {
			if st, ok := readStat(k.Pid); ok && st.state != 'Z' {
				t.Errorf("sub-container %s's process %d lives on", k.Name, k.Pid)
			}
		}
	}
	if dirs := o.containerDirs(); len(dirs) != 0 {
		t.Errorf("container directories left: %v", dirs)
	}
	if r := o.run("factory", "inspect", factory); r.code == 0 {
		t.Errorf("factory %s is left after its container's removal\n%s", factory, r)
	}
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/pids/oak", f.Group)); !os.IsNotExist(err) {
		t.Errorf("factory group %s is left", f.Group)
	}
}

// TestSpawnNone: a container run without --spawn holds no capability:
// there is nothing at fd 3 to ask through.
func TestSpawnNone(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	// Whatever fd 3 is in a plain container (the probe's runtime may
	// open a file there), it is no socket to ask through.
	if got := o.probe("spawn", "GET", "/v1/containers"); got != "err EBADF" && got != "err ENOTSOCK" {
		t.Errorf("probe spawn without --spawn: got %q, want err EBADF or ENOTSOCK", got)
	}
	if got := o.probe("env"); strings.Contains(got, "OAK_SPAWN_FD") {
		t.Errorf("a container without --spawn has OAK_SPAWN_FD set: %s", got)
	}
	if r := o.run("run", "--spawn", rootfsDir, "true"); r.code == 0 || !strings.Contains(r.stderr, "--spawn") {
		t.Errorf("run --spawn without -d: want refused naming --spawn\n%s", r)
	}
}

// TestSpawnRevoke: oak revoke ID spawn withdraws the sub-containers, and
// the capability is gone: its supervisor's end is closed.
func TestSpawnRevoke(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	script := "echo kid: $(/bin/probe spawn " + runReq(`"Cmd":["sleep","1000"]`) + ")\necho done\n" +
		"while [ ! -e /tmp/go ]; do sleep 0.1; done\n" +
		"echo after: $(/bin/probe spawn " + runReq(`"Cmd":["sleep","1000"]`) + ")\necho end\nexec sleep 1000\n"
	parent := o.runD("--spawn", "--memory", "64m", "--pids", "32", rootfsDir, "/bin/sh", "-c", script)
	got := spawnAnswers(o.waitOutput(parent, "done", 90*time.Second))
	if !strings.HasPrefix(got["kid"], "201 ") {
		t.Fatalf("kid: got %q, want 201", got["kid"])
	}
	if r := o.run("grants", parent); r.code != 0 || !strings.Contains(r.stdout, "spawn") {
		t.Errorf("oak grants %s: want spawn listed\n%s", parent, r)
	}
	if r := o.run("revoke", parent, "spawn"); r.code != 0 {
		t.Fatalf("oak revoke %s spawn\n%s", parent, r)
	}
	if all, _ := o.psAll(); len(all) != 1 || all[0].ID != parent {
		t.Errorf("after revoke: want the parent only, got %+v", all)
	}
	if r := o.run("exec", parent, "touch", "/tmp/go"); r.code != 0 {
		t.Fatalf("oak exec touch\n%s", r)
	}
	got = spawnAnswers(o.waitOutput(parent, "end", 90*time.Second))
	if got["after"] != "err EPIPE" {
		t.Errorf("after revoke: got %q, want err EPIPE (nothing at the other end)", got["after"])
	}
}

// TestSpawnPids: a sub-container's tasks come out of its parent's
// --pids: the parent holds some, and its child, whose own limit is the
// whole quota, gets EAGAIN inside once the sum reaches the parent's.
//
// Not parallel: it forks many processes.
func TestSpawnPids(t *testing.T) {
	needOak(t, false)
	o := newOak(t)
	child := runReq(`"Cmd":["/bin/sh","-c","` + forkAndHold + `"]`)
	script := "i=0; while [ $i -lt 8 ]; do sleep 300 & i=$((i+1)); done\n" +
		"echo kid: $(/bin/probe spawn " + child + ")\necho done\nexec sleep 1000\n"
	parent := o.runD("--spawn", "--memory", "64m", "--pids", "24", rootfsDir, "/bin/sh", "-c", script)
	got := spawnAnswers(o.waitOutput(parent, "done", 90*time.Second))
	if !strings.HasPrefix(got["kid"], "201 ") {
		t.Fatalf("kid: got %q, want 201", got["kid"])
	}
	var created struct{ Id string }
	if err := json.Unmarshal([]byte(strings.TrimPrefix(got["kid"], "201 ")), &created); err != nil || created.Id == "" {
		t.Fatalf("kid: %q: %v", got["kid"], err)
	}
	logKid := o.waitOutput(created.Id, "Resource temporarily unavailable", time.Minute)
	started := lastStarted(logKid)
	var info []struct{ HostConfig struct{ Factory string } }
	r := o.run("inspect", parent)
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &info) != nil || len(info) != 1 {
		t.Fatalf("oak inspect %s\n%s", parent, r)
	}
	f := o.inspectFactory(info[0].HostConfig.Factory)
	held, _ := strconv.Atoi(readFirst(factoryFile(f, "pids", "pids.current")))
	// The parent's init, shell and 8 sleepers; the child's init, shell,
	// subshell and sleepers: never more than the parent's 24 together.
	if started < 1 || 10+3+started > 24 || held > 24 {
		t.Errorf("the child started %d sleepers while the parent held 10 tasks of its 24; the group counts %d\n%s", started, held, logKid)
	}
	t.Logf("the child started %d sleepers; the parent's group counts %d of 24", started, held)
}

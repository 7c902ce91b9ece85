package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// shq quotes s for /bin/sh.
func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// nestedReq is a probe spawn request making a sub-container of the
// test image with fields; a "Script" field becomes its command
// (/bin/sh -c SCRIPT), whatever it nests.
func nestedReq(fields map[string]any) string {
	body := map[string]any{"Image": rootfsDir}
	for k, v := range fields {
		if k == "Script" {
			body["Cmd"] = []string{"/bin/sh", "-c", v.(string)}
			continue
		}
		body[k] = v
	}
	if _, ok := body["Cmd"]; !ok {
		body["Cmd"] = []string{"sleep", "1000"}
	}
	b, err := json.Marshal(body)
	if err != nil {
		panic(err)
	}
	return "POST /v1/containers " + shq(string(b))
}

// createdID is the id in a 201 answer of a probe spawn.
func createdID(t *testing.T, label, answer string) string {
	t.Helper()
	var created struct{ Id string }
	if !strings.HasPrefix(answer, "201 ") || json.Unmarshal([]byte(strings.TrimPrefix(answer, "201 ")), &created) != nil || created.Id == "" {
		t.Fatalf("%s: got %q, want 201 and an id", label, answer)
	}
	return created.Id
}

func wantAnswers(t *testing.T, level string, got, want map[string]string) {
	t.Helper()
	for k, w := range want {
		if !strings.HasPrefix(got[k], w) {
			t.Errorf("%s %s: got %q, want status %s", level, k, got[k], w)
		}
	}
}

func (o *oakEnv) factoryOf(id string) string {
	o.t.Helper()
	var info []struct{ HostConfig struct{ Factory string } }
	r := o.run("inspect", id)
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &info) != nil || len(info) != 1 || info[0].HostConfig.Factory == "" {
		o.t.Fatalf("oak inspect %s: want a factory\n%s", id, r)
	}
	return info[0].HostConfig.Factory
}

// TestSpawnNested: a sub-container given --spawn makes sub-containers
// of its own, from a part of its parent's quota nested in the parent's
// groups, and may give them only what it holds; the chain stops at
// MaxSpawnDepth (4); revoking the top's spawn capability withdraws every
// level under it, leaving no process, record, factory or group.
func TestSpawnNested(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	const mib = 1 << 20
	// Depth 3: holds --spawn, but its sub-containers (depth 4) may not.
	l3 := spawnScript([][2]string{
		{"deep-spawn", nestedReq(map[string]any{"Spawn": true, "Memory": 8 * mib, "PidsLimit": 4})},
		{"deep", nestedReq(map[string]any{"Memory": 8 * mib, "PidsLimit": 4})},
	})
	l2 := spawnScript([][2]string{
		{"kid", nestedReq(map[string]any{"Spawn": true, "Memory": 16 * mib, "PidsLimit": 16, "Script": l3})},
	})
	// Depth 1, the child: 48 MiB and 48 tasks; it holds the egress grant
	// to 10.1.2.3:80 that its parent holds, not the one to 10.9.9.9:80.
	l1 := spawnScript([][2]string{
		{"grandkid", nestedReq(map[string]any{"Spawn": true, "Memory": 24 * mib, "PidsLimit": 32,
			"Egress": []string{"10.1.2.3:80/tcp"}, "Script": l2})},
		{"memory", nestedReq(map[string]any{"Memory": 64 * mib, "PidsLimit": 4})},
		{"pids", nestedReq(map[string]any{"Memory": 8 * mib, "PidsLimit": 64})},
		{"egress", nestedReq(map[string]any{"Memory": 8 * mib, "PidsLimit": 4, "Egress": []string{"10.9.9.9:80/tcp"}})},
		{"image", `POST /v1/containers '{"Image":"/","Cmd":["true"],"Memory":8388608,"PidsLimit":4}'`},
		// 24 MiB of its 48 are the grandchild's already.
		{"spawn-more", nestedReq(map[string]any{"Spawn": true, "Memory": 32 * mib, "PidsLimit": 4})},
		{"spawn-pids", nestedReq(map[string]any{"Spawn": true, "Memory": 8 * mib, "PidsLimit": 64})},
	})
	top := spawnScript([][2]string{
		{"kid", nestedReq(map[string]any{"Spawn": true, "Memory": 48 * mib, "PidsLimit": 48,
			"Egress": []string{"10.1.2.3:80/tcp"}, "Script": l1})},
		// 48 MiB of its 96 are the child's: 64 MiB more does not fit.
		{"kid-more", nestedReq(map[string]any{"Spawn": true, "Memory": 64 * mib, "PidsLimit": 4})},
	})
	parent := o.runD("--spawn", "--memory", "96m", "--pids", "96", "--egress", "10.1.2.3:80/tcp", "--egress", "10.9.9.9:80/tcp",
		rootfsDir, "/bin/sh", "-c", top)
	got := spawnAnswers(o.waitOutput(parent, "done", 90*time.Second))
	wantAnswers(t, "top", got, map[string]string{"kid": "201 ", "kid-more": "400 "})
	child := createdID(t, "kid", got["kid"])

	got = spawnAnswers(o.waitOutput(child, "done", 90*time.Second))
	t.Logf("child: %v", got)
	wantAnswers(t, "child", got, map[string]string{"grandkid": "201 ", "memory": "400 ", "pids": "400 ",
		"egress": "400 ", "image": "400 ", "spawn-more": "400 ", "spawn-pids": "400 "})
	if !strings.Contains(got["spawn-more"], "more than the parent has left") {
		t.Errorf("spawn-more: got %q, want it refused as more than the child has left", got["spawn-more"])
	}
	grandchild := createdID(t, "grandkid", got["grandkid"])
	got = spawnAnswers(o.waitOutput(grandchild, "done", 90*time.Second))
	wantAnswers(t, "grandchild", got, map[string]string{"kid": "201 "})
	d3 := createdID(t, "depth 3", got["kid"])
	got = spawnAnswers(o.waitOutput(d3, "done", 90*time.Second))
	t.Logf("depth 3: %v", got)
	wantAnswers(t, "depth 3", got, map[string]string{"deep-spawn": "400 ", "deep": "201 "})
	if !strings.Contains(got["deep-spawn"], "at most 4 deep") {
		t.Errorf("deep-spawn: got %q, want refused naming the depth limit", got["deep-spawn"])
	}
	d4 := createdID(t, "depth 4", got["deep"])

	// The factories nest as the containers do, and so do their groups:
	// each sub-factory is a part of its parent's, in its parent's group.
	chain := []string{parent, child, grandchild, d3}
	var fs []factoryInfo
	for _, id := range chain {
		fs = append(fs, o.inspectFactory(o.factoryOf(id)))
	}
	for i := 1; i < len(fs); i++ {
		if !strings.HasPrefix(fs[i].Group, fs[i-1].Group+"/") {
			t.Errorf("factory %s's group %s is not inside its parent's %s", fs[i].Name, fs[i].Group, fs[i-1].Group)
		}
		if fs[i-1].Given.MemoryBytes != fs[i].Limit.MemoryBytes || len(fs[i-1].Children) != 1 || fs[i-1].Children[0] != fs[i].Name {
			t.Errorf("factory %s: gives %d bytes, children %v; want %d to %s", fs[i-1].Name, fs[i-1].Given.MemoryBytes, fs[i-1].Children,
				fs[i].Limit.MemoryBytes, fs[i].Name)
		}
	}
	if got := readFirst(factoryFile(fs[1], "memory", "memory.limit_in_bytes")); got != fmt.Sprint(48*mib) {
		t.Errorf("the child's factory group memory.limit_in_bytes = %q, want %d", got, 48*mib)
	}
	var pids []int
	for _, id := range append(chain, d4) {
		e := o.waitRunning(id)
		pids = append(pids, e.Pid)
	}
	cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pids[4]))
	if !strings.Contains(string(cg), fs[3].Group) || !strings.Contains(string(cg), fs[0].Group) {
		t.Errorf("the depth-4 container (pid %d) is not inside its ancestors' factory groups %s:\n%s", pids[4], fs[3].Group, cg)
	}

	// Revoking the top's capability withdraws every level under it.
	if r := o.run("revoke", parent, "spawn"); r.code != 0 {
		t.Fatalf("oak revoke %s spawn\n%s", parent, r)
	}
	if all, _ := o.psAll(); len(all) != 1 || all[0].ID != parent {
		t.Errorf("after revoke: want the top only, got %+v", all)
	}
	for i, pid := range pids[1:] {
		if pid > 0 && processLives(pid) {
			t.Errorf("level %d's process %d lives on", i+1, pid)
		}
	}
	if dirs := o.containerDirs(); len(dirs) != 1 {
		t.Errorf("container directories left: %v", dirs)
	}
	for _, f := range fs[1:] {
		if r := o.run("factory", "inspect", f.Name); r.code == 0 {
			t.Errorf("factory %s is left after the revoke\n%s", f.Name, r)
		}
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/pids/oak", f.Group)); !os.IsNotExist(err) {
			t.Errorf("factory group %s is left", f.Group)
		}
	}
	if r := o.run("rm", "-f", parent); r.code != 0 {
		t.Fatalf("oak rm -f %s\n%s", parent, r)
	}
	if ents, _ := os.ReadDir(filepath.Join(o.root, "factories")); len(ents) != 0 {
		t.Errorf("factory records left after rm of the top: %v", ents)
	}
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/pids/oak", fs[0].Group)); !os.IsNotExist(err) {
		t.Errorf("factory group %s is left", fs[0].Group)
	}
}

// netGrants is what oak grants lists of id but spawn, one line each.
func (o *oakEnv) netGrants(id string) string {
	o.t.Helper()
	r := o.run("grants", id)
	if r.code != 0 {
		o.t.Fatalf("oak grants %s\n%s", id, r)
	}
	var out []string
	for _, l := range lines(r.stdout) {
		if l != "spawn" {
			out = append(out, l)
		}
	}
	return strings.Join(out, "|")
}

// processLives reports whether pid is a live process (not a zombie).
func processLives(pid int) bool {
	st, ok := readStat(pid)
	return ok && st.state != 'Z'
}

// TestSpawnRmNested: removing the top of a chain of sub-containers
// removes every level, deepest first, leaving nothing behind.
func TestSpawnRmNested(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	const mib = 1 << 20
	l1 := spawnScript([][2]string{
		{"kid", nestedReq(map[string]any{"Memory": 16 * mib, "PidsLimit": 8})},
	})
	parent := o.runD("--spawn", "--memory", "64m", "--pids", "48", rootfsDir, "/bin/sh", "-c", spawnScript([][2]string{
		{"kid", nestedReq(map[string]any{"Spawn": true, "Memory": 32 * mib, "PidsLimit": 24, "Script": l1})},
	}))
	child := createdID(t, "kid", spawnAnswers(o.waitOutput(parent, "done", 90*time.Second))["kid"])
	grandchild := createdID(t, "grandkid", spawnAnswers(o.waitOutput(child, "done", 90*time.Second))["kid"])
	var pids []int
	var groups []string
	for _, id := range []string{parent, child, grandchild} {
		pids = append(pids, o.waitRunning(id).Pid)
	}
	for _, id := range []string{parent, child} {
		groups = append(groups, o.inspectFactory(o.factoryOf(id)).Group)
	}
	if r := o.run("rm", "-f", parent); r.code != 0 {
		t.Fatalf("oak rm -f %s\n%s", parent, r)
	}
	if all, _ := o.psAll(); len(all) != 0 {
		t.Errorf("after rm of the top: containers left %+v", all)
	}
	for i, pid := range pids {
		if processLives(pid) {
			t.Errorf("level %d's process %d lives on", i, pid)
		}
	}
	if dirs := o.containerDirs(); len(dirs) != 0 {
		t.Errorf("container directories left: %v", dirs)
	}
	if ents, _ := os.ReadDir(filepath.Join(o.root, "factories")); len(ents) != 0 {
		t.Errorf("factory records left: %v", ents)
	}
	for _, g := range groups {
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/pids/oak", g)); !os.IsNotExist(err) {
			t.Errorf("factory group %s is left", g)
		}
	}
}

// TestSpawnEgressRevoke: a sub-container's egress grant is a part of
// its parent's, derived in the core; revoking the parent's withdraws it
// from the child and the grandchild: a connect that worked from inside
// the child is refused afterwards, and the grandchild's grant is gone.
// A sub-container asked for later with that grant is refused.
func TestSpawnEgressRevoke(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	const mib = 1 << 20
	p := netHostTCP(t, true)
	other := netHostTCP(t, true)
	// The parent holds the whole loopback prefix to p's port; the child
	// a part of it, p's address; the grandchild the same.
	whole := fmt.Sprintf("127.0.0.0/8:%d/tcp", p.port())
	part := p.addr() + "/tcp"
	l2 := spawnScript(nil)
	l1 := "echo gkid: $(/bin/probe spawn " + nestedReq(map[string]any{"Memory": 16 * mib, "PidsLimit": 8,
		"Egress": []string{part}, "Script": l2}) + ")\n" +
		"echo c1: $(/bin/probe connect " + p.addr() + ")\necho done\n" +
		"while [ ! -e /tmp/go ]; do sleep 0.1; done\n" +
		"echo c2: $(/bin/probe connect " + p.addr() + ")\necho end\nexec sleep 1000\n"
	script := "echo kid: $(/bin/probe spawn " + nestedReq(map[string]any{"Spawn": true, "Memory": 32 * mib, "PidsLimit": 24,
		"Egress": []string{part}, "Script": l1}) + ")\necho done\n" +
		"while [ ! -e /tmp/go ]; do sleep 0.1; done\n" +
		"echo after: $(/bin/probe spawn " + nestedReq(map[string]any{"Memory": 8 * mib, "PidsLimit": 4, "Egress": []string{part}}) + ")\necho end\nexec sleep 1000\n"
	parent := o.runD("--spawn", "--memory", "64m", "--pids", "48", "--egress", whole, "--egress", other.addr(),
		rootfsDir, "/bin/sh", "-c", script)
	child := createdID(t, "kid", spawnAnswers(o.waitOutput(parent, "done", 90*time.Second))["kid"])
	got := spawnAnswers(o.waitOutput(child, "done", 90*time.Second))
	if got["c1"] != "ok" {
		t.Fatalf("the child's connect under its grant: got %q, want ok", got["c1"])
	}
	grandchild := createdID(t, "gkid", got["gkid"])
	p.next(20 * time.Second) // the child's connection arrived
	for _, id := range []string{child, grandchild} {
		if g := o.netGrants(id); g != "egress "+part {
			t.Fatalf("oak grants %s: got %q, want egress %s", id, g, part)
		}
	}

	if r := o.run("revoke", parent, "egress "+whole); r.code != 0 {
		t.Fatalf("oak revoke %s egress %s\n%s", parent, whole, r)
	}
	if r := o.run("grants", parent); r.code != 0 || strings.Contains(r.stdout, whole) || !strings.Contains(r.stdout, other.addr()) {
		t.Errorf("oak grants %s after the revoke: want only %s\n%s", parent, other.addr(), r)
	}
	for _, id := range []string{child, grandchild} {
		if g := o.netGrants(id); g != "" {
			t.Errorf("oak grants %s after its ancestor's grant was revoked: got %q, want none", id, g)
		}
	}
	for _, id := range []string{child, parent} {
		if r := o.run("exec", id, "touch", "/tmp/go"); r.code != 0 {
			t.Fatalf("oak exec %s touch\n%s", id, r)
		}
	}
	got = spawnAnswers(o.waitOutput(child, "end", 90*time.Second))
	if got["c2"] != "err EACCES" {
		t.Errorf("the child's connect after its parent's grant was revoked: got %q, want err EACCES", got["c2"])
	}
	got = spawnAnswers(o.waitOutput(parent, "end", 90*time.Second))
	if !strings.HasPrefix(got["after"], "400 ") || !strings.Contains(got["after"], "not within a grant the parent holds") {
		t.Errorf("a sub-container asked for with the revoked grant: got %q, want 400", got["after"])
	}
	if n := p.settle(); n != 1 {
		t.Errorf("the revoked destination %s accepted %d connections, want only the one made before the revoke", p.addr(), n)
	}
	// A restart of the child's command does not give the grant back.
	if r := o.run("restart", "-t", "1", child); r.code != 0 {
		t.Fatalf("oak restart %s\n%s", child, r)
	}
	o.waitRunning(child)
	if g := o.netGrants(child); g != "" {
		t.Errorf("oak grants %s after a restart: got %q, want none", child, g)
	}
}

//go:build linux

package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/oak-engine/oak/sandbox/policy"
)

// Tests of the everyday verbs: inspect, ps's flags, container prune,
// system df, info, the image shorthands, save and completion.

// setLabels writes labels into a container's spec, as run --label would
// have: the filter and inspect read them from there.
func (o *oakEnv) setLabels(id string, labels map[string]string) {
	o.t.Helper()
	p := filepath.Join(o.root, "containers", id, "spec.json")
	b, err := os.ReadFile(p)
	if err != nil {
		o.t.Fatal(err)
	}
	var spec map[string]any
	if err := json.Unmarshal(b, &spec); err != nil {
		o.t.Fatal(err)
	}
	spec["labels"] = labels
	b, _ = json.Marshal(spec)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		o.t.Fatal(err)
	}
}

// idsOf runs oak with args and returns the lines it printed; it must succeed.
func (o *oakEnv) idsOf(args ...string) []string {
	o.t.Helper()
	r := o.run(args...)
	if r.code != 0 {
		o.t.Fatalf("%s", r)
	}
	return lines(r.stdout)
}

func TestPsFlags(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	old := o.runD("--name", "web-old", rootfsDir, "/bin/true")
	o.waitExited(old, 20*time.Second)
	db := o.runD("--name", "db", "demo", "true")
	o.waitExited(db, 20*time.Second)
	web := o.runD("--name", "web-new", rootfsDir, "/bin/sleep", "1000")
	o.waitRunning(web)
	o.setLabels(old, map[string]string{"tier": "front", "env": "prod"})
	o.setLabels(web, map[string]string{"tier": "front", "env": "dev"})
	short := func(ids ...string) []string {
		var s []string
		for _, id := range ids {
			s = append(s, id[:12])
		}
		return s
	}

	for _, c := range []struct {
		args []string
		want []string // newest first, as docker lists them
	}{
		{[]string{"-q"}, short(web)},
		{[]string{"-aq"}, short(web, db, old)},
		{[]string{"-aq", "--no-trunc"}, []string{web, db, old}},
		{[]string{"-q", "--filter", "status=exited"}, short(db, old)}, // a status filter looks at all
		{[]string{"-aq", "--filter", "name=web"}, short(web, old)},
		{[]string{"-aq", "--filter", "name=^db$", "--filter", "name=old"}, short(db, old)},  // same key: or
		{[]string{"-aq", "--filter", "name=web", "--filter", "status=running"}, short(web)}, // different keys: and
		{[]string{"-aq", "--filter", "id=" + db[:5]}, short(db)},
		{[]string{"-aq", "--filter", "ancestor=demo"}, short(db)},
		{[]string{"-aq", "--filter", "ancestor=" + rootfsDir}, short(web, old)},
		{[]string{"-aq", "--filter", "label=tier"}, short(web, old)},
		{[]string{"-aq", "--filter", "label=env=prod"}, short(old)},
		{[]string{"-aq", "--filter", "label=env=prod", "--filter", "label=env=dev"}, short(web, old)},
		{[]string{"-q", "-n", "2"}, short(web, db)},
		{[]string{"-q", "--last", "1"}, short(web)},
		{[]string{"-q", "-l", "--filter", "status=exited"}, short(db)},
		{[]string{"-a", "--format", "{{.Names}} {{.State}} {{.Label \"env\"}}"}, []string{"web-new running dev", "db exited ", "web-old exited prod"}},
		{[]string{"-a", "--format", "table {{.Names}}\\t{{.State}}", "-n", "1"}, []string{"NAMES     STATE", "web-new   running"}},
	} {
		if got := o.idsOf(append([]string{"ps"}, c.args...)...); !slices.Equal(got, c.want) {
			t.Errorf("oak ps %s: %q, want %q", strings.Join(c.args, " "), got, c.want)
		}
	}

	// The default table and json agree, the latter a line per container.
	r := o.run("ps", "-a")
	if ls := lines(r.stdout); len(ls) != 4 || !strings.HasPrefix(ls[0], "CONTAINER ID") || !strings.Contains(ls[1], "web-new") ||
		!strings.Contains(ls[1], `"/bin/sleep 1000"`) || !strings.Contains(ls[2], "Exited (0)") {
		t.Errorf("oak ps -a table\n%s", r)
	}
	r = o.run("ps", "-a", "--format", "json")
	rows, err := jsonLines[map[string]any](r.stdout)
	if err != nil || len(rows) != 3 || rows[0]["ID"] != web[:12] || rows[0]["Labels"] != "env=dev,tier=front" || rows[2]["State"] != "exited" {
		t.Errorf("oak ps -a --format json (%v)\n%s", err, r)
	}

	for _, bad := range [][]string{{"--filter", "colour=red"}, {"--filter", "status=paused"}, {"--format", "{{.Nope}}"}} {
		if r := o.run(append([]string{"ps"}, bad...)...); r.code == 0 || !strings.Contains(r.stderr, bad[1]) && !strings.Contains(r.stderr, "Nope") {
			t.Errorf("oak ps %s: want a failure naming it\n%s", strings.Join(bad, " "), r)
		}
	}

	// oak rm $(oak ps -aq) removes every exited container.
	o.run("kill", web)
	o.waitExited(web, 20*time.Second)
	all := o.idsOf("ps", "-aq")
	if r := o.run(append([]string{"rm"}, all...)...); r.code != 0 {
		t.Errorf("oak rm $(oak ps -aq)\n%s", r)
	}
	if left := o.idsOf("ps", "-aq"); len(left) != 0 {
		t.Errorf("after oak rm $(oak ps -aq): %q left", left)
	}
}

func TestInspect(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	o.newVolume("data", "16m")
	o.newVolume("both", "16m")
	id := o.runD("--name", "both", "-v", "data:/data", "-m", "64m", rootfsDir, "/bin/sleep", "1000")
	o.waitRunning(id)
	o.setLabels(id, map[string]string{"a": "b"})

	r := o.run("inspect", "both", "demo", "data")
	var objs []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &objs); r.code != 0 || err != nil || len(objs) != 3 {
		t.Fatalf("oak inspect both demo data: want a JSON array of three (%v)\n%s", err, r)
	}
	if objs[0]["Id"] != id || objs[1]["RepoTags"].([]any)[0] != "demo" || objs[2]["Name"] != "data" {
		t.Errorf("oak inspect: want the container (a name before a volume's, as docker), the image, the volume\n%s", r)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-f", "{{.State.Status}} {{.State.Running}} {{.Config.Image}}", "both"}, "running true " + rootfsDir},
		{[]string{"--format", "{{.Id}}", id[:10]}, id},
		{[]string{"-f", "{{.HostConfig.Memory}} {{range .Mounts}}{{.Name}}:{{.Destination}}:{{.RW}}{{end}}", "both"}, "67108864 data:/data:true"},
		{[]string{"-f", `{{index .Config.Labels "a"}} {{join .Config.Cmd " "}} {{upper .State.Status}}`, "both"}, "b /bin/sleep 1000 RUNNING"},
		{[]string{"--type", "volume", "-f", "{{.Name}} {{.Size}}", "both"}, "both 16777216"},
		{[]string{"--type", "image", "-f", "{{.RootFS.Type}}", "demo"}, "directory"},
		{[]string{"-f", "{{.Name}}", "data"}, "data"},
	} {
		r := o.run(append([]string{"inspect"}, c.args...)...)
		if r.code != 0 || strings.TrimSpace(r.stdout) != c.want {
			t.Errorf("oak inspect %s: want %q\n%s", strings.Join(c.args, " "), c.want, r)
		}
	}
	r = o.run("inspect", "-f", "{{json .Config}}", "both")
	var cfg struct {
		Cmd    []string
		Labels map[string]string
	}
	if err := json.Unmarshal([]byte(r.stdout), &cfg); err != nil || len(cfg.Cmd) != 2 || cfg.Labels["a"] != "b" {
		t.Errorf("oak inspect -f '{{json .Config}}': want the config as JSON (%v)\n%s", err, r)
	}
	// The verbs' own inspects, and a missing name: what was found is
	// printed, and the status is 1.
	if r := o.run("volume", "inspect", "-f", "{{.Size}} {{.Sparse}}", "data"); r.code != 0 || strings.TrimSpace(r.stdout) != "16777216 false" {
		t.Errorf("oak volume inspect -f\n%s", r)
	}
	if r := o.run("container", "inspect", "-f", "{{.Name}}", "both"); r.code != 0 || strings.TrimSpace(r.stdout) != "both" {
		t.Errorf("oak container inspect -f\n%s", r)
	}
	r = o.run("inspect", "-f", "{{.Name}}", "nothing-here", "data")
	if r.code != 1 || strings.TrimSpace(r.stdout) != "data" || !strings.Contains(r.stderr, "no such object: nothing-here") {
		t.Errorf("oak inspect of a missing name: want data printed, the missing one named, exit 1\n%s", r)
	}
	if r := o.run("inspect", "--type", "container", "data"); r.code != 1 || !strings.Contains(r.stderr, "no such container: data") {
		t.Errorf("oak inspect --type container of a volume\n%s", r)
	}
	if r := o.run("inspect", "--type", "network", "data"); r.code == 0 || !strings.Contains(r.stderr, `--type "network"`) {
		t.Errorf("oak inspect --type network\n%s", r)
	}
}

func TestContainerPrune(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	done := o.runD(rootfsDir, "/bin/true")
	o.waitExited(done, 20*time.Second)
	live := o.runD(rootfsDir, "/bin/sleep", "1000")
	o.waitRunning(live)

	// No terminal to ask on (the test's stdin is not one): -f is needed.
	r := o.run("container", "prune")
	if r.code == 0 || !strings.Contains(r.stderr, "use -f") {
		t.Errorf("oak container prune without -f and without a terminal\n%s", r)
	}
	if _, ok := o.find(done); !ok {
		t.Fatalf("oak container prune without -f removed %s", done)
	}
	r = o.run("container", "prune", "-f")
	if r.code != 0 || strings.TrimSpace(r.stdout) != done {
		t.Errorf("oak container prune -f: want %s removed\n%s", done, r)
	}
	if _, ok := o.find(done); ok {
		t.Errorf("%s still listed after prune", done)
	}
	if e, ok := o.find(live); !ok || e.Status != "running" {
		t.Errorf("prune touched the running container %s: %+v", live, e)
	}

	// On a terminal it asks, and only yes removes.
	script, err := exec.LookPath("script")
	if err != nil {
		t.Skip("needs script(1) for a terminal")
	}
	again := o.runD(rootfsDir, "/bin/true")
	o.waitExited(again, 20*time.Second)
	onTTY := func(answer string) string {
		cmd := exec.Command(script, "-qec", oakBin+" --root "+o.root+" container prune", "/dev/null")
		cmd.Stdin = strings.NewReader(answer + "\n")
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	if out := onTTY("n"); !strings.Contains(out, "Continue? [y/N]") {
		t.Errorf("container prune on a terminal: want a question\n%q", out)
	}
	if _, ok := o.find(again); !ok {
		t.Fatalf("container prune answered n removed %s", again)
	}
	if out := onTTY("y"); !strings.Contains(out, again) {
		t.Errorf("container prune answered y: want %s removed\n%q", again, out)
	}
	if _, ok := o.find(again); ok {
		t.Errorf("%s still listed after prune answered y", again)
	}
}

func TestSystemDFAndInfo(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	o.newVolume("v", "16m")
	id := o.runD("-v", "v:/v", "demo", "sleep", "1000")
	o.waitRunning(id)

	r := o.run("system", "df", "--format", "json")
	us, err := jsonLines[struct {
		Type                string
		Total, Active, Size int64
	}](r.stdout)
	if err != nil || len(us) != 3 {
		t.Fatalf("oak system df --format json (%v)\n%s", err, r)
	}
	want := map[string][2]int64{"Images": {1, 1}, "Containers": {1, 1}, "Volumes": {1, 1}}
	for _, u := range us {
		if w := want[u.Type]; u.Total != w[0] || u.Active != w[1] || u.Size <= 0 {
			t.Errorf("oak system df: %+v, want total %d, active %d and a size", u, w[0], w[1])
		}
		if u.Type == "Volumes" && u.Size < 16<<20 {
			t.Errorf("oak system df: volumes take %d bytes; the one reserved volume takes 16 MiB", u.Size)
		}
	}
	// volume ls, in each format.
	if r := o.run("volume", "ls", "--format", "{{.Name}} {{.Size}} {{.Sparse}}"); r.stdout != "v 16 MiB false\n" {
		t.Errorf("oak volume ls --format\n%s", r)
	}
	if r := o.run("volume", "ls", "-q"); r.stdout != "v\n" {
		t.Errorf("oak volume ls -q\n%s", r)
	}
	vs, err := jsonLines[map[string]any](o.run("volume", "ls", "--format", "json").stdout)
	if err != nil || len(vs) != 1 || vs[0]["Name"] != "v" || !strings.HasPrefix(vs[0]["Attached"].(string), "/dev/loop") {
		t.Errorf("oak volume ls --format json: %v (%v); want v, attached", vs, err)
	}
	if r := o.run("system", "df"); r.code != 0 || !strings.HasPrefix(r.stdout, "TYPE") || !strings.Contains(r.stdout, "Volumes") {
		t.Errorf("oak system df\n%s", r)
	}

	var uts unix.Utsname
	unix.Uname(&uts)
	st := policy.Stats()
	r = o.run("info", "--format", "json")
	var info struct {
		Version, StateRoot, Kernel, CgroupMode string
		Containers, ContainersRunning, Volumes int
		Syscalls                               struct{ Allowed, Conditional, Total int }
		Defaults                               struct{ Memory, PidsLimit int64 }
	}
	if err := json.Unmarshal([]byte(r.stdout), &info); r.code != 0 || err != nil {
		t.Fatalf("oak info --format json (%v)\n%s", err, r)
	}
	if info.StateRoot != o.root || info.Kernel != unix.ByteSliceToString(uts.Release[:]) || info.Containers != 1 ||
		info.ContainersRunning != 1 || info.Volumes != 1 || info.Version == "" ||
		(info.CgroupMode != "v1" && info.CgroupMode != "v2") ||
		info.Syscalls.Allowed != st.Allowed || info.Syscalls.Conditional != st.Conditional || info.Syscalls.Total != st.Total ||
		info.Defaults.Memory != 1<<30 || info.Defaults.PidsLimit != 1024 {
		t.Errorf("oak info --format json: %+v\n%s", info, r)
	}
	r = o.run("info")
	if reach := strconv.Itoa(st.Reachable()) + " of " + strconv.Itoa(st.Total); r.code != 0 || !strings.Contains(r.stdout, reach) ||
		!strings.Contains(r.stdout, "State root: "+o.root) {
		t.Errorf("oak info: want the state root and %q\n%s", reach, r)
	}
}

// oak images, load, save, rmi: a saved image is a docker-save archive
// (go-containerregistry reads it as docker load does), loads back and runs
// the same.
func TestImageShorthandsSaveLoad(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	dir := imageDir(t)
	const tag = "oak.test/greeter:1"
	archive := writeDockerSave(t, filepath.Join(dir, "in.tar"), tag, greeterImage(t))
	if r := o.run("load", "-i", archive); r.code != 0 || !strings.Contains(r.stdout, tag) {
		t.Fatalf("oak load -i\n%s", r)
	}
	if r := o.run("load", archive); r.code == 0 {
		t.Errorf("oak load without -i: want a failure\n%s", r)
	}

	r := o.run("images", "--format", "json")
	rows, err := jsonLines[struct{ ID, Repository, Tag, Size string }](r.stdout)
	if err != nil || len(rows) != 2 {
		t.Fatalf("oak images --format json: want the greeter and demo (%v)\n%s", err, r)
	}
	if rows[0].Repository+":"+rows[0].Tag != tag || rows[1].Repository != "demo" || !strings.HasSuffix(rows[1].Size, "MiB") {
		t.Errorf("oak images --format json: want %s, then demo with its size\n%s", tag, r)
	}
	if r := o.run("images", "--format", "{{.Repository}}"); r.stdout != "oak.test/greeter\ndemo\n" {
		t.Errorf("oak images --format\n%s", r)
	}
	short, long := o.run("images", "-q"), o.run("images", "-q", "--no-trunc")
	if ls := lines(long.stdout); len(ls) != 1 || !strings.HasPrefix(ls[0], "sha256:") || len(ls[0]) != 71 ||
		short.stdout != ls[0][7:19]+"\n" {
		t.Errorf("oak images -q [--no-trunc]: want the one stored image's id, short and whole\n%s\n%s", short, long)
	}
	if r := o.run("image", "ls"); !regexp.MustCompile(`(?m)^demo +- +- +.* +\d+(\.\d)? MiB$`).MatchString(r.stdout) {
		t.Errorf("oak image ls: want a demo row with its size\n%s", r)
	}

	saved := filepath.Join(dir, "saved.tar")
	if r := o.run("save", "-o", saved, tag, "demo"); r.code != 0 {
		t.Fatalf("oak save\n%s", r)
	}
	for _, want := range []string{tag, "oak.local/demo:latest"} {
		img, err := tarball.ImageFromPath(saved, mustTag(t, want))
		if err != nil {
			t.Errorf("the saved archive as docker load reads it: %s: %v", want, err)
			continue
		}
		cf, err := img.ConfigFile()
		if err != nil || want == tag && !slices.Equal(cf.Config.Entrypoint, greeterConfig.Entrypoint) {
			t.Errorf("%s: saved config %+v (%v)", want, cf, err)
		}
	}
	if r := o.run("rmi", tag); r.code != 0 {
		t.Fatalf("oak rmi\n%s", r)
	}
	if names := o.imageNames(); len(names) != 0 {
		t.Fatalf("after oak rmi: %q", names)
	}
	if r := o.run("image", "import", saved); r.code != 0 || !strings.Contains(r.stdout, tag) || !strings.Contains(r.stdout, "oak.local/demo:latest") {
		t.Fatalf("oak image import of the saved archive\n%s", r)
	}
	// The same image: config, layers, and the whiteout of the upper layer.
	if r := o.run("run", "--rm", tag); r.code != 0 || r.stdout != greeterOutput {
		t.Errorf("the re-imported image runs\n%s\nwant %q", r, greeterOutput)
	}
	if r := o.run("run", "--rm", tag, "test ! -e /etc/gone && echo gone"); r.code != 0 || r.stdout != "gone\n" {
		t.Errorf("a file whited out before saving is back\n%s", r)
	}
	if r := o.run("run", "--rm", "oak.local/demo:latest", "echo", "hi"); r.code != 0 || r.stdout != "hi\n" {
		t.Errorf("the saved demo image runs\n%s", r)
	}
	if r := o.run("save", "nope:1"); r.code == 0 || !strings.Contains(r.stderr, "nope:1") {
		t.Errorf("oak save of a missing image\n%s", r)
	}
	// Without -o the archive goes to standard output, unless that is a terminal.
	r = o.run("save", tag)
	piped := filepath.Join(dir, "piped.tar")
	os.WriteFile(piped, []byte(r.stdout), 0o644)
	if _, err := tarball.ImageFromPath(piped, mustTag(t, tag)); r.code != 0 || err != nil {
		t.Errorf("oak save > file: not an archive (%v)\n%s", err, r.stderr)
	}
	if script, err := exec.LookPath("script"); err == nil {
		out, err := exec.Command(script, "-qec", oakBin+" --root "+o.root+" save "+tag, "/dev/null").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "refusing to write an archive to a terminal") {
			t.Errorf("oak save to a terminal: %v\n%q", err, out)
		}
	}
}

// The progress line is drawn on a terminal, and left out with -q or
// without one.
func TestImportProgress(t *testing.T) {
	needOak(t, true)
	script, err := exec.LookPath("script")
	if err != nil {
		t.Skip("needs script(1) for a terminal")
	}
	o := newOak(t)
	archive := writeDockerSave(t, filepath.Join(imageDir(t), "in.tar"), "oak.test/p:1", greeterImage(t))
	if r := o.run("image", "import", archive); r.code != 0 || strings.Contains(r.stderr, "%") {
		t.Errorf("import without a terminal: want no progress line\n%s", r)
	}
	onTTY := func(args ...string) string {
		o.run("rmi", "oak.test/p:1")
		line := oakBin + " --root " + o.root + " " + strings.Join(args, " ")
		out, err := exec.Command(script, "-qec", line, "/dev/null").CombinedOutput()
		if err != nil {
			t.Fatalf("%s on a terminal: %v\n%s", line, err, out)
		}
		return string(out)
	}
	bar := regexp.MustCompile(`import in\.tar +\[=*>? *\] +100%  [0-9.]+ [kMG]?B / [0-9.]+ [kMG]?B  [0-9.]+ [kMG]?B/s`)
	if out := onTTY("load", "-i", archive); !bar.MatchString(out) {
		t.Errorf("oak load on a terminal: want a progress line with bytes, percentage and rate\n%q", out)
	}
	if out := onTTY("load", "-q", "-i", archive); strings.Contains(out, "%") {
		t.Errorf("oak load -q on a terminal: want no progress line\n%q", out)
	}
}

// Shell completion offers the names of containers, images and volumes
// to the verbs that take them, through cobra's hidden __complete.
func TestCompletion(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	o.newVolume("vol-a", "16m")
	id := o.runD("--name", "box-a", rootfsDir, "/bin/sleep", "1000")
	o.waitRunning(id)
	done := o.runD("--name", "box-b", rootfsDir, "/bin/true")
	o.waitExited(done, 20*time.Second)
	complete := func(args ...string) []string {
		r := o.run(append([]string{"__complete"}, args...)...)
		if r.code != 0 {
			t.Fatalf("%s", r)
		}
		ls := lines(r.stdout)
		if len(ls) == 0 || !strings.HasPrefix(ls[len(ls)-1], ":") {
			t.Fatalf("oak __complete %s: no directive line\n%s", strings.Join(args, " "), r)
		}
		return ls[:len(ls)-1]
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"rm", ""}, []string{"box-b", "box-a"}},
		{[]string{"rm", "box-"}, []string{"box-b", "box-a"}},
		{[]string{"kill", ""}, []string{"box-a"}}, // only running ones
		{[]string{"logs", "box-a", ""}, nil},      // one container only
		{[]string{"volume", "rm", ""}, []string{"vol-a"}},
		{[]string{"run", "de"}, []string{"demo"}},
		{[]string{"rmi", ""}, []string{"demo"}},
		{[]string{"inspect", ""}, []string{"box-b", "box-a", "demo", "vol-a"}},
	} {
		if got := complete(c.args...); !slices.Equal(got, c.want) {
			t.Errorf("oak __complete %q: %q, want %q", c.args, got, c.want)
		}
	}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		if r := o.run("completion", sh); r.code != 0 || !strings.Contains(r.stdout, "__complete") {
			t.Errorf("oak completion %s: want a script that asks oak __complete\n%s", sh, r)
		}
	}
}

func mustTag(t *testing.T, s string) *name.Tag {
	t.Helper()
	tag, err := name.NewTag(s)
	if err != nil {
		t.Fatal(err)
	}
	return &tag
}

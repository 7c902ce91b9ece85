//go:build linux

package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// probeImageRef is the suite's rootfs (busybox and the probe) as a
// stored image: tenants run stored images only.
const probeImageRef = "oak.test/probe:1"

// importProbeImage stores the suite's rootfs as probeImageRef, as root.
func (o *oakEnv) importProbeImage(t *testing.T) {
	t.Helper()
	img := imageOf(t, v1.Config{Cmd: []string{"/bin/sh"}, Env: []string{"PATH=/bin"}}, gzLayerOf(t, layerTar(t, rootfsDir)))
	archive := writeDockerSave(t, filepath.Join(t.TempDir(), "probe.tar"), probeImageRef, img)
	if r := o.run("image", "import", archive); r.code != 0 {
		t.Fatalf("%s", r)
	}
}

// tenantReq is a probe spawn request making a sub-container of the
// probe image with fields.
func tenantReq(fields string) string {
	return fmt.Sprintf(`POST /v1/containers '{"Image":%q,%s}'`, probeImageRef, fields)
}

// tenantQuota is the Quota of oak tenant inspect.
type tenantQuota struct {
	Limit, Given struct{ MemoryBytes, Pids, CPUMilli, DiskBytes int64 }
	MemoryBytes  int64
	Pids         int64
	Containers   int
}

func (o *oakEnv) tenantQuota(uid uint32, name string) tenantQuota {
	o.t.Helper()
	r := o.run("tenant", "inspect", name)
	if uid != 0 {
		r = o.as(uid, "tenant", "inspect", name)
	}
	var ts []struct{ Quota *tenantQuota }
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &ts) != nil || len(ts) != 1 || ts[0].Quota == nil {
		o.t.Fatalf("oak tenant inspect %s: want its quota\n%s", name, r)
	}
	return *ts[0].Quota
}

// TestTenantSpawn: a tenant's --spawn container makes sub-containers from
// inside, out of a factory that is a part of the tenant's; it cannot
// widen its rights (an egress grant or an image it does not hold) nor
// take more than the tenant has; the tenant sees and counts its
// sub-containers; another tenant learns nothing of them; revoking the
// container's capability withdraws them, and removing it gives the
// tenant its quota back.
func TestTenantSpawn(t *testing.T) {
	needOak(t, true)
	o := newTenantOak(t) // a and b: 256 MiB, 64 tasks, 2 GiB of disk each
	o.importProbeImage(t)

	steps := [][2]string{
		{"kid", tenantReq(`"Cmd":["sleep","1000"],"Name":"kid","StorageSize":268435456`)},
		{"list", "GET /v1/containers"},
		{"memory", tenantReq(`"Cmd":["true"],"Memory":201326592,"ReadonlyRootfs":true`)},
		{"egress", tenantReq(`"Cmd":["true"],"Egress":["10.9.9.9:80/tcp"],"ReadonlyRootfs":true`)},
		{"image", `POST /v1/containers '{"Image":"demo","Cmd":["true"],"ReadonlyRootfs":true}'`},
		{"disk", tenantReq(`"Cmd":["true"],"StorageSize":1073741824`)},
		{"nest-over", tenantReq(`"Cmd":["true"],"Spawn":true,"Memory":67108864,"PidsLimit":16,"ReadonlyRootfs":true,"SpawnDisk":2147483648`)},
		{"nest", tenantReq(`"Cmd":["sleep","1000"],"Name":"nest","Spawn":true,"Memory":67108864,"PidsLimit":16,"ReadonlyRootfs":true,"SpawnDisk":134217728`)},
	}
	r := o.as(uidA, "run", "-d", "--spawn", "--name", "boss", "--memory", "128m", "--pids", "32",
		"--storage-size", "256m", "--spawn-disk", "1g", "--egress", "10.1.2.3:80/tcp",
		probeImageRef, "/bin/sh", "-c", spawnScript(steps))
	if r.code != 0 {
		t.Fatalf("tenant a's run --spawn\n%s", r)
	}
	boss := strings.TrimSpace(r.stdout)
	got := spawnAnswers(o.waitOutput(boss, "done", 90*time.Second))
	t.Logf("answers: %v", got)
	wantAnswers(t, "tenant a's container", got, map[string]string{
		"kid": "201 ", "memory": "400 ", "egress": "400 ", "image": "400 ", "disk": "400 ", "nest-over": "400 ", "nest": "201 ",
	})
	for k, want := range map[string]string{
		"memory":    "above the limit of factory spawn-",
		"egress":    "not within a grant the parent holds",
		"image":     "a sub-container runs its parent's image",
		"disk":      "disk quota exhausted",
		"nest-over": "more than the parent has left to give",
	} {
		if !strings.Contains(got[k], want) {
			t.Errorf("%s: got %q, want it refused saying %q", k, got[k], want)
		}
	}
	kid := createdID(t, "kid", got["kid"])
	nest := createdID(t, "nest", got["nest"])
	if !strings.Contains(got["list"], `"Name":"kid"`) || strings.Count(got["list"], `"Id":`) != 1 {
		t.Errorf("list: got %q, want the sub-container kid only", got["list"])
	}

	// The factories nest: tenant a's, boss's of a part of it, nest's of
	// a part of boss's; the kernel bounds them all by a's.
	bossF := o.inspectFactory(o.factoryOf(boss))
	nestF := o.inspectFactory(o.factoryOf(nest))
	tf := o.inspectFactory("a")
	if bossF.Limit.MemoryBytes != 128<<20 || bossF.Limit.Pids != 32 || bossF.Limit.DiskBytes != 1<<30 {
		t.Errorf("boss's factory %s: limit %+v, want 128 MiB, 32 tasks, 1 GiB", bossF.Name, bossF.Limit)
	}
	if !strings.HasPrefix(bossF.Group, tf.Group+"/") || !strings.HasPrefix(nestF.Group, bossF.Group+"/") {
		t.Errorf("groups do not nest: tenant %s, boss %s, nest %s", tf.Group, bossF.Group, nestF.Group)
	}
	if tf.Given.MemoryBytes != 128<<20 || tf.Given.Pids != 32 {
		t.Errorf("tenant a's factory gave %+v, want boss's 128 MiB and 32 tasks", tf.Given)
	}
	for _, id := range []string{kid, nest} {
		e, ok := o.find(id)
		pid := e.Pid
		if !ok || pid <= 0 {
			t.Errorf("sub-container %s: not found running: %+v", id, e)
			continue
		}
		cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		if !strings.Contains(string(cg), bossF.Group) {
			t.Errorf("sub-container %s (pid %d) is not under boss's factory group %s:\n%s", id, pid, bossF.Group, cg)
		}
	}

	// A second --spawn container of a's cannot take more than a has left.
	r = o.as(uidA, "run", "-d", "--spawn", "--memory", "192m", "--pids", "16", "--read-only", probeImageRef, "sleep", "1000")
	if r.code == 0 || !strings.Contains(r.stderr, "more than tenant a has left to give") || !strings.Contains(r.stderr, "quota exceeded") {
		t.Errorf("tenant a: a second --spawn container above what it has left: want a refusal naming the tenant and the quota\n%s", r)
	}

	// The tenant sees its sub-containers, reaches them, and counts them.
	if r := o.as(uidA, "ps", "-q", "--no-trunc"); r.code != 0 || len(strings.Fields(r.stdout)) != 3 ||
		!strings.Contains(r.stdout, kid) || !strings.Contains(r.stdout, nest) || !strings.Contains(r.stdout, boss) {
		t.Errorf("tenant a's ps: want boss, kid and nest\n%s", r)
	}
	if r := o.as(uidA, "exec", kid, "echo", "exec by a"); r.code != 0 || !strings.Contains(r.stdout, "exec by a") {
		t.Errorf("tenant a's exec into its sub-container\n%s", r)
	}
	for _, uid := range []uint32{uidA, 0} {
		q := o.tenantQuota(uid, map[uint32]string{uidA: "self", 0: "a"}[uid])
		if q.Containers != 3 || q.Given.MemoryBytes != 128<<20 || q.Limit.MemoryBytes != 256<<20 || q.Pids < 6 || q.MemoryBytes <= 0 {
			t.Errorf("uid %d: tenant a's quota %+v: want 3 containers, 128 MiB given of 256 MiB, the tasks of all three", uid, q)
		}
	}

	// b learns nothing of a's sub-containers: what it is told of one
	// that does not exist.
	if r := o.as(uidB, "ps", "-a", "-q"); r.code != 0 || strings.TrimSpace(r.stdout) != "" {
		t.Errorf("tenant b's ps -a: want nothing\n%s", r)
	}
	for _, verb := range [][]string{{"inspect", "--type", "container"}, {"logs"}, {"stop", "-t", "1"}, {"rm", "-f"}, {"exec", "REF", "true"}} {
		for _, ref := range []string{kid, kid[:12], nest} {
			got := o.as(uidB, withRef(verb, ref)...)
			missing := o.as(uidB, withRef(verb, "nosuchthing")...)
			if got.code == 0 || got.code != missing.code || got.stderr != strings.ReplaceAll(missing.stderr, "nosuchthing", ref) {
				t.Errorf("tenant b: oak %s: exit %d %q; for a container that does not exist: exit %d %q",
					strings.Join(withRef(verb, ref), " "), got.code, got.stderr, missing.code, missing.stderr)
			}
		}
	}
	if q := o.tenantQuota(uidB, "self"); q.Containers != 0 || q.Given.MemoryBytes != 0 {
		t.Errorf("tenant b's quota %+v: want nothing of a's", q)
	}

	// Revoking boss's spawn capability withdraws its sub-containers, and
	// nest's factory with nest; boss keeps running, in its factory.
	if r := o.as(uidA, "revoke", "boss", "spawn"); r.code != 0 {
		t.Fatalf("tenant a's revoke boss spawn\n%s", r)
	}
	if r := o.as(uidA, "ps", "-a", "-q", "--no-trunc"); r.code != 0 || strings.TrimSpace(r.stdout) != boss {
		t.Errorf("tenant a's ps -a after the revocation: want boss only\n%s", r)
	}
	if r := o.run("factory", "inspect", nestF.Name); r.code == 0 {
		t.Errorf("factory %s is left after the revocation\n%s", nestF.Name, r)
	}
	if q := o.tenantQuota(uidA, "self"); q.Containers != 1 || q.Given.MemoryBytes != 128<<20 {
		t.Errorf("tenant a's quota after the revocation: %+v, want boss alone, its factory's 128 MiB given", q)
	}

	// Removing boss removes its factory and gives a its quota back.
	if r := o.as(uidA, "rm", "-f", "boss"); r.code != 0 {
		t.Fatalf("tenant a's rm -f boss\n%s", r)
	}
	if left, _ := o.psAll(); len(left) != 0 {
		t.Errorf("after rm of boss, containers are left: %+v", left)
	}
	for _, f := range []string{bossF.Name, nestF.Name} {
		if r := o.run("factory", "inspect", f); r.code == 0 {
			t.Errorf("factory %s is left after its container's removal\n%s", f, r)
		}
	}
	if q := o.tenantQuota(uidA, "self"); q.Containers != 0 || q.Given != (struct{ MemoryBytes, Pids, CPUMilli, DiskBytes int64 }{}) {
		t.Errorf("tenant a's quota after rm: %+v, want nothing given, no container", q)
	}

	// oak tenant rm refuses a tenant with containers; rm -f withdraws
	// everything it has: its --spawn container, the sub-container that
	// made, their factories, its own factory and their groups.
	r = o.as(uidA, "run", "-d", "--spawn", "--memory", "64m", "--pids", "16", "--read-only", probeImageRef,
		"/bin/sh", "-c", spawnScript([][2]string{{"kid", tenantReq(`"Cmd":["sleep","1000"],"ReadonlyRootfs":true`)}}))
	if r.code != 0 {
		t.Fatalf("tenant a's second run --spawn\n%s", r)
	}
	boss2 := strings.TrimSpace(r.stdout)
	createdID(t, "kid", spawnAnswers(o.waitOutput(boss2, "done", 90*time.Second))["kid"])
	boss2F := o.inspectFactory(o.factoryOf(boss2))
	if r := o.run("tenant", "rm", "a"); r.code == 0 || !strings.Contains(r.stderr, "has containers") {
		t.Errorf("oak tenant rm of a tenant with containers: want a refusal\n%s", r)
	}
	if r := o.run("tenant", "rm", "-f", "a"); r.code != 0 {
		t.Fatalf("%s", r)
	}
	if left, _ := o.psAll(); len(left) != 0 {
		t.Errorf("after tenant rm -f a, containers are left: %+v", left)
	}
	for _, f := range []factoryInfo{tf, boss2F} {
		if r := o.run("factory", "inspect", f.Name); r.code == 0 {
			t.Errorf("factory %s is left after tenant rm -f\n%s", f.Name, r)
		}
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/pids/oak", f.Group)); !os.IsNotExist(err) {
			t.Errorf("factory %s's group %s is left after tenant rm -f", f.Name, f.Group)
		}
	}
	if r := o.as(uidA, "ps"); r.code == 0 || !strings.Contains(r.stderr, "is not a tenant") {
		t.Errorf("uid %d after tenant rm -f a: want a refusal\n%s", uidA, r)
	}
	// For the cleanup of newTenantOak.
	if r := o.run("tenant", "create", "--uid", "4001", "--memory", "256m", "--pids", "64", "--disk", "2g", "a"); r.code != 0 {
		t.Fatalf("%s", r)
	}
}

package engine

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/oak-engine/oak/storage/volume"
)

// tenantRoot is a state root with factories fa and fb (records only: no
// control group is made) and tenant a on fa with uid 4001.
func tenantRoot(t *testing.T) *Engine {
	t.Helper()
	e, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"fa", "fb"} {
		f := &Factory{Name: n, ID: newFactoryID(), Quota: FactoryQuota{MemoryBytes: 256 << 20}, Created: time.Now().UTC()}
		if err := e.saveFactory(f); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.CreateTenant(TenantOptions{Name: "a", UIDs: []uint32{4001}, Factory: "fa"}); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestCreateTenantRefusals(t *testing.T) {
	e := tenantRoot(t)
	for _, c := range []struct {
		o    TenantOptions
		want string
	}{
		{TenantOptions{Name: "a", UIDs: []uint32{4005}, Factory: "fb"}, "exists"},
		{TenantOptions{Name: "b", UIDs: []uint32{4001}, Factory: "fb"}, "already tenant a's"},
		{TenantOptions{Name: "b", UIDs: []uint32{4002}, Factory: "fa"}, "a factory serves one tenant"},
		{TenantOptions{Name: "b", UIDs: []uint32{0}, Factory: "fb"}, "root is the host's administrator"},
		{TenantOptions{Name: "b", UIDs: []uint32{idBase + 5}, Factory: "fb"}, "range Oak maps containers"},
		{TenantOptions{Name: "b", Factory: "fb"}, "--uid is required"},
		{TenantOptions{Name: "b", UIDs: []uint32{4002}, Factory: "nope"}, "no such factory"},
		{TenantOptions{Name: "b.c", UIDs: []uint32{4002}, Factory: "fb"}, "invalid tenant name"},
		{TenantOptions{Name: "self", UIDs: []uint32{4002}, Factory: "fb"}, `invalid tenant name "self"`},
		{TenantOptions{Name: "b", UIDs: []uint32{4002}}, "either --factory or"},
	} {
		if _, err := e.CreateTenant(c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("CreateTenant(%+v) = %v, want an error containing %q", c.o, err, c.want)
		}
	}
	b, err := e.CreateTenant(TenantOptions{Name: "b", UIDs: []uint32{4002, 4003}, Factory: "fb"})
	if err != nil {
		t.Fatal(err)
	}
	for uid, want := range map[uint32]string{4001: "a", 4002: "b", 4003: "b", 4004: ""} {
		got, err := e.TenantByUID(uid)
		if err != nil {
			t.Fatal(err)
		}
		if name := func() string {
			if got == nil {
				return ""
			}
			return got.Name
		}(); name != want {
			t.Errorf("TenantByUID(%d) = %q, want %q", uid, name, want)
		}
	}
	if b.OwnFactory {
		t.Errorf("tenant b on an existing factory owns it")
	}
	if err := e.RemoveTenant("b"); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.TenantByUID(4002); got != nil {
		t.Errorf("uid 4002 is still tenant %s's after rm", got.Name)
	}
	if err := e.RemoveTenant("b"); !errors.Is(err, ErrNoSuchTenant) {
		t.Errorf("second RemoveTenant = %v, want ErrNoSuchTenant", err)
	}
	if _, err := e.InspectFactory("fb"); err != nil {
		t.Errorf("factory fb went with a tenant that did not own it: %v", err)
	}
}

// TestAdmitTenant pins what a run on a tenant's behalf may not ask for,
// and that it is made from the tenant's factory under a name of its own.
func TestAdmitTenant(t *testing.T) {
	e := tenantRoot(t)
	for _, c := range []struct {
		o    RunOptions
		want string
	}{
		{RunOptions{Image: "demo", Factory: "fb"}, "its own factory, fa"},
		{RunOptions{Image: "/srv/rootfs"}, "not host directories"},
		{RunOptions{Image: "./rootfs"}, "not host directories"},
		{RunOptions{Image: "demo", Volumes: []string{"/etc:/x"}}, "cannot mount host directories"},
		{RunOptions{Image: "demo", Publish: []string{"8080:80"}}, "host port the daemon picks"},
		{RunOptions{Image: "demo", Volumes: []string{"theirs:/data"}}, volume.ErrNotFound.Error()},
		{RunOptions{Image: "demo", Name: "bad/name"}, "invalid"},
		{RunOptions{Image: "demo", Name: strings.Repeat("n", MaxNameLen)}, "at most 126 characters"},
	} {
		c.o.Tenant = "a"
		err := e.admitTenant(&c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("admitTenant(%+v) = %v, want an error containing %q", c.o, err, c.want)
		}
	}
	// Another's volume is refused with the words of one that does not
	// exist.
	o := RunOptions{Image: "demo", Volumes: []string{"theirs:/data"}, Tenant: "a"}
	vs, err := e.Volumes()
	if err != nil {
		t.Fatal(err)
	}
	_, missing := vs.Inspect("theirs")
	if err := e.admitTenant(&o); err == nil || !errors.Is(err, volume.ErrNotFound) || err.Error() != "-v theirs:/data: "+missing.Error() {
		t.Errorf("another's volume: %v, want -v theirs:/data: %v", err, missing)
	}
	o = RunOptions{Image: "demo", Name: "web", Publish: []string{"80"}, Tenant: "a"}
	if err := e.admitTenant(&o); err != nil {
		t.Fatal(err)
	}
	if o.Factory != "fa" || o.Name != "a.web" {
		t.Errorf("admitted as factory %q name %q, want fa, a.web", o.Factory, o.Name)
	}
	o = RunOptions{Image: "demo", Tenant: "nobody"}
	if err := e.admitTenant(&o); !errors.Is(err, ErrNoSuchTenant) {
		t.Errorf("run for a tenant that is gone = %v, want ErrNoSuchTenant", err)
	}
}

func TestTenantNames(t *testing.T) {
	if n := TenantContainerName("a", "web"); n != "a.web" || TenantDisplayName("a", n) != "web" {
		t.Errorf("TenantContainerName(a, web) = %q, displayed %q", n, TenantDisplayName("a", n))
	}
	// Tenant names have no dot, so no two tenants' names meet.
	if checkTenantName("a.b") == nil || checkTenantName("") == nil || checkTenantName(strings.Repeat("x", 33)) == nil {
		t.Error("checkTenantName accepts a dot, an empty name or 33 characters")
	}
}

// TestAdmitTenantSpawn: a tenant's --spawn container is made from the
// factory prepareSpawn made for it, a sub-factory of the tenant's; a
// spawn factory of another's, or one asked for without --spawn, is
// refused as any other factory.
func TestAdmitTenantSpawn(t *testing.T) {
	e := tenantRoot(t)
	for _, f := range []*Factory{{Name: "spawn-aaaaaaaaaaaa", Parent: "fa"}, {Name: "spawn-bbbbbbbbbbbb", Parent: "fb"}} {
		f.ID, f.Created, f.Quota = newFactoryID(), time.Now().UTC(), FactoryQuota{MemoryBytes: 64 << 20}
		if err := e.saveFactory(f); err != nil {
			t.Fatal(err)
		}
	}
	o := RunOptions{Image: "demo", Tenant: "a", Spawn: true, Factory: "spawn-aaaaaaaaaaaa"}
	if err := e.admitTenant(&o); err != nil || o.Factory != "spawn-aaaaaaaaaaaa" {
		t.Errorf("admitTenant of a --spawn run in a sub-factory of the tenant's: %v, factory %q", err, o.Factory)
	}
	for _, o := range []RunOptions{
		{Image: "demo", Tenant: "a", Spawn: true, Factory: "spawn-bbbbbbbbbbbb"},
		{Image: "demo", Tenant: "a", Factory: "spawn-aaaaaaaaaaaa"},
	} {
		if err := e.admitTenant(&o); err == nil || !strings.Contains(err.Error(), "its own factory, fa") {
			t.Errorf("admitTenant(%+v) = %v, want refused as another factory", o, err)
		}
	}
	// Under a factory that limits CPU, the run must say how much of it
	// its factory takes.
	fc := &Factory{Name: "fc", ID: newFactoryID(), Created: time.Now().UTC(), Quota: FactoryQuota{MemoryBytes: 256 << 20, CPUMilli: 500}}
	if err := e.saveFactory(fc); err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreateTenant(TenantOptions{Name: "c", UIDs: []uint32{4003}, Factory: "fc"}); err != nil {
		t.Fatal(err)
	}
	o = RunOptions{Image: "demo", Tenant: "c", Spawn: true}
	o.Limits.MemoryBytes, o.Limits.Pids = 64<<20, 16
	if _, err := e.prepareSpawn(&o); err == nil || !strings.Contains(err.Error(), "needs a --cpus limit (NanoCpus): its factory takes a part of fc's") {
		t.Errorf("prepareSpawn of a tenant's --spawn run without --cpus under a CPU-limited factory = %v", err)
	}
	o = RunOptions{Image: "demo", Tenant: "a", SpawnDisk: 1 << 20}
	if _, err := e.prepareSpawn(&o); err == nil || !strings.Contains(err.Error(), "only with --spawn") {
		t.Errorf("prepareSpawn of --spawn-disk without --spawn = %v", err)
	}
}

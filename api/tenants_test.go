package api

import (
	"testing"

	"github.com/oak-engine/oak/engine"
	"github.com/oak-engine/oak/sandbox"
)

// quotaEngine answers DescribeTenant from fixed records.
type quotaEngine struct {
	fi *engine.FactoryInfo
	cs []*engine.ContainerInfo
}

func (q quotaEngine) InspectFactory(name string) (*engine.FactoryInfo, error) {
	if q.fi == nil || q.fi.Name != name {
		return nil, engine.ErrNoSuchFactory
	}
	return q.fi, nil
}

func (q quotaEngine) ListContainers(engine.Filter) ([]*engine.ContainerInfo, error) { return q.cs, nil }

// TestDescribeTenant: a tenant's Quota is its factory's limit, what is
// given of it and what the kernel charges it, and counts every
// container recorded as the tenant's, sub-containers included, and no
// other tenant's.
func TestDescribeTenant(t *testing.T) {
	ci := func(tenant, parent string) *engine.ContainerInfo {
		c := &engine.ContainerInfo{}
		c.HostConfig.Tenant, c.HostConfig.Parent = tenant, parent
		return c
	}
	e := quotaEngine{
		fi: &engine.FactoryInfo{Name: "fa", Limit: engine.QuotaInfo{MemoryBytes: 256 << 20}, Given: engine.QuotaInfo{MemoryBytes: 128 << 20},
			Usage: sandbox.GroupUsage{MemoryBytes: 5 << 20, Pids: 7}},
		cs: []*engine.ContainerInfo{ci("a", ""), ci("a", "p"), ci("a", "q"), ci("b", ""), ci("", "")},
	}
	got, err := DescribeTenant(e, &engine.Tenant{Name: "a", Factory: "fa"})
	if err != nil {
		t.Fatal(err)
	}
	want := TenantQuotaUse{Limit: e.fi.Limit, Given: e.fi.Given, MemoryBytes: 5 << 20, Pids: 7, Containers: 3}
	if got.Quota == nil || *got.Quota != want {
		t.Errorf("DescribeTenant(a).Quota = %+v, want %+v", got.Quota, want)
	}
	// A tenant whose factory is gone is described without a quota.
	got, err = DescribeTenant(e, &engine.Tenant{Name: "b", Factory: "gone"})
	if err != nil || got.Quota != nil || got.Name != "b" {
		t.Errorf("DescribeTenant of a tenant without a factory = %+v, %v", got, err)
	}
}

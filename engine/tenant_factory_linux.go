package engine

import "strings"

// A tenant's factories are its own factory and every factory under it.
// A tenant makes sub-factories of its own through the daemon (POST
// /v1/factories); they are kept as TENANT.NAME, as its containers are,
// so that factory names, which are the host's one space, neither collide
// with nor tell of another tenant's. The tenant knows each by the name
// it gave (TenantDisplayName); its own factory by its name.

// TenantFactories maps the names of tenant t's factories among fs, as
// kept, to the names t knows them by. A factory whose records form a
// cycle is nobody's.
func TenantFactories(t *Tenant, fs []*FactoryInfo) map[string]string {
	parent := make(map[string]string, len(fs))
	for _, f := range fs {
		parent[f.Name] = f.Parent
	}
	own := map[string]string{}
	for _, f := range fs {
		for n, depth := f.Name, 0; n != "" && depth <= len(fs); n, depth = parent[n], depth+1 {
			if n == t.Factory {
				own[f.Name] = TenantFactoryName(t, f.Name)
				break
			}
		}
	}
	return own
}

// TenantFactoryName is the name tenant t knows its factory name by: its
// own factory's as it is, a sub-factory's without the tenant's prefix.
func TenantFactoryName(t *Tenant, name string) string {
	if name == t.Factory {
		return name
	}
	return TenantDisplayName(t.Name, name)
}

// ResolveTenantFactory finds the factory tenant t calls ref among fs:
// one of its own whose name, as t knows it, is ref (the one it made by
// that name first). ok is false for any other, existing or not.
func ResolveTenantFactory(t *Tenant, fs []*FactoryInfo, ref string) (name string, ok bool) {
	if ref == "" {
		return "", false
	}
	own := TenantFactories(t, fs)
	if _, mine := own[TenantContainerName(t.Name, ref)]; mine && TenantContainerName(t.Name, ref) != t.Factory {
		return TenantContainerName(t.Name, ref), true
	}
	for n, shown := range own {
		if shown == ref && !strings.HasPrefix(n, t.Name+".") {
			return n, true
		}
	}
	return "", false
}

// CheckFactoryName returns nil for a valid factory name and otherwise an
// error naming it and the rule.
func CheckFactoryName(name string) error { return checkFactoryName(name) }

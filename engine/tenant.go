package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/oak-engine/oak/storage/volume"
)

// A tenant is a factory plus a credential: the host users (unix uids, as
// the daemon's socket reports its peers' credentials) that act as the
// tenant. A tenant's containers are made from its factory, whose quota
// bounds their sum; the API shows a tenant its own containers and volumes
// only and refuses it what would reach outside them (host directories,
// fixed host ports, another factory). See docs/tenants.md.
//
// Tenants are records under the state root, STATE/tenants/NAME.json, each
// replaced atomically under the root's lock, as factories are.

// Tenant is the persistent record of one tenant.
type Tenant struct {
	Name string   `json:"name"`
	UIDs []uint32 `json:"uids"`
	// Factory is the factory its containers and volumes are made from.
	Factory string `json:"factory"`
	// OwnFactory: the factory was made with the tenant (oak tenant create
	// --memory …) and is removed with it.
	OwnFactory bool      `json:"own_factory,omitempty"`
	Created    time.Time `json:"created"`
	// TokenHash is the SHA-256 of the tenant's token, hex, if it has one
	// (see tenant_token.go); the token itself is never stored.
	TokenHash    string    `json:"token_sha256,omitempty"`
	TokenCreated time.Time `json:"token_created,omitzero"`
}

// TenantOptions is a request to make a tenant. Either Factory names an
// existing factory, or Quota is that of a factory made for the tenant,
// named after it.
type TenantOptions struct {
	Name    string
	UIDs    []uint32
	Factory string
	Quota   *FactoryQuota
}

// ErrNoSuchTenant is the cause of every error about a tenant name that
// names none, for errors.Is.
var ErrNoSuchTenant = errors.New("no such tenant")

// MaxTenantNameLen bounds a tenant's name: it prefixes the names of its
// containers.
const MaxTenantNameLen = 32

// checkTenantName allows [a-zA-Z0-9][a-zA-Z0-9_-]*: no dot, because a
// tenant's container names are kept as TENANT.NAME, and a dot-free prefix
// tells every tenant's names apart (see TenantContainerName).
func checkTenantName(name string) error {
	if name == "self" {
		return errors.New(`invalid tenant name "self": the API's name for the caller's own tenant (GET /v1/tenants/self)`)
	}
	if ValidName(name) && !strings.Contains(name, ".") && len(name) <= MaxTenantNameLen {
		return nil
	}
	return fmt.Errorf("invalid tenant name %q: must match [a-zA-Z0-9][a-zA-Z0-9_-]* and be at most %d characters", name, MaxTenantNameLen)
}

// TenantContainerName is the name a container that tenant names name is
// kept under: names are one space for the whole host, and a tenant must
// neither collide with nor learn of another's.
func TenantContainerName(tenant, name string) string { return tenant + "." + name }

// TenantDisplayName is the name tenant knows its container c's record
// name by: without the tenant's prefix.
func TenantDisplayName(tenant, name string) string {
	return strings.TrimPrefix(name, tenant+".")
}

func (e *Engine) tenantsDir() string { return filepath.Join(e.Root, "tenants") }

func (e *Engine) tenantPath(name string) string { return filepath.Join(e.tenantsDir(), name+".json") }

// tenants loads every tenant record, by name. A record that cannot be
// read is an error naming it: without it, a uid's tenant is unknown.
func (e *Engine) tenants() ([]*Tenant, error) {
	ents, err := os.ReadDir(e.tenantsDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tenants %s: %w", e.tenantsDir(), unwrapPath(err))
	}
	var ts []*Tenant
	for _, ent := range ents {
		name, ok := strings.CutSuffix(ent.Name(), ".json")
		if !ok || strings.HasPrefix(ent.Name(), ".") {
			continue // a temporary file of an interrupted write
		}
		var t Tenant
		if err := readJSON(filepath.Join(e.tenantsDir(), ent.Name()), &t); err != nil {
			return nil, fmt.Errorf("tenant %s: corrupt record: %w", name, unwrapPath(err))
		}
		if t.Name != name || t.Factory == "" || len(t.UIDs) == 0 {
			return nil, fmt.Errorf("tenant %s: corrupt record: names tenant %q, factory %q, uids %v", name, t.Name, t.Factory, t.UIDs)
		}
		ts = append(ts, &t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	return ts, nil
}

// checkTenant refuses o if its name or uids are taken or invalid, or its
// factory is missing or another tenant's. Must be called with the lock
// held.
func (e *Engine) checkTenant(o TenantOptions, ts []*Tenant, fs []*Factory) error {
	if err := checkTenantName(o.Name); err != nil {
		return err
	}
	if len(o.UIDs) == 0 {
		return errors.New("--uid is required: a tenant is the host users that act as it")
	}
	for _, t := range ts {
		if t.Name == o.Name {
			return errors.New("a tenant of that name exists")
		}
		for _, u := range o.UIDs {
			if slices.Contains(t.UIDs, u) {
				return fmt.Errorf("invalid --uid %d: already tenant %s's", u, t.Name)
			}
		}
		if o.Factory != "" && t.Factory == o.Factory {
			return fmt.Errorf("invalid --factory %s: already tenant %s's; a factory serves one tenant", o.Factory, t.Name)
		}
	}
	for _, u := range o.UIDs {
		switch {
		case u == 0:
			return errors.New("invalid --uid 0: root is the host's administrator, not a tenant")
		case u >= idBase:
			return fmt.Errorf("invalid --uid %d: in the range Oak maps containers' users to", u)
		}
	}
	if o.Factory != "" {
		if !slices.ContainsFunc(fs, func(f *Factory) bool { return f.Name == o.Factory }) {
			return fmt.Errorf("invalid --factory %s: %w", o.Factory, ErrNoSuchFactory)
		}
	}
	return nil
}

// CreateTenant makes a tenant: o.Factory, or a factory of quota o.Quota
// named after the tenant made for it. It refuses an invalid or taken
// name, uid 0, a uid another tenant has, a missing factory or one
// another tenant has.
func (e *Engine) CreateTenant(o TenantOptions) (*Tenant, error) {
	op := "tenant create " + o.Name
	if (o.Factory == "") == (o.Quota == nil) {
		return nil, fmt.Errorf("%s: give either --factory or the quota of a factory to make (--memory, --pids, --cpus, --disk)", op)
	}
	check := func() error {
		unlock, err := e.lock()
		if err != nil {
			return err
		}
		defer unlock()
		ts, err := e.tenants()
		if err != nil {
			return err
		}
		fs, err := e.factories()
		if err != nil {
			return err
		}
		return e.checkTenant(o, ts, fs)
	}
	if err := check(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	t := &Tenant{Name: o.Name, UIDs: o.UIDs, Factory: o.Factory, Created: time.Now().UTC()}
	if o.Quota != nil {
		if _, err := e.CreateFactory(FactoryOptions{Name: o.Name, Quota: *o.Quota}); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		t.Factory, t.OwnFactory, o.Factory = o.Name, true, o.Name
	}
	// Checked again under the lock that writes the record: another
	// create may have taken the name or a uid meanwhile.
	unlock, err := e.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	err = func() error {
		ts, err := e.tenants()
		if err != nil {
			return err
		}
		fs, err := e.factories()
		if err != nil {
			return err
		}
		if err := e.checkTenant(o, ts, fs); err != nil {
			return err
		}
		if err := os.MkdirAll(e.tenantsDir(), 0o700); err != nil {
			return unwrapPath(err)
		}
		return writeFileAtomic(e.tenantPath(t.Name), mustJSON(t))
	}()
	if err != nil {
		if t.OwnFactory {
			unlock()
			e.RemoveFactory(t.Factory, false)
		}
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return t, nil
}

// ListTenants describes every tenant, by name. It takes no lock: each
// record is replaced atomically, so a reader sees whole records, and the
// daemon reads them on every request of a uid other than root's.
func (e *Engine) ListTenants() ([]*Tenant, error) {
	return e.tenants()
}

// InspectTenant describes tenant name.
func (e *Engine) InspectTenant(name string) (*Tenant, error) {
	ts, err := e.ListTenants()
	if err != nil {
		return nil, err
	}
	for _, t := range ts {
		if t.Name == name {
			return t, nil
		}
	}
	return nil, fmt.Errorf("tenant %s: %w", name, ErrNoSuchTenant)
}

// TenantByUID is the tenant uid acts as, or nil if it acts as none. It
// reads the records on every call: a tenant removed is refused at once.
func (e *Engine) TenantByUID(uid uint32) (*Tenant, error) {
	ts, err := e.ListTenants()
	if err != nil {
		return nil, err
	}
	for _, t := range ts {
		if slices.Contains(t.UIDs, uid) {
			return t, nil
		}
	}
	return nil, nil
}

// RemoveTenant removes tenant name, and the factory made for it. It
// refuses while the tenant has containers, naming them, and (through
// oak factory rm) while its own factory holds volumes or sub-factories.
func (e *Engine) RemoveTenant(name string) error {
	op := "tenant rm " + name
	t, err := e.InspectTenant(name)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	unlock, err := e.lock()
	if err != nil {
		return err
	}
	cs, err := e.reconcile()
	if err != nil {
		unlock()
		return err
	}
	var held []string
	for _, c := range cs {
		if c.Tenant == name {
			held = append(held, c.Name)
		}
	}
	unlock()
	if len(held) > 0 {
		return fmt.Errorf("%s: has containers %s; remove them first", op, strings.Join(held, ", "))
	}
	if t.OwnFactory {
		if err := e.RemoveFactory(t.Factory, false); err != nil && !errors.Is(err, ErrNoSuchFactory) {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	unlock, err = e.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.Remove(e.tenantPath(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: %w", op, unwrapPath(err))
	}
	return nil
}

// WithdrawTenant removes tenant name with everything it has (oak tenant
// rm -f): every container of its, each with its sub-containers, then
// the tenant as RemoveTenant does. A factory made for the tenant is
// removed as oak factory rm -f removes one: first marked, so that
// nothing more is made from it or from a sub-factory of it (the
// factories of the tenant's --spawn containers), then everything made
// from it, its volumes included. Of an existing factory (tenant create
// --factory), only the tenant's containers go; the factory and its
// volumes stay.
func (e *Engine) WithdrawTenant(name string) error {
	op := "tenant rm -f " + name
	t, err := e.InspectTenant(name)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if t.OwnFactory {
		if err := e.RemoveFactory(t.Factory, true); err != nil && !errors.Is(err, ErrNoSuchFactory) {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	// What is left: its containers in a factory not its own. A
	// container's removal withdraws its sub-containers first, so the
	// latest made go first and a sub-container already gone is no error.
	for round := 0; round < 3; round++ {
		cs, err := e.List()
		if err != nil {
			return err
		}
		var errs []error
		n := 0
		for i := len(cs) - 1; i >= 0; i-- {
			if cs[i].Tenant != name {
				continue
			}
			n++
			if err := e.Remove(cs[i].ID, true); err != nil && !errors.Is(err, ErrNoSuchContainer) {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		if n == 0 {
			break
		}
	}
	return e.RemoveTenant(name)
}

// admitTenant checks a run on behalf of tenant o.Tenant and narrows it to
// what a tenant may ask: its containers' names are its own (kept as
// TENANT.NAME), they are made from its factory or one of its
// sub-factories (o.Factory empty is the tenant's own, a sub-factory is
// named as the tenant knows it, any other is refused); no host
// directory is mounted (the daemon would open it with root's authority),
// no image is read from a host directory, no fixed host port is taken
// (the daemon picks one: a fixed one may be another tenant's), and only
// the tenant's own volumes (its factory's) are mounted: another's is
// refused exactly as a volume that does not exist.
func (e *Engine) admitTenant(o *RunOptions) error {
	if o.Parent != "" {
		return e.admitSpawn(o)
	}
	if o.Tenant == "" {
		return nil
	}
	t, err := e.InspectTenant(o.Tenant)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	if strings.HasPrefix(o.Image, "/") || strings.HasPrefix(o.Image, ".") {
		return fmt.Errorf("invalid image %q: a tenant runs stored images (oak images), not host directories", o.Image)
	}
	factory := t.Factory
	switch {
	case o.Spawn && e.isSubFactory(o.Factory, t.Factory):
		factory = o.Factory // made for it by prepareSpawn, of the tenant's quota
	case o.Factory != "" && o.Factory != t.Factory:
		fs, err := e.ListFactories()
		if err != nil {
			return fmt.Errorf("run: %w", err)
		}
		var ok bool
		// A --spawn container's factory is taken only by the run it
		// was made for and by that container's sub-containers.
		if factory, ok = ResolveTenantFactory(t, fs, o.Factory); !ok || MadeForSpawn(factory) {
			return fmt.Errorf("invalid --factory %s: a tenant's containers are made from its own factory, %s, or one of its sub-factories (oak factory ls)", o.Factory, t.Factory)
		}
	}
	o.Factory = factory
	if o.Name != "" {
		if err := checkName(o.Name); err != nil {
			return err
		}
		o.Name = TenantContainerName(t.Name, o.Name)
		if len(o.Name) > MaxNameLen {
			return fmt.Errorf("invalid --name: at most %d characters for tenant %s's containers", MaxNameLen-len(t.Name)-1, t.Name)
		}
	}
	listens, err := parseGrants(o.Publish, nil)
	if err != nil {
		return err
	}
	for _, l := range listens {
		if l.HostPort != 0 {
			return fmt.Errorf("invalid -p %s: a tenant publishes on a host port the daemon picks (-p PORT); fixed host ports are the host administrator's", l)
		}
	}
	var own []string
	for _, a := range o.Volumes {
		m, err := ParseVolumeMount(a)
		if err != nil {
			return err
		}
		if isBind(m.Name) {
			return fmt.Errorf("invalid -v %s: a tenant cannot mount host directories, only its own volumes", a)
		}
		if own == nil {
			fi, err := e.InspectFactory(t.Factory)
			if err != nil {
				return fmt.Errorf("run: tenant %s: %w", t.Name, err)
			}
			own = append(fi.Volumes, "") // not nil: looked up
		}
		if !slices.Contains(own, m.Name) {
			return fmt.Errorf("-v %s: %w", a, &volume.Error{Op: "inspect", Volume: m.Name, Err: volume.ErrNotFound})
		}
	}
	return nil
}

package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/oak-engine/oak/engine"
)

// Factories over the API (oak factory …): root makes, lists, inspects
// and removes any factory. A tenant reaches its own factory and the
// sub-factories under it only, each by the name it knows it by (see
// engine.TenantFactories): it lists and inspects them, makes
// sub-factories inside them out of their quota (kept as TENANT.NAME, so
// that it neither collides with nor learns of another's name), and
// removes the sub-factories it made (its own factory is root's, removed
// with the tenant). Any other factory, existing or not, is answered
// exactly as one that does not exist: 404, the same body. A request
// through a container's spawn capability reaches no factory route (they
// are not in spawnAccess: 403); its sub-containers' factories are the
// engine's to make.

// FactoryEngine is what the server needs of the engine to serve
// factories; *engine.Engine has it.
type FactoryEngine interface {
	ListFactories() ([]*engine.FactoryInfo, error)
	InspectFactory(name string) (*engine.FactoryInfo, error)
	CreateFactory(o engine.FactoryOptions) (*engine.FactoryInfo, error)
	RemoveFactory(name string, force bool) error
}

// FactoryCreate is the body of POST /v1/factories. Parent empty is the
// host (root), or the tenant's own factory (a tenant). Quota fields left
// zero are no limit of the factory's own, allowed only where the parent
// sets none (TenantQuota's fields, as oak factory create takes them).
type FactoryCreate struct {
	Name   string
	Parent string      `json:",omitempty"`
	Quota  TenantQuota `json:",omitzero"`
}

func (s *Server) factoryRoutes() []Route {
	return []Route{
		{"GET", "/v1/factories", s.listFactories},
		{"POST", "/v1/factories", s.createFactory},
		{"GET", "/v1/factories/{name}", s.inspectFactory},
		{"DELETE", "/v1/factories/{name}", s.removeFactory},
	}
}

var errNoFactories = errors.New("this daemon's engine manages no factories")

func (s *Server) factoryEngine() (FactoryEngine, error) {
	fe, ok := s.eng.(FactoryEngine)
	if !ok {
		return nil, errNoFactories
	}
	return fe, nil
}

// noSuchFactory is the answer about a factory ref names that is not the
// caller's to know: word for word that about one that does not exist.
func noSuchFactory(ref string) error {
	if ref == "" {
		ref = `""`
	}
	return fmt.Errorf("factory %s: %w", ref, engine.ErrNoSuchFactory)
}

// ownFactory resolves a tenant's ref among its own factories (see
// engine.ResolveTenantFactory) to the factory's name as kept; any other
// is not found.
func (s *Server) ownFactory(c caller, ref string) (string, error) {
	fe, err := s.factoryEngine()
	if err != nil {
		return "", err
	}
	fs, err := fe.ListFactories()
	if err != nil {
		return "", err
	}
	name, ok := engine.ResolveTenantFactory(c.tenant, fs, ref)
	if !ok {
		return "", noSuchFactory(ref)
	}
	return name, nil
}

// shownFactory is fi as caller c sees it: as it is to root; to a tenant
// (fi is one of its own, own its factories) by the names it knows, with
// nothing of what lies outside them: no parent above its own factory, no
// control-group path (it names the factories above), no container
// another made from it.
func shownFactory(c caller, fi *engine.FactoryInfo, own map[string]string) *engine.FactoryInfo {
	if c.tenant == nil {
		return fi
	}
	out := *fi
	out.Name = own[fi.Name]
	out.Parent = own[fi.Parent] // "" above its own factory
	out.Group = ""
	out.Containers = []string{}
	for _, n := range fi.Containers {
		if strings.HasPrefix(n, c.tenant.Name+".") {
			out.Containers = append(out.Containers, engine.TenantDisplayName(c.tenant.Name, n))
		}
	}
	out.Children = []string{}
	for _, n := range fi.Children {
		if shown, ok := own[n]; ok {
			out.Children = append(out.Children, shown)
		}
	}
	return &out
}

func (s *Server) listFactories(w http.ResponseWriter, r *http.Request) error {
	if err := parseQuery(r.URL).err; err != nil {
		return err
	}
	fe, err := s.factoryEngine()
	if err != nil {
		return err
	}
	fs, err := fe.ListFactories()
	if err != nil {
		return err
	}
	c := callerOf(r)
	out := []*engine.FactoryInfo{}
	if c.tenant == nil {
		out = append(out, fs...)
	} else {
		own := engine.TenantFactories(c.tenant, fs)
		for _, fi := range fs {
			if _, ok := own[fi.Name]; ok {
				out = append(out, shownFactory(c, fi, own))
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) inspectFactory(w http.ResponseWriter, r *http.Request) error {
	if err := parseQuery(r.URL).err; err != nil {
		return err
	}
	fe, err := s.factoryEngine()
	if err != nil {
		return err
	}
	c := callerOf(r)
	name := r.PathValue("name") // a tenant's, resolved to its own (authorize)
	fi, err := fe.InspectFactory(name)
	if err != nil {
		return err
	}
	if c.tenant != nil {
		fs, err := fe.ListFactories()
		if err != nil {
			return err
		}
		fi = shownFactory(c, fi, engine.TenantFactories(c.tenant, fs))
	}
	writeJSON(w, http.StatusOK, fi)
	return nil
}

func (s *Server) createFactory(w http.ResponseWriter, r *http.Request) error {
	if err := parseQuery(r.URL).err; err != nil {
		return err
	}
	req, err := decodeBody[FactoryCreate](r.Body)
	if err != nil {
		return err
	}
	fe, err := s.factoryEngine()
	if err != nil {
		return err
	}
	q := req.Quota
	o := engine.FactoryOptions{Name: req.Name, Parent: req.Parent,
		Quota: engine.FactoryQuota{MemoryBytes: q.MemoryBytes, Pids: q.Pids, CPUMilli: q.CPUMilli, DiskBytes: q.DiskBytes}}
	if err := o.Quota.Check(); err != nil {
		return &FieldError{"Quota", err.Error()}
	}
	c := callerOf(r)
	var own map[string]string
	if c.tenant != nil {
		if o, own, err = s.tenantFactoryOptions(c, fe, o); err != nil {
			return err
		}
	}
	fi, err := fe.CreateFactory(o)
	if err != nil {
		return err
	}
	s.log.Info("factory created", "factory", fi.Name, "parent", fi.Parent, "uid", c.uid)
	if own != nil {
		own[fi.Name] = engine.TenantFactoryName(c.tenant, fi.Name)
		fi = shownFactory(c, fi, own)
	}
	writeJSON(w, http.StatusCreated, fi)
	return nil
}

// tenantFactoryOptions narrows a tenant's request for a factory to what
// it may ask: a sub-factory of one of its own (its own factory when o
// names no parent), kept as TENANT.NAME. A parent that is not its own is
// not found, as one that does not exist.
func (s *Server) tenantFactoryOptions(c caller, fe FactoryEngine, o engine.FactoryOptions) (engine.FactoryOptions, map[string]string, error) {
	if err := engine.CheckFactoryName(o.Name); err != nil {
		return o, nil, &FieldError{"Name", err.Error()}
	}
	if o.Name == c.tenant.Factory {
		return o, nil, &FieldError{"Name", fmt.Sprintf("%q is the name of tenant %s's own factory", o.Name, c.tenant.Name)}
	}
	fs, err := fe.ListFactories()
	if err != nil {
		return o, nil, err
	}
	own := engine.TenantFactories(c.tenant, fs)
	parent := c.tenant.Factory
	if o.Parent != "" {
		var ok bool
		if parent, ok = engine.ResolveTenantFactory(c.tenant, fs, o.Parent); !ok || engine.MadeForSpawn(parent) {
			return o, nil, fmt.Errorf("factory create %s: --parent %s: %w", o.Name, o.Parent, engine.ErrNoSuchFactory)
		}
	}
	o.Name = engine.TenantContainerName(c.tenant.Name, o.Name)
	o.Parent = parent
	return o, own, nil
}

func (s *Server) removeFactory(w http.ResponseWriter, r *http.Request) error {
	q := parseQuery(r.URL, "force")
	force := q.bool("force")
	if q.err != nil {
		return q.err
	}
	fe, err := s.factoryEngine()
	if err != nil {
		return err
	}
	c := callerOf(r)
	name := r.PathValue("name")
	if c.tenant != nil && name == c.tenant.Factory {
		return &authError{http.StatusForbidden, CodeForbidden, fmt.Sprintf(
			"factory rm %s: tenant %s's own factory is root's to remove (oak tenant rm)", name, c.tenant.Name)}
	}
	if err := fe.RemoveFactory(name, force); err != nil {
		return err
	}
	s.log.Info("factory removed", "factory", name, "force", force, "uid", c.uid)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Factories lists the factories the caller may see.
func (c *Client) Factories(ctx context.Context) ([]*engine.FactoryInfo, error) {
	var out []*engine.FactoryInfo
	return out, c.do(ctx, "GET", "/v1/factories", nil, nil, &out)
}

// CreateFactory makes a factory.
func (c *Client) CreateFactory(ctx context.Context, req FactoryCreate) (*engine.FactoryInfo, error) {
	var out engine.FactoryInfo
	if err := c.do(ctx, "POST", "/v1/factories", nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Factory describes one factory.
func (c *Client) Factory(ctx context.Context, name string) (*engine.FactoryInfo, error) {
	var out engine.FactoryInfo
	if err := c.do(ctx, "GET", "/v1/factories/"+url.PathEscape(name), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RemoveFactory removes a factory; with force, everything made from it
// goes with it (oak factory rm -f).
func (c *Client) RemoveFactory(ctx context.Context, name string, force bool) error {
	var q url.Values
	if force {
		q = url.Values{"force": {"1"}}
	}
	return c.do(ctx, "DELETE", "/v1/factories/"+url.PathEscape(name), q, nil, nil)
}

package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/oak-engine/oak/engine"
)

// Tenant management, root's alone: none of these routes but
// GET /v1/tenants/self is in tenantAccess, so a tenant (by uid or token)
// is answered 403, and oak tenant … goes through them as the other verbs
// go through the daemon.

// TenantAdminEngine is what the server needs of the engine to manage
// tenants; *engine.Engine has it.
type TenantAdminEngine interface {
	CreateTenant(o engine.TenantOptions) (*engine.Tenant, error)
	ListTenants() ([]*engine.Tenant, error)
	InspectTenant(name string) (*engine.Tenant, error)
	RemoveTenant(name string) error
	WithdrawTenant(name string) error
	NewTenantToken(name string) (string, error)
	RevokeTenantToken(name string) error
}

// TenantInfo is a tenant as the API and oak tenant inspect show it.
type TenantInfo struct {
	Name       string
	UIDs       []uint32
	Factory    string
	OwnFactory bool // made with the tenant, removed with it
	Created    time.Time
	// Token says whether the tenant has a token; the token itself is
	// shown once, when made, and never kept.
	Token        bool
	TokenCreated time.Time `json:",omitzero"`
	// Quota is its factory's quota and what it holds now; inspect and
	// self only (not the list), and only where the engine has factories.
	Quota *TenantQuotaUse `json:",omitempty"`
}

// TenantQuotaUse is a tenant's quota, its factory's, and what all its
// containers hold of it, their sub-containers at any depth included
// (their factories are sub-factories of the tenant's: docs/spawn.md).
type TenantQuotaUse struct {
	Limit engine.QuotaInfo // 0: no limit of the factory's own
	// Given is what is taken of it: the quotas of its --spawn
	// containers' factories (their --memory, --pids, --cpus and
	// --spawn-disk), and, of disk, its containers' writable layers and
	// its volumes.
	Given engine.QuotaInfo
	// MemoryBytes and Pids are what the kernel charges its factory's
	// group now: all its containers and their sub-containers together.
	MemoryBytes int64
	Pids        int64
	// Containers counts its containers, sub-containers included.
	Containers int
}

// TenantQuotaEngine is what DescribeTenant reads; *engine.Engine has it.
type TenantQuotaEngine interface {
	InspectFactory(name string) (*engine.FactoryInfo, error)
	ListContainers(f engine.Filter) ([]*engine.ContainerInfo, error)
}

// tenantInfo is t as the API shows it, with its quota and what is used
// of it where the engine has factories.
func (s *Server) tenantInfo(t *engine.Tenant) (TenantInfo, error) {
	if e, ok := s.eng.(TenantQuotaEngine); ok {
		return DescribeTenant(e, t)
	}
	return NewTenantInfo(t), nil
}

// DescribeTenant is t as oak tenant inspect shows it: with its quota and
// what all its containers, sub-containers included, hold of it.
func DescribeTenant(e TenantQuotaEngine, t *engine.Tenant) (TenantInfo, error) {
	ti := NewTenantInfo(t)
	fi, err := e.InspectFactory(t.Factory)
	if errors.Is(err, engine.ErrNoSuchFactory) {
		return ti, nil // removed by hand (oak factory rm -f): its record says no more
	}
	if err != nil {
		return ti, fmt.Errorf("tenant %s: %w", t.Name, err)
	}
	cs, err := e.ListContainers(engine.Filter{})
	if err != nil {
		return ti, err
	}
	q := &TenantQuotaUse{Limit: fi.Limit, Given: fi.Given, MemoryBytes: fi.Usage.MemoryBytes, Pids: fi.Usage.Pids}
	for _, ci := range cs {
		if ci.HostConfig.Tenant == t.Name {
			q.Containers++
		}
	}
	ti.Quota = q
	return ti, nil
}

// NewTenantInfo is t as the API shows it.
func NewTenantInfo(t *engine.Tenant) TenantInfo {
	return TenantInfo{Name: t.Name, UIDs: t.UIDs, Factory: t.Factory, OwnFactory: t.OwnFactory, Created: t.Created,
		Token: t.TokenHash != "", TokenCreated: t.TokenCreated}
}

// TenantCreate is the body of POST /v1/tenants: either Factory, an
// existing factory no tenant has, or Quota, that of a factory made for
// the tenant and named after it.
type TenantCreate struct {
	Name    string
	UIDs    []uint32
	Factory string       `json:",omitempty"`
	Quota   *TenantQuota `json:",omitempty"`
}

// TenantQuota is the quota of the factory made for a tenant; zero fields
// are unlimited, as in oak factory create.
type TenantQuota struct {
	MemoryBytes int64 `json:",omitempty"`
	Pids        int64 `json:",omitempty"`
	CPUMilli    int64 `json:",omitempty"` // thousandths of a core
	DiskBytes   int64 `json:",omitempty"`
}

// TenantToken is the answer to POST /v1/tenants/{name}/token: the new
// token, the only time it is told.
type TenantToken struct {
	Token string
}

func (s *Server) tenantRoutes() []Route {
	return []Route{
		{"GET", "/v1/tenants", s.listTenants},
		{"POST", "/v1/tenants", s.createTenant},
		{"GET", "/v1/tenants/self", s.tenantSelf},
		{"GET", "/v1/tenants/{name}", s.inspectTenant},
		{"DELETE", "/v1/tenants/{name}", s.removeTenant},
		{"POST", "/v1/tenants/{name}/token", s.newTenantToken},
		{"DELETE", "/v1/tenants/{name}/token", s.revokeTenantToken},
	}
}

var errNoTenantAdmin = errors.New("this daemon's engine manages no tenants")

func (s *Server) tenantAdmin() (TenantAdminEngine, error) {
	te, ok := s.eng.(TenantAdminEngine)
	if !ok {
		return nil, errNoTenantAdmin
	}
	return te, nil
}

func (s *Server) listTenants(w http.ResponseWriter, r *http.Request) error {
	if err := parseQuery(r.URL).err; err != nil {
		return err
	}
	te, err := s.tenantAdmin()
	if err != nil {
		return err
	}
	ts, err := te.ListTenants()
	if err != nil {
		return err
	}
	out := []TenantInfo{}
	for _, t := range ts {
		out = append(out, NewTenantInfo(t))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) createTenant(w http.ResponseWriter, r *http.Request) error {
	if err := parseQuery(r.URL).err; err != nil {
		return err
	}
	req, err := decodeBody[TenantCreate](r.Body)
	if err != nil {
		return err
	}
	te, err := s.tenantAdmin()
	if err != nil {
		return err
	}
	o := engine.TenantOptions{Name: req.Name, UIDs: req.UIDs, Factory: req.Factory}
	if q := req.Quota; q != nil {
		o.Quota = &engine.FactoryQuota{MemoryBytes: q.MemoryBytes, Pids: q.Pids, CPUMilli: q.CPUMilli, DiskBytes: q.DiskBytes}
		if err := o.Quota.Check(); err != nil {
			return &FieldError{"Quota", err.Error()}
		}
	}
	t, err := te.CreateTenant(o)
	if err != nil {
		return err
	}
	s.log.Info("tenant created", "tenant", t.Name, "uids", t.UIDs, "factory", t.Factory)
	writeJSON(w, http.StatusCreated, NewTenantInfo(t))
	return nil
}

func (s *Server) inspectTenant(w http.ResponseWriter, r *http.Request) error {
	if err := parseQuery(r.URL).err; err != nil {
		return err
	}
	te, err := s.tenantAdmin()
	if err != nil {
		return err
	}
	t, err := te.InspectTenant(r.PathValue("name"))
	if err != nil {
		return err
	}
	ti, err := s.tenantInfo(t)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ti)
	return nil
}

// tenantSelf describes the caller's own tenant: the one its uid or its
// token acts as (what a token's holder asks to learn whose it is). Root
// is no tenant: 404.
func (s *Server) tenantSelf(w http.ResponseWriter, r *http.Request) error {
	if err := parseQuery(r.URL).err; err != nil {
		return err
	}
	c := callerOf(r)
	if c.tenant == nil {
		return fmt.Errorf("tenant self: %w: uid %d is the host's administrator, not a tenant", engine.ErrNoSuchTenant, c.uid)
	}
	ti, err := s.tenantInfo(c.tenant)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ti)
	return nil
}

func (s *Server) removeTenant(w http.ResponseWriter, r *http.Request) error {
	q := parseQuery(r.URL, "force")
	force := q.bool("force")
	if q.err != nil {
		return q.err
	}
	te, err := s.tenantAdmin()
	if err != nil {
		return err
	}
	remove := te.RemoveTenant
	if force {
		remove = te.WithdrawTenant // with its containers, theirs, and its own factory
	}
	if err := remove(r.PathValue("name")); err != nil {
		return err
	}
	s.log.Info("tenant removed", "tenant", r.PathValue("name"), "force", force)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) newTenantToken(w http.ResponseWriter, r *http.Request) error {
	if err := parseQuery(r.URL).err; err != nil {
		return err
	}
	te, err := s.tenantAdmin()
	if err != nil {
		return err
	}
	tok, err := te.NewTenantToken(r.PathValue("name"))
	if err != nil {
		return err
	}
	s.log.Info("tenant token made", "tenant", r.PathValue("name")) // never the token
	writeJSON(w, http.StatusCreated, TenantToken{Token: tok})
	return nil
}

func (s *Server) revokeTenantToken(w http.ResponseWriter, r *http.Request) error {
	if err := parseQuery(r.URL).err; err != nil {
		return err
	}
	te, err := s.tenantAdmin()
	if err != nil {
		return err
	}
	if err := te.RevokeTenantToken(r.PathValue("name")); err != nil {
		return err
	}
	s.log.Info("tenant token revoked", "tenant", r.PathValue("name"))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Tenants lists the tenants (root only).
func (c *Client) Tenants(ctx context.Context) ([]TenantInfo, error) {
	var out []TenantInfo
	return out, c.do(ctx, "GET", "/v1/tenants", nil, nil, &out)
}

// CreateTenant makes a tenant (root only).
func (c *Client) CreateTenant(ctx context.Context, req TenantCreate) (*TenantInfo, error) {
	var out TenantInfo
	if err := c.do(ctx, "POST", "/v1/tenants", nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Tenant describes one tenant (root only).
func (c *Client) Tenant(ctx context.Context, name string) (*TenantInfo, error) {
	var out TenantInfo
	if err := c.do(ctx, "GET", "/v1/tenants/"+url.PathEscape(name), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RemoveTenant removes a tenant (root only).
func (c *Client) RemoveTenant(ctx context.Context, name string) error {
	return c.do(ctx, "DELETE", "/v1/tenants/"+url.PathEscape(name), nil, nil, nil)
}

// WithdrawTenant removes a tenant with its containers, their
// sub-containers, and the factory made for it with all that was made
// from it (root only; oak tenant rm -f).
func (c *Client) WithdrawTenant(ctx context.Context, name string) error {
	return c.do(ctx, "DELETE", "/v1/tenants/"+url.PathEscape(name), url.Values{"force": {"1"}}, nil, nil)
}

// NewTenantToken gives a tenant a new token, revoking its old one, and
// returns it (root only).
func (c *Client) NewTenantToken(ctx context.Context, name string) (string, error) {
	var out TenantToken
	err := c.do(ctx, "POST", "/v1/tenants/"+url.PathEscape(name)+"/token", nil, nil, &out)
	return out.Token, err
}

// RevokeTenantToken takes a tenant's token away (root only).
func (c *Client) RevokeTenantToken(ctx context.Context, name string) error {
	return c.do(ctx, "DELETE", "/v1/tenants/"+url.PathEscape(name)+"/token", nil, nil, nil)
}

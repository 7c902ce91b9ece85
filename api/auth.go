package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/oak-engine/oak/engine"
	"github.com/oak-engine/oak/storage/volume"
)

// Who may call the API, and what a tenant may reach through it.
//
// Every request carries its caller's identity: the uid the kernel reports
// for the peer of the connection (SO_PEERCRED, read once per connection
// in peerContext; nothing the client says about itself counts). uid 0 is
// the host's administrator and reaches everything. A uid that oak tenant
// create mapped to a tenant acts as that tenant. Any other uid is refused
// on every route (403), and a request whose peer is unknown too (401).
//
// A tenant reaches its own containers and volumes only, and is told of
// another's exactly as of one that does not exist: the same 404, the
// same body, because its references are resolved among its own objects
// before the engine sees them. What a tenant may reach is decided here,
// per route, and fails closed: a route this file does not open to
// tenants answers them 403 (see tenantAccess).

// peer is the credential of a connection's other end.
type peer struct {
	uid uint32
	pid int32 // its process when it connected (whom invocations are fair among)
	err error // why it is unknown
}

type peerKey struct{}

// withPeer is ctx carrying p, as the daemon's connection context does.
func withPeer(ctx context.Context, p peer) context.Context {
	return context.WithValue(ctx, peerKey{}, p)
}

// caller is who a request is from, once authorized.
type caller struct {
	uid    uint32
	tenant *engine.Tenant // nil: the host's administrator
	// parent, if set, is the container whose spawn capability the
	// request came through (see engine/spawn_linux.go): the caller is
	// then that container, acting as a tenant of its spawn factory
	// (tenant names the factory), over the sub-containers it made only.
	parent string
}

type callerKey struct{}

// callerOf is r's caller; a request that was not authorized (a handler
// called outside wrap) is nobody's: a tenant no record names, which owns
// nothing and for which the engine makes nothing.
func callerOf(r *http.Request) caller {
	if c, ok := r.Context().Value(callerKey{}).(caller); ok {
		return c
	}
	return caller{uid: ^uint32(0), tenant: &engine.Tenant{Name: "(unauthorized)"}}
}

// TenantEngine is what the server needs of the engine to serve tenants;
// *engine.Engine has it. An engine without it serves no tenants: every
// uid but 0 is refused.
type TenantEngine interface {
	TenantByUID(uid uint32) (*engine.Tenant, error)
	InspectFactory(name string) (*engine.FactoryInfo, error)
	CreateFactoryVolume(factory, name string, size int64, o engine.VolumeOptions) (*engine.VolumeInfo, error)
}

// SpawnEngine is what the server needs of the engine to serve
// containers' spawn capabilities; *engine.Engine has it. An engine
// without it serves none: a request marked as a container's is refused.
type SpawnEngine interface {
	SpawnFactoryOf(id string) (string, error)
}

// spawnAccess is what a route lets a container reach through its spawn
// capability: its sub-containers (every route under
// /v1/containers/{id}, as for tenants), making and listing them, and
// what everyone may read. No volume routes: a sub-container mounts none.
var spawnAccess = map[string]access{
	"GET /v1/health":          open,
	"GET /v1/ready":           open,
	"POST /v1/containers":     scoped,
	"GET /v1/containers":      scoped,
	"GET /v1/images":          open,
	"GET /v1/images/{ref...}": open,
}

// authError is a request refused for who sent it.
type authError struct {
	status int
	code   string
	msg    string
}

func (e *authError) Error() string { return e.msg }

// access is what a route lets a tenant reach.
type access int

const (
	closed       access = iota // refused to tenants (403)
	open                       // no object of anyone's: health, the shared image catalogue
	scoped                     // the handler narrows the answer to the tenant's own (lists, creates)
	ownContainer               // {id} must be one of the tenant's containers
	ownVolume                  // {name} must be one of the tenant's volumes
	ownFactory                 // {name} must be one of the tenant's factories (factories.go)
)

// tenantAccess is what each route lets a tenant reach, by "METHOD
// PATTERN". Every route under /v1/containers/{id} is ownContainer
// whether listed or not, so a container verb added later is confined
// without an entry; any other route missing here is closed.
var tenantAccess = map[string]access{
	"GET /v1/health":            open,
	"GET /v1/ready":             open,
	"POST /v1/containers":       scoped,
	"GET /v1/containers":        scoped,
	"GET /v1/images":            open, // images are the host's catalogue, run by all
	"GET /v1/images/{ref...}":   open,
	"GET /v1/volumes":           scoped,
	"POST /v1/volumes":          scoped,
	"GET /v1/volumes/{name}":    ownVolume,
	"DELETE /v1/volumes/{name}": ownVolume,
	"GET /v1/tenants/self":      scoped, // its own tenant's record; every other /v1/tenants route is root's

	// Its own factory and those under it, by its names (factories.go).
	"GET /v1/factories":           scoped,
	"POST /v1/factories":          scoped, // sub-factories of its own only
	"GET /v1/factories/{name}":    ownFactory,
	"DELETE /v1/factories/{name}": ownFactory,

	// A foreground run (oak run without -d), narrowed as POST
	// /v1/containers is (runOptions, then the engine's admitTenant in
	// the standby that serves it). Not open to a spawn capability.
	"POST /v1/containers/run": scoped,

	// Not listed, so closed: DELETE /v1/images/{ref...} (the catalogue
	// is the administrator's) and GET /metrics (it counts every
	// tenant's containers).
}

func routeAccess(c caller, rt Route) access {
	if strings.HasPrefix(rt.Pattern, "/v1/containers/{id}") {
		return ownContainer
	}
	if c.parent != "" {
		return spawnAccess[rt.Method+" "+rt.Pattern]
	}
	return tenantAccess[rt.Method+" "+rt.Pattern]
}

// authorize identifies r's caller and checks that it may use route rt;
// it returns r carrying the caller, with the {id} of a tenant's
// container replaced by the container's full id, or the error to answer.
func (s *Server) authorize(rt Route, r *http.Request) (*http.Request, error) {
	p, ok := r.Context().Value(peerKey{}).(peer)
	if !ok || p.err != nil {
		why := "the connection carries no peer credentials"
		if ok {
			why = p.err.Error()
		}
		return r, &authError{http.StatusUnauthorized, CodeUnauthorized, "who is calling is unknown: " + why}
	}
	c := caller{uid: p.uid}
	tok, hasToken, err := bearerToken(r.Header)
	if err != nil {
		return r, &authError{http.StatusUnauthorized, CodeUnauthorized, err.Error()}
	}
	if parent := r.Header.Get(engine.SpawnHeader); parent != "" && p.uid == 0 {
		if hasToken {
			// A container speaks with its spawn capability, or not at all.
			return r, &authError{http.StatusForbidden, CodeForbidden, "a request through a spawn capability carries no token"}
		}
		// Only a supervisor (root) sets it, for the container it serves;
		// any other peer's is ignored: it narrows nothing it could widen.
		se, ok := s.eng.(SpawnEngine)
		if !ok {
			return r, &authError{http.StatusForbidden, CodeForbidden, "this daemon serves no spawn capabilities"}
		}
		factory, err := se.SpawnFactoryOf(parent)
		if err != nil {
			return r, &authError{http.StatusForbidden, CodeForbidden, err.Error()}
		}
		c.parent = parent
		c.tenant = &engine.Tenant{Name: factory, Factory: factory}
	}
	switch {
	case hasToken:
		// The token's tenant, whoever connected: see tokenTenant.
		t, err := s.tokenTenant(tok)
		if err != nil {
			return r, err
		}
		c.tenant = t
	case p.uid != 0:
		te, ok := s.eng.(TenantEngine)
		if ok {
			t, err := te.TenantByUID(p.uid)
			if err != nil {
				return r, fmt.Errorf("authorize uid %d: %w", p.uid, err)
			}
			c.tenant = t
		}
		if c.tenant == nil {
			return r, &authError{http.StatusForbidden, CodeForbidden, fmt.Sprintf(
				"uid %d is not a tenant of this daemon: only root and the users oak tenant create maps to a tenant may use it", p.uid)}
		}
	}
	r = r.WithContext(context.WithValue(r.Context(), callerKey{}, c))
	if c.tenant == nil {
		return r, nil
	}
	switch routeAccess(c, rt) {
	case open, scoped:
		return r, nil
	case ownContainer:
		id, err := s.ownContainer(c, r.PathValue("id"))
		if err != nil {
			return r, err
		}
		r.SetPathValue("id", id)
		return r, nil
	case ownVolume:
		return r, s.ownVolume(c, r.PathValue("name"))
	case ownFactory:
		name, err := s.ownFactory(c, r.PathValue("name"))
		if err != nil {
			return r, err
		}
		r.SetPathValue("name", name)
		return r, nil
	}
	why := ""
	if strings.HasPrefix(rt.Pattern, "/v1/tenants") {
		why = ": only root manages tenants"
	}
	return r, &authError{http.StatusForbidden, CodeForbidden, fmt.Sprintf(
		"%s %s is not open to tenants (tenant %s)%s", rt.Method, rt.Pattern, c.tenant.Name, why)}
}

// ownContainer resolves ref, as the engine resolves a name, an id or an
// unambiguous id prefix, among the tenant's containers only: another's
// is not found, with the very error a container that does not exist
// gets.
func (s *Server) ownContainer(c caller, ref string) (string, error) {
	cs, err := s.eng.ListContainers(engine.Filter{})
	if err != nil {
		return "", err
	}
	var match []*engine.ContainerInfo
	for _, ci := range c.own(cs) {
		if ref == "" {
			break
		}
		if ci.Name == ref || ci.Id == ref {
			return ci.Id, nil
		}
		if strings.HasPrefix(ci.Id, ref) {
			match = append(match, ci)
		}
	}
	switch {
	case len(match) == 1:
		return match[0].Id, nil
	case len(match) > 1:
		return "", fmt.Errorf("container %s: ambiguous id prefix (%d matches)", ref, len(match))
	}
	if ref == "" {
		ref = `""`
	}
	return "", fmt.Errorf("%w: %s", engine.ErrNoSuchContainer, ref)
}

// own is the caller's containers of cs, named as the caller knows them:
// all of them, as they are, for the administrator; a tenant's own, with
// their names without its prefix (see engine.TenantContainerName).
func (c caller) own(cs []*engine.ContainerInfo) []*engine.ContainerInfo {
	if c.tenant == nil {
		return cs
	}
	out := []*engine.ContainerInfo{}
	for _, ci := range cs {
		if c.owns(ci) {
			out = append(out, c.shown(ci))
		}
	}
	return out
}

// owns reports whether ci is the (restricted) caller c's: a tenant's
// own, or the sub-containers a container made through its spawn
// capability.
func (c caller) owns(ci *engine.ContainerInfo) bool {
	if c.parent != "" {
		return ci.HostConfig.Parent == c.parent
	}
	return ci.HostConfig.Tenant != "" && ci.HostConfig.Tenant == c.tenant.Name
}

// containersFor lists the containers r's caller may see that pass
// filters (as oak ps --filter), named as the caller knows them: a
// tenant's name= filters match those names, not the records'.
func (s *Server) containersFor(r *http.Request, filters []string) ([]*engine.ContainerInfo, error) {
	c := callerOf(r)
	var byName, rest []string
	for _, f := range filters {
		if k, _, _ := strings.Cut(f, "="); c.tenant != nil && strings.EqualFold(strings.TrimSpace(k), "name") {
			byName = append(byName, f)
		} else {
			rest = append(rest, f)
		}
	}
	f, err := engine.ParseFilter(rest)
	if err != nil {
		return nil, &FieldError{"filter", err.Error()}
	}
	nf, err := engine.ParseFilter(byName)
	if err != nil {
		return nil, &FieldError{"filter", err.Error()}
	}
	cs, err := s.eng.ListContainers(f)
	if err != nil {
		return nil, err
	}
	out := []*engine.ContainerInfo{}
	for _, ci := range c.own(cs) {
		if nf.Match(ci, nil) { // name= only: no image to match
			out = append(out, ci)
		}
	}
	return out, nil
}

// shown is ci as c sees it (see own); ci is c's.
func (c caller) shown(ci *engine.ContainerInfo) *engine.ContainerInfo {
	if c.tenant == nil {
		return ci
	}
	shown := *ci
	shown.Name = engine.TenantDisplayName(c.tenant.Name, ci.Name)
	if c.parent != "" {
		// A container is told nothing of whom the host runs it for.
		shown.HostConfig.Tenant = ""
	}
	return &shown
}

// ownVolumes is the names of the tenant's volumes: its factory's.
func (s *Server) ownVolumes(c caller) ([]string, error) {
	te, ok := s.eng.(TenantEngine)
	if !ok {
		return nil, errors.New("the engine serves no tenants")
	}
	fi, err := te.InspectFactory(c.tenant.Factory)
	if err != nil {
		return nil, fmt.Errorf("tenant %s: %w", c.tenant.Name, err)
	}
	return fi.Volumes, nil
}

// ownVolume refuses a volume that is not the tenant's as one that does
// not exist.
func (s *Server) ownVolume(c caller, name string) error {
	vs, err := s.ownVolumes(c)
	if err != nil {
		return err
	}
	for _, v := range vs {
		if v == name {
			return nil
		}
	}
	return &volume.Error{Op: "inspect", Volume: name, Err: volume.ErrNotFound}
}

// runOptions maps req onto the engine's request for r's caller: a
// tenant's container is made for it, from its factory unless req names
// it (the engine refuses any other, and what else a tenant may not ask).
func runOptions(r *http.Request, req *RunRequest) (engine.RunOptions, error) {
	c := callerOf(r)
	if c.tenant != nil && req.Factory == "" {
		req.Factory = c.tenant.Factory // limits left out are the factory's
	}
	o, err := req.RunOptions()
	switch {
	case c.parent != "":
		o.Parent = c.parent // the engine narrows it (admitSpawn)
	case c.tenant != nil:
		o.Tenant = c.tenant.Name
	}
	return o, err
}

// volumesFor narrows vs to the caller's.
func (s *Server) volumesFor(r *http.Request, vs []*engine.VolumeInfo) ([]*engine.VolumeInfo, error) {
	c := callerOf(r)
	if c.tenant == nil {
		return vs, nil
	}
	own, err := s.ownVolumes(c)
	if err != nil {
		return nil, err
	}
	out := []*engine.VolumeInfo{}
	for _, v := range vs {
		for _, o := range own {
			if v.Name == o {
				out = append(out, v)
			}
		}
	}
	return out, nil
}

// createVolumeFor makes a volume for r's caller: a tenant's is made for its
// factory, its size charged to the factory's disk quota.
func (s *Server) createVolumeFor(r *http.Request, name string, size int64, o engine.VolumeOptions) (*engine.VolumeInfo, error) {
	c := callerOf(r)
	if c.tenant == nil {
		return s.eng.CreateVolume(name, size, o)
	}
	te, ok := s.eng.(TenantEngine)
	if !ok {
		return nil, errors.New("the engine serves no tenants")
	}
	// Volume names are the host's one space: a taken name is said to be
	// taken, never whose it is.
	if _, err := s.eng.InspectVolume(name); err == nil {
		return nil, fmt.Errorf("volume create %s: the name is taken (volume names are shared by the whole host); choose another", name)
	}
	return te.CreateFactoryVolume(c.tenant.Factory, name, size, o)
}

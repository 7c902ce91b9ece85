package engine

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"runtime"

	"github.com/oak-engine/oak/core"
	"github.com/oak-engine/oak/sandbox"
	"github.com/oak-engine/oak/services/netsvc"
)

// authority is one container's capability space and the core that holds it.
// The supervisor of the container owns it for the container's life: the
// task it starts is read out of the space, and the network service asks it
// about every socket, so revoking a capability here takes effect at once.
type authority struct {
	k      *core.Core
	space  core.Space
	names  []string // grant names, in the order they were given
	layers []string // a stored image's layers, as the store resolved them
}

// imageObject names the container's image in the core: a directory by its
// path, a stored image by its id (the store maps the id to its layers).
func imageObject(spec *Spec) core.Image {
	if spec.ImageID != "" {
		return core.Image{Ref: spec.ImageID}
	}
	return core.Image{Ref: spec.Image, RootFS: spec.Layers[0]}
}

// layersOf is the image's layers, top first.
func layersOf(img core.Image, stored []string) []string {
	if img.RootFS != "" {
		return []string{img.RootFS}
	}
	return stored
}

// Names of the capabilities in a container's space.
const (
	capRoot  = "/"
	capLog   = "log"
	capSpawn = "spawn"
)

// hostQuota is the root factory: what this host can give all containers.
func hostQuota() core.Quota {
	return core.Quota{
		MemoryBytes: math.MaxInt64,
		Tasks:       math.MaxInt64,
		CPUMilli:    uint64(runtime.NumCPU()) * 1000,
		DiskBytes:   math.MaxInt64,
		Caps:        1 << 20,
	}
}

// maxCaps bounds the capabilities one container may hold.
const maxCaps = 1024

// grantAuthority makes the container's space from a factory carved out of
// the host's quota, and gives it exactly what spec names: its image (read
// and execute), its log, the right to spawn processes inside itself, and
// one capability per -p and --egress. Each is minted where the operator's
// request enters (the root space) and derived into the container's space,
// so a revocation of the minted one reaches the container's copy.
func grantAuthority(spec *Spec) (*authority, error) {
	k, err := core.New(hostQuota())
	if err != nil {
		return nil, err
	}
	rs, rh := k.Root()
	q := core.Quota{
		MemoryBytes: unlimited(spec.Limits.MemoryBytes),
		Tasks:       unlimited(spec.Limits.Pids),
		CPUMilli:    uint64(spec.Limits.CPUMilli),
		DiskBytes:   uint64(spec.Limits.TmpfsBytes),
		Caps:        maxCaps,
	}
	if q.CPUMilli == 0 {
		q.CPUMilli = hostQuota().CPUMilli
	}
	if q.DiskBytes == 0 {
		q.DiskBytes = sandbox.DefaultTmpfsBytes
	}
	fh, err := k.NewFactory(rs, rh, q, rs, "container")
	if err != nil {
		return nil, err
	}
	cs, err := k.NewSpace(rs, fh)
	if err != nil {
		return nil, err
	}
	a := &authority{k: k, space: cs, layers: spec.Layers}
	give := func(name string, obj core.Object, r core.Rights) error {
		h, err := k.Mint(rs, name, obj, r|core.RightDerive)
		if err != nil {
			return err
		}
		_, err = k.Derive(rs, h, r, cs, name)
		return err
	}
	var errs []error
	if len(spec.Layers) > 0 { // the network service's copy holds only grants
		errs = append(errs,
			give(capRoot, imageObject(spec), core.RightRead|core.RightExecute),
			give(capLog, core.Log{}, core.RightWrite),
			give(capSpawn, core.Spawn{}, core.RightSpawn))
	}
	for _, v := range spec.Volumes {
		r := core.RightRead | core.RightWrite
		if v.ReadOnly {
			r = core.RightRead
		}
		// Named by where it appears: the space is the container's name space.
		errs = append(errs, give(v.Target, core.Volume{Name: v.Name}, r))
	}
	for _, p := range spec.Publish {
		l, err := core.ParseListen(p)
		if err == nil {
			err = give(grantName(l), l, core.RightListen)
			a.names = append(a.names, grantName(l))
		}
		errs = append(errs, err)
	}
	for _, e := range spec.Egress {
		g, err := core.ParseEgress(e)
		if err == nil {
			err = give(grantName(g), g, core.RightConnect)
			a.names = append(a.names, grantName(g))
		}
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return a, nil
}

func unlimited(v int64) uint64 {
	if v <= 0 {
		return math.MaxInt64
	}
	return uint64(v)
}

// grantName is how a network grant is named in a space and by oak revoke:
// "publish 127.0.0.1:8080:80/tcp", "egress 10.0.0.0/8:443".
func grantName(o core.Object) string {
	if _, ok := o.(core.Listen); ok {
		return "publish " + o.String()
	}
	return "egress " + o.String()
}

// task reads what the sandbox needs out of the space: the image it may
// execute and the quota of the factory it was made from. A space without
// them cannot start.
func (a *authority) task() (layers []string, l sandbox.Limits, err error) {
	root, err := a.k.LookupName(a.space, capRoot, core.RightRead|core.RightExecute)
	if err != nil {
		return nil, l, fmt.Errorf("container root: %w", err)
	}
	if _, err := a.k.LookupName(a.space, capSpawn, core.RightSpawn); err != nil {
		return nil, l, fmt.Errorf("container command: %w", err)
	}
	q, err := a.k.SpaceQuota(a.space)
	if err != nil {
		return nil, l, err
	}
	bounded := func(v uint64) int64 {
		if v >= math.MaxInt64 {
			return 0
		}
		return int64(v)
	}
	l = sandbox.Limits{MemoryBytes: bounded(q.MemoryBytes), Pids: bounded(q.Tasks), TmpfsBytes: bounded(q.DiskBytes)}
	if q.CPUMilli < hostQuota().CPUMilli {
		l.CPUMilli = int64(q.CPUMilli)
	}
	return layersOf(root.Object.(core.Image), a.layers), l, nil
}

// volumes lists the volumes the space holds, named by their targets; one
// without the write right is mounted read-only.
func (a *authority) volumes() []VolumeMount {
	var ms []VolumeMount
	for _, c := range a.caps() {
		if v, ok := c.Object.(core.Volume); ok && c.Rights.Has(core.RightRead) {
			ms = append(ms, VolumeMount{Name: v.Name, Target: c.Name, ReadOnly: !c.Rights.Has(core.RightWrite)})
		}
	}
	return ms
}

// caps lists the live capabilities of the container's space.
func (a *authority) caps() []core.Cap {
	cs, _ := a.k.Caps(a.space)
	return cs
}

// HasNetwork reports whether the container was given any network grant.
func (a *authority) hasNetwork() bool { return len(a.names) > 0 }

// revoke withdraws the named grant from the container's space, with
// everything derived from it; a grant it no longer holds is an error.
func (a *authority) revoke(name string) error {
	c, err := a.k.LookupName(a.space, name, 0)
	if err != nil {
		return fmt.Errorf("revoke %q: %w", name, err)
	}
	return a.k.Delete(a.space, c.Handle)
}

// Listen implements netsvc.Grants: the host addresses, per family, a bind
// of (proto, container port) is published on (see hostAddrs). Of several
// grants of one container port, the first given wins in each family.
func (a *authority) Listen(proto string, port uint16) (netsvc.Published, bool) {
	var p netsvc.Published
	for _, c := range a.caps() {
		l, ok := c.Object.(core.Listen)
		if !ok || !c.Rights.Has(core.RightListen) || l.Proto != proto || l.ContainerPort != port {
			continue
		}
		for _, h := range hostAddrs(l) {
			switch {
			case h.Addr().Is4() && !p.V4.IsValid():
				p.V4 = h
			case h.Addr().Is6() && !p.V6.IsValid():
				p.V6 = h
			}
		}
	}
	return p, p.V4.IsValid() || p.V6.IsValid()
}

// Egress implements netsvc.Grants: may the container reach dst with proto?
func (a *authority) Egress(proto string, dst netip.AddrPort) bool {
	for _, c := range a.caps() {
		e, ok := c.Object.(core.Egress)
		if !ok || !c.Rights.Has(core.RightConnect) || (e.Proto != "" && e.Proto != proto) {
			continue
		}
		if e.Any || (e.Prefix.Contains(dst.Addr().Unmap()) && (e.Port == 0 || e.Port == dst.Port())) {
			return true
		}
	}
	return false
}

// Any implements netsvc.Grants: does the container hold any grant for proto?
func (a *authority) Any(proto string) bool {
	for _, c := range a.caps() {
		switch o := c.Object.(type) {
		case core.Listen:
			if o.Proto == proto && c.Rights.Has(core.RightListen) {
				return true
			}
		case core.Egress:
			if (o.Proto == "" || o.Proto == proto) && c.Rights.Has(core.RightConnect) {
				return true
			}
		}
	}
	return false
}

// Inbound implements netsvc.Grants: replies from the egress destinations
// and datagrams to the published host addresses.
func (a *authority) Inbound(proto string) netsvc.Inbound {
	var in netsvc.Inbound
	for _, c := range a.caps() {
		switch o := c.Object.(type) {
		case core.Listen:
			if o.Proto == proto && c.Rights.Has(core.RightListen) {
				in.To = append(in.To, hostAddrs(o)...)
			}
		case core.Egress:
			if (o.Proto == "" || o.Proto == proto) && c.Rights.Has(core.RightConnect) {
				if o.Any {
					in.AnySource = true
				}
				in.From = append(in.From, netsvc.Source{Prefix: o.Prefix, Port: o.Port})
			}
		}
	}
	return in
}

// hostAddrs lists the host addresses and port a listen grant publishes on:
// with no host IP, the wildcard of each family; an IPv4-mapped host IP is
// IPv4. A grant whose host port is still 0 publishes nothing.
func hostAddrs(l core.Listen) []netip.AddrPort {
	if l.HostPort == 0 {
		return nil
	}
	if !l.HostIP.IsValid() {
		return []netip.AddrPort{
			netip.AddrPortFrom(netip.IPv4Unspecified(), l.HostPort),
			netip.AddrPortFrom(netip.IPv6Unspecified(), l.HostPort),
		}
	}
	return []netip.AddrPort{netip.AddrPortFrom(l.HostIP.Unmap(), l.HostPort)}
}

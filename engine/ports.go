package engine

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/oak-engine/oak/core"
)

// Port is one host address a container port is published on, as oak port
// and oak ps show it.
type Port struct {
	Proto         string // "tcp" or "udp"
	ContainerPort uint16
	Host          netip.AddrPort // a grant without a host IP is shown once per family
}

// Private is the container side, docker's "80/tcp".
func (p Port) Private() string { return strconv.Itoa(int(p.ContainerPort)) + "/" + p.Proto }

// String is docker's ps form, "0.0.0.0:49153->80/tcp".
func (p Port) String() string { return p.Host.String() + "->" + p.Private() }

// Ports lists the host addresses a running container's ports are published
// on, in the order of its -p flags; a stopped container publishes nothing.
func (e *Engine) Ports(ref string) ([]Port, error) {
	c, err := e.Get(ref)
	if err != nil {
		return nil, err
	}
	return e.PortsOf(c)
}

// PortsOf is Ports for a container the caller has listed.
func (e *Engine) PortsOf(c *Container) ([]Port, error) {
	if c.Status != StatusRunning {
		return nil, nil
	}
	ls, err := e.publishedBy(c.ID)
	if err != nil {
		return nil, err
	}
	var ps []Port
	for _, l := range ls {
		for _, h := range hostAddrs(l) {
			ps = append(ps, Port{Proto: l.Proto, ContainerPort: l.ContainerPort, Host: h})
		}
	}
	return ps, nil
}

// publishedBy reads the listen grants in container id's record.
func (e *Engine) publishedBy(id string) ([]core.Listen, error) {
	var spec Spec
	if err := readJSON(e.specPath(id), &spec); err != nil {
		return nil, err
	}
	var ls []core.Listen
	for _, p := range spec.Publish {
		if l, err := core.ParseListen(p); err == nil {
			ls = append(ls, l)
		}
	}
	return ls, nil
}

// ParsePortFilter parses the PORT[/PROTO] argument of oak port.
func ParsePortFilter(s string) (port uint16, proto string, err error) {
	num, proto, _ := strings.Cut(s, "/")
	if proto == "" {
		proto = "tcp"
	}
	n, err := strconv.ParseUint(num, 10, 16)
	if err != nil || n == 0 || (proto != "tcp" && proto != "udp") {
		return 0, "", fmt.Errorf("invalid port %q: want PORT[/tcp|/udp]", s)
	}
	return uint16(n), proto, nil
}

package engine

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/oak-engine/oak/core"
)

// pickHostPorts gives every grant of publish that names no host port
// (-p PORT, -p IP::PORT) a host port: one the kernel has free now on the
// grant's host addresses (both families when it names no address), that no
// other grant of this container or of a live container (others) holds.
// It returns publish with those grants written out with their ports, to be
// recorded, so that oak ps, port and grants show them and later containers
// see them taken. The port stays free only until the container binds it:
// another host program may take it first, as with docker.
func (e *Engine) pickHostPorts(publish []string, others []*Container) ([]string, error) {
	var taken []core.Listen
	for _, o := range others {
		if o.Status == StatusExited {
			continue
		}
		ls, err := e.publishedBy(o.ID)
		if err != nil {
			continue // a record being created or removed publishes nothing yet
		}
		taken = append(taken, ls...)
	}
	out := append([]string(nil), publish...)
	var mine []core.Listen
	for _, p := range publish {
		if l, err := core.ParseListen(p); err == nil && l.HostPort != 0 {
			mine = append(mine, l)
		}
	}
	for i, p := range publish {
		l, err := core.ParseListen(p)
		if err != nil || l.HostPort != 0 {
			continue
		}
		for try := 0; ; try++ {
			if try == 32 {
				return nil, fmt.Errorf("-p %s: no free host port found", p)
			}
			port, err := freeHostPort(l)
			if err != nil {
				return nil, fmt.Errorf("-p %s: pick a host port: %w", p, err)
			}
			l.HostPort = port
			if !conflictsAny(l, taken) && !conflictsAny(l, mine) {
				break
			}
		}
		mine = append(mine, l)
		out[i] = l.String()
	}
	return out, nil
}

func conflictsAny(l core.Listen, ls []core.Listen) bool {
	for _, o := range ls {
		if conflicts(l, o) {
			return true
		}
	}
	return false
}

// freeHostPort asks the kernel for a port free on l's host addresses: it
// binds a socket of l's protocol to port 0 there (an IPv6 socket taking
// IPv4 too when l names no address, so the port is free in both families)
// and returns the port it got.
func freeHostPort(l core.Listen) (uint16, error) {
	typ := unix.SOCK_STREAM
	if l.Proto == "udp" {
		typ = unix.SOCK_DGRAM
	}
	ip := l.HostIP.Unmap()
	fam, v6only := unix.AF_INET6, 1
	var sa unix.Sockaddr
	switch {
	case !ip.IsValid():
		v6only, sa = 0, &unix.SockaddrInet6{}
	case ip.Is4():
		fam, sa = unix.AF_INET, &unix.SockaddrInet4{Addr: ip.As4()}
	default:
		sa = &unix.SockaddrInet6{Addr: ip.As16()}
	}
	fd, err := unix.Socket(fam, typ|unix.SOCK_CLOEXEC, 0)
	if err == unix.EAFNOSUPPORT && !ip.IsValid() {
		// A host without IPv6: the IPv4 wildcard is all there is.
		fam, sa = unix.AF_INET, &unix.SockaddrInet4{}
		fd, err = unix.Socket(fam, typ|unix.SOCK_CLOEXEC, 0)
	}
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	if fam == unix.AF_INET6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v6only); err != nil {
			return 0, err
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return 0, fmt.Errorf("bind port 0: %w", err)
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		return 0, err
	}
	switch a := got.(type) {
	case *unix.SockaddrInet4:
		return uint16(a.Port), nil
	case *unix.SockaddrInet6:
		return uint16(a.Port), nil
	}
	return 0, fmt.Errorf("getsockname: unexpected address %T", got)
}

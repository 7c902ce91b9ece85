package engine

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/oak-engine/oak/core"
)

// parseGrants checks every -p and --egress argument and returns the listen
// grants, so a bad flag is refused before anything is written or started.
func parseGrants(publish, egress []string) ([]core.Listen, error) {
	var ls []core.Listen
	var errs []error
	for _, p := range publish {
		l, err := core.ParseListen(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, o := range ls {
			if conflicts(o, l) {
				errs = append(errs, fmt.Errorf("-p %s: host port %d/%s is published twice", p, l.HostPort, l.Proto))
			}
		}
		ls = append(ls, l)
	}
	for _, e := range egress {
		if _, err := core.ParseEgress(e); err != nil {
			errs = append(errs, err)
		}
	}
	return ls, errors.Join(errs...)
}

// conflicts reports whether two listen grants would publish on the same
// host port: same protocol and port, and in one address family the same
// address or a wildcard (a grant without a host IP publishes both
// families; 0.0.0.0 and [::] one each).
func conflicts(a, b core.Listen) bool {
	if a.Proto != b.Proto || a.HostPort == 0 || a.HostPort != b.HostPort {
		return false
	}
	for _, x := range hostAddrs(a) {
		for _, y := range hostAddrs(b) {
			if x.Addr().Is4() == y.Addr().Is4() &&
				(x.Addr().IsUnspecified() || y.Addr().IsUnspecified() || x.Addr() == y.Addr()) {
				return true
			}
		}
	}
	return false
}

// checkPorts refuses listens that a live container o already publishes.
func (e *Engine) checkPorts(o *Container, listens []core.Listen) error {
	if len(listens) == 0 {
		return nil
	}
	var spec Spec
	if err := readJSON(filepath.Join(e.dir(o.ID), "spec.json"), &spec); err != nil {
		return nil // a record being created or removed publishes nothing yet
	}
	for _, p := range spec.Publish {
		theirs, err := core.ParseListen(p)
		if err != nil {
			continue
		}
		for _, l := range listens {
			if conflicts(l, theirs) {
				return fmt.Errorf("-p %s: host port %d/%s is already published by container %s", l, l.HostPort, l.Proto, o.Name)
			}
		}
	}
	return nil
}

package engine

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/oak-engine/oak/storage/image"
)

// Filter selects containers as docker ps --filter does: a container
// passes when, for every key given, it matches at least one of that key's
// values (the same key ORs, different keys AND). The zero Filter passes
// every container.
type Filter struct {
	values map[string][]string
	names  map[string]*regexp.Regexp // name= values, compiled
}

// filterKeys are the keys ParseFilter accepts, with what each value means.
var filterKeys = map[string]string{
	"id":       "a prefix of the container's id",
	"name":     "a regular expression matched against the name (a plain word matches as a substring)",
	"status":   "created, running, exited or broken",
	"label":    "KEY or KEY=VALUE",
	"ancestor": "an image name[:tag], id or id prefix the container was made from",
}

// ParseFilter reads --filter arguments, each KEY=VALUE. It refuses an
// unknown key, an empty value, a status Oak does not have and a name that
// is not a regular expression, naming the argument.
func ParseFilter(args []string) (Filter, error) {
	f := Filter{values: map[string][]string{}, names: map[string]*regexp.Regexp{}}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if !ok || v == "" {
			return Filter{}, fmt.Errorf("invalid --filter %q: want KEY=VALUE", a)
		}
		if _, known := filterKeys[k]; !known {
			return Filter{}, fmt.Errorf("invalid --filter %q: unknown key %q (want one of %s)",
				a, k, strings.Join(slices.Sorted(maps.Keys(filterKeys)), ", "))
		}
		switch k {
		case "status":
			switch v {
			case StatusCreated, StatusRunning, StatusRestarting, StatusExited, StatusBroken:
			default:
				return Filter{}, fmt.Errorf("invalid --filter %q: status is %s", a, filterKeys[k])
			}
		case "name":
			re, err := regexp.Compile(v)
			if err != nil {
				return Filter{}, fmt.Errorf("invalid --filter %q: %w", a, err)
			}
			f.names[v] = re
		}
		f.values[k] = append(f.values[k], v)
	}
	return f, nil
}

// imageMatcher tells whether a container's image (the ref its run named
// and the stored image's id) is the image an ancestor value names.
type imageMatcher func(value, ref, id string) bool

// Match reports whether c passes the filter; sameImage decides ancestor=.
func (f Filter) Match(c *ContainerInfo, sameImage imageMatcher) bool {
	for k, vs := range f.values {
		if !slices.ContainsFunc(vs, func(v string) bool { return f.matchOne(k, v, c, sameImage) }) {
			return false
		}
	}
	return true
}

func (f Filter) matchOne(k, v string, c *ContainerInfo, sameImage imageMatcher) bool {
	switch k {
	case "id":
		return strings.HasPrefix(c.Id, v)
	case "name":
		return f.names[v].MatchString(c.Name)
	case "status":
		return c.State.Status == v
	case "label":
		key, want, hasValue := strings.Cut(v, "=")
		got, ok := c.Config.Labels[key]
		return ok && (!hasValue || got == want)
	case "ancestor":
		return sameImage(v, c.Config.Image, c.Image)
	}
	return false
}

// ancestors returns the matcher for ancestor= values: a value names the
// container's image when it is the reference the run used, the same tag
// once normalised (alpine = docker.io/library/alpine:latest), or resolves
// in the store to the image the container was made from.
func (e *Engine) ancestors(f Filter) imageMatcher {
	ids := map[string]string{}
	if vs := f.values["ancestor"]; len(vs) > 0 {
		if store, err := e.Images(); err == nil {
			for _, v := range vs {
				if img, err := store.Get(v); err == nil {
					ids[v] = img.ID
				}
			}
		}
	}
	return func(value, ref, id string) bool {
		if value == ref || (id != "" && ids[value] == id) {
			return true
		}
		a, errA := image.NormalizeTag(value)
		b, errB := image.NormalizeTag(ref)
		return errA == nil && errB == nil && a == b
	}
}

// ListContainers describes every container that passes f, newest first
// (as docker ps lists them), after reconciling the records with the host.
func (e *Engine) ListContainers(f Filter) ([]*ContainerInfo, error) {
	cs, err := e.List()
	if err != nil {
		return nil, err
	}
	match := e.ancestors(f)
	var out []*ContainerInfo
	for i := len(cs) - 1; i >= 0; i-- {
		if ci := e.containerInfo(cs[i]); f.Match(ci, match) {
			out = append(out, ci)
		}
	}
	return out, nil
}

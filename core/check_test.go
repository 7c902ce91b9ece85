package core

import (
	"fmt"
)

// check recomputes, from the capabilities alone, everything the core keeps
// incrementally, and returns the first invariant that does not hold:
//
//   - every live capability's rights are meaningful for its kind and are a
//     subset of its parent's, and its object is its parent's, a part of it
//     (Within), or a sub-factory of it;
//   - no live capability has a dead ancestor, and parent and child links
//     agree;
//   - an object's reference count is its number of live capabilities, and an
//     object with none is destroyed;
//   - every factory's usage is the sum of its sub-factories' limits plus one
//     capability per live capability in its spaces, and is within its limit
//     in every resource (so no factory ever hands out more than it has, and
//     the sum over the whole tree stays within the root's quota);
//   - the root factory's limit is still root;
//   - names and handles of every space agree.
func (k *Core) check(root Quota) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	refs := make(map[*object]int)
	caps := make(map[*object]uint64) // factory -> live capabilities in its spaces
	factories := make(map[*object]bool)
	for id, sp := range k.spaces {
		if sp.id != id || sp.dead {
			return fmt.Errorf("space %d: listed as %d, dead=%v", sp.id, id, sp.dead)
		}
		if sp.factory.dead || !sp.factory.spaces[sp] {
			return fmt.Errorf("space %d: charged to a dead or unaware factory", id)
		}
		factories[sp.factory] = true
		for name, h := range sp.names {
			if c, ok := sp.slots[h]; !ok || c.name != name || name == "" {
				return fmt.Errorf("space %d: name %q bound to handle %d which is not it", id, name, h)
			}
		}
		for h, c := range sp.slots {
			if c.h != h || c.sp != sp || h > sp.last || h == 0 {
				return fmt.Errorf("space %d handle %d: slot holds handle %d of space %d", id, h, c.h, c.sp.id)
			}
			if c.dead {
				if c.obj != nil || c.parent != nil || len(c.children) != 0 {
					return fmt.Errorf("space %d handle %d: tombstone still linked", id, h)
				}
				continue
			}
			if c.obj == nil || c.obj.dead {
				return fmt.Errorf("space %d handle %d: live capability to a destroyed object", id, h)
			}
			kind := c.obj.desc.Kind()
			if !kind.Rights().Has(c.rights) {
				return fmt.Errorf("space %d handle %d: rights %v on a %v", id, h, c.rights, kind)
			}
			if c.name != "" && sp.names[c.name] != h {
				return fmt.Errorf("space %d handle %d: name %q not bound to it", id, h, c.name)
			}
			for a, child := c.parent, c; a != nil; a, child = a.parent, a {
				if a.dead || a.sp.dead || a.sp.slots[a.h] != a {
					return fmt.Errorf("space %d handle %d: ancestor space %d handle %d is revoked", id, h, a.sp.id, a.h)
				}
				if !a.rights.Has(child.rights) || !a.children[child] {
					return fmt.Errorf("space %d handle %d: %v derived from %v, or unlinked", id, h, child.rights, a.rights)
				}
			}
			if c.parent != nil && c.parent.obj != c.obj && !(kind == KindFactory && c.obj.parent == c.parent.obj) &&
				!Within(c.obj.desc, c.parent.obj.desc) {
				return fmt.Errorf("space %d handle %d: child of a capability to an unrelated object", id, h)
			}
			for child := range c.children {
				if child.parent != c || child.dead {
					return fmt.Errorf("space %d handle %d: has a dead or foreign child", id, h)
				}
			}
			refs[c.obj]++
			caps[sp.factory]++
			if kind == KindFactory {
				factories[c.obj] = true
			}
		}
	}
	for o, n := range refs {
		if o.refs != n {
			return fmt.Errorf("%v %v: %d references counted, %d live capabilities", o.desc.Kind(), o.desc, o.refs, n)
		}
	}
	roots := 0
	for f := range factories {
		if refs[f] == 0 {
			return fmt.Errorf("factory %v: alive with no capabilities", f.limit)
		}
		if f.desc != (Factory{Quota: f.limit}) {
			return fmt.Errorf("factory %v: description says %v", f.limit, f.desc)
		}
		want := Quota{Caps: caps[f]}
		for sub := range f.subs {
			if sub.parent != f || sub.dead || refs[sub] == 0 {
				return fmt.Errorf("factory %v: sub-factory %v is dead, unreferenced or foreign", f.limit, sub.limit)
			}
			want = want.plus(sub.limit)
		}
		if f.used != want {
			return fmt.Errorf("factory %v: usage %v, recomputed %v", f.limit, f.used, want)
		}
		if err := f.used.exceeds(f.limit); err != nil {
			return fmt.Errorf("factory %v: uses more than its limit: %v", f.limit, err)
		}
		if f.parent == nil {
			roots++
			if f.limit != root {
				return fmt.Errorf("root factory: limit %v, created with %v", f.limit, root)
			}
		} else if f.parent.dead || !f.parent.subs[f] {
			return fmt.Errorf("factory %v: parent dead or unaware of it", f.limit)
		}
	}
	if roots > 1 {
		return fmt.Errorf("%d root factories", roots)
	}
	return nil
}

// Package core holds Oak's capabilities: one capability space per container,
// rights on every capability, a derivation tree through which revocation
// reaches every copy, and factories that hand out quota.
//
// It follows Zircon's handles and seL4's capability derivation tree. An
// object (an image, a volume, a listen or egress grant, a factory, a spawn
// right, a log stream) is reached only through a capability in a [Space],
// named there by a [Handle]. [Core.Derive] copies a capability into a space
// keeping or dropping rights, and records the copy as a child of the
// original; [Core.DeriveWithin] does the same for a part of the object (a
// narrower egress grant); [Core.Revoke] deletes every descendant. Authority
// enters only by
// [New] (the root factory) and [Core.Mint] (the engine acting on operator
// input); everything else attenuates it.
//
// Every capability a space holds is charged to the factory the space was
// made from, and a factory gives quota to a sub-factory only out of what it
// has left. Destroying a factory returns its quota to its parent and
// destroys everything made from it.
//
// The package is pure Go: it makes no system calls and has no global state.
// A [Core] is safe for concurrent use.
package core

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Errors returned, wrapped with the operation and its input, by [Core]
// methods. Test for them with errors.Is.
var (
	ErrNotFound         = errors.New("not found")         // no such space, handle or name
	ErrRevoked          = errors.New("revoked")           // the capability was revoked
	ErrAccessDenied     = errors.New("access denied")     // the capability lacks a right the operation needs
	ErrRightsEscalation = errors.New("rights escalation") // more rights were requested than are held
	ErrQuotaExceeded    = errors.New("quota exceeded")    // a factory has too little left
	ErrExists           = errors.New("name in use")       // the space already has a capability of that name
	ErrInvalid          = errors.New("invalid argument")  // malformed object, rights or request
)

// Space identifies a capability space. Spaces are held by the engine, never
// by containers; a container sees only the handles of its own space.
type Space uint64

// Handle names a capability within one space. It is meaningless in any other
// space, and a space never reuses a handle, so a stale handle cannot come to
// name a different capability.
type Handle uint64

// Cap is a snapshot of one capability, as returned by lookups.
type Cap struct {
	Handle Handle
	Name   string // "" if unnamed
	Rights Rights
	Object Object
}

// Core owns every space, capability and factory, and the derivation tree
// between capabilities. The zero value is not usable; call [New].
type Core struct {
	mu        sync.Mutex
	spaces    map[Space]*space
	lastSpace Space
	root      Space
	rootCap   Handle
}

type space struct {
	id      Space
	factory *object // charged for every live capability held here
	slots   map[Handle]*capability
	names   map[string]Handle
	last    Handle
	dead    bool
}

type object struct {
	desc Object
	refs int // live capabilities referring to it
	dead bool

	// Factories only.
	limit  Quota
	used   Quota // sub-factories' limits, plus one Caps per live capability in spaces
	parent *object
	subs   map[*object]bool
	spaces map[*space]bool
}

type capability struct {
	obj      *object
	rights   Rights
	sp       *space
	h        Handle
	name     string
	parent   *capability // nil for minted capabilities and the root factory
	children map[*capability]bool
	dead     bool // a tombstone: lookups report ErrRevoked until Delete
}

// New returns a Core holding one space, charged to a root factory with the
// given quota; that space holds, under the name "factory", a capability to
// the root factory with every factory right. [Core.Root] returns both. New
// refuses a quota of zero capabilities, which could not hold the root
// capability.
func New(root Quota) (*Core, error) {
	if root.Caps == 0 {
		return nil, fmt.Errorf("new core with quota %v: %w: no room for the root capability", root, ErrQuotaExceeded)
	}
	k := &Core{spaces: make(map[Space]*space)}
	f := newFactory(root, nil)
	sp := k.newSpace(f)
	c, _ := k.insert(sp, "factory", f, KindFactory.Rights(), nil)
	k.root, k.rootCap = sp.id, c.h
	return k, nil
}

// Root returns the space made by [New] and the handle of the root factory
// capability in it.
func (k *Core) Root() (Space, Handle) { return k.root, k.rootCap }

// Mint creates a new object described by obj and its first capability, with
// rights r, in space s under name (which may be empty). It is the only way
// authority other than quota enters the core, and is for the engine acting on
// operator input, never for a request from a container. Mint refuses
// factories (see [Core.NewFactory]), malformed descriptions, rights that mean
// nothing for the object's kind, a name already in use, and a space whose
// factory has no capabilities left.
func (k *Core) Mint(s Space, name string, obj Object, r Rights) (Handle, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	// Each method names its operation for its errors only: a host core
	// of thousands of capabilities is built without formatting any.
	op := func() string { return fmt.Sprintf("mint %v %q in space %d", kindOf(obj), name, s) }
	switch {
	case obj == nil:
		return 0, fmt.Errorf("%s: %w: no object", op(), ErrInvalid)
	case obj.Kind() == KindFactory:
		return 0, fmt.Errorf("%s: %w: factories are made from factories", op(), ErrInvalid)
	case !obj.Kind().Rights().Has(r):
		return 0, fmt.Errorf("%s: %w: rights %v not meaningful for %v", op(), ErrInvalid, r&^obj.Kind().Rights(), obj.Kind())
	}
	if err := obj.validate(); err != nil {
		return 0, fmt.Errorf("%s: %w: %v", op(), ErrInvalid, err)
	}
	sp, err := k.space(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op(), err)
	}
	c, err := k.insert(sp, name, &object{desc: obj}, r, nil)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op(), err)
	}
	return c.h, nil
}

// Derive copies the capability h of space from into space into, under name
// and with rights r, and returns the new handle. The copy is a child of the
// original in the derivation tree, so revoking the original revokes it.
// Derive refuses unless the original holds RightDerive and every right in r
// (ErrRightsEscalation); it also refuses a name in use and a target space
// whose factory has no capabilities left.
func (k *Core) Derive(from Space, h Handle, r Rights, into Space, name string) (Handle, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	op := func() string { return fmt.Sprintf("derive space %d handle %d as %v into space %d", from, h, r, into) }
	src, err := k.lookup(from, h, RightDerive)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op(), err)
	}
	if !src.rights.Has(r) {
		return 0, fmt.Errorf("%s: %w: %v not held", op(), ErrRightsEscalation, r&^src.rights)
	}
	dst, err := k.space(into)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op(), err)
	}
	c, err := k.insert(dst, name, src.obj, r, src)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op(), err)
	}
	return c.h, nil
}

// DeriveWithin is [Core.Derive] of a part of the original's object: the
// copy refers to obj, which must lie within what the original refers to
// ([Within]: an egress grant to a narrower prefix, one port of any, one
// protocol of both; any other kind only to the same object). The copy is
// a child of the original in the derivation tree, so revoking the
// original revokes it, and the original's holder may revoke it. It
// refuses what Derive refuses, a malformed obj, and an obj of another
// kind or not within the original's (ErrRightsEscalation).
func (k *Core) DeriveWithin(from Space, h Handle, r Rights, obj Object, into Space, name string) (Handle, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	op := func() string {
		return fmt.Sprintf("derive space %d handle %d as %v %v into space %d", from, h, r, kindOf(obj), into)
	}
	src, err := k.lookup(from, h, RightDerive)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op(), err)
	}
	switch {
	case !src.rights.Has(r):
		return 0, fmt.Errorf("%s: %w: %v not held", op(), ErrRightsEscalation, r&^src.rights)
	case obj == nil:
		return 0, fmt.Errorf("%s: %w: no object", op(), ErrInvalid)
	}
	if err := obj.validate(); err != nil {
		return 0, fmt.Errorf("%s: %w: %v", op(), ErrInvalid, err)
	}
	if !Within(obj, src.obj.desc) {
		return 0, fmt.Errorf("%s: %w: %v is not within %v", op(), ErrRightsEscalation, obj, src.obj.desc)
	}
	dst, err := k.space(into)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op(), err)
	}
	o := src.obj
	if obj != src.obj.desc {
		o = &object{desc: obj}
	}
	c, err := k.insert(dst, name, o, r, src)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op(), err)
	}
	return c.h, nil
}

// Lookup returns the capability h of space s if it holds every right in
// need. It refuses a missing space or handle (ErrNotFound), a revoked
// capability (ErrRevoked) and missing rights (ErrAccessDenied).
func (k *Core) Lookup(s Space, h Handle, need Rights) (Cap, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	c, err := k.lookup(s, h, need)
	if err != nil {
		return Cap{}, fmt.Errorf("lookup space %d handle %d for %v: %w", s, h, need, err)
	}
	return c.snapshot(), nil
}

// LookupName is [Core.Lookup] by the capability's name in s, e.g. "/data".
func (k *Core) LookupName(s Space, name string, need Rights) (Cap, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	op := func() string { return fmt.Sprintf("lookup %q in space %d for %v", name, s, need) }
	sp, err := k.space(s)
	if err != nil {
		return Cap{}, fmt.Errorf("%s: %w", op(), err)
	}
	h, ok := sp.names[name]
	if !ok {
		return Cap{}, fmt.Errorf("%s: %w: no such name", op(), ErrNotFound)
	}
	c, err := k.lookup(s, h, need)
	if err != nil {
		return Cap{}, fmt.Errorf("%s: %w", op(), err)
	}
	return c.snapshot(), nil
}

// Caps returns the live capabilities of space s in handle order. It refuses
// a missing space.
func (k *Core) Caps(s Space) ([]Cap, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	sp, err := k.space(s)
	if err != nil {
		return nil, fmt.Errorf("list space %d: %w", s, err)
	}
	var caps []Cap
	for _, c := range sp.slots {
		if !c.dead {
			caps = append(caps, c.snapshot())
		}
	}
	slices.SortFunc(caps, func(a, b Cap) int { return cmp.Compare(a.Handle, b.Handle) })
	return caps, nil
}

// Size returns how many spaces the core has and how many live
// capabilities they hold.
func (k *Core) Size() (spaces, caps int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, sp := range k.spaces {
		for _, c := range sp.slots {
			if !c.dead {
				caps++
			}
		}
	}
	return len(k.spaces), caps
}

// Revoke deletes every capability derived from h in space s, recursively and
// in every space, but keeps h. Their handles then report ErrRevoked. An
// object whose last capability goes is destroyed; a destroyed factory returns
// its quota to its parent and destroys the spaces made from it. Revoke needs
// no right: every descendant was derived through h itself, so only h's
// holder can have made them. It refuses a missing or revoked h.
func (k *Core) Revoke(s Space, h Handle) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	c, err := k.lookup(s, h, 0)
	if err != nil {
		return fmt.Errorf("revoke space %d handle %d: %w", s, h, err)
	}
	for child := range c.children {
		k.kill(child, true)
	}
	return nil
}

// Delete removes h from space s together with everything derived from it,
// as [Core.Revoke] does; h itself leaves no trace, so later lookups of it
// report ErrNotFound. Deleting a revoked handle clears it. Delete refuses
// only a missing space or handle.
func (k *Core) Delete(s Space, h Handle) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	sp, err := k.space(s)
	if err != nil {
		return fmt.Errorf("delete space %d handle %d: %w", s, h, err)
	}
	c, ok := sp.slots[h]
	if !ok {
		return fmt.Errorf("delete space %d handle %d: %w: no such handle", s, h, ErrNotFound)
	}
	if c.dead {
		sp.unbind(c)
		return nil
	}
	k.kill(c, false)
	return nil
}

// NewFactory makes a sub-factory with limit q from the factory capability h
// of space s, and returns a capability to it, with h's rights, in space
// into under name. The parent gives q out of what it has left and gets it
// back when the sub-factory is destroyed. The new capability is a child of h,
// so revoking h destroys the sub-factory. NewFactory refuses unless h holds
// RightCreate, and refuses a q larger than what remains in any resource
// (ErrQuotaExceeded, naming the resource); a q [Unlimited] in a resource
// only from a factory unlimited in it.
func (k *Core) NewFactory(s Space, h Handle, q Quota, into Space, name string) (Handle, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	op := func() string {
		return fmt.Sprintf("new factory (%v) from space %d handle %d into space %d", q, s, h, into)
	}
	src, err := k.lookup(s, h, RightCreate)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op(), err)
	}
	dst, err := k.space(into)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op(), err)
	}
	parent := src.obj
	err = q.exceeds(parent.limit.minus(parent.used))
	if err == nil {
		err = q.overflows(parent.used)
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op(), err)
	}
	f := newFactory(q, parent)
	parent.used = parent.used.plus(q)
	parent.subs[f] = true
	c, err := k.insert(dst, name, f, src.rights, src)
	if err != nil {
		parent.used = parent.used.minus(q)
		delete(parent.subs, f)
		return 0, fmt.Errorf("%s: %w", op(), err)
	}
	return c.h, nil
}

// NewSpace makes an empty space charged to the factory capability h of
// space s: every capability the new space holds counts against that
// factory's Caps, and the space is destroyed with the factory. NewSpace
// refuses unless h holds RightCreate.
func (k *Core) NewSpace(s Space, h Handle) (Space, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	c, err := k.lookup(s, h, RightCreate)
	if err != nil {
		return 0, fmt.Errorf("new space from space %d handle %d: %w", s, h, err)
	}
	return k.newSpace(c.obj).id, nil
}

// DeleteSpace deletes space s and every capability in it, together with
// everything derived from them. It refuses only a missing space.
func (k *Core) DeleteSpace(s Space) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	sp, err := k.space(s)
	if err != nil {
		return fmt.Errorf("delete space %d: %w", s, err)
	}
	k.destroySpace(sp)
	return nil
}

// FactoryQuota returns the limit of the factory that capability h of space s
// refers to and what remains of it. It needs no right, and refuses a missing
// or revoked capability and one that is not a factory.
func (k *Core) FactoryQuota(s Space, h Handle) (limit, remaining Quota, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	c, err := k.lookup(s, h, 0)
	if err == nil && c.obj.desc.Kind() != KindFactory {
		err = fmt.Errorf("%w: a %v, not a factory", ErrInvalid, c.obj.desc.Kind())
	}
	if err != nil {
		return Quota{}, Quota{}, fmt.Errorf("quota of space %d handle %d: %w", s, h, err)
	}
	return c.obj.limit, c.obj.limit.minus(c.obj.used), nil
}

// FactoryUsage returns what the factory that capability h of space s
// refers to has given out: its sub-factories' limits (an unlimited field
// counting nothing) plus one capability per capability its spaces hold.
// Unlike what [Core.FactoryQuota] says remains, it is known for an
// unlimited resource too. It needs no right, and refuses what
// FactoryQuota refuses.
func (k *Core) FactoryUsage(s Space, h Handle) (Quota, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	c, err := k.lookup(s, h, 0)
	if err == nil && c.obj.desc.Kind() != KindFactory {
		err = fmt.Errorf("%w: a %v, not a factory", ErrInvalid, c.obj.desc.Kind())
	}
	if err != nil {
		return Quota{}, fmt.Errorf("usage of space %d handle %d: %w", s, h, err)
	}
	return c.obj.used, nil
}

// SpaceQuota returns the limit of the factory space s is charged to: what
// the host must enforce on the container that owns s. Spaces charged to the
// same factory share one limit. It refuses a missing space.
func (k *Core) SpaceQuota(s Space) (Quota, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	sp, err := k.space(s)
	if err != nil {
		return Quota{}, fmt.Errorf("quota of space %d: %w", s, err)
	}
	return sp.factory.limit, nil
}

func kindOf(o Object) Kind {
	if o == nil {
		return 0
	}
	return o.Kind()
}

func newFactory(q Quota, parent *object) *object {
	return &object{desc: Factory{Quota: q}, limit: q, parent: parent,
		subs: make(map[*object]bool), spaces: make(map[*space]bool)}
}

func (c *capability) snapshot() Cap {
	return Cap{Handle: c.h, Name: c.name, Rights: c.rights, Object: c.obj.desc}
}

func (k *Core) newSpace(f *object) *space {
	k.lastSpace++
	sp := &space{id: k.lastSpace, factory: f,
		slots: make(map[Handle]*capability), names: make(map[string]Handle)}
	k.spaces[sp.id] = sp
	f.spaces[sp] = true
	return sp
}

func (k *Core) space(s Space) (*space, error) {
	sp, ok := k.spaces[s]
	if !ok {
		return nil, fmt.Errorf("%w: no such space", ErrNotFound)
	}
	return sp, nil
}

// lookup returns the live capability h of space s if it holds need.
func (k *Core) lookup(s Space, h Handle, need Rights) (*capability, error) {
	sp, err := k.space(s)
	if err != nil {
		return nil, err
	}
	c, ok := sp.slots[h]
	switch {
	case !ok:
		return nil, fmt.Errorf("%w: no such handle", ErrNotFound)
	case c.dead:
		return nil, ErrRevoked
	case !c.rights.Has(need):
		return nil, fmt.Errorf("%w: %v not held (hold %v)", ErrAccessDenied, need&^c.rights, c.rights)
	}
	return c, nil
}

// insert puts a new capability to o in sp, charging sp's factory.
func (k *Core) insert(sp *space, name string, o *object, r Rights, parent *capability) (*capability, error) {
	if h, ok := sp.names[name]; ok && !sp.slots[h].dead {
		return nil, fmt.Errorf("%w: %q is handle %d", ErrExists, name, h)
	}
	f := sp.factory
	if f.used.Caps >= f.limit.Caps {
		return nil, fmt.Errorf("%w: space's factory holds its limit of %d capabilities", ErrQuotaExceeded, f.limit.Caps)
	}
	sp.last++
	c := &capability{obj: o, rights: r, sp: sp, h: sp.last, name: name, parent: parent}
	sp.slots[c.h] = c
	if name != "" {
		sp.names[name] = c.h
	}
	f.used.Caps++
	o.refs++
	if parent != nil {
		if parent.children == nil {
			parent.children = make(map[*capability]bool)
		}
		parent.children[c] = true
	}
	return c, nil
}

// unbind removes c's handle, and its name unless another capability now
// has it, from c's space.
func (sp *space) unbind(c *capability) {
	delete(sp.slots, c.h)
	if h, ok := sp.names[c.name]; ok && h == c.h {
		delete(sp.names, c.name)
	}
}

// kill removes c and, first, everything derived from it. Each descendant
// stays as a tombstone in its space, so that its holder sees ErrRevoked; c
// does too if tomb is set. An object whose last capability goes is destroyed.
func (k *Core) kill(c *capability, tomb bool) {
	if c.dead {
		return
	}
	c.dead = true
	for child := range c.children {
		k.kill(child, true)
	}
	c.children = nil
	if c.parent != nil {
		delete(c.parent.children, c)
		c.parent = nil
	}
	if !tomb || c.sp.dead {
		c.sp.unbind(c)
	}
	c.sp.factory.used.Caps--
	o := c.obj
	c.obj = nil
	if o.refs--; o.refs == 0 {
		k.destroy(o)
	}
}

// destroy ends an object with no capabilities left. A factory returns its
// quota to its parent and takes its spaces with it. (Its sub-factories are
// gone already: their capabilities all descend from its own.)
func (k *Core) destroy(o *object) {
	o.dead = true
	if o.desc.Kind() != KindFactory {
		return
	}
	if p := o.parent; p != nil {
		p.used = p.used.minus(o.limit)
		delete(p.subs, o)
	}
	for sp := range o.spaces {
		k.destroySpace(sp)
	}
}

func (k *Core) destroySpace(sp *space) {
	if sp.dead {
		return
	}
	sp.dead = true
	delete(k.spaces, sp.id)
	delete(sp.factory.spaces, sp)
	for _, c := range sp.slots {
		k.kill(c, false)
	}
	sp.slots, sp.names = nil, nil
}

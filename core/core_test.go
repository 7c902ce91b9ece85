package core

import (
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
)

var bigRoot = Quota{MemoryBytes: 1 << 30, Tasks: 100, CPUMilli: 4000, DiskBytes: 1 << 34, Caps: 100}

func newCore(t *testing.T, q Quota) (*Core, Space, Handle) {
	t.Helper()
	k, err := New(q)
	if err != nil {
		t.Fatal(err)
	}
	s, h := k.Root()
	return k, s, h
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// wantErr fails unless err wraps want (nil: err is nil) and, if the message
// is given, err's text contains it.
func wantErr(t *testing.T, err, want error, msg string) {
	t.Helper()
	if want == nil && err != nil || !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
	if err != nil && !strings.Contains(err.Error(), msg) {
		t.Fatalf("err = %q, want it to contain %q", err, msg)
	}
}

func TestNew(t *testing.T) {
	k, s, h := newCore(t, bigRoot)
	c, err := k.LookupName(s, "factory", RightCreate|RightDerive)
	if err != nil || c.Handle != h || c.Object != (Factory{Quota: bigRoot}) {
		t.Fatalf("root capability %+v, %v", c, err)
	}
	limit, rem, err := k.FactoryQuota(s, h)
	if err != nil || limit != bigRoot || rem != bigRoot.minus(Quota{Caps: 1}) {
		t.Fatalf("root factory quota %v, remaining %v, %v", limit, rem, err)
	}
	if q := must[Quota](t)(k.SpaceQuota(s)); q != bigRoot {
		t.Fatalf("root space quota %v", q)
	}
	_, err = New(Quota{MemoryBytes: 1})
	wantErr(t, err, ErrQuotaExceeded, "no room for the root capability")
}

func TestMint(t *testing.T) {
	tests := []struct {
		name    string
		obj     Object
		rights  Rights
		want    error
		wantMsg string
	}{
		{"image", Image{Ref: "alpine"}, RightRead | RightExecute | RightDerive, nil, ""},
		{"volume", Volume{Name: "data"}, RightRead | RightWrite, nil, ""},
		{"no rights", Log{}, 0, nil, ""},
		{"listen", Listen{Proto: "udp", ContainerPort: 53}, RightListen, nil, ""},
		{"egress", Egress{Any: true, Port: 443}, RightConnect, nil, ""},
		{"spawn", Spawn{}, RightSpawn, nil, ""},
		{"right of another kind", Volume{Name: "data"}, RightRead | RightExecute, ErrInvalid,
			`mint volume "x" in space 1: invalid argument: rights execute not meaningful for volume`},
		{"unknown right", Log{}, 1 << 20, ErrInvalid, "rights 0x100000 not meaningful"},
		{"factory", Factory{Quota: bigRoot}, RightCreate, ErrInvalid, "factories are made from factories"},
		{"nil", nil, 0, ErrInvalid, "no object"},
		{"nameless volume", Volume{}, RightRead, ErrInvalid, "volume has no name"},
		{"empty image", Image{}, RightRead, ErrInvalid, "neither reference nor root file system"},
		{"sctp", Listen{Proto: "sctp", ContainerPort: 1}, RightListen, ErrInvalid, `protocol "sctp"`},
		{"port 0", Listen{Proto: "tcp"}, RightListen, ErrInvalid, "container port is 0"},
		{"any and prefix", Egress{Any: true, Prefix: netip.MustParsePrefix("10.0.0.0/8")}, RightConnect, ErrInvalid, "also names prefix"},
		{"no destination", Egress{}, RightConnect, ErrInvalid, "no destination"},
		{"host bits", Egress{Prefix: netip.MustParsePrefix("10.1.0.0/8")}, RightConnect, ErrInvalid, "host bits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, s, _ := newCore(t, bigRoot)
			h, err := k.Mint(s, "x", tt.obj, tt.rights)
			wantErr(t, err, tt.want, tt.wantMsg)
			if err != nil {
				return
			}
			c, err := k.Lookup(s, h, tt.rights)
			if err != nil || c.Object != tt.obj || c.Rights != tt.rights || c.Name != "x" {
				t.Fatalf("minted %+v, %v", c, err)
			}
		})
	}
}

func TestMintSpace(t *testing.T) {
	k, s, _ := newCore(t, Quota{Caps: 2}) // room for the root capability and one more
	must[Handle](t)(k.Mint(s, "/data", Volume{Name: "a"}, RightRead))
	_, err := k.Mint(s, "/data", Volume{Name: "b"}, RightRead)
	wantErr(t, err, ErrExists, `name in use: "/data" is handle 2`)
	_, err = k.Mint(s, "/other", Volume{Name: "b"}, RightRead)
	wantErr(t, err, ErrQuotaExceeded, "limit of 2 capabilities")
	_, err = k.Mint(99, "", Log{}, 0)
	wantErr(t, err, ErrNotFound, "in space 99: not found: no such space")
}

func TestDerive(t *testing.T) {
	const rwd = RightRead | RightWrite | RightDerive
	tests := []struct {
		name    string
		held    Rights // rights of the source capability
		ask     Rights
		into    Space // 0: the root space
		intoAs  string
		want    error
		wantMsg string
	}{
		{name: "keep all", held: rwd, ask: rwd},
		{name: "drop write", held: rwd, ask: RightRead},
		{name: "drop all", held: rwd, ask: 0},
		{name: "escalate", held: RightRead | RightDerive, ask: RightRead | RightWrite, want: ErrRightsEscalation,
			wantMsg: "derive space 1 handle 2 as read|write into space 1: rights escalation: write not held"},
		{name: "right of another kind", held: rwd, ask: RightRead | RightExecute, want: ErrRightsEscalation, wantMsg: "execute not held"},
		{name: "no derive right", held: RightRead | RightWrite, ask: RightRead, want: ErrAccessDenied,
			wantMsg: "access denied: derive not held (hold read|write)"},
		{name: "no such space", held: rwd, ask: RightRead, into: 42, want: ErrNotFound, wantMsg: "into space 42: not found: no such space"},
		{name: "name in use", held: rwd, ask: RightRead, intoAs: "factory", want: ErrExists},
		{name: "revoked source", held: rwd, ask: RightRead, want: ErrRevoked, wantMsg: "derive space 1 handle 4 as read into space 1: revoked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, s, _ := newCore(t, bigRoot)
			src := must[Handle](t)(k.Mint(s, "/data", Volume{Name: "v"}, tt.held))
			if tt.want == ErrRevoked {
				// Make src a copy of another capability, and revoke that.
				parent := must[Handle](t)(k.Mint(s, "/p", Volume{Name: "v"}, rwd))
				src = must[Handle](t)(k.Derive(s, parent, tt.held, s, "/copy"))
				if err := k.Revoke(s, parent); err != nil {
					t.Fatal(err)
				}
			}
			into := tt.into
			if into == 0 {
				into = s
			}
			h, err := k.Derive(s, src, tt.ask, into, tt.intoAs)
			wantErr(t, err, tt.want, tt.wantMsg)
			if err != nil {
				return
			}
			c, err := k.Lookup(into, h, tt.ask)
			if err != nil || c.Rights != tt.ask || c.Object != (Volume{Name: "v"}) {
				t.Fatalf("derived %+v, %v", c, err)
			}
			if tt.ask != rwd {
				_, err := k.Lookup(into, h, rwd)
				wantErr(t, err, ErrAccessDenied, "not held")
			}
		})
	}
}

// tree builds, across three spaces, a ← root volume in s0:
//
//	a (s0) ─┬─ b (s1) ── c (s2) ── e (s1)
//	        └─ d (s2)
func tree(t *testing.T) (*Core, map[string][2]uint64) {
	k, s0, f := newCore(t, bigRoot)
	s1 := must[Space](t)(k.NewSpace(s0, f))
	s2 := must[Space](t)(k.NewSpace(s0, f))
	all := RightRead | RightWrite | RightDerive
	a := must[Handle](t)(k.Mint(s0, "/a", Volume{Name: "a"}, all))
	b := must[Handle](t)(k.Derive(s0, a, all, s1, "/b"))
	c := must[Handle](t)(k.Derive(s1, b, RightRead|RightDerive, s2, "/c"))
	d := must[Handle](t)(k.Derive(s0, a, RightRead, s2, "/d"))
	e := must[Handle](t)(k.Derive(s2, c, RightRead, s1, "/e"))
	return k, map[string][2]uint64{
		"a": {uint64(s0), uint64(a)}, "b": {uint64(s1), uint64(b)}, "c": {uint64(s2), uint64(c)},
		"d": {uint64(s2), uint64(d)}, "e": {uint64(s1), uint64(e)},
	}
}

func TestRevokeDelete(t *testing.T) {
	tests := []struct {
		op      string // "revoke" or "delete"
		target  string
		revoked string // want ErrRevoked
		gone    string // want ErrNotFound
	}{
		{"revoke", "a", "bcde", ""},
		{"revoke", "b", "ce", ""},
		{"revoke", "c", "e", ""},
		{"revoke", "e", "", ""},
		{"delete", "a", "bcde", "a"},
		{"delete", "b", "ce", "b"},
		{"delete", "e", "", "e"},
	}
	for _, tt := range tests {
		t.Run(tt.op+" "+tt.target, func(t *testing.T) {
			k, caps := tree(t)
			at := func(n string) (Space, Handle) { return Space(caps[n][0]), Handle(caps[n][1]) }
			s, h := at(tt.target)
			op := k.Revoke
			if tt.op == "delete" {
				op = k.Delete
			}
			if err := op(s, h); err != nil {
				t.Fatal(err)
			}
			if err := k.check(bigRoot); err != nil {
				t.Fatal(err)
			}
			for _, n := range "abcde" {
				s, h := at(string(n))
				_, err := k.Lookup(s, h, 0)
				switch {
				case strings.ContainsRune(tt.revoked, n):
					wantErr(t, err, ErrRevoked, "revoked")
					// A revoked handle can be deleted, and its name reused.
					wantErr(t, k.Delete(s, h), nil, "")
					_, err = k.Lookup(s, h, 0)
					wantErr(t, err, ErrNotFound, "no such handle")
				case strings.ContainsRune(tt.gone, n):
					wantErr(t, err, ErrNotFound, "no such handle")
				default:
					wantErr(t, err, nil, "")
				}
			}
		})
	}
}

func TestRevokedName(t *testing.T) {
	k, caps := tree(t)
	s1 := Space(caps["b"][0])
	if err := k.Revoke(Space(caps["a"][0]), Handle(caps["a"][1])); err != nil {
		t.Fatal(err)
	}
	_, err := k.LookupName(s1, "/b", 0)
	wantErr(t, err, ErrRevoked, `lookup "/b" in space 2 for none: revoked`)
	h := must[Handle](t)(k.Mint(s1, "/b", Log{}, RightWrite)) // the name is free again
	if c, err := k.LookupName(s1, "/b", RightWrite); err != nil || c.Handle != h {
		t.Fatalf("reused name: %+v, %v", c, err)
	}
	// Clearing the old tombstone must not unbind the new capability.
	wantErr(t, k.Delete(s1, Handle(caps["b"][1])), nil, "")
	if _, err := k.LookupName(s1, "/b", RightWrite); err != nil {
		t.Fatal(err)
	}
	if err := k.check(bigRoot); err != nil {
		t.Fatal(err)
	}
}

func TestLookup(t *testing.T) {
	k, s, _ := newCore(t, bigRoot)
	h := must[Handle](t)(k.Mint(s, "/", Image{Ref: "alpine"}, RightRead|RightExecute))
	tests := []struct {
		s       Space
		h       Handle
		need    Rights
		want    error
		wantMsg string
	}{
		{s, h, 0, nil, ""},
		{s, h, RightRead | RightExecute, nil, ""},
		{s, h, RightWrite | RightRead, ErrAccessDenied, "lookup space 1 handle 2 for read|write: access denied: write not held (hold read|execute)"},
		{s, h, RightDerive, ErrAccessDenied, "derive not held"},
		{s, 77, 0, ErrNotFound, "lookup space 1 handle 77 for none: not found: no such handle"},
		{s, 0, 0, ErrNotFound, "no such handle"},
		{9, h, 0, ErrNotFound, "no such space"},
	}
	for _, tt := range tests {
		c, err := k.Lookup(tt.s, tt.h, tt.need)
		wantErr(t, err, tt.want, tt.wantMsg)
		if err == nil && (c.Handle != h || c.Name != "/" || c.Object != (Image{Ref: "alpine"})) {
			t.Errorf("Lookup(%d, %d, %v) = %+v", tt.s, tt.h, tt.need, c)
		}
	}
	_, err := k.LookupName(s, "/data", 0)
	wantErr(t, err, ErrNotFound, `lookup "/data" in space 1 for none: not found: no such name`)
	_, err = k.LookupName(s, "", 0)
	wantErr(t, err, ErrNotFound, "no such name")
	_, err = k.LookupName(s, "/", RightWrite)
	wantErr(t, err, ErrAccessDenied, "write not held")
	caps := must[[]Cap](t)(k.Caps(s))
	if len(caps) != 2 || caps[0].Name != "factory" || caps[1].Handle != h {
		t.Fatalf("Caps = %+v", caps)
	}
}

func TestFactories(t *testing.T) {
	root := Quota{MemoryBytes: 1000, Tasks: 10, CPUMilli: 2000, DiskBytes: 5000, Caps: 20}
	sub := Quota{MemoryBytes: 400, Tasks: 4, CPUMilli: 1000, DiskBytes: 2000, Caps: 5}
	tests := []struct {
		name    string
		run     func(t *testing.T, k *Core, s Space, root Handle) error
		want    error
		wantMsg string
		left    Quota // the root's remaining quota afterwards
	}{
		{"sub-factory debits its parent", func(t *testing.T, k *Core, s Space, f Handle) error {
			_, err := k.NewFactory(s, f, sub, s, "sub")
			return err
		}, nil, "", root.minus(sub).minus(Quota{Caps: 2})},
		{"all that remains", func(t *testing.T, k *Core, s Space, f Handle) error {
			_, err := k.NewFactory(s, f, root.minus(Quota{Caps: 2}), s, "")
			return err
		}, nil, "", Quota{}},
		{"more memory than remains", func(t *testing.T, k *Core, s Space, f Handle) error {
			_, err := k.NewFactory(s, f, Quota{MemoryBytes: 1001}, s, "")
			return err
		}, ErrQuotaExceeded, "new factory (memory=1001 tasks=0 cpu=0m disk=0 caps=0) from space 1 handle 1 into space 1: quota exceeded: 1001 memory bytes requested, 1000 remaining", root.minus(Quota{Caps: 1})},
		{"more tasks than remain", func(t *testing.T, k *Core, s Space, f Handle) error {
			_, err := k.NewFactory(s, f, Quota{Tasks: 11}, s, "")
			return err
		}, ErrQuotaExceeded, "11 tasks requested, 10 remaining", root.minus(Quota{Caps: 1})},
		{"no room for its own capability", func(t *testing.T, k *Core, s Space, f Handle) error {
			_, err := k.NewFactory(s, f, Quota{Caps: 19}, s, "")
			return err
		}, ErrQuotaExceeded, "limit of 20 capabilities", root.minus(Quota{Caps: 1})},
		{"second sub-factory gets only what is left", func(t *testing.T, k *Core, s Space, f Handle) error {
			must[Handle](t)(k.NewFactory(s, f, sub, s, ""))
			must[Handle](t)(k.NewFactory(s, f, sub, s, ""))
			_, err := k.NewFactory(s, f, sub, s, "")
			return err
		}, ErrQuotaExceeded, "400 memory bytes requested, 200 remaining", root.minus(sub).minus(sub).minus(Quota{Caps: 3})},
		{"sub-sub-factory limited by the sub-factory", func(t *testing.T, k *Core, s Space, f Handle) error {
			h := must[Handle](t)(k.NewFactory(s, f, sub, s, ""))
			must[Handle](t)(k.NewFactory(s, h, Quota{CPUMilli: 600}, s, ""))
			_, err := k.NewFactory(s, h, Quota{CPUMilli: 600}, s, "")
			return err
		}, ErrQuotaExceeded, "600 CPU millicores requested, 400 remaining", root.minus(sub).minus(Quota{Caps: 3})},
		{"deleting a sub-factory returns its quota", func(t *testing.T, k *Core, s Space, f Handle) error {
			h := must[Handle](t)(k.NewFactory(s, f, sub, s, ""))
			must[Handle](t)(k.NewFactory(s, h, Quota{CPUMilli: 600}, s, ""))
			return k.Delete(s, h)
		}, nil, "", root.minus(Quota{Caps: 1})},
		{"revoking the parent capability destroys sub-factories", func(t *testing.T, k *Core, s Space, f Handle) error {
			must[Handle](t)(k.NewFactory(s, f, sub, s, ""))
			must[Handle](t)(k.NewFactory(s, f, sub, s, ""))
			return k.Revoke(s, f)
		}, nil, "", root.minus(Quota{Caps: 1})},
		{"revoking copies keeps the sub-factory", func(t *testing.T, k *Core, s Space, f Handle) error {
			h := must[Handle](t)(k.NewFactory(s, f, sub, s, ""))
			must[Handle](t)(k.Derive(s, h, RightCreate, s, ""))
			return k.Revoke(s, h)
		}, nil, "", root.minus(sub).minus(Quota{Caps: 2})},
		{"sub-factory capability holds no more than its parent's", func(t *testing.T, k *Core, s Space, f Handle) error {
			h := must[Handle](t)(k.Derive(s, f, RightCreate, s, ""))
			subH := must[Handle](t)(k.NewFactory(s, h, sub, s, ""))
			_, err := k.Derive(s, subH, 0, s, "")
			return err
		}, ErrAccessDenied, "derive not held (hold create)", root.minus(sub).minus(Quota{Caps: 3})},
		{"without the create right", func(t *testing.T, k *Core, s Space, f Handle) error {
			h := must[Handle](t)(k.Derive(s, f, RightDerive, s, ""))
			_, err := k.NewFactory(s, h, sub, s, "")
			return err
		}, ErrAccessDenied, "create not held (hold derive)", root.minus(Quota{Caps: 2})},
		{"not a factory", func(t *testing.T, k *Core, s Space, f Handle) error {
			h := must[Handle](t)(k.Mint(s, "", Volume{Name: "v"}, RightRead))
			_, _, err := k.FactoryQuota(s, h)
			return err
		}, ErrInvalid, "quota of space 1 handle 2: invalid argument: a volume, not a factory", root.minus(Quota{Caps: 2})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, s, f := newCore(t, root)
			err := tt.run(t, k, s, f)
			wantErr(t, err, tt.want, tt.wantMsg)
			if err := k.check(root); err != nil {
				t.Fatal(err)
			}
			if _, left, err := k.FactoryQuota(s, f); err != nil || left != tt.left {
				t.Fatalf("root has %v left, want %v (%v)", left, tt.left, err)
			}
		})
	}
}

func TestFactorySpaces(t *testing.T) {
	k, s, f := newCore(t, bigRoot)
	sub := must[Handle](t)(k.NewFactory(s, f, Quota{MemoryBytes: 64 << 20, Tasks: 8, Caps: 2}, s, "c1"))
	c1 := must[Space](t)(k.NewSpace(s, sub))
	if q := must[Quota](t)(k.SpaceQuota(c1)); q.MemoryBytes != 64<<20 || q.Tasks != 8 {
		t.Fatalf("container quota %v", q)
	}
	img := must[Handle](t)(k.Mint(s, "img", Image{Ref: "alpine"}, RightRead|RightExecute|RightDerive))
	must[Handle](t)(k.Derive(s, img, RightRead|RightExecute, c1, "/"))
	must[Handle](t)(k.Mint(c1, "/log", Log{}, RightWrite))
	_, err := k.Mint(c1, "/data", Volume{Name: "v"}, RightRead)
	wantErr(t, err, ErrQuotaExceeded, "limit of 2 capabilities")
	// Deleting a capability gives its slot back.
	wantErr(t, k.Delete(c1, must[Cap](t)(k.LookupName(c1, "/log", 0)).Handle), nil, "")
	must[Handle](t)(k.Mint(c1, "/data", Volume{Name: "v"}, RightRead))
	// Destroying the factory destroys the container's space and returns
	// everything to the root.
	wantErr(t, k.Delete(s, sub), nil, "")
	_, err = k.Caps(c1)
	wantErr(t, err, ErrNotFound, "list space 2: not found: no such space")
	if _, left, _ := k.FactoryQuota(s, f); left != bigRoot.minus(Quota{Caps: 2}) {
		t.Fatalf("root has %v left", left)
	}
	wantErr(t, k.DeleteSpace(c1), ErrNotFound, "delete space 2: not found")
	if err := k.check(bigRoot); err != nil {
		t.Fatal(err)
	}
}

func TestDeleteSpace(t *testing.T) {
	k, caps := tree(t)
	// Deleting s1 deletes b and e, and revokes c, b's child in s2.
	wantErr(t, k.DeleteSpace(Space(caps["b"][0])), nil, "")
	for n, want := range map[string]error{"a": nil, "c": ErrRevoked, "d": nil, "b": ErrNotFound, "e": ErrNotFound} {
		_, err := k.Lookup(Space(caps[n][0]), Handle(caps[n][1]), 0)
		if !errors.Is(err, want) && !(want == nil && err == nil) {
			t.Errorf("%s: %v, want %v", n, err, want)
		}
	}
	if err := k.check(bigRoot); err != nil {
		t.Fatal(err)
	}
}

func TestRights(t *testing.T) {
	for r, want := range map[Rights]string{
		0:                               "none",
		RightRead:                       "read",
		RightRead | RightWrite:          "read|write",
		RightCreate | RightDerive:       "create|derive",
		RightDerive | 1<<12:             "derive|0x1000",
		KindImage.Rights():              "read|execute|derive",
		KindListen.Rights():             "listen|derive",
		KindEgress.Rights():             "connect|derive",
		KindSpawn.Rights():              "spawn|derive",
		KindLog.Rights() &^ RightDerive: "read|write",
		RightListen | RightConnect:      "listen|connect",
	} {
		if got := r.String(); got != want {
			t.Errorf("Rights(%#x).String() = %q, want %q", uint32(r), got, want)
		}
	}
	var union Rights
	for k := KindImage; k <= KindLog; k++ {
		if k.String() == "" || strings.HasPrefix(k.String(), "kind(") || !k.Rights().Has(RightDerive) {
			t.Errorf("kind %d: %q, rights %v", k, k, k.Rights())
		}
		union |= k.Rights()
	}
	if union != rightsAll || Kind(0).Rights() != 0 || Kind(99).String() != "kind(99)" {
		t.Errorf("rights of all kinds %v, want every right", union)
	}
}

// TestConcurrent runs derivations and revocations from many goroutines; run
// it with -race.
func TestConcurrent(t *testing.T) {
	k, s, f := newCore(t, Quota{Caps: 10000})
	v := must[Handle](t)(k.Mint(s, "v", Volume{Name: "v"}, RightRead|RightDerive))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			sp, err := k.NewSpace(s, f)
			if err != nil {
				t.Error(err)
				return
			}
			for range 100 {
				h, err := k.Derive(s, v, RightRead|RightDerive, sp, "")
				if err == nil {
					_, err = k.Derive(sp, h, RightRead, sp, "")
				}
				if err != nil && !errors.Is(err, ErrRevoked) && !errors.Is(err, ErrNotFound) {
					t.Error(err)
				}
				_ = k.Revoke(s, v)
			}
		})
	}
	wg.Wait()
	if err := k.check(Quota{Caps: 10000}); err != nil {
		t.Fatal(err)
	}
}

// TestUnlimitedQuota pins what Unlimited means: a limited sub-factory of an
// unlimited factory is carved out of nothing and costs it nothing in that
// resource, an unlimited one is refused under a limited factory, and the
// sum under an unlimited factory cannot wrap around.
func TestUnlimitedQuota(t *testing.T) {
	root := Quota{MemoryBytes: Unlimited, Tasks: 10, CPUMilli: Unlimited, DiskBytes: Unlimited, Caps: 20}
	k, s, f := newCore(t, root)
	a, err := k.NewFactory(s, f, Quota{MemoryBytes: 1 << 30, Tasks: 4, CPUMilli: Unlimited, DiskBytes: 1 << 40}, s, "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, rem, _ := k.FactoryQuota(s, f); rem != (Quota{MemoryBytes: Unlimited, Tasks: 6, CPUMilli: Unlimited, DiskBytes: Unlimited, Caps: 18}) {
		t.Errorf("root remaining after a limited and an unlimited part: %v", rem)
	}
	_, err = k.NewFactory(s, f, Quota{MemoryBytes: Unlimited, Tasks: Unlimited}, s, "")
	if !errors.Is(err, ErrQuotaExceeded) || !strings.Contains(err.Error(), "unlimited tasks requested, 6 remaining") {
		t.Errorf("unlimited tasks from limited tasks: %v", err)
	}
	_, err = k.NewFactory(s, a, Quota{MemoryBytes: Unlimited}, s, "")
	if !errors.Is(err, ErrQuotaExceeded) || !strings.Contains(err.Error(), "unlimited memory bytes requested") {
		t.Errorf("unlimited memory from a limited sub-factory: %v", err)
	}
	if _, err := k.NewFactory(s, a, Quota{CPUMilli: Unlimited, MemoryBytes: 1 << 29}, s, ""); err != nil {
		t.Errorf("unlimited CPU from a factory unlimited in CPU: %v", err)
	}
	_, err = k.NewFactory(s, f, Quota{DiskBytes: Unlimited - 1}, s, "")
	if !errors.Is(err, ErrQuotaExceeded) || !strings.Contains(err.Error(), "overflow") {
		t.Errorf("disk summing past Unlimited: %v", err)
	}
	if err := k.check(root); err != nil {
		t.Error(err)
	}
	// a's limited memory, and the capabilities of a and its sub-factory.
	if u, err := k.FactoryUsage(s, f); err != nil || u != (Quota{MemoryBytes: 1 << 30, Tasks: 4, DiskBytes: 1 << 40, Caps: 3}) {
		t.Errorf("root usage: %v, %v", u, err)
	}
	if err := k.Delete(s, a); err != nil {
		t.Fatal(err)
	}
	if _, rem, _ := k.FactoryQuota(s, f); rem.Tasks != 10 || rem.MemoryBytes != Unlimited {
		t.Errorf("after deleting the part: %v", rem)
	}
	if err := k.check(root); err != nil {
		t.Error(err)
	}
}

func TestWithin(t *testing.T) {
	eg := func(s string) Egress {
		e, err := ParseEgress(s)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	tests := []struct {
		o, of Object
		want  bool
	}{
		{eg("10.1.2.3:80/tcp"), eg("10.1.2.3:80/tcp"), true},
		{eg("10.1.2.3:80/tcp"), eg("any"), true},
		{eg("10.1.2.3:80/tcp"), eg("10.0.0.0/8:80"), true},
		{eg("10.1.2.3:80/tcp"), eg("10.0.0.0/8"), true},
		{eg("10.1.2.3:80/udp"), eg("10.0.0.0/8:80/tcp"), false}, // another protocol
		{eg("10.1.2.3:81/tcp"), eg("10.0.0.0/8:80/tcp"), false}, // another port
		{eg("10.1.2.3/tcp"), eg("10.0.0.0/8:80/tcp"), false},    // every port of one port
		{eg("10.1.2.3:80"), eg("10.0.0.0/8:80/tcp"), false},     // both protocols of one
		{eg("11.1.2.3:80/tcp"), eg("10.0.0.0/8:80/tcp"), false}, // outside the prefix
		{eg("10.0.0.0/7:80/tcp"), eg("10.0.0.0/8:80/tcp"), false},
		{eg("any"), eg("10.0.0.0/8"), false},
		{eg("any:443/tcp"), eg("any"), true},
		{eg("[::1]:80/tcp"), eg("10.0.0.0/8"), false}, // another family
		{Volume{Name: "v"}, Volume{Name: "v"}, true},
		{Volume{Name: "v"}, Volume{Name: "w"}, false},
		{Volume{Name: "v"}, eg("any"), false},
		{eg("any"), Volume{Name: "v"}, false},
		{Factory{Quota: Quota{Caps: 1}}, Factory{Quota: Quota{Caps: 1}}, false}, // quota is given by NewFactory only
		{nil, eg("any"), false},
	}
	for _, tt := range tests {
		if got := Within(tt.o, tt.of); got != tt.want {
			t.Errorf("Within(%v, %v) = %v, want %v", tt.o, tt.of, got, tt.want)
		}
	}
}

func TestDeriveWithin(t *testing.T) {
	k, s, _ := newCore(t, bigRoot)
	wide, _ := ParseEgress("10.0.0.0/8:80/tcp")
	narrow, _ := ParseEgress("10.1.2.3:80/tcp")
	other, _ := ParseEgress("11.1.2.3:80/tcp")
	h := must[Handle](t)(k.Mint(s, "egress wide", wide, RightConnect|RightDerive))
	cs := must[Space](t)(k.NewSpace(k.Root()))
	n := must[Handle](t)(k.DeriveWithin(s, h, RightConnect|RightDerive, narrow, cs, "egress narrow"))
	if c, err := k.Lookup(cs, n, RightConnect); err != nil || c.Object != narrow {
		t.Fatalf("derived %+v, %v; want %v", c, err, narrow)
	}
	_, err := k.DeriveWithin(s, h, RightConnect, other, cs, "egress other")
	wantErr(t, err, ErrRightsEscalation, "11.1.2.3:80/tcp is not within 10.0.0.0/8:80/tcp")
	_, err = k.DeriveWithin(cs, n, RightConnect, wide, s, "egress back")
	wantErr(t, err, ErrRightsEscalation, "is not within")
	nn := must[Handle](t)(k.DeriveWithin(cs, n, RightConnect, narrow, s, "egress again"))
	_, err = k.DeriveWithin(s, nn, RightConnect, narrow, cs, "x")
	wantErr(t, err, ErrAccessDenied, "derive not held")
	_, err = k.DeriveWithin(s, h, RightConnect, Egress{Proto: "icmp", Any: true}, cs, "x")
	wantErr(t, err, ErrInvalid, "protocol")
	// Revoking the whole takes every part derived from it, in every space.
	if err := k.Revoke(s, h); err != nil {
		t.Fatal(err)
	}
	_, err = k.Lookup(cs, n, 0)
	wantErr(t, err, ErrRevoked, "")
	_, err = k.Lookup(s, nn, 0)
	wantErr(t, err, ErrRevoked, "")
	if err := k.check(bigRoot); err != nil {
		t.Fatal(err)
	}
}

// TestSize: Size counts spaces and live capabilities: not a revoked
// one's tombstone, nor those of a deleted space.
func TestSize(t *testing.T) {
	k, rs, rh := newCore(t, bigRoot)
	size := func(spaces, caps int) {
		t.Helper()
		if s, c := k.Size(); s != spaces || c != caps {
			t.Fatalf("Size() = %d spaces, %d capabilities; want %d, %d", s, c, spaces, caps)
		}
	}
	size(1, 1) // the root space and its factory
	sp := must[Space](t)(k.NewSpace(rs, rh))
	img := must[Handle](t)(k.Mint(rs, "img", Image{Ref: "a"}, RightRead|RightDerive))
	must[Handle](t)(k.Derive(rs, img, RightRead, sp, "/"))
	size(2, 3)
	if err := k.Revoke(rs, img); err != nil { // the copy stays as a tombstone
		t.Fatal(err)
	}
	size(2, 2)
	must[Handle](t)(k.Derive(rs, img, RightRead, sp, "/2"))
	size(2, 3)
	if err := k.DeleteSpace(sp); err != nil {
		t.Fatal(err)
	}
	size(1, 2)
}

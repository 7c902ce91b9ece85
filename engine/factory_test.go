package engine

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oak-engine/oak/core"
)

func TestParseFactoryQuota(t *testing.T) {
	cases := []struct {
		memory, pids, cpus, disk string
		want                     FactoryQuota
		err                      string
	}{
		{"", "", "", "", FactoryQuota{}, ""},
		{"1g", "256", "1.5", "10g", FactoryQuota{MemoryBytes: 1 << 30, Pids: 256, CPUMilli: 1500, DiskBytes: 10 << 30}, ""},
		{"0", "-1", "", "0", FactoryQuota{}, ""}, // docker's spellings of no limit
		{"1m", "", "", "", FactoryQuota{}, "invalid --memory"},
		{"", "1", "", "", FactoryQuota{}, "invalid --pids 1"},
		{"", "many", "", "", FactoryQuota{}, `invalid --pids "many"`},
		{"", "", "3", "", FactoryQuota{}, "this host has 2 CPUs"},
		{"", "", "0.001", "", FactoryQuota{}, "at least 0.01"},
		{"", "", "", "10x", FactoryQuota{}, "invalid --disk"},
	}
	for _, c := range cases {
		q, err := ParseFactoryQuota(c.memory, c.pids, c.cpus, c.disk, 2)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseFactoryQuota(%q, %q, %q, %q) = %v, %v; want error containing %q", c.memory, c.pids, c.cpus, c.disk, q, err, c.err)
			}
			continue
		}
		if err != nil || q != c.want {
			t.Errorf("ParseFactoryQuota(%q, %q, %q, %q) = %+v, %v; want %+v", c.memory, c.pids, c.cpus, c.disk, q, err, c.want)
		}
	}
}

func factory(name, parent string, q FactoryQuota) *Factory {
	return &Factory{Name: name, ID: newFactoryID(), Parent: parent, Quota: q, Created: time.Now()}
}

// The sum of a factory's sub-factories' limits never exceeds its own, per
// resource; a resource the parent limits must be limited; names follow
// the container name rule; a tree from records that do not fit is refused.
func TestFactoryTreeAdd(t *testing.T) {
	team := factory("team", "", FactoryQuota{MemoryBytes: 1 << 30, Pids: 256, CPUMilli: 2000, DiskBytes: 10 << 30})
	ci := factory("ci", "team", FactoryQuota{MemoryBytes: 512 << 20, Pids: 200, CPUMilli: 1000, DiskBytes: 4 << 30})
	tr, err := newFactoryTree([]*Factory{ci, team}, nil) // child listed first: loaded parents first
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		o   FactoryOptions
		err string
	}{
		{FactoryOptions{Name: "web", Parent: "team", Quota: FactoryQuota{MemoryBytes: 512 << 20, Pids: 56, CPUMilli: 1000, DiskBytes: 6 << 30}}, ""},
		{FactoryOptions{Name: "web", Parent: "team", Quota: FactoryQuota{MemoryBytes: 512 << 20, Pids: 57, CPUMilli: 1000, DiskBytes: 6 << 30}}, "57 tasks requested, 56 remaining"},
		{FactoryOptions{Name: "web", Parent: "team", Quota: FactoryQuota{MemoryBytes: 513 << 20, Pids: 56, CPUMilli: 1000, DiskBytes: 6 << 30}}, "memory bytes requested"},
		{FactoryOptions{Name: "web", Parent: "team", Quota: FactoryQuota{MemoryBytes: 512 << 20, Pids: 56, CPUMilli: 1001, DiskBytes: 6 << 30}}, "CPU millicores requested"},
		{FactoryOptions{Name: "web", Parent: "team", Quota: FactoryQuota{MemoryBytes: 512 << 20, Pids: 56, CPUMilli: 1000}}, "--disk is required: parent team limits it"},
		{FactoryOptions{Name: "web", Parent: "nope", Quota: FactoryQuota{}}, "--parent nope: no such factory"},
		{FactoryOptions{Name: "ci", Quota: FactoryQuota{}}, "a factory of that name exists"},
		{FactoryOptions{Name: "-x", Quota: FactoryQuota{}}, "invalid factory name"},
		{FactoryOptions{Name: "a/b", Quota: FactoryQuota{}}, "invalid factory name"},
		{FactoryOptions{Name: "free"}, ""}, // a factory of the host's may leave everything unlimited
	}
	for _, c := range cases {
		tr, err := newFactoryTree([]*Factory{team, ci}, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = tr.add(c.o)
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("add %+v: %v; want error containing %q", c.o, err, c.err)
		}
		if strings.Contains(c.err, "requested") && !errors.Is(err, core.ErrQuotaExceeded) {
			t.Errorf("add %+v: %v is not core.ErrQuotaExceeded", c.o, err)
		}
	}
	if g := tr.group("ci"); g != team.groupName()+"/"+ci.groupName() {
		t.Errorf("group of ci = %q", g)
	}
	if u := tr.given("team"); u.MemoryBytes != 512<<20 || u.Tasks != 200 || u.DiskBytes != 4<<30 {
		t.Errorf("team has given %v, want ci's limits", u)
	}

	// Records that do not fit, or do not form a tree, are refused.
	big := factory("big", "team", FactoryQuota{MemoryBytes: 1 << 30, Pids: 100, CPUMilli: 1000, DiskBytes: 1 << 30})
	if _, err := newFactoryTree([]*Factory{team, ci, big}, nil); err == nil || !strings.Contains(err.Error(), "does not fit in its parent") {
		t.Errorf("over-committed records: %v", err)
	}
	a, b := factory("a", "b", FactoryQuota{}), factory("b", "a", FactoryQuota{})
	if _, err := newFactoryTree([]*Factory{a, b}, nil); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("a cycle: %v", err)
	}
	orphan := factory("o", "gone", FactoryQuota{})
	if _, err := newFactoryTree([]*Factory{orphan}, nil); !errors.Is(err, ErrNoSuchFactory) {
		t.Errorf("a missing parent: %v", err)
	}
}

// A factory's disk holds its sub-factories' disk plus its reservations; a
// reservation past it is refused naming the holder and what is left.
func TestFactoryDiskReservations(t *testing.T) {
	f := factory("f", "", FactoryQuota{DiskBytes: 3 << 30})
	sub := factory("sub", "f", FactoryQuota{DiskBytes: 1 << 30})
	charges := []diskCharge{{"f", "container", "c1", 1 << 30}, {"f", "volume", "data", 512 << 20}}
	tr, err := newFactoryTree([]*Factory{f, sub}, charges)
	if err != nil {
		t.Fatal(err)
	}
	err = tr.reserve(diskCharge{"f", "container", "c2", 1 << 30})
	if !errors.Is(err, core.ErrQuotaExceeded) || !strings.Contains(err.Error(), "disk quota exhausted: container c2 needs 1 GiB, 512 MiB of 3 GiB left") {
		t.Errorf("reservation past the quota: %v", err)
	}
	if err := tr.reserve(diskCharge{"f", "container", "c3", 512 << 20}); err != nil {
		t.Errorf("reservation that fits exactly: %v", err)
	}
	if tr.reserved["f"]["volume data"] != 512<<20 || len(tr.reserved["f"]) != 3 {
		t.Errorf("reserved: %v", tr.reserved["f"])
	}
	// Records that reserve more than the factory has (edited by hand) are
	// refused as a whole.
	if _, err := newFactoryTree([]*Factory{f, sub}, append(charges, diskCharge{"f", "volume", "x", 1 << 30})); err == nil {
		t.Error("over-reserved records were accepted")
	}
	// Under an unlimited disk, reservations are free.
	free := factory("free", "", FactoryQuota{})
	if _, err := newFactoryTree([]*Factory{free}, []diskCharge{{"free", "container", "c1", 1 << 40}}); err != nil {
		t.Errorf("reservation in an unlimited factory: %v", err)
	}
}

// FuzzFactoryTree loads factory records decoded from bytes, as a damaged
// or hand-edited state root could hold them: newFactoryTree either refuses
// them or returns a tree in which no factory has given out more than its
// limit, per resource.
func FuzzFactoryTree(f *testing.F) {
	f.Add([]byte{0, 0, 10, 10, 1, 1, 5, 5})
	f.Add([]byte{0, 1, 1, 0, 2, 2, 0, 0, 9, 9})
	f.Fuzz(func(t *testing.T, data []byte) {
		names := []string{"", "a", "b", "c", "d"}
		var fs []*Factory
		var charges []diskCharge
		for len(data) >= 4 {
			n, p, m, d := data[0]%5, data[1]%5, int64(data[2]%16), int64(data[3]%16)
			data = data[4:]
			if n == 0 { // a reservation rather than a factory
				charges = append(charges, diskCharge{factory: names[p], kind: "volume", id: strconv.Itoa(len(charges)), bytes: d})
				continue
			}
			fs = append(fs, &Factory{Name: names[n], ID: "0123456789ab", Parent: names[p],
				Quota: FactoryQuota{MemoryBytes: m << 20, DiskBytes: d}})
		}
		tr, err := newFactoryTree(fs, charges)
		if err != nil {
			return
		}
		for name, f := range tr.byName {
			given := tr.given(name)
			if q := f.Quota.core(); given.MemoryBytes > q.MemoryBytes || given.DiskBytes > q.DiskBytes {
				t.Fatalf("factory %s (%+v) gave out %v", name, f.Quota, given)
			}
		}
	})
}

// Removing a factory takes with it what the core's revoke of its
// capability takes: its sub-factories, recursively, and every container
// and volume made from any of them; nothing of a sibling's.
func TestFactoryRevoke(t *testing.T) {
	fs := []*Factory{
		factory("top", "", FactoryQuota{DiskBytes: 10 << 30}),
		factory("mid", "top", FactoryQuota{DiskBytes: 5 << 30}),
		factory("leaf", "mid", FactoryQuota{DiskBytes: 2 << 30}),
		factory("side", "top", FactoryQuota{DiskBytes: 1 << 30}),
		factory("other", "", FactoryQuota{}),
	}
	charges := []diskCharge{
		{"top", "container", "c-top", 1 << 20}, {"mid", "container", "c-mid", 0}, {"leaf", "volume", "v-leaf", 1 << 20},
		{"leaf", "container", "c-leaf", 1 << 20}, {"side", "container", "c-side", 1 << 20}, {"other", "volume", "v-other", 1 << 20},
	}
	cases := []struct {
		name                           string
		factories, containers, volumes string
	}{
		{"top", "top mid leaf side", "c-top c-mid c-leaf c-side", "v-leaf"},
		{"mid", "mid leaf", "c-mid c-leaf", "v-leaf"},
		{"side", "side", "c-side", ""},
		{"other", "other", "", "v-other"},
	}
	for _, c := range cases {
		tr, err := newFactoryTree(fs, charges)
		if err != nil {
			t.Fatal(err)
		}
		w, err := tr.revoke(c.name)
		if err != nil {
			t.Fatalf("revoke %s: %v", c.name, err)
		}
		got := [3]string{strings.Join(w.factories, " "), strings.Join(w.containers, " "), strings.Join(w.volumes, " ")}
		if want := [3]string{c.factories, c.containers, c.volumes}; got != want {
			t.Errorf("revoke %s took %q, want %q", c.name, got, want)
		}
		if _, err := tr.revoke(c.name); !errors.Is(err, ErrNoSuchFactory) {
			t.Errorf("revoke %s twice: %v", c.name, err)
		}
	}
}

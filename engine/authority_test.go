package engine

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/oak-engine/oak/core"
	"github.com/oak-engine/oak/sandbox"
	"github.com/oak-engine/oak/services/netsvc"
)

func TestAuthorityGrants(t *testing.T) {
	spec := &Spec{Image: "demo", Layers: []string{"/img"}, Limits: sandbox.Limits{MemoryBytes: 64 << 20, Pids: 32},
		Publish: []string{"127.0.0.1:18080:80", "9000:53/udp"},
		Egress:  []string{"127.0.0.1:6379", "10.0.0.0/8:443/tcp"}}
	a, err := grantAuthority(spec)
	if err != nil {
		t.Fatal(err)
	}
	layers, l, err := a.task()
	if err != nil || len(layers) != 1 || layers[0] != "/img" || l.MemoryBytes != 64<<20 || l.Pids != 32 || l.CPUMilli != 0 || l.TmpfsBytes != sandbox.DefaultTmpfsBytes {
		t.Fatalf("task() = %q, %+v, %v", layers, l, err)
	}
	ap := netip.MustParseAddrPort
	if got, ok := a.Listen("tcp", 80); !ok || got != (netsvc.Published{V4: ap("127.0.0.1:18080")}) {
		t.Errorf("Listen(tcp, 80) = %v, %v", got, ok)
	}
	if got, ok := a.Listen("udp", 53); !ok || got != (netsvc.Published{V4: ap("0.0.0.0:9000"), V6: ap("[::]:9000")}) {
		t.Errorf("Listen(udp, 53) = %v, %v", got, ok)
	}
	for _, c := range []struct {
		proto string
		port  uint16
	}{{"tcp", 81}, {"udp", 80}, {"tcp", 53}} {
		if _, ok := a.Listen(c.proto, c.port); ok {
			t.Errorf("Listen(%s, %d) allowed", c.proto, c.port)
		}
	}
	for _, c := range []struct {
		proto, dst string
		want       bool
	}{
		{"tcp", "127.0.0.1:6379", true}, {"udp", "127.0.0.1:6379", true}, {"tcp", "127.0.0.1:6380", false},
		{"tcp", "127.0.0.2:6379", false}, {"tcp", "10.1.2.3:443", true}, {"udp", "10.1.2.3:443", false},
		{"tcp", "11.0.0.1:443", false}, {"tcp", "[::ffff:10.0.0.1]:443", true},
	} {
		if got := a.Egress(c.proto, ap(c.dst)); got != c.want {
			t.Errorf("Egress(%s, %s) = %v, want %v", c.proto, c.dst, got, c.want)
		}
	}
	if err := a.revoke("egress 127.0.0.1:6379"); err != nil {
		t.Fatal(err)
	}
	if a.Egress("tcp", ap("127.0.0.1:6379")) {
		t.Error("egress still allowed after revoke")
	}
	if !a.Egress("tcp", ap("10.1.2.3:443")) {
		t.Error("revoking one grant took another")
	}
	if err := a.revoke("publish nosuch"); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("revoke of an unknown grant: %v", err)
	}
}

func TestNoGrantsNoNetwork(t *testing.T) {
	a, err := grantAuthority(&Spec{Image: "demo", Layers: []string{"/img"}})
	if err != nil {
		t.Fatal(err)
	}
	if a.hasNetwork() || a.Any("tcp") || a.Any("udp") {
		t.Error("a container without grants holds network authority")
	}
	if a.Egress("tcp", netip.MustParseAddrPort("127.0.0.1:1")) {
		t.Error("egress without a grant")
	}
}

func TestParseGrantsDuplicates(t *testing.T) {
	if _, err := parseGrants([]string{"8080:80", "127.0.0.1:8080:81"}, nil); err == nil || !strings.Contains(err.Error(), "published twice") {
		t.Errorf("duplicate host port: %v", err)
	}
	if _, err := parseGrants([]string{"8080:80", "8080:80/udp", "127.0.0.1:8081:80", "127.0.0.2:8081:80"}, nil); err != nil {
		t.Errorf("distinct grants refused: %v", err)
	}
}

func TestConflicts(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"8080:80", "8080:81", true},
		{"8080:80", "127.0.0.1:8080:81", true},
		{"8080:80", "[::1]:8080:81", true},
		{"127.0.0.1:8080:80", "[::1]:8080:81", false}, // one family each
		{"0.0.0.0:8080:80", "[::]:8080:81", false},
		{"0.0.0.0:8080:80", "127.0.0.1:8080:81", true},
		{"[::]:8080:80", "[::1]:8080:81", true},
		{"127.0.0.1:8080:80", "127.0.0.2:8080:81", false},
		{"8080:80", "8080:80/udp", false},
		{"8080:80", "8081:80", false},
		{"80", "80", false}, // no host port yet: one is picked for each
	} {
		a, err1 := core.ParseListen(c.a)
		b, err2 := core.ParseListen(c.b)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if got := conflicts(a, b); got != c.want {
			t.Errorf("conflicts(%s, %s) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

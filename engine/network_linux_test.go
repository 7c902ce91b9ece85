package engine

import (
	"strings"
	"testing"
)

func TestDecodeNetGrants(t *testing.T) {
	g, err := decodeNetGrants([]byte(`{"publish":["127.0.0.1:8080:80"],"egress":["10.0.0.0/8:443"]}` + "\n"))
	if err != nil || len(g.Publish) != 1 || len(g.Egress) != 1 {
		t.Fatalf("decode = %+v, %v", g, err)
	}
	for _, bad := range []string{
		``, `{`, `[]`, `{"publish":["99999:80"]}`, `{"egress":["300.1.1.1:80"]}`,
		`{"publish":[],"extra":1}`, `{"publish":[]} {"publish":[]}`, `{"publish":["8080:80","8080:81"]}`,
	} {
		if _, err := decodeNetGrants([]byte(bad)); err == nil || !strings.HasPrefix(err.Error(), "grants message") {
			t.Errorf("decode(%q) = %v, want a grants message error", bad, err)
		}
	}
}

func FuzzDecodeNetGrants(f *testing.F) {
	f.Add([]byte(`{"publish":["127.0.0.1:8080:80/udp"],"egress":["any"]}`))
	f.Add([]byte(`{"egress":["10.0.0.0/8:443/tcp"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := decodeNetGrants(b)
		if err != nil {
			return
		}
		if _, err := grantAuthority(&Spec{Publish: g.Publish, Egress: g.Egress}); err != nil {
			t.Fatalf("accepted grants the core refuses: %+v: %v", g, err)
		}
	})
}

func TestRevokeTwice(t *testing.T) {
	a, err := grantAuthority(&Spec{Image: "demo", Layers: []string{"/img"}, Egress: []string{"127.0.0.1:6379"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.revoke("egress 127.0.0.1:6379"); err != nil {
		t.Fatal(err)
	}
	if err := a.revoke("egress 127.0.0.1:6379"); err == nil {
		t.Error("revoking a grant the container no longer holds succeeded")
	}
	if len(a.grants().Egress) != 0 {
		t.Errorf("grants after revoke: %+v", a.grants())
	}
}

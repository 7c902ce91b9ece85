package engine

import (
	"testing"

	"github.com/oak-engine/oak/core"
)

func TestPickHostPorts(t *testing.T) {
	e := &Engine{Root: t.TempDir()}
	in := []string{"80", "8080:81", "127.0.0.1::82/udp", "[::1]::83", "84"}
	out, err := e.pickHostPorts(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) || out[1] != "8080:81" {
		t.Fatalf("pickHostPorts(%q) = %q", in, out)
	}
	var ls []core.Listen
	for i, p := range out {
		l, err := core.ParseListen(p)
		if err != nil || l.HostPort == 0 {
			t.Fatalf("picked %q for %q: %v", p, in[i], err)
		}
		want, _ := core.ParseListen(in[i])
		if l.HostIP != want.HostIP || l.Proto != want.Proto || l.ContainerPort != want.ContainerPort {
			t.Errorf("picked %q for %q: only the host port may change", p, in[i])
		}
		for _, o := range ls {
			if conflicts(l, o) {
				t.Errorf("picked %q, which conflicts with %q", p, o)
			}
		}
		ls = append(ls, l)
	}
}

func TestParsePortFilter(t *testing.T) {
	for _, c := range []struct {
		in    string
		port  uint16
		proto string
		ok    bool
	}{
		{"80", 80, "tcp", true}, {"53/udp", 53, "udp", true}, {"80/tcp", 80, "tcp", true},
		{"0", 0, "", false}, {"80/sctp", 0, "", false}, {"x", 0, "", false}, {"70000", 0, "", false},
	} {
		port, proto, err := ParsePortFilter(c.in)
		if (err == nil) != c.ok || port != c.port || proto != c.proto {
			t.Errorf("ParsePortFilter(%q) = %d, %q, %v", c.in, port, proto, err)
		}
	}
}

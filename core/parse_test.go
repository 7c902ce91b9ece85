package core

import (
	"cmp"
	"net/netip"
	"strings"
	"testing"
)

var addr = netip.MustParseAddr

var listenTests = []struct {
	in   string
	want Listen
	str  string // want.String(), if not in
	err  string
}{
	{in: "80", want: Listen{Proto: "tcp", ContainerPort: 80}, str: "80/tcp"},
	{in: "8080:80", want: Listen{Proto: "tcp", ContainerPort: 80, HostPort: 8080}, str: "8080:80/tcp"},
	{in: "127.0.0.1:8080:80/udp", want: Listen{Proto: "udp", ContainerPort: 80, HostIP: addr("127.0.0.1"), HostPort: 8080}},
	{in: "127.0.0.1::80", want: Listen{Proto: "tcp", ContainerPort: 80, HostIP: addr("127.0.0.1")}, str: "127.0.0.1::80/tcp"},
	{in: "[::1]:8080:80/tcp", want: Listen{Proto: "tcp", ContainerPort: 80, HostIP: addr("::1"), HostPort: 8080}},
	{in: "[::1]::53/udp", want: Listen{Proto: "udp", ContainerPort: 53, HostIP: addr("::1")}},
	{in: "65535:1/tcp", want: Listen{Proto: "tcp", ContainerPort: 1, HostPort: 65535}},
	{in: "080:80", want: Listen{Proto: "tcp", ContainerPort: 80, HostPort: 80}, str: "80:80/tcp"},

	{in: "99999:80", err: "-p 99999:80: host port 99999 out of range 1-65535"},
	{in: "0:80", err: "-p 0:80: host port 0 out of range 1-65535"},
	{in: "80:0", err: "-p 80:0: container port 0 out of range 1-65535"},
	{in: "99999999999999999999", err: "container port 99999999999999999999 out of range 1-65535"},
	{in: "80/sctp", err: `-p 80/sctp: unknown protocol "sctp" (want tcp or udp)`},
	{in: "80/", err: `unknown protocol "" (want tcp or udp)`},
	{in: "", err: "-p : container port is empty"},
	{in: "8080:", err: "container port is empty"},
	{in: "8000-8010:80", err: `-p 8000-8010:80: host port "8000-8010" is a range; ranges are not supported`},
	{in: "http:80", err: `host port "http" is not a number`},
	{in: "+80", err: `container port "+80" is not a number`},
	{in: "1.2.3:80:80", err: `-p 1.2.3:80:80: bad host IP "1.2.3"`},
	{in: "::80", err: `bad host IP ""`},
	{in: "::1:80:80", err: "want [HOSTIP:][HOSTPORT:]PORT[/tcp|/udp]"},
	{in: "1:2:3:4", err: "want [HOSTIP:][HOSTPORT:]PORT[/tcp|/udp]"},
	{in: "[::1]:80", err: "want [HOSTIP:][HOSTPORT:]PORT[/tcp|/udp]"},
	{in: "[::1:8080:80", err: "want [IPV6]:HOSTPORT:PORT"},
	{in: "[::1]8080:80", err: "want [IPV6]:HOSTPORT:PORT"},
	{in: "[1.2.3.4]:80:80", err: "IPv4 host IP 1.2.3.4 in brackets"},
	{in: "[fe80::1%eth0]:80:80", err: "host IP fe80::1%eth0 has a zone"},
}

func TestParseListen(t *testing.T) {
	for _, tt := range listenTests {
		got, err := ParseListen(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseListen(%q) = %+v, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseListen(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			continue
		}
		if str := cmp.Or(tt.str, tt.in); got.String() != str {
			t.Errorf("ParseListen(%q).String() = %q, want %q", tt.in, got.String(), str)
		}
	}
}

var egressTests = []struct {
	in   string
	want Egress
	str  string
	err  string
}{
	{in: "any", want: Egress{Any: true}},
	{in: "any:443", want: Egress{Any: true, Port: 443}},
	{in: "any/udp", want: Egress{Any: true, Proto: "udp"}},
	{in: "10.0.0.0/8", want: Egress{Prefix: netip.MustParsePrefix("10.0.0.0/8")}},
	{in: "10.0.0.0/8:443", want: Egress{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Port: 443}},
	{in: "10.0.0.0/8:443/tcp", want: Egress{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Port: 443, Proto: "tcp"}},
	{in: "192.168.1.10:53/udp", want: Egress{Prefix: netip.MustParsePrefix("192.168.1.10/32"), Port: 53, Proto: "udp"}},
	{in: "192.168.1.10/32", want: Egress{Prefix: netip.MustParsePrefix("192.168.1.10/32")}, str: "192.168.1.10"},
	{in: "0.0.0.0/0", want: Egress{Prefix: netip.MustParsePrefix("0.0.0.0/0")}},
	{in: "2001:db8::/32", want: Egress{Prefix: netip.MustParsePrefix("2001:db8::/32")}},
	{in: "[2001:db8::/32]:443", want: Egress{Prefix: netip.MustParsePrefix("2001:db8::/32"), Port: 443}},
	{in: "[::1]:443/tcp", want: Egress{Prefix: netip.MustParsePrefix("::1/128"), Port: 443, Proto: "tcp"}},
	{in: "::1/tcp", want: Egress{Prefix: netip.MustParsePrefix("::1/128"), Proto: "tcp"}},
	{in: "[::1]", want: Egress{Prefix: netip.MustParsePrefix("::1/128")}, str: "::1"},

	{in: "10.0.0.0/33", err: `--egress 10.0.0.0/33: bad prefix "10.0.0.0/33"`},
	{in: "10.1.0.0/8", err: "--egress 10.1.0.0/8: prefix 10.1.0.0/8 has host bits set (did you mean 10.0.0.0/8?)"},
	{in: "10.0.0.0/8:0", err: "--egress 10.0.0.0/8:0: port 0 out of range 1-65535"},
	{in: "10.0.0.0/8:70000", err: "port 70000 out of range 1-65535"},
	{in: "10.0.0.0/8:", err: "--egress 10.0.0.0/8:: empty port"},
	{in: "10.0.0.0/8:80-90", err: `port "80-90" is a range; ranges are not supported`},
	{in: "any/icmp", err: `--egress any/icmp: unknown protocol "icmp" (want tcp or udp)`},
	{in: "example.com:443", err: `--egress example.com:443: bad address "example.com" (want any, an address or a prefix)`},
	{in: "", err: `bad address ""`},
	{in: "[::1", err: `missing ] after "[::1"`},
	{in: "[::1]443", err: `want [IPV6]:PORT, have "443" after ]`},
	{in: "[::1]:", err: "empty port"},
	{in: "[1.2.3.4]:80", err: "IPv4 destination 1.2.3.4/32 in brackets"},
	{in: "[any]:80", err: `bad address "any"`},
	{in: "fe80::1%eth0", err: "address fe80::1%eth0 has a zone"},
}

func TestParseEgress(t *testing.T) {
	for _, tt := range egressTests {
		got, err := ParseEgress(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseEgress(%q) = %+v, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseEgress(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			continue
		}
		if str := cmp.Or(tt.str, tt.in); got.String() != str {
			t.Errorf("ParseEgress(%q).String() = %q, want %q", tt.in, got.String(), str)
		}
	}
}

// FuzzParseListen checks that ParseListen either refuses an argument with an
// error naming it, or returns a well-formed grant whose String parses back
// to the same grant.
func FuzzParseListen(f *testing.F) {
	for _, tt := range listenTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		l, err := ParseListen(in)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "-p "+in+": ") {
				t.Fatalf("ParseListen(%q): error %q does not name the argument", in, err)
			}
			return
		}
		if err := l.validate(); err != nil {
			t.Fatalf("ParseListen(%q) = %+v, invalid: %v", in, l, err)
		}
		back, err := ParseListen(l.String())
		if err != nil || back != l {
			t.Fatalf("ParseListen(%q) = %+v; its String %q parses to %+v, %v", in, l, l.String(), back, err)
		}
	})
}

// FuzzParseEgress is FuzzParseListen for ParseEgress.
func FuzzParseEgress(f *testing.F) {
	for _, tt := range egressTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		e, err := ParseEgress(in)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "--egress "+in+": ") {
				t.Fatalf("ParseEgress(%q): error %q does not name the argument", in, err)
			}
			return
		}
		if err := e.validate(); err != nil {
			t.Fatalf("ParseEgress(%q) = %+v, invalid: %v", in, e, err)
		}
		back, err := ParseEgress(e.String())
		if err != nil || back != e {
			t.Fatalf("ParseEgress(%q) = %+v; its String %q parses to %+v, %v", in, e, e.String(), back, err)
		}
	})
}

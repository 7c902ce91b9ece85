package core

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ParseListen parses the argument of -p, [HOSTIP:][HOSTPORT:]PORT[/PROTO]
// as docker and podman take it: "80", "8080:80", "127.0.0.1:8080:80/udp",
// "[::1]:8080:80", "127.0.0.1::80". PROTO is tcp (the default) or udp; an
// omitted or empty HOSTPORT means a free port the engine picks when the
// container starts; an IPv6 HOSTIP is bracketed. No HOSTIP publishes on
// every address of both families; 0.0.0.0 every IPv4 address, [::] every
// IPv6 address. It refuses ports outside 1-65535, port ranges,
// unknown protocols and zoned addresses; the error names the argument and
// the cause, e.g. "-p 99999:80: host port 99999 out of range 1-65535".
func ParseListen(arg string) (Listen, error) {
	fail := func(format string, a ...any) (Listen, error) {
		return Listen{}, fmt.Errorf("-p %s: %s", arg, fmt.Sprintf(format, a...))
	}
	l := Listen{Proto: "tcp"}
	rest := arg
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		l.Proto, rest = rest[i+1:], rest[:i]
		if l.Proto != "tcp" && l.Proto != "udp" {
			return fail("unknown protocol %q (want tcp or udp)", l.Proto)
		}
	}
	var ip string
	bracketed := strings.HasPrefix(rest, "[")
	hasIP := bracketed
	if bracketed {
		end := strings.IndexByte(rest, ']')
		if end < 0 || !strings.HasPrefix(rest[end+1:], ":") {
			return fail("want [IPV6]:HOSTPORT:PORT")
		}
		ip, rest = rest[1:end], rest[end+2:]
	}
	parts := strings.Split(rest, ":")
	switch {
	case bracketed && len(parts) == 2:
	case !bracketed && len(parts) == 3:
		ip, parts, hasIP = parts[0], parts[1:], true
	case !bracketed && len(parts) <= 2:
	default:
		return fail("want [HOSTIP:][HOSTPORT:]PORT[/tcp|/udp]")
	}
	if hasIP {
		a, err := netip.ParseAddr(ip)
		switch {
		case err != nil:
			return fail("bad host IP %q", ip)
		case a.Zone() != "":
			return fail("host IP %s has a zone", a)
		case bracketed && a.Is4():
			return fail("IPv4 host IP %s in brackets", a)
		}
		l.HostIP = a
	}
	var err error
	if l.ContainerPort, err = parsePort(parts[len(parts)-1]); err != nil {
		return fail("container %v", err)
	}
	if len(parts) == 2 && parts[0] != "" {
		if l.HostPort, err = parsePort(parts[0]); err != nil {
			return fail("host %v", err)
		}
	}
	return l, nil
}

// String returns the grant in the syntax ParseListen takes, e.g.
// "127.0.0.1:8080:80/udp".
func (l Listen) String() string {
	var b strings.Builder
	if l.HostIP.IsValid() {
		if l.HostIP.Is4() {
			b.WriteString(l.HostIP.String() + ":")
		} else {
			b.WriteString("[" + l.HostIP.String() + "]:")
		}
	}
	if l.HostPort != 0 {
		b.WriteString(strconv.Itoa(int(l.HostPort)) + ":")
	} else if l.HostIP.IsValid() {
		b.WriteString(":")
	}
	fmt.Fprintf(&b, "%d/%s", l.ContainerPort, l.Proto)
	return b.String()
}

// ParseEgress parses the argument of --egress, DEST[:PORT][/PROTO], where
// DEST is "any", an address or a CIDR prefix ("10.0.0.0/8",
// "[2001:db8::/32]:443"; an IPv6 DEST is bracketed when a port follows).
// No PORT means any port; no PROTO means tcp and udp. It refuses ports
// outside 1-65535, prefixes with host bits set, unknown protocols and zoned
// addresses; the error names the argument and the cause.
func ParseEgress(arg string) (Egress, error) {
	fail := func(format string, a ...any) (Egress, error) {
		return Egress{}, fmt.Errorf("--egress %s: %s", arg, fmt.Sprintf(format, a...))
	}
	var e Egress
	rest := arg
	if i := strings.LastIndexByte(rest, '/'); i >= 0 && isLetters(rest[i+1:]) {
		e.Proto, rest = rest[i+1:], rest[:i]
		if e.Proto != "tcp" && e.Proto != "udp" {
			return fail("unknown protocol %q (want tcp or udp)", e.Proto)
		}
	}
	dest, port := rest, ""
	bracketed := strings.HasPrefix(rest, "[")
	if bracketed {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return fail("missing ] after %q", rest)
		}
		dest, port = rest[1:end], rest[end+1:]
		if port != "" && !strings.HasPrefix(port, ":") {
			return fail("want [IPV6]:PORT, have %q after ]", port)
		}
		port = strings.TrimPrefix(port, ":")
		if port == "" && rest[end+1:] != "" {
			return fail("empty port")
		}
	} else if strings.Count(rest, ":") == 1 {
		dest, port, _ = strings.Cut(rest, ":")
		if port == "" {
			return fail("empty port")
		}
	}
	switch {
	case dest == "any" && !bracketed:
		e.Any = true
	case strings.Contains(dest, "/"):
		p, err := netip.ParsePrefix(dest)
		switch {
		case err != nil:
			return fail("bad prefix %q", dest)
		case p != p.Masked():
			return fail("prefix %s has host bits set (did you mean %s?)", p, p.Masked())
		}
		e.Prefix = p
	default:
		a, err := netip.ParseAddr(dest)
		switch {
		case err != nil:
			return fail("bad address %q (want any, an address or a prefix)", dest)
		case a.Zone() != "":
			return fail("address %s has a zone", a)
		}
		e.Prefix = netip.PrefixFrom(a, a.BitLen())
	}
	if bracketed && e.Prefix.Addr().Is4() {
		return fail("IPv4 destination %s in brackets", e.Prefix)
	}
	if port != "" {
		var err error
		if e.Port, err = parsePort(port); err != nil {
			return fail("%v", err)
		}
	}
	return e, nil
}

// String returns the grant in the syntax ParseEgress takes, e.g.
// "10.0.0.0/8:443/tcp" or "any".
func (e Egress) String() string {
	dest, v6 := "any", false
	if !e.Any {
		v6 = !e.Prefix.Addr().Is4()
		dest = e.Prefix.String()
		if e.Prefix.IsSingleIP() {
			dest = e.Prefix.Addr().String()
		}
	}
	if e.Port != 0 {
		if v6 {
			dest = "[" + dest + "]"
		}
		dest += ":" + strconv.Itoa(int(e.Port))
	}
	if e.Proto != "" {
		dest += "/" + e.Proto
	}
	return dest
}

// parsePort parses a decimal port number in 1-65535.
func parsePort(s string) (uint16, error) {
	if s == "" {
		return 0, fmt.Errorf("port is empty")
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			if r == '-' {
				return 0, fmt.Errorf("port %q is a range; ranges are not supported", s)
			}
			return 0, fmt.Errorf("port %q is not a number", s)
		}
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("port %s out of range 1-65535", s)
	}
	return uint16(n), nil
}

func isLetters(s string) bool {
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') {
			return false
		}
	}
	return s != ""
}

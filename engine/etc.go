package engine

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"sync"

	"github.com/oak-engine/oak/sandbox"
)

// NameOptions are what a container's name service files say: its host
// name, resolvers and extra hosts, as docker's --hostname, --dns,
// --dns-search, --dns-option and --add-host take them.
type NameOptions struct {
	Hostname   string   `json:"hostname,omitempty"`
	DNS        []string `json:"dns,omitempty"`
	DNSSearch  []string `json:"dns_search,omitempty"`
	DNSOptions []string `json:"dns_options,omitempty"`
	AddHosts   []string `json:"add_hosts,omitempty"` // NAME:IP
}

// hostResolvConf is where the host's resolver configuration is read.
var hostResolvConf = "/etc/resolv.conf"

// hostnameRE is compiled on first use, not at start-up: its bounded
// repeats make it the costliest of oak's package initialisers, and most
// runs name no host.
var hostnameRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,62})(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,62}))*$`)
})

// check validates o, naming the flag and value at fault.
func (o NameOptions) check() error {
	if o.Hostname != "" && (len(o.Hostname) > 64 || !hostnameRE().MatchString(o.Hostname)) {
		return fmt.Errorf("invalid --hostname %q: want letters, digits, '-' and '.', at most 64 characters", o.Hostname)
	}
	for _, d := range o.DNS {
		if _, err := netip.ParseAddr(d); err != nil {
			return fmt.Errorf("invalid --dns %q: not an IP address", d)
		}
	}
	for _, s := range o.DNSSearch {
		if s != "." && !hostnameRE().MatchString(s) {
			return fmt.Errorf("invalid --dns-search %q: not a domain name", s)
		}
	}
	for _, s := range o.DNSOptions {
		if s == "" || strings.ContainsAny(s, " \t\n\r") {
			return fmt.Errorf("invalid --dns-option %q: want one word such as ndots:2", s)
		}
	}
	for _, h := range o.AddHosts {
		name, ip, ok := strings.Cut(h, ":")
		if !ok || !hostnameRE().MatchString(name) {
			return fmt.Errorf("invalid --add-host %q: want NAME:IP", h)
		}
		if _, err := netip.ParseAddr(strings.Trim(ip, "[]")); err != nil {
			return fmt.Errorf("invalid --add-host %q: %q is not an IP address", h, ip)
		}
	}
	return nil
}

// etcFiles are /etc/hostname, /etc/hosts and /etc/resolv.conf for a
// container named host. The resolvers are --dns, else the host's own:
// a container's sockets live in the host's network namespace, so the
// host's resolver (even a loopback one) is the one that answers — under
// an egress grant to it, like any other destination.
func (o NameOptions) etcFiles(host string) []sandbox.File {
	var hosts bytes.Buffer
	fmt.Fprintf(&hosts, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	fmt.Fprintf(&hosts, "127.0.1.1\t%s\n", host)
	for _, h := range o.AddHosts {
		name, ip, _ := strings.Cut(h, ":")
		fmt.Fprintf(&hosts, "%s\t%s\n", strings.Trim(ip, "[]"), name)
	}
	return []sandbox.File{
		{Path: "/etc/hostname", Data: []byte(host + "\n"), Mode: 0o644},
		{Path: "/etc/hosts", Data: hosts.Bytes(), Mode: 0o644},
		{Path: "/etc/resolv.conf", Data: o.resolvConf(), Mode: 0o644},
	}
}

func (o NameOptions) resolvConf() []byte {
	var servers, search, options []string
	if b, err := os.ReadFile(hostResolvConf); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 2 || strings.HasPrefix(f[0], "#") {
				continue
			}
			switch f[0] {
			case "nameserver":
				servers = append(servers, f[1])
			case "search", "domain":
				search = f[1:]
			case "options":
				options = append(options, f[1:]...)
			}
		}
	}
	if len(o.DNS) > 0 {
		servers = o.DNS
	}
	if len(o.DNSSearch) > 0 {
		search = o.DNSSearch
		if len(search) == 1 && search[0] == "." {
			search = nil
		}
	}
	if len(o.DNSOptions) > 0 {
		options = o.DNSOptions
	}
	var b bytes.Buffer
	b.WriteString("# made by oak for this container\n")
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	return b.Bytes()
}

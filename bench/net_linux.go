package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// runcNetBase is where the runc variant's /30 is taken from: a /16 of
// 10.0.0.0/8 that docker, podman, libvirt and the usual VPNs leave alone.
// Each benchmark process starts at its own /30 (by pid) and takes the first
// one that no route of the host overlaps.
var runcNetBase = netip.MustParsePrefix("10.231.0.0/16")

// runcNetTag marks everything a benchmark process makes on the host: its
// network namespace is named, and its iptables rules are commented, with
// the tag and the process id.
const runcNetTag = "oakbench-"

// runcNet is the network the runc variant's container lives in, and how to
// take it down again.
type runcNet struct {
	ns      string // network namespace name, under /run/netns
	hostIf  string // host end of the veth pair
	contIf  string // container end, inside ns
	bridge  string // the bridge the host end is a port of; "" without one
	hostDev string // the device with the host's address: bridge or hostIf
	hostIP  netip.Addr
	contIP  netip.Addr
	prefix  netip.Prefix
	// forward describes the port forward from 127.0.0.1; if there is
	// none, noForward says why and the container is reached at contIP.
	forward   string
	noForward string
	undo      []func(context.Context) error
}

// command runs argv; an error names the command and includes its output.
func command(ctx context.Context, argv ...string) error {
	out, err := commandCombinedOutput(ctx, argv)
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, oneLine(out))
	}
	return nil
}

// down undoes what was set up, last first, and returns every failure.
func (n *runcNet) down(ctx context.Context) error {
	var errs []error
	for i := len(n.undo) - 1; i >= 0; i-- {
		errs = append(errs, n.undo[i](ctx))
	}
	n.undo = nil
	return errors.Join(errs...)
}

// setUpRuncNet makes the runc variant's network, docker's way: a network
// namespace, a veth pair from it to the host (the host end a port of a
// bridge in RuncNetBridge mode), a /30 with the host at .1 and the
// container at .2 and its default route via the host, and — if iptables
// works — a port forward from 127.0.0.1:port to the container's
// ContainerPort as docker makes it with its userland proxy off: DNAT in nat
// OUTPUT, MASQUERADE in nat POSTROUTING and route_localnet on the host's
// device (docker sets it on docker0). Without iptables the container is
// reached directly, and noForward says why. On failure it takes down what it
// made.
func setUpRuncNet(ctx context.Context, mode string, port int) (n *runcNet, err error) {
	pid := os.Getpid()
	n = &runcNet{
		ns:     fmt.Sprintf("%s%d", runcNetTag, pid),
		hostIf: fmt.Sprintf("oakv%dh", pid),
		contIf: fmt.Sprintf("oakv%dc", pid),
	}
	made := n // a bare "return nil, err" below sets n to nil before this runs
	defer func() {
		if err != nil {
			made.down(context.WithoutCancel(ctx))
			n = nil
		}
	}()
	if n.prefix, err = freeSlash30(ctx, pid); err != nil {
		return nil, err
	}
	n.hostIP = n.prefix.Addr().Next()
	n.contIP = n.hostIP.Next()
	ipn := func(args ...string) []string { return append([]string{"ip", "-n", n.ns}, args...) }

	step := func(argv []string, undo []string) error {
		if err := command(ctx, argv...); err != nil {
			return err
		}
		if undo != nil {
			n.undo = append(n.undo, func(ctx context.Context) error { return command(ctx, undo...) })
		}
		return nil
	}
	hostAddr := n.hostIP.String() + "/30"
	contAddr := n.contIP.String() + "/30"
	steps := [][2][]string{
		{{"ip", "netns", "add", n.ns}, {"ip", "netns", "del", n.ns}},
		// The peer is made inside the namespace. Deleting the namespace
		// would delete the pair too, but asynchronously (the namespace's
		// clean-up runs on a workqueue), so that a set-up right after
		// could still find the host end: delete it explicitly, which
		// removes both ends at once.
		{{"ip", "link", "add", n.hostIf, "type", "veth", "peer", "name", n.contIf, "netns", n.ns}, {"ip", "link", "del", n.hostIf}},
	}
	n.hostDev = n.hostIf
	if mode == RuncNetBridge {
		n.bridge = fmt.Sprintf("oakbr%d", pid)
		n.hostDev = n.bridge
		steps = append(steps,
			[2][]string{{"ip", "link", "add", n.bridge, "type", "bridge"}, {"ip", "link", "del", n.bridge}},
			[2][]string{{"ip", "link", "set", n.hostIf, "master", n.bridge}, nil},
			[2][]string{{"ip", "link", "set", n.bridge, "up"}, nil},
		)
	}
	steps = append(steps,
		[2][]string{{"ip", "addr", "add", hostAddr, "dev", n.hostDev}, nil},
		[2][]string{{"ip", "link", "set", n.hostIf, "up"}, nil},
		[2][]string{ipn("link", "set", "lo", "up"), nil},
		[2][]string{ipn("addr", "add", contAddr, "dev", n.contIf), nil},
		[2][]string{ipn("link", "set", n.contIf, "up"), nil},
		[2][]string{ipn("route", "add", "default", "via", n.hostIP.String()), nil},
	)
	for _, s := range steps {
		if err := step(s[0], s[1]); err != nil {
			return nil, err
		}
	}

	if why := iptablesUsable(ctx); why != "" {
		n.noForward = why
		return n, nil
	}
	// route_localnet lets packets from and to 127.0.0.1 use the host's
	// device: out after DNAT, and back in before conntrack restores the
	// loopback address. The device goes with the namespace, so there is
	// nothing to restore.
	sysctl := filepath.Join("/proc/sys/net/ipv4/conf", n.hostDev, "route_localnet")
	if err := os.WriteFile(sysctl, []byte("1\n"), 0o644); err != nil {
		return nil, fmt.Errorf("route_localnet: %w", err)
	}
	tag := fmt.Sprintf("%s%d", runcNetTag, pid)
	dest := netip.AddrPortFrom(n.contIP, ContainerPort).String()
	rules := [][]string{
		{"OUTPUT", "-d", "127.0.0.1/32", "-p", "tcp", "--dport", strconv.Itoa(port),
			"-m", "comment", "--comment", tag, "-j", "DNAT", "--to-destination", dest},
		{"POSTROUTING", "-s", "127.0.0.0/8", "-d", n.contIP.String() + "/32", "-o", n.hostDev, "-p", "tcp",
			"--dport", strconv.Itoa(ContainerPort), "-m", "comment", "--comment", tag, "-j", "MASQUERADE"},
	}
	// iptables-nft makes the nat table on the first rule and leaves it,
	// empty, when the rules go; the table keeps connection tracking on for
	// every packet of the host. Remove it again if it is ours and empty.
	if nft, err := exec.LookPath("nft"); err == nil && command(ctx, nft, "list", "table", "ip", "nat") != nil {
		n.undo = append(n.undo, func(ctx context.Context) error { return dropEmptyNatTable(ctx, nft) })
	}
	for _, r := range rules {
		add := append([]string{"iptables", "-w", "-t", "nat", "-A"}, r...)
		del := append([]string{"iptables", "-w", "-t", "nat", "-D"}, r...)
		if err := step(add, del); err != nil {
			return nil, err
		}
	}
	n.forward = fmt.Sprintf("127.0.0.1:%d → %s by %s: DNAT in nat OUTPUT, MASQUERADE in nat POSTROUTING, route_localnet=1 on %s",
		port, dest, iptablesVersion(ctx), n.hostDev)
	return n, nil
}

// dropEmptyNatTable deletes nftables' table ip nat if it holds no rule.
func dropEmptyNatTable(ctx context.Context, nft string) error {
	out, err := commandOutput(ctx, []string{nft, "-j", "list", "table", "ip", "nat"})
	if err != nil || strings.Contains(out, `"rule"`) {
		return nil // gone already, or someone else's rules are in it
	}
	return command(ctx, nft, "delete", "table", "ip", "nat")
}

// iptablesUsable returns "" if iptables can change the nat table here, or
// why not.
func iptablesUsable(ctx context.Context) string {
	if _, err := exec.LookPath("iptables"); err != nil {
		return "iptables not found (Debian: apt-get install iptables)"
	}
	if err := command(ctx, "iptables", "-w", "-t", "nat", "-S", "OUTPUT"); err != nil {
		return err.Error()
	}
	return ""
}

// iptablesVersion is "iptables v1.8.9 (nf_tables)" or "iptables".
func iptablesVersion(ctx context.Context) string {
	out, err := commandOutput(ctx, []string{"iptables", "--version"})
	if v := strings.TrimSpace(out); err == nil && v != "" {
		return v
	}
	return "iptables"
}

// freeSlash30 returns a /30 of runcNetBase that no route of the host (any
// table, addresses included) overlaps, starting from one chosen by pid.
func freeSlash30(ctx context.Context, pid int) (netip.Prefix, error) {
	out, err := commandOutput(ctx, []string{"ip", "-j", "-4", "route", "show", "table", "all"})
	if err != nil {
		return netip.Prefix{}, err
	}
	used, err := routePrefixes(out)
	if err != nil {
		return netip.Prefix{}, err
	}
	return pickSlash30(runcNetBase, pid, used)
}

// routePrefixes parses the destinations of `ip -j route` output; "default"
// is left out.
func routePrefixes(out string) ([]netip.Prefix, error) {
	var routes []struct {
		Dst string `json:"dst"`
	}
	if err := json.Unmarshal([]byte(out), &routes); err != nil {
		return nil, fmt.Errorf("ip route: %w", err)
	}
	var ps []netip.Prefix
	for _, r := range routes {
		if r.Dst == "" || r.Dst == "default" {
			continue
		}
		s := r.Dst
		if !strings.Contains(s, "/") {
			s += "/32"
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("ip route: destination %q: %w", r.Dst, err)
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// pickSlash30 returns the first /30 of base, starting at the seed-th and
// wrapping around, that overlaps none of used.
func pickSlash30(base netip.Prefix, seed int, used []netip.Prefix) (netip.Prefix, error) {
	count := 1 << (30 - base.Bits())
	start := base.Masked().Addr().As4()
	first := uint32(start[0])<<24 | uint32(start[1])<<16 | uint32(start[2])<<8 | uint32(start[3])
	for i := range count {
		k := uint32((seed + i) % count)
		a := first + 4*k
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), 30)
		free := true
		for _, u := range used {
			if u.Overlaps(p) {
				free = false
				break
			}
		}
		if free {
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("no free /30 in %s", base)
}

// cleanStaleRuncNets removes what benchmark processes that no longer run
// left behind (killed before they could clean up): their network
// namespaces, bridges and iptables rules. It returns what it removed.
func cleanStaleRuncNets(ctx context.Context) []string {
	var removed []string
	stale := func(name string) (int, bool) {
		pid, err := strconv.Atoi(strings.TrimPrefix(name, runcNetTag))
		if !strings.HasPrefix(name, runcNetTag) || err != nil || pid == os.Getpid() {
			return 0, false
		}
		_, err = os.Stat("/proc/" + strconv.Itoa(pid))
		return pid, errors.Is(err, fs.ErrNotExist)
	}
	if entries, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range entries {
			pid, ok := stale(e.Name())
			if !ok {
				continue
			}
			if command(ctx, "ip", "netns", "del", e.Name()) == nil {
				removed = append(removed, "network namespace "+e.Name())
			}
			br := fmt.Sprintf("oakbr%d", pid)
			if _, err := net.InterfaceByName(br); err == nil && command(ctx, "ip", "link", "del", br) == nil {
				removed = append(removed, "bridge "+br)
			}
		}
	}
	if iptablesUsable(ctx) != "" {
		return removed
	}
	for _, chain := range []string{"OUTPUT", "POSTROUTING"} {
		out, err := commandOutput(ctx, []string{"iptables", "-w", "-t", "nat", "-S", chain})
		if err != nil {
			continue
		}
		for line := range strings.Lines(out) {
			f := strings.Fields(line)
			if len(f) < 2 || f[0] != "-A" {
				continue
			}
			for i := 0; i+1 < len(f); i++ {
				if f[i] != "--comment" {
					continue
				}
				if _, ok := stale(strings.Trim(f[i+1], `"`)); ok {
					f[0] = "-D"
					if command(ctx, append([]string{"iptables", "-w", "-t", "nat"}, f...)...) == nil {
						removed = append(removed, "iptables rule "+strings.Join(f[1:], " "))
					}
				}
				break
			}
		}
	}
	return removed
}

// startRuncServer starts the server in a runc container on the network
// setUpRuncNet makes. It returns a skip reason, not an error, when runc
// cannot run here at all.
func startRuncServer(ctx context.Context, cfg NetConfig, env *netEnv) (*netServer, string, error) {
	runc := cfg.RuncPath
	if runc == "" {
		p, err := exec.LookPath("runc")
		if err != nil {
			return nil, "runc not found", nil
		}
		runc = p
	} else if _, err := os.Stat(runc); err != nil {
		return nil, "", fmt.Errorf("runc binary: %w", err)
	}
	if os.Geteuid() != 0 {
		return nil, "needs root (network namespace, links, iptables)", nil
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, "ip (iproute2) not found", nil
	}
	if env.rootfsErr != nil {
		return nil, "", env.rootfsErr
	}
	rootfs, work := env.rootfs, env.work
	for _, r := range cleanStaleRuncNets(ctx) {
		env.logf("runc: removed stale %s", r)
	}

	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	rn, err := setUpRuncNet(ctx, cfg.RuncNet, port)
	if err != nil {
		return nil, "", fmt.Errorf("network: %w", err)
	}
	srv := &netServer{stop: rn.down}
	fail := func(err error) (*netServer, string, error) {
		if serr := srv.stop(context.WithoutCancel(ctx)); serr != nil {
			err = fmt.Errorf("%w (cleaning up: %v)", err, serr)
		}
		return nil, "", err
	}
	contAddr := netip.AddrPortFrom(rn.contIP, ContainerPort).String()
	srv.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if rn.noForward != "" {
		srv.addr = contAddr
	}

	bundle := filepath.Join(work, "runc-bundle")
	state := filepath.Join(work, "runc-state")
	for _, d := range []string{bundle, state} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return fail(err)
		}
	}
	if err := runCommand(ctx, []string{runc, "spec", "--bundle", bundle}); err != nil {
		return fail(fmt.Errorf("runc spec: %w", err))
	}
	args := []string{"/oak", NetServerCommand, "--listen", fmt.Sprintf(":%d", ContainerPort)}
	if err := editRuncNetSpec(filepath.Join(bundle, "config.json"), rootfs, args, filepath.Join("/run/netns", rn.ns)); err != nil {
		return fail(err)
	}
	logPath := filepath.Join(work, "runc.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return fail(err)
	}
	defer logFile.Close()
	id := fmt.Sprintf("%s%d", runcNetTag, os.Getpid())
	rc := func(args ...string) []string { return append([]string{runc, "--root", state}, args...) }
	// The container's stdout and stderr are runc's: a file, so that
	// nothing waits on a pipe the container holds open.
	cmd := exec.CommandContext(ctx, runc, "--root", state, "run", "--detach", "--bundle", bundle, id)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Run(); err != nil {
		log, _ := os.ReadFile(logPath)
		return fail(fmt.Errorf("runc run: %w: %s", err, oneLine(string(log))))
	}
	netDown := srv.stop
	srv.stop = func(ctx context.Context) error {
		err := command(ctx, rc("delete", "--force", id)...)
		return errors.Join(err, netDown(ctx))
	}
	exited := func(ctx context.Context) error {
		out, err := commandOutput(ctx, rc("state", id))
		if err != nil {
			return err
		}
		var st struct {
			Status string `json:"status"`
		}
		if json.Unmarshal([]byte(out), &st) == nil && st.Status == "stopped" {
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("runc container %s stopped: %s", id, oneLine(string(log)))
		}
		return nil
	}
	if err := waitServer(ctx, srv.addr, cfg.ReadyTimeout, exited); err != nil {
		return fail(err)
	}

	version := runc
	if out, err := commandOutput(ctx, []string{runc, "--version"}); err == nil {
		first, _, _ := strings.Cut(out, "\n")
		version = runc + " (" + strings.TrimSpace(first) + ")"
	}
	link := "veth pair " + rn.hostIf + "–" + rn.contIf
	if rn.bridge != "" {
		link = "bridge " + rn.bridge + " + " + link
	}
	forward := "port forward " + rn.forward
	if rn.noForward != "" {
		forward = "NO port forward (" + rn.noForward + "): load generator connects to " + contAddr + " directly"
	}
	srv.detail = fmt.Sprintf("%s run --detach, default spec, root %s read-only, %s; network namespace %s, %s, host %s/30 on %s, container %s; %s",
		version, rootfs, strings.Join(args, " "), rn.ns, link, rn.hostIP, rn.hostDev, rn.contIP, forward)
	return srv, "", nil
}

// editRuncNetSpec rewrites the runc spec at path to run args in rootfs
// (read-only), without a terminal, in the network namespace at netns. It
// keeps every other field as runc wrote it.
func editRuncNetSpec(path, rootfs string, args []string, netns string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var spec map[string]any
	if err := json.Unmarshal(data, &spec); err != nil {
		return fmt.Errorf("runc spec %s: %w", path, err)
	}
	process, ok := spec["process"].(map[string]any)
	if !ok {
		return fmt.Errorf("runc spec %s: no process object", path)
	}
	process["args"] = args
	process["terminal"] = false
	spec["root"] = map[string]any{"path": rootfs, "readonly": true}
	linux, ok := spec["linux"].(map[string]any)
	if !ok {
		return fmt.Errorf("runc spec %s: no linux object", path)
	}
	nss, _ := linux["namespaces"].([]any)
	found := false
	for _, ns := range nss {
		if m, ok := ns.(map[string]any); ok && m["type"] == "network" {
			m["path"] = netns
			found = true
		}
	}
	if !found {
		linux["namespaces"] = append(nss, map[string]any{"type": "network", "path": netns})
	}
	out, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		return fmt.Errorf("runc spec %s: %w", path, err)
	}
	return os.WriteFile(path, out, 0o600)
}

// tcpRetransSegs reads the host's count of retransmitted TCP segments
// (RetransSegs in /proc/net/snmp, for this process's network namespace).
func tcpRetransSegs() (int64, error) {
	data, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0, err
	}
	return parseRetransSegs(string(data))
}

// parseRetransSegs finds RetransSegs in the Tcp lines of /proc/net/snmp.
func parseRetransSegs(snmp string) (int64, error) {
	var header []string
	for line := range strings.Lines(snmp) {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Tcp:" {
			continue
		}
		if header == nil {
			header = f
			continue
		}
		for i, name := range header {
			if name == "RetransSegs" && i < len(f) {
				return strconv.ParseInt(f[i], 10, 64)
			}
		}
		break
	}
	return 0, errors.New("/proc/net/snmp: no Tcp RetransSegs")
}

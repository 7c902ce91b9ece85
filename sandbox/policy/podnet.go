package policy

import (
	"slices"
	"sync"
)

// The pod-network policy is the table with its network rows replaced, for
// a container whose network namespace its caller made for it and named in
// the bundle (a Kubernetes pod's, made by a CNI plugin): that namespace is
// the container's network, whose authority the caller decided, so sockets
// are made and used natively in it instead of being served by Oak's network
// service against grants. Every other row is the table's, unchanged: the
// container still reaches only the host system calls the table allows, and
// its root holds no capability over the namespace (the namespace belongs to
// the host's user namespace, not the container's), so it can neither
// reconfigure it nor open raw or packet sockets there.
func podNetworkRows() []Rule {
	return numbered([]Rule{
		{Name: "socket", Action: Allow,
			When: when(all(arg32(0).eq(afInet)), all(arg32(0).eq(afInet6)), all(arg32(0).eq(afUnix))), Else: Fail(EACCES),
			Why: "TCP/UDP and AF_UNIX sockets in the pod's own network namespace; other families (netlink, packet, raw) stay refused as in the table"},
		{Name: "connect", Action: Allow, Why: "within the pod's network namespace, routed as its CNI plugin set it up"},
		{Name: "bind", Action: Allow, Why: "an address of the pod's network namespace; ports below ip_unprivileged_port_start need a capability root does not hold there"},
		{Name: "listen", Action: Allow, Why: "on a socket of the pod's network namespace"},
		{Name: "sendto", Action: Allow, Why: "as connect: an address names a peer reachable from the pod's namespace"},
		{Name: "sendmsg", Action: Allow, Why: "as sendto"},
		{Name: "sendmmsg", Action: Allow, Why: "as sendto"},
	})
}

// podNetworkTable is the table with podNetworkRows in place of its own,
// made afresh, as table is.
func podNetworkTable() []Rule {
	out := Table()
	for _, r := range podNetworkRows() {
		i := slices.IndexFunc(out, func(o Rule) bool { return o.Nr == r.Nr })
		if i < 0 {
			panic("policy: pod-network row " + r.Name + " replaces no row of the table")
		}
		out[i] = r
	}
	return out
}

// podNetworkByNr is podNetworkTable's index, made on first use.
var podNetworkByNr = sync.OnceValue(func() map[uint32]Rule { return index(podNetworkTable()) })

// PodNetworkTable returns a copy of the pod-network policy: Table with the
// rows for making, naming and addressing sockets allowing them natively.
func PodNetworkTable() []Rule { return podNetworkTable() }

// DecidePodNetwork is Decide for the pod-network policy.
func DecidePodNetwork(nr uint32, args [6]uint64) Action {
	return decideIn(podNetworkByNr(), nr, args)
}

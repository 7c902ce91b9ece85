// Package netsvc is Oak's network service. It answers the network system
// calls a container's seccomp filter suspends (SECCOMP_RET_USER_NOTIF) —
// socket, bind, listen, connect, and sends that may name a destination
// (sendto with an address, sendmsg, sendmmsg) — against the container's
// grants, acting in the host's network namespace on its own copy of the
// container's socket. The data path of a socket it hands out is the host
// kernel's: reads, writes and accept are not trapped.
//
// A checked call is never let through to the kernel
// (SECCOMP_USER_NOTIF_FLAG_CONTINUE is never used): the kernel would read
// the arguments again, and another thread of the container could have
// rewritten the address or put another file behind the descriptor number in
// between. Instead the service reads each argument once, takes its own copy of
// the descriptor (pidfd_getfd on a pidfd of the calling thread), checks that
// the call is still pending (SECCOMP_IOCTL_NOTIF_ID_VALID) after reading and
// before acting, performs the call itself on its copy with exactly the
// address it checked, and answers with the result.
//
// What each call becomes:
//
//   - socket(AF_INET|AF_INET6, SOCK_STREAM|SOCK_DGRAM, 0|TCP|UDP): made by
//     the service if the container holds any grant for the protocol, and
//     installed in the caller with SECCOMP_IOCTL_NOTIF_ADDFD and
//     SECCOMP_ADDFD_FLAG_SEND (one atomic answer; SOCK_CLOEXEC becomes the new
//     descriptor's O_CLOEXEC, SOCK_NONBLOCK the socket's O_NONBLOCK).
//     A UDP socket first gets a classic BPF socket filter, locked with
//     SO_LOCK_FILTER, that keeps only replies from the destinations an
//     egress grant names and datagrams addressed to a published host
//     address (see inbound.go): without it, any host peer could reach the
//     port the kernel gives the socket on its first send. Everything else is
//     refused: see socketRule.
//   - bind: a TCP or UDP socket may bind a container port with a listen grant,
//     and lands on the grant's host address and port in the socket's family
//     (see bindTarget): a grant publishes IPv4, IPv6 or both, an IPv6 socket
//     keeps its IPV6_V6ONLY, and a dual-stack socket bound to :: takes IPv4
//     only where the grant publishes every IPv4 address on the same port
//     (elsewhere the service makes it IPv6-only, or binds it to the grant's
//     IPv4 address, mapped, if the grant has no IPv6). A family or address
//     the grant does not publish is EADDRNOTAVAIL, as on a host without
//     it. Port 0 on the unspecified or a loopback address binds a port of
//     the kernel's choice (see ephemeralTarget): such a socket can connect
//     and send, as one bound implicitly, but cannot listen, and as a UDP
//     socket receives only what its filter admits. Other ports without a
//     grant are EACCES; sockets of other families are EACCES (an AF_UNIX
//     bind would create a file in the service's file system).
//   - listen: only on a TCP socket bound, by this service, to a host address
//     a grant still publishes, and taking no other family than the grant
//     publishes there (see listenAllowed); otherwise EACCES (listen on an
//     unbound socket would bind a random port).
//   - connect: to a destination an egress grant allows, else EACCES for TCP
//     and UDP alike (one errno for "not granted", distinct from a real
//     ECONNREFUSED). AF_UNSPEC (dissolving a UDP association, TCP
//     disconnect) is always allowed. On other families (a socketpair end)
//     only AF_UNSPEC is performed; a named AF_UNIX address is EACCES, because
//     the service would resolve the path in its own mount namespace and could
//     re-connect a datagram socket to a host daemon's socket.
//   - sendto with an address, sendmsg, sendmmsg: the destination, if any, is
//     checked like connect (UDP datagrams; TCP with MSG_FASTOPEN, an implicit
//     connect; without MSG_FASTOPEN TCP ignores the address and so does the
//     service); the data, the address and the control messages are read once
//     and sent by the service on its copy. On other families (socketpair ends)
//     a send without an address is performed; SCM_RIGHTS is passed with the
//     service's copies of the container's descriptors; an address is EACCES
//     and SCM_CREDENTIALS EPERM. See inetCmsgRule and unixCmsgRule for control
//     messages on TCP and UDP sockets.
//
// Blocking: the decision and the action run inline on the container's serving
// thread. A blocking connect therefore holds up that container's other
// trapped calls until the handshake ends (or fails, or SO_SNDTIMEO expires);
// other containers are not affected. A send that would block on a blocking
// socket is finished by a separate goroutine, so that a thread blocked
// writing to a socketpair cannot stall the thread that would read it.
//
// Grants are asked on every call, so a revoked grant stops new sockets,
// binds, listens, connects and addressed sends at once; sockets already
// connected or listening keep working (the service cannot take a
// descriptor back from the container).
//
// What the service relies on, and its known limits:
//
//   - The filter traps socket, bind, listen, connect, sendmsg, sendmmsg, and
//     sendto with an address or MSG_FASTOPEN, and should be installed with
//     SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: without it a signal can cut a
//     call short after the service acted (a connect made, data sent), and
//     with SA_RESTART the call comes again.
//   - The filter must refuse setsockopt(IPPROTO_IPV6, IPV6_RTHDR) (and, on
//     kernels built with CONFIG_IPV6_MIP6, IPV6_2292PKTOPTIONS, which can
//     carry a type 2 header): an unprivileged caller may set a segment routing
//     header, after which Linux sends every packet of the socket, including
//     plain write(2)s the filter does not trap, to the header's segment
//     instead of the checked destination. The service refuses connects and
//     sends on a socket that carries one, but cannot see later writes.
//   - The service needs PTRACE_MODE_ATTACH over the container's threads
//     (pidfd_getfd, process_vm_readv) and, for host ports below 1024,
//     CAP_NET_BIND_SERVICE. It should hold nothing else: every send it
//     performs is checked against its own credentials, which is why control
//     messages that need CAP_NET_RAW or CAP_NET_ADMIN are refused outright.
//   - Sends on AF_UNIX sockets carry the service's credentials where the
//     kernel adds the sender's own: a receiver with SO_PASSCRED sees the
//     service's pid and uid (in a container, pid 0 and the overflow uid), and
//     SO_PASSPIDFD a pidfd of the service. SO_PEERCRED is not affected.
//   - listen trusts only binds this Serve made: after the service restarts,
//     a socket bound before cannot listen.
//   - The socket's own name (getsockname, not trapped) is the host address
//     and port, not the container's. Where the service makes a dual-stack
//     socket IPv6-only before binding it, getsockopt(IPV6_V6ONLY) says so,
//     also if the bind then fails.
//   - A UDP socket bound to a port of the kernel's choice (a port-0 bind,
//     or the kernel's implicit bind on connect, on send, or on a write(2)
//     to an unbound socket, which is not trapped) with SO_REUSEADDR may be
//     given a port that a host UDP socket with SO_REUSEADDR holds on the
//     same address (with SO_REUSEPORT: one of the service's user), and then
//     takes datagrams meant for that socket (those its filter admits; the
//     others are dropped). The service cannot close this: the option is set
//     on the container's own socket and the implicit bind is the kernel's.
//   - A UDP socket's filter is made from the grants when the socket is made,
//     and cannot be changed afterwards (the lock binds the service too): a
//     revoke stops the socket's sends to the revoked destination, but the
//     replies its filter admits still arrive. The filter admits datagrams
//     from every address and port an egress grant names, not only from
//     those the socket sent to (a NAT keeps a flow per destination; the
//     filter keeps no state). ICMP errors the socket asked for with
//     IP_RECVERR are queued without passing through the filter. The
//     container cannot remove or replace the filter: the kernel answers
//     SO_ATTACH_FILTER, SO_ATTACH_BPF, SO_DETACH_FILTER and clearing
//     SO_LOCK_FILTER on a locked socket with EPERM, so the seccomp table
//     needs no rule for them.
package netsvc

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"sync/atomic"
)

// Grants is the container's network authority as the service sees it. The
// service asks on every call and never caches an answer. Methods are called
// from the container's serving thread, and from a goroutine finishing a send
// that had to wait, so they must be safe for concurrent use; they should not
// block.
type Grants interface {
	// Listen returns the host addresses, per family, a bind of (proto,
	// container port) is published on. proto is "tcp" or "udp".
	Listen(proto string, port uint16) (Published, bool)
	// Egress reports whether the container may send to / connect to dst.
	// dst is never an IPv4-mapped IPv6 address (it is unmapped first) nor an
	// unspecified address (the service asks about the loopback address Linux
	// would route it to, and connects there).
	Egress(proto string, dst netip.AddrPort) bool
	// Any reports whether the container holds any grant for proto (socket
	// creation).
	Any(proto string) bool
	// Inbound describes what an unconnected socket of proto made now may
	// receive: replies from egress destinations and datagrams to published
	// addresses (see Inbound). Asked for each UDP socket the service makes.
	Inbound(proto string) Inbound
}

// Stats counts the calls a Server answered. All fields may be read while the
// server runs.
type Stats struct {
	// Served counts trapped calls taken off the listener.
	Served atomic.Uint64
	// Allowed counts calls the service performed for the container; the
	// kernel's own result, success or error, was the answer.
	Allowed atomic.Uint64
	// Denied counts calls refused by a grant or by one of this package's
	// rules (EACCES, EPERM, EPROTONOSUPPORT, EADDRNOTAVAIL, ...).
	Denied atomic.Uint64
	// Invalid counts calls refused for malformed arguments before any
	// decision: a bad pointer, length, descriptor or address family.
	Invalid atomic.Uint64
	// Failed counts calls the service could not perform for a reason of its
	// own (a host call it needs failed); they are answered with an errno
	// and logged at Warn.
	Failed atomic.Uint64
	// Gone counts calls whose thread went away (killed, or its wait cut by
	// a signal) before the answer.
	Gone atomic.Uint64
}

// Server serves one container's trapped network calls.
type Server struct {
	// Grants is consulted on every call. Required.
	Grants Grants
	// Log receives a record per refused call (Debug) and per service
	// failure (Warn). Nil discards.
	Log *slog.Logger
	// Stats, if not nil, is updated as calls are answered.
	Stats *Stats
	// Tally, if not nil, counts the answered calls by call and outcome.
	Tally *Tally
	// Local, if not nil, is the container's local-socket channel to its
	// init (see local_linux.go): through it a multi-threaded process's
	// bind and connect of an AF_UNIX path are made for it by a helper
	// inside the container. Without it they are refused.
	Local *os.File
	// Denials, if not nil, is told in a line why a call was refused and
	// which grant would allow it (rate-limited: see reporter). It is what
	// the container's user reads in oak logs.
	Denials io.Writer
	// Offline says the container was given no network grant at all, so
	// that nothing in it can name a socket of the host's: it holds only its
	// own pipes and socketpairs, and any path a call names resolves in its
	// own mount namespace. socket() is refused with EACCES and every other
	// trapped call runs as the caller made it, without the copying and
	// checking of a served call. Grants must be nil then.
	Offline bool
}

// Serve serves the seccomp user-notification listener of one container with
// the grants g until the container is gone (every task of the filter has
// exited: nil) or ctx ends (ctx.Err()). See Server.Serve.
func Serve(ctx context.Context, listener int, g Grants, log *slog.Logger) error {
	s := &Server{Grants: g, Log: log}
	return s.Serve(ctx, listener)
}

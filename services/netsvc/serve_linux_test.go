//go:build linux && (amd64 || arm64)

package netsvc

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestSocket(t *testing.T) {
	g := &testGrants{egress: []egressRule{host32("127.0.0.1", 1)}} // tcp only
	c := startChild(t, "sockets", childOpts{grants: g})
	got := c.finish()
	want(t, got, map[string]string{
		"tcp4":          "ok",
		"tcp4_proto":    "ok",
		"tcp6":          "ok",
		"tcp4_kind":     fmt.Sprintf("%d/%d fd>2:true", unix.AF_INET, unix.SOCK_STREAM),
		"udp4":          "EACCES", // no udp grant
		"unix":          "ok",     // the container's own (local_linux.go)
		"unix_dgram":    "ok",
		"netlink":       "EACCES",
		"packet":        "EACCES",
		"raw":           "EACCES",
		"raw6":          "EACCES",
		"seqpacket":     "EACCES",
		"mptcp":         "EPROTONOSUPPORT",
		"sctp":          "EPROTONOSUPPORT",
		"ping":          "EPROTONOSUPPORT",
		"badflags":      "EINVAL",
		"flags_set":     "cloexec=true nonblock=true",
		"flags_clear":   "cloexec=false nonblock=false",
		"socket_emfile": "EMFILE",
	})
	if n := c.stats.Allowed.Load(); n != 8 {
		t.Errorf("Stats.Allowed = %d, want 8", n)
	}
	// Every call of the scenario is a socket(): the tally has them all
	// under "socket", by outcome: 9 refused (6 EACCES, 3
	// EPROTONOSUPPORT), 1 invalid (EINVAL).
	for o, want := range map[Outcome]uint64{OutcomeAllowed: 8, OutcomeDenied: 9, OutcomeInvalid: 1} {
		if n := c.tally.Load(0, o); n != want {
			t.Errorf("tally socket %s = %d, want %d", Outcomes[o], n, want)
		}
	}
	for k := 1; k < len(Calls); k++ {
		for o := range Outcomes {
			if n := c.tally.Load(k, Outcome(o)); n != 0 {
				t.Errorf("tally %s %s = %d in a scenario of socket() calls only", Calls[k], Outcomes[o], n)
			}
		}
	}
}

func TestHTTP(t *testing.T) {
	hostPort := freePort(t, "tcp")
	ok, refused := listenCounting(t), listenCounting(t)
	g := &testGrants{
		listen: map[string]netip.AddrPort{"tcp/80": loopback(hostPort)},
		egress: []egressRule{host32("127.0.0.1", ok.port())},
	}
	c := startChild(t, "http", childOpts{grants: g}, strconv.Itoa(ok.port()), strconv.Itoa(refused.port()))
	c.expect("listening")
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", hostPort))
	if err != nil {
		t.Fatalf("dial the container's published port: %v", err)
	}
	fmt.Fprintf(conn, "GET / HTTP/1.0\r\n\r\n")
	resp, _ := io.ReadAll(conn)
	conn.Close()
	if !strings.HasSuffix(string(resp), "hello from container") {
		t.Errorf("response %q", resp)
	}
	got := c.finish()
	want(t, got, map[string]string{
		"dial_granted": "ok",
		"dial_refused": "EACCES",
		"listen":       "ok",
		"request":      "GET / HTTP/1.0",
	})
	t.Logf("the container's listener says it is on %s", got["addr"])
	if n := refused.count(); n != 0 {
		t.Errorf("refused listener accepted %d connections", n)
	}
	if n := ok.count(); n != 1 {
		t.Errorf("granted listener accepted %d connections, want 1", n)
	}
}

func TestBind(t *testing.T) {
	tcpHost, udpHost := freePort(t, "tcp"), freePort(t, "udp")
	g := &testGrants{listen: map[string]netip.AddrPort{
		"tcp/80": loopback(tcpHost),
		"udp/53": loopback(udpHost),
	}}
	c := startChild(t, "bind", childOpts{grants: g})
	got := c.finish()
	want(t, got, map[string]string{
		"bind_any80":      "ok",
		"name_any80":      loopback(tcpHost).String(),
		"listen_any80":    "ok",
		"bind_again":      "EINVAL", // the kernel's answer: already bound
		"bind_lo80":       "ok",
		"bind_lo2_80":     "ok", // 127.0.0.0/8 is the container's loopback too
		"bind_81":         "EACCES",
		"bind_0":          "ok", // a port of the kernel's choice, which cannot listen
		"bind_foreign":    "EADDRNOTAVAIL",
		"bind_short":      "EINVAL",
		"bind_family":     "EAFNOSUPPORT",
		"bind_unspec_any": "ok",
		"bind_unspec_lo":  "EAFNOSUPPORT",
		"listen_unbound":  "EACCES",
		"bind_long":       "EINVAL",
		"bind_badptr":     "EFAULT",
		"bind_badfd":      "EBADF",
		"bind_pipe":       "ENOTSOCK",
		"bind6_any80":     "ok",
		"name6":           netip.AddrPortFrom(netip.MustParseAddr("::ffff:127.0.0.1"), uint16(tcpHost)).String(),
		"listen6":         "ok",
		"bind_udp53":      "ok",
		"name_udp53":      loopback(udpHost).String(),
		"listen_udp":      "ENOTSUP", // EOPNOTSUPP, by its other name
		"bind_udp80":      "EACCES",
		"bind_unix":       "EACCES",
		"unix_file_made":  "false",
	})
}

func TestConnect(t *testing.T) {
	ok, refused := listenCounting(t), listenCounting(t)
	u, ud := listenUDP(t), listenUDP(t)
	dir := t.TempDir()
	hostSock := filepath.Join(dir, "host.sock")
	hs, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: hostSock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Close()
	g := &testGrants{egress: []egressRule{
		host32("127.0.0.1", ok.port()),
		{proto: ProtoUDP, prefix: netip.MustParsePrefix("127.0.0.1/32"), port: uint16(u.port())},
		{proto: ProtoUDP, prefix: netip.MustParsePrefix("::1/128")},
	}}
	c := startChild(t, "connect", childOpts{grants: g},
		strconv.Itoa(ok.port()), strconv.Itoa(refused.port()), strconv.Itoa(u.port()), strconv.Itoa(ud.port()), hostSock)
	got := c.finish()
	want(t, got, map[string]string{
		"tcp_granted":             "ok",
		"tcp_denied":              "EACCES",
		"tcp_unspecified":         "ok",
		"tcp_unspecified_denied":  "EACCES",
		"tcp_mapped":              "ok",
		"tcp_mapped_denied":       "EACCES",
		"tcp_short":               "EINVAL",
		"tcp_family":              "EAFNOSUPPORT",
		"tcp_long":                "EINVAL",
		"tcp_badptr":              "EFAULT",
		"tcp_nonblock":            "EINPROGRESS",
		"tcp_nonblock_soerror":    "0",
		"udp_granted":             "ok",
		"udp_denied":              "EACCES",
		"udp_unspec":              "ok",
		"unix_named":              "EACCES",
		"unix_paired":             "true",
		"unix_unspec":             "ok",
		"fastopen_granted":        "1",
		"fastopen_denied":         "EACCES",
		"fastopen_sendmsg_denied": "EACCES",
		"tcp_sendto_addr_ignored": "EPIPE", // unconnected: the kernel's answer, the address unused
		"rthdr_set":               "ok",
		"rthdr_connect":           "EACCES",
		"rthdr_sendto":            "EACCES",
	})
	time.Sleep(100 * time.Millisecond)
	if n := refused.count(); n != 0 {
		t.Errorf("refused listener accepted %d connections", n)
	}
	if n := ok.count(); n != 5 {
		t.Errorf("granted listener accepted %d connections, want 5", n)
	}
	hs.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if _, _, err := hs.ReadFrom(make([]byte, 64)); err == nil {
		t.Errorf("the host's AF_UNIX socket received a datagram from the container")
	}
}

func TestUDP(t *testing.T) {
	r1, r2 := listenUDP(t), listenUDP(t)
	g := &testGrants{egress: []egressRule{
		{proto: ProtoUDP, prefix: netip.MustParsePrefix("127.0.0.1/32"), port: uint16(r1.port())},
		{proto: ProtoUDP, prefix: netip.MustParsePrefix("::1/128")},
	}}
	c := startChild(t, "udp", childOpts{grants: g}, strconv.Itoa(r1.port()), strconv.Itoa(r2.port()))
	got := c.finish()
	want(t, got, map[string]string{
		"sendto_granted":               "1",
		"sendto_denied":                "EACCES",
		"sendmsg_granted":              "2",
		"sendmsg_denied":               "EACCES",
		"sendmmsg":                     "2 lens=[1 2 0 0]",
		"sendmmsg_denied":              "EACCES",
		"cmsg_ttl":                     "1",
		"cmsg_retopts":                 "EACCES",
		"cmsg_mark":                    "EACCES",
		"cmsg_rights":                  "EINVAL",
		"cmsg_badlen":                  "EINVAL",
		"unspec_granted":               "1",
		"unspec_denied":                "EACCES",
		"sendto_badbuf":                "EFAULT",
		"sendto_zerolen_addr":          "EINVAL",
		"sendto_unspecified":           "1",
		"pktinfo_local":                "1",
		"pktinfo_freebind":             "EACCES",
		"pktinfo_freebind_unspecified": "1",
		"connected":                    "ok",
		"sendmsg_connected":            "1",
		"send_connected":               "1",
		"sendmsg_connected_denied":     "EACCES",
	})
	time.Sleep(100 * time.Millisecond)
	if got := r2.payloads(); len(got) != 0 {
		t.Errorf("refused receiver got %q", got)
	}
	wantR1 := []string{"a", "cd", "e", "ff", "i", "j", "m", "k", "l"}
	if got := r1.payloads(); !slices.Equal(got, wantR1) {
		t.Errorf("granted receiver got %q, want %q", got, wantR1)
	}
}

func TestUnix(t *testing.T) {
	g := &testGrants{egress: []egressRule{host32("127.0.0.1", 1)}}
	c := startChild(t, "unix", childOpts{grants: g})
	got := c.finish()
	want(t, got, map[string]string{
		"plain":                   "5",
		"plain_recv":              "hello",
		"rights_send":             "1",
		"rights_recv":             "through the passed pipe",
		"rights_badfd":            "EBADF",
		"credentials":             "EPERM",
		"dgram_named":             "EACCES",
		"dgram_sendto_named":      "EACCES",
		"epipe":                   "EPIPE",
		"sigpipe":                 "true",
		"epipe_nosignal":          "EPIPE",
		"sigpipe_nosignal":        "false",
		"socket_during_send":      "ok",
		"socket_during_send_fast": "true",
		"bulk_sent":               strconv.Itoa(1 << 20),
		"bulk_intact":             "true",
	})
}

// TestRaceRewrite: another thread rewrites the address during trapped
// connects; no connection may reach the refused listener.
func TestRaceRewrite(t *testing.T) {
	ok, refused := listenCounting(t), listenCounting(t)
	g := &testGrants{egress: []egressRule{host32("127.0.0.1", ok.port())}}
	iters := 3000
	if testing.Short() {
		iters = 300
	}
	c := startChild(t, "race", childOpts{grants: g}, strconv.Itoa(ok.port()), strconv.Itoa(refused.port()), strconv.Itoa(iters))
	got := c.finish()
	time.Sleep(100 * time.Millisecond)
	t.Logf("allowed %s, refused %s, other %s of %d; granted listener accepted %d", got["ok"], got["eacces"], got["other"], iters, ok.count())
	if n := refused.count(); n != 0 {
		t.Errorf("the refused listener accepted %d connections", n)
	}
	if got["ok"] == "0" || got["eacces"] == "0" {
		t.Errorf("the race did not exercise both outcomes (ok %s, EACCES %s)", got["ok"], got["eacces"])
	}
	if got["other"] != "0" {
		t.Errorf("%s connects failed otherwise", got["other"])
	}
}

// TestRaceDescriptor: another thread keeps swapping a TCP and a UDP socket
// behind the descriptor number of a trapped connect to a port granted for UDP
// only; no TCP connection may reach it.
func TestRaceDescriptor(t *testing.T) {
	refused := listenCounting(t)
	g := &testGrants{egress: []egressRule{
		{proto: ProtoUDP, prefix: netip.MustParsePrefix("127.0.0.1/32"), port: uint16(refused.port())},
		host32("127.0.0.1", 1), // a TCP grant elsewhere, so that TCP sockets are made
	}}
	c := startChild(t, "racefd", childOpts{grants: g}, strconv.Itoa(refused.port()), "2000")
	got := c.finish()
	time.Sleep(100 * time.Millisecond)
	t.Logf("UDP connects %s, refused TCP connects %s, other %s", got["ok"], got["eacces"], got["other"])
	if n := refused.count(); n != 0 {
		t.Errorf("a TCP connection reached the port granted for UDP only (%d)", n)
	}
	if got["ok"] == "0" || got["eacces"] == "0" || got["other"] != "0" {
		t.Errorf("the race did not exercise both socket kinds cleanly")
	}
}

// TestRaceRewriteContinueControl shows that TestRaceRewrite can fail: a
// supervisor that checks the address and answers
// SECCOMP_USER_NOTIF_FLAG_CONTINUE lets the rewritten address through.
func TestRaceRewriteContinueControl(t *testing.T) {
	ok, refused := listenCounting(t), listenCounting(t)
	c := startChild(t, "race", childOpts{}, strconv.Itoa(ok.port()), strconv.Itoa(refused.port()), "3000")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); continueSupervisor(c.listener, uint16(ok.port()), stop) }()
	got := c.finish()
	close(stop)
	<-done
	time.Sleep(100 * time.Millisecond)
	t.Logf("CONTINUE supervisor: allowed %s, refused %s; the refused listener accepted %d", got["ok"], got["eacces"], refused.count())
	if refused.count() == 0 {
		t.Errorf("the CONTINUE supervisor let nothing through: the race test has no teeth")
	}
}

// continueSupervisor is the unsafe design the service avoids: read the
// address, check it, let the kernel run the call (and read it again).
func continueSupervisor(listener int, port uint16, stop chan struct{}) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var n seccompNotif
	fds := []unix.PollFd{{Fd: int32(listener), Events: unix.POLLIN}}
	for {
		select {
		case <-stop:
			return
		default:
		}
		fds[0].Revents = 0
		unix.Poll(fds, 50)
		if fds[0].Revents&unix.POLLIN == 0 {
			if fds[0].Revents&unix.POLLHUP != 0 {
				return
			}
			continue
		}
		if recvNotif(listener, &n) != 0 {
			continue
		}
		resp := seccompNotifResp{ID: n.ID, Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE}
		if n.Data.Nr == unix.SYS_CONNECT {
			b := make([]byte, 16)
			c := &call{tid: int(n.Pid)}
			if c.read(n.Data.Args[1], b) != nil || inAddrPort(b).Port() != port {
				resp = seccompNotifResp{ID: n.ID, Error: -int32(unix.EACCES)}
			}
		}
		ioctlPtr(listener, ioctlNotifSend, unsafe.Pointer(&resp))
	}
}

func TestRevoke(t *testing.T) {
	ok := listenCounting(t)
	g := &testGrants{
		listen: map[string]netip.AddrPort{"tcp/80": loopback(freePort(t, "tcp"))},
		egress: []egressRule{host32("127.0.0.1", ok.port())},
	}
	c := startChild(t, "revoke", childOpts{grants: g}, strconv.Itoa(ok.port()))
	c.expect("revoke")
	g.revokeAll()
	c.send("go")
	got := c.finish()
	want(t, got, map[string]string{
		"bind_before":           "ok",
		"connect_before":        "ok",
		"listen_after":          "EACCES",
		"connect_after":         "EACCES",
		"bind_after":            "EACCES",
		"socket_after":          "EACCES",
		"write_connected_after": "ok", // an established connection stays
	})
}

// TestServeContext: Serve returns ctx's error when ctx ends, with the
// container still running.
func TestServeContext(t *testing.T) {
	needRoot(t)
	c := startChild(t, "revoke", childOpts{}, "1")
	ctx, cancel := contextWithCancel()
	done := make(chan error, 1)
	g := &testGrants{egress: []egressRule{host32("127.0.0.1", 1)}}
	go func() { done <- Serve(ctx, c.listener, g, nil) }()
	c.expect("revoke") // the child's first calls were served
	cancel()
	select {
	case err := <-done:
		if err == nil || err.Error() != "context canceled" {
			t.Errorf("Serve = %v, want context canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	c.cmd.Process.Kill()
	c.cmd.Wait()
}

// TestKilled: the child is killed while a send waits for room; Serve
// notices the call is gone and returns when the listener hangs up.
func TestKilled(t *testing.T) {
	g := &testGrants{egress: []egressRule{host32("127.0.0.1", 1)}}
	c := startChild(t, "blocked", childOpts{grants: g})
	c.expect("blocked")
	c.cmd.Process.Kill()
	c.cmd.Wait()
	select {
	case err := <-c.served:
		if err != nil {
			t.Errorf("Serve = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after the child was killed")
	}
	if n := c.stats.Gone.Load(); n != 1 {
		t.Errorf("Stats.Gone = %d, want 1", n)
	}
}

// udpReceiver records the datagrams it receives.
type udpReceiver struct {
	conn net.PacketConn
	mu   sync.Mutex
	got  []string
}

func listenUDP(t testing.TB) *udpReceiver {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &udpReceiver{conn: pc}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			r.mu.Lock()
			r.got = append(r.got, string(buf[:n]))
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() { pc.Close() })
	return r
}

func (r *udpReceiver) port() int { return r.conn.LocalAddr().(*net.UDPAddr).Port }

func (r *udpReceiver) payloads() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

//go:build linux

package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The network tests check, from inside containers, that a container
// reaches exactly what its grants (-p, --egress) name: with none it can
// make no Internet socket and reach nothing of the host's, neither its
// loopback servers nor another container nor the host's abstract AF_UNIX
// names; with grants, a bind lands on the published host port and nothing
// else, a connect or send reaches the granted destination and nothing else
// (also when another thread rewrites the address under the call), a
// revoked grant stops new connects at once, and a killed network service
// is restarted without taking the container's connections down.
//
// Every server on the host side is the test's own, on 127.0.0.1 at a port
// the kernel picked, and counts what it accepted, so "unreachable" means
// "the server saw nothing", not only "the probe got an error".

// ---- host-side servers ----

// netFreePort returns a port that was free on 127.0.0.1 for network ("tcp"
// or "udp") a moment ago, for a -p host port.
func netFreePort(t *testing.T, network string) int {
	t.Helper()
	switch network {
	case "tcp":
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	default:
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
}

// netHostConn is one connection a netHostListener accepted; its data is
// read in the background until EOF.
type netHostConn struct {
	net.Conn
	mu   sync.Mutex
	data bytes.Buffer
	eof  chan struct{}
}

func (c *netHostConn) bytes() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.data.String()
}

// waitEOF waits up to d for the peer to close and returns what it sent.
func (c *netHostConn) waitEOF(t *testing.T, d time.Duration) string {
	t.Helper()
	select {
	case <-c.eof:
	case <-time.After(d):
		t.Errorf("connection from %s: no EOF after %v (have %q)", c.RemoteAddr(), d, c.bytes())
	}
	return c.bytes()
}

// netHostListener is a stream listener of the test's (TCP on 127.0.0.1, or
// an abstract AF_UNIX name) that records every connection it accepts.
type netHostListener struct {
	t       *testing.T
	l       net.Listener
	keep    bool // keep the connections and read them; else close at once
	arrived chan *netHostConn

	mu        sync.Mutex
	total     int             // connections accepted
	seen      map[string]bool // their peer addresses
	conns     []*netHostConn  // if keep
	sentinels map[string]bool // peer addresses of the test's own (see settle)
}

func newNetHostListener(t *testing.T, network, addr string, keep bool) *netHostListener {
	t.Helper()
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	h := &netHostListener{t: t, l: l, keep: keep, seen: map[string]bool{}, sentinels: map[string]bool{},
		arrived: make(chan *netHostConn, 64)}
	t.Cleanup(func() {
		l.Close()
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, c := range h.conns {
			c.Close()
		}
	})
	go h.acceptLoop()
	return h
}

func netHostTCP(t *testing.T, keep bool) *netHostListener {
	return newNetHostListener(t, "tcp", "127.0.0.1:0", keep)
}

func (h *netHostListener) port() int { return h.l.Addr().(*net.TCPAddr).Port }

// addr is "127.0.0.1:PORT".
func (h *netHostListener) addr() string { return h.l.Addr().String() }

// conn returns the i-th connection accepted that is not the test's own
// (keep only).
func (h *netHostListener) conn(i int) *netHostConn {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.conns {
		if h.sentinels[peer(c)] {
			continue
		}
		if i == 0 {
			return c
		}
		i--
	}
	h.t.Fatalf("%s: no connection %d", h.l.Addr(), i)
	return nil
}

// peer is a connection's peer address; "" for an AF_UNIX client that is
// bound to no name.
func peer(c net.Conn) string {
	if a := c.RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}

func (h *netHostListener) acceptLoop() {
	for {
		c, err := h.l.Accept()
		if err != nil {
			return
		}
		h.mu.Lock()
		h.total++
		h.seen[peer(c)] = true
		h.mu.Unlock()
		if !h.keep {
			c.Close()
			continue
		}
		hc := &netHostConn{Conn: c, eof: make(chan struct{})}
		h.mu.Lock()
		h.conns = append(h.conns, hc)
		h.mu.Unlock()
		go func() {
			defer close(hc.eof)
			c.SetReadDeadline(time.Now().Add(45 * time.Second))
			buf := make([]byte, 4096)
			for {
				n, err := c.Read(buf)
				hc.mu.Lock()
				hc.data.Write(buf[:n])
				hc.mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
		select {
		case h.arrived <- hc:
		default:
		}
	}
}

// next waits up to d for the next connection a container makes.
func (h *netHostListener) next(d time.Duration) *netHostConn {
	h.t.Helper()
	select {
	case c := <-h.arrived:
		return c
	case <-time.After(d):
		h.t.Fatalf("%s: no connection within %v", h.l.Addr(), d)
		return nil
	}
}

// settle returns how many connections, not the test's own, the listener
// accepted, once every connection queued before the call has been
// accepted: it connects itself from a known address and waits until that
// connection comes out of the accept queue, behind anything a container
// had queued.
func (h *netHostListener) settle() int {
	h.t.Helper()
	var c net.Conn
	var err error
	if la, ok := h.l.Addr().(*net.UnixAddr); ok {
		c, err = net.DialUnix("unix", &net.UnixAddr{Name: la.Name + "-settle-" + randHex(h.t), Net: "unix"}, la)
	} else {
		c, err = net.Dial(h.l.Addr().Network(), h.l.Addr().String())
	}
	if err != nil {
		h.t.Fatalf("settle %s: %v", h.l.Addr(), err)
	}
	defer c.Close()
	key := c.LocalAddr().String()
	h.mu.Lock()
	h.sentinels[key] = true
	h.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.mu.Lock()
		done, n := h.seen[key], h.total-len(h.sentinels)
		h.mu.Unlock()
		if done {
			return n
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("settle %s: own connection not accepted within 10s", h.l.Addr())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// netHostPacket is a datagram socket of the test's (UDP on 127.0.0.1, or an
// abstract AF_UNIX name) that records every datagram it receives.
type netHostPacket struct {
	t    *testing.T
	c    net.PacketConn
	mu   sync.Mutex
	got  []string // payloads, sentinels excluded
	seen map[string]bool
}

func newNetHostPacket(t *testing.T, network, addr string) *netHostPacket {
	t.Helper()
	c, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	h := &netHostPacket{t: t, c: c, seen: map[string]bool{}}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			s := string(buf[:n])
			h.mu.Lock()
			if strings.HasPrefix(s, "sentinel-") {
				h.seen[s] = true
			} else {
				h.got = append(h.got, s)
			}
			h.mu.Unlock()
		}
	}()
	return h
}

func (h *netHostPacket) addr() string { return h.c.LocalAddr().String() }

func (h *netHostPacket) port() int { return h.c.LocalAddr().(*net.UDPAddr).Port }

// settle returns the datagrams received before a datagram the test sends
// itself now has come through.
func (h *netHostPacket) settle() []string {
	h.t.Helper()
	la := h.c.LocalAddr()
	var c net.Conn
	var err error
	if la.Network() == "unixgram" {
		c, err = net.DialUnix("unixgram", nil, la.(*net.UnixAddr))
	} else {
		c, err = net.Dial(la.Network(), la.String())
	}
	if err != nil {
		h.t.Fatalf("settle %s: %v", la, err)
	}
	defer c.Close()
	mark := "sentinel-" + strconv.FormatInt(time.Now().UnixNano(), 10)
	if _, err := c.Write([]byte(mark)); err != nil {
		h.t.Fatalf("settle %s: %v", la, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.mu.Lock()
		done, got := h.seen[mark], append([]string(nil), h.got...)
		h.mu.Unlock()
		if done {
			return got
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("settle %s: own datagram not received within 10s", la)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ---- containers ----

// netScript runs the probe commands cmds one after the other in ONE
// container started with flags (a /bin/sh -c script), and returns the run.
func (o *oakEnv) netScript(flags []string, cmds ...string) result {
	o.t.Helper()
	args := append([]string{"run"}, flags...)
	args = append(args, rootfsDir, "/bin/sh", "-c", netScriptText(cmds...))
	return o.runTimeout(45*time.Second, args...)
}

func (o *oakEnv) netStartScript(flags []string, cmds ...string) *bg {
	o.t.Helper()
	args := append([]string{"run"}, flags...)
	args = append(args, rootfsDir, "/bin/sh", "-c", netScriptText(cmds...))
	return o.start(args...)
}

func netScriptText(cmds ...string) string {
	var b strings.Builder
	for _, c := range cmds {
		b.WriteString("/bin/probe " + c + "\n")
	}
	return b.String()
}

// netCheckLines compares a run's output with the lines wanted, one probe
// command each.
func netCheckLines(t *testing.T, what string, cmds []string, got string, want []string) {
	t.Helper()
	gl := lines(got)
	for i, w := range want {
		g := "(no line)"
		if i < len(gl) {
			g = gl[i]
		}
		c := ""
		if i < len(cmds) {
			c = " (probe " + cmds[i] + ")"
		}
		if g != w {
			t.Errorf("%s: line %d%s: got %q, want %q", what, i+1, c, g, w)
		}
	}
	if len(gl) != len(want) {
		t.Errorf("%s: %d output lines, want %d:\n%s", what, len(gl), len(want), got)
	}
}

// netWaitStdout waits up to d for a background oak's stdout to contain s.
func netWaitStdout(t *testing.T, b *bg, s string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		out, errOut := b.output()
		if strings.Contains(out, s) {
			return
		}
		select {
		case <-b.done:
			out, errOut = b.output()
			if strings.Contains(out, s) {
				return
			}
			t.Fatalf("oak ended before printing %q\n%s", s, b.res)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q from the container after %v\n--- stdout:\n%s--- stderr:\n%s", s, d, out, errOut)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// netWaitDone waits for a background oak to end with status 0.
func netWaitDone(t *testing.T, b *bg, d time.Duration) result {
	t.Helper()
	r, ok := b.wait(d)
	if !ok {
		out, errOut := b.output()
		t.Fatalf("oak still running after %v\n--- stdout:\n%s--- stderr:\n%s", d, out, errOut)
	}
	if r.code != 0 {
		t.Errorf("oak did not exit 0\n%s", r)
	}
	return r
}

// netNoServiceRestart fails t if oak reports that the network service of a
// container ended while nobody killed it.
func netNoServiceRestart(t *testing.T, r result) {
	t.Helper()
	if strings.Contains(r.stderr, "network service ended") || strings.Contains(r.stderr, "netsvc:") {
		t.Errorf("the network service failed during a run in which nothing killed it:\n%s", r)
	}
}

// ---- no grant ----

// A container without grants can make no AF_INET or AF_INET6 socket of any
// type, and reaches nothing: not a server on the host's loopback, not a
// server another container publishes, not the host's abstract AF_UNIX
// names.
func TestNetNoGrant(t *testing.T) {
	needOak(t, true)
	o := newOak(t)

	t.Run("socket matrix", func(t *testing.T) {
		o := o.sub(t)
		t.Parallel()
		out := o.probe("socket-matrix")
		ls := lines(out)
		if len(ls) != 22 {
			t.Errorf("socket-matrix printed %d lines, want 22:\n%s", len(ls), out)
		}
		for _, l := range ls {
			if !strings.HasSuffix(l, " err EACCES") {
				t.Errorf("socket(%s): want err EACCES", l)
			}
		}
	})

	t.Run("host loopback", func(t *testing.T) {
		o := o.sub(t)
		t.Parallel()
		tcp := netHostTCP(t, false)
		udp := newNetHostPacket(t, "udp", "127.0.0.1:0")
		cmds := []string{
			"connect " + tcp.addr() + " from-container",
			fmt.Sprintf("connect 0.0.0.0:%d from-container", tcp.port()),
			"udp-send " + udp.addr() + " from-container",
			"udp-connect " + udp.addr(),
		}
		r := o.netScript(nil, cmds...)
		netCheckLines(t, "no grant", cmds, r.stdout, []string{"err EACCES", "err EACCES", "err EACCES", "err EACCES"})
		if n := tcp.settle(); n != 0 {
			t.Errorf("the host's TCP server on %s accepted %d connections from a container without grants", tcp.addr(), n)
		}
		if got := udp.settle(); len(got) != 0 {
			t.Errorf("the host's UDP socket on %s received %q from a container without grants", udp.addr(), got)
		}
	})

	t.Run("other container", func(t *testing.T) {
		o := o.sub(t)
		t.Parallel()
		x := netFreePort(t, "tcp")
		// B publishes X and answers "from-b N" to its N-th connection.
		b := o.start("run", "-p", fmt.Sprintf("127.0.0.1:%d:80", x), rootfsDir, "/bin/probe", "serve", "80", "1", "from-b")
		netWaitStdout(t, b, "listening 80", 20*time.Second)
		cmds := []string{
			fmt.Sprintf("connect 127.0.0.1:%d from-a", x),
			fmt.Sprintf("connect 0.0.0.0:%d from-a", x),
			"connect 127.0.0.1:80 from-a",
		}
		r := o.netScript(nil, cmds...)
		netCheckLines(t, "no grant, to another container", cmds, r.stdout, []string{"err EACCES", "err EACCES", "err EACCES"})
		// B's first connection must be this one: A never got through.
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", x), 5*time.Second)
		if err != nil {
			t.Fatalf("connect to container B on its published port %d: %v", x, err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		got, _ := io.ReadAll(c)
		if string(got) != "from-b 1\n" {
			t.Errorf("container B answered the host %q, want %q (another connection came first?)", got, "from-b 1\n")
		}
		netWaitDone(t, b, 20*time.Second)
	})

	t.Run("host abstract unix", func(t *testing.T) {
		o := o.sub(t)
		t.Parallel()
		name := "@oak-test-" + randHex(t)
		stream := newNetHostListener(t, "unix", name, false)
		dgram := newNetHostPacket(t, "unixgram", name+"-d")
		cmds := []string{
			"socket 1 1", // AF_UNIX SOCK_STREAM
			"socket 1 2", // AF_UNIX SOCK_DGRAM
			"socket 1 5", // AF_UNIX SOCK_SEQPACKET
			// AF_UNIX sockets are the container's own: its own network
			// namespace has none of the host's abstract names, and the
			// kernel answers ECONNREFUSED (a stream end that found the
			// name would say EISCONN).
			"unix-connect " + name + " stream",
			"unix-connect " + name + "-d dgram",
			"unix-sendto " + name + "-d",
			// The control: a name the container made itself is found.
			"unix-self @oak-test-self-" + randHex(t),
		}
		r := o.netScript(nil, cmds...)
		netCheckLines(t, "no grant, host abstract names", cmds, r.stdout,
			[]string{"ok", "ok", "ok", "err ECONNREFUSED", "err ECONNREFUSED", "err ECONNREFUSED", "ok"})
		// With a grant the network service answers these calls, which it
		// acts on in the host's network namespace: it must look abstract
		// names up in the container's (the socket's own) and never find
		// the host's. An addressed send from a process with several
		// threads (the probe is Go) is refused (local_linux.go).
		r = o.netScript([]string{"--egress", "any"}, cmds...)
		netCheckLines(t, "--egress any, host abstract names", cmds, r.stdout,
			[]string{"ok", "ok", "ok", "err ECONNREFUSED", "err ECONNREFUSED", "err EACCES", "ok"})
		if n := stream.settle(); n != 0 {
			t.Errorf("the host's abstract stream socket %s accepted %d connections from the container", name, n)
		}
		if got := dgram.settle(); len(got) != 0 {
			t.Errorf("the host's abstract datagram socket %s-d received %q from the container", name, got)
		}
	})
}

// ---- TCP grants ----

// With -p 127.0.0.1:H:80 and --egress 127.0.0.1:P, a container serves the
// host on H, may bind and listen on port 80 only, reaches P and nothing
// else.
func TestNetPublishTCP(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	h := netFreePort(t, "tcp")
	p := netHostTCP(t, true)
	q := netHostTCP(t, true)
	flags := []string{"-p", fmt.Sprintf("127.0.0.1:%d:80", h), "--egress", p.addr()}
	cmds := []string{
		"bind tcp 81",
		"bind tcp 8080",
		"bind tcp 0", // a port of the kernel's choice: bound, but it cannot listen (TestNetIPv6Bind)
		"bind udp 80",
		"listen 81", // listen on a socket whose bind was refused
		"listen 8080",
		"listen -", // listen on an unbound socket would bind a random port
		"bind tcp 80 127.0.0.1",
		"bind tcp 80",
		"connect " + p.addr() + " hello-P",
		"connect " + q.addr() + " hello-Q",
		fmt.Sprintf("connect 127.0.0.1:%d to-own-port", h), // its own published port is no egress
		"serve 80 1 served",
	}
	b := o.netStartScript(flags, cmds...)
	netWaitStdout(t, b, "listening 80", 30*time.Second)
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", h), 5*time.Second)
	if err != nil {
		t.Fatalf("the host cannot connect to the published port %d: %v", h, err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	got, _ := io.ReadAll(c)
	c.Close()
	if string(got) != "served 1\n" {
		t.Errorf("the container's server answered the host %q, want %q", got, "served 1\n")
	}
	r := netWaitDone(t, b, 30*time.Second)
	netCheckLines(t, "-p and --egress", cmds, r.stdout, []string{
		"err EACCES", "err EACCES", "ok", "err EACCES",
		"err EACCES", "err EACCES", "err EACCES",
		"ok", "ok",
		"ok", "err EACCES", "err EACCES",
		"listening 80", "ok",
	})
	netNoServiceRestart(t, r)
	if n := p.settle(); n != 1 {
		t.Errorf("the granted destination %s accepted %d connections, want 1", p.addr(), n)
	} else if d := p.conn(0).waitEOF(t, 10*time.Second); d != "hello-P" {
		t.Errorf("the granted destination %s received %q, want %q", p.addr(), d, "hello-P")
	}
	if n := q.settle(); n != 0 {
		t.Errorf("the destination %s, not granted, accepted %d connections", q.addr(), n)
	}
}

// ---- UDP grants ----

// With -p 127.0.0.1:H:53/udp a container receives the host's datagrams on
// its port 53; with --egress 127.0.0.1:P/udp it may send to P and to
// nothing else.
func TestNetPublishUDP(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	h := netFreePort(t, "udp")
	p := newNetHostPacket(t, "udp", "127.0.0.1:0")
	q := newNetHostPacket(t, "udp", "127.0.0.1:0")
	flags := []string{"-p", fmt.Sprintf("127.0.0.1:%d:53/udp", h), "--egress", p.addr() + "/udp"}
	cmds := []string{
		"bind udp 54",
		"bind udp 0",  // bound to a port of the kernel's choice; receives only replies (TestNetUDPReplies)
		"bind tcp 53", // no TCP grant at all: socket() is refused
		"connect " + p.addr() + " tcp-to-P",
		"udp-send " + p.addr() + " to-P",
		"udp-send " + q.addr() + " to-Q",
		"udp-connect " + q.addr(),
		"udp-connect " + p.addr(),
		"udp-recv 53",
	}
	b := o.netStartScript(flags, cmds...)
	netWaitStdout(t, b, "listening 53", 30*time.Second)
	c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", h))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Datagrams may be lost; send until the container has one.
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		c.Write([]byte("from-host"))
		if out, _ := b.output(); strings.Contains(out, "got ") {
			break
		}
		select {
		case <-b.done:
			deadline = time.Time{}
		case <-time.After(50 * time.Millisecond):
		}
	}
	r := netWaitDone(t, b, 20*time.Second)
	netCheckLines(t, "-p /udp and --egress /udp", cmds, r.stdout, []string{
		"err EACCES", "ok", "err EACCES", "err EACCES",
		"ok", "err EACCES", "err EACCES", "ok",
		"listening 53", "got from-host",
	})
	netNoServiceRestart(t, r)
	if got := p.settle(); len(got) != 1 || got[0] != "to-P" {
		t.Errorf("the granted destination %s received %q, want [to-P]", p.addr(), got)
	}
	if got := q.settle(); len(got) != 0 {
		t.Errorf("the destination %s, not granted, received %q", q.addr(), got)
	}
}

// An unconnected UDP socket made under an egress grant receives replies
// from the granted destinations only, like a connected socket or a NAT
// flow: a host socket at another port, or at the granted port of another
// address, reaches it only under a listen grant. The container cannot take
// the filter that does this off its socket.
func TestNetUDPReplies(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	type sender struct{ addr, msg string }
	cases := []struct {
		name   string
		p      string   // the destination the container sends to (host side binds it)
		egress string   // --egress
		others []sender // host sockets that send to the container before P does
		tamper bool
		want   []string
	}{
		{name: "one port", p: "127.0.0.1:0", egress: "P/udp",
			others: []sender{{"127.0.0.1:0", "from-Q"}, {"127.0.0.2:P", "from-other-address"}},
			want:   []string{"sent ok", "got from-P", "got last"}},
		{name: "any port", p: "127.0.0.1:0", egress: "127.0.0.1/udp",
			others: []sender{{"127.0.0.1:0", "from-Q"}, {"127.0.0.2:P", "from-other-address"}},
			want:   []string{"sent ok", "got from-Q", "got from-P", "got last"}},
		{name: "tamper", p: "127.0.0.1:0", egress: "P/udp", tamper: true,
			others: []sender{{"127.0.0.1:0", "from-Q"}},
			want:   []string{"detach err EPERM", "attach err EPERM", "unlock err EPERM", "sent ok", "got from-P", "got last"}},
		{name: "ipv6", p: "[::1]:0", egress: "P/udp",
			others: []sender{{"[::1]:0", "from-Q"}},
			want:   []string{"sent ok", "got from-P", "got last"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := o.sub(t)
			t.Parallel()
			p, err := net.ListenPacket("udp", c.p)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			pa := p.LocalAddr().(*net.UDPAddr)
			subst := func(s string) string {
				s = strings.ReplaceAll(s, ":P", ":"+strconv.Itoa(pa.Port))
				if s == "P/udp" {
					return pa.String() + "/udp"
				}
				return s
			}
			var others []net.PacketConn
			for _, s := range c.others {
				q, err := net.ListenPacket("udp", subst(s.addr))
				if err != nil {
					t.Fatal(err)
				}
				defer q.Close()
				others = append(others, q)
			}
			args := []string{"udp-reply", pa.String()}
			if c.tamper {
				args = append(args, "tamper")
			}
			b := o.start(append([]string{"run", "--egress", subst(c.egress), rootfsDir, "/bin/probe"}, args...)...)
			p.SetReadDeadline(time.Now().Add(30 * time.Second))
			buf := make([]byte, 64)
			n, from, err := p.ReadFrom(buf)
			if err != nil || string(buf[:n]) != "hello" {
				out, errOut := b.output()
				t.Fatalf("the granted destination %s got %q, %v from the container\n%s%s", pa, buf[:n], err, out, errOut)
			}
			for i, q := range others {
				if _, err := q.WriteTo([]byte(c.others[i].msg), from); err != nil {
					t.Fatalf("send from %s: %v", q.LocalAddr(), err)
				}
			}
			for _, m := range []string{"from-P", "last"} {
				if _, err := p.WriteTo([]byte(m), from); err != nil {
					t.Fatal(err)
				}
			}
			r := netWaitDone(t, b, 30*time.Second)
			netCheckLines(t, "udp-reply "+c.name, nil, r.stdout, c.want)
			netNoServiceRestart(t, r)
		})
	}
}

// -p PORT and -p IP::PORT publish on a host port the engine picks when
// the container starts: the container's server is reached there, and
// oak port, oak ps and oak grants show the port.
func TestNetPublishFreePort(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	name := "net-free-" + randHex(t)[:8]
	id := o.runD("--name", name, "-p", "80", "-p", "127.0.0.1::81/udp", rootfsDir, "/bin/probe", "serve", "80", "1", "free-port")
	netWaitLogs(t, o, id, "listening 80", 20*time.Second)

	r := o.run("port", name)
	m := regexp.MustCompile(`^80/tcp -> 0\.0\.0\.0:(\d+)\n80/tcp -> \[::\]:(\d+)\n81/udp -> 127\.0\.0\.1:(\d+)\n$`).FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil || m[1] != m[2] {
		t.Fatalf("oak port %s: want 80/tcp on one port of both families and 81/udp on 127.0.0.1\n%s", name, r)
	}
	h, hu := m[1], m[3]
	if h == "0" || hu == "0" {
		t.Fatalf("oak port %s shows port 0\n%s", name, r)
	}
	if r := o.run("port", name, "80"); r.code != 0 || r.stdout != "0.0.0.0:"+h+"\n[::]:"+h+"\n" {
		t.Errorf("oak port %s 80: want both families on %s\n%s", name, h, r)
	}
	if r := o.run("port", name, "81/udp"); r.code != 0 || r.stdout != "127.0.0.1:"+hu+"\n" {
		t.Errorf("oak port %s 81/udp: want 127.0.0.1:%s\n%s", name, hu, r)
	}
	if r := o.run("port", name, "81"); r.code == 0 || !strings.Contains(r.stderr, "81/tcp") {
		t.Errorf("oak port %s 81 (tcp, not published): want an error naming 81/tcp\n%s", name, r)
	}
	if r := o.run("grants", name); !strings.Contains(r.stdout, "publish "+h+":80/tcp\n") ||
		!strings.Contains(r.stdout, "publish 127.0.0.1:"+hu+":81/udp\n") {
		t.Errorf("oak grants %s: want the picked ports\n%s", name, r)
	}
	if r := o.run("ps"); !strings.Contains(r.stdout, "0.0.0.0:"+h+"->80/tcp, [::]:"+h+"->80/tcp, 127.0.0.1:"+hu+"->81/udp") {
		t.Errorf("oak ps: want the published ports in its PORTS column\n%s", r)
	}
	var ps struct{ Names, Ports string }
	r = o.run("ps", "--format", "json")
	want := "0.0.0.0:" + h + "->80/tcp, [::]:" + h + "->80/tcp, 127.0.0.1:" + hu + "->81/udp"
	if err := json.Unmarshal([]byte(r.stdout), &ps); err != nil || ps.Ports != want {
		t.Errorf("oak ps --format json: want Ports %q (%v)\n%s", want, err, r)
	}

	c, err := net.DialTimeout("tcp", "127.0.0.1:"+h, 5*time.Second)
	if err != nil {
		t.Fatalf("connect to the picked port %s: %v", h, err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	got, _ := io.ReadAll(c)
	c.Close()
	if string(got) != "free-port 1\n" {
		t.Errorf("the container's server answered %q, want %q", got, "free-port 1\n")
	}
	if e := o.waitExited(id, 20*time.Second); e.ExitCode != 0 {
		t.Errorf("container exit %d, want 0\n%s", e.ExitCode, o.run("logs", id))
	}
	if r := o.run("port", name); r.code != 0 || r.stdout != "" {
		t.Errorf("oak port on a stopped container: want nothing\n%s", r)
	}
}

// ---- IPv6 ----

// Binds of either family land on the host addresses a grant publishes:
// -p H:PORT publishes both families, -p 127.0.0.1:H:PORT IPv4 only,
// -p [::1]:H:PORT and -p [::]:H:PORT IPv6 only. A wildcard or loopback bind
// of the family a grant leaves out lands on a sink address nobody can reach
// (nginx gives up unless both its listeners bind), any other address the
// grant does not cover is EADDRNOTAVAIL; a dual-stack socket takes IPv4
// only where the grant publishes it; a port-0 bind of the loopback or unspecified
// address (Go's IPv6 probe) succeeds but cannot listen.
func TestNetIPv6Bind(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	h1, h2, h3, h4, hu := netFreePort(t, "tcp"), netFreePort(t, "tcp"), netFreePort(t, "tcp"), netFreePort(t, "tcp"), netFreePort(t, "udp")
	flags := []string{
		"-p", fmt.Sprintf("%d:80", h1),
		"-p", fmt.Sprintf("127.0.0.1:%d:81", h2),
		"-p", fmt.Sprintf("[::1]:%d:82", h3),
		"-p", fmt.Sprintf("[::]:%d:83", h4),
		"-p", fmt.Sprintf("%d:53/udp", hu),
	}
	type bindCase struct{ cmd, want string }
	ok := func(host string, port int, v6only string) string {
		a := netip.AddrPortFrom(netip.MustParseAddr(host), uint16(port)).String()
		if v6only != "" {
			return "ok listen ok name " + a + " v6only " + v6only
		}
		return "ok listen ok name " + a
	}
	cases := []bindCase{
		// -p H1:80: both families.
		{"tcp 0.0.0.0 80", ok("0.0.0.0", h1, "")},
		{"tcp :: 80 1", ok("::", h1, "1")},
		{"tcp :: 80 0", ok("::", h1, "0")}, // dual-stack, as the grant
		{"tcp ::1 80", ok("::", h1, "1")},  // a specific IPv6 address takes no IPv4
		{"tcp ::ffff:127.0.0.1 80 0", ok("::ffff:0.0.0.0", h1, "0")},
		// -p 127.0.0.1:H2:81: IPv4 only.
		{"tcp 127.0.0.1 81", ok("127.0.0.1", h2, "")},
		{"tcp :: 81 1", "SINK6 81"},
		{"tcp :: 81 0", ok("::ffff:127.0.0.1", h2, "0")},
		{"tcp ::1 81", "SINK6 81"},
		{"tcp ::ffff:127.0.0.1 81 1", "err EINVAL"}, // the kernel's answer on an IPv6-only socket
		// -p [::1]:H3:82: IPv6 only.
		{"tcp 0.0.0.0 82", "SINK4 82"},
		{"tcp :: 82 1", ok("::1", h3, "1")},
		{"tcp :: 82 0", ok("::1", h3, "1")}, // Linux makes a socket bound to one IPv6 address IPv6-only
		{"tcp ::1 82", ok("::1", h3, "1")},
		{"tcp ::ffff:127.0.0.1 82 0", "err EADDRNOTAVAIL"},
		// -p [::]:H4:83: every IPv6 address, no IPv4.
		{"tcp 127.0.0.1 83", "SINK4 83"},
		{"tcp :: 83 1", ok("::", h4, "1")},
		{"tcp :: 83 0", ok("::", h4, "1")}, // made IPv6-only: the grant has no IPv4
		{"tcp ::1 83", ok("::", h4, "1")},
		// Port 0: a port of the kernel's choice, to connect from, never to listen on.
		{"tcp ::1 0", "PORT0"},
		{"tcp ::ffff:127.0.0.1 0 0", "PORT0"},
		{"tcp 0.0.0.0 0", "PORT0"},
		{"tcp 10.1.2.3 0", "err EADDRNOTAVAIL"},
		{"tcp 2001:db8::1 0", "err EADDRNOTAVAIL"},
		// A port without a grant, either family.
		{"tcp :: 84", "err EACCES"},
		// UDP, both families.
		{"udp :: 53 0", fmt.Sprintf("ok name [::]:%d v6only 0", hu)},
		{"udp 0.0.0.0 53", fmt.Sprintf("ok name 0.0.0.0:%d", hu)},
		{"udp :: 53 1", fmt.Sprintf("ok name [::]:%d v6only 1", hu)},
		{"udp ::1 53", fmt.Sprintf("ok name [::]:%d v6only 1", hu)},
		{"udp ::1 0", "UDP0"},
	}
	var cmds []string
	for _, c := range cases {
		cmds = append(cmds, "inet-bind "+c.cmd)
	}
	r := o.netScript(flags, cmds...)
	gl := lines(r.stdout)
	port0 := regexp.MustCompile(`^ok listen err EACCES name (127\.0\.0\.1|0\.0\.0\.0|::1|::ffff:127\.0\.0\.1|\[::1\]|\[::ffff:127\.0\.0\.1\]):[1-9][0-9]*( v6only [01])?$`)
	udp0 := regexp.MustCompile(`^ok name \[::1\]:[1-9][0-9]* v6only 1$`)
	for i, c := range cases {
		g := "(no line)"
		if i < len(gl) {
			g = gl[i]
		}
		switch {
		case strings.HasPrefix(c.want, "SINK"):
			sink := regexp.MustCompile(`^ok listen ok name (\[100::[0-9a-f:]+\]|24[0-9]\.[0-9.]+|25[0-5]\.[0-9.]+):` + c.want[6:] + `( v6only 1)?$`)
			if !sink.MatchString(g) {
				t.Errorf("inet-bind %s: got %q, want a listener on a sink address (100::/64 or 240.0.0.0/4) port %s", c.cmd, g, c.want[6:])
			}
			continue
		}
		switch c.want {
		case "PORT0":
			if !port0.MatchString(g) {
				t.Errorf("inet-bind %s: got %q, want a bound ephemeral port that cannot listen", c.cmd, g)
			}
		case "UDP0":
			if !udp0.MatchString(g) {
				t.Errorf("inet-bind %s: got %q, want a bound ephemeral port", c.cmd, g)
			}
		default:
			if g != c.want {
				t.Errorf("inet-bind %s: got %q, want %q", c.cmd, g, c.want)
			}
		}
	}
	if len(gl) != len(cases) {
		t.Errorf("%d output lines, want %d\n%s", len(gl), len(cases), r)
	}
	netNoServiceRestart(t, r)
}

// A dual-stack UDP socket under -p H:53/udp receives the host's datagrams
// over both families.
func TestNetPublishUDP6(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	for _, from := range []string{"::1", "127.0.0.1"} {
		t.Run(from, func(t *testing.T) {
			o := o.sub(t)
			t.Parallel()
			h := netFreePort(t, "udp")
			b := o.start("run", "-p", fmt.Sprintf("%d:53/udp", h), rootfsDir, "/bin/probe", "udp-recv", "53", "::", "0")
			netWaitStdout(t, b, "listening 53", 20*time.Second)
			c, err := net.Dial("udp", net.JoinHostPort(from, strconv.Itoa(h)))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
				c.Write([]byte("from-host"))
				if out, _ := b.output(); strings.Contains(out, "got ") {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			r := netWaitDone(t, b, 20*time.Second)
			netCheckLines(t, "udp-recv on :: from "+from, nil, r.stdout, []string{"listening 53", "got from-host"})
		})
	}
}

// A dual-stack server (IPV6_V6ONLY 0 on ::) under -p H:80 is reached over
// both families; under -p [::1]:H:80 over IPv6 only.
func TestNetIPv6Serve(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	cases := []struct {
		name    string
		publish string
		reach   []string // host addresses the server must answer on
		not     []string // and must not
		goNet   bool     // serve with Go's net.Listen(":80") instead
	}{
		{"both families", "%d:80", []string{"127.0.0.1", "::1"}, nil, false},
		{"ipv6 only", "[::1]:%d:80", []string{"::1"}, []string{"127.0.0.1"}, false},
		{"ipv4 only", "127.0.0.1:%d:80", []string{"127.0.0.1"}, []string{"::1"}, false},
		// Go probes for IPv6 with port-0 binds, then listens dual-stack.
		{"go net", "%d:80", []string{"127.0.0.1", "::1"}, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := o.sub(t)
			t.Parallel()
			h := netFreePort(t, "tcp")
			args := []string{"serve-inet", "::", "80", "0", strconv.Itoa(len(c.reach)), "dual"}
			if c.goNet {
				args = []string{"go-serve", "80", strconv.Itoa(len(c.reach)), "dual"}
			}
			b := o.start(append([]string{"run", "-p", fmt.Sprintf(c.publish, h), rootfsDir, "/bin/probe"}, args...)...)
			netWaitStdout(t, b, "listening 80", 20*time.Second)
			for _, a := range c.not {
				addr := net.JoinHostPort(a, strconv.Itoa(h))
				if cn, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
					cn.Close()
					t.Errorf("the host reached the container's server on %s, which -p %s does not publish", addr, fmt.Sprintf(c.publish, h))
				}
			}
			for i, a := range c.reach {
				addr := net.JoinHostPort(a, strconv.Itoa(h))
				cn, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					t.Errorf("connect to %s: %v", addr, err)
					continue
				}
				cn.SetDeadline(time.Now().Add(10 * time.Second))
				got, _ := io.ReadAll(cn)
				cn.Close()
				if want := fmt.Sprintf("dual %d\n", i+1); string(got) != want {
					t.Errorf("the server answered %q on %s, want %q", got, addr, want)
				}
			}
			netWaitDone(t, b, 20*time.Second)
		})
	}
}

// ---- time of check, time of use ----

var netRaceLine = regexp.MustCompile(`^(stuck in a connect: )?connects (\d+) ok (\d+) refused (\d+) other (\d+) peer-denied (\d+) flips (\d+)(.*)$`)

// One thread of the container connects to the granted ALLOWED over and
// over while another rewrites the very sockaddr buffer to DENIED. A service
// that checked the address and let the kernel read it again would connect
// to DENIED now and then; the host's server at DENIED must accept nothing.
func TestNetConnectRace(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	allowed := netHostTCP(t, false)
	denied := netHostTCP(t, false)
	r := o.runTimeout(40*time.Second, "run", "--egress", allowed.addr(), rootfsDir,
		"/bin/probe", "connect-race", allowed.addr(), denied.addr(), "200000", "3000")
	nDenied := denied.settle()
	nAllowed := allowed.settle()
	t.Logf("connect race: %s; host accepted %d at ALLOWED, %d at DENIED", strings.TrimSpace(r.stdout), nAllowed, nDenied)
	if nDenied != 0 {
		t.Errorf("the host's server at DENIED %s accepted %d connections: a rewritten address got through", denied.addr(), nDenied)
	}
	if r.code != 0 {
		t.Fatalf("the race did not finish\n%s", r)
	}
	m := netRaceLine.FindStringSubmatch(strings.TrimSpace(r.stdout))
	if m == nil {
		t.Fatalf("connect-race printed no result line\n%s", r)
	}
	if m[1] != "" {
		t.Errorf("one of the container's connects was never answered (the probe gave up %v after its 3 s loop)", 15*time.Second)
	}
	num := func(i int) int { n, _ := strconv.Atoi(m[i]); return n }
	tries, ok, refused, other, peerDenied := num(2), num(3), num(4), num(5), num(6)
	if peerDenied != 0 {
		t.Errorf("%d of the container's connects ended up connected to DENIED", peerDenied)
	}
	if ok == 0 || refused == 0 {
		t.Errorf("the race never saw both addresses (%d connected, %d refused): it proves nothing", ok, refused)
	}
	if other != 0 {
		t.Errorf("%d of %d connects failed with another errno than EACCES:%s", other, tries, m[8])
	}
	// A connect can succeed without the server ever accepting it (a full
	// accept queue drops the handshake's last ACK), so the two counts may
	// differ by a few; the server can never accept more than were made.
	if nAllowed > ok {
		t.Errorf("the container connected %d times, the host's server at ALLOWED accepted %d", ok, nAllowed)
	}
	netNoServiceRestart(t, r)
}

// ---- the network service dies ----

// Killing a container's network service mid-transfer does not touch the
// container's connections: the transfer completes, the supervisor starts
// another service, and that one serves the container's next socket, bind
// and listen.
func TestNetServiceKilled(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	const total = 200_000_000
	h1, h2 := netFreePort(t, "tcp"), netFreePort(t, "tcp")
	id := o.runD("-p", fmt.Sprintf("127.0.0.1:%d:80", h1), "-p", fmt.Sprintf("127.0.0.1:%d:81", h2), rootfsDir,
		"/bin/sh", "-c", fmt.Sprintf("/bin/probe serve-bytes 80 %d 1; /bin/probe serve 81 1 second", total))
	netWaitLogs(t, o, id, "listening 80", 20*time.Second)

	sup := netSupervisorOf(t, o, id)
	svc := netWaitService(t, sup, 0, 5*time.Second)

	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", h1), 5*time.Second)
	if err != nil {
		t.Fatalf("connect to the published port %d: %v", h1, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(40 * time.Second))
	got, err := io.ReadFull(c, make([]byte, 1<<20))
	if err != nil {
		t.Fatalf("first MiB of the transfer: %d bytes, %v", got, err)
	}
	// The container is blocked writing (200 MB is far more than the socket
	// buffers hold) while the service is killed and replaced.
	if err := syscall.Kill(svc, syscall.SIGKILL); err != nil {
		t.Fatalf("kill network service %d: %v", svc, err)
	}
	t0 := time.Now()
	svc2 := netWaitService(t, sup, svc, 5*time.Second)
	t.Logf("network service %d killed, %d started %v later (supervisor %d)", svc, svc2, time.Since(t0).Round(time.Millisecond), sup)
	rest, err := io.Copy(io.Discard, c)
	if n := int64(got) + rest; n != total || err != nil {
		t.Errorf("transfer across the service's death: %d of %d bytes (%v)", n, total, err)
	}

	netWaitLogs(t, o, id, "listening 81", 20*time.Second)
	c2, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", h2), 5*time.Second)
	if err != nil {
		t.Fatalf("connect to the port the container bound after the restart (%d): %v", h2, err)
	}
	c2.SetDeadline(time.Now().Add(10 * time.Second))
	b, _ := io.ReadAll(c2)
	c2.Close()
	if string(b) != "second 1\n" {
		t.Errorf("the server made after the restart answered %q, want %q", b, "second 1\n")
	}
	e := o.waitExited(id, 20*time.Second)
	logs := o.run("logs", id)
	if e.ExitCode != 0 || logs.stdout != "listening 80\nok\nlistening 81\nok\n" {
		t.Errorf("container exit %d, output %q; want 0 and each server ok\n%s", e.ExitCode, logs.stdout, logs)
	}
}

func netWaitLogs(t *testing.T, o *oakEnv, id, s string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		r := o.run("logs", id)
		if strings.Contains(r.stdout, s) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s: no %q in its log after %v\n%s", id, s, d, r)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// netSupervisorOf reads the host pid of container id's supervisor from its
// record.
func netSupervisorOf(t *testing.T, o *oakEnv, id string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(o.root, "containers", id, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Supervisor int `json:"supervisor"`
	}
	if err := json.Unmarshal(b, &st); err != nil || st.Supervisor <= 0 {
		t.Fatalf("state.json of %s: no supervisor (%v)\n%s", id, err, b)
	}
	return st.Supervisor
}

// netChildren lists the children of every thread of pid: a Go process
// forks from whichever thread runs the goroutine, and
// /proc/PID/task/TID/children lists only those thread TID made.
func netChildren(pid int) []int {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var out []int
	for _, tk := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, tk.Name()))
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// netWaitService waits up to d for a network service process (`oak _netsvc`)
// other than not among the children of sup, and returns its pid.
func netWaitService(t *testing.T, sup, not int, d time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		var found []int
		for _, c := range netChildren(sup) {
			cl, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", c))
			args := strings.Split(strings.TrimRight(string(cl), "\x00"), "\x00")
			if len(args) == 2 && args[1] == "_netsvc" && c != not {
				if st, ok := readStat(c); ok && st.state != 'Z' {
					found = append(found, c)
				}
			}
		}
		if len(found) == 1 {
			return found[0]
		}
		if len(found) > 1 {
			t.Fatalf("supervisor %d has %d network services: %v", sup, len(found), found)
		}
		if time.Now().After(deadline) {
			t.Fatalf("supervisor %d: no network service (other than %d) after %v; children %v", sup, not, d, netChildren(sup))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ---- revoke ----

// oak revoke withdraws an egress grant: when it returns, a connect to the
// destination is refused with EACCES, from a socket made before the revoke
// and from a new one; the connection made before it still carries data,
// and the grant not revoked still works.
func TestNetRevoke(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	p := netHostTCP(t, true)
	other := netHostTCP(t, true)
	name := "net-revoke-" + randHex(t)[:8]
	b := o.start("run", "--name", name, "--egress", p.addr(), "--egress", other.addr(), rootfsDir,
		"/bin/probe", "revoke-check", p.addr(), other.addr())
	c1 := p.next(20 * time.Second)

	gs := o.run("grants", name)
	want := []string{"egress " + p.addr(), "egress " + other.addr()}
	if gs.code != 0 || strings.Join(lines(gs.stdout), "|") != strings.Join(want, "|") {
		t.Fatalf("oak grants %s: want %q\n%s", name, want, gs)
	}
	rv := o.run("revoke", name, want[0])
	if rv.code != 0 {
		t.Fatalf("oak revoke failed\n%s", rv)
	}
	gs = o.run("grants", name)
	if strings.Join(lines(gs.stdout), "|") != want[1] {
		t.Errorf("oak grants after the revoke: want only %q\n%s", want[1], gs)
	}
	if bad := o.run("revoke", name, "egress 127.0.0.1:1"); bad.code <= 0 || len(lines(bad.stderr)) != 1 {
		t.Errorf("revoking a grant the container never held: want a non-zero exit and one stderr line\n%s", bad)
	}
	if _, err := c1.Write([]byte("g")); err != nil {
		t.Fatal(err)
	}
	r := netWaitDone(t, b, 30*time.Second)
	netCheckLines(t, "revoke-check", nil, r.stdout, []string{
		"connect-before ok",
		"connect-presocket err EACCES",
		"connect-after err EACCES",
		"connect-other ok",
		"send-old ok",
	})
	netNoServiceRestart(t, r)
	if d := c1.waitEOF(t, 10*time.Second); d != "after-revoke" {
		t.Errorf("the connection made before the revoke carried %q afterwards, want %q", d, "after-revoke")
	}
	if n := p.settle(); n != 1 {
		t.Errorf("the revoked destination %s accepted %d connections, want only the one made before the revoke", p.addr(), n)
	}
	if n := other.settle(); n != 1 {
		t.Errorf("the destination still granted, %s, accepted %d connections, want 1", other.addr(), n)
	} else if d := other.conn(0).waitEOF(t, 10*time.Second); d != "other" {
		t.Errorf("the destination still granted received %q, want %q", d, "other")
	}
}

// ---- bad input ----

// Bad -p and --egress arguments, and host ports published twice, make oak
// run exit non-zero with one stderr line that names the argument, and
// start nothing.
func TestNetBadInput(t *testing.T) {
	needOak(t, true)
	h := netFreePort(t, "tcp")
	cases := []struct {
		name    string
		flags   []string
		mention []string // the stderr line must contain all of these
	}{
		{"host port out of range", []string{"-p", "99999:80"}, []string{"-p", "99999:80"}},
		{"container port out of range", []string{"-p", "8080:70000"}, []string{"-p", "8080:70000"}},
		{"not a port", []string{"-p", "abc"}, []string{"-p", "abc"}},
		{"unknown protocol", []string{"-p", "8080:80/sctp"}, []string{"-p", "8080:80/sctp"}},
		{"bad address", []string{"--egress", "300.1.1.1:80"}, []string{"--egress", "300.1.1.1:80"}},
		{"prefix with host bits", []string{"--egress", "10.0.0.1/8"}, []string{"--egress", "10.0.0.1/8"}},
		{"egress port out of range", []string{"--egress", "127.0.0.1:65536"}, []string{"--egress", "127.0.0.1:65536"}},
		{"host port twice", []string{"-p", fmt.Sprintf("%d:80", h), "-p", fmt.Sprintf("%d:81", h)}, []string{"-p", strconv.Itoa(h)}},
		{"host port twice, udp and address", []string{"-p", fmt.Sprintf("127.0.0.1:%d:53/udp", h), "-p", fmt.Sprintf("%d:54/udp", h)}, []string{"-p", strconv.Itoa(h)}},
	}
	check := func(t *testing.T, r result, mention []string) {
		t.Helper()
		if r.code <= 0 {
			t.Errorf("want a non-zero exit status from oak\n%s", r)
		}
		if strings.Contains(r.stdout, "ESCAPED") {
			t.Errorf("the container ran\n%s", r)
		}
		msg := strings.TrimRight(r.stderr, "\n")
		if msg == "" || strings.Contains(msg, "\n") {
			t.Errorf("want exactly one line on stderr\n%s", r)
		}
		for _, m := range mention {
			if !strings.Contains(msg, m) {
				t.Errorf("the error line does not name %q\n%s", m, r)
			}
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			o := newOak(t)
			args := append(append([]string{"run"}, c.flags...), rootfsDir, "/bin/sh", "-c", "echo ESCAPED")
			check(t, o.run(args...), c.mention)
			if ds := o.containerDirs(); len(ds) != 0 {
				t.Errorf("containers/ holds %v after a refused oak run", ds)
			}
		})
	}
	t.Run("host port of another container", func(t *testing.T) {
		t.Parallel()
		o := newOak(t)
		h := netFreePort(t, "tcp")
		first := o.runD("--name", "net-first", "-p", fmt.Sprintf("%d:80", h), rootfsDir, "/bin/probe", "sleep", "30000")
		for _, args := range [][]string{
			{"run", "-p", fmt.Sprintf("%d:81", h), rootfsDir, "/bin/sh", "-c", "echo ESCAPED"},
			{"run", "-d", "-p", fmt.Sprintf("127.0.0.1:%d:82", h), rootfsDir, "/bin/sh", "-c", "echo ESCAPED"},
		} {
			r := o.run(args...)
			check(t, r, []string{"-p", strconv.Itoa(h) + ":8", "net-first"})
			if ds := o.containerDirs(); len(ds) != 1 || ds[0] != first {
				t.Errorf("containers/ holds %v after a refused oak run, want only %s", ds, first)
			}
		}
		// The same port over UDP is another port.
		r := o.run("run", "-p", fmt.Sprintf("%d:81/udp", h), rootfsDir, "/bin/true")
		if r.code != 0 {
			t.Errorf("publishing %d/udp while another container publishes %d/tcp: want success\n%s", h, h, r)
		}
	})
}

// A refused network call explains itself where the user looks: oak logs
// names the call, why it was refused and the grant that would allow it,
// once per kind however often the program retries.
func TestNetDenialsExplained(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	cases := []struct {
		name  string
		flags []string
		cmds  []string
		want  string
	}{
		{"no grant", nil, []string{"connect 127.0.0.1:9 x", "connect 127.0.0.1:9 x"},
			"oak: network: refused socket: the container holds no network grant (EACCES); allow it with --egress DEST or -p [HOSTPORT:]PORT"},
		{"no egress", []string{"--egress", "127.0.0.1:7"}, []string{"connect 127.0.0.1:9 x", "connect 127.0.0.1:9 x"},
			"oak: network: refused connect: no egress grant for tcp 127.0.0.1:9 (EACCES); allow it with --egress 127.0.0.1:9/tcp"},
		{"no publish", []string{"--egress", "127.0.0.1:7"}, []string{"bind tcp 81", "bind tcp 81"},
			"oak: network: refused bind: no listen grant for 81/tcp (EACCES); allow it with -p [HOSTPORT:]81/tcp"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := o.sub(t)
			t.Parallel()
			args := append(append([]string{"run", "-d"}, c.flags...), rootfsDir, "/bin/sh", "-c", netScriptText(c.cmds...))
			r := o.run(args...)
			id := strings.TrimSpace(r.stdout)
			if r.code != 0 {
				t.Fatalf("%s", r)
			}
			o.waitExited(id, 20*time.Second)
			r = o.run("logs", id)
			all := r.stdout + r.stderr
			if strings.Count(all, c.want) != 1 {
				t.Errorf("oak logs: want exactly one line %q\n%s", c.want, r)
			}
		})
	}
}

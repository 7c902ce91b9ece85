//go:build linux && (amd64 || arm64)

package netsvc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The test binary doubles as the confined process: with childEnv set,
// TestMain runs a scenario (childEnv's value, arguments in argv) instead of
// the tests. The child locks its thread, sets no_new_privs, installs the test
// filter on all its threads with a new listener, prints "listener N", waits
// for "go" on stdin and runs the scenario, printing key=value results and
// bare synchronisation lines. The parent takes the listener with pidfd_getfd
// and serves it with Serve.
const (
	childEnv    = "NETSVC_TEST_CHILD"
	noFilterEnv = "NETSVC_TEST_NOFILTER" // run the scenario without a filter (baselines)
)

func TestMain(m *testing.M) {
	if sc := os.Getenv(childEnv); sc != "" {
		os.Exit(childMain(sc, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// testFilter traps what the brief says Oak's filter traps: socket, bind,
// listen, connect, sendmsg, sendmmsg, and sendto with an address or
// MSG_FASTOPEN. Everything else is allowed.
func testFilter() []unix.SockFilter {
	const (
		ld   = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jset = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
		ret  = unix.BPF_RET | unix.BPF_K
	)
	allow, notify := uint32(unix.SECCOMP_RET_ALLOW), uint32(unix.SECCOMP_RET_USER_NOTIF)
	argLo := func(i int) uint32 { return uint32(16 + 8*i) } // little-endian low half of args[i]
	return []unix.SockFilter{
		/* 0 */ {Code: ld, K: 4}, // arch
		/* 1 */ {Code: jeq, K: nativeArch, Jt: 0, Jf: 8},
		/* 2 */ {Code: ld, K: 0}, // nr
		/* 3 */ {Code: jeq, K: unix.SYS_SOCKET, Jt: 14},
		/* 4 */ {Code: jeq, K: unix.SYS_BIND, Jt: 13},
		/* 5 */ {Code: jeq, K: unix.SYS_LISTEN, Jt: 12},
		/* 6 */ {Code: jeq, K: unix.SYS_CONNECT, Jt: 11},
		/* 7 */ {Code: jeq, K: unix.SYS_SENDMSG, Jt: 10},
		/* 8 */ {Code: jeq, K: unix.SYS_SENDMMSG, Jt: 9},
		/* 9 */ {Code: jeq, K: unix.SYS_SENDTO, Jt: 1},
		/* 10 */ {Code: ret, K: allow},
		/* 11 */ {Code: ld, K: argLo(4)},
		/* 12 */ {Code: jeq, K: 0, Jf: 5},
		/* 13 */ {Code: ld, K: argLo(4) + 4},
		/* 14 */ {Code: jeq, K: 0, Jf: 3},
		/* 15 */ {Code: ld, K: argLo(3)},
		/* 16 */ {Code: jset, K: msgFastopen, Jt: 1},
		/* 17 */ {Code: ret, K: allow},
		/* 18 */ {Code: ret, K: notify},
	}
}

// installFilter installs testFilter on every thread of the process
// (TSYNC, which needs TSYNC_ESRCH alongside NEW_LISTENER) and returns the
// listener. WAIT_KILLABLE_RECV keeps a received call from being cut short by
// a non-fatal signal.
func installFilter() (int, error) {
	prog := testFilter()
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return -1, fmt.Errorf("no_new_privs: %w", err)
	}
	flags := unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_TSYNC |
		unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH | unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
	fd, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if e != 0 {
		return -1, fmt.Errorf("seccomp: %w", e)
	}
	return int(fd), nil
}

// childIO is the child's side of the line protocol.
type childIO struct {
	in  *bufio.Reader
	out *os.File
	mu  sync.Mutex
}

func (c *childIO) say(format string, a ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.out, format+"\n", a...)
}

func (c *childIO) report(key string, v any) { c.say("%s=%v", key, v) }

// wait prints a synchronisation line and waits for the parent's answer.
func (c *childIO) wait(sync string) string {
	c.say("%s", sync)
	line, _ := c.in.ReadString('\n')
	return strings.TrimSpace(line)
}

func childMain(scenario string, args []string) int {
	runtime.LockOSThread()
	io := &childIO{in: bufio.NewReader(os.Stdin), out: os.Stdout}
	fn, ok := scenarios[scenario]
	if !ok {
		fmt.Fprintf(os.Stderr, "no scenario %q\n", scenario)
		return 2
	}
	listener := -1
	if os.Getenv(noFilterEnv) == "" {
		var err error
		if listener, err = installFilter(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 3
		}
	}
	if io.wait(fmt.Sprintf("listener %d", listener)) != "go" {
		return 4
	}
	fn(io, args)
	io.say("end")
	return 0
}

// errName is "ok" or the errno's name.
func errName(err error) string {
	if err == nil {
		return "ok"
	}
	var en unix.Errno
	if errors.As(err, &en) {
		return unix.ErrnoName(en)
	}
	return err.Error()
}

// The parent's side.

// child is a running scenario served by Serve.
type child struct {
	t        testing.TB
	cmd      *exec.Cmd
	in       io.WriteCloser
	out      *bufio.Scanner
	stderr   *bytes.Buffer
	listener int
	served   chan error
	cancel   context.CancelFunc
	stats    *Stats
	tally    *Tally
	results  map[string]string
	logs     *bytes.Buffer
}

type childOpts struct {
	grants   Grants // nil: no Serve (the test serves the listener itself)
	noFilter bool
}

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (pidfd_getfd and process_vm_readv on the child, privileged ports)")
	}
}

func startChild(t testing.TB, scenario string, o childOpts, args ...string) *child {
	t.Helper()
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), childEnv+"="+scenario)
	if o.noFilter {
		cmd.Env = append(cmd.Env, noFilterEnv+"=1")
	}
	c := &child{t: t, cmd: cmd, stderr: new(bytes.Buffer), listener: -1, cancel: cancel,
		stats: new(Stats), results: map[string]string{}, logs: new(bytes.Buffer)}
	tally, err := NewTally(make([]byte, TallyBytes))
	if err != nil {
		t.Fatal(err)
	}
	c.tally = tally
	cmd.Stderr = c.stderr
	if c.in, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.out = bufio.NewScanner(stdout)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	line := c.line()
	n, err := strconv.Atoi(strings.TrimPrefix(line, "listener "))
	if err != nil {
		t.Fatalf("child said %q, want listener N (stderr: %s)", line, c.stderr)
	}
	if n >= 0 {
		pidfd, err := unix.PidfdOpen(cmd.Process.Pid, 0)
		if err != nil {
			t.Fatal(err)
		}
		c.listener, err = unix.PidfdGetfd(pidfd, n, 0)
		unix.Close(pidfd)
		if err != nil {
			t.Fatalf("pidfd_getfd listener: %v", err)
		}
		if o.grants != nil {
			c.served = make(chan error, 1)
			srv := &Server{Grants: o.grants, Stats: c.stats, Tally: c.tally,
				Log: slog.New(slog.NewTextHandler(syncWriter{w: c.logs, mu: new(sync.Mutex)}, &slog.HandlerOptions{Level: slog.LevelDebug}))}
			go func() { c.served <- srv.Serve(ctx, c.listener) }()
		}
	}
	c.send("go")
	return c
}

type syncWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (s syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (c *child) line() string {
	c.t.Helper()
	if !c.out.Scan() {
		c.t.Fatalf("child ended early: %v (stderr: %s)", c.out.Err(), c.stderr)
	}
	return c.out.Text()
}

func (c *child) send(line string) {
	fmt.Fprintln(c.in, line)
}

// expect reads lines up to the synchronisation line want, keeping results.
func (c *child) expect(want string) {
	c.t.Helper()
	for {
		l := c.line()
		if l == want {
			return
		}
		c.keep(l)
	}
}

func (c *child) keep(l string) {
	if k, v, ok := strings.Cut(l, "="); ok {
		c.results[k] = v
	}
}

// finish reads the child's remaining results, waits for it to exit, and
// checks that Serve then returned nil by itself (the listener hung up).
func (c *child) finish() map[string]string {
	c.t.Helper()
	c.expect("end")
	for c.out.Scan() {
		c.keep(c.out.Text())
	}
	if err := c.cmd.Wait(); err != nil {
		c.t.Fatalf("child: %v (stderr: %s)", err, c.stderr)
	}
	if c.served != nil {
		select {
		case err := <-c.served:
			if err != nil {
				c.t.Errorf("Serve after the child exited: %v, want nil", err)
			}
			c.checkTally()
		case <-time.After(10 * time.Second):
			c.t.Errorf("Serve did not return after the child exited")
		}
	}
	if c.listener >= 0 {
		unix.Close(c.listener)
	}
	return c.results
}

// checkTally cross-checks the Tally against the Stats of a finished
// Serve: every call taken off the listener has exactly one outcome, and
// the refusals are the same in both.
func (c *child) checkTally() {
	c.t.Helper()
	var sum, denied, invalid uint64
	for k := range Calls {
		for o := range Outcomes {
			n := c.tally.Load(k, Outcome(o))
			sum += n
			switch Outcome(o) {
			case OutcomeDenied:
				denied += n
			case OutcomeInvalid:
				invalid += n
			}
		}
	}
	if served := c.stats.Served.Load(); sum != served {
		c.t.Errorf("the tally counts %d calls, Stats.Served %d", sum, served)
	}
	if denied != c.stats.Denied.Load() || invalid != c.stats.Invalid.Load() {
		c.t.Errorf("the tally counts %d denied and %d invalid, Stats %d and %d", denied, invalid,
			c.stats.Denied.Load(), c.stats.Invalid.Load())
	}
}

// testGrants is a static, revocable Grants.
type testGrants struct {
	mu     sync.Mutex
	listen map[string]netip.AddrPort // "tcp/80"
	egress []egressRule
}

type egressRule struct {
	proto  string
	prefix netip.Prefix
	port   uint16 // 0: any
}

func (g *testGrants) Listen(proto string, port uint16) (Published, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	h, ok := g.listen[fmt.Sprintf("%s/%d", proto, port)]
	if h.Addr().Is4() {
		return Published{V4: h}, ok
	}
	return Published{V6: h}, ok
}

func (g *testGrants) Egress(proto string, dst netip.AddrPort) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, r := range g.egress {
		if r.proto == proto && r.prefix.Contains(dst.Addr()) && (r.port == 0 || r.port == dst.Port()) {
			return true
		}
	}
	return false
}

func (g *testGrants) Any(proto string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for k := range g.listen {
		if strings.HasPrefix(k, proto+"/") {
			return true
		}
	}
	for _, r := range g.egress {
		if r.proto == proto {
			return true
		}
	}
	return false
}

func (g *testGrants) Inbound(proto string) Inbound {
	g.mu.Lock()
	defer g.mu.Unlock()
	var in Inbound
	for k, h := range g.listen {
		if strings.HasPrefix(k, proto+"/") {
			in.To = append(in.To, h)
		}
	}
	for _, r := range g.egress {
		if r.proto == proto {
			in.From = append(in.From, Source{Prefix: r.prefix, Port: r.port})
		}
	}
	return in
}

func (g *testGrants) revokeAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.listen, g.egress = nil, nil
}

func loopback(port int) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
}

func host32(s string, port int) egressRule {
	a := netip.MustParseAddr(s)
	return egressRule{proto: ProtoTCP, prefix: netip.PrefixFrom(a, a.BitLen()), port: uint16(port)}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// countingListener accepts and closes connections on 127.0.0.1, counting them.
type countingListener struct {
	net.Listener
	mu sync.Mutex
	n  int
}

func listenCounting(t testing.TB) *countingListener {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			cl.mu.Lock()
			cl.n++
			cl.mu.Unlock()
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close() })
	return cl
}

func (l *countingListener) port() int { return l.Addr().(*net.TCPAddr).Port }

func (l *countingListener) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// want checks the child's results.
func want(t *testing.T, got map[string]string, w map[string]string) {
	t.Helper()
	for k, v := range w {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

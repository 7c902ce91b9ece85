package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for `oak _netserver --listen
// ADDR`, so that the plain variant can run it as its server.
func TestMain(m *testing.M) {
	if len(os.Args) == 4 && os.Args[1] == NetServerCommand && os.Args[2] == "--listen" {
		if err := NetServer(context.Background(), os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serve starts ServeNet on a loopback listener for the test's lifetime and
// returns its address.
func serve(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeNet(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeNet: %v", err)
		}
	})
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c.(*net.TCPConn)
}

// The sink counts exactly the bytes after the mode byte.
func TestSinkCountsBytes(t *testing.T) {
	addr := serve(t)
	for _, n := range []int{0, 1, 12345, 3<<20 + 7} {
		c := dial(t, addr)
		data := bytes.Repeat([]byte{ModeSink, 'x', 0}, n/3+1)[:n]
		if _, err := c.Write(append([]byte{ModeSink}, data...)); err != nil {
			t.Fatal(err)
		}
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		reply, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		if len(reply) != 8 {
			t.Fatalf("%d bytes: reply is %d bytes, want 8", n, len(reply))
		}
		if got := binary.BigEndian.Uint64(reply); got != uint64(n) {
			t.Errorf("sent %d bytes, server counted %d", n, got)
		}
	}
}

// Every request comes back as sent, in order, and the server closes when
// the client is done.
func TestEchoRepliesInOrder(t *testing.T) {
	addr := serve(t)
	c := dial(t, addr)
	var reqs []byte
	for i := range 5 {
		req := bytes.Repeat([]byte{byte('a' + i)}, EchoSize)
		reqs = append(reqs, req...)
	}
	// One write for all: the server must frame by EchoSize, not by read.
	if _, err := c.Write(append([]byte{ModeEcho}, reqs...)); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, reqs) {
		t.Errorf("echo returned %q, want %q", got, reqs)
	}
}

func TestUnknownModeIsClosed(t *testing.T) {
	addr := serve(t)
	c := dial(t, addr)
	if _, err := c.Write([]byte("X hello")); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if len(got) != 0 || (err != nil && !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset")) {
		t.Errorf("after an unknown mode: read %q, %v; want the connection closed", got, err)
	}
}

// ServeNet ends when its context does, closing connections it serves.
func TestServeNetStops(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeNet(ctx, ln) }()
	c := dial(t, ln.Addr().String())
	if _, err := c.Write([]byte{ModeSink, 1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // let the server take the connection
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ServeNet after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeNet did not return after cancel")
	}
	if _, err := io.ReadAll(c); err != nil && !strings.Contains(err.Error(), "reset") {
		t.Errorf("reading the served connection after stop: %v", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("listener still accepts after stop")
	}
}

func TestSinkRunAndEchoRun(t *testing.T) {
	addr := serve(t)
	// An odd write size, so the server's reads do not line up with writes.
	res, err := sinkRun(context.Background(), addr, 3, 50*time.Millisecond, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if res.Bytes <= 0 || res.Elapsed < 50*time.Millisecond || res.Gbps() <= 0 {
		t.Errorf("sink run = %+v (%.3f Gbit/s), want bytes and at least the run's length", res, res.Gbps())
	}
	rtts, err := echoRun(context.Background(), addr, 100, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(rtts) != 100 {
		t.Errorf("%d round trips, want 100", len(rtts))
	}
	for i, d := range rtts {
		if d <= 0 {
			t.Errorf("round trip %d took %v", i, d)
		}
	}
}

// fakeServer accepts connections on loopback and hands each to handle.
func fakeServer(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); handle(c) }()
		}
	}()
	return ln.Addr().String()
}

// The load generator refuses a count that differs from what it wrote.
func TestSinkRunChecksCount(t *testing.T) {
	addr := fakeServer(t, func(c net.Conn) {
		n, _ := io.Copy(io.Discard, c)
		var out [8]byte
		binary.BigEndian.PutUint64(out[:], uint64(n)) // counts the mode byte too
		c.Write(out[:])
	})
	_, err := sinkRun(context.Background(), addr, 2, 20*time.Millisecond, 4096)
	if err == nil || !strings.Contains(err.Error(), "server counted") {
		t.Errorf("err = %v, want a count mismatch", err)
	}
}

// The load generator refuses a reply that is not its request.
func TestEchoRunChecksReply(t *testing.T) {
	addr := fakeServer(t, func(c net.Conn) {
		buf := make([]byte, 1+EchoSize)
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		buf[1+EchoSize-1] ^= 1
		c.Write(buf[1:])
	})
	_, err := echoRun(context.Background(), addr, 10, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "differs") {
		t.Errorf("err = %v, want a reply mismatch", err)
	}
}

func TestRunsRefuseBadArguments(t *testing.T) {
	if _, err := sinkRun(context.Background(), "127.0.0.1:1", 0, time.Second, 1); err == nil {
		t.Error("sinkRun with 0 streams succeeded")
	}
	if _, err := echoRun(context.Background(), "127.0.0.1:1", 1, 0); err == nil {
		t.Error("echoRun with no time succeeded")
	}
}

func TestWaitServer(t *testing.T) {
	// A port nothing listens on: closed by the time it is dialled.
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	nobody := fmt.Sprintf("127.0.0.1:%d", port)
	gone := errors.New("server exited: bind: permission denied")
	err = waitServer(context.Background(), nobody, time.Minute, func(context.Context) error { return gone })
	if !errors.Is(err, gone) {
		t.Errorf("waitServer with an exited server = %v, want %v", err, gone)
	}
	err = waitServer(context.Background(), nobody, 50*time.Millisecond, nil)
	if err == nil || !strings.Contains(err.Error(), "not answering") {
		t.Errorf("waitServer with nothing listening = %v, want a timeout", err)
	}
	if err := waitServer(context.Background(), serve(t), time.Minute, nil); err != nil {
		t.Errorf("waitServer with a server: %v", err)
	}
}

// The plain variant, end to end, with this test binary as its server (see
// TestMain). Nothing here depends on how fast the runs are.
func TestNetPlain(t *testing.T) {
	var log strings.Builder
	rep, err := Net(context.Background(), NetConfig{
		Variants:  []string{VariantPlain},
		Streams:   []int{1, 3},
		Duration:  30 * time.Millisecond,
		Rounds:    2,
		Warmup:    10 * time.Millisecond,
		EchoCount: 50,
		WorkDir:   t.TempDir(),
		Log:       &log,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Variants) != 1 {
		t.Fatalf("variants = %+v, want plain only", rep.Variants)
	}
	plain := rep.Variants[0]
	if plain.Name != VariantPlain || plain.Error != "" || plain.Skipped != "" {
		t.Fatalf("plain = %+v", plain)
	}
	if !strings.Contains(plain.Detail, NetServerCommand+" --listen 127.0.0.1:") {
		t.Errorf("plain detail %q does not show the server's command line", plain.Detail)
	}
	if len(plain.Throughput) != 2 {
		t.Fatalf("throughput = %+v, want one per stream count", plain.Throughput)
	}
	for i, tp := range plain.Throughput {
		if tp.Streams != []int{1, 3}[i] || len(tp.Gbps) != 2 || tp.Median <= 0 {
			t.Errorf("throughput[%d] = %+v, want 2 rounds and a median", i, tp)
		}
	}
	if plain.Echo == nil || plain.Echo.N != 100 || plain.Echo.P50 <= 0 || plain.Echo.P99 < plain.Echo.P50 {
		t.Errorf("echo = %+v, want 2 runs × 50 round trips", plain.Echo)
	}
	if len(rep.Ratios) != 0 {
		t.Errorf("ratios with one variant: %+v", rep.Ratios)
	}
	if got := strings.Count(log.String(), "Gbit/s"); got != 4 {
		t.Errorf("log has %d throughput lines, want 4:\n%s", got, log.String())
	}
	var out strings.Builder
	if err := rep.Print(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "load generator: Go (in-process), N streams × 128 KiB writes") {
		t.Errorf("report does not say what generated the load:\n%s", out.String())
	}
}

func self(t *testing.T) string {
	t.Helper()
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeOak writes a stand-in for oak that checks its command line and runs
// the real server (this test binary) on the published host address.
func fakeOak(t *testing.T) string {
	t.Setenv("NETSERVER", self(t))
	return standIn(t, `
case "$3" in
run)
	[ "$1 $4 $5 $8 $9 ${10} ${11} $#" = "--root -d -p /oak _netserver --listen :8080 11" ] || { echo "bad args: $*" >&2; exit 2; }
	[ -x "$7/oak" ] && [ -d "$7/proc" ] || { echo "no server in $7" >&2; exit 2; }
	"$NETSERVER" _netserver --listen "${6%:8080}" </dev/null >/dev/null 2>&1 &
	echo $! >"$2/server.pid"
	echo 0123abcd ;;
ps)
	# the bench asks for its container among the exited ones: it runs
	;;
rm)
	[ "$4 $5" = "-f 0123abcd" ] || { echo "bad rm: $*" >&2; exit 2; }
	kill "$(cat "$2/server.pid")" && rm "$2/server.pid" ;;
*)
	echo "unexpected: $*" >&2; exit 2 ;;
esac
`)
}

// staticBinary returns a statically linked executable to copy into the
// containers' root file system, or skips the test.
func staticBinary(t *testing.T) string {
	if checkStaticBinary("/bin/busybox") != nil {
		t.Skip("no static /bin/busybox to stand in for the server binary")
	}
	return "/bin/busybox"
}

// The oak variant runs `oak --root DIR run -d -p 127.0.0.1:PORT:8080
// ROOTFS /oak _netserver --listen :8080` and `oak rm -f ID` at the end.
func TestNetOakCommandLine(t *testing.T) {
	oakRoot := t.TempDir()
	rep, err := Net(context.Background(), NetConfig{
		Variants:   []string{VariantOak},
		Streams:    []int{2},
		Duration:   20 * time.Millisecond,
		Rounds:     1,
		Warmup:     -1,
		EchoCount:  10,
		OakPath:    fakeOak(t),
		OakRoot:    oakRoot,
		ServerPath: staticBinary(t),
		WorkDir:    t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	oak := rep.Result(VariantOak)
	if oak == nil || oak.Error != "" || len(oak.Throughput) != 1 || oak.Throughput[0].Median <= 0 || oak.Echo == nil {
		t.Fatalf("oak = %+v", oak)
	}
	if !strings.Contains(oak.Detail, " run -d -p 127.0.0.1:") || !strings.Contains(oak.Detail, ":8080 /") ||
		!strings.HasSuffix(oak.Detail, "/rootfs /oak _netserver --listen :8080") {
		t.Errorf("oak ran %q", oak.Detail)
	}
	if _, err := os.Stat(filepath.Join(oakRoot, "server.pid")); err == nil {
		t.Error("oak rm -f was not run at the end")
	}
}

// A variant that fails keeps its row with the error; the others are
// measured, and no ratio involves the failed one.
func TestNetFailedVariantKeepsRow(t *testing.T) {
	oak := standIn(t, "echo 'run: listen tcp :8080: socket: permission denied' >&2\nexit 125\n")
	rep, err := Net(context.Background(), NetConfig{
		Variants:  []string{VariantOak, VariantPlain},
		Streams:   []int{1, 2},
		Duration:  20 * time.Millisecond,
		Rounds:    1,
		Warmup:    -1,
		EchoCount: 10,
		OakPath:   oak,
		// This test binary: plain runs it; oak fails either because it is
		// not static or because the stand-in oak fails.
		ServerPath: self(t),
		WorkDir:    t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Variants) != 2 || rep.Variants[0].Name != VariantPlain || rep.Variants[1].Name != VariantOak {
		t.Fatalf("variants = %+v, want plain then oak", rep.Variants)
	}
	plain, failed := rep.Variants[0], rep.Variants[1]
	if plain.Error != "" || len(plain.Throughput) != 2 || plain.Throughput[1].Median <= 0 || plain.Echo == nil {
		t.Errorf("plain = %+v, want it measured", plain)
	}
	if failed.Error == "" || failed.Echo != nil {
		t.Errorf("oak = %+v, want an error and no results", failed)
	}
	if len(rep.Ratios) != 0 {
		t.Errorf("ratios = %+v, want none with oak failed", rep.Ratios)
	}
	var out strings.Builder
	if err := rep.Print(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"oak:    FAILED: ", "failed\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report does not contain %q:\n%s", want, out.String())
		}
	}
}

// A container that fails to start is reported with oak's own words.
func TestNetOakFailureMessage(t *testing.T) {
	oak := standIn(t, "echo 'run: listen tcp :8080: socket: permission denied' >&2\nexit 125\n")
	rep, err := Net(context.Background(), NetConfig{
		Variants:   []string{VariantOak},
		Streams:    []int{1},
		OakPath:    oak,
		ServerPath: staticBinary(t),
		WorkDir:    t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	e := rep.Variants[0].Error
	for _, want := range []string{"socket: permission denied", "exit status 125", " run -d -p 127.0.0.1:"} {
		if !strings.Contains(e, want) {
			t.Errorf("oak error %q does not contain %q", e, want)
		}
	}
}

func TestNetRuncSkippedWhenAbsent(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no runc in it
	rep, err := Net(context.Background(), NetConfig{
		Variants:   []string{VariantRunc, VariantPlain},
		Streams:    []int{1},
		Duration:   20 * time.Millisecond,
		Rounds:     1,
		Warmup:     -1,
		EchoCount:  10,
		ServerPath: self(t),
		WorkDir:    t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	runc := rep.Result(VariantRunc)
	if runc == nil || runc.Skipped != "runc not found" || runc.Error != "" || len(runc.Throughput) != 0 || runc.Echo != nil {
		t.Errorf("runc = %+v, want skipped", runc)
	}
	if plain := rep.Result(VariantPlain); plain == nil || plain.Error != "" || plain.Echo == nil {
		t.Errorf("plain = %+v, want it measured", plain)
	}
	if len(rep.Ratios) != 0 {
		t.Errorf("ratios = %+v, want none", rep.Ratios)
	}
}

func TestNetRefuses(t *testing.T) {
	tests := []struct {
		name string
		cfg  NetConfig
		want string
	}{
		{"unknown variant", NetConfig{Variants: []string{"crun"}}, "unknown variant"},
		{"zero streams", NetConfig{Streams: []int{1, 0}}, "at least 1"},
		{"negative duration", NetConfig{Duration: -time.Second}, "duration"},
		{"negative rounds", NetConfig{Rounds: -1}, "rounds"},
		{"negative echo count", NetConfig{EchoCount: -1}, "echo count"},
		{"bad runc network", NetConfig{RuncNet: "macvlan"}, "runc network"},
	}
	for _, tt := range tests {
		tt.cfg.WorkDir = t.TempDir()
		_, err := Net(context.Background(), tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

func TestMakeNetRootFS(t *testing.T) {
	server := staticBinary(t)
	dir := filepath.Join(t.TempDir(), "rootfs")
	if err := makeNetRootFS(dir, server); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "oak"))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("/oak: %v, %v", fi, err)
	}
	for _, d := range []string{"proc", "dev", "sys", "tmp"} {
		if fi, err := os.Stat(filepath.Join(dir, d)); err != nil || !fi.IsDir() {
			t.Errorf("mount point %s: %v", d, err)
		}
	}
	// A dynamically linked server is refused: the container has no loader.
	dyn := ""
	for _, p := range []string{"/bin/sh", "/bin/ls", "/usr/bin/env"} {
		if checkStaticBinary(p) != nil {
			dyn = p
			break
		}
	}
	if dyn == "" {
		t.Skip("no dynamically linked binary found to refuse")
	}
	err = makeNetRootFS(filepath.Join(t.TempDir(), "rootfs"), dyn)
	if err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Errorf("rootfs with %s: err = %v, want it refused", dyn, err)
	}
}

// buildStaticServer builds testdata/netserver without cgo: a static
// `_netserver` for containers, since the test binary may need a loader.
func buildStaticServer(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to build the static server")
	}
	out := filepath.Join(t.TempDir(), "netserver")
	cmd := exec.Command(goBin, "build", "-o", out, "./testdata/netserver")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the static server: %v\n%s", err, msg)
	}
	return out
}

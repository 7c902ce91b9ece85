package bench

import (
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// NetServerCommand is the hidden oak command that serves the network
// benchmark's protocol (NetServer): `oak _netserver --listen ADDR`.
const NetServerCommand = "_netserver"

// ContainerPort is the port the server listens on inside a container.
const ContainerPort = 8080

// netVariants lists the network variants in report order.
var netVariants = []string{VariantPlain, VariantPlainSession, VariantRunc, VariantOak}

// VariantPlainSession is the plain server started in a session of its own
// (setsid), as a daemon or a container is. On a host with scheduler
// autogroups (sched_autogroup_enabled=1) a new session is a new CPU group,
// and when the load generator and the server share the CPUs the scheduler
// splits them between the two groups rather than between the threads;
// measured here, that alone costs a plain server ~8 % at 8 streams. Oak
// puts every container in a session of its own, so this is the baseline
// that isolates what Oak itself costs.
const VariantPlainSession = "plain-session"

// How the runc variant's network namespace is joined to the host
// (NetConfig.RuncNet).
const (
	// RuncNetBridge is docker's default network: the host end of the veth
	// pair is a port of a bridge that holds the host's address.
	RuncNetBridge = "bridge"
	// RuncNetVeth holds the host's address on the host end of the veth
	// pair itself, with no bridge.
	RuncNetVeth = "veth"
)

// NetConfig configures Net. The zero value measures every variant with the
// defaults below.
type NetConfig struct {
	// Variants selects variants by name (VariantPlain, VariantRunc,
	// VariantOak); empty means all three.
	Variants []string

	// Streams are the numbers of parallel TCP streams to measure; empty
	// means DefaultNetStreams.
	Streams []int
	// Duration is how long the streams of one throughput run write; 0
	// means DefaultNetDuration.
	Duration time.Duration
	// Rounds is how many times each variant is measured at each stream
	// count; 0 means DefaultNetRounds.
	Rounds int
	// Warmup is how long each variant streams, untimed, before the
	// measurement; 0 means DefaultNetWarmup and a negative value none.
	Warmup time.Duration
	// WriteSize is the size of the load generator's writes; 0 means
	// 128 KiB.
	WriteSize int
	// EchoCount and EchoDuration bound one request/response run: it stops
	// after EchoCount round trips or EchoDuration, whichever comes first;
	// 0 means DefaultEchoCount and DefaultEchoDuration.
	EchoCount    int
	EchoDuration time.Duration

	// OakPath is the oak binary for the oak variant; empty means
	// os.Executable().
	OakPath string
	// OakRoot is passed as `oak --root OakRoot`; empty means a fresh
	// directory under WorkDir, removed afterwards.
	OakRoot string
	// ServerPath is the binary that serves `ServerPath _netserver --listen
	// ADDR` (NetServer): run directly by the plain variant and copied into
	// the containers' root file system as /oak. It must be statically
	// linked for runc and oak. Empty means OakPath.
	ServerPath string

	// RuncPath is the runc binary; empty means "runc" looked up in $PATH,
	// and the runc variant is skipped (not failed) if there is none.
	RuncPath string
	// RuncNet is RuncNetBridge (the default when empty) or RuncNetVeth.
	RuncNet string

	// ReadyTimeout bounds the wait for a server to answer; 0 means 10 s.
	ReadyTimeout time.Duration
	// WorkDir is where Net makes its temporary directory (root file
	// system, runc bundle and state, oak root); empty means os.TempDir().
	WorkDir string
	// Log, if not nil, receives a line per run as the benchmark goes.
	Log io.Writer
}

// Defaults for NetConfig.
var DefaultNetStreams = []int{1, 2, 4, 8, 16}

const (
	DefaultNetDuration  = 3 * time.Second
	DefaultNetRounds    = 3
	DefaultNetWarmup    = time.Second
	DefaultEchoCount    = 20000
	DefaultEchoDuration = 2 * time.Second
	defaultReadyTimeout = 10 * time.Second
)

// netServer is one variant's running server.
type netServer struct {
	// addr is where the load generator connects.
	addr string
	// detail describes what was set up, for the report.
	detail string
	// stop ends the server and removes everything its start made.
	stop func(context.Context) error
}

// netEnv is what Net prepared for the variants.
type netEnv struct {
	// work is Net's temporary directory.
	work string
	// rootfs is the containers' root file system, unless rootfsErr says
	// why there is none.
	rootfs    string
	rootfsErr error
	// logf reports progress.
	logf func(format string, args ...any)
}

// netVariant is one variant as Net drives it.
type netVariant struct {
	res *NetResult
	srv *netServer
}

// Net measures TCP throughput and request/response latency between a load
// generator in this process and a server (NetServer) in each variant: a
// plain host process on 127.0.0.1, a runc container in a network namespace
// the benchmark makes and joins to the host with a veth pair (and bridge),
// reached through a docker-style port forward on 127.0.0.1, and an oak
// container whose published port is 127.0.0.1:PORT. Each variant's server
// is started once and kept for the whole benchmark. For each stream count
// every variant is measured cfg.Rounds times, in an order rotated by one
// place per round; the report gives the median of the rounds and the
// ratios of the variants to one another.
//
// Net refuses an unknown variant name, a stream count below 1 and a
// negative duration, round or echo count. A variant that cannot run here
// is reported as skipped (runc without runc in $PATH); one that fails —
// its server does not start, or a run fails — keeps its row with the error
// and the other variants go on. Net removes everything it set up (servers,
// containers, network namespace, links, iptables rules) before it returns,
// also when ctx is cancelled.
func Net(ctx context.Context, cfg NetConfig) (*NetReport, error) {
	cfg, names, err := netDefaults(cfg)
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp(cfg.WorkDir, "oak-bench-net-")
	if err != nil {
		return nil, fmt.Errorf("bench net: %w", err)
	}
	defer removeWork(cfg.OakPath, work)

	rep := &NetReport{
		Benchmark:     "net",
		Description:   "TCP throughput and request/response latency; server in the variant, load generator on the host over loopback",
		LoadGenerator: fmt.Sprintf("Go (in-process), N streams × %s writes, %v per run", sizeString(cfg.WriteSize), cfg.Duration),
		Streams:       cfg.Streams,
		WriteSize:     cfg.WriteSize,
		Duration:      cfg.Duration,
		Rounds:        cfg.Rounds,
		Order:         "for each stream count, rounds of every variant, the order rotated by one per round",
		EchoSize:      EchoSize,
		EchoCount:     cfg.EchoCount,
		EchoDuration:  cfg.EchoDuration,
	}
	logf := func(format string, args ...any) {
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, format+"\n", args...)
		}
	}

	// The containers' root file system: the server binary as /oak and the
	// mount points runc and oak need. A failure here fails the container
	// variants, not the benchmark.
	env := &netEnv{work: work, logf: logf}
	if slices.Contains(names, VariantRunc) || slices.Contains(names, VariantOak) {
		env.rootfs = filepath.Join(work, "rootfs")
		if err := makeNetRootFS(env.rootfs, cfg.ServerPath); err != nil {
			env.rootfsErr = fmt.Errorf("root file system: %w", err)
		}
	}

	var vs []*netVariant
	defer func() {
		// Stop in reverse order of start, whatever happened, and not
		// cancellable: a half-removed network namespace is worse than a
		// slow ctrl-C.
		for _, v := range slices.Backward(vs) {
			if v.srv != nil {
				if err := v.srv.stop(context.WithoutCancel(ctx)); err != nil {
					fmt.Fprintf(os.Stderr, "bench net: cleaning up %s: %v\n", v.res.Name, err)
				}
			}
		}
	}()
	for _, name := range netVariants { // report order, whatever the order asked
		if !slices.Contains(names, name) {
			continue
		}
		v := &netVariant{res: &NetResult{Name: name}}
		vs = append(vs, v)
		rep.Variants = append(rep.Variants, v.res)
		var srv *netServer
		var skip string
		switch name {
		case VariantPlain, VariantPlainSession:
			srv, err = startPlainServer(ctx, cfg, name == VariantPlainSession)
		case VariantRunc:
			srv, skip, err = startRuncServer(ctx, cfg, env)
		case VariantOak:
			srv, err = startOakServer(ctx, cfg, env)
		}
		switch {
		case skip != "":
			v.res.Skipped = skip
		case err != nil:
			v.res.Error = err.Error()
		default:
			v.srv = srv // stopped by the deferred clean-up from here on
			v.res.Detail = srv.detail
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		switch {
		case v.res.Error != "":
			logf("%s: %s", name, v.res.Error)
		case v.srv != nil:
			logf("%s: serving at %s: %s", name, srv.addr, srv.detail)
		}
	}
	active := func() []*netVariant {
		var a []*netVariant
		for _, v := range vs {
			if v.srv != nil && v.res.Error == "" {
				a = append(a, v)
			}
		}
		return a
	}
	fail := func(v *netVariant, what string, err error) {
		v.res.Error = what + ": " + err.Error()
		logf("%s: %s", v.res.Name, v.res.Error)
	}

	if cfg.Warmup > 0 {
		for _, v := range active() {
			if _, err := sinkRun(ctx, v.srv.addr, 2, cfg.Warmup, cfg.WriteSize); err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				fail(v, "warm-up", err)
			}
		}
	}

	for _, v := range vs {
		v.res.Throughput = []*NetThroughput{}
		if v.res.Skipped != "" {
			continue
		}
		for _, n := range cfg.Streams {
			v.res.Throughput = append(v.res.Throughput, &NetThroughput{Streams: n, Retransmits: -1})
		}
	}
	for si, n := range cfg.Streams {
		for round := range cfg.Rounds {
			act := active()
			for _, k := range rotation(len(act), round) {
				v := act[k]
				before, rerr := tcpRetransSegs()
				res, err := sinkRun(ctx, v.srv.addr, n, cfg.Duration, cfg.WriteSize)
				after, rerr2 := tcpRetransSegs()
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				if err != nil {
					fail(v, fmt.Sprintf("%d streams, round %d", n, round+1), err)
					continue
				}
				t := v.res.Throughput[si]
				t.Gbps = append(t.Gbps, round3(res.Gbps()))
				if rerr == nil && rerr2 == nil {
					t.Retransmits = max(t.Retransmits, 0) + after - before
				}
				logf("%d streams, round %d/%d: %-5s %6.2f Gbit/s", n, round+1, cfg.Rounds, v.res.Name, res.Gbps())
			}
		}
		for _, v := range vs {
			if si < len(v.res.Throughput) {
				t := v.res.Throughput[si]
				t.Median = round3(medianFloat(t.Gbps))
			}
		}
	}

	rtts := make(map[*netVariant][]time.Duration)
	for round := range cfg.Rounds {
		act := active()
		for _, k := range rotation(len(act), round) {
			v := act[k]
			s, err := echoRun(ctx, v.srv.addr, cfg.EchoCount, cfg.EchoDuration)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if err != nil {
				fail(v, fmt.Sprintf("request/response, round %d", round+1), err)
				continue
			}
			rtts[v] = append(rtts[v], s...)
			logf("request/response, round %d/%d: %-5s %d round trips", round+1, cfg.Rounds, v.res.Name, len(s))
		}
	}
	for _, v := range vs {
		if s := rtts[v]; len(s) > 0 {
			slices.Sort(s)
			v.res.Echo = &NetLatency{N: len(s), P50: Percentile(s, 50), P99: Percentile(s, 99)}
		}
	}

	for _, p := range [][2]string{{VariantRunc, VariantPlain}, {VariantOak, VariantPlain}, {VariantOak, VariantPlainSession}, {VariantOak, VariantRunc}} {
		rep.AddRatio(p[0], p[1])
	}
	return rep, nil
}

// netDefaults checks cfg, fills in its defaults and returns the variants
// to run.
func netDefaults(cfg NetConfig) (NetConfig, []string, error) {
	names, err := pickVariants("net", cfg.Variants, netVariants)
	if err != nil {
		return cfg, nil, err
	}
	if len(cfg.Streams) == 0 {
		cfg.Streams = DefaultNetStreams
	}
	for _, n := range cfg.Streams {
		if n < 1 {
			return cfg, nil, fmt.Errorf("bench net: %d streams: must be at least 1", n)
		}
	}
	cfg.Streams = slices.Clone(cfg.Streams)
	switch {
	case cfg.Duration < 0:
		return cfg, nil, fmt.Errorf("bench net: duration %v: must not be negative", cfg.Duration)
	case cfg.Duration == 0:
		cfg.Duration = DefaultNetDuration
	}
	switch {
	case cfg.Rounds < 0:
		return cfg, nil, fmt.Errorf("bench net: rounds %d: must not be negative", cfg.Rounds)
	case cfg.Rounds == 0:
		cfg.Rounds = DefaultNetRounds
	}
	switch {
	case cfg.Warmup == 0:
		cfg.Warmup = DefaultNetWarmup
	case cfg.Warmup < 0:
		cfg.Warmup = 0
	}
	switch {
	case cfg.WriteSize < 0:
		return cfg, nil, fmt.Errorf("bench net: write size %d: must not be negative", cfg.WriteSize)
	case cfg.WriteSize == 0:
		cfg.WriteSize = sinkBufSize
	}
	switch {
	case cfg.EchoCount < 0:
		return cfg, nil, fmt.Errorf("bench net: echo count %d: must not be negative", cfg.EchoCount)
	case cfg.EchoCount == 0:
		cfg.EchoCount = DefaultEchoCount
	}
	switch {
	case cfg.EchoDuration < 0:
		return cfg, nil, fmt.Errorf("bench net: echo duration %v: must not be negative", cfg.EchoDuration)
	case cfg.EchoDuration == 0:
		cfg.EchoDuration = DefaultEchoDuration
	}
	switch cfg.RuncNet {
	case "":
		cfg.RuncNet = RuncNetBridge
	case RuncNetBridge, RuncNetVeth:
	default:
		return cfg, nil, fmt.Errorf("bench net: runc network %q: want %s or %s", cfg.RuncNet, RuncNetBridge, RuncNetVeth)
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = defaultReadyTimeout
	}
	if cfg.OakPath == "" {
		exe, err := os.Executable()
		if err != nil {
			return cfg, nil, fmt.Errorf("bench net: oak binary: %w", err)
		}
		cfg.OakPath = exe
	}
	if cfg.ServerPath == "" {
		cfg.ServerPath = cfg.OakPath
	}
	return cfg, names, nil
}

// makeNetRootFS makes the containers' root file system at dir: the server
// binary as /oak, and empty proc, dev, sys, tmp and etc as mount points.
// It refuses a server binary that needs a dynamic loader: there is none in
// the container.
func makeNetRootFS(dir, server string) error {
	if err := checkStaticBinary(server); err != nil {
		return err
	}
	for _, d := range []string{"proc", "dev", "sys", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o1777); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	in, err := os.Open(server)
	if err != nil {
		return fmt.Errorf("server binary: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(filepath.Join(dir, "oak"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying %s: %w", server, err)
	}
	return out.Close()
}

// checkStaticBinary refuses a file that is not an ELF executable or that
// names a program interpreter (a dynamic loader).
func checkStaticBinary(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("server binary %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("server binary %s is dynamically linked; the containers have no loader (build oak with make)", path)
		}
	}
	return nil
}

// freePort returns a TCP port on 127.0.0.1 that nothing listened on a
// moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startPlainServer runs `SERVER _netserver --listen 127.0.0.1:PORT` as a
// host process, in a session of its own if ownSession.
func startPlainServer(ctx context.Context, cfg NetConfig, ownSession bool) (*netServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	argv := []string{cfg.ServerPath, NetServerCommand, "--listen", addr}
	var stderr tailBuffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = &stderr
	detail := strings.Join(argv, " ") + " (host process)"
	if ownSession {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		detail = strings.Join(argv, " ") + " (host process in its own session)"
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	stop := func(context.Context) error {
		select {
		case <-done:
			return nil
		default:
		}
		cmd.Process.Kill()
		<-done
		return nil
	}
	exited := func(context.Context) error {
		select {
		case <-done:
			return fmt.Errorf("%s exited: %v: %s", argv[0], waitErr, strings.TrimSpace(stderr.String()))
		default:
			return nil
		}
	}
	if err := waitServer(ctx, addr, cfg.ReadyTimeout, exited); err != nil {
		stop(ctx)
		return nil, err
	}
	return &netServer{addr: addr, detail: detail, stop: stop}, nil
}

// startOakServer runs `OAK --root ROOT run -d -p 127.0.0.1:PORT:8080
// ROOTFS /oak _netserver --listen :8080` and removes the container with
// `oak rm -f` at the end.
func startOakServer(ctx context.Context, cfg NetConfig, env *netEnv) (*netServer, error) {
	if _, err := os.Stat(cfg.OakPath); err != nil {
		return nil, fmt.Errorf("oak binary: %w", err)
	}
	if env.rootfsErr != nil {
		return nil, env.rootfsErr
	}
	rootfs := env.rootfs
	oakRoot := cfg.OakRoot
	if oakRoot == "" {
		oakRoot = filepath.Join(env.work, "oak-root")
		if err := os.Mkdir(oakRoot, 0o700); err != nil {
			return nil, err
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	oak := func(args ...string) []string { return append([]string{cfg.OakPath, "--root", oakRoot}, args...) }
	argv := oak("run", "-d", "-p", fmt.Sprintf("%s:%d", addr, ContainerPort), rootfs,
		"/oak", NetServerCommand, "--listen", fmt.Sprintf(":%d", ContainerPort))
	out, err := commandOutput(ctx, argv)
	if err != nil {
		return nil, err
	}
	id := strings.TrimSpace(out)
	if id == "" || strings.ContainsAny(id, " \n") {
		return nil, fmt.Errorf("%s: printed %q, not a container id", strings.Join(argv, " "), out)
	}
	stop := func(ctx context.Context) error { return runCommand(ctx, oak("rm", "-f", id)) }
	exited := func(ctx context.Context) error {
		out, err := commandOutput(ctx, oak("ps", "--no-trunc", "--filter", "id="+id, "--filter", "status=exited", "--format", "json"))
		if err != nil {
			return err
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var c struct {
				ID       string
				ExitCode int
			}
			if line == "" {
				continue
			}
			if err := json.Unmarshal([]byte(line), &c); err != nil {
				return fmt.Errorf("oak ps: %w", err)
			}
			if c.ID == id {
				logs, _ := commandCombinedOutput(ctx, oak("logs", id))
				return fmt.Errorf("container %s exited with status %d: %s", id, c.ExitCode, oneLine(logs))
			}
		}
		return nil
	}
	if err := waitServer(ctx, addr, cfg.ReadyTimeout, exited); err != nil {
		if logs, _ := commandCombinedOutput(ctx, oak("logs", id)); strings.TrimSpace(logs) != "" && !strings.Contains(err.Error(), "exited") {
			err = fmt.Errorf("%w; container output: %s", err, oneLine(logs))
		}
		stop(context.WithoutCancel(ctx))
		return nil, err
	}
	return &netServer{addr: addr, detail: strings.Join(argv, " "), stop: stop}, nil
}

// commandOutput runs argv and returns its standard output; an error
// includes its stderr.
func commandOutput(ctx context.Context, argv []string) (string, error) {
	var stderr tailBuffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return string(out), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, oneLine(msg))
		}
		return string(out), fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	return string(out), nil
}

// commandCombinedOutput runs argv and returns the end of its output.
func commandCombinedOutput(ctx context.Context, argv []string) (string, error) {
	var out tailBuffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.String(), err
}

// oneLine joins the lines of s with "; ".
func oneLine(s string) string {
	var lines []string
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
}

// sizeString writes n bytes the way the report does: "128 KiB".
func sizeString(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Names of the startup variants, for StartupConfig.Variants.
const (
	VariantPlain = "plain" // ROOTFS/bin/true run directly
	VariantRunc  = "runc"  // runc run, runc's default spec for ROOTFS
	VariantOak   = "oak"   // oak run --rm ROOTFS true: through the daemon, a supervisor of its pool
	// VariantOakDirect is oak --no-daemon run --rm ROOTFS true: the CLI
	// process supervises the container, nothing prepared ahead.
	VariantOakDirect = "oak-direct"
)

// startupVariants lists the startup variants in report order.
var startupVariants = []string{VariantPlain, VariantRunc, VariantOak, VariantOakDirect}

// isOak says whether variant name runs oak.
func isOak(name string) bool { return name == VariantOak || name == VariantOakDirect }

// Cases of the startup benchmark, for StartupConfig.Cases and Report.Case.
const (
	// CaseWarm launches `true` one at a time with everything prepared: the
	// state roots exist and the image is there (Startup).
	CaseWarm = "warm"
	// CaseCold launches `true` one at a time, each launch in a fresh, empty
	// state root (StartupCold).
	CaseCold = "cold"
	// CaseParallel starts N launches of `true` at once (StartupParallel).
	CaseParallel = "parallel"
	// CaseFirstResponse times start → first HTTP 200 of a server
	// (FirstResponse).
	CaseFirstResponse = "first-response"
)

// StartupCases lists the cases in the order StartupSuite runs them.
var StartupCases = []string{CaseWarm, CaseCold, CaseParallel, CaseFirstResponse}

// StartupConfig configures the startup benchmark. Only RootFS is required.
type StartupConfig struct {
	// RootFS is the root file system every variant starts `true` from: a
	// directory with bin/true (for example a symlink to a static busybox)
	// and the mount points proc, dev and sys. runc creates the mount points
	// of its default spec that are missing, so without them RootFS must be
	// writable.
	RootFS string

	// Variants selects variants by name (VariantPlain, VariantRunc,
	// VariantOak); empty means all three.
	Variants []string
	// Cases selects the cases StartupSuite runs (CaseWarm, CaseCold,
	// CaseParallel, CaseFirstResponse); empty means all.
	Cases []string

	// OakPath is the oak binary to run; empty means os.Executable().
	OakPath string
	// OakRoot is passed as `oak --root OakRoot`; empty means a fresh
	// directory under WorkDir, removed afterwards.
	OakRoot string
	// OakImage is the image oak runs `true` from; empty means RootFS. With
	// the built-in demo image ("demo") a cold launch also makes the image
	// in its fresh state root, as a first `oak run demo` on a host does.
	OakImage string

	// RuncPath is the runc binary; empty means "runc" looked up in $PATH,
	// and the runc variant is skipped (not failed) if there is none.
	RuncPath string

	// Runs is the number of timed runs per variant of the warm case; 0
	// means DefaultRuns.
	Runs int
	// Warmup is the number of untimed runs per variant first, in the warm
	// and cold cases; 0 means DefaultWarmup, and a negative value means
	// none.
	Warmup int
	// ColdRuns is the number of timed runs per variant of the cold case; 0
	// means DefaultColdRuns.
	ColdRuns int
	// Parallel are the numbers of launches started at once in the
	// parallel case; empty means DefaultParallel.
	Parallel []int
	// Rounds is the number of timed rounds per variant at each number of
	// the parallel case (after one untimed round); 0 means DefaultRounds.
	Rounds int
	// ResponseRuns is the number of timed runs per variant of the
	// first-response case (after one untimed run); 0 means
	// DefaultResponseRuns.
	ResponseRuns int

	// WorkDir is where the benchmark makes its temporary directory (runc
	// bundle and state, oak root, cold state roots); empty means
	// os.TempDir(). The temporary directory is removed at the end.
	WorkDir string
	// Log, if not nil, receives a line as each case starts.
	Log io.Writer
}

// Defaults for StartupConfig.
const (
	DefaultRuns         = 50
	DefaultWarmup       = 3
	DefaultColdRuns     = 10
	DefaultRounds       = 5
	DefaultResponseRuns = 20
)

// DefaultParallel are the launch counts of the parallel case.
var DefaultParallel = []int{1, 8, 32, 64}

// maxParallel bounds a launch count: each launch is a process tree, and a
// typo should not fork-bomb the host.
const maxParallel = 1024

// startupEnv is what the startup cases share: the checked configuration,
// the temporary directory, and the runc bundle.
type startupEnv struct {
	cfg     StartupConfig
	names   []string // variants asked for, in report order
	work    string
	rootfs  string
	trueBin string

	oak, oakRoot, oakImage string

	runc       string // "" if the runc variant is skipped
	runcSkip   string
	runcDetail string
	bundle     string // runc bundle for `true`
	runcState  string
	runcIDs    atomic.Int64
}

// newStartupEnv checks cfg and prepares what every case uses. The caller
// must call close.
func newStartupEnv(ctx context.Context, cfg StartupConfig) (*startupEnv, error) {
	asked, err := pickVariants("startup", cfg.Variants, startupVariants)
	if err != nil {
		return nil, err
	}
	if _, err := pickCases(cfg.Cases); err != nil {
		return nil, err
	}
	for _, n := range cfg.Parallel {
		if n < 1 || n > maxParallel {
			return nil, fmt.Errorf("bench startup: parallel launches %d: must be within 1..%d", n, maxParallel)
		}
	}
	if cfg.RootFS == "" {
		return nil, errors.New("bench startup: no root file system given")
	}
	rootfs, err := filepath.Abs(cfg.RootFS)
	if err != nil {
		return nil, fmt.Errorf("bench startup: rootfs %s: %w", cfg.RootFS, err)
	}
	env := &startupEnv{cfg: cfg, rootfs: rootfs, trueBin: filepath.Join(rootfs, "bin", "true")}
	if _, err := os.Stat(env.trueBin); err != nil {
		return nil, fmt.Errorf("bench startup: rootfs %s: %w", rootfs, err)
	}
	for _, n := range startupVariants { // report order, whatever the order asked
		if slices.Contains(asked, n) {
			env.names = append(env.names, n)
		}
	}
	env.work, err = os.MkdirTemp(cfg.WorkDir, "oak-bench-startup-")
	if err != nil {
		return nil, fmt.Errorf("bench startup: %w", err)
	}
	if err := env.prepare(ctx); err != nil {
		env.close()
		return nil, err
	}
	return env, nil
}

func (env *startupEnv) prepare(ctx context.Context) error {
	cfg := env.cfg
	if slices.ContainsFunc(env.names, isOak) {
		env.oak = cfg.OakPath
		if env.oak == "" {
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("bench startup: oak binary: %w", err)
			}
			env.oak = exe
		} else if _, err := os.Stat(env.oak); err != nil {
			return fmt.Errorf("bench startup: oak binary: %w", err)
		}
		env.oakRoot = cfg.OakRoot
		if env.oakRoot == "" {
			env.oakRoot = filepath.Join(env.work, "oak-root")
			if err := os.Mkdir(env.oakRoot, 0o700); err != nil {
				return fmt.Errorf("bench startup: %w", err)
			}
		}
		env.oakImage = cfg.OakImage
		if env.oakImage == "" {
			env.oakImage = env.rootfs
		}
	}
	if slices.Contains(env.names, VariantRunc) {
		if err := env.prepareRunc(ctx); err != nil {
			return err
		}
	}
	return nil
}

// prepareRunc finds runc and writes a bundle whose config.json is runc's
// own default (`runc spec`) with the root set to rootfs, read-only, and the
// process to `true` without a terminal.
func (env *startupEnv) prepareRunc(ctx context.Context) error {
	runc := env.cfg.RuncPath
	if runc == "" {
		p, err := exec.LookPath("runc")
		if err != nil {
			env.runcSkip = "runc not found"
			return nil
		}
		runc = p
	} else if _, err := os.Stat(runc); err != nil {
		return fmt.Errorf("bench startup: runc binary: %w", err)
	}
	env.runc = runc
	env.bundle = filepath.Join(env.work, "runc-bundle")
	env.runcState = filepath.Join(env.work, "runc-state")
	if err := writeRuncBundle(ctx, runc, env.bundle, env.rootfs, []string{"true"}, true); err != nil {
		return err
	}
	if err := os.Mkdir(env.runcState, 0o700); err != nil {
		return fmt.Errorf("bench startup: %w", err)
	}
	env.runcDetail = runc
	if out, err := exec.CommandContext(ctx, runc, "--version").Output(); err == nil {
		first, _, _ := strings.Cut(string(out), "\n")
		env.runcDetail = runc + " (" + strings.TrimSpace(first) + ")"
	}
	return nil
}

// writeRuncBundle makes dir and writes runc's default spec into it, edited
// by editRuncSpec to run args in rootfs (with the host's network namespace
// unless ownNet).
func writeRuncBundle(ctx context.Context, runc, dir, rootfs string, args []string, ownNet bool) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("bench startup: %w", err)
	}
	if err := runCommand(ctx, []string{runc, "spec", "--bundle", dir}); err != nil {
		return fmt.Errorf("bench startup: runc spec: %w", err)
	}
	if err := editRuncSpec(filepath.Join(dir, "config.json"), rootfs, args, ownNet); err != nil {
		return fmt.Errorf("bench startup: %w", err)
	}
	return nil
}

func (env *startupEnv) close() { removeWork(env.oak, env.work) }

// removeWork removes a benchmark's work directory, after stopping the
// engine service that oak run -d started for the state root the benchmark
// made there (WORK/oak-root), if any: it would otherwise outlive the
// benchmark until it noticed its root was gone.
func removeWork(oak, work string) {
	root := filepath.Join(work, "oak-root")
	if _, err := os.Stat(root); err == nil && oak != "" {
		exec.Command(oak, "--root", root, "daemon", "stop").Run()
	}
	os.RemoveAll(work)
}

func (env *startupEnv) logf(format string, args ...any) {
	if env.cfg.Log != nil {
		fmt.Fprintf(env.cfg.Log, format+"\n", args...)
	}
}

// runcID returns a container id no other launch of this process uses.
func (env *startupEnv) runcID() string {
	return fmt.Sprintf("oak-bench-%d-%d", os.Getpid(), env.runcIDs.Add(1))
}

// runcArgv is the command line of `runc run` of the `true` bundle.
func (env *startupEnv) runcArgv(state, id string) []string {
	return []string{env.runc, "--root", state, "run", "--bundle", env.bundle, id}
}

// oakArgv is `oak --root ROOT run --rm IMAGE true`.
func (env *startupEnv) oakArgv(root string) []string {
	return []string{env.oak, "--root", root, "run", "--rm", env.oakImage, "true"}
}

// oakArgvOf is oakArgv for oak variant name: with --no-daemon for
// VariantOakDirect.
func (env *startupEnv) oakArgvOf(name, root string) []string {
	argv := env.oakArgv(root)
	if name == VariantOakDirect {
		argv = slices.Insert(argv, 1, "--no-daemon")
	}
	return argv
}

// skipped returns the variant that stands for name if it cannot run here,
// and false if it can.
func (env *startupEnv) skipped(name string) (Variant, bool) {
	if name == VariantRunc && env.runcSkip != "" {
		return Variant{Name: VariantRunc, Skip: env.runcSkip}, true
	}
	return Variant{}, false
}

// pickCases returns the cases asked for, or all; an unknown one is an error.
func pickCases(asked []string) ([]string, error) {
	if len(asked) == 0 {
		return StartupCases, nil
	}
	for _, c := range asked {
		if !slices.Contains(StartupCases, c) {
			return nil, fmt.Errorf("bench startup: unknown case %q (want one of %s)", c, strings.Join(StartupCases, ", "))
		}
	}
	return asked, nil
}

// StartupSuite runs the cases of cfg.Cases (all by default) in the order of
// StartupCases, sharing one temporary directory and runc bundle, and
// returns one report per case and, for the parallel case, per launch count.
func StartupSuite(ctx context.Context, cfg StartupConfig) (Reports, error) {
	cases, err := pickCases(cfg.Cases)
	if err != nil {
		return nil, err
	}
	env, err := newStartupEnv(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer env.close()
	var reps Reports
	for _, c := range StartupCases {
		if !slices.Contains(cases, c) {
			continue
		}
		switch c {
		case CaseWarm:
			env.logf("startup: warm single launches")
			rep, err := env.warm(ctx)
			if err != nil {
				return reps, err
			}
			reps = append(reps, rep)
		case CaseCold:
			env.logf("startup: cold single launches")
			rep, err := env.cold(ctx)
			if err != nil {
				return reps, err
			}
			reps = append(reps, rep)
		case CaseParallel:
			ns := cfg.Parallel
			if len(ns) == 0 {
				ns = DefaultParallel
			}
			for _, n := range ns {
				env.logf("startup: %d launches at once", n)
				rep, err := env.parallel(ctx, n)
				if err != nil {
					return reps, err
				}
				reps = append(reps, rep)
			}
		case CaseFirstResponse:
			env.logf("startup: first response of an HTTP server")
			rep, err := env.firstResponse(ctx)
			if err != nil {
				return reps, err
			}
			reps = append(reps, rep)
		}
	}
	return reps, nil
}

// Startup measures the warm launch of a container: the time from starting
// to the exit of `true` in cfg.RootFS, for a plain process, `runc run` with
// runc's default spec for the same root file system (read-only), and
// `oak run --rm`, interleaved in one invocation. Every variant is started
// from this process with os/exec (stdin and stdout /dev/null), and timed
// from just before the start to the return of wait, so the cost of starting
// a process from Go is in every variant alike. The report gives each
// variant's median vs plain's and runc's vs oak's, with the targets of
// oak/plain ≤ 2 and runc/oak ≥ 20.
//
// Startup refuses a RootFS without bin/true and an unknown variant name. A
// variant that cannot run here is reported as skipped: runc when RuncPath
// is empty and there is no runc in $PATH. A run that exits non-zero ends
// the benchmark with an error that names the variant and includes the
// run's stderr.
func Startup(ctx context.Context, cfg StartupConfig) (*Report, error) {
	env, err := newStartupEnv(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer env.close()
	return env.warm(ctx)
}

// singleOptions are the Options of a single-launch case with runs timed
// runs by default.
func (env *startupEnv) singleOptions(runs, defaultRuns int) Options {
	opts := Options{Runs: runs, Warmup: env.cfg.Warmup}
	if opts.Runs == 0 {
		opts.Runs = defaultRuns
	}
	switch {
	case opts.Warmup == 0:
		opts.Warmup = DefaultWarmup
	case opts.Warmup < 0:
		opts.Warmup = 0
	}
	return opts
}

func (env *startupEnv) warm(ctx context.Context) (*Report, error) {
	var variants []Variant
	for _, n := range env.names {
		if v, ok := env.skipped(n); ok {
			variants = append(variants, v)
			continue
		}
		switch n {
		case VariantPlain:
			variants = append(variants, commandVariant(VariantPlain, env.trueBin))
		case VariantRunc:
			var id string
			variants = append(variants, Variant{
				Name:   VariantRunc,
				Detail: env.runcDetail + ", default spec, root " + env.rootfs + " read-only",
				Run: func(ctx context.Context) error {
					id = env.runcID()
					return runCommand(ctx, env.runcArgv(env.runcState, id))
				},
				After: func(ctx context.Context) error { return env.runcRemove(ctx, env.runcState, id) },
			})
		case VariantOak, VariantOakDirect:
			variants = append(variants, commandVariant(n, env.oakArgvOf(n, env.oakRoot)...))
		}
	}
	rep, err := Measure(ctx, variants, env.singleOptions(env.cfg.Runs, DefaultRuns))
	if err != nil {
		return nil, err
	}
	rep.Benchmark = "startup"
	rep.Case = CaseWarm
	rep.Description = "start → exit of `true` in " + env.rootfs + ", state roots and image prepared"
	for _, n := range env.names {
		if n != VariantPlain {
			rep.AddRatio(n, VariantPlain)
		}
	}
	if _, err := rep.AddTarget(VariantOak, VariantPlain, "median", "<=", 2); err != nil {
		return nil, err
	}
	if _, err := rep.AddTarget(VariantRunc, VariantOak, "median", ">=", 20); err != nil {
		return nil, err
	}
	rep.AddRatio(VariantOakDirect, VariantOak)
	return rep, nil
}

// runcRemove deletes container id from state if a failed or cancelled
// `runc run` left it behind (`runc run` without --detach deletes the
// container when its process exits).
func (env *startupEnv) runcRemove(ctx context.Context, state, id string) error {
	if _, err := os.Stat(filepath.Join(state, id)); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return runCommand(ctx, []string{env.runc, "--root", state, "delete", "--force", id})
}

// ColdDescription says what a cold launch is, for the report and the docs.
const ColdDescription = "start → exit of `true`, each launch in a fresh, empty state root: " +
	"oak makes its state directories and database (and, for the demo image, writes the image) before it launches; " +
	"runc gets a fresh --root; the plain process has nothing to prepare. The page cache is not dropped"

func (env *startupEnv) cold(ctx context.Context) (*Report, error) {
	var variants []Variant
	var fresh int
	freshDir := func(prefix string) string {
		fresh++
		return filepath.Join(env.work, fmt.Sprintf("%s-cold-%d", prefix, fresh))
	}
	for _, n := range env.names {
		if v, ok := env.skipped(n); ok {
			variants = append(variants, v)
			continue
		}
		switch n {
		case VariantPlain:
			variants = append(variants, commandVariant(VariantPlain, env.trueBin))
		case VariantRunc:
			var id, state string
			variants = append(variants, Variant{
				Name:   VariantRunc,
				Detail: env.runcDetail + ", default spec, a new --root per launch",
				Run: func(ctx context.Context) error {
					id, state = env.runcID(), freshDir("runc")
					return runCommand(ctx, env.runcArgv(state, id))
				},
				After: func(ctx context.Context) error {
					err := env.runcRemove(ctx, state, id)
					return errors.Join(err, os.RemoveAll(state))
				},
			})
		case VariantOak, VariantOakDirect:
			var root string
			variants = append(variants, Variant{
				Name:   n,
				Detail: strings.Join(env.oakArgvOf(n, "NEW-ROOT"), " ") + ", NEW-ROOT a new directory per launch",
				Run: func(ctx context.Context) error {
					root = freshDir(n)
					return runCommand(ctx, env.oakArgvOf(n, root))
				},
				// A daemon started for the root goes with it (oak daemon
				// stop), its pool with it.
				After: func(ctx context.Context) error {
					if n == VariantOak {
						exec.CommandContext(ctx, env.oak, "--root", root, "daemon", "stop").Run()
					}
					return os.RemoveAll(root)
				},
			})
		}
	}
	rep, err := Measure(ctx, variants, env.singleOptions(env.cfg.ColdRuns, DefaultColdRuns))
	if err != nil {
		return nil, err
	}
	rep.Benchmark = "startup"
	rep.Case = CaseCold
	rep.Description = ColdDescription
	for _, n := range env.names {
		if n != VariantPlain {
			rep.AddRatio(n, VariantPlain)
		}
	}
	rep.AddRatio(VariantRunc, VariantOak)
	rep.AddRatio(VariantOakDirect, VariantOak)
	return rep, nil
}

// parallel starts n launches at once per run, for each variant, in
// interleaved rounds.
func (env *startupEnv) parallel(ctx context.Context, n int) (*Report, error) {
	rounds := env.cfg.Rounds
	if rounds == 0 {
		rounds = DefaultRounds
	}
	const warmup = 1
	launches := make(map[string]*[]time.Duration)
	var variants []Variant
	for _, name := range env.names {
		if v, ok := env.skipped(name); ok {
			variants = append(variants, v)
			continue
		}
		var argv func() []string
		var detail string
		var after func(context.Context) error
		switch name {
		case VariantPlain:
			argv = func() []string { return []string{env.trueBin} }
			detail = env.trueBin
		case VariantRunc:
			argv = func() []string { return env.runcArgv(env.runcState, env.runcID()) }
			detail = env.runcDetail + ", default spec, a new id per launch"
			after = func(ctx context.Context) error { return env.runcRemoveAll(ctx, env.runcState) }
		case VariantOak, VariantOakDirect:
			argv = func() []string { return env.oakArgvOf(name, env.oakRoot) }
			detail = strings.Join(env.oakArgvOf(name, env.oakRoot), " ")
		}
		lat := new([]time.Duration)
		launches[name] = lat
		variants = append(variants, Variant{
			Name:   name,
			Detail: detail,
			Run:    func(ctx context.Context) error { return launchAtOnce(ctx, n, argv, lat) },
			After:  after,
		})
	}
	rep, err := Measure(ctx, variants, Options{Runs: rounds, Warmup: warmup})
	if err != nil {
		return nil, err
	}
	rep.Benchmark = "startup"
	rep.Case = CaseParallel
	rep.Parallel = n
	rep.Description = fmt.Sprintf("%d launch(es) of `true` started at once; a run lasts until the last has exited", n)
	for i := range rep.Results {
		res := &rep.Results[i]
		lat, ok := launches[res.Name]
		if !ok || res.N == 0 {
			continue
		}
		res.Launches = (*lat)[warmup*n:] // the warm-up rounds ran first
		res.Launch = Summarize(res.Launches)
		if res.Median > 0 {
			res.Rate = float64(n) / res.Median.Seconds()
		}
	}
	for _, name := range env.names {
		if name != VariantPlain {
			rep.AddRatio(name, VariantPlain)
		}
	}
	rep.AddRatio(VariantOak, VariantRunc)
	rep.AddRatio(VariantOak, VariantOakDirect)
	if n == 64 {
		if _, err := rep.AddTarget(VariantOak, VariantRunc, "rate", ">=", 10); err != nil {
			return nil, err
		}
		if _, err := rep.AddTarget(VariantOak, VariantPlain, "rate", ">=", 0.5); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// launchAtOnce starts n processes, argv() each, at once and waits for all
// of them; it appends each one's start → exit time to lat. It returns the
// errors of the launches that failed.
func launchAtOnce(ctx context.Context, n int, argv func() []string, lat *[]time.Duration) error {
	times := make([]time.Duration, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		a := argv()
		wg.Go(func() {
			t0 := time.Now()
			errs[i] = runCommand(ctx, a)
			times[i] = time.Since(t0)
		})
	}
	wg.Wait()
	*lat = append(*lat, times...)
	return errors.Join(errs...)
}

// runcRemoveAll deletes every container runc still has in state: those a
// failed or cancelled launch left behind.
func (env *startupEnv) runcRemoveAll(ctx context.Context, state string) error {
	entries, err := os.ReadDir(state)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if e.IsDir() {
			errs = append(errs, env.runcRemove(ctx, state, e.Name()))
		}
	}
	return errors.Join(errs...)
}

// commandVariant runs argv as a process to completion. Each run gets a new
// exec.Cmd; stdin and stdout are /dev/null and stderr is kept for the error.
func commandVariant(name string, argv ...string) Variant {
	return Variant{
		Name:   name,
		Detail: strings.Join(argv, " "),
		Run:    func(ctx context.Context) error { return runCommand(ctx, argv) },
	}
}

// runCommand runs argv and waits for it; an error includes its stderr.
func runCommand(ctx context.Context, argv []string) error {
	var stderr tailBuffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return fmt.Errorf("%s: %w: %s", argv[0], err, msg)
		}
		return fmt.Errorf("%s: %w", argv[0], err)
	}
	return nil
}

// editRuncSpec rewrites the runc spec at path to run args in rootfs,
// read-only, without a terminal, and, unless ownNet, in the host's network
// namespace. It keeps every other field as runc wrote it, including ones
// this package does not know.
func editRuncSpec(path, rootfs string, args []string, ownNet bool) error {
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
	if !ownNet {
		linux, ok := spec["linux"].(map[string]any)
		if !ok {
			return fmt.Errorf("runc spec %s: no linux object", path)
		}
		nss, _ := linux["namespaces"].([]any)
		linux["namespaces"] = slices.DeleteFunc(nss, func(ns any) bool {
			m, _ := ns.(map[string]any)
			return m["type"] == "network"
		})
	}
	out, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		return fmt.Errorf("runc spec %s: %w", path, err)
	}
	return os.WriteFile(path, out, 0o600)
}

// tailBuffer keeps the last tailMax bytes written to it: enough of a
// failing run's stderr for an error message, however much it writes.
type tailBuffer struct{ b bytes.Buffer }

const tailMax = 4096

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= tailMax {
		t.b.Reset()
		p = p[len(p)-tailMax:]
	} else if over := t.b.Len() + len(p) - tailMax; over > 0 {
		t.b.Next(over)
	}
	t.b.Write(p)
	return n, nil
}

func (t *tailBuffer) String() string { return t.b.String() }

// WriteRuncBundle writes a runc bundle into dir (made here) whose
// config.json is runc's own default with args run in rootfs, read-only,
// without a terminal, in a network namespace of its own: what oak bench
// startup runs, for other benchmarks' runc baselines.
func WriteRuncBundle(ctx context.Context, runc, dir, rootfs string, args []string) error {
	return writeRuncBundle(ctx, runc, dir, rootfs, args, true)
}

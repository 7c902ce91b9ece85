package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/oak-engine/oak/internal/trace"
)

// TraceConfig configures Trace.
type TraceConfig struct {
	// OakPath is the oak binary; empty means os.Executable().
	OakPath string
	// OakRoot is its state root; empty means a fresh directory under
	// WorkDir, removed afterwards.
	OakRoot string
	// Image and Args are what `oak run --rm IMAGE ARGS...` runs; empty
	// means the demo image and `true`.
	Image string
	Args  []string
	// Runs is the number of traced runs, and of runs with Go's init trace;
	// 0 means DefaultTraceRuns. Two untimed runs come first.
	Runs int
	// Parallel is the number of traced launches started at once in each
	// run (the init-trace runs stay single); 0 means 1.
	Parallel int
	WorkDir  string
	// NoDaemon runs oak --no-daemon: the CLI supervises the container
	// itself, instead of a supervisor of the daemon's pool.
	NoDaemon bool
}

// DefaultTraceRuns is the default of TraceConfig.Runs.
const DefaultTraceRuns = 20

// TraceReport is the breakdown of one launch, from the marks of
// internal/trace (OAK_TRACE=1) and Go's init trace (GODEBUG=inittrace=1).
type TraceReport struct {
	Benchmark string `json:"benchmark"`
	// Command is what was run, without the environment.
	Command string `json:"command"`
	Runs    int    `json:"runs"`
	// Parallel is the number of launches traced at once in each run.
	Parallel int `json:"parallel"`
	// Phases are the marks in the order of their median time from the
	// start, then "exit seen by the caller".
	Phases []TracePhase `json:"phases"`
	// Total is start → exit of the traced runs.
	Total Summary `json:"-"`
	// InitClock is the median over the init-trace runs of the sum of all
	// package initialisers' clock time; InitPackages the costliest ones.
	InitClock time.Duration `json:"-"`
	// InitEnd is the median time from the Go runtime's start to the end
	// of the last package initialiser.
	InitEnd      time.Duration `json:"-"`
	InitPackages []InitPackage `json:"init_packages"`
}

// TracePhase is one mark's time across the runs.
type TracePhase struct {
	Name string `json:"name"`
	// N is the number of runs that had the mark.
	N int `json:"n"`
	// At is the median time from the start of the command to the mark.
	At time.Duration `json:"-"`
	// Delta is At less the previous phase's At: the deltas add up to the
	// median total.
	Delta time.Duration `json:"-"`
	// Step is the median of the time from the previous phase (in this
	// order) to this one, over the runs that had both: less swayed than
	// Delta by runs that were slow elsewhere, but the steps need not add
	// up to anything.
	Step time.Duration `json:"-"`
}

// InitPackage is one package's initialisation time (median over runs).
type InitPackage struct {
	Package string        `json:"package"`
	Clock   time.Duration `json:"-"`
}

// Trace runs `OAK_TRACE=1 oak run --rm IMAGE ARGS...` cfg.Runs times and,
// alternating with those, `GODEBUG=inittrace=1 oak ...` as many times, and
// reports where the time of a launch goes: the median time from the start
// of the command to each mark, the median step from the mark before, and
// the costliest package initialisers. A run that fails ends it with an
// error.
func Trace(ctx context.Context, cfg TraceConfig) (*TraceReport, error) {
	if cfg.Runs == 0 {
		cfg.Runs = DefaultTraceRuns
	}
	if cfg.Runs < 1 {
		return nil, fmt.Errorf("bench trace: runs %d: must be at least 1", cfg.Runs)
	}
	if cfg.Parallel == 0 {
		cfg.Parallel = 1
	}
	if cfg.Parallel < 1 || cfg.Parallel > maxParallel {
		return nil, fmt.Errorf("bench trace: parallel %d: must be within 1..%d", cfg.Parallel, maxParallel)
	}
	if cfg.Image == "" {
		cfg.Image = "demo"
	}
	if len(cfg.Args) == 0 {
		cfg.Args = []string{"true"}
	}
	oak := cfg.OakPath
	if oak == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("bench trace: oak binary: %w", err)
		}
		oak = exe
	}
	root := cfg.OakRoot
	if root == "" {
		work, err := os.MkdirTemp(cfg.WorkDir, "oak-bench-trace-")
		if err != nil {
			return nil, fmt.Errorf("bench trace: %w", err)
		}
		defer removeWork(oak, work) // and the daemon started for it
		root = filepath.Join(work, "oak-root")
	}
	argv := append([]string{oak, "--root", root, "run", "--rm", cfg.Image}, cfg.Args...)
	if cfg.NoDaemon {
		argv = slices.Insert(argv, 1, "--no-daemon")
	}
	rep := &TraceReport{Benchmark: "trace", Command: strings.Join(argv, " "), Runs: cfg.Runs, Parallel: cfg.Parallel}

	var runs [][]traceMark
	var totals []time.Duration
	var inits []map[string]time.Duration
	var initEnds []time.Duration
	for i := range cfg.Runs + 2 {
		marks, total, err := tracedRuns(ctx, argv, cfg.Parallel)
		if err != nil {
			return nil, err
		}
		_, initOut, err := runWithStderr(ctx, argv, "GODEBUG=inittrace=1")
		if err != nil {
			return nil, err
		}
		if i < 2 {
			continue // warm-up
		}
		runs = append(runs, marks...)
		totals = append(totals, total...)
		perPkg, end := parseInitTrace(initOut)
		inits = append(inits, perPkg)
		initEnds = append(initEnds, end)
	}
	rep.Total = Summarize(totals)
	rep.Phases = tracePhases(runs, totals)
	rep.InitClock, rep.InitPackages = initSummary(inits, 8)
	rep.InitEnd = Summarize(initEnds).Median
	return rep, nil
}

// traceMark is one mark of one run: its phase and its time from the start.
type traceMark struct {
	phase string
	at    time.Duration
}

// exitPhase names the end of a run in the breakdown.
const exitPhase = "exit seen by the caller"

// tracedRuns runs n copies of argv at once with tracing on and returns
// the marks of each, relative to the moment before its start, and its
// start → exit time.
func tracedRuns(ctx context.Context, argv []string, n int) ([][]traceMark, []time.Duration, error) {
	marks := make([][]traceMark, n)
	totals := make([]time.Duration, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			t0, out, err := runWithStderr(ctx, argv, trace.EnvVar+"=1")
			if err != nil {
				errs[i] = err
				return
			}
			totals[i] = time.Duration(trace.Now() - t0)
			marks[i], errs[i] = parseMarks(out, t0)
		})
	}
	wg.Wait()
	return marks, totals, errors.Join(errs...)
}

// runWithStderr runs argv with env added to this process's environment
// and returns the monotonic time just before its start and its stderr.
func runWithStderr(ctx context.Context, argv []string, env string) (int64, string, error) {
	var stderr strings.Builder
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env)
	cmd.Stderr = &stderr
	t0 := trace.Now()
	if err := cmd.Run(); err != nil {
		return 0, "", fmt.Errorf("bench trace: %s %s: %w: %s", env, strings.Join(argv, " "), err, oneLine(lastLines(stderr.String(), 5)))
	}
	return t0, stderr.String(), nil
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// parseMarks reads the mark lines of out ("oak-trace NS PID PHASE"),
// skipping every other line, and returns them relative to t0.
func parseMarks(out string, t0 int64) ([]traceMark, error) {
	var marks []traceMark
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), trace.Prefix)
		if !ok {
			continue
		}
		f := strings.SplitN(rest, " ", 3)
		if len(f) != 3 || f[2] == "" {
			return nil, fmt.Errorf("bench trace: bad mark %q", sc.Text())
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bench trace: bad mark %q: %w", sc.Text(), err)
		}
		marks = append(marks, traceMark{phase: f[2], at: time.Duration(ns - t0)})
	}
	return marks, sc.Err()
}

// tracePhases orders the phases of all runs by their median time from the
// start and computes each one's median step from the one before it;
// totals, one per run, end every run as exitPhase.
func tracePhases(runs [][]traceMark, totals []time.Duration) []TracePhase {
	at := map[string][]time.Duration{}
	perRun := make([]map[string]time.Duration, len(runs))
	for i, marks := range runs {
		perRun[i] = map[string]time.Duration{}
		for _, m := range marks {
			if _, dup := perRun[i][m.phase]; dup {
				continue // a phase marked twice counts at its first
			}
			perRun[i][m.phase] = m.at
			at[m.phase] = append(at[m.phase], m.at)
		}
		if i < len(totals) {
			perRun[i][exitPhase] = totals[i]
			at[exitPhase] = append(at[exitPhase], totals[i])
		}
	}
	var phases []TracePhase
	for name, xs := range at {
		phases = append(phases, TracePhase{Name: name, N: len(xs), At: Summarize(xs).Median})
	}
	slices.SortFunc(phases, func(a, b TracePhase) int {
		if a.At != b.At {
			return int(a.At - b.At)
		}
		return strings.Compare(a.Name, b.Name)
	})
	for k := range phases {
		var steps []time.Duration
		for _, r := range perRun {
			cur, ok := r[phases[k].Name]
			if !ok {
				continue
			}
			prev := time.Duration(0) // the first phase's step is from the start
			if k > 0 {
				p, ok := r[phases[k-1].Name]
				if !ok {
					continue
				}
				prev = p
			}
			steps = append(steps, cur-prev)
		}
		phases[k].Step = Summarize(steps).Median
		phases[k].Delta = phases[k].At
		if k > 0 {
			phases[k].Delta -= phases[k-1].At
		}
	}
	return phases
}

// parseInitTrace reads Go's init trace lines ("init PKG @0.5 ms, 0.1 ms
// clock, 120 bytes, 3 allocs") into the clock time per package, and
// returns when the last one ended (@ + clock: from the runtime's start).
func parseInitTrace(out string) (map[string]time.Duration, time.Duration) {
	m := map[string]time.Duration{}
	var end time.Duration
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// init PKG @X ms, Y ms clock, ...
		if len(f) < 7 || f[0] != "init" || !strings.HasPrefix(f[2], "@") || f[5] != "ms" || f[6] != "clock," {
			continue
		}
		at, err1 := strconv.ParseFloat(strings.TrimPrefix(f[2], "@"), 64)
		clock, err2 := strconv.ParseFloat(f[4], 64)
		if err1 != nil || err2 != nil {
			continue
		}
		m[f[1]] += msDuration(clock)
		end = max(end, msDuration(at)+msDuration(clock))
	}
	return m, end
}

// msDuration is x milliseconds, to the nanosecond.
func msDuration(x float64) time.Duration {
	return time.Duration(math.Round(x * float64(time.Millisecond)))
}

// initSummary returns the median over runs of the total init clock time,
// and the top packages by their median clock time.
func initSummary(runs []map[string]time.Duration, top int) (time.Duration, []InitPackage) {
	var totals []time.Duration
	per := map[string][]time.Duration{}
	for _, r := range runs {
		var sum time.Duration
		for pkg, d := range r {
			sum += d
			per[pkg] = append(per[pkg], d)
		}
		totals = append(totals, sum)
	}
	var pkgs []InitPackage
	for pkg, xs := range per {
		for len(xs) < len(runs) {
			xs = append(xs, 0) // a run without the package's line spent nothing there
		}
		pkgs = append(pkgs, InitPackage{Package: pkg, Clock: Summarize(xs).Median})
	}
	slices.SortFunc(pkgs, func(a, b InitPackage) int {
		if a.Clock != b.Clock {
			return int(b.Clock - a.Clock)
		}
		return strings.Compare(a.Package, b.Package)
	})
	return Summarize(totals).Median, pkgs[:min(top, len(pkgs))]
}

// MarshalJSON writes r with times in milliseconds.
func (r TraceReport) MarshalJSON() ([]byte, error) {
	type phase struct {
		Name    string  `json:"name"`
		N       int     `json:"n"`
		AtMS    float64 `json:"at_ms"`
		DeltaMS float64 `json:"delta_ms"`
		StepMS  float64 `json:"step_ms"`
	}
	type pkg struct {
		Package string  `json:"package"`
		ClockMS float64 `json:"clock_ms"`
	}
	out := struct {
		Benchmark     string  `json:"benchmark"`
		Command       string  `json:"command"`
		Runs          int     `json:"runs"`
		Parallel      int     `json:"parallel"`
		TotalMedianMS float64 `json:"total_median_ms"`
		InitClockMS   float64 `json:"init_clock_ms"`
		InitEndMS     float64 `json:"init_end_ms"`
		Phases        []phase `json:"phases"`
		InitPackages  []pkg   `json:"init_packages"`
	}{r.Benchmark, r.Command, r.Runs, r.Parallel, ms(r.Total.Median), ms(r.InitClock), ms(r.InitEnd), []phase{}, []pkg{}}
	for _, p := range r.Phases {
		out.Phases = append(out.Phases, phase{p.Name, p.N, ms(p.At), ms(p.Delta), ms(p.Step)})
	}
	for _, p := range r.InitPackages {
		out.InitPackages = append(out.InitPackages, pkg{p.Package, ms(p.Clock)})
	}
	return json.Marshal(out)
}

// Print writes the breakdown as a table.
func (r *TraceReport) Print(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "trace: %s=1 %s\n%d runs of %d launch(es) at once after 2 warm-up; medians over the launches; start → exit %.2f ms (p95 %.2f)\n",
		trace.EnvVar, r.Command, r.Runs, r.Parallel, msf(r.Total.Median), msf(r.Total.P95))
	b.WriteString("at: median time from the start to the mark; Δ: from the row above's median;\n" +
		"step: median over the runs of the time from the row above's mark (rows may interleave host and container marks)\n\n")
	rows := [][]string{{"phase (mark)", "at ms", "Δ ms", "step ms", "runs"}}
	for _, p := range r.Phases {
		rows = append(rows, []string{p.Name, fmt.Sprintf("%.2f", msf(p.At)), fmt.Sprintf("%.2f", msf(p.Delta)),
			fmt.Sprintf("%.2f", msf(p.Step)), fmt.Sprint(p.N)})
	}
	writeTable(&b, rows, 1)
	fmt.Fprintf(&b, "\nGo package initialisers (GODEBUG=inittrace=1, separate runs): %.2f ms in all, the last done %.2f ms after the runtime started; costliest:\n",
		msf(r.InitClock), msf(r.InitEnd))
	rows = [][]string{{"package", "clock ms"}}
	for _, p := range r.InitPackages {
		rows = append(rows, []string{p.Package, fmt.Sprintf("%.3f", msf(p.Clock))})
	}
	writeTable(&b, rows, 1)
	_, err := io.WriteString(w, b.String())
	return err
}

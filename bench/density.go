package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DensityConfig configures Density. Only RootFS is required.
type DensityConfig struct {
	// RootFS is the root file system the idle containers run `sleep` from:
	// a directory with bin/sleep (a static busybox's applet, as in the
	// demo image).
	RootFS string
	// Variants selects variants by name (VariantPlain, VariantRunc,
	// VariantOak); empty means all three.
	Variants []string
	// Count is the number of idle containers (or processes) each variant
	// starts and holds; 0 means DefaultDensityCount.
	Count int
	// Jobs is the number of starts (and removals) in flight at once; 0
	// means DefaultDensityJobs.
	Jobs int
	// Settle is how long to wait after the last start before measuring,
	// so that what the starts left behind is freed; 0 means 2 s.
	Settle time.Duration
	// KeepCaches leaves the host's reclaimable slab alone; by default it
	// is dropped before each reading (needs root), which makes the kernel
	// figures less noisy.
	KeepCaches bool

	// OakPath, OakRoot, OakImage, RuncPath and WorkDir are as in
	// StartupConfig.
	OakPath  string
	OakRoot  string
	OakImage string
	RuncPath string
	WorkDir  string
	// Log, if not nil, receives progress lines.
	Log io.Writer
}

// Defaults for DensityConfig.
const (
	DefaultDensityCount = 100
	DefaultDensityJobs  = 4
	maxDensityCount     = 10000
)

// sleepSeconds is how long the idle processes would sleep; they are killed
// long before.
const sleepSeconds = "3600"

// DensityDescription says what the density benchmark measures, for the
// report and the docs.
const DensityDescription = "COUNT idle `sleep` containers started and held; memory measured, not estimated: " +
	"PSS (smaps_rollup) of every process, by role, and the change of the host's kernel memory " +
	"(Slab + KernelStack + PageTables + Shmem in /proc/meminfo, reclaimable slab dropped before each reading) " +
	"from before the first start to after the last, divided by COUNT"

// Roles of the processes the density benchmark finds.
const (
	RoleApp        = "app"        // the container's command (sleep)
	RoleInit       = "init"       // a runtime's pid 1 in the container that is not the command
	RoleSupervisor = "supervisor" // a runtime's process on the host per container
	RoleService    = "service"    // any other process of the runtime on the host
)

// densityVariants are the density benchmark's variants: oak's detached
// runs go through the daemon either way.
var densityVariants = []string{VariantPlain, VariantRunc, VariantOak}

// Density starts cfg.Count idle processes for each variant in turn — plain
// `sleep` processes (in sessions of their own), `runc run -d` containers
// and `oak run -d` containers — holds them, measures the memory they use,
// and removes them. A start that fails stops that variant's starts; the
// report keeps the error and measures the ones that started.
func Density(ctx context.Context, cfg DensityConfig) (*DensityReport, error) {
	names, err := pickVariants("density", cfg.Variants, densityVariants)
	if err != nil {
		return nil, err
	}
	if cfg.Count == 0 {
		cfg.Count = DefaultDensityCount
	}
	if cfg.Count < 1 || cfg.Count > maxDensityCount {
		return nil, fmt.Errorf("bench density: count %d: must be within 1..%d", cfg.Count, maxDensityCount)
	}
	if cfg.Jobs == 0 {
		cfg.Jobs = DefaultDensityJobs
	}
	if cfg.Jobs < 1 {
		return nil, fmt.Errorf("bench density: jobs %d: must be at least 1", cfg.Jobs)
	}
	if cfg.Settle == 0 {
		cfg.Settle = 2 * time.Second
	}
	// Reuse the startup benchmark's checks and its runc and oak set-up.
	env, err := newStartupEnv(ctx, StartupConfig{
		RootFS: cfg.RootFS, Variants: names, Cases: []string{CaseWarm},
		OakPath: cfg.OakPath, OakRoot: cfg.OakRoot, OakImage: cfg.OakImage,
		RuncPath: cfg.RuncPath, WorkDir: cfg.WorkDir, Log: cfg.Log,
	})
	if err != nil {
		return nil, err
	}
	defer env.close()
	sleepBin := filepath.Join(env.rootfs, "bin", "sleep")
	if _, err := os.Stat(sleepBin); err != nil {
		return nil, fmt.Errorf("bench density: rootfs %s: %w", env.rootfs, err)
	}
	if env.runc != "" {
		env.bundle = filepath.Join(env.work, "runc-sleep")
		if err := writeRuncBundle(ctx, env.runc, env.bundle, env.rootfs, []string{"sleep", sleepSeconds}, true); err != nil {
			return nil, err
		}
	}
	rep := &DensityReport{
		Benchmark:   "density",
		Description: strings.ReplaceAll(DensityDescription, "COUNT", strconv.Itoa(cfg.Count)),
		Count:       cfg.Count,
		Jobs:        cfg.Jobs,
		Limits:      readLimits(),
	}
	for _, name := range env.names {
		if v, ok := env.skipped(name); ok {
			rep.Variants = append(rep.Variants, &DensityResult{Name: name, Skipped: v.Skip})
			continue
		}
		d := &densityRun{env: env, cfg: cfg, sleepBin: sleepBin}
		res := d.run(ctx, name)
		rep.Variants = append(rep.Variants, res)
		if err := ctx.Err(); err != nil {
			return rep, err
		}
	}
	rep.derive()
	return rep, nil
}

// densityRun is one variant's pass of the density benchmark.
type densityRun struct {
	env      *startupEnv
	cfg      DensityConfig
	sleepBin string

	mu         sync.Mutex
	t0         time.Time
	milestones []time.Duration // when each tenth of the count had started
	handles    []string        // container ids, or plain pids
	plain      []*exec.Cmd     // the plain processes, to kill and wait for
	oakIDs     map[string]int  // oak container id → index
}

func (d *densityRun) run(ctx context.Context, name string) *DensityResult {
	env := d.env
	res := &DensityResult{Name: name}
	switch name {
	case VariantPlain:
		res.Detail = d.sleepBin + " " + sleepSeconds + ", each in a session of its own, children of the benchmark"
	case VariantRunc:
		res.Detail = env.runcDetail + " run -d, default spec; runc leaves no process of its own per container"
	case VariantOak:
		res.Detail = strings.Join([]string{env.oak, "--root", env.oakRoot, "run", "-d", env.oakImage, "sleep", sleepSeconds}, " ")
		// One launch first, untimed and removed, so that the state root,
		// the image and the parent groups exist before the "before"
		// reading: they are made once per host, not per container.
		if err := runCommand(ctx, env.oakArgv(env.oakRoot)); err != nil {
			res.Error = fmt.Sprintf("first launch: %v", err)
			return res
		}
	}
	env.logf("density: %s: starting %d, %d at a time", name, d.cfg.Count, d.cfg.Jobs)

	d.dropSlabCaches()
	before, err := readMeminfo()
	if err != nil {
		res.Error = err.Error()
		return res
	}
	d.t0 = time.Now()
	startErr := d.startAll(ctx, name)
	res.StartTime = time.Since(d.t0)
	res.Started = len(d.handles)
	res.Milestones = d.milestones
	if startErr != nil {
		res.Error = fmt.Sprintf("after %d started: %v", res.Started, startErr)
		env.logf("density: %s: %s", name, res.Error)
	}
	if res.Started > 0 {
		res.StartRate = float64(res.Started) / res.StartTime.Seconds()
		env.logf("density: %s: %d started in %v; settling for %v", name, res.Started, res.StartTime.Round(time.Millisecond), d.cfg.Settle)
		select {
		case <-time.After(d.cfg.Settle):
		case <-ctx.Done():
		}
		procs, err := d.processes(ctx, name)
		if err != nil {
			res.Error = errors.Join(errorOrNil(res.Error), err).Error()
		}
		res.Roles = summarizeRoles(procs)
		d.dropSlabCaches()
		after, err := readMeminfo()
		if err == nil {
			res.Kernel = after.sub(before)
		} else {
			res.Error = errors.Join(errorOrNil(res.Error), err).Error()
		}
	}
	env.logf("density: %s: removing %d", name, res.Started)
	t1 := time.Now()
	if err := d.removeAll(context.WithoutCancel(ctx), name); err != nil {
		res.Error = errors.Join(errorOrNil(res.Error), fmt.Errorf("removing: %w", err)).Error()
	}
	res.RemoveTime = time.Since(t1)
	return res
}

// errorOrNil turns a stored error message back into an error.
func errorOrNil(msg string) error {
	if msg == "" {
		return nil
	}
	return errors.New(msg)
}

// startAll starts cfg.Count idle processes of variant name, cfg.Jobs at a
// time, and starts no more after the first failure; the starts under way
// then finish, so that what they made is known and removed.
func (d *densityRun) startAll(ctx context.Context, name string) error {
	failed, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range d.cfg.Jobs {
		wg.Go(func() {
			for i := range next {
				if err := d.start(ctx, name, i); err != nil {
					fail(err)
				}
			}
		})
	}
feed:
	for i := range d.cfg.Count {
		select {
		case next <- i:
		case <-failed.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(failed); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// started records handle, and the time if it completes a tenth of the
// count.
func (d *densityRun) started(handle string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.handles = append(d.handles, handle)
	if step := max(d.cfg.Count/10, 1); len(d.handles)%step == 0 {
		d.milestones = append(d.milestones, time.Since(d.t0))
	}
}

// start starts one idle process of variant name and records its handle.
func (d *densityRun) start(ctx context.Context, name string, i int) error {
	env := d.env
	switch name {
	case VariantPlain:
		cmd := exec.Command(d.sleepBin, sleepSeconds)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("%s: %w", d.sleepBin, err)
		}
		d.mu.Lock()
		d.plain = append(d.plain, cmd)
		d.mu.Unlock()
		d.started(strconv.Itoa(cmd.Process.Pid))
		return nil
	case VariantRunc:
		id := env.runcID()
		err := runDetached(ctx, []string{env.runc, "--root", env.runcState, "run", "-d", "--bundle", env.bundle, id})
		d.started(id) // removed at the end even if the start failed half-way
		return err
	case VariantOak:
		out, err := detachedOutput(ctx, []string{env.oak, "--root", env.oakRoot, "run", "-d", env.oakImage, "sleep", sleepSeconds})
		if err != nil {
			return err
		}
		id := strings.TrimSpace(out)
		if id == "" || strings.ContainsAny(id, " \n") {
			return fmt.Errorf("oak run -d printed %q, not a container id", out)
		}
		d.started(id)
		return nil
	}
	return fmt.Errorf("bench density: unknown variant %q", name)
}

// runDetached runs argv, which leaves a process behind, with its standard
// error in a file rather than a pipe (the process left behind would hold a
// pipe open and wait would not return); an error includes the stderr.
func runDetached(ctx context.Context, argv []string) error {
	_, err := detachedOutput(ctx, argv)
	return err
}

// detachedOutput is runDetached that also returns the standard output.
func detachedOutput(ctx context.Context, argv []string) (string, error) {
	outF, err := os.CreateTemp("", "oak-bench-out-")
	if err != nil {
		return "", err
	}
	defer os.Remove(outF.Name())
	defer outF.Close()
	errF, err := os.CreateTemp("", "oak-bench-err-")
	if err != nil {
		return "", err
	}
	defer os.Remove(errF.Name())
	defer errF.Close()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = outF, errF
	runErr := cmd.Run()
	out, _ := os.ReadFile(outF.Name())
	if runErr != nil {
		msg, _ := os.ReadFile(errF.Name())
		if len(msg) > tailMax {
			msg = msg[len(msg)-tailMax:]
		}
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), runErr, oneLine(string(msg)))
	}
	return string(out), nil
}

// removeAll ends and removes everything start made.
func (d *densityRun) removeAll(ctx context.Context, name string) error {
	env := d.env
	switch name {
	case VariantPlain:
		for _, cmd := range d.plain {
			cmd.Process.Kill()
		}
		for _, cmd := range d.plain {
			cmd.Wait()
		}
		return nil
	case VariantRunc:
		return inParallel(d.cfg.Jobs, d.handles, func(id string) error {
			return env.runcRemove(ctx, env.runcState, id)
		})
	case VariantOak:
		// Also what a start that was killed half-way (Ctrl-C) recorded.
		ids := slices.Clone(d.handles)
		if out, err := commandOutput(ctx, []string{env.oak, "--root", env.oakRoot, "ps", "-aq", "--no-trunc"}); err == nil {
			for _, id := range strings.Fields(out) {
				if !slices.Contains(ids, id) {
					ids = append(ids, id)
				}
			}
		}
		const batch = 25
		var batches [][]string
		for ; len(ids) > 0; ids = ids[min(batch, len(ids)):] {
			batches = append(batches, ids[:min(batch, len(ids))])
		}
		return inParallel(d.cfg.Jobs, batches, func(ids []string) error {
			return runCommand(ctx, append([]string{env.oak, "--root", env.oakRoot, "rm", "-f"}, ids...))
		})
	}
	return nil
}

// inParallel calls f on every item, jobs at a time, and joins the errors.
func inParallel[T any](jobs int, items []T, f func(T) error) error {
	next := make(chan T)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for range jobs {
		wg.Go(func() {
			for it := range next {
				if err := f(it); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for _, it := range items {
		next <- it
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}

// proc is one process the density benchmark found.
type proc struct {
	pid     int
	role    string
	pssKiB  int64
	rssKiB  int64
	threads int
}

// processes finds the processes of variant name's containers and their
// roles, and reads their memory.
func (d *densityRun) processes(ctx context.Context, name string) ([]proc, error) {
	var procs []proc
	add := func(pid int, role string) error {
		p, err := readProc(pid, role)
		if err != nil {
			return err
		}
		procs = append(procs, p)
		return nil
	}
	switch name {
	case VariantPlain:
		for _, cmd := range d.plain {
			if err := add(cmd.Process.Pid, RoleApp); err != nil {
				return procs, err
			}
		}
		return procs, nil
	case VariantRunc:
		out, err := commandOutput(ctx, []string{d.env.runc, "--root", d.env.runcState, "list", "--format", "json"})
		if err != nil {
			return nil, err
		}
		var list []struct {
			ID     string `json:"id"`
			Pid    int    `json:"pid"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			return nil, fmt.Errorf("runc list: %w", err)
		}
		for _, c := range list {
			if c.Status != "running" {
				return procs, fmt.Errorf("runc container %s is %s", c.ID, c.Status)
			}
			// The container's process is the command: runc keeps nothing.
			if err := add(c.Pid, RoleApp); err != nil {
				return procs, err
			}
		}
		return procs, nil
	case VariantOak:
		return d.oakProcesses()
	}
	return nil, nil
}

// oakProcesses scans /proc for the oak containers' processes: those in a
// container's group (the init, whose pid in its namespace is 1, and the
// command) and the host processes of oak working on the benchmark's state
// root (the supervisors, and any service).
func (d *densityRun) oakProcesses() ([]proc, error) {
	ids := make(map[string]bool, len(d.handles))
	for _, id := range d.handles {
		ids[id] = true
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var procs []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		role := ""
		if cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid)); err == nil {
			if id := oakContainerOf(string(cg)); ids[id] {
				role = RoleApp
				if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil && nsPid(string(st)) == 1 {
					role = RoleInit
				}
			}
		}
		if role == "" {
			cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if err != nil {
				continue
			}
			role = oakHostRole(strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00"), d.env.oakRoot)
		}
		if role == "" {
			continue
		}
		p, err := readProc(pid, role)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // it ended meanwhile
			}
			return procs, err
		}
		procs = append(procs, p)
	}
	return procs, nil
}

// oakContainerOf returns the container id of a /proc/PID/cgroup file whose
// process is in an oak container's group (".../oak/ID" in any hierarchy),
// or "".
func oakContainerOf(cgroup string) string {
	for line := range strings.Lines(cgroup) {
		f := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(f) != 3 {
			continue
		}
		dir, id := filepath.Split(f[2])
		if filepath.Base(filepath.Clean(dir)) == "oak" && id != "" {
			return id
		}
	}
	return ""
}

// oakHostRole returns the role of a host process with the command line
// argv if it is oak working on state root root (`oak --root ROOT
// _supervise ID` is a supervisor, any other such process a service), or "".
func oakHostRole(argv []string, root string) string {
	i := slices.Index(argv, "--root")
	if i < 0 || i+1 >= len(argv) || argv[i+1] != root {
		return ""
	}
	if slices.Contains(argv, "_supervise") {
		return RoleSupervisor
	}
	return RoleService
}

// nsPid returns the innermost pid of a /proc/PID/status file (the last
// field of NSpid), or 0.
func nsPid(status string) int {
	for line := range strings.Lines(status) {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				return 0
			}
			n, _ := strconv.Atoi(f[len(f)-1])
			return n
		}
	}
	return 0
}

// readProc reads the memory and thread count of pid.
func readProc(pid int, role string) (proc, error) {
	p := proc{pid: pid, role: role}
	rollup, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return p, fmt.Errorf("pid %d (%s): %w", pid, role, err)
	}
	kv := parseKiBFields(string(rollup))
	p.pssKiB, p.rssKiB = kv["Pss"], kv["Rss"]
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return p, fmt.Errorf("pid %d (%s): %w", pid, role, err)
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "Threads:"); ok {
			p.threads, _ = strconv.Atoi(strings.TrimSpace(rest))
		}
	}
	return p, nil
}

// parseKiBFields reads "Name:   123 kB" lines (/proc/meminfo,
// smaps_rollup) into a map of KiB; other lines are skipped.
func parseKiBFields(s string) map[string]int64 {
	m := make(map[string]int64)
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
			m[strings.TrimSpace(name)] = n
		}
	}
	return m
}

// Meminfo holds the /proc/meminfo fields the density benchmark reads, in
// KiB.
type Meminfo struct {
	Slab        int64 `json:"slab_kib"`
	SUnreclaim  int64 `json:"sunreclaim_kib"`
	KernelStack int64 `json:"kernel_stack_kib"`
	PageTables  int64 `json:"page_tables_kib"`
	Shmem       int64 `json:"shmem_kib"`
	// Used is MemTotal − MemAvailable: everything, as a cross-check.
	Used int64 `json:"used_kib"`
}

// Kernel is the kernel's own memory: Slab + KernelStack + PageTables +
// Shmem (tmpfs files, such as a container's writable layer).
func (m Meminfo) Kernel() int64 { return m.Slab + m.KernelStack + m.PageTables + m.Shmem }

func (m Meminfo) sub(o Meminfo) Meminfo {
	return Meminfo{
		Slab:        m.Slab - o.Slab,
		SUnreclaim:  m.SUnreclaim - o.SUnreclaim,
		KernelStack: m.KernelStack - o.KernelStack,
		PageTables:  m.PageTables - o.PageTables,
		Shmem:       m.Shmem - o.Shmem,
		Used:        m.Used - o.Used,
	}
}

// parseMeminfo reads the fields of Meminfo from the text of /proc/meminfo.
func parseMeminfo(s string) (Meminfo, error) {
	kv := parseKiBFields(s)
	for _, k := range []string{"MemTotal", "MemAvailable", "Slab", "SUnreclaim", "KernelStack", "PageTables", "Shmem"} {
		if _, ok := kv[k]; !ok {
			return Meminfo{}, fmt.Errorf("/proc/meminfo: no %s", k)
		}
	}
	return Meminfo{
		Slab:        kv["Slab"],
		SUnreclaim:  kv["SUnreclaim"],
		KernelStack: kv["KernelStack"],
		PageTables:  kv["PageTables"],
		Shmem:       kv["Shmem"],
		Used:        kv["MemTotal"] - kv["MemAvailable"],
	}, nil
}

func readMeminfo() (Meminfo, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return Meminfo{}, err
	}
	return parseMeminfo(string(b))
}

// dropSlabCaches asks the kernel to free reclaimable slab objects (dentries
// and inodes nothing holds), so that readings before and after differ by
// what is held. It needs root; without it the readings are noisier.
// Objects freed by the first drop go through RCU and may still be on
// their way back when it returns, hence a pause and a second drop.
func (d *densityRun) dropSlabCaches() {
	if d.cfg.KeepCaches {
		return
	}
	syscall.Sync()
	os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0)
	time.Sleep(500 * time.Millisecond)
	os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0)
}

// Limits are the host limits that bound how many containers can be held.
type Limits struct {
	PidMax         int64 `json:"pid_max"`
	ThreadsMax     int64 `json:"threads_max"`
	TasksNow       int64 `json:"tasks_now"`
	NoFile         int64 `json:"nofile"`
	MemAvailKiB    int64 `json:"mem_available_kib"`
	MemTotalKiB    int64 `json:"mem_total_kib"`
	InotifyMaxUser int64 `json:"inotify_max_user_instances"`
}

func readLimits() Limits {
	num := func(path string) int64 {
		b, _ := os.ReadFile(path)
		n, _ := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
		return n
	}
	var l Limits
	l.PidMax = num("/proc/sys/kernel/pid_max")
	l.ThreadsMax = num("/proc/sys/kernel/threads-max")
	l.InotifyMaxUser = num("/proc/sys/fs/inotify/max_user_instances")
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		// "0.00 0.01 0.05 RUNNING/TOTAL LAST": TOTAL is the host's tasks.
		if f := strings.Fields(string(b)); len(f) >= 4 {
			if _, total, ok := strings.Cut(f[3], "/"); ok {
				l.TasksNow, _ = strconv.ParseInt(total, 10, 64)
			}
		}
	}
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		l.NoFile = int64(rl.Cur)
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		kv := parseKiBFields(string(b))
		l.MemAvailKiB, l.MemTotalKiB = kv["MemAvailable"], kv["MemTotal"]
	}
	return l
}

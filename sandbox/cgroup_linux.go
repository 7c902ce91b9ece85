package sandbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// cgroupRoot is where the host's cgroup file systems live.
const cgroupRoot = "/sys/fs/cgroup"

// cgroupParent is the group under each controller that holds Oak's containers.
const cgroupParent = "oak"

// cgroup is one container's set of control groups: one directory per v1
// controller it uses, or a single directory on a unified (v2) host.
type cgroup struct {
	v2     bool
	dirs   []string          // created directories; the first one holds memory
	byCtrl map[string]string // the directory of each controller ("" on v2)
	views  []cgroupView
}

// cgroupView is a hierarchy the container sees its own group of, read-only,
// under /sys/fs/cgroup (see nsinit.c mount_cgroups).
type cgroupView struct {
	fstype string // cgroup or cgroup2
	dir    string // under /sys/fs/cgroup inside: "memory", "cpu,cpuacct"; "" for cgroup2
	opts   string // the hierarchy's subsystems, as mount(2) wants them
}

// v1Controllers are the cgroup v1 controllers a container gets a group of
// its own in: memory, pids and cpu carry its limits; cpuacct and cpuset
// carry none but complete its view (a JVM sizes itself from cgroup v1 only
// when it finds all of cpu, cpuacct, cpuset and memory).
var v1Controllers = []string{"memory", "pids", "cpu", "cpuacct", "cpuset"}

// v1Subsystems maps each cgroup v1 hierarchy mounted under cgroupRoot (its
// directory name) to its subsystems, from the host's mount table.
var v1Subsystems = sync.OnceValue(func() map[string]string {
	m := map[string]string{}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return m
	}
	known := map[string]bool{"cpu": true, "cpuacct": true, "cpuset": true, "memory": true, "devices": true,
		"freezer": true, "net_cls": true, "net_prio": true, "blkio": true, "perf_event": true, "hugetlb": true,
		"pids": true, "rdma": true, "misc": true}
	for _, l := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 3 || g[0] != "cgroup" || filepath.Dir(f[4]) != cgroupRoot {
			continue
		}
		var subs []string
		for _, o := range strings.Split(g[2], ",") {
			if known[o] {
				subs = append(subs, o)
			}
		}
		if len(subs) > 0 {
			m[filepath.Base(f[4])] = strings.Join(subs, ",")
		}
	}
	return m
})

// cpuPeriodUs is the CFS period a CPU limit is expressed in.
const cpuPeriodUs = 100000

// unifiedHasMemory reports whether the cgroup2 hierarchy at cgroupRoot
// controls memory, i.e. the host is cgroup v2 only. The host's layout
// does not change under a running oak: it is read once per process.
var unifiedHasMemory = sync.OnceValue(func() bool {
	b, err := os.ReadFile(filepath.Join(cgroupRoot, "cgroup.controllers"))
	return err == nil && bytes.Contains(b, []byte("memory"))
})

// CgroupMode names the hierarchy that enforces containers' limits: "v2"
// on a cgroup v2 only host, "v1" where the v1 controllers do (also on a
// hybrid host).
func CgroupMode() string {
	if unifiedHasMemory() {
		return "v2"
	}
	return "v1"
}

// cgroupViews are the hierarchies in which a container has a group of its
// own, as nsinit mounts them (one per v1 hierarchy, however many of
// v1Controllers it carries); read once per process.
var cgroupViews = sync.OnceValue(func() []cgroupView {
	if unifiedHasMemory() {
		return []cgroupView{{fstype: "cgroup2"}}
	}
	// The hierarchy of a controller is the mount whose subsystems name it
	// ("cpu" lives in "cpu,cpuacct" where the two are mounted together).
	var views []cgroupView
	seen := map[string]bool{}
	for _, c := range v1Controllers {
		for dir, subs := range v1Subsystems() {
			if !seen[dir] && slices.Contains(strings.Split(subs, ","), c) {
				seen[dir] = true
				views = append(views, cgroupView{fstype: "cgroup", dir: dir, opts: subs})
			}
		}
	}
	return views
})

// newCgroup creates the container's groups, at id (its task id, under a
// Task.CgroupParent if any) under Oak's group, with no limits yet (see
// setLimits). On a hybrid host (this project's reference machine) the v1
// memory, pids and cpu controllers do the work, and cpuacct and cpuset
// complete the view; on a v2-only host the unified hierarchy does.
func newCgroup(id string) (*cgroup, error) {
	cg := &cgroup{v2: unifiedHasMemory(), views: cgroupViews(), byCtrl: map[string]string{}}
	type setting struct{ ctrl, file, value string }
	var settings []setting
	if cg.v2 {
		if err := os.WriteFile(filepath.Join(cgroupRoot, "cgroup.subtree_control"), []byte("+memory +pids +cpu"), 0); err != nil {
			return nil, fmt.Errorf("cgroup: enable controllers: %w", err)
		}
		os.Mkdir(filepath.Join(cgroupRoot, cgroupParent), 0o755)
		os.WriteFile(filepath.Join(cgroupRoot, cgroupParent, "cgroup.subtree_control"), []byte("+memory +pids +cpu"), 0)
		settings = append(settings, setting{"", "", ""})
	} else {
		settings = append(settings, setting{"memory", "", ""}, setting{"pids", "", ""}, setting{"cpu", "", ""})
		// A new cpuset group has no CPUs or memory nodes until given its
		// parent's, and takes no task before. Oak's own group follows the
		// root's (whose CPUs change with hot-plug); it is written only
		// when it differs.
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			root, err := os.ReadFile(filepath.Join(cgroupRoot, "cpuset", f))
			if err != nil {
				break // no cpuset hierarchy
			}
			v := strings.TrimSpace(string(root))
			oak := filepath.Join(cgroupRoot, "cpuset", cgroupParent)
			if cur, err := os.ReadFile(filepath.Join(oak, f)); err != nil || strings.TrimSpace(string(cur)) != v {
				os.Mkdir(oak, 0o755)
				os.WriteFile(filepath.Join(oak, f), []byte(v), 0)
			}
			settings = append(settings, setting{"cpuset", f, v})
		}
		if _, err := os.Stat(filepath.Join(cgroupRoot, "cpuacct", "cgroup.procs")); err == nil {
			settings = append(settings, setting{"cpuacct", "", ""})
		}
	}
	for _, s := range settings {
		dir, ok := cg.byCtrl[s.ctrl]
		if !ok {
			dir = filepath.Join(cgroupRoot, s.ctrl, cgroupParent, id)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				cg.destroy()
				return nil, fmt.Errorf("cgroup %s: %w", dir, unwrapPath(err))
			}
			cg.byCtrl[s.ctrl] = dir
			cg.dirs = append(cg.dirs, dir)
		}
		if s.file == "" {
			continue // the group alone
		}
		if err := os.WriteFile(filepath.Join(dir, s.file), []byte(s.value), 0); err != nil {
			cg.destroy()
			return nil, fmt.Errorf("cgroup %s: set %s=%s: %w", dir, s.file, s.value, unwrapPath(err))
		}
	}
	return cg, nil
}

// setLimits writes l into the groups: memory (and no swap beyond it),
// tasks and CPU; zero is no limit.
func (cg *cgroup) setLimits(l Limits) error {
	type setting struct{ ctrl, file, value string }
	var settings []setting
	if cg.v2 {
		settings = append(settings, setting{"", "memory.max", limitOrMax(l.MemoryBytes)},
			setting{"", "memory.swap.max", "0"}, setting{"", "pids.max", limitOrMax(l.Pids)})
		if l.CPUMilli > 0 {
			settings = append(settings, setting{"", "cpu.max", fmt.Sprintf("%d %d", l.CPUMilli*cpuPeriodUs/1000, cpuPeriodUs)})
		}
	} else {
		quota := "-1"
		if l.CPUMilli > 0 {
			quota = strconv.FormatInt(l.CPUMilli*cpuPeriodUs/1000, 10)
		}
		settings = append(settings, setting{"memory", "memory.limit_in_bytes", limitOrMinus1(l.MemoryBytes)},
			setting{"memory", "memory.memsw.limit_in_bytes", limitOrMinus1(l.MemoryBytes)},
			setting{"pids", "pids.max", limitOrMax(l.Pids)},
			setting{"cpu", "cpu.cfs_period_us", strconv.Itoa(cpuPeriodUs)},
			setting{"cpu", "cpu.cfs_quota_us", quota})
	}
	for _, s := range settings {
		dir := cg.byCtrl[s.ctrl]
		err := os.WriteFile(filepath.Join(dir, s.file), []byte(s.value), 0)
		if err != nil && !(errors.Is(err, os.ErrNotExist) && strings.Contains(s.file, "sw")) {
			// Swap accounting may be off; then there is no swap to limit.
			return fmt.Errorf("cgroup %s: set %s=%s: %w", dir, s.file, s.value, unwrapPath(err))
		}
	}
	return nil
}

func limitOrMax(v int64) string {
	if v <= 0 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

func limitOrMinus1(v int64) string {
	if v <= 0 {
		return "-1"
	}
	return strconv.FormatInt(v, 10)
}

// add moves pid into every group of the container. Each move in a v1
// hierarchy waits for an RCU grace period: they are made at once.
func (cg *cgroup) add(pid int) error {
	errs := make([]error, len(cg.dirs))
	var wg sync.WaitGroup
	for i, d := range cg.dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
				errs[i] = fmt.Errorf("cgroup %s: add pid %d: %w", d, pid, unwrapPath(err))
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// oomKills returns how many processes the memory controller killed; none
// if there are no groups (their making failed).
func (cg *cgroup) oomKills() int {
	if cg == nil {
		return 0
	}
	file := "memory.oom_control"
	if cg.v2 {
		file = "memory.events"
	}
	f, err := os.Open(filepath.Join(cg.dirs[0], file))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "oom_kill "); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// destroy removes the groups. The container's pid namespace is gone by the
// time it is called, but the kernel may take a moment to release the last
// task, so an EBUSY is retried briefly. A nil cgroup has nothing to remove.
func (cg *cgroup) destroy() error {
	if cg == nil {
		return nil
	}
	var errs []error
	for _, d := range cg.dirs {
		errs = append(errs, removeCgroupDir(d))
	}
	return errors.Join(errs...)
}

func removeCgroupDir(d string) error {
	var err error
	for i := 0; i < 200; i++ {
		err = os.Remove(d)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("cgroup %s: remove: %w", d, unwrapPath(err))
}

// RemoveCgroups removes whatever groups a container with this id left behind
// (for clean-up after an engine that was killed). Missing groups are fine.
func RemoveCgroups(id string) error {
	var errs []error
	dirs := []string{filepath.Join(cgroupRoot, cgroupParent, id)}
	for _, c := range v1Controllers {
		dirs = append(dirs, filepath.Join(cgroupRoot, c, cgroupParent, id))
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); err == nil {
			killCgroup(d)
			errs = append(errs, removeCgroupDir(d))
		}
	}
	return errors.Join(errs...)
}

// killCgroup SIGKILLs every process left in the group d.
func killCgroup(d string) {
	b, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
			if p, err := os.FindProcess(pid); err == nil {
				p.Kill()
			}
		}
	}
}

// PrimeMoves readies the kernel, in the background, for the cgroup moves a
// launch from this process will make. Every move (a write to cgroup.procs,
// in any hierarchy) takes the write side of one host-wide semaphore,
// cgroup_threadgroup_rwsem, whose first writer after a quiet spell waits
// for an RCU grace period (5-15 ms on this kind of machine) before it may
// proceed; the semaphore then stays ready for writers for another grace
// period after the last one leaves. PrimeMoves makes that first move at
// once and for nothing: it writes this process's own pid into the
// cgroup.procs of the group it already sits in (a move to where a task is
// moves nothing and changes no limit), so that the grace period runs out
// while the caller resolves the image, writes the record and clones the
// child, instead of after. Errors are ignored: the real move will only
// wait as it would have.
func PrimeMoves() {
	go primeMoves()
}

func primeMoves() {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return
	}
	for _, l := range strings.Split(string(b), "\n") {
		// hierarchy-id:controllers:path; "0::/path" is the unified one.
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 {
			continue
		}
		var dir string
		switch {
		case unifiedHasMemory() && f[0] == "0":
			dir = filepath.Join(cgroupRoot, f[2])
		case !unifiedHasMemory() && slices.Contains(strings.Split(f[1], ","), "memory"):
			dir = filepath.Join(cgroupRoot, "memory", f[2])
		default:
			continue
		}
		os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0)
		return
	}
}

package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// A parent group is a cgroup that holds containers' groups (and other
// parent groups) rather than processes: a factory's. Its limits bound the
// sum of everything under it, because the kernel charges a task's memory
// and pids to every ancestor group of its own and checks each ancestor's
// limit (cgroup v1 memory with use_hierarchy=1, which kernels since 5.x
// force; v1 pids is always hierarchical), and CFS throttles a group when
// its subtree used up its quota.

// parentControllers are the v1 hierarchies a parent group is made in: the
// same as a container's, so that a container's groups can nest in it.
var parentControllers = v1Controllers

// MakeGroup creates the parent group rel (a clean relative path under
// Oak's group, e.g. "f-team/f-ci") in every controller a container uses,
// or updates it, and writes limits l: memory (and memory+swap, where swap
// is accounted), pids and CPU; a zero field is no limit of its own. The
// groups above rel must exist (made by MakeGroup) so that their limits
// hold; MakeGroup refuses to make them silently unlimited. A cgroup v2
// only host is refused: parent groups are not implemented there yet.
func MakeGroup(rel string, l Limits) error {
	if err := checkGroupPath(rel); err != nil || rel == "" {
		return fmt.Errorf("cgroup group %q: %v", rel, errOr(err, "empty path"))
	}
	if err := l.Check(); err != nil {
		return fmt.Errorf("cgroup group %s: %w", rel, err)
	}
	if unifiedHasMemory() {
		return fmt.Errorf("cgroup group %s: parent groups need the cgroup v1 controllers; this host is cgroup v2 only", rel)
	}
	if err := checkParentGroup(filepath.Dir(rel)); err != nil {
		return fmt.Errorf("cgroup group %s: %w", rel, err)
	}
	quota := "-1"
	if l.CPUMilli > 0 {
		quota = strconv.FormatInt(l.CPUMilli*cpuPeriodUs/1000, 10)
	}
	settings := []struct{ ctrl, file, value string }{
		{"memory", "", ""},
		// memsw must stay at or above the memory limit: lift it first,
		// write the memory limit, then set memsw to the same bound.
		{"memory", "memory.memsw.limit_in_bytes", "-1"},
		{"memory", "memory.limit_in_bytes", limitOrMinus1(l.MemoryBytes)},
		{"memory", "memory.memsw.limit_in_bytes", limitOrMinus1(l.MemoryBytes)},
		{"pids", "pids.max", limitOrMax(l.Pids)},
		{"cpu", "cpu.cfs_period_us", strconv.Itoa(cpuPeriodUs)},
		{"cpu", "cpu.cfs_quota_us", quota},
		{"cpuacct", "", ""},
	}
	for _, c := range parentControllers {
		if _, err := os.Stat(filepath.Join(cgroupRoot, c, cgroupParent)); err != nil {
			os.MkdirAll(filepath.Join(cgroupRoot, c, cgroupParent), 0o755)
		}
	}
	for _, s := range settings {
		dir := filepath.Join(cgroupRoot, s.ctrl, cgroupParent, rel)
		if s.file == "" {
			if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
				return fmt.Errorf("cgroup %s: %w", dir, unwrapPath(err))
			}
			continue
		}
		if s.ctrl == "pids" || s.ctrl == "cpu" {
			os.Mkdir(dir, 0o755)
		}
		err := os.WriteFile(filepath.Join(dir, s.file), []byte(s.value), 0)
		if err != nil && !(errors.Is(err, os.ErrNotExist) && strings.Contains(s.file, "memsw")) {
			return fmt.Errorf("cgroup %s: set %s=%s: %w", dir, s.file, s.value, unwrapPath(err))
		}
	}
	// A new cpuset group has no CPUs or memory nodes until given its
	// parent's.
	dir := filepath.Join(cgroupRoot, "cpuset", cgroupParent, rel)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("cgroup %s: %w", dir, unwrapPath(err))
	}
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		v, err := os.ReadFile(filepath.Join(filepath.Dir(dir), f))
		if err != nil {
			return fmt.Errorf("cgroup %s: read %s: %w", filepath.Dir(dir), f, unwrapPath(err))
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte(strings.TrimSpace(string(v))), 0); err != nil {
			return fmt.Errorf("cgroup %s: set %s: %w", dir, f, unwrapPath(err))
		}
	}
	return nil
}

func errOr(err error, msg string) string {
	if err != nil {
		return err.Error()
	}
	return msg
}

// checkParentGroup returns nil if rel is "" or a group MakeGroup made, in
// the pids and memory hierarchies (where its limits are).
func checkParentGroup(rel string) error {
	if rel == "" || rel == "." {
		return nil
	}
	if err := checkGroupPath(rel); err != nil {
		return err
	}
	for _, c := range []string{"memory", "pids"} {
		if _, err := os.Stat(filepath.Join(cgroupRoot, c, cgroupParent, rel, "cgroup.procs")); err != nil {
			return fmt.Errorf("parent group %s: missing in the %s hierarchy (make it first)", rel, c)
		}
	}
	return nil
}

// GroupUsage is what the kernel charges a parent group now, its subtree
// included.
type GroupUsage struct {
	MemoryBytes int64 // memory.usage_in_bytes
	Pids        int64 // pids.current
	PidsMax     int64 // pids.max; 0 is none
}

// ReadGroup returns the usage of the parent group rel. A group that does
// not exist (yet: after a reboot, until its first container) reads as
// zero usage.
func ReadGroup(rel string) (GroupUsage, error) {
	var u GroupUsage
	if err := checkGroupPath(rel); err != nil {
		return u, fmt.Errorf("cgroup group %q: %w", rel, err)
	}
	read := func(ctrl, file string) (int64, error) {
		b, err := os.ReadFile(filepath.Join(cgroupRoot, ctrl, cgroupParent, rel, file))
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil
		}
		if err != nil {
			return 0, fmt.Errorf("cgroup group %s: read %s: %w", rel, file, unwrapPath(err))
		}
		v := strings.TrimSpace(string(b))
		if v == "max" {
			return 0, nil
		}
		return strconv.ParseInt(v, 10, 64)
	}
	var e1, e2, e3 error
	u.MemoryBytes, e1 = read("memory", "memory.usage_in_bytes")
	u.Pids, e2 = read("pids", "pids.current")
	u.PidsMax, e3 = read("pids", "pids.max")
	return u, errors.Join(e1, e2, e3)
}

// RemoveGroup kills every process left in the parent group rel and in
// every group under it, and removes them all, deepest first. A group that
// is already gone is no error.
func RemoveGroup(rel string) error {
	if err := checkGroupPath(rel); err != nil || rel == "" {
		return fmt.Errorf("cgroup group %q: %v", rel, errOr(err, "empty path"))
	}
	var errs []error
	for _, c := range parentControllers {
		top := filepath.Join(cgroupRoot, c, cgroupParent, rel)
		var dirs []string
		filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		slices.Reverse(dirs) // children after their parent in a walk
		for _, d := range dirs {
			killCgroup(d)
		}
		for _, d := range dirs {
			errs = append(errs, removeCgroupDir(d))
		}
	}
	return errors.Join(errs...)
}

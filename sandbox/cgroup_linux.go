package sandbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// cgroupRoot is where the host's cgroup file systems live.
const cgroupRoot = "/sys/fs/cgroup"

// cgroupParent is the group under each controller that holds Oak's containers.
const cgroupParent = "oak"

// cgroup is one container's set of control groups: one directory per v1
// controller it uses, or a single directory on a unified (v2) host.
type cgroup struct {
	v2   bool
	dirs []string // created directories; the first one holds memory
}

// cpuPeriodUs is the CFS period a CPU limit is expressed in.
const cpuPeriodUs = 100000

// unifiedHasMemory reports whether the cgroup2 hierarchy at cgroupRoot
// controls memory, i.e. the host is cgroup v2 only.
func unifiedHasMemory() bool {
	b, err := os.ReadFile(filepath.Join(cgroupRoot, "cgroup.controllers"))
	return err == nil && bytes.Contains(b, []byte("memory"))
}

// newCgroup creates the container's groups and writes its limits. On a
// hybrid host (this project's reference machine) the v1 memory, pids and cpu
// controllers do the work; on a v2-only host the unified hierarchy does.
func newCgroup(id string, l Limits) (*cgroup, error) {
	cg := &cgroup{v2: unifiedHasMemory()}
	type setting struct{ ctrl, file, value string }
	var settings []setting
	if cg.v2 {
		if err := os.WriteFile(filepath.Join(cgroupRoot, "cgroup.subtree_control"), []byte("+memory +pids +cpu"), 0); err != nil {
			return nil, fmt.Errorf("cgroup: enable controllers: %w", err)
		}
		os.Mkdir(filepath.Join(cgroupRoot, cgroupParent), 0o755)
		os.WriteFile(filepath.Join(cgroupRoot, cgroupParent, "cgroup.subtree_control"), []byte("+memory +pids +cpu"), 0)
		settings = append(settings, setting{"", "memory.max", limitOrMax(l.MemoryBytes)},
			setting{"", "memory.swap.max", "0"}, setting{"", "pids.max", limitOrMax(l.Pids)})
		if l.CPUMilli > 0 {
			settings = append(settings, setting{"", "cpu.max", fmt.Sprintf("%d %d", l.CPUMilli*cpuPeriodUs/1000, cpuPeriodUs)})
		}
	} else {
		settings = append(settings, setting{"memory", "memory.limit_in_bytes", limitOrMinus1(l.MemoryBytes)},
			setting{"memory", "memory.memsw.limit_in_bytes", limitOrMinus1(l.MemoryBytes)},
			setting{"pids", "pids.max", limitOrMax(l.Pids)})
		if l.CPUMilli > 0 {
			settings = append(settings, setting{"cpu", "cpu.cfs_period_us", strconv.Itoa(cpuPeriodUs)},
				setting{"cpu", "cpu.cfs_quota_us", strconv.FormatInt(l.CPUMilli*cpuPeriodUs/1000, 10)})
		}
	}
	made := map[string]string{}
	for _, s := range settings {
		dir, ok := made[s.ctrl]
		if !ok {
			dir = filepath.Join(cgroupRoot, s.ctrl, cgroupParent, id)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				cg.destroy()
				return nil, fmt.Errorf("cgroup %s: %w", dir, unwrapPath(err))
			}
			made[s.ctrl] = dir
			cg.dirs = append(cg.dirs, dir)
		}
		err := os.WriteFile(filepath.Join(dir, s.file), []byte(s.value), 0)
		if err != nil && !(errors.Is(err, os.ErrNotExist) && strings.Contains(s.file, "sw")) {
			// Swap accounting may be off; then there is no swap to limit.
			cg.destroy()
			return nil, fmt.Errorf("cgroup %s: set %s=%s: %w", dir, s.file, s.value, unwrapPath(err))
		}
	}
	return cg, nil
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

// add moves pid into every group of the container.
func (cg *cgroup) add(pid int) error {
	for _, d := range cg.dirs {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			return fmt.Errorf("cgroup %s: add pid %d: %w", d, pid, unwrapPath(err))
		}
	}
	return nil
}

// oomKills returns how many processes the memory controller killed.
func (cg *cgroup) oomKills() int {
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
// task, so an EBUSY is retried briefly.
func (cg *cgroup) destroy() error {
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
	for _, c := range []string{"memory", "pids", "cpu"} {
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

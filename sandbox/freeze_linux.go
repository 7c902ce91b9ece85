package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Freeze stops (frozen) or lets go on (!frozen) every process of the
// container whose task id is id, through the cgroup freezer: cgroup.freeze
// of its group on cgroup v2; on v1, where a container has no freezer group
// from its launch, a freezer group made at the first freeze, into which
// every process of its pids group is moved. A process that forks meanwhile
// is caught by the next round: its child lands in the pids group, and a
// frozen process forks no more. Freeze returns once the kernel reports the
// group frozen (or thawed).
func Freeze(id string, frozen bool) error {
	if unifiedHasMemory() {
		dir := filepath.Join(cgroupRoot, cgroupParent, id)
		v := "0"
		if frozen {
			v = "1"
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup.freeze"), []byte(v), 0); err != nil {
			return fmt.Errorf("freeze %s: %w", id, unwrapPath(err))
		}
		return waitFile(filepath.Join(dir, "cgroup.events"), "frozen "+v)
	}
	dir := filepath.Join(cgroupRoot, "freezer", cgroupParent, id)
	state := filepath.Join(dir, "freezer.state")
	if !frozen {
		if err := os.WriteFile(state, []byte("THAWED"), 0); err != nil {
			return fmt.Errorf("thaw %s: %w", id, unwrapPath(err))
		}
		return waitFile(state, "THAWED")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("freeze %s: %w", id, unwrapPath(err))
	}
	procs := filepath.Join(cgroupRoot, "pids", cgroupParent, id, "cgroup.procs")
	for round := 0; ; round++ {
		want, err := readPids(procs)
		if err != nil {
			return fmt.Errorf("freeze %s: %w", id, err)
		}
		have, err := readPids(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			return fmt.Errorf("freeze %s: %w", id, err)
		}
		moved := false
		for _, p := range want {
			if !slices.Contains(have, p) {
				// A process that ended meanwhile is no error.
				if os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(p)), 0) == nil {
					moved = true
				}
			}
		}
		if err := os.WriteFile(state, []byte("FROZEN"), 0); err != nil {
			return fmt.Errorf("freeze %s: %w", id, unwrapPath(err))
		}
		if err := waitFile(state, "FROZEN"); err != nil {
			return err
		}
		if !moved || round > 100 {
			return nil
		}
	}
}

// ReleaseFreezer removes the v1 freezer group Freeze made for id, if any.
func ReleaseFreezer(id string) error {
	dir := filepath.Join(cgroupRoot, "freezer", cgroupParent, id)
	if _, err := os.Stat(dir); err != nil {
		return nil
	}
	os.WriteFile(filepath.Join(dir, "freezer.state"), []byte("THAWED"), 0)
	return removeCgroupDir(dir)
}

func readPids(path string) ([]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, unwrapPath(err)
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out, nil
}

// waitFile waits until the file at path holds a line (or is) want: the
// kernel finishes freezing asynchronously.
func waitFile(path, want string) error {
	for i := 0; ; i++ {
		b, err := os.ReadFile(path)
		if err != nil {
			return unwrapPath(err)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if l == want {
				return nil
			}
		}
		if i == 2000 {
			return fmt.Errorf("%s: not %q after 10 s", path, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

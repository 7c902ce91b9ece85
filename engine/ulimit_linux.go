package engine

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/oak-engine/oak/sandbox"
)

// Ulimit is one --ulimit NAME=SOFT[:HARD] of a run.
type Ulimit struct {
	Name string `json:"name"`
	Soft int64  `json:"soft"` // -1: unlimited
	Hard int64  `json:"hard"`
}

// ulimitResources are the names --ulimit takes, docker's.
var ulimitResources = map[string]int{
	"core": unix.RLIMIT_CORE, "cpu": unix.RLIMIT_CPU, "data": unix.RLIMIT_DATA,
	"fsize": unix.RLIMIT_FSIZE, "locks": unix.RLIMIT_LOCKS, "memlock": unix.RLIMIT_MEMLOCK,
	"msgqueue": unix.RLIMIT_MSGQUEUE, "nice": unix.RLIMIT_NICE, "nofile": unix.RLIMIT_NOFILE,
	"nproc": unix.RLIMIT_NPROC, "rss": unix.RLIMIT_RSS, "rtprio": unix.RLIMIT_RTPRIO,
	"rttime": unix.RLIMIT_RTTIME, "sigpending": unix.RLIMIT_SIGPENDING, "stack": unix.RLIMIT_STACK,
}

// ParseUlimit reads --ulimit NAME=SOFT[:HARD]: a limit docker names, each
// value a number or -1 (or "unlimited") for no limit; HARD defaults to
// SOFT, and SOFT may not exceed it.
func ParseUlimit(s string) (Ulimit, error) {
	name, vals, ok := strings.Cut(s, "=")
	if _, known := ulimitResources[name]; !ok || !known {
		names := make([]string, 0, len(ulimitResources))
		for n := range ulimitResources {
			names = append(names, n)
		}
		sort.Strings(names)
		return Ulimit{}, fmt.Errorf("invalid --ulimit %q: want NAME=SOFT[:HARD] with NAME one of %s", s, strings.Join(names, ", "))
	}
	soft, hard, hasHard := strings.Cut(vals, ":")
	u := Ulimit{Name: name}
	var err error
	if u.Soft, err = ulimitValue(soft); err != nil {
		return Ulimit{}, fmt.Errorf("invalid --ulimit %q: %w", s, err)
	}
	u.Hard = u.Soft
	if hasHard {
		if u.Hard, err = ulimitValue(hard); err != nil {
			return Ulimit{}, fmt.Errorf("invalid --ulimit %q: %w", s, err)
		}
	}
	if u.Hard != -1 && (u.Soft == -1 || u.Soft > u.Hard) {
		return Ulimit{}, fmt.Errorf("invalid --ulimit %q: the soft limit is above the hard one", s)
	}
	return u, nil
}

func ulimitValue(s string) (int64, error) {
	if s == "unlimited" || s == "-1" {
		return -1, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a limit: want a number, or -1 or unlimited", s)
	}
	return n, nil
}

func rlim(v int64) uint64 {
	if v < 0 {
		return math.MaxUint64 // RLIM_INFINITY
	}
	return uint64(v)
}

// checkUlimits refuses a limit whose hard value is above this process's
// own: the container's init inherits oak's limits, and oak holds no
// CAP_SYS_RESOURCE to raise a hard limit, so it can only keep or lower one.
func checkUlimits(us []Ulimit) ([]sandbox.Rlimit, error) {
	var out []sandbox.Rlimit
	for _, u := range us {
		res := ulimitResources[u.Name]
		var cur unix.Rlimit
		if err := unix.Getrlimit(res, &cur); err != nil {
			return nil, fmt.Errorf("--ulimit %s: %w", u.Name, err)
		}
		if rlim(u.Hard) > cur.Max {
			return nil, fmt.Errorf("invalid --ulimit %s=%s:%s: the hard limit is above the host's %s, and Oak never raises a limit (it would need CAP_SYS_RESOURCE over the host); ask for %s or less",
				u.Name, ulimitArg(u.Soft), ulimitArg(u.Hard), ulimitArg(int64(cur.Max)), ulimitArg(int64(cur.Max)))
		}
		out = append(out, sandbox.Rlimit{Name: u.Name, Resource: res, Soft: rlim(u.Soft), Hard: rlim(u.Hard)})
	}
	return out, nil
}

func ulimitArg(v int64) string {
	if v < 0 {
		return "unlimited"
	}
	return strconv.FormatInt(v, 10)
}

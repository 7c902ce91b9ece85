package engine

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/oak-engine/oak/sandbox"
)

// Default limits of a container whose run names none. Zero ("no limit")
// must be asked for.
const (
	// DefaultMemoryBytes is 1 GiB: a fixed figure, so that a container that
	// runs on one host runs the same on another, enough for the usual
	// servers (a JVM that sizes its heap from the limit picks 256 MiB), and
	// small enough that a runaway process is killed before the host's
	// other work is pushed out.
	DefaultMemoryBytes = 1 << 30
	// DefaultPids is 1024: a fork bomb in one container then takes at most
	// 1/32 of a default pid_max of 32768, while thread-heavy servers (a
	// JVM's few hundred threads, a database with a hundred connections)
	// stay well inside it.
	DefaultPids = 1024
)

// ParseBytes reads a size the way docker's --memory does: a whole number
// with an optional unit b, k, m or g (powers of 1024, case-insensitive, an
// optional trailing "b" as in "64mb"). flag names the option in errors.
func ParseBytes(flag, s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("invalid %s %q: not a number", flag, s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid %s %q: %v", flag, s, err.(*strconv.NumError).Err)
	}
	unit := strings.TrimSuffix(t[i:], "b")
	shift, ok := map[string]uint{"": 0, "k": 10, "m": 20, "g": 30, "t": 40}[unit]
	if !ok || (unit == "" && t[i:] != "" && t[i:] != "b") {
		return 0, fmt.Errorf("invalid %s %q: unknown unit %q (use b, k, m, g or t)", flag, s, t[i:])
	}
	if n > (1<<63-1)>>shift {
		return 0, fmt.Errorf("invalid %s %q: too large", flag, s)
	}
	if n == 0 {
		return 0, fmt.Errorf("invalid %s %q: must be more than zero", flag, s)
	}
	return n << shift, nil
}

// unlimitedArg reports whether s asks for no limit: "0" or "-1" (docker's
// spellings), as ParsePids takes them.
func unlimitedArg(s string) bool {
	s = strings.TrimSpace(s)
	return s == "0" || s == "-1"
}

// ParseMemory reads --memory: a size as ParseBytes takes it, at least
// sandbox.MinMemoryBytes, or 0 or -1 for no limit (returned as 0).
func ParseMemory(s string) (int64, error) {
	if unlimitedArg(s) {
		return 0, nil
	}
	n, err := ParseBytes("--memory", s)
	if err != nil {
		return 0, err
	}
	if n < sandbox.MinMemoryBytes {
		return 0, fmt.Errorf("invalid --memory %q: below the %d MiB a container needs to start (0 means no limit)", s, sandbox.MinMemoryBytes>>20)
	}
	return n, nil
}

// ParsePids checks --pids: a number of tasks from sandbox.MinPids to
// sandbox.MaxPids, or 0 or -1 for no limit (returned as 0).
func ParsePids(n int64) (int64, error) {
	switch {
	case n == 0 || n == -1:
		return 0, nil
	case n < sandbox.MinPids:
		return 0, fmt.Errorf("invalid --pids %d: a container needs at least %d (its init and its command; 0 means no limit)", n, sandbox.MinPids)
	case n > sandbox.MaxPids:
		return 0, fmt.Errorf("invalid --pids %d: above the kernel's maximum %d", n, sandbox.MaxPids)
	}
	return n, nil
}

// ParseTmpfsSize reads --tmpfs-size: a size as ParseBytes takes it, at
// least sandbox.MinTmpfsBytes.
func ParseTmpfsSize(s string) (int64, error) {
	n, err := ParseBytes("--tmpfs-size", s)
	if err != nil {
		return 0, err
	}
	if n < sandbox.MinTmpfsBytes {
		return 0, fmt.Errorf("invalid --tmpfs-size %q: the smallest /tmp is %d bytes (one page)", s, sandbox.MinTmpfsBytes)
	}
	return n, nil
}

// ParseCPUs reads a --cpus value (a decimal number of cores, e.g. 0.5) into
// thousandths of a core: at least 0.01 (sandbox.MinCPUMilli) and at most
// max cores. There is no spelling for "no limit": leave --cpus out.
func ParseCPUs(s string, max int) (int64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || f != f {
		return 0, fmt.Errorf("invalid --cpus %q: not a decimal number", s)
	}
	if f > float64(max) {
		return 0, fmt.Errorf("invalid --cpus %q: this host has %d CPUs", s, max)
	}
	milli := int64(f*1000 + 0.5)
	if milli < sandbox.MinCPUMilli {
		return 0, fmt.Errorf("invalid --cpus %q: must be at least 0.01 (the kernel's smallest CPU quota)", s)
	}
	return milli, nil
}

package engine

import (
	"fmt"
	"strconv"
	"strings"
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

// ParseCPUs reads a --cpus value (a decimal number of cores, e.g. 0.5) into
// thousandths of a core.
func ParseCPUs(s string, max int) (int64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0, fmt.Errorf("invalid --cpus %q: not a decimal number", s)
	}
	milli := int64(f*1000 + 0.5)
	if f != f || milli < 1 {
		return 0, fmt.Errorf("invalid --cpus %q: must be at least 0.001", s)
	}
	if milli > int64(max)*1000 {
		return 0, fmt.Errorf("invalid --cpus %q: this host has %d CPUs", s, max)
	}
	return milli, nil
}

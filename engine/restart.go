package engine

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// RestartPolicy says when a container's supervisor starts its command
// again after it ended, as docker's --restart does. A container stopped
// with oak stop (or killed with its stop signal or SIGKILL) is never
// restarted, whatever its policy.
type RestartPolicy struct {
	// Name is "no" (or empty), "on-failure", "always" or
	// "unless-stopped". A container's supervisor does the restarting and
	// nothing restarts containers when the host or oak daemon starts
	// again, so unless-stopped and always behave alike.
	Name string `json:"name,omitempty"`
	// MaxRetries bounds the restarts of on-failure; 0 is no bound.
	MaxRetries int `json:"max_retries,omitempty"`
}

// ParseRestartPolicy reads --restart: no, on-failure[:N], always or
// unless-stopped.
func ParseRestartPolicy(s string) (RestartPolicy, error) {
	name, max, hasMax := strings.Cut(s, ":")
	p := RestartPolicy{Name: name}
	switch name {
	case "no", "always", "unless-stopped":
		if hasMax {
			return RestartPolicy{}, fmt.Errorf("invalid --restart %q: only on-failure takes a maximum count", s)
		}
		if name == "no" {
			p.Name = ""
		}
		return p, nil
	case "on-failure":
		if hasMax {
			n, err := strconv.Atoi(max)
			if err != nil || n < 0 {
				return RestartPolicy{}, fmt.Errorf("invalid --restart %q: the maximum count must be a number, 0 or more", s)
			}
			p.MaxRetries = n
		}
		return p, nil
	}
	return RestartPolicy{}, fmt.Errorf("invalid --restart %q: want no, on-failure[:N], always or unless-stopped", s)
}

// String is the policy as --restart takes it.
func (p RestartPolicy) String() string {
	switch {
	case p.Name == "":
		return "no"
	case p.Name == "on-failure" && p.MaxRetries > 0:
		return p.Name + ":" + strconv.Itoa(p.MaxRetries)
	}
	return p.Name
}

// Restart back-off, docker's: the first restart waits restartDelayMin,
// each following one twice the one before up to restartDelayMax, and a
// run that lasted restartResetAfter starts the doubling over.
const (
	restartDelayMin   = 100 * time.Millisecond
	restartDelayMax   = time.Minute
	restartResetAfter = 10 * time.Second
)

// restartDelay is the wait before the next restart, given the one before
// (0 if none) and how long the run that just ended lasted.
func restartDelay(prev, ran time.Duration) time.Duration {
	if prev == 0 || ran >= restartResetAfter {
		return restartDelayMin
	}
	return min(2*prev, restartDelayMax)
}

// restarts says whether a container that ended with code after restarts
// restarts (since its last start) is started again.
func (p RestartPolicy) restarts(code, restarts int) bool {
	switch p.Name {
	case "always", "unless-stopped":
		return true
	case "on-failure":
		return code != 0 && (p.MaxRetries == 0 || restarts < p.MaxRetries)
	}
	return false
}

// ParseSignal reads a signal as a name ("TERM", "SIGTERM") or a number.
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("signal %q: no such signal", s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(strings.TrimSpace(s))
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if n := unix.SignalNum(name); n != 0 {
		return n, nil
	}
	return 0, fmt.Errorf("signal %q: no such signal", s)
}

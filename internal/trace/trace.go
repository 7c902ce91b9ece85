// Package trace marks the phases of a launch with timestamps, for the
// breakdown in docs/startup.md (oak bench trace). It is off unless the
// environment has OAK_TRACE=1; off, a mark is one branch on a boolean read
// once at start-up.
//
// A mark is one line on standard error,
//
//	oak-trace MONOTONIC_NS PID PHASE
//
// with CLOCK_MONOTONIC in nanoseconds, the clock nsinit's marks (written
// in C, the same format) and the benchmark's own readings use, so the lines
// of the CLI, the sandbox and the container's init fall on one time line.
package trace

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// EnvVar turns tracing on when set to "1".
const EnvVar = "OAK_TRACE"

// Prefix starts every mark's line.
const Prefix = "oak-trace "

var on = os.Getenv(EnvVar) == "1"

// On reports whether tracing is on.
func On() bool { return on }

// Enable turns marks on for the rest of this process, as OAK_TRACE=1 at
// its start would have: a supervisor made ahead (a standby) traces the
// launch of a client that traces. Call it before anything marks
// concurrently.
func Enable() { on = true }

// Mark writes a mark of phase to standard error if tracing is on.
func Mark(phase string) {
	if !on {
		return
	}
	b := make([]byte, 0, 64+len(phase))
	b = append(b, Prefix...)
	b = strconv.AppendInt(b, Now(), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(os.Getpid()), 10)
	b = append(b, ' ')
	b = append(b, phase...)
	b = append(b, '\n')
	os.Stderr.Write(b)
}

// Now returns CLOCK_MONOTONIC in nanoseconds.
func Now() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// Env returns the environment entry that turns tracing on in a child that
// does not inherit oak's environment (the container's init, whose
// variable is name): name=1 when tracing is on, nothing when it is off.
func Env(name string) []string {
	if !on {
		return nil
	}
	return []string{name + "=1"}
}

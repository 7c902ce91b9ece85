//go:build linux

package corpus

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// The list is made under runc: strace -f is attached to runc's init (a Go
// program waiting for `runc start`) before the container starts, and
// programCalls keeps only what follows init's execve of the program.
//
// writeSyscalls adds names to the list in path (one system call name a
// line, sorted), keeping what is there: the list is the union over runs,
// as each run may exercise a program a little differently.
func writeSyscalls(t *testing.T, path string, names map[string]bool) {
	t.Helper()
	all := map[string]bool{}
	if b, err := os.ReadFile(path); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				all[l] = true
			}
		}
	}
	for n := range names {
		all[n] = true
	}
	list := make([]string, 0, len(all))
	for n := range all {
		list = append(list, n)
	}
	sort.Strings(list)
	if err := os.WriteFile(path, []byte(strings.Join(list, "\n")+"\n"), 0o644); err != nil {
		t.Errorf("write %s: %v", path, err)
		return
	}
	t.Logf("%d system calls in %s (%d seen in this run)", len(list), path, len(names))
}

// A line of strace -f output: a thread id, then a call ("openat(...",
// "<... openat resumed>"), a signal ("--- SIGCHLD") or an exit ("+++").
var traceLine = regexp.MustCompile(`^(\d+)\s+(?:<\.\.\. )?([a-z_0-9]+)[( ]`)

// execOK matches the line where an execve returned 0 (strace pads before "=").
var execOK = regexp.MustCompile(`\)\s+= 0$`)

// programCalls returns the system calls in a trace of runc's init and the
// program it started: the calls of the thread that made the first
// successful execve, from that execve on, and of every thread that first
// appears after it. Calls of init's other threads (the Go runtime of runc)
// and of the exec'ing thread before it are runc's, not the program's.
func programCalls(trace string) map[string]bool {
	names := map[string]bool{}
	seen := map[string]bool{} // threads of runc's init
	execd := ""
	for _, l := range strings.Split(trace, "\n") {
		m := traceLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		tid, name := m[1], m[2]
		if execd == "" {
			seen[tid] = true
			if name == "execve" && execOK.MatchString(l) {
				execd = tid
				names[name] = true
			}
			continue
		}
		if tid != execd && seen[tid] {
			continue
		}
		names[name] = true
	}
	return names
}

func TestProgramCalls(t *testing.T) {
	trace := `100 futex(0xc000, FUTEX_WAIT_PRIVATE, 0, NULL <unfinished ...>
101 openat(AT_FDCWD, "/proc/self/fd/5", O_WRONLY|O_CLOEXEC) = 6
101 execve("/usr/local/bin/entrypoint.sh", ["entrypoint.sh"], 0xc0 /* 3 vars */ <unfinished ...>
100 <... futex resumed>)              = ?
101 <... execve resumed>)             = 0
100 <... futex resumed>) = ?
100 +++ exited with 0 +++
101 brk(NULL) = 0x55
101 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|SIGCHLD) = 102
102 setuid(101) = 0
--- SIGCHLD {si_signo=SIGCHLD} ---
102 exit_group(0) = ?
102 +++ exited with 0 +++
`
	got := programCalls(trace)
	want := []string{"brk", "clone", "execve", "exit_group", "setuid"}
	if len(got) != len(want) {
		t.Errorf("programCalls = %v, want %v", got, want)
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("programCalls lacks %s: %v", w, got)
		}
	}
}

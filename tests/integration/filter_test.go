package integration

import (
	"slices"
	"testing"

	"github.com/oak-engine/oak/sandbox/policy"
)

// TestInstalledFilterIsTheTable reads the seccomp filter installed on a real
// container's init and its command back from the kernel and asserts both
// are exactly the program compiled from the policy table: someone who adds
// a system call to the table but not to what the sandbox installs (or the
// reverse) fails here.
func TestInstalledFilterIsTheTable(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	id := o.runD(rootfsDir, "sleep", "30")
	e := o.waitRunning(id)
	want, err := policy.Program()
	if err != nil {
		t.Fatal(err)
	}
	cmdPid := waitChildComm(t, e.Pid, "sleep", 5e9)
	for _, pid := range []int{e.Pid, cmdPid} {
		filters, err := policy.InstalledFilters(pid)
		if err != nil {
			t.Fatalf("read filters of pid %d: %v", pid, err)
		}
		if len(filters) != 1 {
			t.Fatalf("pid %d has %d seccomp filters, want exactly 1", pid, len(filters))
		}
		if !slices.Equal(filters[0], want) {
			t.Errorf("pid %d: installed filter (%d instructions) differs from policy.Program() (%d)", pid, len(filters[0]), len(want))
		}
	}
	o.run("rm", "-f", id)
}

package sandbox

import (
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestLimitsCheck: every field is refused below what a container can start
// with or above what the kernel takes, and zero (no limit) passes.
func TestLimitsCheck(t *testing.T) {
	for _, c := range []struct {
		l   Limits
		err string // "" for valid
	}{
		{Limits{}, ""},
		{Limits{MemoryBytes: MinMemoryBytes, Pids: MinPids, CPUMilli: MinCPUMilli, TmpfsBytes: MinTmpfsBytes}, ""},
		{Limits{MemoryBytes: 1 << 30, Pids: MaxPids, CPUMilli: 2000, TmpfsBytes: 1 << 30}, ""},
		{Limits{MemoryBytes: 1}, "memory limit 1 bytes"},
		{Limits{MemoryBytes: MinMemoryBytes - 1}, "at least 6 MiB"},
		{Limits{MemoryBytes: -1}, "memory limit -1"},
		{Limits{Pids: 1}, "at least 2"},
		{Limits{Pids: -1}, "pids limit -1"},
		{Limits{Pids: MaxPids + 1}, "maximum"},
		{Limits{CPUMilli: 9}, "0.01 CPU"},
		{Limits{CPUMilli: -500}, "CPU limit -500"},
		{Limits{TmpfsBytes: 100}, "one page"},
	} {
		err := c.l.Check()
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%+v.Check() = %v, want %q", c.l, err, c.err)
		}
	}
}

// TestValidateJoinedUTS: a task that joins a uts namespace may not set a
// host name; the namespace keeps its owner's.
func TestValidateJoinedUTS(t *testing.T) {
	uts, err := os.Open(os.DevNull) // validate only looks at whether it is set
	if err != nil {
		t.Fatal(err)
	}
	defer uts.Close()
	task := Task{ID: "x", Layers: []string{"/l"}, Scratch: "/s", Args: []string{"sh"}, IDs: IDRange{Host: 1 << 31, Size: 65536}, JoinUTS: uts}
	if err := task.validate(); err != nil {
		t.Errorf("joined uts namespace, no host name: %v", err)
	}
	task.Hostname = "pod"
	if err := task.validate(); err == nil || !strings.Contains(err.Error(), "joined uts namespace") {
		t.Errorf("joined uts namespace with host name: %v, want a refusal", err)
	}
}

// A read-only path is bound onto itself and then made read-only, after
// the tmpfs mounts, skipped where the image lacks it; one in a file
// system Oak mounts itself is refused.
func TestReadOnlyPaths(t *testing.T) {
	task := &Task{ID: "x", Layers: []string{"/l"}, Scratch: "/s", Args: []string{"sh"},
		IDs: IDRange{Host: 1 << 20, Size: 1 << 16}, Tmpfs: []string{"/run"}, ReadOnlyPaths: []string{"/etc/keys"}}
	if err := task.validate(); err != nil {
		t.Fatal(err)
	}
	ops := mountPlan(task)
	n := len(ops)
	if n < 3 || ops[n-3].target != "run" {
		t.Fatalf("plan ends %+v, want the tmpfs on run before the read-only path", ops[max(n-3, 0):])
	}
	bind, ro := ops[n-2], ops[n-1]
	if bind.source != "." || bind.target != "etc/keys" || bind.flags != unix.MS_BIND|unix.MS_REC || !bind.optional {
		t.Errorf("bind op %+v", bind)
	}
	if ro.source != "." || ro.target != "etc/keys" || ro.flags != bindRO || !ro.optional {
		t.Errorf("read-only op %+v", ro)
	}
	task.Groups = []uint32{5, 1<<16 - 1}
	if err := task.validate(); err != nil {
		t.Errorf("groups in the block: %v", err)
	}
	task.Groups = []uint32{1 << 16}
	if err := task.validate(); err == nil || !strings.Contains(err.Error(), "supplementary group 65536") {
		t.Errorf("group outside the block: %v, want a refusal", err)
	}
	task.Groups = nil
	for _, p := range []string{"/proc/sys", "/tmp/x", "etc", "/"} {
		task.ReadOnlyPaths = []string{p}
		if err := task.validate(); err == nil || !strings.Contains(err.Error(), "read-only path") {
			t.Errorf("read-only path %q: %v, want a refusal", p, err)
		}
	}
}

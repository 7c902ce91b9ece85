package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseMeminfo(t *testing.T) {
	in := `MemTotal:       24683828 kB
MemFree:        20000000 kB
MemAvailable:   23000000 kB
Shmem:              9840 kB
Slab:             146416 kB
SReclaimable:     111248 kB
SUnreclaim:        35168 kB
KernelStack:        2032 kB
PageTables:         2912 kB
HugePages_Total:       0
`
	m, err := parseMeminfo(in)
	if err != nil {
		t.Fatal(err)
	}
	want := Meminfo{Slab: 146416, SUnreclaim: 35168, KernelStack: 2032, PageTables: 2912, Shmem: 9840, Used: 1683828}
	if m != want {
		t.Errorf("parseMeminfo = %+v, want %+v", m, want)
	}
	if k := m.Kernel(); k != 146416+2032+2912+9840 {
		t.Errorf("Kernel() = %d", k)
	}
	if d := want.sub(Meminfo{Slab: 416, Used: 828}); d.Slab != 146000 || d.Used != 1683000 || d.Shmem != 9840 {
		t.Errorf("sub = %+v", d)
	}
	if _, err := parseMeminfo("MemTotal: 1 kB\nSlab: 2 kB\n"); err == nil || !strings.Contains(err.Error(), "MemAvailable") {
		t.Errorf("meminfo without MemAvailable: %v", err)
	}
	if _, err := readMeminfo(); err != nil && !os.IsNotExist(err) {
		t.Errorf("this host's meminfo: %v", err)
	}
}

func TestParseKiBFields(t *testing.T) {
	in := "Rss:                1236 kB\nPss:                 183 kB\nPss_Anon:  x kB\nbogus\nAnonymous: 12 MB\nHugePages_Total: 0\n"
	got := parseKiBFields(in)
	want := map[string]int64{"Rss": 1236, "Pss": 183}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseKiBFields = %v, want %v", got, want)
	}
}

func FuzzParseMeminfo(f *testing.F) {
	f.Add("MemTotal: 10 kB\nMemAvailable: 5 kB\nSlab: 1 kB\nSUnreclaim: 1 kB\nKernelStack: 1 kB\nPageTables: 1 kB\nShmem: 0 kB\n")
	f.Add("Pss: 99999999999999999999 kB\n:::\n")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseMeminfo(s)
		if err != nil && m != (Meminfo{}) {
			t.Errorf("error %v with values %+v", err, m)
		}
		for k := range parseKiBFields(s) {
			if strings.Contains(k, "\n") {
				t.Errorf("field name %q spans lines", k)
			}
		}
	})
}

func TestNsPid(t *testing.T) {
	tests := []struct {
		status string
		want   int
	}{
		{"Name:\tsleep\nNSpid:\t4242\t1\nThreads:\t1\n", 1},
		{"NSpid:\t4242\t7\t2\n", 2},
		{"NSpid:\t4242\n", 4242},
		{"NSpid:\n", 0},
		{"Name:\tx\n", 0},
	}
	for _, tt := range tests {
		if got := nsPid(tt.status); got != tt.want {
			t.Errorf("nsPid(%q) = %d, want %d", tt.status, got, tt.want)
		}
	}
}

func TestOakContainerOf(t *testing.T) {
	tests := []struct {
		cgroup, want string
	}{
		{"8:pids:/oak/abc123\n4:memory:/oak/abc123\n0::/\n", "abc123"},
		{"0::/oak/def\n", "def"},
		{"4:memory:/process_api/558c\n8:pids:/\n0::/\n", ""},
		{"8:pids:/oak\n", ""},
		{"8:pids:/oak/\n", ""},
		{"8:pids:/other/oak-x/abc\n", ""},
		{"garbage", ""},
	}
	for _, tt := range tests {
		if got := oakContainerOf(tt.cgroup); got != tt.want {
			t.Errorf("oakContainerOf(%q) = %q, want %q", tt.cgroup, got, tt.want)
		}
	}
}

func TestOakHostRole(t *testing.T) {
	root := "/tmp/bench/oak-root"
	tests := []struct {
		argv []string
		want string
	}{
		{[]string{"/bin/oak", "--root", root, "_supervise", "abc"}, RoleSupervisor},
		{[]string{"/bin/oak", "--root", root, "_netsvc"}, RoleService},
		{[]string{"/bin/oak", "--root", "/var/lib/oak", "_supervise", "abc"}, ""},
		{[]string{"/bin/oak", "--root"}, ""},
		{[]string{"sleep", "3600"}, ""},
	}
	for _, tt := range tests {
		if got := oakHostRole(tt.argv, root); got != tt.want {
			t.Errorf("oakHostRole(%q) = %q, want %q", tt.argv, got, tt.want)
		}
	}
}

func TestDensityDerive(t *testing.T) {
	rep := &DensityReport{Variants: []*DensityResult{
		{Name: VariantPlain, Started: 10,
			Roles:  summarizeRoles([]proc{{role: RoleApp, pssKiB: 100, threads: 1}, {role: RoleApp, pssKiB: 100, threads: 1}}),
			Kernel: Meminfo{Slab: 60, KernelStack: 20, PageTables: 20}},
		{Name: VariantOak, Started: 2,
			Roles: summarizeRoles([]proc{
				{role: RoleSupervisor, pssKiB: 4000, rssKiB: 9000, threads: 7},
				{role: RoleApp, pssKiB: 180, threads: 1},
				{role: RoleInit, pssKiB: 150, threads: 1},
				{role: RoleApp, pssKiB: 180, threads: 1},
				{role: RoleSupervisor, pssKiB: 4000, threads: 7},
			}),
			Kernel: Meminfo{Slab: 3000, KernelStack: 200, PageTables: 600, Shmem: 200}},
		{Name: VariantRunc, Skipped: "runc not found"},
	}}
	rep.derive()
	oak := rep.Result(VariantOak)
	wantRoles := []RoleSummary{
		{Role: RoleApp, Processes: 2, Threads: 2, PSSKiB: 360},
		{Role: RoleInit, Processes: 1, Threads: 1, PSSKiB: 150},
		{Role: RoleSupervisor, Processes: 2, Threads: 14, PSSKiB: 8000, RSSKiB: 9000},
	}
	if !reflect.DeepEqual(oak.Roles, wantRoles) {
		t.Errorf("roles = %+v, want %+v", oak.Roles, wantRoles)
	}
	// plain: kernel 100/10 = 10 KiB a process. oak: 4000/2 = 2000 KiB a
	// container, 1990 beyond plain's; processes (8000+150)/2 = 4075.
	if oak.AppKiB != 180 || oak.RuntimeProcKiB != 4075 || oak.KernelKiB != 2000 ||
		oak.RuntimeKernelKiB != 1990 || oak.RuntimeKiB != 6065 || oak.Threads != 8.5 {
		t.Errorf("oak per container: %+v", oak)
	}
	if p := rep.Result(VariantPlain); p.AppKiB != 20 || p.RuntimeKiB != 0 || p.KernelKiB != 10 {
		t.Errorf("plain per container: %+v", p)
	}
	var buf bytes.Buffer
	if err := rep.Print(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"oak runtime memory per container: 6065 KiB, target <= 1024 KiB: missed", "runc: skipped: runc not found",
		"oak      supervisor          2       14     8000     9000             4000.0"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("Print lacks %q:\n%s", want, buf.String())
		}
	}
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		TargetKiB int `json:"target_runtime_kib_per_container"`
		Variants  []struct {
			Name       string          `json:"name"`
			Skipped    string          `json:"skipped"`
			RuntimeKiB float64         `json:"runtime_kib_per_container"`
			Roles      []RoleSummary   `json:"roles"`
			Kernel     map[string]int  `json:"kernel_delta"`
			Extra      json.RawMessage `json:"-"`
		} `json:"variants"`
	}
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.TargetKiB != 1024 || len(back.Variants) != 3 || back.Variants[1].RuntimeKiB != 6065 ||
		len(back.Variants[1].Roles) != 3 || back.Variants[1].Kernel["slab_kib"] != 3000 ||
		back.Variants[2].Skipped != "runc not found" || back.Variants[2].Roles == nil {
		t.Errorf("JSON: %s", data)
	}
}

// A small density run of plain processes: they are found, measured and
// gone afterwards.
func TestDensityPlain(t *testing.T) {
	root := testRootFS(t)
	rep, err := Density(context.Background(), DensityConfig{
		RootFS: root, Variants: []string{VariantPlain}, Count: 5, Jobs: 2,
		Settle: time.Millisecond, KeepCaches: true, WorkDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	p := rep.Result(VariantPlain)
	if p == nil || p.Error != "" || p.Started != 5 {
		t.Fatalf("plain: %+v", p)
	}
	if len(p.Roles) != 1 || p.Roles[0].Role != RoleApp || p.Roles[0].Processes != 5 || p.Roles[0].Threads != 5 || p.Roles[0].PSSKiB <= 0 {
		t.Errorf("roles %+v", p.Roles)
	}
	if p.AppKiB <= 0 || p.RuntimeProcKiB != 0 || p.StartRate <= 0 {
		t.Errorf("per container: %+v", p)
	}
	// Fewer than ten: a milestone per start, in order.
	if len(p.Milestones) != 5 || !slices.IsSorted(p.Milestones) || p.Milestones[4] > p.StartTime {
		t.Errorf("milestones %v of start time %v", p.Milestones, p.StartTime)
	}
	if rep.Limits.PidMax <= 0 || rep.Limits.MemTotalKiB <= 0 {
		t.Errorf("limits %+v", rep.Limits)
	}
}

func TestDensityRefuses(t *testing.T) {
	root := testRootFS(t)
	tests := []struct {
		cfg  DensityConfig
		want string
	}{
		{DensityConfig{RootFS: root, Count: -1}, "count -1"},
		{DensityConfig{RootFS: root, Count: maxDensityCount + 1}, "count"},
		{DensityConfig{RootFS: root, Jobs: -2}, "jobs -2"},
		{DensityConfig{RootFS: root, Variants: []string{"kata"}}, `unknown variant "kata"`},
		{DensityConfig{}, "no root file system"},
	}
	for _, tt := range tests {
		_, err := Density(context.Background(), tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: err = %v, want one containing %q", tt.cfg, err, tt.want)
		}
	}
}

// A process that leaves a child holding its stderr does not make
// runDetached wait for the child.
func TestRunDetachedDoesNotWaitForChildren(t *testing.T) {
	start := time.Now()
	out, err := detachedOutput(context.Background(), []string{"/bin/sh", "-c", "sleep 30 & echo $!"})
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(out)
	if pid == "" {
		t.Fatal("no pid printed")
	}
	if n, err := strconv.Atoi(pid); err == nil {
		syscall.Kill(n, syscall.SIGKILL)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("waited %v for the background child", d)
	}
	if _, err := detachedOutput(context.Background(), []string{"/bin/sh", "-c", "echo boom >&2; exit 3"}); err == nil ||
		!strings.Contains(err.Error(), "boom") || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("failing command: %v", err)
	}
}

// When a start fails at scale, the report names how many started and the
// cause, and everything that started is removed.
func TestDensityStartFailure(t *testing.T) {
	root := testRootFS(t)
	dir := t.TempDir()
	oak := standIn(t, `
case "$3 $4" in
"run --rm") exit 0 ;;
"run -d")
	n=$(ls `+dir+` | wc -l)
	if [ "$n" -ge 3 ]; then echo "run: 3 containers are live; no id range left" >&2; exit 125; fi
	id=$(mktemp `+dir+`/idXXXXXX); basename "$id" ;;
"ps -aq") ls `+dir+` ;;
"rm -f") shift 4; for id in "$@"; do rm `+dir+`/"$id" || exit 1; done ;;
*) echo "unexpected: $*" >&2; exit 2 ;;
esac
`)
	rep, err := Density(context.Background(), DensityConfig{
		RootFS: root, Variants: []string{VariantOak}, OakPath: oak, Count: 10, Jobs: 1,
		Settle: time.Millisecond, KeepCaches: true, WorkDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	v := rep.Result(VariantOak)
	if v.Started != 3 || !strings.Contains(v.Error, "after 3 started") || !strings.Contains(v.Error, "no id range left") {
		t.Errorf("oak: started %d, error %q", v.Started, v.Error)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("%d containers left", len(left))
	}
}

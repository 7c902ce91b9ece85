package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// DensityTargetKiB is the goal for the memory a runtime itself uses per
// idle container, beyond the application: 1 MiB.
const DensityTargetKiB = 1024

// DensityReport is the outcome of the density benchmark. It marshals to
// JSON with times in seconds and memory in KiB.
type DensityReport struct {
	Benchmark   string
	Description string
	// Count is how many containers each variant was to start; Jobs how
	// many starts were in flight at once.
	Count int
	Jobs  int
	// Limits are the host's, read before the first start.
	Limits Limits
	// Variants has one entry per variant, skipped and failed ones included.
	Variants []*DensityResult
}

// DensityResult is what one variant measured.
type DensityResult struct {
	Name    string
	Detail  string
	Skipped string
	// Error, if not empty, is what went wrong: a start that failed (the
	// figures are then of the ones that started), a reading or a removal.
	Error string
	// Started is how many containers were running when measured;
	// StartTime how long starting them took, StartRate Started per second;
	// RemoveTime how long removing them took.
	Started    int
	StartTime  time.Duration
	StartRate  float64
	RemoveTime time.Duration
	// Milestones are the times from the first start at which each tenth
	// of the count had started: how the start rate changes with the
	// number of containers held.
	Milestones []time.Duration
	// Roles sums the processes found, per role (RoleApp, RoleInit,
	// RoleSupervisor, RoleService), in that order.
	Roles []RoleSummary
	// Kernel is the change of the host's meminfo fields from before the
	// first start to after the last (totals, not per container).
	Kernel Meminfo

	// Per container, in KiB, filled in by derive:
	// AppKiB is the PSS of the application's processes.
	AppKiB float64
	// RuntimeProcKiB is the PSS of the runtime's own processes (every role
	// but RoleApp).
	RuntimeProcKiB float64
	// KernelKiB is Kernel.Kernel() / Started.
	KernelKiB float64
	// RuntimeKernelKiB is KernelKiB less the plain variant's KernelKiB (the
	// kernel memory of a bare application process), or KernelKiB if plain
	// was not measured.
	RuntimeKernelKiB float64
	// RuntimeKiB is RuntimeProcKiB + RuntimeKernelKiB: the memory the
	// runtime itself uses per container, beyond the application.
	RuntimeKiB float64
	// Threads is the number of threads per container, all roles.
	Threads float64
}

// RoleSummary is the processes of one role.
type RoleSummary struct {
	Role      string `json:"role"`
	Processes int    `json:"processes"`
	Threads   int    `json:"threads"`
	PSSKiB    int64  `json:"pss_kib"`
	RSSKiB    int64  `json:"rss_kib"`
}

// roleOrder is the order of RoleSummary entries.
var roleOrder = []string{RoleApp, RoleInit, RoleSupervisor, RoleService}

// summarizeRoles sums procs per role, in roleOrder.
func summarizeRoles(procs []proc) []RoleSummary {
	by := map[string]*RoleSummary{}
	for _, p := range procs {
		s := by[p.role]
		if s == nil {
			s = &RoleSummary{Role: p.role}
			by[p.role] = s
		}
		s.Processes++
		s.Threads += p.threads
		s.PSSKiB += p.pssKiB
		s.RSSKiB += p.rssKiB
	}
	var out []RoleSummary
	for _, r := range roleOrder {
		if s := by[r]; s != nil {
			out = append(out, *s)
		}
	}
	return out
}

// Result returns the named variant's result, or nil.
func (r *DensityReport) Result(name string) *DensityResult {
	for _, v := range r.Variants {
		if v.Name == name {
			return v
		}
	}
	return nil
}

// derive computes the per-container figures of every variant that started
// containers.
func (r *DensityReport) derive() {
	var plainKernel float64
	havePlain := false
	if p := r.Result(VariantPlain); p != nil && p.Started > 0 {
		plainKernel = float64(p.Kernel.Kernel()) / float64(p.Started)
		havePlain = true
	}
	for _, v := range r.Variants {
		if v.Started == 0 {
			continue
		}
		n := float64(v.Started)
		var app, own, threads float64
		for _, s := range v.Roles {
			if s.Role == RoleApp {
				app += float64(s.PSSKiB)
			} else {
				own += float64(s.PSSKiB)
			}
			threads += float64(s.Threads)
		}
		v.AppKiB = round(app/n, 1)
		v.RuntimeProcKiB = round(own/n, 1)
		v.Threads = round(threads/n, 2)
		v.KernelKiB = round(float64(v.Kernel.Kernel())/n, 1)
		v.RuntimeKernelKiB = v.KernelKiB
		if havePlain {
			v.RuntimeKernelKiB = round(v.KernelKiB-plainKernel, 1)
		}
		v.RuntimeKiB = round(v.RuntimeProcKiB+v.RuntimeKernelKiB, 1)
	}
}

// MarshalJSON writes r with times in seconds and memory in KiB.
func (r DensityReport) MarshalJSON() ([]byte, error) {
	type variant struct {
		Name             string        `json:"name"`
		Detail           string        `json:"detail,omitempty"`
		Skipped          string        `json:"skipped,omitempty"`
		Error            string        `json:"error,omitempty"`
		Started          int           `json:"started"`
		StartS           float64       `json:"start_s"`
		StartRate        float64       `json:"start_per_s"`
		RemoveS          float64       `json:"remove_s"`
		MilestonesS      []float64     `json:"tenths_started_s"`
		Roles            []RoleSummary `json:"roles"`
		Kernel           Meminfo       `json:"kernel_delta"`
		AppKiB           float64       `json:"app_kib_per_container"`
		RuntimeProcKiB   float64       `json:"runtime_processes_kib_per_container"`
		KernelKiB        float64       `json:"kernel_kib_per_container"`
		RuntimeKernelKiB float64       `json:"runtime_kernel_kib_per_container"`
		RuntimeKiB       float64       `json:"runtime_kib_per_container"`
		Threads          float64       `json:"threads_per_container"`
	}
	out := struct {
		Benchmark   string    `json:"benchmark"`
		Description string    `json:"description"`
		Count       int       `json:"count"`
		Jobs        int       `json:"jobs"`
		TargetKiB   int       `json:"target_runtime_kib_per_container"`
		Limits      Limits    `json:"limits"`
		Variants    []variant `json:"variants"`
	}{r.Benchmark, r.Description, r.Count, r.Jobs, DensityTargetKiB, r.Limits, []variant{}}
	for _, v := range r.Variants {
		roles := v.Roles
		if roles == nil {
			roles = []RoleSummary{}
		}
		out.Variants = append(out.Variants, variant{
			Name: v.Name, Detail: v.Detail, Skipped: v.Skipped, Error: v.Error,
			Started: v.Started, StartS: round(v.StartTime.Seconds(), 3), StartRate: round(v.StartRate, 2),
			RemoveS: round(v.RemoveTime.Seconds(), 3), MilestonesS: seconds(v.Milestones), Roles: roles, Kernel: v.Kernel,
			AppKiB: v.AppKiB, RuntimeProcKiB: v.RuntimeProcKiB, KernelKiB: v.KernelKiB,
			RuntimeKernelKiB: v.RuntimeKernelKiB, RuntimeKiB: v.RuntimeKiB, Threads: v.Threads,
		})
	}
	return json.Marshal(out)
}

// seconds converts ds to seconds, to the millisecond; never nil.
func seconds(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = round(d.Seconds(), 3)
	}
	return out
}

// Print writes r as tables: starting and removing, memory per container,
// the processes by role, and the kernel's change.
func (r *DensityReport) Print(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s\n%d starts in flight at once. Host: pid_max %d, threads-max %d, %d tasks before, nofile %d, %d MiB available of %d MiB\n\n",
		r.Benchmark, r.Description, r.Jobs, r.Limits.PidMax, r.Limits.ThreadsMax, r.Limits.TasksNow, r.Limits.NoFile,
		r.Limits.MemAvailKiB>>10, r.Limits.MemTotalKiB>>10)

	rows := [][]string{{"variant", "started", "start s", "starts/s", "remove s", "app KiB", "runtime procs KiB", "kernel KiB", "runtime kernel KiB", "runtime KiB", "threads"}}
	for _, v := range r.Variants {
		if v.Skipped != "" {
			rows = append(rows, []string{v.Name, "-"})
			continue
		}
		if v.Started == 0 {
			rows = append(rows, []string{v.Name, "0"})
			continue
		}
		rows = append(rows, []string{v.Name, fmt.Sprint(v.Started),
			fmt.Sprintf("%.2f", v.StartTime.Seconds()), fmt.Sprintf("%.1f", v.StartRate), fmt.Sprintf("%.2f", v.RemoveTime.Seconds()),
			fmt.Sprintf("%.0f", v.AppKiB), fmt.Sprintf("%.0f", v.RuntimeProcKiB), fmt.Sprintf("%.0f", v.KernelKiB),
			fmt.Sprintf("%.0f", v.RuntimeKernelKiB), fmt.Sprintf("%.0f", v.RuntimeKiB), fmt.Sprintf("%.1f", v.Threads)})
	}
	b.WriteString("per container (KiB; runtime = beyond the application: its processes' PSS + kernel memory beyond a plain process's)\n")
	writeTable(&b, rows, 1)
	if oak := r.Result(VariantOak); oak != nil && oak.Started > 0 {
		verdict := "missed"
		if oak.RuntimeKiB <= DensityTargetKiB {
			verdict = "met"
		}
		fmt.Fprintf(&b, "oak runtime memory per container: %.0f KiB, target <= %d KiB: %s\n", oak.RuntimeKiB, DensityTargetKiB, verdict)
	}

	rows = [][]string{{"variant", "started by (s): 10%", "20%", "30%", "40%", "50%", "60%", "70%", "80%", "90%", "100%"}}
	for _, v := range r.Variants {
		if len(v.Milestones) == 0 {
			continue
		}
		row := []string{v.Name}
		for _, m := range v.Milestones {
			row = append(row, fmt.Sprintf("%.2f", m.Seconds()))
		}
		rows = append(rows, row)
	}
	if len(rows) > 1 {
		b.WriteString("\nhow the starts went (each tenth of the count)\n")
		writeTable(&b, rows, 1)
	}

	rows = [][]string{{"variant", "role", "processes", "threads", "PSS KiB", "RSS KiB", "PSS KiB/container"}}
	for _, v := range r.Variants {
		for _, s := range v.Roles {
			rows = append(rows, []string{v.Name, s.Role, fmt.Sprint(s.Processes), fmt.Sprint(s.Threads),
				fmt.Sprint(s.PSSKiB), fmt.Sprint(s.RSSKiB), fmt.Sprintf("%.1f", float64(s.PSSKiB)/float64(max(v.Started, 1)))})
		}
	}
	b.WriteString("\nprocesses by role (totals)\n")
	writeTable(&b, rows, 2)

	rows = [][]string{{"variant", "Slab", "SUnreclaim", "KernelStack", "PageTables", "Shmem", "MemTotal-MemAvailable"}}
	for _, v := range r.Variants {
		if v.Started == 0 {
			continue
		}
		k := v.Kernel
		rows = append(rows, []string{v.Name, fmt.Sprint(k.Slab), fmt.Sprint(k.SUnreclaim), fmt.Sprint(k.KernelStack),
			fmt.Sprint(k.PageTables), fmt.Sprint(k.Shmem), fmt.Sprint(k.Used)})
	}
	b.WriteString("\nhost meminfo change, before first start → after last (KiB, whole host)\n")
	writeTable(&b, rows, 1)

	var notes []string
	for _, v := range r.Variants {
		if v.Detail != "" {
			notes = append(notes, fmt.Sprintf("%s: %s", v.Name, v.Detail))
		}
		if v.Skipped != "" {
			notes = append(notes, fmt.Sprintf("%s: skipped: %s", v.Name, v.Skipped))
		}
		if v.Error != "" {
			notes = append(notes, fmt.Sprintf("%s: ERROR %s", v.Name, v.Error))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n" + strings.Join(notes, "\n") + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

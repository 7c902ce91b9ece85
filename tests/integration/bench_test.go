package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// benchOak is an oak whose benchmarks make their temporary directories in
// a directory of the test's, so that what they leave behind can be found.
func benchOak(t *testing.T) (*oakEnv, string) {
	o := newOak(t)
	tmp := t.TempDir()
	o.env = append(o.env, "TMPDIR="+tmp)
	return o, tmp
}

// checkBenchLeftNothing fails t if a process still runs from tmp or tmp
// still holds anything.
func checkBenchLeftNothing(t *testing.T, tmp string) {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), tmp) {
			t.Errorf("process %s left running: %q", e.Name(), strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("the benchmark left %d entries in its temporary directory, the first %s", len(left), left[0].Name())
	}
}

// One oak bench startup run of every case with tiny counts, as JSON.
func TestBenchStartupSmoke(t *testing.T) {
	needOak(t, false)
	o, tmp := benchOak(t)
	r := o.runTimeout(5*time.Minute, "bench", "startup", "-q", "--json", "--single", "--cold", "--parallel", "2",
		"--first-response", "--runs", "2", "--warmup", "-1", "--cold-runs", "1", "--rounds", "1", "--response-runs", "1")
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	var reps []struct {
		Case     string `json:"case"`
		Parallel int    `json:"parallel"`
		Results  []struct {
			Name     string  `json:"name"`
			Skipped  string  `json:"skipped"`
			N        int     `json:"n"`
			MedianMS float64 `json:"median_ms"`
			RatePerS float64 `json:"rate_per_s"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &reps); err != nil {
		t.Fatalf("%v in %s", err, r.stdout)
	}
	wantCases := []string{"warm", "cold", "parallel", "first-response"}
	wantN := []int{2, 1, 1, 1}
	if len(reps) != len(wantCases) {
		t.Fatalf("%d reports, want %d: %s", len(reps), len(wantCases), r.stdout)
	}
	for i, rep := range reps {
		if rep.Case != wantCases[i] {
			t.Errorf("report %d is %q, want %q", i, rep.Case, wantCases[i])
		}
		// plain, runc, oak (through the daemon and its pool) and
		// oak-direct (--no-daemon), in that order.
		var names []string
		for _, res := range rep.Results {
			names = append(names, res.Name)
		}
		if got := strings.Join(names, ","); got != "plain,runc,oak,oak-direct" {
			t.Fatalf("%s: results %s, want plain,runc,oak,oak-direct", rep.Case, got)
		}
		for _, res := range rep.Results {
			if res.Skipped != "" && res.Name == "runc" {
				continue // runc need not be installed
			}
			if res.N != wantN[i] || res.MedianMS <= 0 {
				t.Errorf("%s %s: n %d median %v ms", rep.Case, res.Name, res.N, res.MedianMS)
			}
			if rep.Case == "parallel" && (rep.Parallel != 2 || res.RatePerS <= 0) {
				t.Errorf("parallel %s: N %d, rate %v", res.Name, rep.Parallel, res.RatePerS)
			}
		}
	}
	checkBenchLeftNothing(t, tmp)
}

// oak bench density finds each oak container's init, command and
// supervisor, and removes them.
func TestBenchDensitySmoke(t *testing.T) {
	needOak(t, false)
	o, tmp := benchOak(t)
	r := o.runTimeout(5*time.Minute, "bench", "density", "-q", "--json", "--variants", "plain,oak",
		"--count", "3", "--jobs", "2", "--settle", "10ms", "--keep-caches")
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	var rep struct {
		Variants []struct {
			Name    string `json:"name"`
			Error   string `json:"error"`
			Started int    `json:"started"`
			Roles   []struct {
				Role      string `json:"role"`
				Processes int    `json:"processes"`
				PSSKiB    int64  `json:"pss_kib"`
			} `json:"roles"`
		} `json:"variants"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("%v in %s", err, r.stdout)
	}
	if len(rep.Variants) != 2 || rep.Variants[1].Name != "oak" {
		t.Fatalf("variants: %s", r.stdout)
	}
	oak := rep.Variants[1]
	if oak.Error != "" || oak.Started != 3 {
		t.Fatalf("oak: %+v", oak)
	}
	roles := map[string]int{}
	for _, s := range oak.Roles {
		roles[s.Role] = s.Processes
		if s.PSSKiB <= 0 {
			t.Errorf("oak %s: PSS %d KiB", s.Role, s.PSSKiB)
		}
	}
	if roles["app"] != 3 || roles["init"] != 3 || roles["supervisor"] != 3 {
		t.Errorf("oak processes by role %v, want 3 of app, init and supervisor", roles)
	}
	checkBenchLeftNothing(t, tmp)
}

// oak bench trace sees the marks of the CLI, the sandbox and nsinit: of
// the supervisor of the daemon's pool that runs the container (whose
// sandbox was cloned ahead, unseen), and with --no-daemon of the CLI that
// does it all.
func TestBenchTraceSmoke(t *testing.T) {
	needOak(t, false)
	o, tmp := benchOak(t)
	for _, c := range []struct {
		flags []string
		want  []string
	}{
		{nil, []string{"cli: main", "engine: record created", "sandbox: root sent", "nsinit: root received",
			"nsinit: filter installed", "nsinit: exec", "sandbox: cgroups removed", "cli: run returned", "exit seen by the caller"}},
		{[]string{"--no-daemon"}, []string{"cli: main", "engine: record created", "sandbox: cloned", "nsinit: start",
			"nsinit: filter installed", "nsinit: exec", "sandbox: cgroups removed", "exit seen by the caller"}},
	} {
		args := append(append([]string{}, c.flags...), "bench", "trace", "--runs", "1", "--json")
		r := o.runTimeout(2*time.Minute, args...)
		if r.code != 0 {
			t.Fatalf("%s", r)
		}
		var rep struct {
			Phases []struct {
				Name string `json:"name"`
				N    int    `json:"n"`
			} `json:"phases"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("%v in %s", err, r.stdout)
		}
		seen := map[string]bool{}
		for _, p := range rep.Phases {
			seen[p.Name] = p.N == 1
		}
		for _, want := range c.want {
			if !seen[want] {
				t.Errorf("oak %s: no phase %q in %s", strings.Join(args, " "), want, r.stdout)
			}
		}
	}
	checkBenchLeftNothing(t, tmp)
}

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestParseMarks(t *testing.T) {
	out := "oak-trace 1500 42 cli: main\nsome container output\noak-trace 1700 1 nsinit: start\n" +
		"oak-trace 2500 42 engine: run with spaces\n"
	marks, err := parseMarks(out, 1000)
	if err != nil {
		t.Fatal(err)
	}
	want := []traceMark{{"cli: main", 500}, {"nsinit: start", 700}, {"engine: run with spaces", 1500}}
	if len(marks) != len(want) {
		t.Fatalf("marks = %+v, want %+v", marks, want)
	}
	for i := range want {
		if marks[i] != want[i] {
			t.Errorf("mark %d = %+v, want %+v", i, marks[i], want[i])
		}
	}
	for _, bad := range []string{"oak-trace x 1 p\n", "oak-trace 12 1\n", "oak-trace 12 1 \n"} {
		if _, err := parseMarks(bad, 0); err == nil {
			t.Errorf("parseMarks(%q) accepted", bad)
		}
	}
}

func FuzzParseMarks(f *testing.F) {
	f.Add("oak-trace 1500 42 cli: main\n")
	f.Add("oak-trace -1 0 x\noak-trace 99999999999999999999 1 y\n")
	f.Fuzz(func(t *testing.T, out string) {
		marks, err := parseMarks(out, 0)
		if err != nil {
			return
		}
		for _, m := range marks {
			if m.phase == "" || strings.Contains(m.phase, "\n") {
				t.Errorf("phase %q", m.phase)
			}
		}
	})
}

func TestParseInitTrace(t *testing.T) {
	out := "init runtime @0.027 ms, 0.10 ms clock, 0 bytes, 0 allocs\n" +
		"init github.com/x/y @1.5 ms, 0.25 ms clock, 120 bytes, 3 allocs\n" +
		"init github.com/x/y @2.0 ms, 0.05 ms clock, 0 bytes, 0 allocs\n" +
		"init broken @x ms, 1 ms clock\nnot an init line\n"
	m, end := parseInitTrace(out)
	if len(m) != 2 || m["runtime"] != 100*time.Microsecond || m["github.com/x/y"] != 300*time.Microsecond {
		t.Errorf("per package = %v", m)
	}
	if end != 2050*time.Microsecond {
		t.Errorf("end = %v, want 2.05ms", end)
	}
}

func FuzzParseInitTrace(f *testing.F) {
	f.Add("init runtime @0.027 ms, 0.10 ms clock, 0 bytes, 0 allocs\n")
	f.Add("init a @NaN ms, Inf ms clock,\n")
	f.Fuzz(func(t *testing.T, out string) {
		m, _ := parseInitTrace(out)
		for pkg := range m {
			if pkg == "" {
				t.Error("empty package name")
			}
		}
	})
}

func TestTracePhases(t *testing.T) {
	ms := time.Millisecond
	runs := [][]traceMark{
		{{"cli: main", 4 * ms}, {"nsinit: start", 10 * ms}, {"sandbox: cloned", 11 * ms}, {"cli: main", 30 * ms}},
		{{"cli: main", 6 * ms}, {"sandbox: cloned", 9 * ms}, {"nsinit: start", 12 * ms}},
		{{"cli: main", 5 * ms}, {"sandbox: cloned", 10 * ms}},
	}
	totals := []time.Duration{20 * ms, 22 * ms, 21 * ms}
	phases := tracePhases(runs, totals)
	var names []string
	for _, p := range phases {
		names = append(names, p.Name)
	}
	if got, want := strings.Join(names, ","), "cli: main,sandbox: cloned,nsinit: start,"+exitPhase; got != want {
		t.Fatalf("order %s, want %s", got, want)
	}
	// cli: main at 4,6,5 (the second mark of run 1 ignored); step from the start.
	// sandbox: cloned at 11,9,10; steps 7,3,5. nsinit: start at 10,12 (two
	// runs); steps from cloned -1,3 → median 1. exit at 21; steps from
	// nsinit: start 10,10 (the run without it is left out).
	want := []TracePhase{
		{Name: "cli: main", N: 3, At: 5 * ms, Delta: 5 * ms, Step: 5 * ms},
		{Name: "sandbox: cloned", N: 3, At: 10 * ms, Delta: 5 * ms, Step: 5 * ms},
		{Name: "nsinit: start", N: 2, At: 11 * ms, Delta: 1 * ms, Step: 1 * ms},
		{Name: exitPhase, N: 3, At: 21 * ms, Delta: 10 * ms, Step: 10 * ms},
	}
	for i := range want {
		if phases[i] != want[i] {
			t.Errorf("phase %d = %+v, want %+v", i, phases[i], want[i])
		}
	}
}

func TestInitSummary(t *testing.T) {
	us := time.Microsecond
	runs := []map[string]time.Duration{
		{"a": 100 * us, "b": 10 * us},
		{"a": 300 * us, "b": 30 * us, "c": 500 * us},
		{"a": 200 * us, "b": 20 * us},
	}
	total, top := initSummary(runs, 2)
	if total != 220*us { // 110, 830, 220
		t.Errorf("total = %v", total)
	}
	// c is 0 in two runs: median 0, so a and b lead.
	if len(top) != 2 || top[0] != (InitPackage{"a", 200 * us}) || top[1] != (InitPackage{"b", 20 * us}) {
		t.Errorf("top = %+v", top)
	}
}

// Trace with a stand-in oak that marks two phases and prints an init
// trace.
func TestTraceStandIn(t *testing.T) {
	oak := standIn(t, `
[ "$3 $4 $5 $6" = "run --rm demo true" ] || { echo "bad args: $*" >&2; exit 2; }
now() { awk '{ printf "%d", $1 * 1000000000 }' /proc/uptime; }
if [ "$OAK_TRACE" = 1 ]; then
	echo "oak-trace $(now) $$ cli: main" >&2
	echo "container output" >&2
	echo "oak-trace $(now) $$ cli: done" >&2
fi
if [ "$GODEBUG" = inittrace=1 ]; then
	echo "init runtime @0.01 ms, 0.10 ms clock, 0 bytes, 0 allocs" >&2
fi
exit 0
`)
	rep, err := Trace(context.Background(), TraceConfig{OakPath: oak, Runs: 2, WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Runs != 2 || len(rep.Phases) != 3 || rep.Phases[2].Name != exitPhase || rep.Total.N != 2 {
		t.Fatalf("report %+v", rep)
	}
	if rep.InitClock != 100*time.Microsecond || len(rep.InitPackages) != 1 {
		t.Errorf("init: %v %+v", rep.InitClock, rep.InitPackages)
	}
	var buf bytes.Buffer
	if err := rep.Print(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"OAK_TRACE=1 " + oak + " --root ", "cli: main", exitPhase, "runtime"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("Print lacks %q:\n%s", want, buf.String())
		}
	}
	data, err := json.Marshal(rep)
	if err != nil || !strings.Contains(string(data), `"step_ms"`) {
		t.Errorf("JSON %s, %v", data, err)
	}

	rep, err = Trace(context.Background(), TraceConfig{OakPath: oak, Runs: 2, Parallel: 3, WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Parallel != 3 || rep.Total.N != 6 || rep.Phases[0].N != 6 || len(rep.InitPackages) != 1 {
		t.Errorf("3 at once, 2 runs: %+v", rep)
	}
	if _, err := Trace(context.Background(), TraceConfig{OakPath: oak, Parallel: -1}); err == nil {
		t.Error("parallel -1 accepted")
	}

	failing := standIn(t, "echo 'launch: boom' >&2\nexit 125\n")
	if _, err := Trace(context.Background(), TraceConfig{OakPath: failing, Runs: 1}); err == nil || !strings.Contains(err.Error(), "launch: boom") {
		t.Errorf("failing oak: %v", err)
	}
}

package conformance

import (
	"bufio"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Outcome of one assertion.
type outcome int

const (
	pass outcome = iota
	fail
	skip
)

func (o outcome) String() string {
	return [...]string{"pass", "fail", "skip"}[o]
}

// assertion is one TAP test line. A validation program that runs
// runtimetest inside the container and wraps its output in one outer
// assertion (util.RuntimeInsideValidate with a TAP writer) gets that
// inner output parsed into inner.
type assertion struct {
	num    int
	desc   string // description, or the skip reason
	result outcome
	diag   map[string]any // the YAML (JSON) block that followed the line
	inner  *tapRun        // runtimetest's own TAP, when wrapped
}

// tapRun is one program's parsed output.
type tapRun struct {
	plan       int // -1: no plan line
	skipAll    string
	assertions []assertion
	lines      int // lines of output
	// orphanDiag is a diagnostic block printed before any assertion (the
	// suite prints a failed set-up's error so, followed by "1..0").
	orphanDiag map[string]any
}

var tapLine = regexp.MustCompile(`^(not )?ok\b\s*(\d+)?\s*(?:-\s*)?(.*)$`)

// parseTAP reads TAP version 13 as runtime-tools' programs print it:
// test lines, "1..N", "# comments" and indented YAML blocks, which
// tap-go writes as JSON. Lines it does not know are ignored. A JSON
// block whose "stdout" is itself TAP is a wrapped runtimetest run: the
// suite prints it before the assertion it belongs to.
func parseTAP(out string) *tapRun {
	run := &tapRun{plan: -1}
	var pending map[string]any // a block not yet given to an assertion
	var last *assertion
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		run.lines++
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "---" && strings.HasPrefix(line, " "):
			var block strings.Builder
			for sc.Scan() {
				l := sc.Text()
				if strings.TrimSpace(l) == "..." {
					break
				}
				block.WriteString(l)
				block.WriteByte('\n')
			}
			var diag map[string]any
			if json.Unmarshal([]byte(block.String()), &diag) != nil {
				continue
			}
			if s, ok := diag["stdout"].(string); ok && strings.Contains(s, "TAP version") {
				pending = diag // a wrapped run: the next assertion's
				continue
			}
			switch {
			case last != nil && last.diag == nil:
				last.diag = diag
			case last == nil && run.orphanDiag == nil:
				run.orphanDiag = diag
			}
		case strings.HasPrefix(line, "1.."):
			n, rest, _ := strings.Cut(strings.TrimPrefix(line, "1.."), " ")
			if v, err := strconv.Atoi(n); err == nil {
				run.plan = v
				if r, ok := strings.CutPrefix(strings.TrimSpace(rest), "# SKIP"); ok {
					run.skipAll = strings.TrimSpace(r)
				}
			}
		case tapLine.MatchString(line):
			m := tapLine.FindStringSubmatch(line)
			a := assertion{result: pass, desc: m[3]}
			if m[1] != "" {
				a.result = fail
			}
			a.num, _ = strconv.Atoi(m[2])
			if d, dir, ok := strings.Cut(a.desc, "#"); ok {
				dir = strings.TrimSpace(dir)
				if r, ok := cutFold(dir, "SKIP"); ok {
					a.result = skip
					a.desc = strings.TrimSpace(d)
					if a.desc == "" {
						a.desc = strings.TrimSpace(r)
					}
				} else if _, ok := cutFold(dir, "TODO"); ok {
					a.desc = strings.TrimSpace(d)
				}
			}
			if pending != nil {
				a.inner = parseTAP(pending["stdout"].(string))
				a.diag = pending
				pending = nil
			}
			run.assertions = append(run.assertions, a)
			last = &run.assertions[len(run.assertions)-1]
		}
	}
	return run
}

// cutFold is strings.CutPrefix ignoring case.
func cutFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}

// failure is one reason a program did not pass: a failed assertion (or,
// for a wrapped runtimetest run, each failed inner assertion), or how the
// program itself went wrong.
type failure struct {
	where   string // the outer assertion, "" for the program itself
	subject string // what expected.txt's classes match
}

// verdict sums up a program's run: its failures, and whether it counts
// as passed, failed or skipped. logged is the errors the runtime logged
// on the program's stderr: a failure that says no more than "exit status
// N" or "no assertion ran" gets them added, so that expected.txt can tell
// why.
//
// A program that prints nothing and exits 0 passes: the suite's *_fail
// programs report a runtime's correct refusal so.
func verdict(run *tapRun, exitErr error, logged []string) (outcome, []failure) {
	var fs []failure
	if exitErr != nil {
		fs = append(fs, failure{subject: "exit: " + exitErr.Error()})
	}
	if run.lines == 0 && exitErr == nil {
		return pass, nil
	}
	defer func() {
		for i := range fs {
			if bareExit.MatchString(fs[i].subject) && len(logged) > 0 {
				fs[i].subject += ": " + strings.Join(logged, "; ")
			}
		}
	}()
	for _, a := range run.assertions {
		if a.inner != nil {
			inner := a.inner.failedLeaves()
			for _, d := range inner {
				fs = append(fs, failure{where: a.desc, subject: d})
			}
			if len(inner) > 0 {
				continue
			}
		}
		if a.result != fail {
			continue
		}
		subject := a.desc
		if e, ok := a.diag["error"].(string); ok && (subject == "" || strings.HasPrefix(subject, "exit status")) {
			subject += ": " + firstLine(e)
		}
		fs = append(fs, failure{subject: subject})
	}
	switch {
	case len(run.assertions) == 0 && run.skipAll != "" && exitErr == nil:
		return skip, nil
	case len(run.assertions) == 0:
		why := "no assertion ran"
		if e, ok := run.orphanDiag["error"].(string); ok {
			why += ": " + firstLine(e)
		}
		fs = append(fs, failure{subject: why})
	case run.plan != len(run.assertions):
		fs = append(fs, failure{subject: fmt.Sprintf("plan: %d assertions planned, %d ran", run.plan, len(run.assertions))})
	}
	if len(fs) > 0 {
		return fail, fs
	}
	return pass, nil
}

// failedLeaves is the descriptions of r's failed assertions, a wrapped
// run's failures in place of its wrapper.
func (r *tapRun) failedLeaves() []string {
	var out []string
	for _, a := range r.assertions {
		if a.inner != nil {
			if in := a.inner.failedLeaves(); len(in) > 0 {
				out = append(out, in...)
				continue
			}
		}
		if a.result == fail {
			out = append(out, a.desc)
		}
	}
	return out
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return strings.TrimSpace(s[:i])
	}
	return s
}

// counts is ok, not ok and skipped assertions of a run, inner ones
// counted in place of their wrapper.
func (r *tapRun) counts() (ok, notOK, skipped int) {
	for _, a := range r.assertions {
		if a.inner != nil {
			o, n, s := a.inner.counts()
			if n == 0 && a.result == fail {
				n = 1
			}
			ok, notOK, skipped = ok+o, notOK+n, skipped+s
			continue
		}
		switch a.result {
		case pass:
			ok++
		case fail:
			notOK++
		case skip:
			skipped++
		}
	}
	return ok, notOK, skipped
}

// lastLine is ": " and what s (a program's stderr) says last: the
// message of the last error a runtime logged (level=error msg="..."), or
// else its last line that says something; "" when s is empty.
func lastLine(s string) string {
	if msgs := loggedErrors(s); len(msgs) > 0 {
		return ": " + msgs[len(msgs)-1]
	}
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" && !strings.HasPrefix(l, "Refer to:") && !strings.HasPrefix(l, "exit status") {
			return ": " + l
		}
	}
	return ""
}

// loggedErrors is the messages of the errors logged in s (a program's
// stderr) as level=error msg="...".
func loggedErrors(s string) []string {
	var out []string
	for _, m := range logMsg.FindAllStringSubmatch(s, -1) {
		msg := m[1]
		if u, err := strconv.Unquote(`"` + msg + `"`); err == nil {
			msg = u
		}
		out = append(out, msg)
	}
	return out
}

// bareExit matches a failure that says no more than that something
// exited or that nothing ran.
var bareExit = regexp.MustCompile(`exit status \d+$|^no assertion ran$`)

var logMsg = regexp.MustCompile(`level=error msg="((?:[^"\\]|\\.)*)"`)

func TestLastLine(t *testing.T) {
	cases := map[string]string{
		"":                "",
		"exit status 1\n": "",
		"failed to create the container\ntime=\"x\" level=warning msg=\"w\"\ntime=\"y\" level=error msg=\"config.json: hooks: \\\"no\\\"\"\nexit status 1\n": `: config.json: hooks: "no"`,
		"In the case of X\nRefer to: https://x\n": ": In the case of X",
	}
	for in, want := range cases {
		if got := lastLine(in); got != want {
			t.Errorf("lastLine(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseTAP(t *testing.T) {
	inner := "TAP version 13\nok 1 - has expected hostname\nnot ok 2 - expected bounding capability CAP_MKNOD set\nok 3 # SKIP linux.sysctl not set\n1..3\n"
	wrapped, _ := json.Marshal(map[string]string{"stdout": inner})
	cases := []struct {
		name     string
		out      string
		exitErr  error
		want     outcome
		failures []string
		ok, bad  int
		skipped  int
		logged   []string
	}{
		{"all pass", "TAP version 13\nok 1 - create MUST create\n  ---\n  {\n    \"error\": \"exit status 1\"\n  }\n  ...\nok 2 - state\n1..2\n", nil, pass, nil, 2, 0, 0, nil},
		{"one fails", "TAP version 13\nok 1 - a\nnot ok 2 - b\n1..2\n", nil, fail, []string{"b"}, 1, 1, 0, nil},
		{"plan short", "TAP version 13\nok 1 - a\n1..2\n", nil, fail, []string{"plan: 2 assertions planned, 1 ran"}, 1, 0, 0, nil},
		{"no plan", "TAP version 13\nok 1 - a\n", nil, fail, []string{"plan: -1 assertions planned, 1 ran"}, 1, 0, 0, nil},
		{"skip and todo", "ok 1 # SKIP not set\nnot ok 2 - x # TODO later\n1..2\n", nil, fail, []string{"x"}, 0, 1, 1, nil},
		{"set-up error", "TAP version 13\n  ---\n  {\n    \"error\": \"Hooks MUST be called\\nRefer to: x\"\n  }\n  ...\n1..0\n", nil, fail, []string{"no assertion ran: Hooks MUST be called"}, 0, 0, 0, nil},
		{"skip all", "TAP version 13\n1..0 # SKIP no cgroup v1\n", nil, skip, nil, 0, 0, 0, nil},
		{"exit", "TAP version 13\n", fmt.Errorf("exit status 1"), fail, []string{"exit: exit status 1", "no assertion ran"}, 0, 0, 0, nil},
		{"error detail", "not ok 1 - exit status 1\n  ---\n  {\n    \"error\": \"open x: no such file\"\n  }\n  ...\n1..1\n", nil, fail, []string{"exit status 1: open x: no such file"}, 0, 1, 0, nil},
		{"silent success", "", nil, pass, nil, 0, 0, 0, nil},
		{"silent failure", "", fmt.Errorf("exit status 1"), fail, []string{"exit: exit status 1: no", "no assertion ran: no"}, 0, 0, 0, []string{"no"}},
		{"bare exit explained", "not ok 1 - exit status 1\n1..1\n", nil, fail, []string{`exit status 1: config.json: hooks: x; y`}, 0, 1, 0, []string{"config.json: hooks: x", "y"}},
		{"wrapped", "TAP version 13\n  ---\n  " + string(wrapped) + "\n  ...\nnot ok 1 - check hostname \"h\"\n1..1\n", nil, fail,
			[]string{"expected bounding capability CAP_MKNOD set"}, 1, 1, 1, nil},
	}
	for _, c := range cases {
		run := parseTAP(c.out)
		got, fs := verdict(run, c.exitErr, c.logged)
		var subjects []string
		for _, f := range fs {
			subjects = append(subjects, f.subject)
		}
		if got != c.want || strings.Join(subjects, "|") != strings.Join(c.failures, "|") {
			t.Errorf("%s: verdict %v %q, want %v %q", c.name, got, subjects, c.want, c.failures)
		}
		if ok, bad, sk := run.counts(); ok != c.ok || bad != c.bad || sk != c.skipped {
			t.Errorf("%s: counts %d/%d/%d, want %d/%d/%d", c.name, ok, bad, sk, c.ok, c.bad, c.skipped)
		}
	}
}

// FuzzParseTAP checks that any output parses without panicking and that
// a program with a failed assertion never passes.
func FuzzParseTAP(f *testing.F) {
	f.Add("TAP version 13\nok 1 - a\nnot ok 2 - b\n1..2\n")
	f.Add("  ---\n  {\"stdout\": \"TAP version 13\\nnot ok 1 - x\\n1..1\"}\n  ...\nnot ok 1 - y\n1..1\n")
	f.Add("1..0 # SKIP why\n")
	f.Add("ok 1 # skip\n  ---\n  {\"error\": 3}\n  ...\n")
	f.Fuzz(func(t *testing.T, out string) {
		run := parseTAP(out)
		v, fs := verdict(run, nil, []string{"x"})
		_, bad, _ := run.counts()
		if bad > 0 && v != fail {
			t.Fatalf("%d failed assertions but verdict %v", bad, v)
		}
		if (v == fail) != (len(fs) > 0) {
			t.Fatalf("verdict %v with %d failures", v, len(fs))
		}
	})
}

package conformance

import (
	"bufio"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// expectations is expected.txt: why Oak fails what it fails, and which
// programs fail for which of those reasons.
//
//	class NAME REGEXP
//	    one line of reason (indented)
//	hostclass NAME REGEXP
//	    a class whose failure depends on the host's own settings
//	PROGRAM pass
//	PROGRAM fail NAME[,NAME...]
//	PROGRAM flaky NAME[,NAME...]
//
// A failure of a program matches a class when the class's regular
// expression matches its subject: a failed assertion's description (a
// wrapped runtimetest's own failed assertions count in place of their
// wrapper), "exit: ..." when the program itself failed, "no assertion
// ran: ..." or "plan: ...".
type expectations struct {
	classes  map[string]*class
	order    []string // class names as listed
	programs map[string]expectation
}

type class struct {
	name   string
	re     *regexp.Regexp
	reason string
	// host: whether it fails depends on the host (a setting the
	// container inherits from it), so a program listing it need not
	// fail for it on every host.
	host bool
}

type expectation struct {
	pass    bool
	flaky   bool // may pass; fails only for its classes
	classes []string
}

var (
	nameRE    = regexp.MustCompile(`^[a-z0-9_-]+$`)
	classLine = regexp.MustCompile(`^(class|hostclass)[ \t]+([^ \t]+)[ \t]+(.*?)[ \t]*$`)
)

func parseExpectations(text string) (*expectations, error) {
	e := &expectations{classes: map[string]*class{}, programs: map[string]expectation{}}
	var cur *class
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		bad := func(format string, args ...any) error {
			return fmt.Errorf("expected.txt:%d: %s", n, fmt.Sprintf(format, args...))
		}
		if line[0] == ' ' || line[0] == '\t' {
			if cur == nil {
				return nil, bad("reason outside a class")
			}
			cur.reason = strings.TrimSpace(cur.reason + " " + strings.TrimSpace(line))
			continue
		}
		cur = nil
		f := strings.Fields(line)
		switch {
		case f[0] == "class" || f[0] == "hostclass":
			m := classLine.FindStringSubmatch(line)
			if m == nil || m[3] == "" {
				return nil, bad("want: %s NAME REGEXP", f[0])
			}
			name := m[2]
			if !nameRE.MatchString(name) || e.classes[name] != nil {
				return nil, bad("class name %q is not a new [a-z0-9_-]+ name", name)
			}
			re, err := regexp.Compile(m[3])
			if err != nil {
				return nil, bad("class %s: %v", name, err)
			}
			cur = &class{name: name, re: re, host: m[1] == "hostclass"}
			e.classes[name] = cur
			e.order = append(e.order, name)
		case len(f) == 2 && f[1] == "pass":
			if _, dup := e.programs[f[0]]; dup {
				return nil, bad("program %s listed twice", f[0])
			}
			e.programs[f[0]] = expectation{pass: true}
		case len(f) == 3 && (f[1] == "fail" || f[1] == "flaky"):
			if _, dup := e.programs[f[0]]; dup {
				return nil, bad("program %s listed twice", f[0])
			}
			names := strings.Split(f[2], ",")
			for _, c := range names {
				if e.classes[c] == nil {
					return nil, bad("program %s: class %q not defined above", f[0], c)
				}
			}
			e.programs[f[0]] = expectation{classes: names, flaky: f[1] == "flaky"}
		default:
			return nil, bad("want: PROGRAM pass, PROGRAM fail CLASSES, or class NAME REGEXP")
		}
	}
	for _, name := range e.order {
		if e.classes[name].reason == "" {
			return nil, fmt.Errorf("expected.txt: class %s has no reason", name)
		}
	}
	return e, nil
}

// check compares one program's result under Oak with its expectation and
// returns what is wrong: a failure no listed class explains, a listed
// class that no longer fails (the list must stay honest), or a program
// that passes while listed as failing, or the reverse.
func (e *expectations) check(program string, v outcome, fs []failure) []string {
	exp, ok := e.programs[program]
	if !ok {
		return []string{fmt.Sprintf("%s: not in expected.txt (result: %v)", program, v)}
	}
	var problems []string
	if exp.pass {
		if v == skip {
			return []string{fmt.Sprintf("%s: expected to pass, skipped", program)}
		}
		if v == fail {
			for _, f := range fs {
				problems = append(problems, fmt.Sprintf("%s: expected to pass, fails: %s", program, f.describe()))
			}
		}
		return problems
	}
	if v != fail && !exp.flaky {
		return []string{fmt.Sprintf("%s: listed as failing (%s) but %v now: mark it pass in expected.txt", program, strings.Join(exp.classes, ","), v)}
	}
	used := map[string]bool{}
	for _, f := range fs {
		matched := false
		for _, c := range exp.classes {
			if e.classes[c].re.MatchString(f.subject) {
				used[c], matched = true, true
			}
		}
		if !matched {
			problems = append(problems, fmt.Sprintf("%s: failure not explained by %s: %s", program, strings.Join(exp.classes, ","), f.describe()))
		}
	}
	for _, c := range exp.classes {
		if !used[c] && !exp.flaky && !e.classes[c].host {
			problems = append(problems, fmt.Sprintf("%s: class %s listed but nothing fails for it now: take it out of expected.txt", program, c))
		}
	}
	return problems
}

// unrun is the programs expected.txt lists that did not run.
func (e *expectations) unrun(ran []string) []string {
	var out []string
	for p := range e.programs {
		if !slices.Contains(ran, p) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

func (f failure) describe() string {
	if f.where != "" {
		return f.where + " » " + f.subject
	}
	return f.subject
}

func TestExpectations(t *testing.T) {
	e, err := parseExpectations(`# comment
class caps ^expected \w+ capability CAP_
    Oak grants at most eight capabilities.
class hooks ^no assertion ran: Hooks
    Oak runs no host programs.
hostclass sysctl ^has expected sysctl
    Oak sets no sysctl; the value is the host's.
create pass
default fail caps
hooks fail caps,hooks
pidfile flaky caps,hooks
sysctl fail caps,sysctl
`)
	if err != nil {
		t.Fatal(err)
	}
	capsFail := []failure{{subject: "expected bounding capability CAP_MKNOD set"}}
	cases := []struct {
		program string
		v       outcome
		fs      []failure
		want    []string // substrings, one per problem
	}{
		{"create", pass, nil, nil},
		{"create", fail, capsFail, []string{"expected to pass"}},
		{"create", skip, nil, []string{"expected to pass, skipped"}},
		{"default", fail, capsFail, nil},
		{"default", pass, nil, []string{"now: mark it pass"}},
		{"default", fail, append(capsFail, failure{subject: "has expected hostname"}), []string{"not explained"}},
		{"hooks", fail, capsFail, []string{"class hooks listed but nothing fails"}},
		{"other", pass, nil, []string{"not in expected.txt"}},
		{"pidfile", pass, nil, nil},
		{"pidfile", fail, capsFail, nil},
		{"pidfile", fail, []failure{{subject: "has expected hostname"}}, []string{"not explained"}},
		{"sysctl", fail, append(capsFail, failure{subject: "has expected sysctl net.ipv4.ip_forward"}), nil},
		{"sysctl", fail, capsFail, nil}, // the host's value happened to be the bundle's
		{"sysctl", fail, []failure{{subject: "has expected sysctl net.ipv4.ip_forward"}}, []string{"class caps listed but nothing fails"}},
	}
	for _, c := range cases {
		got := e.check(c.program, c.v, c.fs)
		if len(got) != len(c.want) {
			t.Errorf("%s %v: problems %q, want %d", c.program, c.v, got, len(c.want))
			continue
		}
		for i := range got {
			if !strings.Contains(got[i], c.want[i]) {
				t.Errorf("%s %v: problem %q, want it to say %q", c.program, c.v, got[i], c.want[i])
			}
		}
	}
	if got := e.unrun([]string{"create", "default", "pidfile", "sysctl"}); !slices.Equal(got, []string{"hooks"}) {
		t.Errorf("unrun = %q, want [hooks]", got)
	}
	for _, bad := range []string{
		"class caps (\n  x\n",              // bad regexp
		"class caps x\n",                   // no reason
		"hostclass caps\n  y\n",            // no regexp
		"default fail nosuch\n",            // undefined class
		"create pass\ncreate pass\n",       // twice
		"  reason first\n",                 // reason outside a class
		"create maybe\n",                   // unknown verdict
		"class Caps x\n  y\n",              // bad name
		"class a x\n  r\nclass a y\n  r\n", // duplicate class
	} {
		if _, err := parseExpectations(bad); err == nil {
			t.Errorf("parseExpectations(%q) accepted it", bad)
		}
	}
}

// FuzzParseExpectations: any text either is refused or gives classes
// that all have a reason and programs whose classes all exist.
func FuzzParseExpectations(f *testing.F) {
	f.Add("class caps ^x\n  why\ndefault fail caps\ncreate pass\n")
	f.Add("class a (\n")
	f.Fuzz(func(t *testing.T, text string) {
		e, err := parseExpectations(text)
		if err != nil {
			return
		}
		for _, c := range e.classes {
			if c.reason == "" {
				t.Fatalf("class %s without a reason", c.name)
			}
		}
		for p, exp := range e.programs {
			for _, c := range exp.classes {
				if e.classes[c] == nil {
					t.Fatalf("program %s names undefined class %s", p, c)
				}
			}
		}
	})
}

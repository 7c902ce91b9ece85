//go:build linux

package integration

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestTenantFactories: through the daemon, tenant a makes a sub-factory
// of its own factory out of its quota, sees it and its own factory by
// its names, runs a container from it and removes it; tenant b is told
// of a's factories, by any name, exactly what it is told of one that
// does not exist; root sees the sub-factory as a.NAME under a.
func TestTenantFactories(t *testing.T) {
	needOak(t, true)
	o := newTenantOak(t)
	if r := o.as(uidA, "factory", "create", "--memory", "128m", "--pids", "32", "--disk", "1g", "sub"); r.code != 0 || r.stdout != "sub\n" {
		t.Fatalf("tenant a's factory create\n%s", r)
	}
	if r := o.as(uidA, "factory", "create", "--memory", "512m", "--pids", "32", "--disk", "1g", "big"); r.code == 0 || !strings.Contains(r.stderr, "does not fit") {
		t.Errorf("tenant a's factory above its quota: want a refusal\n%s", r)
	}
	if r := o.as(uidA, "factory", "ls", "-q"); r.code != 0 || r.stdout != "a\nsub\n" {
		t.Errorf("tenant a's factory ls: want a and sub\n%s", r)
	}
	var fs []struct {
		Name, Parent, Group string
		Limit               struct{ MemoryBytes int64 }
	}
	if r := o.as(uidA, "factory", "inspect", "sub"); r.code != 0 || json.Unmarshal([]byte(r.stdout), &fs) != nil || len(fs) != 1 ||
		fs[0].Name != "sub" || fs[0].Parent != "a" || fs[0].Group != "" || fs[0].Limit.MemoryBytes != 128<<20 {
		t.Errorf("tenant a's factory inspect sub: want sub under a, 128 MiB, no group\n%s", r)
	}
	if f := o.inspectFactory("a.sub"); f.Parent != "a" || f.Limit.MemoryBytes != 128<<20 {
		t.Errorf("root's view of a's sub-factory: %+v", f)
	}
	if r := o.as(uidB, "factory", "ls", "-q"); r.code != 0 || r.stdout != "b\n" {
		t.Errorf("tenant b's factory ls: want b only\n%s", r)
	}
	// b, on a's factories by every name: what a missing one gets.
	for _, verb := range [][]string{{"factory", "inspect"}, {"factory", "rm"}, {"factory", "rm", "-f"},
		{"factory", "create", "--memory", "64m", "--pids", "16", "--disk", "100m", "--parent", "REF", "x"}, {"run", "-d", "--factory", "REF", "demo", "true"}} {
		for _, ref := range []string{"sub", "a.sub", "a"} {
			got := o.as(uidB, withRef(verb, ref)...)
			missing := o.as(uidB, withRef(verb, "nosuchthing")...)
			want := strings.ReplaceAll(missing.stderr, "nosuchthing", ref)
			if got.code == 0 || got.code != missing.code || got.stderr != want {
				t.Errorf("tenant b: oak %s: exit %d %q; for a factory that does not exist: exit %d %q",
					strings.Join(withRef(verb, ref), " "), got.code, got.stderr, missing.code, missing.stderr)
			}
		}
	}
	// a runs from its sub-factory, by its name for it.
	r := o.as(uidA, "run", "-d", "--factory", "sub", "--name", "insub", "demo", "sleep", "600")
	if r.code != 0 {
		t.Fatalf("tenant a's run --factory sub\n%s", r)
	}
	id := strings.TrimSpace(r.stdout)
	o.waitRunning(id)
	if f := o.inspectFactory("a.sub"); len(f.Containers) != 1 || f.Containers[0] != "a.insub" {
		t.Errorf("factory a.sub holds %v, want [a.insub]", f.Containers)
	}
	if r := o.as(uidA, "factory", "rm", "a"); r.code == 0 || !strings.Contains(r.stderr, "root's") {
		t.Errorf("tenant a removing its own factory: want a refusal\n%s", r)
	}
	if r := o.as(uidA, "factory", "rm", "sub"); r.code == 0 || !strings.Contains(r.stderr, "has containers") {
		t.Errorf("tenant a removing its busy sub-factory without -f: want a refusal\n%s", r)
	}
	if r := o.as(uidA, "factory", "rm", "-f", "sub"); r.code != 0 {
		t.Errorf("tenant a's factory rm -f sub\n%s", r)
	}
	if _, ok := o.find(id); ok {
		t.Errorf("container %s outlived its factory's rm -f", id)
	}
	if r := o.run("factory", "inspect", "a.sub"); r.code == 0 {
		t.Errorf("a.sub outlived its rm -f\n%s", r)
	}
}

// TestTenantAttach: tenant a attaches to the terminal of its own -dit
// container through the daemon, types into it, detaches, and attaches
// again until it ends with its status; oak start -a follows its own
// container. Tenant b's attach to it is refused as one to a container
// that does not exist (TestTenantsAreConfined checks the verbs alike).
func TestTenantAttach(t *testing.T) {
	needOak(t, true)
	o := newTenantOak(t)
	r := o.as(uidA, "run", "-dit", "--name", "term", "demo", "/bin/sh", "-c", `while read -r l; do eval "$l"; done`)
	if r.code != 0 {
		t.Fatalf("tenant a's run -dit\n%s", r)
	}
	id := strings.TrimSpace(r.stdout)
	o.waitRunning(id)
	attach := func(uid uint32, ref string, input ...string) terminalRun {
		t.Helper()
		return onTestTerminalAs(t, uid, []string{"--root", o.root, "attach", ref}, 300*time.Millisecond, input...)
	}
	got := attach(uidA, "term", "stty size; echo hi-$((40+2))\r", "\x10\x11")
	if got.code != 0 || !strings.Contains(got.out, "hi-42") || !strings.Contains(got.out, "detached") || !strings.Contains(got.out, "33 101") {
		t.Fatalf("tenant a: attach, type, detach: exit %d, output %q", got.code, got.out)
	}
	if e, _ := o.find(id); e.Status != "running" {
		t.Fatalf("after detaching the container is %q, want running", e.Status)
	}
	for _, ref := range []string{"term", id[:12], "a.term"} {
		got, missing := attach(uidB, ref), attach(uidB, "nosuchthing")
		if got.code == 0 || got.code != missing.code || got.out != strings.ReplaceAll(missing.out, "nosuchthing", ref) || !strings.Contains(got.out, "no such container") {
			t.Errorf("tenant b attaching to a's %s: exit %d %q; to a missing one: exit %d %q", ref, got.code, got.out, missing.code, missing.out)
		}
	}
	if got := attach(uidA, "term", "exit 3\r"); got.code != 3 {
		t.Errorf("tenant a's attach when the shell exits 3: exit %d, output %q", got.code, got.out)
	}
	if r := o.run("logs", id); !strings.Contains(r.stdout, "hi-42") {
		t.Errorf("the terminal's log: want a's session in it\n%s", r)
	}
	// oak start -a by a tenant: through the daemon, the new run's output
	// only, and its status.
	r = o.as(uidA, "run", "-d", "--read-only", "--name", "once", "demo", "/bin/sh", "-c", "echo run-$((1+1)); exit 4")
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	o.waitExited(strings.TrimSpace(r.stdout), 20*time.Second)
	if r := o.as(uidA, "start", "-a", "once"); r.code != 4 || r.stdout != "run-2\n" {
		t.Errorf("tenant a's start -a: want run-2 once and exit 4\n%s", r)
	}
	// One with a terminal: start -a attaches to it, as oak attach does.
	r = o.as(uidA, "run", "-dit", "--read-only", "--name", "ttyonce", "demo", "/bin/sh", "-c", "read -t 2 l; echo got-$l; exit 5")
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	o.waitExited(strings.TrimSpace(r.stdout), 20*time.Second)
	got = onTestTerminalAs(t, uidA, []string{"--root", o.root, "start", "-a", "ttyonce"}, 300*time.Millisecond, "hello\r")
	if got.code != 5 || !strings.Contains(got.out, "got-hello") {
		t.Errorf("tenant a's start -a of a -dit container: exit %d, output %q; want got-hello and 5", got.code, got.out)
	}
}

//go:build linux

package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// invoke runs oak function invoke NAME with stdin as its input; env is
// extra environment (OAK_NO_DAEMON=1 to run the engine in-process).
func (o *oakEnv) invoke(stdin string, env []string, name string) result {
	o.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), oakTimeout)
	defer cancel()
	cmd := o.command(ctx, "function", "invoke", name)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{args: []string{"function", "invoke", name}, stdout: stdout.String(), stderr: stderr.String(), code: exitCode(cmd, err)}
	if ctx.Err() != nil {
		o.t.Fatalf("oak function invoke %s did not return within %v\n%s", name, oakTimeout, r)
	}
	return r
}

// function runs oak function create ARGS and removes the function at the
// end of the test.
func (o *oakEnv) function(args ...string) {
	o.t.Helper()
	r := o.run(append([]string{"function", "create"}, args...)...)
	if r.code != 0 {
		o.t.Fatalf("oak function create failed\n%s", r)
	}
	name := strings.TrimSpace(r.stdout)
	o.t.Cleanup(func() {
		if o.run("function", "inspect", name).code == 0 {
			if r := o.run("function", "rm", name); r.code != 0 {
				o.t.Errorf("cleanup: %s", r)
			}
		}
	})
}

// functionInfo is what the tests read of oak function inspect.
type functionInfo struct {
	Name             string
	Factory          string
	Concurrency      int
	Running, Waiting int
	WarmReady        int
}

func (o *oakEnv) inspectFunction(name string) functionInfo {
	o.t.Helper()
	r := o.run("function", "inspect", name)
	var fs []functionInfo
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &fs) != nil || len(fs) != 1 {
		o.t.Fatalf("oak function inspect %s\n%s", name, r)
	}
	return fs[0]
}

// waitFunction polls oak function inspect until cond holds.
func (o *oakEnv) waitFunction(name, what string, cond func(functionInfo) bool) {
	o.t.Helper()
	deadline := time.Now().Add(oakTimeout)
	for {
		f := o.inspectFunction(name)
		if cond(f) {
			return
		}
		if time.Now().After(deadline) {
			o.t.Fatalf("function %s: %s: not within %v (%+v)", name, what, oakTimeout, f)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// invocations lists the running containers of function name.
func (o *oakEnv) invocations(name string) []string {
	o.t.Helper()
	r := o.run("ps", "-q", "--no-trunc", "--filter", "label=oak.function="+name)
	if r.code != 0 {
		o.t.Fatalf("%s", r)
	}
	return lines(r.stdout)
}

// waitInvocations polls until function name has n running containers
// that are not in old, and returns them.
func (o *oakEnv) waitInvocations(name string, n int, old []string) []string {
	o.t.Helper()
	deadline := time.Now().Add(oakTimeout)
	for {
		var fresh []string
		for _, id := range o.invocations(name) {
			if !slices.Contains(old, id) {
				fresh = append(fresh, id)
			}
		}
		if len(fresh) == n {
			return fresh
		}
		if time.Now().After(deadline) {
			o.t.Fatalf("function %s: %d new running invocations, want %d", name, len(fresh), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// apiClient is an HTTP client of o's daemon socket.
func (o *oakEnv) apiClient() *http.Client {
	sock := filepath.Join(o.root, "oak.sock")
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}}
}

func TestFunctionInvoke(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	o.function("echo", "demo", "cat")
	o.function("fail", "demo", "sh", "-c", "echo out; echo err >&2; exit 3")
	o.function("--timeout", "1s", "slow", "demo", "sleep", "600")

	if r := o.invoke("hello\nworld\n", nil, "echo"); r.code != 0 || r.stdout != "hello\nworld\n" {
		t.Errorf("echo: want the input back and status 0\n%s", r)
	}
	for _, env := range [][]string{nil, {"OAK_NO_DAEMON=1"}} {
		r := o.invoke("", env, "fail")
		if r.code != 3 || r.stdout != "out\n" || !strings.Contains(r.stderr, "err\n") {
			t.Errorf("fail %v: want stdout out, stderr err, status 3\n%s", env, r)
		}
	}
	r := o.invoke("", nil, "slow")
	if r.code != 137 || !strings.Contains(r.stderr, "timed out") {
		t.Errorf("slow: want status 137 and a timeout reported\n%s", r)
	}
	if r := o.invoke("", nil, "nope"); r.code == 0 || !strings.Contains(r.stderr, "no such function") {
		t.Errorf("nope: want no such function\n%s", r)
	}

	// The API: body in, stdout out, status and stderr in headers.
	c := o.apiClient()
	resp, err := c.Post("http://oak/v1/functions/fail/invoke", "application/octet-stream", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "out\n" || resp.Header.Get("X-Oak-Exit-Code") != "3" ||
		resp.Header.Get("X-Oak-Stderr") != "ZXJyCg==" || resp.Header.Get("X-Oak-Invocation") == "" {
		t.Errorf("POST invoke: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	resp, err = c.Get("http://oak/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`oak_invocations_total{function="echo",result="ok"} 1`,
		`oak_invocations_total{function="fail",result="error"} 2`, `oak_invocations_total{function="slow",result="timeout"} 1`,
		`oak_invocation_seconds_count{function="echo"} 1`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if r := o.run("function", "ls", "-q"); r.stdout != "echo\nfail\nslow\n" {
		t.Errorf("function ls -q: %s", r)
	}
	// Every invocation's container is gone.
	if cs, err := o.psAll(); err != nil || len(cs) != 0 {
		t.Errorf("containers left after the invocations: %v %v", cs, err)
	}
}

// TestFunctionRemove: oak function rm kills a running invocation and
// leaves nothing behind: no record, no factory, no group, no container.
func TestFunctionRemove(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	o.function("hold", "demo", "sleep", "600")
	f := o.inspectFunction("hold")
	g := o.run("factory", "inspect", f.Factory, "--format", "{{.Group}}")
	group := strings.TrimSpace(g.stdout)
	if g.code != 0 || group == "" {
		t.Fatalf("the function's factory %s: %s", f.Factory, g)
	}
	b := o.start("function", "invoke", "hold")
	o.waitInvocations("hold", 1, nil)
	if r := o.run("function", "rm", "hold"); r.code != 0 {
		t.Fatalf("%s", r)
	}
	if r, ok := b.wait(oakTimeout); !ok || r.code != 137 {
		t.Errorf("the invocation running during rm: %v %s", ok, r)
	}
	if r := o.run("factory", "inspect", f.Factory); r.code == 0 {
		t.Errorf("factory %s is left\n%s", f.Factory, r)
	}
	for _, ctrl := range []string{"pids", "memory", "cpu"} {
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", ctrl, "oak", group)); !os.IsNotExist(err) {
			t.Errorf("group %s/%s is left (%v)", ctrl, group, err)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(o.root, "functions")); len(ents) != 0 {
		t.Errorf("function records left: %v", ents)
	}
	if cs, err := o.psAll(); err != nil || len(cs) != 0 {
		t.Errorf("containers left: %v %v", cs, err)
	}
	if r := o.run("function", "inspect", "hold"); r.code == 0 {
		t.Errorf("function inspect after rm\n%s", r)
	}
}

// TestFunctionQuota: the function's factory holds concurrency times the
// per-invocation limits, and the kernel's bound holds whoever starts the
// invocations; through the daemon, invocations beyond the concurrency
// wait for a slot instead.
func TestFunctionQuota(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	o.function("--concurrency", "2", "--pids", "2", "--memory", "32m", "hold", "demo", "sleep", "600")
	fi := o.inspectFactory("fn-hold")
	if fi.Limit.Pids != 4 || fi.Limit.MemoryBytes != 64<<20 {
		t.Fatalf("factory fn-hold: limit %+v, want 4 tasks and 64 MiB", fi.Limit)
	}
	// Two invocations run in-process (no daemon queue), each its init
	// and sleep: the factory's 4 tasks are used up.
	noDaemon := []string{"OAK_NO_DAEMON=1"}
	var held []*bg
	for range 2 {
		o2 := *o
		o2.env = append(o2.env, noDaemon...)
		held = append(held, o2.start("function", "invoke", "hold"))
	}
	first := o.waitInvocations("hold", 2, nil)
	for _, env := range [][]string{noDaemon, nil} {
		r := o.invoke("", env, "hold")
		if r.code != 125 || !strings.Contains(r.stderr, "pids quota exhausted") {
			t.Errorf("a third invocation (%v) while the factory's tasks are used up: want refused\n%s", env, r)
		}
	}
	for _, id := range first {
		if r := o.run("kill", id); r.code != 0 {
			t.Fatalf("%s", r)
		}
	}
	for _, b := range held {
		if r, ok := b.wait(oakTimeout); !ok || r.code != 137 {
			t.Errorf("killed invocation: %v %s", ok, r)
		}
	}

	// Through the daemon, a third waits for a slot.
	var bs []*bg
	for range 3 {
		bs = append(bs, o.start("function", "invoke", "hold"))
	}
	o.waitFunction("hold", "2 running, 1 waiting", func(f functionInfo) bool { return f.Running == 2 && f.Waiting == 1 })
	running := o.waitInvocations("hold", 2, nil)
	if r := o.run("kill", running[0]); r.code != 0 {
		t.Fatalf("%s", r)
	}
	o.waitFunction("hold", "the waiting one served", func(f functionInfo) bool { return f.Running == 2 && f.Waiting == 0 })
	third := o.waitInvocations("hold", 1, running)
	if len(o.invocations("hold")) != 2 {
		t.Errorf("more than the concurrency of 2 run: %v", o.invocations("hold"))
	}
	for _, id := range append(running[1:], third...) {
		o.run("kill", id)
	}
	for _, b := range bs {
		if r, ok := b.wait(oakTimeout); !ok || r.code != 137 {
			t.Errorf("killed invocation: %v %s", ok, r)
		}
	}
}

// TestFunctionFairness: client A (this test process, one peer) floods a
// function of concurrency 1 with 10 invocations; client B (an oak
// process) asks for one after all of A's are queued. The slot A's first
// frees goes to B, not to A's queue: asserted by which invocation the
// second container served.
func TestFunctionFairness(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	o.function("--concurrency", "1", "hold", "demo", "sleep", "600")
	c := o.apiClient()
	var mu sync.Mutex
	var aIDs []string
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Post("http://oak/v1/functions/hold/invoke", "application/octet-stream", nil)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			mu.Lock()
			aIDs = append(aIDs, resp.Header.Get("X-Oak-Invocation"))
			mu.Unlock()
		}()
	}
	o.waitFunction("hold", "A's 10 in", func(f functionInfo) bool { return f.Running == 1 && f.Waiting == 9 })
	b := o.start("function", "invoke", "hold")
	o.waitFunction("hold", "B's in", func(f functionInfo) bool { return f.Waiting == 10 })
	id1 := o.waitInvocations("hold", 1, nil)
	o.run("kill", id1[0])
	id2 := o.waitInvocations("hold", 1, id1)
	o.run("kill", id2[0])
	if r, ok := b.wait(oakTimeout); !ok || r.code != 137 {
		t.Fatalf("B's invocation, which the second container should have served, did not end killed: %v %s", ok, r)
	}
	if f := o.inspectFunction("hold"); f.Waiting != 8 {
		t.Errorf("after B: %d of A's wait, want 8 (%+v)", f.Waiting, f)
	}
	// End A's flood, then check whom the first two containers served.
	if r := o.run("function", "rm", "hold"); r.code != 0 {
		t.Fatalf("%s", r)
	}
	wg.Wait()
	if !slices.Contains(aIDs, id1[0]) || slices.Contains(aIDs, id2[0]) {
		t.Errorf("A's invocations were served by %v; want %s (the first) among them and %s (B's) not", aIDs, id1[0], id2[0])
	}
}

// stateSlots reads the uid slot of every live container record of o's
// root, by id.
func (o *oakEnv) stateSlots() map[string]int {
	o.t.Helper()
	slots := map[string]int{}
	ents, _ := os.ReadDir(filepath.Join(o.root, "containers"))
	for _, ent := range ents {
		b, err := os.ReadFile(filepath.Join(o.root, "containers", ent.Name(), "state.json"))
		if err != nil {
			continue
		}
		var c struct {
			Slot   int
			Status string
		}
		if json.Unmarshal(b, &c) == nil && c.Status != "exited" {
			slots[ent.Name()] = c.Slot
		}
	}
	return slots
}

// factoryPids is what the kernel charges factory name's group in tasks.
func factoryPids(t *testing.T, o *oakEnv, name string) string {
	t.Helper()
	fi := o.inspectFactory(name)
	return readFirst(factoryFile(fi, "pids", "pids.current"))
}

// TestFunctionWarm: the daemon keeps --warm sandboxes, each a created
// container whose record holds its uid slot; an invocation takes one and
// the pool is refilled; stopping or killing the daemon, or removing the
// function, leaves nothing of them.
func TestFunctionWarm(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	o.function("--warm", "2", "--concurrency", "3", "w", "demo", "cat")
	o.waitFunction("w", "2 warm", func(f functionInfo) bool { return f.WarmReady == 2 })
	warm := o.stateSlots()
	if len(warm) != 2 {
		t.Fatalf("records of the warm sandboxes: %v, want 2", warm)
	}
	// A container run meanwhile by another process takes another slot.
	noDaemon := *o
	noDaemon.env = append(noDaemon.env, "OAK_NO_DAEMON=1")
	id := strings.TrimSpace(noDaemon.run("run", "-d", "demo", "sleep", "600").stdout)
	slots := o.stateSlots()
	for wid, s := range warm {
		if other, ok := slots[id]; !ok || other == s {
			t.Errorf("container %s has slot %d (ok %v), the one warm sandbox %s holds", id, other, ok, wid)
		}
	}
	o.run("rm", "-f", id)

	c := o.apiClient()
	resp, err := c.Post("http://oak/v1/functions/w/invoke", "application/octet-stream", strings.NewReader("warm body"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	served := resp.Header.Get("X-Oak-Invocation")
	if resp.StatusCode != 200 || string(body) != "warm body" || resp.Header.Get("X-Oak-Warm") != "true" || !hasKey(warm, served) {
		t.Errorf("invoke: %d %q warm %q served by %s, want one of %v", resp.StatusCode, body, resp.Header.Get("X-Oak-Warm"), served, warm)
	}
	o.waitFunction("w", "refilled", func(f functionInfo) bool { return f.WarmReady == 2 })

	// A daemon stopped destroys them; one killed leaves records that the
	// next oak settles, and inits that died with it.
	if r := o.run("daemon", "stop"); r.code != 0 {
		t.Fatalf("%s", r)
	}
	if cs, _ := noDaemon.psAll(); len(cs) != 0 {
		t.Errorf("after daemon stop: containers %v", cs)
	}
	if n := factoryPids(t, &noDaemon, "fn-w"); n != "0" {
		t.Errorf("after daemon stop: factory fn-w holds %s tasks", n)
	}
	o.waitFunction("w", "2 warm again", func(f functionInfo) bool { return f.WarmReady == 2 })
	syscall.Kill(o.daemonPid(), syscall.SIGKILL)
	deadline := time.Now().Add(oakTimeout)
	for factoryPids(t, &noDaemon, "fn-w") != "0" {
		if time.Now().After(deadline) {
			t.Fatalf("the warm sandboxes' inits outlive the killed daemon")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if cs, _ := noDaemon.psAll(); len(cs) != 0 {
		t.Errorf("after the daemon was killed: containers %v", cs)
	}
	o.waitFunction("w", "warm with a new daemon", func(f functionInfo) bool { return f.WarmReady == 2 })
	if r := o.run("function", "rm", "w"); r.code != 0 {
		t.Fatalf("%s", r)
	}
	if cs, _ := noDaemon.psAll(); len(cs) != 0 {
		t.Errorf("after function rm: containers %v", cs)
	}
}

// TestFunctionWarmHeld: a warm invocation, whose launch was held at its
// last step, runs its command as a cold one does: confined to its own
// uid range (root inside is a host id of its slot, never host root),
// stdin in, stdout and stderr out, its status reported, killed at its
// timeout.
func TestFunctionWarmHeld(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	o.function("--warm", "1", "wid", "demo", "sh", "-c", "cat /proc/self/uid_map; id -u; cat; echo err >&2; exit 4")
	o.function("--warm", "1", "--timeout", "1s", "wslow", "demo", "sleep", "600")
	o.waitFunction("wid", "warm", func(f functionInfo) bool { return f.WarmReady == 1 })
	resp, err := o.apiClient().Post("http://oak/v1/functions/wid/invoke", "application/octet-stream", strings.NewReader("input\n"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	out := lines(string(body))
	if resp.Header.Get("X-Oak-Warm") != "true" || resp.Header.Get("X-Oak-Exit-Code") != "4" ||
		resp.Header.Get("X-Oak-Stderr") != "ZXJyCg==" || len(out) != 3 || out[1] != "0" || out[2] != "input" {
		t.Fatalf("warm invocation: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if f := strings.Fields(out[0]); len(f) != 3 || f[0] != "0" || f[1] == "0" || f[2] != "65536" {
		t.Errorf("uid map inside a warm invocation: %q, want 0 mapped onto its slot's host range", out[0])
	} else if host, _ := strconv.Atoi(f[1]); host < 1<<30 {
		t.Errorf("uid map inside a warm invocation: %q, want a host range at or above 2^30", out[0])
	}
	// Prepared at a low priority, it runs its command at the usual one.
	o.function("--warm", "1", "wnice", "demo", "cut", "-d", " ", "-f", "19", "/proc/self/stat") // its nice value
	o.waitFunction("wnice", "warm", func(f functionInfo) bool { return f.WarmReady == 1 })
	if r := o.invoke("", nil, "wnice"); r.code != 0 || r.stdout != "0\n" {
		t.Errorf("niceness of a warm invocation's command: want 0\n%s", r)
	}
	o.run("function", "rm", "wnice")
	o.waitFunction("wslow", "warm", func(f functionInfo) bool { return f.WarmReady == 1 })
	if r := o.invoke("", nil, "wslow"); r.code != 137 || !strings.Contains(r.stderr, "timed out") {
		t.Errorf("warm invocation past its timeout: want 137 and a timeout reported\n%s", r)
	}
	// Removing the function kills a warm invocation that runs, and its
	// next warm sandbox, and leaves no container.
	o.run("function", "rm", "wslow")
	o.function("--warm", "1", "wrun", "demo", "sleep", "600")
	o.waitFunction("wrun", "warm", func(f functionInfo) bool { return f.WarmReady == 1 })
	b := o.start("function", "invoke", "wrun")
	o.waitFunction("wrun", "running, warm again", func(f functionInfo) bool { return f.Running == 1 })
	if r := o.run("function", "rm", "wrun"); r.code != 0 {
		t.Fatalf("%s", r)
	}
	if r, ok := b.wait(oakTimeout); !ok || r.code != 137 {
		t.Errorf("the warm invocation running during rm: %v %s", ok, r)
	}
	o.run("function", "rm", "wid") // and wid's warm sandbox
	o.run("daemon", "stop")        // its teardowns done
	if cs, err := o.psAll(); err != nil || len(cs) != 0 {
		t.Errorf("containers left: %v %v", cs, err)
	}
}

func hasKey(m map[string]int, k string) bool {
	_, ok := m[k]
	return ok
}

// TestFunctionCrashedRemoval: a removal that a crash interrupted (the
// record marked removing, the factory already gone) refuses invocations,
// shows in ls, and is finished by the next oak function rm.
func TestFunctionCrashedRemoval(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	o.function("f", "demo", "true")
	path := filepath.Join(o.root, "functions", "f.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	rec["removing"] = true
	b, _ = json.Marshal(rec)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := o.run("factory", "rm", "-f", "fn-f"); r.code != 0 {
		t.Fatalf("%s", r)
	}
	if r := o.run("function", "ls"); !strings.Contains(r.stdout, "f (removing)") {
		t.Errorf("ls of a function being removed\n%s", r)
	}
	if r := o.invoke("", nil, "f"); r.code == 0 || !strings.Contains(r.stderr, "being removed") {
		t.Errorf("invoke of a function being removed\n%s", r)
	}
	if r := o.run("function", "rm", "f"); r.code != 0 {
		t.Fatalf("rm did not finish the removal\n%s", r)
	}
	if ents, _ := os.ReadDir(filepath.Join(o.root, "functions")); len(ents) != 0 {
		t.Errorf("records left: %v", ents)
	}
}

// TestFunctionStreams: oak function invoke prints the command's stdout as
// the command writes it, cold and warm: the function prints a line and
// prints its second only when signalled, which the test does once it has
// read the first from oak's stdout (a buffered answer would never come);
// the status and stderr follow, from the answer's trailers.
func TestFunctionStreams(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	const script = `trap 'echo second; echo bye >&2; exit 6' USR1; echo first; while :; do sleep 0.1; done`
	for _, warm := range []string{"0", "1"} {
		name := "s" + warm
		o.function("--warm", warm, "--timeout", "1m", name, "demo", "sh", "-c", script)
		if warm == "1" {
			o.waitFunction(name, "warm", func(f functionInfo) bool { return f.WarmReady == 1 })
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*oakTimeout)
		cmd := o.command(ctx, "function", "invoke", name)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(out)
		first, err := r.ReadString('\n')
		if err != nil || first != "first\n" {
			t.Fatalf("%s: first line %q, %v; stderr %s", name, first, err, errb.String())
		}
		id := o.waitInvocations(name, 1, nil)[0]
		if k := o.run("kill", "-s", "USR1", id); k.code != 0 {
			t.Fatalf("%s", k)
		}
		rest, _ := io.ReadAll(r)
		err = cmd.Wait()
		cancel()
		if string(rest) != "second\n" || exitCode(cmd, err) != 6 || !strings.Contains(errb.String(), "bye") {
			t.Errorf("%s: after the first line %q, status %d, stderr %q; want second, 6, bye", name, rest, exitCode(cmd, err), errb.String())
		}
	}
}

// TestFunctionTrappedCalls: the trapped calls of functions' invocations
// are counted, a warm sandbox's as a cold one's, and stay exported by
// function once the invocations' containers are gone.
func TestFunctionTrappedCalls(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	// No grant: the socket call is refused by the offline service.
	o.function("--warm", "1", "--concurrency", "2", "probe", rootfsDir, "/bin/probe", "socket", "2", "1")
	o.waitFunction("probe", "1 warm", func(f functionInfo) bool { return f.WarmReady == 1 })
	c := o.apiClient()
	warm := 0
	for i := 0; i < 3; i++ {
		resp, err := c.Post("http://oak/v1/functions/probe/invoke", "application/octet-stream", nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "err EACCES" {
			t.Fatalf("invoke %d: %d %q, want the probe's EACCES", i, resp.StatusCode, body)
		}
		if resp.Header.Get("X-Oak-Warm") == "true" {
			warm++
		}
	}
	if warm == 0 {
		t.Fatal("no invocation was served by a warm sandbox")
	}
	key := `oak_trapped_calls_total{function="probe",call="socket",outcome="denied"}`
	for deadline := time.Now().Add(oakTimeout); ; time.Sleep(50 * time.Millisecond) {
		m := o.scrape()
		if m[key] == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v after 3 invocations (%d warm), want 3; trapped calls: %v", key, m[key], warm,
				with(m, "oak_trapped_calls_total"))
		}
	}
	// The launches are counted too: three invocations, and the one
	// warm sandbox made after each warm one is not a launch until used.
	if m := o.scrape(); m[`oak_launches_total{result="ok"}`] != 3 || m[`oak_launch_seconds_count`] != 3 {
		t.Errorf("launches: %v, want 3 ok and 3 timed", with(m, "oak_launch"))
	}
}

// TestFunctionStdio: through the daemon, oak function invoke streams its
// stdin in (a command that answers on its first line answers while the
// input is still open; 10 MiB, above the old bound of 6, arrive whole),
// prints all of stderr (100 000 bytes, above every bound of the
// trailer and header forms), and an input above MaxInvokeBody fails with
// a clear error, warm and cold.
func TestFunctionStdio(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	for _, warm := range []string{"0", "1"} {
		big, line, sink := "big"+warm, "line"+warm, "sink"+warm
		o.function("--warm", warm, big, "demo", "sh", "-c", `head -c 100000 /dev/zero | tr '\0' e >&2; wc -c`)
		o.function("--warm", warm, line, "demo", "sh", "-c", `read l; echo "got $l"`)
		o.function("--warm", warm, sink, "demo", "sh", "-c", `cat >/dev/null; echo read all`)
		if warm == "1" {
			for _, n := range []string{big, line, sink} {
				o.waitFunction(n, "warm", func(f functionInfo) bool { return f.WarmReady == 1 })
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*oakTimeout)
		defer cancel()

		cmd := o.command(ctx, "function", "invoke", big)
		var out, errb bytes.Buffer
		cmd.Stdin, cmd.Stdout, cmd.Stderr = io.MultiReader(io.LimitReader(zeros{}, 10<<20)), &out, &errb
		err := cmd.Run()
		if err != nil || strings.TrimSpace(out.String()) != strconv.Itoa(10<<20) || errb.String() != strings.Repeat("e", 100000) {
			t.Errorf("%s: %v, stdout %q, stderr of %d bytes (%.80q...)", big, err, out.String(), errb.Len(), errb.String())
		}

		cmd = o.command(ctx, "function", "invoke", line)
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		out.Reset()
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		io.WriteString(in, "hello\n") // and the input stays open
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil || out.String() != "got hello\n" {
				t.Errorf("%s: %v, stdout %q", line, err, out.String())
			}
		case <-time.After(5 * time.Second): // within the daemon's body timeout (10 s)
			t.Errorf("%s: no answer while its input is open: the input is not streamed in", line)
			cmd.Process.Kill()
			<-done
		}
		in.Close()

		cmd = o.command(ctx, "function", "invoke", sink)
		out.Reset()
		errb.Reset()
		cmd.Stdin, cmd.Stdout, cmd.Stderr = io.MultiReader(io.LimitReader(zeros{}, 64<<20+1)), &out, &errb
		err = cmd.Run()
		if err == nil || !strings.Contains(errb.String(), "above 67108864 bytes") || strings.Contains(out.String(), "read all") {
			t.Errorf("%s, 64 MiB + 1: %v, stdout %q, stderr %q; want a failure naming the bound", sink, err, out.String(), errb.String())
		}
	}
}

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

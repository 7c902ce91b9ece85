//go:build linux

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Tenants' uids: numeric only, no account on the host is needed.
const (
	uidA      = 4001
	uidB      = 4002
	uidNobody = 4009
)

// as runs oak as uid, against o's state root, through the daemon: what a
// host user who is (or is not) a tenant gets. The kernel reports the uid
// to the daemon (SO_PEERCRED); nothing the CLI says about itself counts.
func (o *oakEnv) as(uid uint32, args ...string) result {
	o.t.Helper()
	return o.asEnv(uid, nil, args...)
}

// asEnv is as with env added to oak's environment.
func (o *oakEnv) asEnv(uid uint32, env []string, args ...string) result {
	o.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), oakTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, oakBin, append([]string{"--root", o.root}, args...)...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "OAK_NO_DAEMON=0"}, env...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	cmd.WaitDelay = 3 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{args: append([]string{"(uid " + strconv.Itoa(int(uid)) + ")"}, args...), stdout: stdout.String(), stderr: stderr.String(),
		code: exitCode(cmd, err)}
	if ctx.Err() != nil {
		o.t.Errorf("oak %s as uid %d did not return within %v\n%s", strings.Join(args, " "), uid, oakTimeout, r)
	}
	return r
}

// newTenantOak is a daemon-served state root with tenants a (uid 4001)
// and b (uid 4002), each with a factory made for it. The root's parent is
// made searchable so that other users reach the tenants' socket beside
// the root; the root itself stays 0700.
func newTenantOak(t *testing.T) *oakEnv {
	o := newDaemonOak(t)
	if err := os.Chmod(filepath.Dir(o.root), 0o711); err != nil {
		t.Fatal(err)
	}
	for _, tn := range []struct{ name, uid string }{{"a", "4001"}, {"b", "4002"}} {
		if r := o.run("tenant", "create", "--uid", tn.uid, "--memory", "256m", "--pids", "64", "--disk", "2g", tn.name); r.code != 0 {
			t.Fatalf("oak tenant create\n%s", r)
		}
	}
	if r := o.run("ps"); r.code != 0 { // root's oak starts the daemon
		t.Fatalf("%s", r)
	}
	// Registered after newOak's cleanup, so run before it: the
	// containers go first, then the tenants and their factories.
	t.Cleanup(func() {
		if es, err := o.psAll(); err == nil {
			for _, e := range es {
				o.run("rm", "-f", e.ID)
			}
		}
		o.run("volume", "rm", "adata") // made by the test, if it got that far
		for _, name := range []string{"a", "b"} {
			if r := o.run("tenant", "rm", name); r.code != 0 {
				t.Errorf("cleanup: %s", r)
			}
			if r := o.run("factory", "inspect", name); r.code == 0 {
				t.Errorf("cleanup: tenant %s's factory is left", name)
				o.run("factory", "rm", "-f", name)
			}
		}
	})
	return o
}

// TestTenantsAreConfined: tenant a runs a container; tenant b can neither
// see, inspect, read the logs of, signal, stop, exec into, wait for nor
// remove it, and is told exactly what it is told of a container that does
// not exist; a's factory bounds a's containers; a user who is no tenant
// is refused; the state root stays root's.
func TestTenantsAreConfined(t *testing.T) {
	needOak(t, true)
	o := newTenantOak(t)
	r := o.as(uidA, "run", "-d", "--name", "web", "demo", "/bin/sh", "-c", "echo hello from a; sleep 600")
	if r.code != 0 {
		t.Fatalf("tenant a's run\n%s", r)
	}
	id := strings.TrimSpace(r.stdout)
	o.waitRunning(id)

	// a sees its container by its own name; root sees whose it is.
	if r := o.as(uidA, "ps", "--format", "{{.Names}}"); r.code != 0 || strings.TrimSpace(r.stdout) != "web" {
		t.Errorf("tenant a's ps: want web\n%s", r)
	}
	if r := o.run("ps", "--format", "{{.Names}}"); r.code != 0 || strings.TrimSpace(r.stdout) != "a.web" {
		t.Errorf("root's ps: want a.web\n%s", r)
	}
	if r := o.as(uidA, "exec", "web", "echo", "exec by a"); r.code != 0 || !strings.Contains(r.stdout, "exec by a") {
		t.Errorf("tenant a's exec into its own container\n%s", r)
	}
	o.waitOutput(id, "hello from a", 30*time.Second)

	// b: nothing of a's, in the words used for what does not exist.
	if r := o.as(uidB, "ps", "-a", "-q"); r.code != 0 || strings.TrimSpace(r.stdout) != "" {
		t.Errorf("tenant b's ps -a: want nothing\n%s", r)
	}
	for _, verb := range [][]string{{"inspect", "--type", "container"}, {"logs"}, {"stop", "-t", "1"}, {"kill"},
		{"restart", "-t", "1"}, {"start"}, {"start", "-a"}, {"wait"}, {"grants"}, {"revoke", "REF", "egress any"}, {"rm", "-f"}, {"exec", "REF", "true"},
		{"attach"}} {
		for _, ref := range []string{"web", id, id[:12], "a.web"} {
			args := withRef(verb, ref)
			got := o.as(uidB, args...)
			missing := o.as(uidB, withRef(verb, "nosuchthing")...)
			want := strings.ReplaceAll(missing.stderr, "nosuchthing", ref)
			if got.code == 0 || got.code != missing.code || got.stderr != want || !strings.Contains(got.stderr, "no such container") {
				t.Errorf("tenant b: oak %s: exit %d %q; for a container that does not exist: exit %d %q",
					strings.Join(args, " "), got.code, got.stderr, missing.code, missing.stderr)
			}
		}
	}
	if e, ok := o.find(id); !ok || e.Status != "running" {
		t.Errorf("a's container after b's attempts: %+v %v, want it running", e, ok)
	}

	// What a tenant may not ask for.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "-d", "-v", "/etc:/host", "demo", "true"}, "cannot mount host directories"},
		{[]string{"run", "-d", rootfsDir, "true"}, "not host directories"},
		{[]string{"run", "-d", "--factory", "b", "demo", "true"}, "its own factory, a"},
		{[]string{"run", "-d", "-p", "18080:80", "demo", "true"}, "host port the daemon picks"},
		{[]string{"run", "-d", "--memory", "512m", "demo", "true"}, "above the limit of factory a"},
		{[]string{"tenant", "ls"}, "only root manages tenants"},
	} {
		if r := o.as(uidA, c.args...); r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("tenant a: want a refusal saying %q\n%s", c.want, r)
		}
	}
	// a's factory holds a's container and bounds it.
	f := o.inspectFactory("a")
	if len(f.Containers) != 1 || f.Containers[0] != "a.web" || f.Limit.MemoryBytes != 256<<20 {
		t.Errorf("factory a: containers %v, memory limit %d; want [a.web], 256 MiB", f.Containers, f.Limit.MemoryBytes)
	}
	var ci []struct {
		HostConfig struct {
			Memory  int64
			Factory string
			Tenant  string
		}
	}
	if r := o.as(uidA, "inspect", "web"); r.code != 0 || json.Unmarshal([]byte(r.stdout), &ci) != nil || len(ci) != 1 ||
		ci[0].HostConfig.Factory != "a" || ci[0].HostConfig.Tenant != "a" || ci[0].HostConfig.Memory != 256<<20 {
		t.Errorf("tenant a's inspect: want factory a, tenant a, the factory's 256 MiB\n%s", r)
	}

	// A volume made for a's factory is a's: a mounts it; b is told of it
	// what it is told of a volume that does not exist.
	if r := o.run("volume", "create", "--factory", "a", "--sparse", "--size", "64m", "adata"); r.code != 0 {
		t.Fatalf("%s", r)
	}
	if r := o.as(uidA, "run", "-d", "--rm", "--read-only", "-v", "adata:/data", "demo", "true"); r.code != 0 {
		t.Errorf("tenant a mounting its own volume\n%s", r)
	}
	got := o.as(uidB, "run", "-d", "-v", "adata:/data", "demo", "true")
	missing := o.as(uidB, "run", "-d", "-v", "nosuch:/data", "demo", "true")
	if got.code == 0 || got.stderr != strings.ReplaceAll(missing.stderr, "nosuch", "adata") || !strings.Contains(got.stderr, "no such volume") {
		t.Errorf("tenant b mounting a's volume: exit %d %q; a missing one: exit %d %q", got.code, got.stderr, missing.code, missing.stderr)
	}

	// A user who is no tenant is refused, saying why.
	if r := o.as(uidNobody, "ps"); r.code == 0 || !strings.Contains(r.stderr, "uid 4009 is not a tenant") {
		t.Errorf("uid %d: want a refusal\n%s", uidNobody, r)
	}
	// The state root stays root's; the tenants' socket is beside it.
	if fi, err := os.Stat(o.root); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state root %s: %v %v, want mode 0700", o.root, fi.Mode(), err)
	}
	// A tenant's volume verbs go through the daemon (its own volumes
	// only); the store itself stays out of its reach.
	if r := o.as(uidA, "volume", "ls", "-q"); r.code != 0 || strings.TrimSpace(r.stdout) != "adata" {
		t.Errorf("tenant a's volume ls: want adata, through the daemon\n%s", r)
	}
	if r := o.as(uidB, "volume", "ls", "-q"); r.code != 0 || strings.TrimSpace(r.stdout) != "" {
		t.Errorf("tenant b's volume ls: want none\n%s", r)
	}
	ls := exec.Command("/bin/ls", o.root) // the volume store is in it
	ls.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uidA, Gid: uidA}}
	if out, err := ls.CombinedOutput(); err == nil {
		t.Errorf("uid %d listed the state root (and so its volume store) directly:\n%s", uidA, out)
	}

	// a tenant neither runs the engine itself nor starts a daemon.
	if r := o.run("daemon", "stop"); r.code != 0 {
		t.Fatalf("%s", r)
	}
	if r := o.as(uidA, "ps"); r.code == 0 || !strings.Contains(r.stderr, "no oak daemon answers") || !strings.Contains(r.stderr, "cannot start one") {
		t.Errorf("tenant a without a daemon: want a refusal naming the socket\n%s", r)
	}
	if pid := o.daemonPid(); pid != 0 {
		t.Errorf("a tenant's oak started daemon %d", pid)
	}
	if r := o.as(uidA, "--no-daemon", "ps"); r.code == 0 || !strings.Contains(r.stderr, "only root runs the engine") {
		t.Errorf("tenant a with --no-daemon: want a refusal\n%s", r)
	}
}

// withRef is verb with ref as its container argument: in place of REF,
// or last.
func withRef(verb []string, ref string) []string {
	out := append([]string(nil), verb...)
	for i, a := range out {
		if a == "REF" {
			out[i] = ref
			return out
		}
	}
	return append(out, ref)
}

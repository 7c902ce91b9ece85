//go:build linux

package integration

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tenantCmd is oak with args run as uid, against o's state root, as
// oakEnv.as runs it.
func (o *oakEnv) tenantCmd(ctx context.Context, uid uint32, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, oakBin, append([]string{"--root", o.root}, args...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "OAK_NO_DAEMON=0"}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	cmd.WaitDelay = 3 * time.Second
	return cmd
}

// TestTenantForegroundRun: a tenant's foreground oak run (without -d)
// goes through the daemon as the tenant, for a tenant's uid and for the
// holder of its token alike: the output, the exit status, stdin (-i), a
// terminal (-t) and SIGTERM work as root's; the container is the
// tenant's (its name, its record's tenant, its factory's groups, its
// quota); another tenant sees nothing of it.
func TestTenantForegroundRun(t *testing.T) {
	needOak(t, true)
	o := newTenantOak(t)
	tokA := filepath.Join(tokenDir(t), "a.token")
	if r := o.run("tenant", "token", "a", "--file", tokA, "--owner", strconv.Itoa(uidNobody)); r.code != 0 {
		t.Fatalf("%s", r)
	}
	fa := o.inspectFactory("a")
	for _, who := range []struct {
		name  string
		uid   uint32
		flags []string
	}{
		{"uid", uidA, nil},
		{"token", uidNobody, []string{"--token-file", tokA}},
	} {
		t.Run(who.name, func(t *testing.T) {
			o := o.sub(t)
			as := func(args ...string) result {
				t.Helper()
				return o.as(who.uid, append(append([]string(nil), who.flags...), args...)...)
			}
			if r := as("run", "--rm", "demo", "echo", "hello from a"); r.code != 0 || r.stdout != "hello from a\n" {
				t.Errorf("run --rm demo echo: want the line and exit 0\n%s", r)
			}
			if r := as("run", "--rm", "demo", "sh", "-c", "echo out; echo err >&2; exit 3"); r.code != 3 || r.stdout != "out\n" || !strings.Contains(r.stderr, "err") {
				t.Errorf("run of a command exiting 3: want exit 3 and both streams\n%s", r)
			}

			// stdin piped through -i.
			ctx, cancel := context.WithTimeout(context.Background(), oakTimeout)
			defer cancel()
			cmd := o.tenantCmd(ctx, who.uid, append(append([]string(nil), who.flags...), "run", "--rm", "-i", "demo", "sh", "-c", "tr a-z A-Z; echo done")...)
			var stdout, stderr bytes.Buffer
			cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader("piped in\n"), &stdout, &stderr
			err := cmd.Run()
			if code := exitCode(cmd, err); code != 0 || stdout.String() != "PIPED IN\ndone\n" {
				t.Errorf("run -i with stdin piped: exit %d, stdout %q, stderr %q; want PIPED IN, done, 0", code, stdout.String(), stderr.String())
			}

			// A terminal (-t): the command's, sized as the caller's.
			args := append(append([]string{"--root", o.root}, who.flags...), "run", "--rm", "-t", "demo", "/bin/sh", "-c", "stty size; read -r l; echo got-$l; exit 4")
			got := onTestTerminalAs(t, who.uid, args, 500*time.Millisecond, "typed\r")
			if got.code != 4 || !strings.Contains(got.out, "33 101") || !strings.Contains(got.out, "got-typed") {
				t.Errorf("run -t: exit %d, terminal %q; want 33 101, got-typed and exit 4", got.code, got.out)
			}

			// Beyond its quota: refused, saying why; nothing is left.
			if r := as("run", "--rm", "--memory", "512m", "demo", "true"); r.code == 0 || !strings.Contains(r.stderr, "above the limit of factory a") {
				t.Errorf("run --memory 512m beyond a's 256m: want a refusal naming the factory's limit\n%s", r)
			}
			if r := as("run", "--rm", "-v", "/etc:/host", "demo", "true"); r.code == 0 || !strings.Contains(r.stderr, "cannot mount host directories") {
				t.Errorf("run -v /etc:/host: want a refusal\n%s", r)
			}
			if r := as("run", "--rm", "--factory", "b", "demo", "true"); r.code == 0 || !strings.Contains(r.stderr, "its own factory, a") {
				t.Errorf("run --factory b: want a refusal\n%s", r)
			}

			// A running foreground container: a's, in a's factory, out
			// of b's sight; SIGTERM to the CLI ends it with 143.
			ctx, cancel = context.WithTimeout(context.Background(), 3*oakTimeout)
			defer cancel()
			fg := o.tenantCmd(ctx, who.uid, append(append([]string(nil), who.flags...), "run", "--rm", "--name", "fg", "demo", "sleep", "600")...)
			var fgOut bytes.Buffer
			fg.Stdout, fg.Stderr = &fgOut, &fgOut
			if err := fg.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- fg.Wait() }()
			defer func() {
				fg.Process.Kill()
				select {
				case <-done:
				case <-time.After(10 * time.Second):
				}
			}()
			e := o.waitRunning("a.fg") // root sees it by the name it is kept under
			waitChildComm(t, e.Pid, "sleep", 10*time.Second)
			if r := as("ps", "--format", "{{.Names}}"); r.code != 0 || strings.TrimSpace(r.stdout) != "fg" {
				t.Errorf("a's ps: want fg\n%s", r)
			}
			if r := o.run("inspect", "--format", "{{.HostConfig.Tenant}} {{.HostConfig.Factory}}", "a.fg"); r.code != 0 || strings.TrimSpace(r.stdout) != "a a" {
				t.Errorf("the record of a's foreground run: want tenant a, factory a\n%s", r)
			}
			for _, ctrl := range []struct{ ctrl, file1, file2 string }{{"memory", "memory.limit_in_bytes", "memory.max"}, {"pids", "pids.max", "pids.max"}} {
				if p := cgroupFile(e.Pid, ctrl.ctrl, ctrl.file1, ctrl.file2); !strings.Contains(p, "/oak/"+fa.Group+"/") {
					t.Errorf("a's foreground container's %s group %s is not under factory a's group %s", ctrl.ctrl, p, fa.Group)
				}
			}
			if f := o.inspectFactory("a"); len(f.Containers) != 1 || f.Containers[0] != "a.fg" {
				t.Errorf("factory a holds %v, want [a.fg]", f.Containers)
			}
			if r := o.as(uidB, "ps", "-a", "-q"); r.code != 0 || strings.TrimSpace(r.stdout) != "" {
				t.Errorf("tenant b's ps -a: want nothing\n%s", r)
			}
			for _, ref := range []string{"fg", "a.fg", e.ID[:12]} {
				got, missing := o.as(uidB, "inspect", "--type", "container", ref), o.as(uidB, "inspect", "--type", "container", "nosuchthing")
				if got.code == 0 || got.code != missing.code || got.stderr != strings.ReplaceAll(missing.stderr, "nosuchthing", ref) || !strings.Contains(got.stderr, "no such container") {
					t.Errorf("tenant b: inspect %s: exit %d %q; of a container that does not exist: exit %d %q", ref, got.code, got.stderr, missing.code, missing.stderr)
				}
			}
			sent := time.Now()
			fg.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-done:
				done <- err // for the deferred wait
				if code := exitCode(fg, err); code != 143 {
					t.Errorf("after SIGTERM: oak exit status %d, want 143\n%s", code, fgOut.String())
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("oak run did not return within 10 s of SIGTERM\n%s", fgOut.String())
			}
			if d := time.Since(sent); d > 3*time.Second {
				t.Errorf("oak took %v to return after SIGTERM", d)
			}
			if _, ok := o.find("a.fg"); ok {
				t.Errorf("a.fg is left after its --rm run ended")
			}
		})
	}

	// Root presenting b's token runs in the foreground as b, not as
	// root in-process.
	tokB := filepath.Join(tokenDir(t), "b.token")
	if r := o.run("tenant", "token", "b", "--file", tokB, "--owner", "0"); r.code != 0 {
		t.Fatalf("%s", r)
	}
	if r := o.run("--token-file", tokB, "run", "--name", "byroot", "demo", "echo", "as b"); r.code != 0 || r.stdout != "as b\n" {
		t.Errorf("root with b's token: run: want the line and exit 0\n%s", r)
	}
	if r := o.run("inspect", "--format", "{{.HostConfig.Tenant}} {{.HostConfig.Factory}}", "b.byroot"); r.code != 0 || strings.TrimSpace(r.stdout) != "b b" {
		t.Errorf("the record of root's run with b's token: want tenant b, factory b\n%s", r)
	}
	if r := o.as(uidA, "ps", "-a", "-q"); r.code != 0 || strings.TrimSpace(r.stdout) != "" {
		t.Errorf("tenant a's ps -a: want nothing of b's\n%s", r)
	}
}

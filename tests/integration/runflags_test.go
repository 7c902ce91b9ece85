//go:build linux

package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// -u/--user picks the command's ids by name or number from the image's
// /etc/passwd and /etc/group, as the image's own User is; a name the
// image does not have is refused.
func TestRunUser(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	for _, c := range []struct{ user, want string }{
		{"nobody", "65534 65534"},
		{"nobody:root", "65534 0"},
		{"1000", "1000 1000"},
		{"1000:nogroup", "1000 65534"},
		{"0:0", "0 0"},
	} {
		r := o.run("run", "--rm", "-u", c.user, rootfsDir, "/bin/sh", "-c", "echo $(id -u) $(id -g)")
		if r.code != 0 || strings.TrimSpace(r.stdout) != c.want {
			t.Errorf("-u %s: want ids %q\n%s", c.user, c.want, r)
		}
	}
	for _, bad := range []string{"ghost", "nobody:ghosts", "70000"} {
		if r := o.run("run", "--rm", "--user", bad, rootfsDir, "/bin/true"); r.code != 125 || !strings.Contains(r.stderr, "invalid --user") {
			t.Errorf("--user %s\n%s", bad, r)
		}
	}
}

// --entrypoint replaces the image's entrypoint and drops its Cmd; "" runs
// the arguments alone; -u overrides the image's User.
func TestRunEntrypointOverImage(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	archive := writeDockerSave(t, filepath.Join(imageDir(t), "greeter.tar"), "oak.test/greeter:1", greeterImage(t))
	if r := o.run("image", "import", archive); r.code != 0 {
		t.Fatal(r)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"oak.test/greeter:1"}, greeterOutput},
		{[]string{"--entrypoint", "/bin/echo", "oak.test/greeter:1"}, "\n"},
		{[]string{"--entrypoint", "/bin/echo", "oak.test/greeter:1", "a", "b"}, "a b\n"},
		{[]string{"--entrypoint", "", "oak.test/greeter:1", "/bin/echo", "c"}, "c\n"},
		{[]string{"-u", "root", "--entrypoint", "/bin/id", "oak.test/greeter:1", "-u"}, "0\n"},
		{[]string{"--entrypoint", "/bin/id", "oak.test/greeter:1", "-u"}, "1234\n"},
	} {
		r := o.run(append([]string{"run", "--rm"}, c.args...)...)
		if r.code != 0 || r.stdout != c.want {
			t.Errorf("want %q\n%s", c.want, r)
		}
	}
}

// --env-file reads KEY=VALUE lines, skips comments and blank lines, and
// takes a bare KEY from oak's own environment (left out if unset), as -e
// KEY does; -e wins over the file.
func TestRunEnvFile(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	o.env = []string{"FROM_OAK=host value", "ALSO_OAK=x"}
	os.Unsetenv("UNSET_VAR")
	file := filepath.Join(t.TempDir(), "env")
	body := "# a comment\n\nA=1\n  B=two words = and more\nFROM_OAK\nUNSET_VAR\nC=from file\n"
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	r := o.run("run", "--rm", "--env-file", file, "-e", "C=from -e", "-e", "ALSO_OAK", "-e", "UNSET_VAR", rootfsDir,
		"/bin/sh", "-c", `echo "$A|$B|$FROM_OAK|${UNSET_VAR-unset}|$C|$ALSO_OAK"`)
	if want := "1|two words = and more|host value|unset|from -e|x\n"; r.code != 0 || r.stdout != want {
		t.Errorf("want %q\n%s", want, r)
	}
	os.WriteFile(file, []byte("BAD KEY=1\n"), 0o644)
	if r := o.run("run", "--rm", "--env-file", file, rootfsDir, "/bin/true"); r.code != 125 || !strings.Contains(r.stderr, "line 1") {
		t.Errorf("a key with a space\n%s", r)
	}
	if r := o.run("run", "--rm", "--env-file", file+".missing", rootfsDir, "/bin/true"); r.code != 125 || !strings.Contains(r.stderr, "--env-file") {
		t.Errorf("a missing env file\n%s", r)
	}
}

// --label K=V is kept in the container's record; --init is accepted (the
// command runs under Oak's init all the same).
func TestRunLabelsInit(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	r := o.run("run", "--init", "--label", "app=web", "--label", "tier=front=end", "--label", "bare", rootfsDir, "/bin/sh", "-c", "echo $$")
	if r.code != 0 || r.stdout != "2\n" {
		t.Fatalf("--init: want the command as pid 2 under Oak's init\n%s", r)
	}
	ds := o.containerDirs()
	if len(ds) != 1 {
		t.Fatalf("containers: %v", ds)
	}
	b, err := os.ReadFile(filepath.Join(o.root, "containers", ds[0], "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rec struct{ Labels map[string]string }
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"app": "web", "tier": "front=end", "bare": ""}
	if len(rec.Labels) != len(want) {
		t.Errorf("labels %v, want %v", rec.Labels, want)
	}
	for k, v := range want {
		if got, ok := rec.Labels[k]; !ok || got != v {
			t.Errorf("label %s = %q (%v), want %q", k, got, ok, v)
		}
	}
	if r := o.run("run", "--label", "=x", rootfsDir, "/bin/true"); r.code != 125 || !strings.Contains(r.stderr, "invalid --label") {
		t.Errorf("--label =x\n%s", r)
	}
}

// --ulimit sets the container's soft and hard limits; one above the
// host's hard limit is refused naming the limit, since Oak cannot raise
// it; bad forms are refused.
func TestRunUlimit(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	r := o.run("run", "--rm", "--ulimit", "nofile=100:200", "--ulimit", "core=0", rootfsDir, "/bin/sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c; ulimit -Hc")
	if r.code != 0 || r.stdout != "100\n200\n0\n0\n" {
		t.Errorf("--ulimit nofile=100:200 core=0: want 100 200 0 0\n%s", r)
	}
	// The container really cannot open more than 100 files.
	r = o.run("run", "--rm", "--ulimit", "nofile=10", rootfsDir, "/bin/sh", "-c", "exec 11</dev/null && echo opened")
	if r.code == 0 || strings.Contains(r.stdout, "opened") {
		t.Errorf("fd 11 opened under nofile=10\n%s", r)
	}
	var host syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &host); err != nil {
		t.Fatal(err)
	}
	above := "nofile=1:" + strconv.FormatUint(host.Max+1, 10)
	if r := o.run("run", "--rm", "--ulimit", above, rootfsDir, "/bin/true"); r.code != 125 || !strings.Contains(r.stderr, "--ulimit nofile") || !strings.Contains(r.stderr, "never raises") {
		t.Errorf("--ulimit %s above the host's hard limit %d\n%s", above, host.Max, r)
	}
	for _, bad := range []string{"nofiles=1", "nofile", "nofile=2:1", "nofile=x", "nofile=-5"} {
		if r := o.run("run", "--rm", "--ulimit", bad, rootfsDir, "/bin/true"); r.code != 125 || !strings.Contains(r.stderr, "invalid --ulimit") {
			t.Errorf("--ulimit %s\n%s", bad, r)
		}
	}
}

// The docker flags that would hand a container host authority are
// refused, each with why and what to use instead; their values that ask
// for what every Oak container already is are accepted.
func TestRunRefusals(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	for _, c := range []struct {
		args []string
		flag string
		use  string
	}{
		{[]string{"--privileged"}, "--privileged", "--egress"},
		{[]string{"--cap-add", "NET_ADMIN"}, "--cap-add NET_ADMIN", "--publish"},
		{[]string{"--security-opt", "seccomp=unconfined"}, "--security-opt seccomp=unconfined", "--egress"},
		{[]string{"--device", "/dev/kvm"}, "--device /dev/kvm", "VOLUME"},
		{[]string{"--network", "host"}, "--network host", "--egress"},
		{[]string{"--network", "bridge"}, "--network bridge", "--publish"},
		{[]string{"--net", "host"}, "", ""},
		{[]string{"--pid", "host"}, "--pid host", "oak"},
		{[]string{"--ipc", "host"}, "--ipc host", "VOLUME"},
		{[]string{"--uts", "host"}, "--uts host", "--hostname"},
		{[]string{"--userns", "host"}, "--userns host", "--user"},
	} {
		r := o.run(append(append([]string{"run", "--rm"}, c.args...), rootfsDir, "/bin/true")...)
		if c.flag == "" { // not a flag Oak has
			if r.code != 125 || !strings.Contains(r.stderr, "unknown flag") {
				t.Errorf("%v\n%s", c.args, r)
			}
			continue
		}
		msg := strings.TrimSpace(r.stderr)
		if r.code != 125 || strings.Contains(msg, "\n") || !strings.Contains(msg, c.flag+" refused: ") || !strings.Contains(msg, c.use) {
			t.Errorf("%v: want exit 125 and one line saying %q is refused, why, and to use %s\n%s", c.args, c.flag, c.use, r)
		}
	}
	r := o.run("run", "--rm", "--network", "none", "--pid", "private", "--ipc", "private", "--uts", "private", "--userns", "private",
		"--security-opt", "no-new-privileges", "--privileged=false", rootfsDir, "/bin/true")
	if r.code != 0 {
		t.Errorf("the values Oak always has should be accepted\n%s", r)
	}
	help := o.run("run", "--help")
	for _, f := range []string{"--privileged", "--cap-add", "--device", "--network", "--pid", "--security-opt"} {
		i := strings.Index(help.stdout, f+" ")
		if i < 0 || !strings.Contains(help.stdout[i:i+strings.Index(help.stdout[i:]+"\n", "\n")], "refused") {
			t.Errorf("oak run --help: %s does not say it is refused", f)
		}
	}
}

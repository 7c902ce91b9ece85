package engine

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// podmanExecProcess is the --process file podman 4.3 wrote here for
// `podman exec -u 1000 -w /tmp CTR sh -c true` into a container run with
// --ulimit nofile=1024:1024 --ulimit nproc=4096:4096.
const podmanExecProcess = `{"user":{"uid":1000,"gid":0},"args":["sh","-c","true"],"env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","TERM=xterm","HOME="],"cwd":"/tmp","capabilities":{"bounding":["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FOWNER","CAP_FSETID","CAP_KILL","CAP_NET_BIND_SERVICE","CAP_SETFCAP","CAP_SETGID","CAP_SETPCAP","CAP_SETUID","CAP_SYS_CHROOT"],"effective":["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FOWNER","CAP_FSETID","CAP_KILL","CAP_NET_BIND_SERVICE","CAP_SETFCAP","CAP_SETGID","CAP_SETPCAP","CAP_SETUID","CAP_SYS_CHROOT"],"permitted":["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FOWNER","CAP_FSETID","CAP_KILL","CAP_NET_BIND_SERVICE","CAP_SETFCAP","CAP_SETGID","CAP_SETPCAP","CAP_SETUID","CAP_SYS_CHROOT"]},"rlimits":[{"type":"RLIMIT_NOFILE","hard":1024,"soft":1024},{"type":"RLIMIT_NPROC","hard":4096,"soft":4096}]}`

func TestMapExecPodmanProcess(t *testing.T) {
	c, err := mapJSON(t, podmanConfig, false)
	if err != nil {
		t.Fatal(err)
	}
	c.Rlimits = []OCIRlimit{{Resource: 7, Soft: 1024, Hard: 1024}, {Resource: 6, Soft: 4096, Hard: 4096}}
	p, err := ParseOCIProcess([]byte(podmanExecProcess))
	if err != nil {
		t.Fatal(err)
	}
	x, err := MapOCIExec(c, p, "--process f", false)
	if err != nil {
		t.Fatal(err)
	}
	// podman's eleven are Oak's eight and three narrowed away; its
	// rlimits are the container's.
	if x.UID != 1000 || x.GID != 0 || x.Cwd != "/tmp" || x.Args[0] != "sh" || x.DropCaps != 0 {
		t.Errorf("mapped %+v", x)
	}
	// The container was made from podman's config.json, which asked for
	// the same three: create warned of them, every exec does not again.
	if len(x.Warnings) != 0 {
		t.Errorf("warnings %q, want none: the container's create narrowed the same capabilities", x.Warnings)
	}
	// A container made without them is told.
	c.NarrowedCaps = []string{"CAP_SETFCAP"}
	x, err = MapOCIExec(c, p, "--process f", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(x.Warnings) != 1 || !strings.Contains(x.Warnings[0], "--process f: process.capabilities: CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT not granted") {
		t.Errorf("warnings %q", x.Warnings)
	}
	if _, err := MapOCIExec(c, p, "--process f", true); err == nil || !strings.Contains(err.Error(), "--process f: process.capabilities.bounding[5]: CAP_NET_BIND_SERVICE is not one of Oak's") {
		t.Errorf("strict: %v", err)
	}
}

func TestMapExecFromContainer(t *testing.T) {
	c := &OCIContainer{Env: []string{"A=1"}, Cwd: "/w", UID: 5, GID: 6, DropCaps: 1 << 3}
	x, err := MapOCIExec(c, c.ExecProcess([]string{"id"}), "exec flags", true)
	if err != nil {
		t.Fatal(err)
	}
	if x.Cwd != "/w" || x.UID != 5 || x.GID != 6 || x.Env[0] != "A=1" || x.DropCaps != 1<<3 || len(x.Warnings) != 0 {
		t.Errorf("mapped %+v", x)
	}
}

func TestMapExecRefusals(t *testing.T) {
	c := &OCIContainer{DropCaps: 1 << 3, Rlimits: []OCIRlimit{{Resource: 7, Soft: 1024, Hard: 1024}}}
	base := func() *specs.Process { return &specs.Process{Args: []string{"x"}, Cwd: "/"} }
	for _, tc := range []struct {
		change func(*specs.Process)
		field  string
	}{
		{func(p *specs.Process) { p.Args = nil }, "process.args"},
		{func(p *specs.Process) { p.Args = []string{"a", "b\x00"} }, "process.args[1]"},
		{func(p *specs.Process) { p.Env = []string{"NOEQUALS"} }, "process.env[0]"},
		{func(p *specs.Process) { p.Cwd = "rel" }, "process.cwd"},
		{func(p *specs.Process) { p.User.UID = 70000 }, "process.user"},
		{func(p *specs.Process) { p.User.Username = "x" }, "process.user.username"},
		{func(p *specs.Process) {
			p.Capabilities = &specs.LinuxCapabilities{Permitted: []string{"CAP_KILL", "CAP_FOWNER"}}
		}, "process.capabilities.permitted[1]: CAP_FOWNER was not given"},
		{func(p *specs.Process) { p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1, Hard: 1}} }, "process.rlimits[0]"},
		{func(p *specs.Process) { p.Scheduler = &specs.Scheduler{} }, "process.scheduler"},
		{func(p *specs.Process) { p.ConsoleSize = &specs.Box{Height: 1 << 20, Width: 1} }, "process.consoleSize"},
	} {
		p := base()
		tc.change(p)
		_, err := MapOCIExec(c, p, "--process f", false)
		if err == nil || !strings.HasPrefix(err.Error(), "--process f: "+tc.field) {
			t.Errorf("want a refusal of %s, got %v", tc.field, err)
		}
	}
	// The container's own rlimits are no change.
	p := base()
	p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 1024}}
	if _, err := MapOCIExec(c, p, "--process f", false); err != nil {
		t.Errorf("the container's rlimits: %v", err)
	}
}

// FuzzOCIProcess maps arbitrary --process files onto a container that
// lacks one capability: never a panic, never more than the container.
func FuzzOCIProcess(f *testing.F) {
	f.Add([]byte(podmanExecProcess))
	f.Add([]byte(`{"args":["sh"],"cwd":"/","capabilities":{"ambient":["CAP_SYS_ADMIN"],"bounding":["CAP_FOWNER"]}}`))
	f.Add([]byte(`{"args":["a"],"cwd":"/x/..","user":{"uid":65535,"additionalGids":[1]},"consoleSize":{"height":24,"width":80},"terminal":true}`))
	c := &OCIContainer{DropCaps: 1 << 3, Rlimits: []OCIRlimit{{Resource: 7, Soft: 1024, Hard: 1024}}}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseOCIProcess(b)
		if err != nil {
			return
		}
		x, err := MapOCIExec(c, p, "--process f", false)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "--process f: ") {
				t.Fatalf("refusal %q does not name its input", err)
			}
			return
		}
		if x.UID >= idSize || x.GID >= idSize || len(x.Args) == 0 || !strings.HasPrefix(x.Cwd, "/") {
			t.Fatalf("accepted %+v", x)
		}
		if x.DropCaps&(1<<3) == 0 || x.DropCaps&^0x1fb != 0 {
			t.Fatalf("drops %#x: must keep the container's and stay within Oak's eight", x.DropCaps)
		}
	})
}

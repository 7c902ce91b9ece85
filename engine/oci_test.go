package engine

import (
	"encoding/json"
	"errors"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/oak-engine/oak/sandbox"
)

// podmanConfig is the config.json podman 4.3 writes for `podman run --rm
// --network none --ulimit nofile=1024:1024 --ulimit nproc=4096:4096
// --rootfs /r true` (seccomp profile shortened).
const podmanConfig = `{
  "ociVersion": "1.0.2-dev",
  "process": {"user": {"uid": 0, "gid": 0, "umask": 18}, "args": ["true"],
    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm", "HOME=/root", "HOSTNAME=ecf24ec36cf7"],
    "cwd": "/",
    "capabilities": {
      "bounding": ["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FOWNER","CAP_FSETID","CAP_KILL","CAP_NET_BIND_SERVICE","CAP_SETFCAP","CAP_SETGID","CAP_SETPCAP","CAP_SETUID","CAP_SYS_CHROOT"],
      "effective": ["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FOWNER","CAP_FSETID","CAP_KILL","CAP_NET_BIND_SERVICE","CAP_SETFCAP","CAP_SETGID","CAP_SETPCAP","CAP_SETUID","CAP_SYS_CHROOT"],
      "permitted": ["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FOWNER","CAP_FSETID","CAP_KILL","CAP_NET_BIND_SERVICE","CAP_SETFCAP","CAP_SETGID","CAP_SETPCAP","CAP_SETUID","CAP_SYS_CHROOT"]},
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}, {"type": "RLIMIT_NPROC", "hard": 4096, "soft": 4096}]},
  "root": {"path": "/r"},
  "hostname": "ecf24ec36cf7",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid","noexec","nodev"]},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid","noexec","strictatime","mode=755","size=65536k"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid","noexec","nodev","ro"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620","gid=5"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid","noexec","nodev"]},
    {"destination": "/etc/hosts", "type": "bind", "source": "/run/u/hosts", "options": ["bind","rprivate"]},
    {"destination": "/dev/shm", "type": "bind", "source": "/var/u/shm", "options": ["bind","rprivate","nosuid","noexec","nodev"]},
    {"destination": "/run/.containerenv", "type": "bind", "source": "/run/u/.containerenv", "options": ["bind","rprivate"]},
    {"destination": "/etc/hostname", "type": "bind", "source": "/run/u/hostname", "options": ["bind","rprivate"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["rprivate","nosuid","noexec","nodev","relatime","ro"]}],
  "annotations": {"io.container.manager": "libpod"},
  "linux": {
    "sysctl": {"net.ipv4.ping_group_range": "0 0"},
    "resources": {"devices": [{"allow": false, "access": "rwm"}], "pids": {"limit": 2048}},
    "cgroupsPath": "/libpod_parent/libpod-ecf2",
    "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
    "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]},
    "maskedPaths": ["/proc/acpi", "/proc/kcore"],
    "readonlyPaths": ["/proc/asound", "/proc/bus"]}
}`

func hostLimit(res int) uint64 { return 20000 }

func mapJSON(t *testing.T, config string, strict bool) (*OCIContainer, error) {
	t.Helper()
	s, err := ParseOCIConfig([]byte(config))
	if err != nil {
		return nil, err
	}
	return MapOCISpec("/bundle", s, OCIOptions{Strict: strict, HostHardLimit: hostLimit})
}

func TestMapPodmanConfig(t *testing.T) {
	c, err := mapJSON(t, podmanConfig, false)
	if err != nil {
		t.Fatal(err)
	}
	if c.RootFS != "/r" || c.Hostname != "ecf24ec36cf7" || !slices.Equal(c.Args, []string{"true"}) || c.Cwd != "/" {
		t.Errorf("mapped %+v", c)
	}
	if c.Limits.Pids != 2048 || c.Limits.MemoryBytes != DefaultMemoryBytes {
		t.Errorf("limits %+v: want pids 2048 and Oak's default memory", c.Limits)
	}
	want := []OCICopyFile{{"/run/u/hosts", "/etc/hosts"}, {"/run/u/.containerenv", "/run/.containerenv"}, {"/run/u/hostname", "/etc/hostname"}}
	if !slices.Equal(c.CopyFiles, want) {
		t.Errorf("copied files %v, want %v", c.CopyFiles, want)
	}
	if len(c.Rlimits) != 2 || c.Rlimits[0] != (OCIRlimit{Resource: 7, Soft: 1024, Hard: 1024}) {
		t.Errorf("rlimits %+v", c.Rlimits)
	}
	// Narrowed, and said so: the three capabilities beyond Oak's, the
	// seccomp profile and the sysctl.
	all := strings.Join(c.Warnings, "\n")
	for _, w := range []string{"CAP_NET_BIND_SERVICE, CAP_SETFCAP, CAP_SYS_CHROOT not granted", "linux.seccomp", "net.ipv4.ping_group_range"} {
		if !strings.Contains(all, w) {
			t.Errorf("warnings do not mention %q:\n%s", w, all)
		}
	}
	// Strict mode refuses the first of them, naming the field.
	_, err = mapJSON(t, podmanConfig, true)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "process.capabilities.bounding[5]" || !strings.Contains(err.Error(), "CAP_NET_BIND_SERVICE") {
		t.Errorf("strict: %v, want a refusal of process.capabilities.bounding[5] (CAP_NET_BIND_SERVICE)", err)
	}
}

// edit returns podmanConfig changed by f.
func edit(t *testing.T, f func(s *specs.Spec)) string {
	t.Helper()
	var s specs.Spec
	if err := json.Unmarshal([]byte(podmanConfig), &s); err != nil {
		t.Fatal(err)
	}
	f(&s)
	b, err := json.Marshal(&s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestMapPodNamespaces: a pod's sandbox names a network namespace path,
// its containers the sandbox's network, ipc and uts namespaces; the
// mapping keeps them for the runtime to check, and drops a host name the
// joined uts namespace has already.
func TestMapPodNamespaces(t *testing.T) {
	s, err := ParseOCIConfig([]byte(edit(t, func(s *specs.Spec) {
		s.Hostname = "pod"
		s.Linux.Namespaces = []specs.LinuxNamespace{{Type: "pid"}, {Type: "mount"},
			{Type: "network", Path: "/proc/42/ns/net"}, {Type: "ipc", Path: "/proc/42/ns/ipc"}, {Type: "uts", Path: "/proc/42/ns/uts/"}}
	})))
	if err != nil {
		t.Fatal(err)
	}
	c, err := MapOCISpec("/bundle", s, OCIOptions{HostHardLimit: hostLimit})
	if err != nil {
		t.Fatal(err)
	}
	want := []OCIJoin{{"network", "/proc/42/ns/net", "linux.namespaces[2].path"}, {"ipc", "/proc/42/ns/ipc", "linux.namespaces[3].path"},
		{"uts", "/proc/42/ns/uts", "linux.namespaces[4].path"}}
	if !slices.Equal(c.Join, want) {
		t.Errorf("joins %+v, want %+v", c.Join, want)
	}
	if c.Hostname != "" || !slices.ContainsFunc(c.Warnings, func(w string) bool { return strings.Contains(w, "joined uts namespace") }) {
		t.Errorf("host name %q, warnings %q: want it dropped with a warning", c.Hostname, c.Warnings)
	}

	// The kubelet's termination-message file is a host file: left out
	// with a warning, refused in strict mode.
	withLog := edit(t, func(s *specs.Spec) {
		s.Process.Capabilities, s.Linux.Seccomp, s.Linux.Sysctl = nil, nil, nil // what strict mode would refuse first
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/dev/termination-log", Type: "bind", Source: "/var/lib/kubelet/pods/x/c", Options: []string{"rbind"}})
	})
	c, err = mapJSON(t, withLog, false)
	if err != nil || slices.ContainsFunc(c.CopyFiles, func(f OCICopyFile) bool { return f.Target == "/dev/termination-log" }) || !slices.ContainsFunc(c.Warnings, func(w string) bool { return strings.Contains(w, "mounts[10]: /dev/termination-log not mounted") }) {
		t.Errorf("termination log: %v, copies %v, warnings %q: want it left out with a warning", err, c.CopyFiles, c.Warnings)
	}
	if _, err := mapJSON(t, withLog, true); err == nil || !strings.Contains(err.Error(), "mounts[10]: /dev/termination-log not mounted") {
		t.Errorf("termination log, strict: %v, want a refusal of mounts[10]", err)
	}
}

func TestMapRefusals(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	cases := []struct {
		name   string
		config string
		field  string // the FieldError's field; "" for a decoding error
		says   string
	}{
		{"not JSON", `{"ociVersion": "1.0.2",`, "", "config.json"},
		{"unknown major version", edit(t, func(s *specs.Spec) { s.Version = "2.0.0" }), "ociVersion", "2.0.0"},
		{"no version", edit(t, func(s *specs.Spec) { s.Version = "" }), "ociVersion", ""},
		{"root outside the bundle", edit(t, func(s *specs.Spec) { s.Root.Path = "../../etc" }), "root.path", "outside the bundle"},
		{"no root", edit(t, func(s *specs.Spec) { s.Root = nil }), "root.path", "missing"},
		{"no process", edit(t, func(s *specs.Spec) { s.Process = nil }), "process", "missing"},
		{"no command", edit(t, func(s *specs.Spec) { s.Process.Args = nil }), "process.args", "no command"},
		{"relative cwd", edit(t, func(s *specs.Spec) { s.Process.Cwd = "tmp" }), "process.cwd", "absolute"},
		{"bad env", edit(t, func(s *specs.Spec) { s.Process.Env = append(s.Process.Env, "NOEQUALS") }), "process.env[4]", "KEY=VALUE"},
		{"uid outside the block", edit(t, func(s *specs.Spec) { s.Process.User.UID = 70000 }), "process.user", "0..65535"},
		{"host directory", edit(t, func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "/srv", Options: []string{"rbind"}})
		}), "mounts[10]", "Oak grants no host directories"},
		{"host directory by option", edit(t, func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "none", Source: "/", Options: []string{"bind"}})
		}), "mounts[10]", "Oak grants no host directories"},
		{"host /sys", edit(t, func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys", Options: []string{"rbind"}})
		}), "mounts[10]", "Oak grants no host directories"},
		{"other file system", edit(t, func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "nfs", Source: "srv:/x"})
		}), "mounts[10]", `"nfs" mount on /mnt`},
		{"relative destination", edit(t, func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "mnt", Type: "tmpfs", Source: "tmpfs"})
		}), "mounts[10]", "not an absolute path"},
		{"relative network namespace path", edit(t, func(s *specs.Spec) { s.Linux.Namespaces[1].Path = "netns/pod" }),
			"linux.namespaces[1].path", "not an absolute path"},
		{"mount namespace path", edit(t, func(s *specs.Spec) { s.Linux.Namespaces[4].Path = "/proc/1/ns/mnt" }),
			"linux.namespaces[4].path", "joining the mount namespace"},
		{"pid namespace path", edit(t, func(s *specs.Spec) { s.Linux.Namespaces[0].Path = "/proc/1/ns/pid" }),
			"linux.namespaces[0].path", "joining the pid namespace"},
		{"user namespace path", edit(t, func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "user", Path: "/proc/1/ns/user"})
		}), "linux.namespaces[5].path", "joining the user namespace"},
		{"cgroup namespace path", edit(t, func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "cgroup", Path: "/proc/1/ns/cgroup"})
		}), "linux.namespaces[5].path", "joining the cgroup namespace"},
		{"two network namespace paths", edit(t, func(s *specs.Spec) {
			s.Linux.Namespaces[1].Path = "/run/netns/a"
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "network", Path: "/run/netns/b"})
		}), "linux.namespaces[5].path", "a second path"},
		{"unknown namespace", edit(t, func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "time"})
		}),
			"linux.namespaces[5]", `"time"`},
		{"id mappings", edit(t, func(s *specs.Spec) {
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 1}}
		}), "linux.uidMappings", "id block of its own"},
		{"device", edit(t, func(s *specs.Spec) { s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/sda", Type: "b", Major: 8}} }),
			"linux.devices[0]", "/dev/sda"},
		{"rlimit above the host", edit(t, func(s *specs.Spec) { s.Process.Rlimits[0].Hard, s.Process.Rlimits[0].Soft = 1048576, 1048576 }),
			"process.rlimits[0]", "above this host's hard limit 20000"},
		{"rlimit soft above hard", edit(t, func(s *specs.Spec) { s.Process.Rlimits[1].Soft = 5000 }), "process.rlimits[1]", "above its hard limit"},
		{"unknown rlimit", edit(t, func(s *specs.Spec) { s.Process.Rlimits[0].Type = "RLIMIT_BOGUS" }), "process.rlimits[0]", "RLIMIT_BOGUS"},
		{"hooks", edit(t, func(s *specs.Spec) {
			s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/usr/bin/true"}}}
		}), "hooks", "no host programs"},
		{"memory below the minimum", edit(t, func(s *specs.Spec) {
			s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(1 << 20)}
		}), "linux.resources", "at least 6 MiB"},
		{"shared propagation", edit(t, func(s *specs.Spec) { s.Linux.RootfsPropagation = "shared" }), "linux.rootfsPropagation", "private"},
		{"personality", edit(t, func(s *specs.Spec) { s.Linux.Personality = &specs.LinuxPersonality{Domain: "LINUX32"} }), "linux.personality", ""},
		{"unknown capability", edit(t, func(s *specs.Spec) {
			s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_TEST")
		}), "process.capabilities.bounding[11]", `"CAP_TEST" is not a Linux capability`},
		{"relative masked path", edit(t, func(s *specs.Spec) { s.Linux.MaskedPaths = []string{"etc/shadow"} }), "linux.maskedPaths[0]", "not an absolute path"},
		{"group outside the block", edit(t, func(s *specs.Spec) { s.Process.User.AdditionalGids = []uint32{5, 65536} }),
			"process.user.additionalGids[1]", "0..65535"},
		{"relative read-only path", edit(t, func(s *specs.Spec) { s.Linux.ReadonlyPaths = []string{"etc"} }), "linux.readonlyPaths[0]", "not an absolute path"},
		{"masked root", edit(t, func(s *specs.Spec) { s.Linux.MaskedPaths = []string{"/x/.."} }), "linux.maskedPaths[0]", "whole root"},
		{"oom score above the range", edit(t, func(s *specs.Spec) { v := 1001; s.Process.OOMScoreAdj = &v }), "process.oomScoreAdj", "-1000..1000"},
		{"oom score below the range", edit(t, func(s *specs.Spec) { v := -1001; s.Process.OOMScoreAdj = &v }), "process.oomScoreAdj", "-1000..1000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := mapJSON(t, c.config, false)
			if err == nil {
				t.Fatalf("mapped to %+v, want a refusal", got)
			}
			var fe *FieldError
			switch {
			case c.field == "" && !strings.HasPrefix(err.Error(), "config.json: "):
				t.Errorf("error %q does not name config.json", err)
			case c.field != "" && (!errors.As(err, &fe) || fe.Field != c.field):
				t.Errorf("error %q, want one naming %s", err, c.field)
			case !strings.Contains(err.Error(), c.says):
				t.Errorf("error %q does not say %q", err, c.says)
			}
		})
	}
}

// process.oomScoreAdj is carried to the supervisor, which writes it for
// the init; without it the init keeps the runtime's value.
func TestMapOOMScoreAdj(t *testing.T) {
	for _, v := range []int{-1000, 0, 500, 1000} {
		c, err := mapJSON(t, edit(t, func(s *specs.Spec) { s.Process.OOMScoreAdj = &v }), false)
		if err != nil {
			t.Fatalf("oomScoreAdj %d: %v", v, err)
		}
		if c.OOMScoreAdj == nil || *c.OOMScoreAdj != v {
			t.Errorf("oomScoreAdj %d mapped to %v", v, c.OOMScoreAdj)
		}
	}
	c, err := mapJSON(t, podmanConfig, false)
	if err != nil {
		t.Fatal(err)
	}
	if c.OOMScoreAdj != nil {
		t.Errorf("no oomScoreAdj mapped to %d", *c.OOMScoreAdj)
	}
}

// Supplementary groups of the container's own block are the command's,
// once each, in the bundle's order, in strict mode too.
func TestMapAdditionalGids(t *testing.T) {
	for _, strict := range []bool{false, true} {
		s := edit(t, func(s *specs.Spec) {
			s.Process.User.AdditionalGids = []uint32{5, 100, 5, 65535}
			s.Process.Capabilities, s.Linux.Seccomp, s.Linux.Sysctl = nil, nil, nil
		})
		c, err := mapJSON(t, s, strict)
		if err != nil {
			t.Fatalf("strict %v: %v", strict, err)
		}
		if want := []uint32{5, 100, 65535}; !slices.Equal(c.Groups, want) {
			t.Errorf("strict %v: groups %v, want %v", strict, c.Groups, want)
		}
	}
}

// Masked paths in Oak's own file systems need nothing; the image's are
// kept, cleaned, once each.
func TestMapMaskedPaths(t *testing.T) {
	c, err := mapJSON(t, edit(t, func(s *specs.Spec) {
		s.Linux.MaskedPaths = []string{"/proc/kcore", "/sys/firmware", "/dev/x", "/tmp/y", "/etc/secret", "/srv/a/../b", "/etc/secret"}
	}), false)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/etc/secret", "/srv/b"}; !slices.Equal(c.MaskedPaths, want) {
		t.Errorf("masked paths %q, want %q", c.MaskedPaths, want)
	}
	c, err = mapJSON(t, edit(t, func(s *specs.Spec) {
		s.Linux.ReadonlyPaths = []string{"/proc/sys", "/etc", "/etc/", "/srv/x"}
	}), false)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/etc", "/srv/x"}; !slices.Equal(c.ReadOnlyPaths, want) || c.ReadOnly {
		t.Errorf("read-only paths %q (root read-only %v), want %q", c.ReadOnlyPaths, c.ReadOnly, want)
	}
	// A read-only "/" is a read-only root.
	c, err = mapJSON(t, edit(t, func(s *specs.Spec) { s.Linux.ReadonlyPaths = []string{"/"} }), false)
	if err != nil || !c.ReadOnly || len(c.ReadOnlyPaths) != 0 {
		t.Errorf("readonlyPaths [/]: %+v, %v; want a read-only root", c, err)
	}
}

// Root gets of Oak's eight only what every listed set of the bundle gives.
func TestMapFewerCapabilities(t *testing.T) {
	c, err := mapJSON(t, edit(t, func(s *specs.Spec) {
		s.Process.Capabilities = &specs.LinuxCapabilities{
			Bounding:  []string{"CAP_CHOWN", "CAP_KILL", "CAP_SETUID", "CAP_NET_RAW"},
			Effective: []string{"CAP_CHOWN", "CAP_KILL"},
		}
	}), false)
	if err != nil {
		t.Fatal(err)
	}
	// Kept: CHOWN (0) and KILL (5); everything else of the eight dropped.
	if want := uint64(0x1fb &^ (1<<0 | 1<<5)); c.DropCaps != want {
		t.Errorf("DropCaps %#x, want %#x", c.DropCaps, want)
	}
	c, err = mapJSON(t, podmanConfig, false)
	if err != nil || c.DropCaps != 0 {
		t.Errorf("podman's set drops %#x (%v), want none of Oak's eight", c.DropCaps, err)
	}
}

func TestMapResources(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	u64 := func(v uint64) *uint64 { return &v }
	c, err := mapJSON(t, edit(t, func(s *specs.Spec) {
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(64 << 20)}
		s.Linux.Resources.CPU = &specs.LinuxCPU{Quota: i64(50000), Period: u64(100000)}
		s.Linux.Resources.Pids.Limit = -1
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/run", Type: "tmpfs", Source: "tmpfs"})
		s.Root.Path, s.Root.Readonly = "rootfs", true
	}), false)
	if err != nil {
		t.Fatal(err)
	}
	want := sandbox.Limits{MemoryBytes: 64 << 20, CPUMilli: 500}
	if c.Limits != want {
		t.Errorf("limits %+v, want %+v", c.Limits, want)
	}
	if !slices.Equal(c.Tmpfs, []string{"/run"}) {
		t.Errorf("tmpfs %v, want [/run]", c.Tmpfs)
	}
	if c.RootFS != "/bundle/rootfs" || !c.ReadOnly {
		t.Errorf("root %s read-only %v, want /bundle/rootfs read-only", c.RootFS, c.ReadOnly)
	}
}

// FuzzOCIConfig maps arbitrary config.json: it must never panic, and what
// it accepts must stay inside Oak's model.
func FuzzOCIConfig(f *testing.F) {
	f.Add([]byte(podmanConfig))
	f.Add([]byte(`{"ociVersion":"1.0.0","process":{"args":["sh"],"cwd":"/"},"root":{"path":"rootfs"},"linux":{}}`))
	f.Add([]byte(`{"ociVersion":"1.2.0","process":{"args":["a"],"cwd":"/x/../.."},"root":{"path":"a/../../b"},"linux":{"namespaces":[{"type":"network","path":"/proc/1/ns/net"}]}}`))
	f.Add([]byte(`{"ociVersion":"1.0.2","hostname":"h","process":{"args":["a"],"cwd":"/"},"root":{"path":"r"},"linux":{"namespaces":[{"type":"ipc","path":"/proc/9/ns/ipc"},{"type":"uts","path":"/proc/9/ns/uts"},{"type":"network","path":"/var/run/netns/cni-1"},{"type":"pid","path":"/proc/9/ns/pid"}]}}`))
	f.Add([]byte(`{"ociVersion":"1","process":{"args":["a"],"cwd":"/","rlimits":[{"type":"RLIMIT_NOFILE","hard":99999999999,"soft":1}]},"root":{"path":"/"},"linux":{"resources":{"cpu":{"quota":1,"period":1}}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseOCIConfig(b)
		if err != nil {
			return
		}
		c, err := MapOCISpec("/bundle", s, OCIOptions{HostHardLimit: hostLimit})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "config.json: ") {
				t.Fatalf("refusal %q does not name config.json", err)
			}
			return
		}
		if !filepath.IsAbs(c.RootFS) || (!filepath.IsAbs(s.Root.Path) && c.RootFS != "/bundle" && !strings.HasPrefix(c.RootFS, "/bundle/")) {
			t.Fatalf("root %q (root.path %q) outside the bundle", c.RootFS, s.Root.Path)
		}
		if c.UID >= idSize || c.GID >= idSize {
			t.Fatalf("ids %d:%d outside the container's block", c.UID, c.GID)
		}
		if err := c.Limits.Check(); err != nil {
			t.Fatalf("accepted limits the sandbox refuses: %v", err)
		}
		if s.Process.Capabilities != nil {
			for _, cp := range s.Process.Capabilities.Bounding {
				if !slices.Contains(linuxCapabilities, cp) {
					t.Fatalf("accepted capability %q", cp)
				}
			}
		}
		if c.DropCaps&^0x1fb != 0 {
			t.Fatalf("drops %#x, outside Oak's eight", c.DropCaps)
		}
		for _, r := range c.Rlimits {
			if r.Hard > hostLimit(r.Resource) || r.Soft > r.Hard {
				t.Fatalf("accepted rlimit %+v", r)
			}
		}
		for _, g := range c.Groups {
			if g >= idSize {
				t.Fatalf("group %d outside the container's block", g)
			}
		}
		if v := c.OOMScoreAdj; v != nil && (*v < -1000 || *v > 1000) {
			t.Fatalf("accepted oomScoreAdj %d", *v)
		}
		for _, m := range append(c.MaskedPaths, c.ReadOnlyPaths...) {
			if !path.IsAbs(m) || m == "/" || ownFS(m) || path.Clean(m) != m {
				t.Fatalf("masks %q", m)
			}
		}
		for _, f := range c.CopyFiles {
			if !slices.Contains(copiedFiles, f.Target) {
				t.Fatalf("copies a host file onto %s", f.Target)
			}
		}
		task := sandbox.Task{ID: "x", Layers: []string{c.RootFS}, Scratch: "/s", Args: c.Args, Tmpfs: c.Tmpfs, ReadOnlyPaths: c.ReadOnlyPaths, Groups: c.Groups,
			IDs: sandbox.IDRange{Host: ociIDBase, Size: idSize}, Limits: c.Limits}
		if err := task.Validate(); err != nil {
			t.Fatalf("accepted a bundle the sandbox refuses: %v", err)
		}
		for _, j := range c.Join {
			if j.Type != specs.NetworkNamespace && j.Type != specs.IPCNamespace && j.Type != specs.UTSNamespace {
				t.Fatalf("accepted joining a %s namespace (%s)", j.Type, j.Path)
			}
			if !filepath.IsAbs(j.Path) || !strings.HasPrefix(j.Field, "linux.namespaces[") {
				t.Fatalf("accepted namespace path %q (%s)", j.Path, j.Field)
			}
			if j.Type == specs.UTSNamespace && c.Hostname != "" {
				t.Fatalf("sets host name %q in a joined uts namespace", c.Hostname)
			}
		}
	})
}

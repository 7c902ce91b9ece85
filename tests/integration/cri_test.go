//go:build linux

package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Pods: oak-runtime running the containers of a Kubernetes pod the way
// containerd's CRI plugin asks for them — a sandbox ("pause") container in
// a network namespace a CNI plugin made, and app containers that join the
// sandbox's network, ipc and uts namespaces by /proc/PID/ns paths — first
// driven directly, then through containerd's CRI with a Go client acting
// as the kubelet.

// newNetns makes a network namespace held by a bind mount on a file in the
// test's temp dir (as CNI's netns files are) with its loopback up, and
// removes it at cleanup.
func newNetns(t *testing.T) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "netns")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("unshare", "--net="+f, "true").CombinedOutput(); err != nil {
		t.Fatalf("unshare --net=%s: %v %s", f, err, out)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(f, syscall.MNT_DETACH); err != nil {
			t.Errorf("cleanup: unmount %s: %v", f, err)
		}
	})
	if out, err := exec.Command("nsenter", "--net="+f, "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("loopback up: %v %s", err, out)
	}
	return f
}

// ociInit is the host pid of container id's init, from its state record.
func (r *rtEnv) ociInit(id string) (init, member int) {
	r.t.Helper()
	var rec struct {
		Init   int `json:"init"`
		Member int `json:"member"`
	}
	b, err := os.ReadFile(filepath.Join(r.root, id, "state.json"))
	if err == nil {
		err = json.Unmarshal(b, &rec)
	}
	if err != nil || rec.Init == 0 {
		r.t.Fatalf("state of %s: %v %s", id, err, b)
	}
	return rec.Init, rec.Member
}

// nsOf is the namespace /proc/PID/ns/NAME links to ("net:[4026…]").
func nsOf(t *testing.T, pid int, name string) string {
	t.Helper()
	s, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitFile polls until path has a line containing want (bounded).
func waitFile(t *testing.T, path, want string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), want) {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never said %q; it has:\n%s", path, want, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRuntimePodNamespaces: a sandbox container in a network namespace
// made outside Oak, and a member container that joins its network, ipc
// and uts namespaces: they share loopback, sockets are native there (no
// grant needed), the member shares the sandbox's id block in a user
// namespace of its own, has no capability over the joined namespaces,
// keeps its own mount and pid namespaces, and outlives a sandbox that ends
// first without its id block being handed to anyone else meanwhile.
func TestRuntimePodNamespaces(t *testing.T) {
	needOak(t, true)
	r := newRuntime(t)
	netns := newNetns(t)
	pod := "pod-" + randHex(t)
	podOut := tempFile(t)
	b := bundle(t, []string{"sh", "-c", "probe uid-map; probe serve 8080 1 hello-from-pod; exec sleep 1000"}, func(s *specs.Spec) {
		s.Hostname = "podhost"
		s.Linux.Namespaces[1].Path = netns
	})
	if res := r.run(podOut, "create", "--bundle", b, pod); res.code != 0 {
		t.Fatalf("create sandbox: %s", res)
	}
	if res := r.run(nil, "start", pod); res.code != 0 {
		t.Fatalf("start sandbox: %s", res)
	}
	waitFile(t, podOut.Name(), "listening 8080")
	podInit, podMember := r.ociInit(pod)
	if podMember != 0 {
		t.Errorf("the sandbox is member %d of another block", podMember)
	}
	if got, want := nsOf(t, podInit, "net"), nsOfFile(t, netns); got != want {
		t.Errorf("sandbox is in network namespace %s, want the one at %s, %s", got, netns, want)
	}

	app := "app-" + randHex(t)
	appOut := tempFile(t)
	ns := func(typ string) string { return "/proc/" + strconv.Itoa(podInit) + "/ns/" + typ }
	ab := bundle(t, []string{"sh", "-c", "probe connect 127.0.0.1:8080; probe uid-map; hostname; probe sethostname other; " +
		"probe socket 16 3; probe mount; probe unshare net; echo ready; exec sleep 1000"}, func(s *specs.Spec) {
		s.Hostname = "ignored"
		s.Linux.Namespaces = []specs.LinuxNamespace{{Type: "pid"}, {Type: "mount"},
			{Type: "network", Path: ns("net")}, {Type: "ipc", Path: ns("ipc")}, {Type: "uts", Path: ns("uts")}}
	})
	if res := r.run(appOut, "run", "-d", "--bundle", ab, app); res.code != 0 {
		t.Fatalf("run member: %s", res)
	}
	out := waitFile(t, appOut.Name(), "ready")
	podText := waitFile(t, podOut.Name(), "listening 8080\nok\n")
	podMap := strings.Fields(strings.SplitN(podText, "\n", 2)[0])
	want := "ok\n" + strings.SplitN(podText, "\n", 2)[0] + "\npodhost\nerr EPERM\nerr EACCES\nerr EPERM\nerr EPERM\nready\n"
	if out != want {
		t.Errorf("member says:\n%s\nwant (connect over the pod's loopback; the sandbox's id block; its host name, which it may not change; no netlink, mount or new namespace):\n%s", out, want)
	}
	appInit, member := r.ociInit(app)
	appProc, _ := readStat(appInit)
	if member == 0 {
		t.Errorf("member container holds no member lock of the sandbox's block")
	}
	for _, n := range []string{"net", "ipc", "uts"} {
		if a, p := nsOf(t, appInit, n), nsOf(t, podInit, n); a != p {
			t.Errorf("%s namespace: member in %s, sandbox in %s", n, a, p)
		}
	}
	for _, n := range []string{"user", "mnt", "pid", "cgroup"} {
		if a, p := nsOf(t, appInit, n), nsOf(t, podInit, n); a == p {
			t.Errorf("%s namespace %s shared with the sandbox; want one of its own", n, a)
		}
	}

	// The sandbox ends first: the member runs on, and its id block is not
	// given to a new container while it does.
	if res := r.run(nil, "delete", "--force", pod); res.code != 0 {
		t.Fatalf("delete sandbox: %s", res)
	}
	if !(hostProc{pid: appInit, start: appProc.start}).alive() {
		t.Fatalf("the member ended with its sandbox")
	}
	other := "other-" + randHex(t)
	otherOut := tempFile(t)
	if res := r.run(otherOut, "run", "--bundle", bundle(t, []string{"probe", "uid-map"}, nil), other); res.code != 0 {
		t.Fatalf("run another container: %s", res)
	}
	if f := strings.Fields(readAll(otherOut)); len(f) < 2 || len(podMap) < 2 || f[1] == podMap[1] {
		t.Errorf("a new container got id map %q while the sandbox's block %q is still used by its member", f, podMap)
	}
	if res := r.run(nil, "delete", "--force", app); res.code != 0 {
		t.Fatalf("delete member: %s", res)
	}
}

// nsOfFile is nsOf for a namespace file (a bind mount of one).
func nsOfFile(t *testing.T, path string) string {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return "net:[" + strconv.FormatUint(st.Ino, 10) + "]"
}

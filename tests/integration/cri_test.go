//go:build linux

package integration

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/oak-engine/oak/sandbox/policy"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
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
		"probe socket 16 3; probe socket 2 3 1; probe socket 17 3; probe mount; probe unshare net; echo ready; exec sleep 1000"}, func(s *specs.Spec) {
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
	want := "ok\n" + strings.SplitN(podText, "\n", 2)[0] + "\npodhost\nerr EPERM\nerr EACCES\nerr EPERM\nerr EACCES\nerr EPERM\nerr EPERM\nready\n"
	if out != want {
		t.Errorf("member says:\n%s\nwant (connect over the pod's loopback; the sandbox's id block; its host name, which it may not change; no netlink socket, no raw socket (no capability over the pod's namespace), no packet socket, no mount or new namespace):\n%s", out, want)
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
	// A container in a joined network namespace runs under the
	// pod-network filter, read back from the kernel; others under the table's.
	podFilter, err := policy.PodNetworkProgram()
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range []int{podInit, appInit} {
		filters, err := policy.InstalledFilters(pid)
		if err != nil || len(filters) != 1 || !slices.Equal(filters[0], podFilter) {
			t.Errorf("pid %d: installed filters (%d, %v) are not exactly policy.PodNetworkProgram()", pid, len(filters), err)
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

// ---- containerd's CRI ----

// criImage writes a docker-save archive of one layer (the directory dir)
// named ref, whose command is cmd, and returns its path.
func criImage(t *testing.T, dir, ref string, cmd []string) string {
	t.Helper()
	out := t.TempDir()
	layer := filepath.Join(out, "layer.tar")
	if b, err := exec.Command("tar", "--numeric-owner", "-C", dir, "-cf", layer, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar %s: %v %s", dir, err, b)
	}
	lb, err := os.ReadFile(layer)
	if err != nil {
		t.Fatal(err)
	}
	config, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Entrypoint": cmd, "Env": []string{"PATH=/bin:/usr/bin"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{fmt.Sprintf("sha256:%x", sha256.Sum256(lb))}},
	})
	manifest, _ := json.Marshal([]map[string]any{{"Config": "config.json", "RepoTags": []string{ref}, "Layers": []string{"layer.tar"}}})
	archive := filepath.Join(out, "image.tar")
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	for _, e := range []struct {
		name string
		data []byte
	}{{"manifest.json", manifest}, {"config.json", config}, {"layer.tar", lb}} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.data)
	}
	if err := errors.Join(tw.Close(), f.Close()); err != nil {
		t.Fatal(err)
	}
	return archive
}

// criEnv is a private containerd with its CRI plugin, runtime handler
// "oak" (the runc shim running oak-runtime) and a bridge network of its
// own, and a CRI client acting as the kubelet.
type criEnv struct {
	t      *testing.T
	dir    string
	sock   string
	rt     *rtEnv
	bridge string
	log    *os.File
	cri    runtimeapi.RuntimeServiceClient
}

const (
	criPauseImage = "oak.test/pause:1"
	criAppImage   = "oak.test/app:1"
)

func newCRI(t *testing.T) *criEnv {
	t.Helper()
	for _, b := range []string{"containerd", "ctr", "containerd-shim-runc-v2", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/loopback"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("containerd's CRI test needs %s (Debian: containerd, containernetworking-plugins): %v", b, err)
		}
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skipf("the pause image is built with gcc -static: %v", err)
	}
	c := &criEnv{t: t, dir: t.TempDir(), rt: newRuntime(t), bridge: "oakbr" + randHex(t)[:6]}
	c.sock = filepath.Join(c.dir, "c.sock")
	// The runc shim runs the runtime with --root ROOT/NAMESPACE.
	shimRoot := c.rt.root
	c.rt.root = filepath.Join(shimRoot, "k8s.io")
	// The pod network: a bridge of this test's with addresses from
	// host-local, whose state stays in the test's directory. No gateway
	// and no masquerading: the host's forwarding setting and firewall are
	// left alone. The CRI plugin adds the loopback plugin itself.
	cniConf := filepath.Join(c.dir, "cni")
	os.MkdirAll(cniConf, 0o755)
	conflist := fmt.Sprintf(`{"cniVersion": "0.4.0", "name": "oaktest", "plugins": [
  {"type": "bridge", "bridge": %q, "isGateway": false, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.231.%d.0/24"}]], "dataDir": %q}}]}`,
		c.bridge, 1+randByte(t)%250, filepath.Join(c.dir, "ipam"))
	if err := os.WriteFile(filepath.Join(cniConf, "10-oaktest.conflist"), []byte(conflist), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := net.InterfaceByName(c.bridge); err == nil {
			if out, err := exec.Command("ip", "link", "del", c.bridge).CombinedOutput(); err != nil {
				t.Errorf("cleanup: delete bridge %s: %v %s", c.bridge, err, out)
			}
		}
	})
	config := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
[grpc]
  address = %[3]q
[ttrpc]
  address = "%[3]s.ttrpc"
[debug]
  address = %[4]q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[5]q
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "oak"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.oak]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.oak.options]
        BinaryName = %[6]q
        Root = %[7]q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %[8]q
`, filepath.Join(c.dir, "root"), filepath.Join(c.dir, "state"), c.sock, filepath.Join(c.dir, "debug.sock"),
		criPauseImage, c.rt.bin, shimRoot, cniConf)
	if err := os.WriteFile(filepath.Join(c.dir, "config.toml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	c.log = tempFile(t)
	d := exec.Command("containerd", "--config", filepath.Join(c.dir, "config.toml"))
	d.Stdout, d.Stderr = c.log, c.log
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Process.Signal(syscall.SIGTERM)
		d.Wait()
		// Shims outlive containerd by design; the pods were removed
		// above, so one still running here is a leak, ended by its pid.
		out, _ := exec.Command("pgrep", "-f", "containerd-shim-runc-v2 .*-address "+c.sock).Output()
		for _, f := range strings.Fields(string(out)) {
			t.Errorf("cleanup: shim %s of the test's containerd still runs; killing it", f)
			if pid, err := strconv.Atoi(f); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		// Nothing of the test's containerd may stay mounted.
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		for _, l := range strings.Split(string(mi), "\n") {
			if strings.Contains(l, c.dir) {
				t.Errorf("left mounted: %s", l)
			}
		}
	})
	conn, err := grpc.NewClient("unix://"+c.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	c.cri = runtimeapi.NewRuntimeServiceClient(conn)
	t.Cleanup(func() {
		// What a failed test left: every pod, stopped and removed.
		ctx, cancel := c.ctx()
		defer cancel()
		if pods, err := c.cri.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{}); err == nil {
			for _, p := range pods.Items {
				c.cri.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.Id})
				if _, err := c.cri.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id}); err != nil {
					t.Errorf("cleanup: remove pod %s: %v", p.Id, err)
				}
			}
		}
		conn.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := c.ctx()
		_, err := c.cri.Version(ctx, &runtimeapi.VersionRequest{})
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd's CRI did not come up: %v\n%s", err, readAll(c.log))
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The pause image: a static C program that sleeps until signalled.
	pauseDir := t.TempDir()
	if out, err := exec.Command("gcc", "-static", "-O2", "-o", filepath.Join(pauseDir, "pause"), "testdata/pause.c").CombinedOutput(); err != nil {
		t.Fatalf("build testdata/pause.c: %v\n%s", err, out)
	}
	for _, img := range []string{criImage(t, pauseDir, criPauseImage, []string{"/pause"}), criImage(t, rootfsDir, criAppImage, []string{"sh"})} {
		cmd := exec.Command("ctr", "-a", c.sock, "-n", "k8s.io", "images", "import", img)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ctr images import %s: %v\n%s", img, err, out)
		}
	}
	return c
}

func randByte(t *testing.T) int {
	n, _ := strconv.ParseUint(randHex(t)[:2], 16, 8)
	return int(n)
}

func (c *criEnv) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), oakTimeout)
}

// must fails the test on a CRI error, with containerd's log.
func (c *criEnv) must(what string, err error) {
	c.t.Helper()
	if err != nil {
		c.t.Fatalf("%s: %v\ncontainerd:\n%s", what, err, tail(readAll(c.log), 40))
	}
}

func tail(s string, n int) string {
	l := strings.Split(s, "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// criLog is the text a container wrote, from its CRI log file ("TIME
// STREAM F|P TEXT" lines).
func criLog(path string) string {
	b, _ := os.ReadFile(path)
	var out strings.Builder
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.SplitN(l, " ", 4)
		if len(f) < 4 {
			continue
		}
		out.WriteString(f[3])
		if f[2] == "F" {
			out.WriteString("\n")
		}
	}
	return out.String()
}

// waitLog polls until the container's log has want (bounded).
func (c *criEnv) waitLog(path, want string) string {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := criLog(path)
		if strings.Contains(s, want) {
			return s
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("log %s never said %q; it has:\n%s\ncontainerd:\n%s", path, want, s, tail(readAll(c.log), 40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// container creates and starts a container of the app image in the pod.
func (c *criEnv) container(pod string, podConfig *runtimeapi.PodSandboxConfig, name string, args ...string) string {
	c.t.Helper()
	// The kubelet gives every container a termination-message file.
	termLog := filepath.Join(c.t.TempDir(), "termination-log")
	if err := os.WriteFile(termLog, nil, 0o644); err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := c.ctx()
	defer cancel()
	cr, err := c.cri.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: pod, SandboxConfig: podConfig,
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: name},
			Image:    &runtimeapi.ImageSpec{Image: criAppImage},
			Command:  args,
			LogPath:  name + ".log",
			Mounts:   []*runtimeapi.Mount{{ContainerPath: "/dev/termination-log", HostPath: termLog}},
			// The kubelet's default: a process namespace of its own.
			Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD,
					Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD}}},
		},
	})
	c.must("CreateContainer "+name, err)
	_, err = c.cri.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cr.ContainerId})
	c.must("StartContainer "+name, err)
	return cr.ContainerId
}

// TestCRIPod runs a pod through containerd's CRI with Oak as the runtime
// (RuntimeClass handler "oak"), as the kubelet would: a sandbox with an
// address from CNI, two containers that reach each other over the pod's
// loopback and its address, exec, exit statuses, Oak's isolation inside a
// pod container, and the whole pod's removal leaving nothing behind.
func TestCRIPod(t *testing.T) {
	needOak(t, false)
	c := newCRI(t)
	logDir := t.TempDir()
	podConfig := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "oakpod", Uid: randHex(t), Namespace: "default"},
		Hostname:     "oakpod",
		LogDirectory: logDir,
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD,
				Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD}}},
	}
	// One bound for the whole pod's life on a loaded machine; each wait
	// below has its own.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	run, err := c.cri.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podConfig, RuntimeHandler: "oak"})
	c.must("RunPodSandbox", err)
	pod := run.PodSandboxId
	st, err := c.cri.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: pod})
	c.must("PodSandboxStatus", err)
	ip := st.GetStatus().GetNetwork().GetIp()
	if st.GetStatus().GetState() != runtimeapi.PodSandboxState_SANDBOX_READY || !strings.HasPrefix(ip, "10.231.") {
		t.Fatalf("pod sandbox %s: state %v, address %q; want ready with an address of the test's CNI network", pod, st.GetStatus().GetState(), ip)
	}
	// The pod's network namespace, as containerd made it for CNI: it must
	// be gone with the pod.
	vst, err := c.cri.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: pod, Verbose: true})
	c.must("PodSandboxStatus", err)
	var info struct {
		RuntimeSpec specs.Spec `json:"runtimeSpec"`
	}
	json.Unmarshal([]byte(vst.GetInfo()["info"]), &info)
	var podNetns string
	if info.RuntimeSpec.Linux != nil {
		for _, n := range info.RuntimeSpec.Linux.Namespaces {
			if n.Type == specs.NetworkNamespace {
				podNetns = n.Path
			}
		}
	}
	if _, err := os.Stat(podNetns); podNetns == "" || err != nil {
		t.Errorf("the pod's network namespace %q: %v", podNetns, err)
	}

	// Two containers of the pod: a server, and a client that reaches it
	// over the pod's loopback and over the pod's address, which is its
	// own too.
	server := c.container(pod, podConfig, "server", "sh", "-c", "echo serving; probe serve 8080 2 hello; echo served; exec sleep 1000")
	c.waitLog(filepath.Join(logDir, "server.log"), "listening 8080")
	client := c.container(pod, podConfig, "client", "sh", "-c",
		"probe connect 127.0.0.1:8080; probe connect "+ip+":8080; hostname; echo done; exec sleep 1000")
	if got := c.waitLog(filepath.Join(logDir, "client.log"), "done"); got != "ok\nok\noakpod\ndone\n" {
		t.Errorf("client says:\n%s\nwant two connections (loopback, the pod's address) and the pod's host name", got)
	}
	c.waitLog(filepath.Join(logDir, "server.log"), "served")

	// Oak's isolation holds in a pod's container: the same refusals as
	// under oak run (syscalls_test.go's table), the network calls aside,
	// which are native in the pod's namespace.
	var script strings.Builder
	for _, r := range refusals {
		fmt.Fprintf(&script, "probe %s; ", strings.Join(r.args, " "))
	}
	script.WriteString("echo end; exit 7")
	checks := c.container(pod, podConfig, "checks", "sh", "-c", script.String())
	got := strings.Split(c.waitLog(filepath.Join(logDir, "checks.log"), "end"), "\n")
	for i, r := range refusals {
		want := "err " + errnoName(expected(t, r))
		if i >= len(got) || got[i] != want {
			g := "nothing"
			if i < len(got) {
				g = got[i]
			}
			t.Errorf("in a pod container, probe %s: %s, want %s", strings.Join(r.args, " "), g, want)
		}
	}
	// ContainerStatus reports the exit status once it has ended.
	deadline := time.Now().Add(30 * time.Second)
	for {
		cs, err := c.cri.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: checks})
		c.must("ContainerStatus", err)
		if s := cs.GetStatus(); s.GetState() == runtimeapi.ContainerState_CONTAINER_EXITED {
			if s.GetExitCode() != 7 {
				t.Errorf("checks container exited with %d, want 7", s.GetExitCode())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("checks container did not exit: %+v", cs.GetStatus())
		}
		time.Sleep(50 * time.Millisecond)
	}

	t.Run("ExecSync", func(t *testing.T) {
		ctx, cancel := c.ctx()
		defer cancel()
		res, err := c.cri.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: client, Cmd: []string{"sh", "-c", "echo out; echo err >&2; hostname"}, Timeout: 30})
		c.must("ExecSync", err)
		if string(res.Stdout) != "out\noakpod\n" || string(res.Stderr) != "err\n" || res.ExitCode != 0 {
			t.Errorf("ExecSync: stdout %q stderr %q exit %d", res.Stdout, res.Stderr, res.ExitCode)
		}
		res, err = c.cri.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: client, Cmd: []string{"sh", "-c", "exit 3"}, Timeout: 30})
		c.must("ExecSync", err)
		if res.ExitCode != 3 {
			t.Errorf("ExecSync exit 3: got %d", res.ExitCode)
		}
	})

	// What the pod holds on the host, to check it is all gone after.
	type held struct{ supervisor, init, slot, member int }
	var procs []held
	ents, _ := os.ReadDir(c.rt.root)
	for _, e := range ents {
		var rec struct{ Supervisor, Init, Slot, Member int }
		if b, err := os.ReadFile(filepath.Join(c.rt.root, e.Name(), "state.json")); err == nil && json.Unmarshal(b, &rec) == nil {
			procs = append(procs, held{rec.Supervisor, rec.Init, rec.Slot, rec.Member})
		}
	}
	// The sandbox and the two running containers (containerd deleted the
	// one that exited), one id block: the sandbox's, the others members.
	if len(procs) != 3 {
		t.Errorf("oak-runtime holds %d containers (%v), want the sandbox, server and client", len(procs), procs)
	}
	members := 0
	for _, p := range procs {
		if p.slot != procs[0].slot {
			t.Errorf("containers of one pod in id blocks %d and %d", p.slot, procs[0].slot)
		}
		if p.member != 0 {
			members++
		}
	}
	if members != len(procs)-1 {
		t.Errorf("%d of %d containers are members of the sandbox's id block; want all but the sandbox", members, len(procs))
	}
	podGroups := func() []string {
		if len(procs) == 0 {
			return nil
		}
		task := "oci-" + strconv.Itoa(procs[0].slot)
		a, _ := filepath.Glob("/sys/fs/cgroup/*/oak/" + task)
		b, _ := filepath.Glob("/sys/fs/cgroup/*/oak/" + task + "-*")
		return append(a, b...)
	}
	if g := podGroups(); len(g) < 3 {
		t.Errorf("the running pod has groups %v; want the sandbox's and each member's", g)
	}

	for _, id := range []string{server, client, checks} {
		_, err := c.cri.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 10})
		c.must("StopContainer", err)
		_, err = c.cri.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id})
		c.must("RemoveContainer", err)
	}
	_, err = c.cri.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod})
	c.must("StopPodSandbox", err)
	_, err = c.cri.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod})
	c.must("RemovePodSandbox", err)

	if left := dirNames(c.rt.root); len(left) > 0 {
		t.Errorf("oak-runtime state left: %v", left)
	}
	for _, p := range procs {
		for _, pid := range []int{p.supervisor, p.init} {
			if st, ok := readStat(pid); ok && st.state != 'Z' && strings.Contains(readFirst(fmt.Sprintf("/proc/%d/cmdline", pid)), "oak") {
				t.Errorf("process %d of the pod still runs", pid)
			}
		}
	}
	if left := podGroups(); len(left) > 0 {
		t.Errorf("groups of the pod left: %v", left)
	}
	if _, err := os.Lstat(podNetns); podNetns != "" && !os.IsNotExist(err) {
		t.Errorf("the pod's network namespace %s is left: %v", podNetns, err)
	}
	if links, _ := exec.Command("ip", "-o", "link", "show", "master", c.bridge).Output(); len(strings.TrimSpace(string(links))) > 0 {
		t.Errorf("interfaces left on the pod bridge: %s", links)
	}
	shims, _ := exec.Command("pgrep", "-f", "containerd-shim-runc-v2.*"+c.sock).Output()
	if len(strings.TrimSpace(string(shims))) > 0 {
		t.Errorf("shims of the test's containerd still run: %s", shims)
	}
}

// dirNames lists the names in dir (none if it does not exist).
func dirNames(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

//go:build linux

package corpus

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A runtime runs the corpus's images: Oak, or runc as the reference.
type runtime interface {
	Name() string
	// Volume makes an empty volume and returns how to name it in a spec.
	Volume(t *testing.T, name string) string
	// Start starts a server container and returns the loopback port its
	// container port is reached at from the host.
	Start(t *testing.T, s spec) (*container, error)
	// Once runs a container to completion and returns its output.
	Once(t *testing.T, s spec) (string, error)
}

// spec is one container to start.
type spec struct {
	Name   string
	Image  string
	Port   int      // container port to publish, or 0
	Volume string   // from Volume
	Mount  string   // where the volume goes
	Env    []string // added to the image's
	Args   []string // replace the image's Cmd
	Memory int64    // bytes, or 0
	CPUs   float64  // cores, or 0
}

// container is a running server container.
type container struct {
	HostPort int
	stop     func(sig string) error // signals, waits for the exit, removes
	logs     func() string
	running  func() bool
}

// oakRuntime runs containers with the oak binary under test, each with
// -p 127.0.0.1:FREE:PORT, -v VOLUME:PATH.
type oakRuntime struct{ root string }

func (o *oakRuntime) Name() string { return "oak" }

func (o *oakRuntime) Volume(t *testing.T, name string) string {
	t.Helper()
	if out, err := runOak(o.root, time.Minute, "volume", "create", "--size", "1g", name); err != nil {
		t.Fatalf("oak volume create %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() {
		// oak rm -f returns before the container's volume is detached.
		var out string
		var err error
		waitFor(20*time.Second, func() bool {
			out, err = runOak(o.root, time.Minute, "volume", "rm", name)
			return err == nil
		})
		if err != nil {
			t.Logf("oak volume rm %s: %v\n%s", name, err, out)
		}
	})
	return name
}

func (o *oakRuntime) flags(s spec) []string {
	var a []string
	if s.Volume != "" {
		a = append(a, "-v", s.Volume+":"+s.Mount)
	}
	for _, e := range s.Env {
		a = append(a, "-e", e)
	}
	if s.Memory > 0 {
		a = append(a, "--memory", strconv.FormatInt(s.Memory, 10))
	}
	if s.CPUs > 0 {
		a = append(a, "--cpus", strconv.FormatFloat(s.CPUs, 'f', -1, 64))
	}
	return a
}

func (o *oakRuntime) Start(t *testing.T, s spec) (*container, error) {
	t.Helper()
	hp := freePort(t)
	args := []string{"run", "-d", "--name", s.Name}
	if s.Port != 0 {
		args = append(args, "-p", fmt.Sprintf("127.0.0.1:%d:%d", hp, s.Port))
	}
	args = append(append(append(args, o.flags(s)...), s.Image), s.Args...)
	out, err := runOak(o.root, 2*time.Minute, args...)
	if err != nil {
		return nil, fmt.Errorf("oak %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	logs := func() string {
		out, _ := runOak(o.root, time.Minute, "logs", s.Name)
		return out
	}
	t.Cleanup(func() { runOak(o.root, time.Minute, "rm", "-f", s.Name) })
	return &container{
		HostPort: hp,
		logs:     logs,
		running: func() bool {
			e, ok := containerStatus(o.root, s.Name)
			return ok && e.Status == "running"
		},
		stop: func(sig string) error {
			if out, err := runOak(o.root, time.Minute, "kill", "-s", sig, s.Name); err != nil {
				return fmt.Errorf("oak kill -s %s %s: %v\n%s", sig, s.Name, err, out)
			}
			stopped := func() bool {
				e, ok := containerStatus(o.root, s.Name)
				return !ok || e.Status != "running"
			}
			if !waitFor(stopGrace, stopped) {
				// As docker stop: the grace period is over.
				runOak(o.root, time.Minute, "kill", s.Name)
				if !waitFor(30*time.Second, stopped) {
					return fmt.Errorf("%s still running after SIG%s and SIGKILL", s.Name, sig)
				}
			}
			if out, err := runOak(o.root, time.Minute, "rm", "-f", s.Name); err != nil {
				return fmt.Errorf("oak rm -f %s: %v\n%s", s.Name, err, out)
			}
			return nil
		},
	}, nil
}

func (o *oakRuntime) Once(t *testing.T, s spec) (string, error) {
	t.Helper()
	args := append(append(append([]string{"run", "--rm"}, o.flags(s)...), s.Image), s.Args...)
	out, err := runOak(o.root, 5*time.Minute, args...)
	if err != nil {
		return out, fmt.Errorf("oak %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out, nil
}

// runcRuntime runs the same images with runc: the image's layers as an
// overlay, the host's network namespace (so a container port is a host
// port), a host directory as the volume, and docker's default capability
// set for root. With straceOut set, every container is traced from its
// first instruction (strace -f attached to runc's init before `runc
// start`) and the system calls it made are added to straceOut.
type runcRuntime struct {
	root      string // runc --root
	template  map[string]any
	rootfs    string // the base image, extracted
	straceMu  sync.Mutex
	straceOut map[string]bool
}

// Docker's default capabilities for a root process, which the
// docker-library entrypoints rely on.
var dockerCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

var (
	runcOnce sync.Once
	runcRT   *runcRuntime
	runcErr  error
)

func getRunc(t *testing.T) *runcRuntime {
	t.Helper()
	runcOnce.Do(func() { runcRT, runcErr = newRunc() })
	if runcErr != nil {
		t.Fatal(runcErr)
	}
	return runcRT
}

func newRunc() (*runcRuntime, error) {
	r := &runcRuntime{root: filepath.Join(workDir, "runc")}
	if p := os.Getenv("OAK_CORPUS_STRACE"); p != "" {
		if _, err := exec.LookPath("strace"); err != nil {
			return nil, fmt.Errorf("OAK_CORPUS_STRACE is set but strace is not installed: %w", err)
		}
		r.straceOut = map[string]bool{}
	}
	dir := filepath.Join(workDir, "runc-spec")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cmd := exec.Command("runc", "spec")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("runc spec: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &r.template); err != nil {
		return nil, err
	}
	// The base root file system, extracted once per recipe and kept in
	// the cache beside its tar.
	r.rootfs = filepath.Join(base.Dir, "rootfs")
	err = cached(r.rootfs, func() error {
		tmp, err := os.MkdirTemp(base.Dir, ".rootfs-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		if out, err := exec.Command("tar", "-xpf", base.Tar, "-C", tmp, "--numeric-owner").CombinedOutput(); err != nil {
			return fmt.Errorf("extract %s: %v\n%s", base.Tar, err, out)
		}
		if err := os.Chmod(tmp, 0o755); err != nil {
			return err
		}
		return os.Rename(tmp, r.rootfs)
	})
	return r, err
}

func (r *runcRuntime) Name() string { return "runc" }

func (r *runcRuntime) Volume(t *testing.T, name string) string {
	t.Helper()
	d := filepath.Join(workDir, "volumes", name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// bundle makes an OCI bundle for s: an overlay of the image's layers as
// its root, and a config from `runc spec` adjusted the way docker would
// run the image.
func (r *runcRuntime) bundle(s spec) (string, error) {
	b := filepath.Join(workDir, "bundles", s.Name)
	os.RemoveAll(b)
	var lowers []string
	for _, l := range images.Layers[s.Image] {
		if l == base.Tar {
			lowers = append([]string{r.rootfs}, lowers...)
			continue
		}
		d := filepath.Join(workDir, "runc-layers", filepath.Base(l))
		if _, err := os.Stat(d); err != nil {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return "", err
			}
			if out, err := exec.Command("tar", "-xpf", l, "-C", d, "--numeric-owner").CombinedOutput(); err != nil {
				return "", fmt.Errorf("extract %s: %v\n%s", l, err, out)
			}
		}
		lowers = append([]string{d}, lowers...)
	}
	for _, d := range []string{"rootfs", "upper", "work"} {
		if err := os.MkdirAll(filepath.Join(b, d), 0o755); err != nil {
			return "", err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", strings.Join(lowers, ":"), filepath.Join(b, "upper"), filepath.Join(b, "work"))
	if err := syscall.Mount("overlay", filepath.Join(b, "rootfs"), "overlay", 0, opts); err != nil {
		return "", fmt.Errorf("mount overlay for %s: %w", s.Name, err)
	}

	cfg := deepCopy(r.template)
	ic := images.Config[s.Image]
	argv := append(append([]string(nil), ic.Entrypoint...), ic.Cmd...)
	if len(s.Args) > 0 {
		argv = append(append([]string(nil), ic.Entrypoint...), s.Args...)
	}
	env := append(append([]string(nil), ic.Env...), s.Env...)
	if len(ic.Env) == 0 {
		env = append([]string{debianPath}, env...)
	}
	cwd := ic.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	proc := cfg["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = argv
	proc["env"] = env
	proc["cwd"] = cwd
	caps := proc["capabilities"].(map[string]any)
	for _, k := range []string{"bounding", "effective", "permitted"} {
		caps[k] = dockerCaps
	}
	delete(caps, "inheritable")
	delete(caps, "ambient")
	root := cfg["root"].(map[string]any)
	root["readonly"] = false
	mounts := cfg["mounts"].([]any)
	if s.Volume != "" {
		mounts = append(mounts, map[string]any{
			"destination": s.Mount, "type": "bind", "source": s.Volume,
			"options": []string{"rbind", "rw"},
		})
	}
	// Docker gives every container a /dev/shm of 64 MB; runc's spec has it.
	cfg["mounts"] = mounts
	linux := cfg["linux"].(map[string]any)
	var nss []any
	for _, ns := range linux["namespaces"].([]any) {
		if ns.(map[string]any)["type"] != "network" {
			nss = append(nss, ns)
		}
	}
	linux["namespaces"] = nss
	res, _ := linux["resources"].(map[string]any)
	if res == nil {
		res = map[string]any{}
		linux["resources"] = res
	}
	if s.Memory > 0 {
		res["memory"] = map[string]any{"limit": s.Memory}
	}
	if s.CPUs > 0 {
		res["cpu"] = map[string]any{"quota": int64(s.CPUs * 100000), "period": 100000}
	}
	if err := os.WriteFile(filepath.Join(b, "config.json"), mustJSON(cfg), 0o644); err != nil {
		return "", err
	}
	return b, nil
}

func deepCopy(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var c map[string]any
	json.Unmarshal(b, &c)
	return c
}

// runcContainer is one container made by `runc create` and `runc start`.
type runcContainer struct {
	r      *runcRuntime
	id     string
	bundle string
	log    string
	strace *exec.Cmd
	trace  string
}

func (r *runcRuntime) runc(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "runc", append([]string{"--root", r.root}, args...)...).CombinedOutput()
	return string(out), err
}

func (r *runcRuntime) create(t *testing.T, s spec) (*runcContainer, error) {
	b, err := r.bundle(s)
	if err != nil {
		return nil, err
	}
	c := &runcContainer{r: r, id: "oak-corpus-" + s.Name, bundle: b, log: filepath.Join(b, "log")}
	t.Cleanup(c.remove)
	logf, err := os.Create(c.log)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	pidFile := filepath.Join(b, "pid")
	cmd := exec.Command("runc", "--root", r.root, "create", "--bundle", b, "--pid-file", pidFile, c.id)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Run(); err != nil {
		out, _ := os.ReadFile(c.log)
		return nil, fmt.Errorf("runc create %s: %v\n%s", c.id, err, out)
	}
	if r.straceOut != nil {
		pid, err := os.ReadFile(pidFile)
		if err != nil {
			return nil, err
		}
		c.trace = filepath.Join(b, "strace")
		c.strace = exec.Command("strace", "-f", "-s", "0", "-o", c.trace, "-p", strings.TrimSpace(string(pid)))
		var serr bytes.Buffer
		c.strace.Stderr = &serr
		if err := c.strace.Start(); err != nil {
			return nil, fmt.Errorf("strace: %w", err)
		}
		// strace reports attaching on stderr; give it the moment it
		// needs before the container runs.
		for i := 0; i < 50 && !strings.Contains(serr.String(), "attached"); i++ {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if out, err := r.runc("start", c.id); err != nil {
		return nil, fmt.Errorf("runc start %s: %v\n%s", c.id, err, out)
	}
	return c, nil
}

func (c *runcContainer) status() string {
	out, err := c.r.runc("state", c.id)
	if err != nil {
		return "gone"
	}
	var st struct{ Status string }
	json.Unmarshal([]byte(out), &st)
	return st.Status
}

func (c *runcContainer) wait(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if s := c.status(); s == "stopped" || s == "gone" {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

func (c *runcContainer) output() string {
	b, _ := os.ReadFile(c.log)
	return string(b)
}

// remove deletes the container, collects its trace and unmounts its root.
func (c *runcContainer) remove() {
	if c.bundle == "" {
		return
	}
	c.r.runc("kill", c.id, "KILL")
	c.wait(10 * time.Second)
	c.r.runc("delete", "-f", c.id)
	if c.strace != nil {
		done := make(chan error, 1)
		go func() { done <- c.strace.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			c.strace.Process.Kill()
			<-done
		}
		c.r.addTrace(c.trace)
		c.strace = nil
	}
	syscall.Unmount(filepath.Join(c.bundle, "rootfs"), syscall.MNT_DETACH)
	c.bundle = ""
}

// addTrace adds the system calls of a container's trace (strace -f
// output, one call a line after the thread id) to the union.
func (r *runcRuntime) addTrace(path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	names := programCalls(string(b))
	r.straceMu.Lock()
	defer r.straceMu.Unlock()
	for n := range names {
		r.straceOut[n] = true
	}
}

func (r *runcRuntime) Start(t *testing.T, s spec) (*container, error) {
	t.Helper()
	c, err := r.create(t, s)
	if err != nil {
		return nil, err
	}
	return &container{
		HostPort: s.Port,
		logs:     c.output,
		running:  func() bool { return c.status() == "running" },
		stop: func(sig string) error {
			if out, err := r.runc("kill", c.id, sig); err != nil && c.status() == "running" {
				return fmt.Errorf("runc kill %s %s: %v\n%s", c.id, sig, err, out)
			}
			if !c.wait(stopGrace) {
				// As docker stop: the grace period is over.
				r.runc("kill", c.id, "KILL")
				if !c.wait(30 * time.Second) {
					return fmt.Errorf("%s still running after SIG%s and SIGKILL", c.id, sig)
				}
			}
			c.remove()
			return nil
		},
	}, nil
}

func (r *runcRuntime) Once(t *testing.T, s spec) (string, error) {
	t.Helper()
	c, err := r.create(t, s)
	if err != nil {
		return "", err
	}
	if !c.wait(5 * time.Minute) {
		return c.output(), fmt.Errorf("runc %s: still running after 5 minutes", c.id)
	}
	out := c.output()
	c.remove()
	return out, nil
}

// stopGrace is how long a container has to exit after its stop signal
// before it is killed, as docker stop does (after 10 s there; 5 s here,
// which every server of the corpus needs less than a second of, and which
// node and busybox httpd, as pid 1 under runc, ignore SIGTERM for).
const stopGrace = 5 * time.Second

// waitFor polls cond until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

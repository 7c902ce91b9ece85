//go:build linux

package integration

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// scrape reads the daemon's /metrics over its socket: each sample line,
// "name{labels}" → value.
func (o *oakEnv) scrape() map[string]float64 {
	o.t.Helper()
	c := http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return net.Dial("unix", filepath.Join(o.root, "oak.sock"))
	}}}
	resp, err := c.Get("http://oak/metrics")
	if err != nil {
		o.t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		o.t.Fatalf("GET /metrics: %s\n%s", resp.Status, b)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || l[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if i < 0 || err != nil {
			o.t.Fatalf("/metrics line %q is not NAME VALUE", l)
		}
		m[l[:i]] = v
	}
	return m
}

// with returns the samples of m whose name and labels contain every one
// of parts.
func with(m map[string]float64, parts ...string) map[string]float64 {
	out := map[string]float64{}
next:
	for k, v := range m {
		for _, p := range parts {
			if !strings.Contains(k, p) {
				continue next
			}
		}
		out[k] = v
	}
	return out
}

// TestMetricsTrappedCalls: the trapped calls of a container with grants
// (served by its network service process) and of one without (served
// offline by its supervisor) are exported by call and outcome, exactly as
// the probe made them; a SIGKILL of the network service is counted as one
// restart, and the counts go on across it.
func TestMetricsTrappedCalls(t *testing.T) {
	needOak(t, true)
	o := newDaemonOak(t)
	host := netHostTCP(t, false)
	// 127.0.0.1:9 is not granted: denied, whatever listens there.
	a := o.runD("--egress", host.addr(), rootfsDir, "/bin/sh", "-c",
		"/bin/probe connect "+host.addr()+"; /bin/probe connect 127.0.0.1:9; echo done; exec sleep 600")
	b := o.runD(rootfsDir, "/bin/sh", "-c", "/bin/probe socket 2 1; echo done; exec sleep 600")
	o.waitOutput(a, "done", 20*time.Second)
	o.waitOutput(b, "done", 20*time.Second)
	if r := o.run("logs", a); !strings.Contains(r.stdout, "ok\nerr EACCES\n") {
		t.Fatalf("the probe's connects in %s: want ok, then EACCES\n%s", a, r)
	}
	sa, sb := `container="`+a[:12]+`"`, `container="`+b[:12]+`"`
	wantCalls := func(what, c string, want map[string]float64) {
		t.Helper()
		m := o.scrape()
		got := with(m, "oak_trapped_calls_total{", c)
		if len(got) != len(want) {
			t.Errorf("%s: trapped calls %v, want exactly %v", what, got, want)
		}
		for k, v := range want {
			if got[`oak_trapped_calls_total{`+c+`,`+k+`}`] != v {
				t.Errorf("%s: %s %s = %v, want %v (all: %v)", what, c, k, got[`oak_trapped_calls_total{`+c+`,`+k+`}`], v, got)
			}
		}
	}
	wantCalls("granted", sa, map[string]float64{
		`call="socket",outcome="allowed"`:  2,
		`call="connect",outcome="allowed"`: 1,
		`call="connect",outcome="denied"`:  1,
	})
	wantCalls("offline", sb, map[string]float64{`call="socket",outcome="denied"`: 1})
	m := o.scrape()
	if v, ok := m[`oak_network_service_restarts_total{`+sa+`}`]; !ok || v != 0 {
		t.Errorf("restarts of %s before any: %v (exported %v), want 0", a, v, ok)
	}

	// Kill a's network service: its supervisor starts another, and says so.
	sup := netSupervisorOf(t, o, a)
	svc := netWaitService(t, sup, 0, 10*time.Second)
	if err := syscall.Kill(svc, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	netWaitService(t, sup, svc, 10*time.Second)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		v := o.scrape()[`oak_network_service_restarts_total{`+sa+`}`]
		if v == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restarts of %s after one SIGKILL of its service: %v, want 1", a, v)
		}
	}
	if r := o.run("exec", a, "/bin/probe", "connect", "127.0.0.1:9"); strings.TrimSpace(r.stdout) != "err EACCES" {
		t.Fatalf("connect through the restarted service\n%s", r)
	}
	wantCalls("after the restart", sa, map[string]float64{
		`call="socket",outcome="allowed"`:  3,
		`call="connect",outcome="allowed"`: 1,
		`call="connect",outcome="denied"`:  2,
	})
	if v := o.scrape()[`oak_network_service_restarts_total{`+sb+`}`]; v != 0 {
		t.Errorf("restarts of %s, which has no service process: %v", b, v)
	}
	// The counters go with the container.
	if r := o.run("rm", "-f", a); r.code != 0 {
		t.Fatal(r)
	}
	if got := with(o.scrape(), sa); len(got) != 0 {
		t.Errorf("series of removed container %s: %v", a, got)
	}
}

// TestMetricsFactories: a factory's memory and tasks as the kernel
// charges its group, and its disk reservations, as oak factory inspect
// reads them, and its limits.
func TestMetricsFactories(t *testing.T) {
	needOak(t, true)
	o := newDaemonOak(t)
	name := "mf-" + randHex(t)[:8]
	o.factory("--memory", "256m", "--pids", "64", "--disk", "3g", name)
	id := o.runD("--factory", name, "--storage-size", "1g", rootfsDir, "/bin/sh", "-c", "sleep 600 & sleep 600 & wait")
	o.waitRunning(id)
	f := o.inspectFactory(name)
	l := `{factory="` + name + `"}`
	var m map[string]float64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		// The shell forks its sleepers after it runs: wait until the
		// group holds them (and the shell, and the container's init) and
		// the metric says as much as the group's own file, before and
		// after it.
		before, _ := strconv.ParseFloat(readFirst(factoryFile(f, "pids", "pids.current")), 64)
		m = o.scrape()
		after, _ := strconv.ParseFloat(readFirst(factoryFile(f, "pids", "pids.current")), 64)
		if before >= 3 && before == after && m["oak_factory_pids"+l] == before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("oak_factory_pids%s = %v, pids.current of its group %v then %v; want the same, at least 3 (shell, two sleepers)",
				l, m["oak_factory_pids"+l], before, after)
		}
	}
	mem := m["oak_factory_memory_bytes"+l]
	if mem <= 0 || mem > 256<<20 {
		t.Errorf("oak_factory_memory_bytes%s = %v: want above 0, within the limit", l, mem)
	}
	if got := m["oak_factory_disk_reserved_bytes"+l]; got != 1<<30 || f.Given.DiskBytes != 1<<30 {
		t.Errorf("disk reserved: metric %v, inspect %d; want 1 GiB (the container's writable layer)", got, f.Given.DiskBytes)
	}
	for res, want := range map[string]float64{"memory_bytes": 256 << 20, "pids": 64, "disk_bytes": 3 << 30} {
		if got := m[`oak_factory_limit{factory="`+name+`",resource="`+res+`"}`]; got != want {
			t.Errorf("oak_factory_limit %s = %v, want %v", res, got, want)
		}
	}
	if _, ok := m[`oak_factory_limit{factory="`+name+`",resource="cpu_milli"}`]; ok {
		t.Error("a CPU limit is exported for a factory without one")
	}
	o.volumeFactory(name)
	if got := o.scrape()["oak_factory_disk_reserved_bytes"+l]; got != 1<<30+64<<20 {
		t.Errorf("disk reserved after a 64 MiB volume of the factory: %v, want %d", got, 1<<30+64<<20)
	}
}

// volumeFactory makes a 64 MiB volume of factory name.
func (o *oakEnv) volumeFactory(name string) {
	o.t.Helper()
	if r := o.run("volume", "create", "--factory", name, "--size", "64m", name+"-v"); r.code != 0 {
		o.t.Fatalf("%s", r)
	}
}

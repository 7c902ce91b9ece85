package bench

import (
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestPickSlash30(t *testing.T) {
	base := netip.MustParsePrefix("10.231.0.0/16")
	p := func(s string) netip.Prefix { return netip.MustParsePrefix(s) }
	tests := []struct {
		seed int
		used []netip.Prefix
		want string
	}{
		{0, nil, "10.231.0.0/30"},
		{1, nil, "10.231.0.4/30"},
		{16384 + 2, nil, "10.231.0.8/30"}, // wraps around
		{1, []netip.Prefix{p("10.231.0.4/32")}, "10.231.0.8/30"},
		{1, []netip.Prefix{p("10.231.0.0/29"), p("192.0.2.0/24")}, "10.231.0.8/30"},
		{16383, []netip.Prefix{p("10.231.255.252/30")}, "10.231.0.0/30"},
	}
	for _, tt := range tests {
		got, err := pickSlash30(base, tt.seed, tt.used)
		if err != nil || got != p(tt.want) {
			t.Errorf("pickSlash30(seed %d, used %v) = %v, %v; want %s", tt.seed, tt.used, got, err, tt.want)
		}
	}
	if got, err := pickSlash30(base, 5, []netip.Prefix{p("10.0.0.0/8")}); err == nil {
		t.Errorf("pickSlash30 with all of 10/8 used = %v, want an error", got)
	}
}

func TestRoutePrefixes(t *testing.T) {
	out := `[{"dst":"default","gateway":"192.0.2.1","dev":"eth0"},{"dst":"192.0.2.0/24","dev":"eth0"},` +
		`{"type":"local","dst":"127.0.0.1","dev":"lo","table":"local"},{"type":"broadcast","dst":"192.0.2.255","dev":"eth0"}]`
	got, err := routePrefixes(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("192.0.2.255/32")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("routePrefixes = %v, want %v", got, want)
	}
	if _, err := routePrefixes(`[{"dst":"10.0.0.0/33"}]`); err == nil {
		t.Error("routePrefixes took a bad prefix")
	}
}

func TestParseRetransSegs(t *testing.T) {
	snmp := "Ip: Forwarding DefaultTTL\nIp: 1 64\n" +
		"Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors\n" +
		"Tcp: 1 200 120000 -1 10 5 0 0 2 1000 900 42 0 3 0\n" +
		"Udp: InDatagrams\nUdp: 7\n"
	if n, err := parseRetransSegs(snmp); err != nil || n != 42 {
		t.Errorf("parseRetransSegs = %d, %v; want 42", n, err)
	}
	if _, err := parseRetransSegs("Udp: InDatagrams\nUdp: 7\n"); err == nil {
		t.Error("parseRetransSegs found a counter where there is none")
	}
	if _, err := tcpRetransSegs(); err != nil {
		t.Errorf("this host's counter: %v", err)
	}
}

func TestEditRuncNetSpec(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	spec := `{"ociVersion":"1.0.2-dev","process":{"terminal":true,"args":["sh"],"cwd":"/"},"root":{"path":"rootfs"},` +
		`"hostname":"runc","linux":{"namespaces":[{"type":"pid"},{"type":"network"},{"type":"mount"}],"maskedPaths":["/proc/kcore"]}}`
	if err := os.WriteFile(path, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := editRuncNetSpec(path, "/r", []string{"/oak", "_netserver"}, "/run/netns/x"); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	var got struct {
		Process struct {
			Terminal bool     `json:"terminal"`
			Args     []string `json:"args"`
		} `json:"process"`
		Root struct {
			Path     string `json:"path"`
			Readonly bool   `json:"readonly"`
		} `json:"root"`
		Hostname string `json:"hostname"`
		Linux    struct {
			Namespaces  []map[string]string `json:"namespaces"`
			MaskedPaths []string            `json:"maskedPaths"`
		} `json:"linux"`
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	wantNS := []map[string]string{{"type": "pid"}, {"type": "network", "path": "/run/netns/x"}, {"type": "mount"}}
	if got.Process.Terminal || !reflect.DeepEqual(got.Process.Args, []string{"/oak", "_netserver"}) ||
		got.Root.Path != "/r" || !got.Root.Readonly || got.Hostname != "runc" || len(got.Linux.MaskedPaths) != 1 ||
		!reflect.DeepEqual(got.Linux.Namespaces, wantNS) {
		t.Errorf("edited spec = %s", data)
	}
}

// TestNetRunc measures plain and runc for a moment with each network mode
// and checks that every trace of the runc network is gone afterwards. It
// needs root, runc and ip; the port forward also iptables (without it the
// runc variant must say so).
func TestNetRunc(t *testing.T) {
	if testing.Short() {
		t.Skip("starts containers")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, tool := range []string{"runc", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s", tool)
		}
	}
	server := buildStaticServer(t)
	forward := iptablesUsable(context.Background()) == ""
	for _, mode := range []string{RuncNetBridge, RuncNetVeth, "no iptables"} {
		t.Run(mode, func(t *testing.T) {
			forward := forward
			if mode == "no iptables" {
				// A $PATH with runc and ip but no iptables.
				dir := t.TempDir()
				for _, tool := range []string{"runc", "ip"} {
					p, _ := exec.LookPath(tool)
					if err := os.Symlink(p, filepath.Join(dir, tool)); err != nil {
						t.Fatal(err)
					}
				}
				t.Setenv("PATH", dir)
				mode, forward = RuncNetBridge, false
			}
			rep, err := Net(context.Background(), NetConfig{
				Variants:     []string{VariantPlain, VariantRunc},
				Streams:      []int{1, 4},
				Duration:     100 * time.Millisecond,
				Rounds:       2,
				Warmup:       50 * time.Millisecond,
				EchoCount:    100,
				ServerPath:   server,
				RuncNet:      mode,
				ReadyTimeout: 30 * time.Second,
				WorkDir:      t.TempDir(),
			})
			if err != nil {
				t.Fatal(err)
			}
			runc := rep.Result(VariantRunc)
			if runc == nil || runc.Error != "" || runc.Skipped != "" {
				t.Fatalf("runc = %+v", runc)
			}
			for _, tp := range runc.Throughput {
				if len(tp.Gbps) != 2 || tp.Median <= 0 {
					t.Errorf("runc throughput = %+v, want 2 rounds", tp)
				}
			}
			if runc.Echo == nil || runc.Echo.N != 200 {
				t.Errorf("runc echo = %+v, want 200 round trips", runc.Echo)
			}
			if q := rep.ratio(VariantRunc, VariantPlain); q == nil || len(q.Throughput) != 2 || q.EchoP50 <= 0 {
				t.Errorf("runc/plain ratio = %+v", q)
			}
			wantDetail := []string{"network namespace " + runcNetTag, "veth pair", "read-only"}
			if mode == RuncNetBridge {
				wantDetail = append(wantDetail, "bridge oakbr")
			}
			if forward {
				wantDetail = append(wantDetail, "port forward 127.0.0.1:", "DNAT in nat OUTPUT", "MASQUERADE")
			} else {
				wantDetail = append(wantDetail, "NO port forward")
			}
			for _, w := range wantDetail {
				if !strings.Contains(runc.Detail, w) {
					t.Errorf("runc detail %q lacks %q", runc.Detail, w)
				}
			}
			assertNoRuncNet(t)
		})
	}
}

// assertNoRuncNet fails if anything this process's runc network made is
// still on the host.
func assertNoRuncNet(t *testing.T) {
	t.Helper()
	tag := runcNetTag + strconv.Itoa(os.Getpid())
	if _, err := os.Stat(filepath.Join("/run/netns", tag)); err == nil {
		t.Errorf("network namespace %s is left", tag)
	}
	pid := strconv.Itoa(os.Getpid())
	for _, name := range []string{"oakbr" + pid, "oakv" + pid + "h"} {
		if _, err := net.InterfaceByName(name); err == nil {
			t.Errorf("link %s is left", name)
		}
	}
	if iptablesUsable(context.Background()) != "" {
		return
	}
	for _, chain := range []string{"OUTPUT", "POSTROUTING"} {
		out, err := commandOutput(context.Background(), []string{"iptables", "-w", "-t", "nat", "-S", chain})
		if err != nil {
			t.Error(err)
		}
		if strings.Contains(out, tag+" ") || strings.Contains(out, tag+"\n") {
			t.Errorf("iptables rules are left in nat %s:\n%s", chain, out)
		}
	}
}

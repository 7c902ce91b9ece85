package api

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPeerCredentials serves the API as the daemon does (its connection
// context) on a real unix socket and calls it from processes running as
// other uids: the kernel's SO_PEERCRED, not anything the client says, is
// who calls.
func TestPeerCredentials(t *testing.T) {
	if os.Getenv("OAK_TEST_PEER_SOCKET") != "" {
		peerClient() // the helper process: never returns
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to run clients as other uids")
	}
	dir := t.TempDir()
	// The helper runs as another uid: it must reach the socket and its
	// own binary.
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o711)
	}
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	helper := filepath.Join(dir, "helper")
	if err := os.WriteFile(helper, self, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "t.sock")
	old := syscall.Umask(0o111)
	l, err := net.Listen("unix", sock)
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	f := &tenantEngine{fakeEngine: &fakeEngine{}}
	s := NewServer(f, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.SetReady()
	hs := &http.Server{Handler: s, ConnContext: peerContext}
	go hs.Serve(l)
	defer hs.Close()

	call := func(uid uint32, path string) string {
		cmd := exec.Command(helper, "-test.run=TestPeerCredentials")
		cmd.Env = []string{"OAK_TEST_PEER_SOCKET=" + sock, "OAK_TEST_PEER_PATH=" + path}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helper as uid %d: %v: %s", uid, err, out)
		}
		return string(out)
	}
	for _, c := range []struct {
		uid       uint32
		path      string
		want, not string
	}{
		{4001, "/v1/containers", `200 [{"Id":"web","Name":"web"`, "mine"},
		{4002, "/v1/containers", `200 [{"Id":"f00d","Name":"mine"`, "web"},
		{4002, "/v1/containers/web", "404 " + `{"error":"no such container: web"`, ""},
		{4003, "/v1/containers", "403 ", "web"},
		{4003, "/v1/ready", "uid 4003 is not a tenant", ""},
	} {
		got := call(c.uid, c.path)
		if !strings.Contains(got, c.want) || c.not != "" && strings.Contains(got, c.not) {
			t.Errorf("uid %d GET %s: %s; want %s and not %q", c.uid, c.path, got, c.want, c.not)
		}
	}
	// Root, in this process, is the administrator.
	c := newClient(dir, func() (net.Conn, error) { return net.Dial("unix", sock) })
	cs, err := c.Containers(context.Background(), true, nil)
	if err != nil || len(cs) != 3 {
		t.Errorf("root lists %d containers (%v), want all 3", len(cs), err)
	}
}

// peerClient is the helper: GET OAK_TEST_PEER_PATH on the socket, print
// the status and the body.
func peerClient() {
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return net.Dial("unix", os.Getenv("OAK_TEST_PEER_SOCKET"))
	}}}
	resp, err := hc.Get("http://oak" + os.Getenv("OAK_TEST_PEER_PATH"))
	if err != nil {
		os.Stdout.WriteString(err.Error())
		os.Exit(1)
	}
	b, _ := io.ReadAll(resp.Body)
	os.Stdout.WriteString(strconv.Itoa(resp.StatusCode) + " " + string(b))
	os.Exit(0)
}

func TestTenantSocketBesideRoot(t *testing.T) {
	for _, root := range []string{"/var/lib/oak", "/var/lib/oak/", "/var/lib//oak/."} {
		if got := TenantSocket(root); got != "/var/lib/oak.tenants.sock" {
			t.Errorf("TenantSocket(%q) = %s, want /var/lib/oak.tenants.sock, outside the root", root, got)
		}
	}
}

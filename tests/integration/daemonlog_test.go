//go:build linux

package integration

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDaemonLogRotation: the daemon the CLI starts logs to
// ROOT/daemon.log, which is also its stdout and stderr; a daemon with
// --log-max-size 4k --log-max-file 2, given a few hundred requests to log,
// keeps two files of at most 4 KiB, each of whole log records, and writes
// its stderr into the newest.
func TestDaemonLogRotation(t *testing.T) {
	needOak(t, true)
	o := newDaemonOak(t)
	if r := o.run("ps"); r.code != 0 {
		t.Fatal(r)
	}
	pid := o.daemonPid()
	log := filepath.Join(o.root, "daemon.log")
	cmdline := readFirst("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if !strings.Contains(cmdline, "--log-file\x00"+log) {
		t.Errorf("the daemon the CLI started was not given --log-file %s: %q", log, cmdline)
	}
	for _, fd := range []string{"1", "2"} {
		if l, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/" + fd); err != nil || l != log {
			t.Errorf("the daemon's fd %s is %q (%v), want %s", fd, l, err, log)
		}
	}
	if b, _ := os.ReadFile(log); !strings.Contains(string(b), "daemon ready") {
		t.Errorf("%s lacks the daemon's readiness record:\n%s", log, b)
	}
	if r := o.run("daemon", "stop"); r.code != 0 {
		t.Fatal(r)
	}

	// A daemon with small bounds, logging every request (debug).
	small := filepath.Join(o.root, "small.log")
	d := o.start("daemon", "--log-file", small, "--log-max-size", "4k", "--log-max-file", "2", "--log-level", "debug")
	c := http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return net.Dial("unix", filepath.Join(o.root, "oak.sock"))
	}}}
	var err error
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var resp *http.Response
		if resp, err = c.Get("http://oak/v1/ready"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon with --log-file does not answer: %v", err)
		}
	}
	for i := 0; i < 300; i++ {
		resp, err := c.Get("http://oak/v1/containers?all=1")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	dpid := o.daemonPid()
	if l, _ := os.Readlink("/proc/" + strconv.Itoa(dpid) + "/fd/2"); l != small {
		t.Errorf("after rotations the daemon's stderr is %q, want the newest file %s", l, small)
	}
	if r := o.run("daemon", "stop"); r.code != 0 {
		t.Fatal(r)
	}
	if r, ok := d.wait(10 * time.Second); !ok || r.code != 0 {
		t.Errorf("oak daemon after stop: done %v\n%s", ok, r)
	}
	for _, name := range []string{small, small + ".1"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 || len(b) > 4096 {
			t.Errorf("%s: %d bytes, want 1 to 4096", filepath.Base(name), len(b))
		}
		for _, l := range lines(string(b)) {
			if !strings.HasPrefix(l, "time=") || !strings.Contains(l, " level=") {
				t.Errorf("%s: not a whole log record: %q", filepath.Base(name), l)
			}
		}
	}
	if _, err := os.Stat(small + ".2"); !os.IsNotExist(err) {
		t.Errorf("%s.2 exists (%v) with --log-max-file 2", filepath.Base(small), err)
	}
	if b, _ := os.ReadFile(small); !strings.Contains(string(b), "daemon stopped") {
		t.Errorf("the newest file lacks the daemon's last record:\n%s", b)
	}
}

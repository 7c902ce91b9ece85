//go:build linux

package corpus

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// The state root shared by the corpus's Oak containers: images are
// imported into it once.
var (
	oakRootOnce sync.Once
	oakRoot     string
	oakRootErr  error
)

// importedRoot imports the corpus layout into a state root the first time
// it is asked for.
func importedRoot(t *testing.T) string {
	t.Helper()
	oakRootOnce.Do(func() {
		oakRoot = workDir + "/oak-state"
		start := time.Now()
		out, err := runOak(oakRoot, 10*time.Minute, "image", "import", images.Layout)
		if err != nil {
			oakRootErr = fmt.Errorf("oak image import %s: %v\n%s", images.Layout, err, out)
			return
		}
		t.Logf("oak image import: %v", time.Since(start).Round(time.Millisecond))
	})
	if oakRootErr != nil {
		t.Fatal(oakRootErr)
	}
	return oakRoot
}

// runOak runs one oak command and returns its combined output.
func runOak(root string, timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, oakBin, append([]string{"--root", root}, args...)...)
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %v", timeout)
	}
	return b.String(), err
}

// freePort returns a loopback TCP port nobody listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// psEntry is what the corpus reads of a row of oak ps --format json (one
// object a line, docker's keys).
type psEntry struct {
	ID        string
	Names     string
	Status    string // "running", "exited"...: the row's State
	ExitCode  int
	OOMKilled bool
	Pid       int
}

func oakPs(root string) ([]psEntry, error) {
	out, err := runOak(root, time.Minute, "ps", "-a", "--no-trunc", "--format", "json")
	if err != nil {
		return nil, fmt.Errorf("oak ps: %v: %s", err, out)
	}
	var es []psEntry
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var row struct {
			ID, Names, State string
			ExitCode         int
			OOMKilled        bool
			Pid              int
		}
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			return nil, fmt.Errorf("oak ps: %v: %s", err, out)
		}
		es = append(es, psEntry{ID: row.ID, Names: row.Names, Status: row.State, ExitCode: row.ExitCode, OOMKilled: row.OOMKilled, Pid: row.Pid})
	}
	return es, nil
}

func containerStatus(root, name string) (psEntry, bool) {
	es, err := oakPs(root)
	if err != nil {
		return psEntry{}, false
	}
	for _, e := range es {
		if e.Names == name || strings.HasPrefix(e.ID, name) {
			return e, true
		}
	}
	return psEntry{}, false
}

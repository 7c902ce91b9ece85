package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestNewLogger: --log-format json writes one JSON object a record,
// text writes key=value, the level filters, and bad values are refused
// naming the flag.
func TestNewLogger(t *testing.T) {
	var b bytes.Buffer
	l, err := newLogger(&b, "json", "info")
	if err != nil {
		t.Fatal(err)
	}
	l.Debug("hidden")
	l.Info("daemon ready", "pid", 7)
	var rec map[string]any
	if err := json.Unmarshal(b.Bytes(), &rec); err != nil {
		t.Fatalf("json log %q: %v", b.String(), err)
	}
	if rec["msg"] != "daemon ready" || rec["pid"] != float64(7) || rec["level"] != "INFO" {
		t.Errorf("json record %v", rec)
	}
	b.Reset()
	if l, err = newLogger(&b, "text", "debug"); err != nil {
		t.Fatal(err)
	}
	l.Debug("request", "status", 200)
	if !strings.Contains(b.String(), "level=DEBUG msg=request status=200") {
		t.Errorf("text record %q", b.String())
	}
	if _, err := newLogger(&b, "xml", "info"); err == nil || !strings.Contains(err.Error(), "--log-format") {
		t.Errorf("bad format: %v", err)
	}
	if _, err := newLogger(&b, "text", "loud"); err == nil || !strings.Contains(err.Error(), "--log-level") {
		t.Errorf("bad level: %v", err)
	}
}

// oak daemon --pool refuses a size out of range, naming the flag, before
// it touches the state root.
func TestDaemonPoolFlag(t *testing.T) {
	for _, n := range []string{"-1", "257"} {
		root := t.TempDir()
		cmd := newRootCmd()
		cmd.SetArgs([]string{"--root", root, "daemon", "--pool", n})
		err := cmd.Execute()
		if err == nil || !strings.Contains(err.Error(), "invalid --pool "+n) {
			t.Errorf("--pool %s: %v", n, err)
		}
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/oak-engine/oak/engine"
)

// The flags conmon and containerd's shim pass parse as runc's do: global
// flags before the verb, the verb's own anywhere after it.
func TestRuntimeFlags(t *testing.T) {
	g, rest, err := globalFlags.parseUntilVerb([]string{"--root", "/r", "--log=/l.json", "--log-format", "json",
		"--systemd-cgroup", "create", "--bundle", "/b", "--pid-file", "/p", "id", "--no-new-keyring"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"root": "/r", "log": "/l.json", "log-format": "json", "systemd-cgroup": "true"}
	if !maps.Equal(g, want) || rest[0] != "create" {
		t.Fatalf("global %v rest %v", g, rest)
	}
	vals, pos, err := rtFlags{value: createFlags, aliases: map[string]string{"b": "bundle"}}.parse(rest[1:])
	if err != nil {
		t.Fatal(err)
	}
	if vals["bundle"] != "/b" || vals["pid-file"] != "/p" || !isTrue(vals, "no-new-keyring") || !slices.Equal(pos, []string{"id"}) {
		t.Errorf("create flags %v, positional %v", vals, pos)
	}
	for _, bad := range [][]string{{"--bogus", "id"}, {"--bundle"}, {"--no-pivot=maybe", "id"}} {
		if _, _, err := (rtFlags{value: createFlags}).parse(bad); err == nil {
			t.Errorf("parse %v: no error", bad)
		}
	}
	// kill's signal may follow the id, with flags anywhere.
	vals, pos, err = rtFlags{value: map[string]bool{"all": false}, aliases: map[string]string{"a": "all"}}.parse([]string{"id", "-a", "KILL"})
	if err != nil || !isTrue(vals, "all") || !slices.Equal(pos, []string{"id", "KILL"}) {
		t.Errorf("kill: %v %v %v", vals, pos, err)
	}
}

// Errors in --log-format json are runc's lines: level, msg, time.
func TestRuntimeJSONLog(t *testing.T) {
	var b bytes.Buffer
	(&rtLogger{w: &b, json: true}).log("error", "config.json: mounts[2]:\nrefused")
	var line map[string]string
	if err := json.Unmarshal(b.Bytes(), &line); err != nil {
		t.Fatalf("%q: %v", b.String(), err)
	}
	if line["level"] != "error" || line["msg"] != "config.json: mounts[2]: refused" || line["time"] == "" || len(line) != 3 {
		t.Errorf("log line %v", line)
	}
}

// What `spec` writes is a bundle Oak runs as it is, even in strict mode:
// nothing in it is narrowed.
func TestRuntimeSpecIsStrict(t *testing.T) {
	b, err := json.Marshal(defaultOCISpec())
	if err != nil {
		t.Fatal(err)
	}
	s, err := engine.ParseOCIConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	c, err := engine.MapOCISpec("/bundle", s, engine.OCIOptions{Strict: true, HostHardLimit: func(int) uint64 { return 1 << 20 }})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 0 || c.RootFS != "/bundle/rootfs" {
		t.Errorf("spec maps with warnings %v, root %s", c.Warnings, c.RootFS)
	}
	if f := runtimeFeatures(); !slices.Equal(f.Linux.Capabilities, engine.OakCapabilities) || !strings.HasPrefix(f.OCIVersionMax, "1.") {
		t.Errorf("features %+v", f)
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

type testRow struct {
	ID         string
	Names      string
	RunningFor string
	Tags       []string
	labels     map[string]string
}

func (r testRow) Label(k string) string { return r.labels[k] }

var testRows = []testRow{
	{ID: "abc", Names: "web", RunningFor: "2 minutes ago", Tags: []string{"a", "b"}, labels: map[string]string{"tier": "front"}},
	{ID: "def", Names: "db\nforged row", RunningFor: "1 hour ago"},
}

func render(t *testing.T, spec, def string) (string, error) {
	t.Helper()
	f, err := parseFormat(spec, def)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	err = f.rows(&b, testRows, map[string]string{"ID": "CONTAINER ID", "RunningFor": "CREATED"})
	return b.String(), err
}

func TestFormatRows(t *testing.T) {
	for _, c := range []struct{ spec, want string }{
		// The default table: headers from the field names, or as given.
		{"", "CONTAINER ID   NAMES\nabc            web\ndef            db\\nforged row\n"},
		{"table", "CONTAINER ID   NAMES\nabc            web\ndef            db\\nforged row\n"},
		// A table of one's own, with docker's literal \t.
		{`table {{.Names}}\t{{.RunningFor}}`, "NAMES            CREATED\nweb              2 minutes ago\ndb\\nforged row   1 hour ago\n"},
		{`table {{.RunningFor}}`, "CREATED\n2 minutes ago\n1 hour ago\n"},
		// A plain template: one line per row, values as they are.
		{"{{.ID}}:{{upper .Names}}", "abc:WEB\ndef:DB\nFORGED ROW\n"},
		{`{{join .Tags ","}}|{{json .Tags}}|{{lower "X"}}|{{title "a b"}}`, "a,b|[\"a\",\"b\"]|x|A B\n|null|x|A B\n"},
		{`{{.Label "tier"}}{{truncate .Names 2}}`, "frontwe\ndb\n"},
	} {
		got, err := render(t, c.spec, `{{.ID}}\t{{.Names}}`)
		if err != nil || got != c.want {
			t.Errorf("--format %q:\n%q (%v)\nwant\n%q", c.spec, got, err, c.want)
		}
	}
}

// json writes one object per row, each line parsing on its own, with the
// field names as keys.
func TestFormatJSON(t *testing.T) {
	got, err := render(t, "json", "")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != len(testRows) {
		t.Fatalf("--format json: %d lines, want %d:\n%s", len(lines), len(testRows), got)
	}
	for i, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %d %q: %v", i, l, err)
		}
		if m["ID"] != testRows[i].ID || m["Names"] != testRows[i].Names {
			t.Errorf("line %d: %v, want keys ID and Names of %+v", i, m, testRows[i])
		}
		if _, ok := m["labels"]; ok {
			t.Errorf("line %d: unexported field in JSON: %v", i, m)
		}
	}
}

func TestFormatErrors(t *testing.T) {
	if _, err := parseFormat("{{.ID", ""); err == nil || !strings.Contains(err.Error(), "invalid --format") {
		t.Errorf("unclosed action: %v, want invalid --format", err)
	}
	if _, err := render(t, "{{.Nope}}", ""); err == nil || !strings.Contains(err.Error(), "Nope") {
		t.Errorf("unknown field: %v, want an error naming it", err)
	}
}

func TestHeaderName(t *testing.T) {
	for in, want := range map[string]string{"ID": "ID", "RunningFor": "RUNNING FOR", "CreatedAt": "CREATED AT", "OOMKilled": "OOM KILLED", "Names": "NAMES"} {
		if got := headerName(in); got != want {
			t.Errorf("headerName(%q) = %q, want %q", in, got, want)
		}
	}
}

// inspect prints one JSON array by default, a template per object otherwise.
func TestFormatObjects(t *testing.T) {
	var b bytes.Buffer
	var none *format
	if err := none.objects(&b, []any{testRows[0]}); err != nil {
		t.Fatal(err)
	}
	var arr []map[string]any
	if err := json.Unmarshal(b.Bytes(), &arr); err != nil || len(arr) != 1 || arr[0]["ID"] != "abc" {
		t.Errorf("default inspect output %q: %v", b.String(), err)
	}
	f, _ := parseFormat("{{.Names}}", "")
	b.Reset()
	f.objects(&b, []any{testRows[0], testRows[1]})
	if b.String() != "web\ndb\nforged row\n" {
		t.Errorf("template inspect output %q", b.String())
	}
}

func TestSizeText(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1 KiB", 77824: "76 KiB", 2048000: "2.0 MiB", 1992294: "1.9 MiB",
		16 << 20: "16 MiB", 16781312: "16.0 MiB", 1 << 30: "1 GiB", 3 << 40: "3 TiB"} {
		if got := sizeText(n); got != want {
			t.Errorf("sizeText(%d) = %q, want %q", n, got, want)
		}
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"text/tabwriter"
	"text/template"
	"unicode"
)

// Output formats, after docker's --format. Every listing (ps, image ls,
// volume ls) and oak inspect take
//
//	table                the default table
//	table TEMPLATE       a table of the template's columns, with a header row
//	json                 each row as one JSON object per line (inspect: one JSON array)
//	TEMPLATE             a Go text/template executed per row, e.g. {{.ID}}
//
// JSON keys and template fields are the same names (see README, "Output
// formats"). `\t` and `\n` written literally in a format stand for a tab
// and a newline, as in docker.

// templateFuncs are docker's template functions that make sense here.
var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"join":  strings.Join,
	"split": strings.Split,
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
	"title": title,
	"truncate": func(s string, n int) string {
		if r := []rune(s); len(r) > n {
			return string(r[:n])
		}
		return s
	},
	"pad": func(s string, left, right int) string {
		return strings.Repeat(" ", left) + s + strings.Repeat(" ", right)
	},
}

// title upper-cases the first letter of each word.
func title(s string) string {
	prev := ' '
	return strings.Map(func(r rune) rune {
		defer func() { prev = r }()
		if unicode.IsSpace(prev) {
			return unicode.ToUpper(r)
		}
		return r
	}, s)
}

// format is a parsed --format.
type format struct {
	json  bool
	table bool               // print a header row and align columns
	tmpl  *template.Template // nil with json
}

// parseFormat reads a --format value; def is the template of the default
// table (used for "" and "table").
func parseFormat(s, def string) (*format, error) {
	switch strings.TrimSpace(s) {
	case "json":
		return &format{json: true}, nil
	case "", "table":
		s = "table " + def
	}
	text := strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(s)
	f := &format{}
	if rest, ok := strings.CutPrefix(text, "table"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
		f.table, text = true, strings.TrimLeft(rest, " ")
		if text == "" {
			text = def
		}
	}
	t, err := template.New("format").Funcs(templateFuncs).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("invalid --format %q: %w", s, err)
	}
	f.tmpl = t
	return f, nil
}

// rows writes one row per element of rows (a slice of structs or of
// pointers to them). A table gets a header row made by running the
// template on the column names: headers maps a field to its own name,
// other fields are their names in capitals ("RunningFor" → "RUNNING FOR").
func (f *format) rows(w io.Writer, rows any, headers map[string]string) error {
	v := reflect.ValueOf(rows)
	if f.json {
		for i := 0; i < v.Len(); i++ {
			b, err := json.Marshal(v.Index(i).Interface())
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(w, "%s\n", b); err != nil {
				return err
			}
		}
		return nil
	}
	out := w
	var tw *tabwriter.Writer
	if f.table {
		tw = tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
		out = tw
		elem := v.Type().Elem()
		if elem.Kind() == reflect.Pointer {
			elem = elem.Elem()
		}
		h, err := f.header(elem, headers)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, h)
	}
	for i := 0; i < v.Len(); i++ {
		var b bytes.Buffer
		if err := f.tmpl.Execute(&b, v.Index(i).Interface()); err != nil {
			return fmt.Errorf("--format: %w", err)
		}
		line := b.String()
		if f.table {
			line = printable(line) // no value can end a row or forge another
		}
		fmt.Fprintln(out, line)
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

// header runs the template on a map of column names.
func (f *format) header(t reflect.Type, headers map[string]string) (string, error) {
	names := map[string]any{}
	for i := 0; i < t.NumField(); i++ {
		name := t.Field(i).Name
		if h, ok := headers[name]; ok {
			names[name] = h
		} else {
			names[name] = headerName(name)
		}
	}
	var b bytes.Buffer
	if err := f.tmpl.Execute(&b, names); err != nil {
		return "", fmt.Errorf("--format: table header: %w", err)
	}
	return b.String(), nil
}

// headerName is a field name in capitals, its words apart: "RunningFor"
// → "RUNNING FOR", "ID" → "ID".
func headerName(name string) string {
	var b strings.Builder
	rs := []rune(name)
	for i, r := range rs {
		if i > 0 && unicode.IsUpper(r) && (unicode.IsLower(rs[i-1]) || i+1 < len(rs) && unicode.IsLower(rs[i+1])) {
			b.WriteByte(' ')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

// printable quotes every run of unprintable characters (tabs, which
// separate columns, excepted) in a table row.
func printable(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r != '\t' && !unicode.IsPrint(r) }) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r == '\t' || unicode.IsPrint(r) {
			b.WriteRune(r)
			continue
		}
		q := strconv.QuoteRune(r)
		b.WriteString(q[1 : len(q)-1])
	}
	return b.String()
}

// objects writes what oak inspect prints: by default (or with json) one
// indented JSON array of them all, as docker inspect; with a template,
// the template once per object.
func (f *format) objects(w io.Writer, objs []any) error {
	if f == nil || f.json {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "    ")
		return enc.Encode(objs)
	}
	for _, o := range objs {
		var b bytes.Buffer
		if err := f.tmpl.Execute(&b, o); err != nil {
			return fmt.Errorf("--format: %w", err)
		}
		fmt.Fprintln(w, b.String())
	}
	return nil
}

// sizeText is a size as listings show it: whole units when exact ("16
// MiB"), else one decimal ("1.9 MiB"); bytes below 1 KiB.
func sizeText(n int64) string {
	for _, u := range []struct {
		shift uint
		name  string
	}{{40, "TiB"}, {30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if n >= 1<<u.shift {
			if n%(1<<u.shift) == 0 {
				return fmt.Sprintf("%d %s", n>>u.shift, u.name)
			}
			return fmt.Sprintf("%.1f %s", float64(n)/float64(int64(1)<<u.shift), u.name)
		}
	}
	return fmt.Sprintf("%d B", n)
}

package engine

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"unicode"
)

// ResolveEnv turns -e arguments into KEY=VALUE: an argument without "="
// names a variable of the caller's environment (looked up with lookup)
// and is left out when it is not set there, as docker does.
func ResolveEnv(vars []string, lookup func(string) (string, bool)) []string {
	out := make([]string, 0, len(vars))
	for _, v := range vars {
		if strings.Contains(v, "=") {
			out = append(out, v)
			continue
		}
		if val, ok := lookup(v); ok && v != "" {
			out = append(out, v+"="+val)
		}
	}
	return out
}

// ReadEnvFile reads an --env-file as docker does: one KEY=VALUE a line,
// taken as it is (no quotes or escapes); a line of KEY alone is
// resolved as ResolveEnv does; blank lines and lines starting with # are
// skipped. A key holding white space is refused.
func ReadEnvFile(path string, lookup func(string) (string, bool)) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--env-file %s: %w", path, unwrapPath(err))
	}
	defer f.Close()
	var vars []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimLeftFunc(sc.Text(), unicode.IsSpace)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, _, _ := strings.Cut(line, "=")
		if key == "" || strings.ContainsFunc(key, unicode.IsSpace) || strings.ContainsRune(line, 0) {
			return nil, fmt.Errorf("--env-file %s: line %d: want KEY=VALUE or KEY, got %q", path, n, line)
		}
		vars = append(vars, ResolveEnv([]string{line}, lookup)...)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--env-file %s: %w", path, err)
	}
	return vars, nil
}

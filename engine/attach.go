package engine

import (
	"fmt"
	"strings"
)

// DefaultDetachKeys are the keys that detach oak attach, as docker's.
const DefaultDetachKeys = "ctrl-p,ctrl-q"

// ParseDetachKeys reads docker's --detach-keys syntax: a comma-separated
// list of ctrl-<letter> or single characters, at least one.
func ParseDetachKeys(s string) ([]byte, error) {
	var seq []byte
	for _, k := range strings.Split(s, ",") {
		switch {
		case len(k) == 6 && strings.HasPrefix(k, "ctrl-") && k[5] >= 'a' && k[5] <= 'z':
			seq = append(seq, k[5]-'a'+1)
		case len(k) == 1:
			seq = append(seq, k[0])
		default:
			return nil, fmt.Errorf("invalid --detach-keys %q: want e.g. ctrl-p,ctrl-q", s)
		}
	}
	return seq, nil
}

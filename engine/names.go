package engine

import (
	"fmt"

	"github.com/oak-engine/oak/storage/volume"
)

// MaxNameLen is the longest container name accepted.
const MaxNameLen = 128

// ValidName reports whether name is a valid container name: docker's rule
// [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most MaxNameLen bytes. Such a name is one
// path component that is never "." or "..", never starts like a flag, and
// holds nothing a terminal or a table would interpret.
func ValidName(name string) bool { return volume.DockerName(name, MaxNameLen) }

// checkName returns nil for a valid container name and otherwise an error
// that names the input (quoted: it may hold anything) and the rule.
func checkName(name string) error {
	if ValidName(name) {
		return nil
	}
	return fmt.Errorf("invalid --name %q: must match [a-zA-Z0-9][a-zA-Z0-9_.-]* and be at most %d characters", name, MaxNameLen)
}

package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// ErrEscape is returned when a symbolic link in an image points above the
// image's root.
var ErrEscape = errors.New("symbolic link escapes the root")

// CheckRootFS verifies that dir can serve as a container's root: an existing
// directory with no link at its top level that climbs out of it (in an
// image that is a mistake or an attack). It refuses, naming the path,
// anything else.
func CheckRootFS(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("root file system %s: %w", dir, unwrapPath(err))
	}
	if !fi.IsDir() {
		return fmt.Errorf("root file system %s: not a directory", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("root file system %s: %w", dir, unwrapPath(err))
	}
	for _, e := range entries {
		if e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		if _, err := resolveIn(dir, "/"+e.Name()); errors.Is(err, ErrEscape) {
			return fmt.Errorf("root file system %s: %w", dir, err)
		}
	}
	return nil
}

// resolveIn resolves p (absolute, inside root) following symbolic links the
// way the kernel would with root as "/", except that a link whose target
// climbs above the root is an error rather than being clamped: in an image
// that is either a mistake or an attack. It returns the resolved path inside
// the root; the final element need not exist.
func resolveIn(root, p string) (string, error) {
	const maxLinks = 40
	links := 0
	done := "/"
	rest := strings.Split(strings.TrimPrefix(path.Clean("/"+p), "/"), "/")
	for len(rest) > 0 {
		elem := rest[0]
		rest = rest[1:]
		switch elem {
		case "", ".":
			continue
		case "..":
			done = path.Dir(done)
			continue
		}
		next := path.Join(done, elem)
		fi, err := os.Lstat(filepath.Join(root, next))
		if err != nil {
			if len(rest) == 0 && errors.Is(err, fs.ErrNotExist) {
				return next, nil
			}
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = next
			continue
		}
		if links++; links > maxLinks {
			return "", fmt.Errorf("%s: too many levels of symbolic links", next)
		}
		target, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			return "", err
		}
		if !path.IsAbs(target) && climbsOut(done, target) {
			return "", fmt.Errorf("%s -> %s: %w", next, target, ErrEscape)
		}
		if path.IsAbs(target) {
			done = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return done, nil
}

// climbsOut reports whether the relative link text, read in directory dir,
// goes above "/" at any point.
func climbsOut(dir, target string) bool {
	depth := strings.Count(strings.Trim(dir, "/"), "/") + 1
	if dir == "/" {
		depth = 0
	}
	for _, e := range strings.Split(target, "/") {
		switch e {
		case "", ".":
		case "..":
			if depth--; depth < 0 {
				return true
			}
		default:
			depth++
		}
	}
	return false
}

// unwrapPath strips the *PathError wrapper so messages name the path once.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

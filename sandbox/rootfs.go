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
// directory, with real directories (not links) at the mount points Oak needs,
// and no link at its top level that climbs out of it. It refuses, naming the
// path, anything else.
func CheckRootFS(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("root file system %s: %w", dir, unwrapPath(err))
	}
	if !fi.IsDir() {
		return fmt.Errorf("root file system %s: not a directory", dir)
	}
	for _, d := range requiredDirs {
		fi, err := os.Lstat(filepath.Join(dir, d))
		if err != nil || !fi.IsDir() {
			return fmt.Errorf("root file system %s: /%s must be a directory (it is a mount point)", dir, d)
		}
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

// LookPath finds the command name inside the root dir the way execvp would
// inside the container: an absolute name is taken as is, one with a slash
// relative to cwd,
// any other is searched in the colon-separated pathList. Links are followed
// inside the root; one that climbs out of it is an error. It returns the
// command's absolute path inside the root.
func LookPath(dir, name, cwd, pathList string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("command: empty name")
	}
	var candidates []string
	if path.IsAbs(name) {
		candidates = []string{path.Clean(name)}
	} else if strings.Contains(name, "/") {
		candidates = []string{path.Join("/", cwd, name)}
	} else {
		for _, p := range strings.Split(pathList, ":") {
			if p == "" {
				p = "."
			}
			candidates = append(candidates, path.Join("/", cwd, p, name))
		}
	}
	for _, c := range candidates {
		resolved, err := resolveIn(dir, c)
		if errors.Is(err, ErrEscape) {
			return "", fmt.Errorf("command %s: %w", name, err)
		}
		if err != nil {
			continue
		}
		fi, err := os.Stat(filepath.Join(dir, resolved))
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if fi.Mode()&0o111 == 0 {
			return "", fmt.Errorf("command %s: %s is not executable", name, c)
		}
		return c, nil
	}
	return "", fmt.Errorf("command %s: not found in the image (PATH=%s)", name, pathList)
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

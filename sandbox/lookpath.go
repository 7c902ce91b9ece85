package sandbox

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// LookPathIn checks, before a launch, that the command name would be found
// and could be executed in the root file system at root (a host
// directory), the way the container's execve will look for it: a name
// with a slash relative to cwd, any other in the PATH of env. Links are
// followed inside root only. It returns an *ExecError (ErrCommandNotFound
// or ErrCommandNotExecutable) when the command could not run. What a
// container writes before its command starts is not seen: it is a
// pre-check for front ends that must refuse a missing command at create
// time (the OCI runtime), not a guarantee.
func LookPathIn(root, name string, env []string, cwd string) error {
	var candidates []string
	if strings.Contains(name, "/") {
		p := name
		if !path.IsAbs(p) {
			p = path.Join(cwd, p)
		}
		candidates = []string{p}
	} else {
		dirs := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, "PATH="); ok {
				dirs = v
			}
		}
		for _, d := range strings.Split(dirs, ":") {
			if d == "" {
				d = "."
			}
			candidates = append(candidates, path.Join(d, name))
		}
	}
	denied := false
	for _, c := range candidates {
		if !path.IsAbs(c) {
			c = path.Join(cwd, c)
		}
		r, err := resolveIn(root, c)
		if err != nil {
			continue
		}
		fi, err := os.Stat(filepath.Join(root, r))
		if err != nil {
			continue
		}
		if fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return nil
		}
		denied = true
		if strings.Contains(name, "/") {
			break
		}
	}
	if denied {
		return &ExecError{Errno: syscall.EACCES, Msg: fmt.Sprintf("exec %s: permission denied", name)}
	}
	return &ExecError{Errno: syscall.ENOENT, Msg: fmt.Sprintf("exec: %q: executable file not found in $PATH", name)}
}

// LstatIn resolves p in the root file system at root (a host directory)
// the way the container will see it, links followed inside root only,
// and returns the resolved path (absolute, inside the container) and its
// Lstat. Like LookPathIn it is a pre-check at create time.
func LstatIn(root, p string) (string, os.FileInfo, error) {
	r, err := resolveIn(root, p)
	if err != nil {
		return "", nil, err
	}
	fi, err := os.Lstat(filepath.Join(root, r))
	return r, fi, err
}

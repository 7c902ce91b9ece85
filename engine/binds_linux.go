package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/oak-engine/oak/sandbox"
)

// Host directories (-v /host/dir:/path[:ro]) are an explicit grant by the
// user who runs oak: the container gets that directory and nothing above
// or beside it, as a capability in its space like a volume. It is mounted
// nosuid and nodev, not recursively (mounts below it stay out), and
// id-mapped so that the container's root stands for the directory's owner
// and no other id is mapped: what root makes there is the owner's on the
// host, so no file can appear there that a host user could run with more
// privilege than the owner has. A directory owned by host root is refused
// read-write for that reason (writes would be root's), and so are the host
// trees no container should hold (/, /proc, /sys, /dev, /boot, Oak's and
// other engines' state and sockets), or a directory that holds one.

// sensitive are host paths no container is granted, nor a directory above
// them.
var sensitive = []string{"/proc", "/sys", "/dev", "/boot", "/run/oak", "/run/oak-runtime",
	"/run/docker.sock", "/var/run/docker.sock", "/run/docker", "/var/lib/docker",
	"/run/containerd", "/var/lib/containerd", "/run/podman", "/var/lib/containers", "/run/crun", "/run/runc"}

// openBind opens the host directory src as a detached mount for a
// container (read-only if ro), after the checks above, made on what was
// opened rather than on the name (a link swapped in between changes
// nothing). It returns the mount and the directory's owner.
func (e *Engine) openBind(src string, ro bool) (*os.File, sandbox.IDPair, error) {
	var owner sandbox.IDPair
	real, err := filepath.EvalSymlinks(src)
	if err != nil {
		return nil, owner, fmt.Errorf("host directory %s: %w", src, unwrapPath(err))
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, real, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_SYMLINK_NOFOLLOW)
	if err != nil {
		return nil, owner, fmt.Errorf("host directory %s: %w", src, err)
	}
	f := os.NewFile(uintptr(fd), src)
	fail := func(format string, a ...any) (*os.File, sandbox.IDPair, error) {
		f.Close()
		return nil, owner, fmt.Errorf("host directory %s: %s", src, fmt.Sprintf(format, a...))
	}
	var st, named unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fail("%v", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fail("not a directory (only directories can be granted)")
	}
	// What was opened is what the checks below are about.
	if err := unix.Lstat(real, &named); err != nil || named.Dev != st.Dev || named.Ino != st.Ino {
		return fail("changed while it was opened")
	}
	root, _ := filepath.EvalSymlinks(e.Root)
	for _, p := range append(sensitive, root) {
		if p == "" {
			continue
		}
		if real == "/" || real == p || strings.HasPrefix(real, p+"/") || strings.HasPrefix(p, real+"/") {
			return fail("refused: it is or holds %s, which no container is given (grant a directory of its own, or a volume)", p)
		}
	}
	owner = sandbox.IDPair{UID: st.Uid, GID: st.Gid}
	if !ro && (st.Uid == 0 || st.Gid == 0) {
		return fail("refused read-write: it belongs to host root, so the container's writes there would be root's; give it to a user (chown) or add :ro")
	}
	if ro {
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
			return fail("read-only: %v", err)
		}
	}
	return f, owner, nil
}

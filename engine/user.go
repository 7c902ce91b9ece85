package engine

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// lookupUser resolves an image's User ("", "name", "uid", "name:group",
// "uid:gid") to numeric ids inside the container, reading /etc/passwd and
// /etc/group from the image's layers (top layer first; the first layer
// that has the file wins, as the overlay shows it). Ids above 65535 are
// outside the container's id range and refused.
func lookupUser(layers []string, user string) (uid, gid uint32, err error) {
	if user == "" {
		return 0, 0, nil
	}
	name, group, hasGroup := strings.Cut(user, ":")
	u, userGID, err := lookupID(layers, "etc/passwd", name, true)
	if err != nil {
		return 0, 0, fmt.Errorf("user %q: %w", user, err)
	}
	g := userGID
	if hasGroup {
		if g, _, err = lookupID(layers, "etc/group", group, false); err != nil {
			return 0, 0, fmt.Errorf("user %q: %w", user, err)
		}
	}
	return u, g, nil
}

const maxContainerID = 65535

// lookupID finds name (or a number) in a passwd or group file; for passwd
// it also returns the user's primary group.
func lookupID(layers []string, file, name string, passwd bool) (id, primary uint32, err error) {
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		if n > maxContainerID {
			return 0, 0, fmt.Errorf("id %d is outside the container's range 0-%d", n, maxContainerID)
		}
		id = uint32(n)
		primary = id
		name = ""
	}
	for _, l := range layers {
		f, err := os.Open(filepath.Join(l, file))
		if err != nil {
			continue
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Split(sc.Text(), ":")
			if len(fields) < 3 {
				continue
			}
			n, err := strconv.ParseUint(fields[2], 10, 32)
			if err != nil || n > maxContainerID {
				continue
			}
			if name == "" && uint32(n) != id || name != "" && fields[0] != name {
				continue
			}
			id = uint32(n)
			primary = id
			if passwd && len(fields) >= 4 {
				if g, err := strconv.ParseUint(fields[3], 10, 32); err == nil && g <= maxContainerID {
					primary = uint32(g)
				}
			}
			return id, primary, nil
		}
		break // the top-most file decides
	}
	if name != "" {
		return 0, 0, fmt.Errorf("%s not found in the image's /%s", name, file)
	}
	return id, primary, nil
}

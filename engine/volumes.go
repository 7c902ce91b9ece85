package engine

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/oak-engine/oak/sandbox"
	"github.com/oak-engine/oak/storage/volume"
)

// VolumeMount is one -v NAME:/PATH[:ro] of a run.
type VolumeMount struct {
	Name     string `json:"name"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// ParseVolumeMount reads the argument of -v: NAME:/PATH or NAME:/PATH:ro
// (or :rw), or with an absolute host directory for NAME, a bind of that
// directory (see binds_linux.go). The target must be a clean absolute path
// outside the file systems Oak mounts itself (/proc, /dev, /tmp, /sys).
func ParseVolumeMount(arg string) (VolumeMount, error) {
	fail := func(format string, a ...any) (VolumeMount, error) {
		return VolumeMount{}, fmt.Errorf("-v %s: %s", arg, fmt.Sprintf(format, a...))
	}
	parts := strings.Split(arg, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return fail("want NAME:/PATH[:ro]")
	}
	m := VolumeMount{Name: parts[0], Target: parts[1]}
	if isBind(m.Name) {
		if path.Clean(m.Name) != m.Name {
			return fail("host directory %q must be a clean absolute path", m.Name)
		}
	} else if !volume.ValidName(m.Name) {
		return fail("bad volume name %q", m.Name)
	}
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			m.ReadOnly = true
		case "rw":
		default:
			return fail("unknown mode %q (want ro or rw)", parts[2])
		}
	}
	if !path.IsAbs(m.Target) || path.Clean(m.Target) != m.Target || m.Target == "/" {
		return fail("target %q must be a clean absolute path other than /", m.Target)
	}
	for _, own := range []string{"/proc", "/dev", "/tmp", "/sys"} {
		if m.Target == own || strings.HasPrefix(m.Target, own+"/") {
			return fail("target %q is inside %s, which Oak mounts itself", m.Target, own)
		}
	}
	return m, nil
}

// Volumes opens the state root's volume store.
func (e *Engine) Volumes() (*volume.Store, error) {
	return volume.OpenDB(filepath.Join(e.Root, "volumes"), e.metaDB())
}

// checkVolumes parses every -v, refuses a target given twice, and checks
// that each volume exists.
func (e *Engine) checkVolumes(args []string) ([]VolumeMount, error) {
	if len(args) == 0 {
		return nil, nil
	}
	vs, err := e.Volumes()
	if err != nil {
		return nil, err
	}
	var ms []VolumeMount
	seen := map[string]bool{}
	for _, a := range args {
		m, err := ParseVolumeMount(a)
		if err != nil {
			return nil, err
		}
		if seen[m.Target] {
			return nil, fmt.Errorf("-v %s: target %s is given twice", a, m.Target)
		}
		seen[m.Target] = true
		if isBind(m.Name) {
			f, _, err := e.openBind(m.Name, m.ReadOnly)
			if err != nil {
				return nil, fmt.Errorf("-v %s: %w", a, err)
			}
			f.Close()
		} else if _, err := vs.Inspect(m.Name); err != nil {
			return nil, fmt.Errorf("-v %s: %w", a, err)
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// attachVolumes attaches each volume the container holds, as a detached
// mount for the sandbox to hand into the container.
func (e *Engine) attachVolumes(ms []VolumeMount) ([]sandbox.Volume, error) {
	if len(ms) == 0 {
		return nil, nil
	}
	vs, err := e.Volumes()
	if err != nil {
		return nil, err
	}
	var out []sandbox.Volume
	for _, m := range ms {
		v := sandbox.Volume{Target: m.Target}
		var err error
		if isBind(m.Name) {
			v.Bind = true
			v.Mount, v.Owner, err = e.openBind(m.Name, m.ReadOnly)
		} else {
			// A volume given an owner at creation is not filled from the
			// image (the image's directory would set another owner).
			if info, ierr := vs.Inspect(m.Name); ierr == nil && info.Owner != nil {
				v.NoFill = true
			}
			v.Mount, err = vs.Attach(m.Name, m.ReadOnly)
		}
		if err != nil {
			for _, v := range out {
				v.Mount.Close()
			}
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// VolumeInfo is a volume as oak volume ls and inspect show it. Its JSON
// keys are its field names, as in every JSON Oak prints (see README,
// "Output formats"), so that a --format template names what the JSON shows.
type VolumeInfo struct {
	Name      string
	Size      int64 // bytes: the file system's size, its quota
	Allocated int64 // bytes it occupies on the host now
	Sparse    bool  // its host space is not reserved
	CreatedAt time.Time
	Device    string // the loop device while attached, else ""
	Missing   bool   // its image is gone: it can only be removed
	Owner     string `json:",omitempty"` // "UID:GID" given at creation for its root
}

func volumeInfo(v *volume.Volume) *VolumeInfo {
	return &VolumeInfo{Name: v.Name, Size: v.Size, Allocated: v.Allocated, Sparse: v.Sparse,
		CreatedAt: v.Created, Device: v.Device, Missing: v.Missing, Owner: ownerText(v.Owner)}
}

func ownerText(o *volume.Owner) string {
	if o == nil {
		return ""
	}
	return fmt.Sprintf("%d:%d", o.UID, o.GID)
}

// VolumeOptions and VolumeOwner are what oak volume create may ask for
// besides a name and a size (see storage/volume).
type (
	VolumeOptions = volume.Options
	VolumeOwner   = volume.Owner
)

// CreateVolume creates a volume of size bytes, reserved on the host unless
// o.Sparse, its root owned by o.Owner if set. A volume that does not fit is
// refused with a hint at sparse.
func (e *Engine) CreateVolume(name string, size int64, o VolumeOptions) (*VolumeInfo, error) {
	vs, err := e.Volumes()
	if err != nil {
		return nil, err
	}
	v, err := vs.CreateWith(name, size, o)
	if err == nil {
		e.advance() // a factory's volume holds its disk (hostcore_linux.go)
	}
	if errors.Is(err, volume.ErrNoSpace) {
		return nil, fmt.Errorf("%w (--sparse overcommits, at a risk: see oak volume create --help)", err)
	}
	if err != nil {
		return nil, err
	}
	return volumeInfo(v), nil
}

// ListVolumes describes every volume, ordered by name.
func (e *Engine) ListVolumes() ([]*VolumeInfo, error) {
	vs, err := e.Volumes()
	if err != nil {
		return nil, err
	}
	list, err := vs.List()
	if err != nil {
		return nil, err
	}
	out := make([]*VolumeInfo, 0, len(list))
	for _, v := range list {
		out = append(out, volumeInfo(v))
	}
	return out, nil
}

// InspectVolume describes the volume named name.
func (e *Engine) InspectVolume(name string) (*VolumeInfo, error) {
	vs, err := e.Volumes()
	if err != nil {
		return nil, err
	}
	v, err := vs.Inspect(name)
	if err != nil {
		return nil, err
	}
	return volumeInfo(v), nil
}

// RemoveVolume removes the volume named name and its data; the store
// refuses one that is attached.
func (e *Engine) RemoveVolume(name string) error {
	vs, err := e.Volumes()
	if err != nil {
		return err
	}
	if err := vs.Remove(name); err != nil {
		return err
	}
	e.advance() // hostcore_linux.go
	return nil
}

// isBind reports whether a volume name names a host directory.
func isBind(name string) bool { return strings.HasPrefix(name, "/") }

// ParseMountFlag turns docker's --mount type=volume|bind,source=S,target=T
// [,readonly] into -v's S:T[:ro]. Other types and options are refused,
// naming them; tmpfs mounts are --tmpfs.
func ParseMountFlag(arg string) (string, error) {
	var typ, src, dst string
	ro := false
	for _, kv := range strings.Split(arg, ",") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "type":
			typ = v
		case "source", "src":
			src = v
		case "target", "destination", "dst":
			dst = v
		case "readonly", "ro":
			ro = v == "" || v == "true" || v == "1"
		default:
			return "", fmt.Errorf("--mount %s: option %q is not supported", arg, k)
		}
	}
	switch {
	case typ != "volume" && typ != "bind":
		return "", fmt.Errorf("--mount %s: type %q: Oak mounts volumes and host directories (type=volume|bind); use --tmpfs for a tmpfs", arg, typ)
	case src == "" || dst == "":
		return "", fmt.Errorf("--mount %s: want source= and target=", arg)
	case typ == "bind" && !isBind(src):
		return "", fmt.Errorf("--mount %s: a bind's source must be an absolute host path", arg)
	case typ == "volume" && isBind(src):
		return "", fmt.Errorf("--mount %s: a volume's source is its name", arg)
	}
	v := src + ":" + dst
	if ro {
		v += ":ro"
	}
	return v, nil
}

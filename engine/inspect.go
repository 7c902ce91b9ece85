package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/oak-engine/oak/storage/image"
	"github.com/oak-engine/oak/storage/volume"
)

// The views below are what oak inspect and the --format of every listing
// show. Their JSON keys are their Go field names, capitalised as docker
// writes them ({{.State.Status}}, {{.Config.Image}}, {{.Id}}), so a
// --format template names exactly what the JSON shows. The records on
// disk keep their own lower-case keys; these views are built from them.

// ContainerInfo is a container as oak inspect shows it, after docker's
// container inspect where the two have the same thing to say.
type ContainerInfo struct {
	Id      string
	Name    string // docker's has a leading "/"; Oak's names have none
	Created time.Time
	Path    string   // the command
	Args    []string // its arguments
	State   ContainerState
	Image   string // the stored image's id; "" for the demo image or a directory
	// RestartCount counts the restarts its restart policy made.
	RestartCount int
	LogPath      string
	Config       ContainerConfig
	HostConfig   HostConfig
	Mounts       []MountInfo
	// NetworkSettings.Ports are the host addresses its ports are published
	// on while it runs, as docker writes them: "0.0.0.0:49153->80/tcp".
	NetworkSettings struct{ Ports []string }
}

// ContainerState is a container's life so far.
type ContainerState struct {
	Status     string // created, running, exited or broken
	Running    bool
	Restarting bool
	OOMKilled  bool
	Pid        int // host pid of its init while running
	ExitCode   int
	Error      string // for a broken record: why it cannot be read
	FinishedAt time.Time
}

// ContainerConfig is what the container was asked to run.
type ContainerConfig struct {
	Hostname   string
	User       string // uid:gid on the container's side
	Env        []string
	Cmd        []string
	Image      string // as the run named it
	WorkingDir string
	Labels     map[string]string
	Tty        bool `json:",omitempty"` // run -dt: a terminal its supervisor holds, for oak attach
}

// HostConfig is what the container was granted and limited to.
type HostConfig struct {
	Memory         int64 // bytes; 0: no limit
	PidsLimit      int64 // 0: no limit
	NanoCpus       int64 // CPU in billionths of a core; 0: no limit
	TmpfsSize      int64 // bytes of /tmp
	StorageSize    int64 // bytes of the private writable layer; 0 with ReadonlyRootfs
	ReadonlyRootfs bool
	AutoRemove     bool
	Factory        string   `json:",omitempty"` // the factory it was made from (run --factory)
	Tenant         string   `json:",omitempty"` // the tenant it is for; "" the host administrator's
	Spawn          bool     `json:",omitempty"` // run --spawn: it may make sub-containers
	Parent         string   `json:",omitempty"` // the id of the container that made it (a sub-container)
	Pooled         bool     `json:",omitempty"` // its sandbox was prepared ahead, in the daemon's pool (oak daemon --pool)
	Publish        []string // -p grants as given
	Egress         []string // --egress grants as given
	Dns            []string
	DnsSearch      []string
	DnsOptions     []string
	ExtraHosts     []string
	LogConfig      LogConfig
}

// LogConfig bounds the container's log.
type LogConfig struct {
	MaxSize int64 // bytes per file; 0: one unbounded file
	MaxFile int
}

// MountInfo is one volume the container was granted.
type MountInfo struct {
	Type        string // "volume", or "bind" for a host directory
	Name        string // the volume's
	Source      string `json:",omitempty"` // the host directory of a bind
	Destination string
	RW          bool
}

// containerInfo builds the view of c from its record and its spec. A
// spec that cannot be read (a broken or half-made record) leaves the
// parts it would fill empty.
func (e *Engine) containerInfo(c *Container) *ContainerInfo {
	ci := &ContainerInfo{Id: c.ID, Name: c.Name, Created: c.Created, RestartCount: c.RestartCount,
		State: ContainerState{Status: c.Status, Running: c.Status == StatusRunning, Restarting: c.Status == StatusRestarting, OOMKilled: c.OOMKilled,
			ExitCode: c.ExitCode, Error: c.Problem, FinishedAt: c.Finished},
		LogPath: filepath.Join(e.dir(c.ID), "log")}
	if c.Status == StatusRunning {
		ci.State.Pid = c.Pid
	}
	if len(c.Command) > 0 {
		ci.Path, ci.Args = c.Command[0], c.Command[1:]
	}
	ci.Config.Image = c.Image
	ci.Config.Cmd = c.Command
	ci.HostConfig.AutoRemove = c.AutoRemove
	ci.HostConfig.Factory = c.Factory
	ci.HostConfig.Tenant = c.Tenant
	ci.HostConfig.Spawn, ci.HostConfig.Parent = c.Spawn, c.Parent
	ci.HostConfig.Pooled = c.Pooled
	var s Spec
	if c.Status == StatusBroken || readJSON(e.specPath(c.ID), &s) != nil {
		return ci
	}
	ci.Image = s.ImageID
	ci.Config.Hostname = s.Names.Hostname
	if ci.Config.Hostname == "" {
		ci.Config.Hostname = ShortID(c.ID)
	}
	ci.Config.User = fmt.Sprintf("%d:%d", s.UID, s.GID)
	ci.Config.Env = s.Env
	ci.Config.WorkingDir = s.Cwd
	ci.Config.Labels = s.Labels
	ci.Config.Tty = s.TTY
	ci.HostConfig.Memory = s.Limits.MemoryBytes
	ci.HostConfig.PidsLimit = s.Limits.Pids
	ci.HostConfig.NanoCpus = s.Limits.CPUMilli * 1_000_000
	ci.HostConfig.TmpfsSize = s.Limits.TmpfsBytes
	ci.HostConfig.StorageSize = s.Limits.WritableBytes
	ci.HostConfig.ReadonlyRootfs = s.ReadOnly
	ci.HostConfig.Publish = s.Publish
	ci.HostConfig.Egress = s.Egress
	ci.HostConfig.Dns = s.Names.DNS
	ci.HostConfig.DnsSearch = s.Names.DNSSearch
	ci.HostConfig.DnsOptions = s.Names.DNSOptions
	ci.HostConfig.ExtraHosts = s.Names.AddHosts
	ci.HostConfig.LogConfig = LogConfig{MaxSize: s.Log.MaxSize, MaxFile: s.Log.MaxFile}
	for _, m := range s.Volumes {
		mi := MountInfo{Type: "volume", Name: m.Name, Destination: m.Target, RW: !m.ReadOnly}
		if isBind(m.Name) {
			mi.Type, mi.Name, mi.Source = "bind", "", m.Name
		}
		ci.Mounts = append(ci.Mounts, mi)
	}
	ps, _ := e.PortsOf(c) // none unless running
	for _, p := range ps {
		ci.NetworkSettings.Ports = append(ci.NetworkSettings.Ports, p.String())
	}
	return ci
}

// InspectContainer describes the container a name or id (prefix) refers to.
func (e *Engine) InspectContainer(ref string) (*ContainerInfo, error) {
	c, err := e.Get(ref)
	if err != nil {
		return nil, err
	}
	return e.containerInfo(c), nil
}

// ImageInfo is an image as oak inspect and image ls show it, after
// docker's image inspect.
type ImageInfo struct {
	Id           string   // "sha256:<hex>" of its config; "" for the built-in demo image
	RepoTags     []string // normalised names, e.g. docker.io/library/alpine:3.20
	RepoDigests  []string
	Created      time.Time
	Size         int64 // bytes of its unpacked layers
	Architecture string
	Os           string
	Config       ImageConfig
	RootFS       RootFS
}

// ImageConfig is the part of an image's configuration a container is
// started from.
type ImageConfig struct {
	Env        []string
	Cmd        []string
	Entrypoint []string
	WorkingDir string
	User       string
}

// RootFS lists an image's layers, bottom to top, by uncompressed digest.
type RootFS struct {
	Type   string // "layers"; "directory" for the demo image
	Layers []string
}

func imageInfo(img *image.Image) *ImageInfo {
	ii := &ImageInfo{Id: img.ID, RepoTags: img.Tags, Created: img.Created, Size: img.Size,
		Architecture: img.Architecture, Os: img.OS,
		Config: ImageConfig{Env: img.Config.Env, Cmd: img.Config.Cmd, Entrypoint: img.Config.Entrypoint,
			WorkingDir: img.Config.WorkingDir, User: img.Config.User},
		RootFS: RootFS{Type: "layers", Layers: img.DiffIDs}}
	if img.Digest != "" {
		for _, t := range img.Tags {
			repo := t[:strings.LastIndexByte(t, ':')]
			ii.RepoDigests = append(ii.RepoDigests, repo+"@"+img.Digest)
		}
	}
	return ii
}

// demoInfo describes the built-in demo image, making it first if it was
// never used (as a run would). It fails when the host has no static
// busybox to make it from.
func (e *Engine) demoInfo() (*ImageInfo, error) {
	r, err := e.ResolveImage(DemoImage)
	if err != nil {
		return nil, err
	}
	dir := r.Layers[0]
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("demo image: %w", err)
	}
	size, err := diskUsage(dir)
	if err != nil {
		return nil, fmt.Errorf("demo image: %w", err)
	}
	return &ImageInfo{RepoTags: []string{DemoImage}, Created: fi.ModTime().UTC(), Size: size,
		Architecture: runtime.GOARCH, Os: "linux", Config: ImageConfig{Cmd: defaultCommand},
		RootFS: RootFS{Type: "directory", Layers: []string{dir}}}, nil
}

// ListImages describes every stored image, newest first, and the demo
// image after them (when the host can make it).
func (e *Engine) ListImages() ([]*ImageInfo, error) {
	store, err := e.Images()
	if err != nil {
		return nil, err
	}
	imgs, err := store.List()
	if err != nil {
		return nil, err
	}
	var out []*ImageInfo
	for _, img := range imgs {
		out = append(out, imageInfo(img))
	}
	if demo, err := e.demoInfo(); err == nil {
		out = append(out, demo)
	}
	return out, nil
}

// InspectImage describes the image ref names: "demo", a tag, an id or an
// unambiguous id prefix.
func (e *Engine) InspectImage(ref string) (*ImageInfo, error) {
	if ref == DemoImage {
		return e.demoInfo()
	}
	store, err := e.Images()
	if err != nil {
		return nil, err
	}
	img, err := store.Get(ref)
	if err != nil {
		return nil, err
	}
	return imageInfo(img), nil
}

// TagImage gives the image ref names another name, taking it from any
// image that had it.
func (e *Engine) TagImage(ref, tag string) error {
	store, err := e.Images()
	if err != nil {
		return err
	}
	return store.Tag(ref, tag)
}

// ErrNoSuchObject is the cause of Inspect's error when a reference names
// no container, image or volume.
var ErrNoSuchObject = errors.New("no such object")

// Object kinds Inspect takes.
const (
	KindContainer = "container"
	KindImage     = "image"
	KindVolume    = "volume"
)

// Inspect describes what ref names: with kind "", the container, else the
// image, else the volume of that name, in docker's order; with a kind,
// only that kind. The result is a *ContainerInfo, *ImageInfo or
// *VolumeInfo. An error other than "not found" (a broken image, an
// ambiguous prefix) is returned as it is, not passed over.
func (e *Engine) Inspect(ref, kind string) (any, error) {
	var tries []string
	switch kind {
	case "":
		tries = []string{KindContainer, KindImage, KindVolume}
	case KindContainer, KindImage, KindVolume:
		tries = []string{kind}
	default:
		return nil, fmt.Errorf("invalid --type %q: want container, image or volume", kind)
	}
	for _, k := range tries {
		var v any
		var err error
		switch k {
		case KindContainer:
			v, err = e.InspectContainer(ref)
			if errors.Is(err, ErrNoSuchContainer) && len(tries) > 1 {
				continue
			}
		case KindImage:
			v, err = e.InspectImage(ref)
			if errors.Is(err, image.ErrNotFound) && len(tries) > 1 {
				continue
			}
			if err != nil && ref == DemoImage && len(tries) > 1 {
				continue // no demo image on this host
			}
		case KindVolume:
			if !volume.ValidName(ref) && len(tries) > 1 {
				continue
			}
			v, err = e.InspectVolume(ref)
			if errors.Is(err, volume.ErrNotFound) && len(tries) > 1 {
				continue
			}
		}
		return v, err
	}
	return nil, fmt.Errorf("%w: %s", ErrNoSuchObject, ref)
}

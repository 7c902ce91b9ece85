package api

import (
	"fmt"
	"strings"

	"github.com/oak-engine/oak/engine"
	"github.com/oak-engine/oak/sandbox"
)

// RunRequest is the body of POST /v1/containers: a container to create and
// start detached. Its keys are capitalised Go field names, as every JSON
// Oak prints (docker's where docker has the same thing). A size or count
// left out (null) takes Oak's default; 0 means no limit where the engine
// allows none. Paths (Image as a directory, host directories in Volumes)
// must be absolute: the daemon has no working directory of the caller's.
type RunRequest struct {
	Image string
	// Cmd is the command and its arguments; empty: the image's.
	Cmd []string
	// Entrypoint, when present (even empty), replaces the image's
	// entrypoint, and the image's Cmd is not used.
	Entrypoint *[]string         `json:",omitempty"`
	Name       string            `json:",omitempty"`
	Env        []string          `json:",omitempty"` // KEY=VALUE; the caller resolves bare KEYs
	WorkingDir string            `json:",omitempty"`
	User       string            `json:",omitempty"` // NAME|UID[:GROUP|GID]
	Labels     map[string]string `json:",omitempty"`
	// Factory names the factory (oak factory create) the container is made
	// from; a null Memory or PidsLimit is then the factory's.
	Factory string `json:",omitempty"`

	Memory      *int64 `json:",omitempty"` // bytes, /tmp included; null: the default (1 GiB); 0: none
	PidsLimit   *int64 `json:",omitempty"` // null: the default (1024); 0 or -1: none
	NanoCpus    int64  `json:",omitempty"` // CPU in billionths of a core, a whole number of thousandths; 0: none
	TmpfsSize   *int64 `json:",omitempty"` // bytes of /tmp; null: the default (64 MiB)
	StorageSize int64  `json:",omitempty"` // bytes of the private writable layer; 0: the default
	// LogMaxSize and LogMaxFile bound the log; null: the defaults (10 MiB, 3).
	LogMaxSize *int64 `json:",omitempty"`
	LogMaxFile *int   `json:",omitempty"`

	ReadonlyRootfs bool     `json:",omitempty"`
	AutoRemove     bool     `json:",omitempty"`
	Volumes        []string `json:",omitempty"` // NAME:/PATH[:ro] or /HOST/DIR:/PATH[:ro]
	Tmpfs          []string `json:",omitempty"` // paths of private tmpfs mounts
	Publish        []string `json:",omitempty"` // [[HOSTIP:][HOSTPORT]:]PORT[/PROTO]
	PublishAll     bool     `json:",omitempty"`
	Egress         []string `json:",omitempty"` // PREFIX[:PORT][/PROTO] | any
	// Tty gives the command a terminal held by its supervisor, for attach.
	Tty bool `json:",omitempty"`

	Hostname   string   `json:",omitempty"`
	Dns        []string `json:",omitempty"`
	DnsSearch  []string `json:",omitempty"`
	DnsOptions []string `json:",omitempty"`
	ExtraHosts []string `json:",omitempty"` // NAME:IP

	// RestartPolicy is as --restart takes it: no, on-failure[:N], always,
	// unless-stopped; empty is no.
	RestartPolicy string   `json:",omitempty"`
	Ulimits       []Ulimit `json:",omitempty"`
	// Spawn gives the container the capability to make sub-containers
	// from its own quota (docs/spawn.md); it needs Memory and PidsLimit.
	Spawn bool `json:",omitempty"`
	// SpawnDisk, with Spawn, is the disk quota of its factory, which its
	// own and its sub-containers' writable layers share; 0: none of its
	// own, or under a factory that limits disk, its StorageSize.
	SpawnDisk int64 `json:",omitempty"`
}

// Ulimit is one resource limit set on the container's init; -1 is none.
type Ulimit struct {
	Name string
	Soft int64
	Hard int64
}

// FieldError is a request the daemon refuses for one field's value; the
// field is named as the JSON key.
type FieldError struct {
	Field string
	Err   string
}

func (e *FieldError) Error() string { return "invalid " + e.Field + ": " + e.Err }

// RunOptions maps r onto the engine's request, applying Oak's defaults to
// what r leaves out. It refuses values no front end could ask for (a
// negative size, a fraction of a thousandth of a CPU); everything else is
// the engine's to check, as for the CLI.
func (r *RunRequest) RunOptions() (engine.RunOptions, error) {
	o := engine.RunOptions{Image: r.Image, Args: r.Cmd, Name: r.Name, Env: r.Env, Workdir: r.WorkingDir,
		User: r.User, Labels: r.Labels, Factory: r.Factory, AutoRemove: r.AutoRemove, Volumes: r.Volumes, Tmpfs: r.Tmpfs,
		Publish: r.Publish, PublishAll: r.PublishAll, Egress: r.Egress, TTY: r.Tty, ReadOnly: r.ReadonlyRootfs, Spawn: r.Spawn, SpawnDisk: r.SpawnDisk,
		Names: engine.NameOptions{Hostname: r.Hostname, DNS: r.Dns, DNSSearch: r.DnsSearch,
			DNSOptions: r.DnsOptions, AddHosts: r.ExtraHosts}}
	if r.Image == "" {
		return o, &FieldError{"Image", "required"}
	}
	if strings.HasPrefix(r.Image, ".") {
		return o, &FieldError{"Image", fmt.Sprintf("%q: a directory must be given as an absolute path", r.Image)}
	}
	if r.Entrypoint != nil {
		o.Entrypoint = append([]string{}, (*r.Entrypoint)...)
	}
	o.Limits = sandbox.Limits{MemoryBytes: engine.DefaultMemoryBytes, Pids: engine.DefaultPids,
		TmpfsBytes: sandbox.DefaultTmpfsBytes, WritableBytes: r.StorageSize}
	if r.Factory != "" {
		o.Limits.MemoryBytes, o.Limits.Pids = 0, 0 // the factory's
	}
	if r.Memory != nil {
		if *r.Memory < -1 {
			return o, &FieldError{"Memory", "want bytes, 0 or -1 for no limit"}
		}
		o.Limits.MemoryBytes = max(*r.Memory, 0)
	}
	if r.PidsLimit != nil {
		p, err := engine.ParsePids(*r.PidsLimit)
		if err != nil {
			return o, &FieldError{"PidsLimit", err.Error()}
		}
		o.Limits.Pids = p
	}
	if r.NanoCpus < 0 || r.NanoCpus%1_000_000 != 0 {
		return o, &FieldError{"NanoCpus", "want a whole number of thousandths of a core (multiples of 1000000), 0 for none"}
	}
	o.Limits.CPUMilli = r.NanoCpus / 1_000_000
	if r.TmpfsSize != nil {
		o.Limits.TmpfsBytes = *r.TmpfsSize
	}
	if r.StorageSize < 0 {
		return o, &FieldError{"StorageSize", "want bytes, 0 for the default"}
	}
	if r.SpawnDisk < 0 {
		return o, &FieldError{"SpawnDisk", "want bytes, 0 for the default"}
	}
	o.Log = engine.DefaultLogOptions()
	if r.LogMaxSize != nil {
		o.Log.MaxSize = max(*r.LogMaxSize, 0)
	}
	if r.LogMaxFile != nil {
		o.Log.MaxFile = *r.LogMaxFile
	}
	if r.RestartPolicy != "" {
		p, err := engine.ParseRestartPolicy(r.RestartPolicy)
		if err != nil {
			return o, &FieldError{"RestartPolicy", err.Error()}
		}
		o.Restart = p
	}
	for _, u := range r.Ulimits {
		o.Ulimits = append(o.Ulimits, engine.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
	for _, v := range r.Volumes {
		if strings.HasPrefix(v, ".") || strings.HasPrefix(v, "~") {
			return o, &FieldError{"Volumes", fmt.Sprintf("%q: a host directory must be given as an absolute path", v)}
		}
	}
	return o, nil
}

// NewRunRequest is the request for o, every default made explicit, as the
// CLI sends what its flags resolved to.
func NewRunRequest(o engine.RunOptions) *RunRequest {
	mem, pids, tmpfs, logSize, logFile := o.Limits.MemoryBytes, o.Limits.Pids, o.Limits.TmpfsBytes, o.Log.MaxSize, o.Log.MaxFile
	r := &RunRequest{Image: o.Image, Cmd: o.Args, Name: o.Name, Env: o.Env, WorkingDir: o.Workdir, User: o.User,
		Labels: o.Labels, Factory: o.Factory, Memory: &mem, PidsLimit: &pids, NanoCpus: o.Limits.CPUMilli * 1_000_000, TmpfsSize: &tmpfs,
		StorageSize: o.Limits.WritableBytes, LogMaxSize: &logSize, LogMaxFile: &logFile,
		ReadonlyRootfs: o.ReadOnly, AutoRemove: o.AutoRemove, Volumes: o.Volumes, Tmpfs: o.Tmpfs,
		Publish: o.Publish, PublishAll: o.PublishAll, Egress: o.Egress, Tty: o.TTY, Spawn: o.Spawn, SpawnDisk: o.SpawnDisk,
		Hostname: o.Names.Hostname, Dns: o.Names.DNS, DnsSearch: o.Names.DNSSearch, DnsOptions: o.Names.DNSOptions,
		ExtraHosts: o.Names.AddHosts}
	if o.Entrypoint != nil {
		ep := append([]string{}, o.Entrypoint...)
		r.Entrypoint = &ep
	}
	if o.Restart.Name != "" {
		r.RestartPolicy = o.Restart.String()
	}
	for _, u := range o.Ulimits {
		r.Ulimits = append(r.Ulimits, Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
	return r
}

// Created is the answer to POST /v1/containers.
type Created struct {
	Id string
}

// ExitStatus is the answer to stop and wait.
type ExitStatus struct {
	StatusCode int
}

// ErrorBody is every error answer: the message as the engine words it and
// a code that tells programs what kind of error it is.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// VolumeCreate is the body of POST /v1/volumes.
type VolumeCreate struct {
	Name   string
	Size   int64 // bytes
	Sparse bool  `json:",omitempty"`
	// Owner, if set, owns its root directory instead of 0:0.
	Owner *VolumeOwner `json:",omitempty"`
}

// VolumeOwner is a volume's root directory's owner, ids as the container
// sees them.
type VolumeOwner struct {
	UID uint32
	GID uint32
}

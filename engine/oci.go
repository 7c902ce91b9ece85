package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/oak-engine/oak/sandbox"
)

// This file maps an OCI bundle's config.json onto Oak's model of a
// container, for the runc-compatible front end (oak-runtime). The mapping
// never widens what a container gets: a request Oak cannot honour without
// giving more than its model allows is refused with an error naming the
// config.json field; a request for something Oak's container already has
// less of (a host network namespace, capabilities beyond Oak's eight in the
// default mode, a seccomp profile over Oak's own filter) is narrowed to
// Oak's container and a warning says so. OCIOptions.Strict turns those
// narrowings into refusals.

// OCIOptions says how a bundle is mapped.
type OCIOptions struct {
	// Strict refuses what the default mode narrows with a warning:
	// capabilities outside Oak's eight, a seccomp profile, sysctls.
	Strict bool
	// HostHardLimit returns the host's hard limit of rlimit resource res
	// (RLIMIT_*); a bundle's rlimit above it is refused. Nil refuses every
	// rlimit.
	HostHardLimit func(res int) uint64
}

// OCIContainer is a bundle resolved onto Oak's container: everything the
// runtime's supervisor needs to start it.
type OCIContainer struct {
	Bundle string `json:"bundle"`
	RootFS string `json:"rootfs"` // absolute host path
	// Layers, when the root is an overlay mount (podman's and containerd's
	// image roots are), are its directories, top first: the container's
	// root is built from them, since an overlay mount cannot be id-mapped.
	Layers   []string `json:"layers,omitempty"`
	ReadOnly bool     `json:"read_only,omitempty"`
	Args     []string `json:"args"`
	Env      []string `json:"env"`
	Cwd      string   `json:"cwd"`
	UID      uint32   `json:"uid"`
	GID      uint32   `json:"gid"`
	Hostname string   `json:"hostname,omitempty"`
	Terminal bool     `json:"terminal,omitempty"`
	// DropCaps are the capabilities (bit N: number N) of Oak's eight the
	// bundle does not give root (sandbox.Task.DropCaps).
	DropCaps uint64 `json:"drop_caps,omitempty"`
	// NarrowedCaps are the capabilities outside Oak's eight the bundle's
	// process asked for, narrowed with a warning at create.
	NarrowedCaps []string `json:"narrowed_caps,omitempty"`
	// ConsoleRows and ConsoleCols are the terminal's first size (0: the kernel's).
	ConsoleRows uint16         `json:"console_rows,omitempty"`
	ConsoleCols uint16         `json:"console_cols,omitempty"`
	Limits      sandbox.Limits `json:"limits"`
	// CopyFiles are bind mounts of small host files onto paths Oak fills
	// itself (/etc/hosts, …): the file's content is copied into the
	// container's root at create time; nothing of the host is mounted.
	CopyFiles   []OCICopyFile     `json:"copy_files,omitempty"`
	Tmpfs       []string          `json:"tmpfs,omitempty"` // private tmpfs mounts besides /tmp
	Rlimits     []OCIRlimit       `json:"rlimits,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// Join are the namespaces the bundle names by path, which the
	// container enters instead of new ones: a network namespace its caller
	// made (CNI's, for a pod), and the ipc and uts namespaces of another
	// Oak container of the same runtime root (a pod's sandbox), whose id
	// block it then shares. The runtime checks them on the host.
	Join []OCIJoin `json:"join,omitempty"`
	// Warnings say what was narrowed to Oak's container.
	Warnings []string `json:"warnings,omitempty"`
	// PreserveFDs is create's --preserve-fds: the supervisor has that
	// many of its caller's descriptors at 4.. for the command's 3.. .
	PreserveFDs int `json:"preserve_fds,omitempty"`
	// OOMScoreAdj, when set, is written for the container's init before
	// anything of the image runs (and so inherited by its command).
	OOMScoreAdj *int `json:"oom_score_adj,omitempty"`
	// MaskedPaths are linux.maskedPaths in the image (Oak's own /proc,
	// /sys, /dev and /tmp hide the host's already). At create, a directory
	// among them gets an empty private tmpfs (Tmpfs) and any other file
	// becomes an empty file in Oak's top layer (MaskFiles): the image's
	// content there is not seen.
	MaskedPaths []string `json:"masked_paths,omitempty"`
	MaskFiles   []string `json:"mask_files,omitempty"`
	// ReadOnlyPaths are linux.readonlyPaths in the image, made read-only
	// in the container (sandbox.Task.ReadOnlyPaths); resolved in the
	// root at create.
	ReadOnlyPaths []string `json:"read_only_paths,omitempty"`
	// Groups are the command's supplementary groups (process.user.additionalGids).
	Groups []uint32 `json:"groups,omitempty"`
}

// OCICopyFile is a host file whose content is placed at Target.
type OCICopyFile struct {
	Source string `json:"source"`
	Target string `json:"target"`
}

// OCIRlimit is one resource limit for the container's processes.
type OCIRlimit struct {
	Resource int    `json:"resource"` // RLIMIT_*
	Soft     uint64 `json:"soft"`
	Hard     uint64 `json:"hard"`
}

// OCIJoin is one namespace a bundle names by path.
type OCIJoin struct {
	Type  specs.LinuxNamespaceType `json:"type"` // network, ipc or uts
	Path  string                   `json:"path"`
	Field string                   `json:"field"` // linux.namespaces[i].path, for errors
}

// FieldError is a refusal of one config.json field.
type FieldError struct {
	Field string // e.g. "process.capabilities.bounding[3]"
	Err   string
	// Input names what held the field when it is not the bundle's
	// config.json (exec's "--process FILE", its flags).
	Input string
}

func (e *FieldError) Error() string {
	in := e.Input
	if in == "" {
		in = "config.json"
	}
	return in + ": " + e.Field + ": " + e.Err
}

func refuse(field, format string, a ...any) error {
	return &FieldError{Field: field, Err: fmt.Sprintf(format, a...)}
}

// OakCapabilities are the capabilities container root holds in its own
// user namespace (see docs/design.md, "What container root may do").
var OakCapabilities = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP"}

// oakCapNumbers are OakCapabilities' numbers, in the same order.
var oakCapNumbers = []uint{0, 1, 3, 4, 5, 6, 7, 8}

// linuxCapabilities are the capabilities' names, by number (0..40): a
// bundle naming another is refused, as no kernel interface maps it.
var linuxCapabilities = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
	"CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
	"CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
	"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE"}

// rlimitTypes are the RLIMIT_* resources a bundle may name, by number.
var rlimitTypes = map[string]int{
	"RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
	"RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
	"RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
	"RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}

// ownMounts are the file systems every Oak container has of its own (or
// has less of: no devpts, no mqueue, only /sys/fs/cgroup of /sys). A
// bundle's mount of one of these types at its destination is Oak's own.
var ownMounts = map[string][]string{
	"/proc":          {"proc"},
	"/dev":           {"tmpfs"},
	"/dev/pts":       {"devpts"},
	"/dev/shm":       {"tmpfs", "bind"}, // podman binds a directory of its own here
	"/dev/mqueue":    {"mqueue"},
	"/sys":           {"sysfs"},
	"/sys/fs/cgroup": {"cgroup", "cgroup2"},
	"/tmp":           {"tmpfs"},
}

// copiedFiles are the destinations where a bind mount of a small host
// file is honoured by copying it: files Oak writes itself or that name
// the container manager (podman's /run/.containerenv).
var copiedFiles = []string{"/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/run/.containerenv"}

// terminationLog is where the kubelet binds a host file of its own for the
// container's termination message (a pod's terminationMessagePath).
const terminationLog = "/dev/termination-log"

// ownDevices are the device nodes an Oak container has.
var ownDevices = []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"}

// mapNamespacePath takes namespace ns, named by path in field, into c.Join,
// or refuses it. Only namespaces that leave the container its own root,
// ids and groups may be joined: a network namespace (a pod's, made by its
// CNI plugin: the caller decides what it reaches), and ipc and uts
// namespaces, which LoadBundle's caller accepts only from another Oak
// container of its root. A pid namespace path is refused too: a member of
// a pod that shares one process namespace would see and signal the
// others' processes, and Oak's init is the pid 1 of its own.
func mapNamespacePath(c *OCIContainer, field string, ns specs.LinuxNamespace) error {
	switch ns.Type {
	case specs.MountNamespace:
		return refuse(field, "joining the mount namespace at %q is not supported: an Oak container's root and mounts are its own", ns.Path)
	case specs.UserNamespace:
		return refuse(field, "joining the user namespace at %q is not supported: Oak maps every container onto an id block itself (a pod's containers share one by joining the sandbox's ipc and uts namespaces)", ns.Path)
	case specs.CgroupNamespace:
		return refuse(field, "joining the cgroup namespace at %q is not supported: an Oak container's groups are its own", ns.Path)
	case specs.PIDNamespace:
		return refuse(field, "joining the pid namespace at %q is not supported: an Oak container's processes are its own (a pod sharing one process namespace)", ns.Path)
	}
	if !filepath.IsAbs(ns.Path) || strings.ContainsRune(ns.Path, 0) {
		return refuse(field, "%q is not an absolute path", ns.Path)
	}
	if slices.ContainsFunc(c.Join, func(j OCIJoin) bool { return j.Type == ns.Type }) {
		return refuse(field, "a second path for the %s namespace", ns.Type)
	}
	c.Join = append(c.Join, OCIJoin{Type: ns.Type, Path: filepath.Clean(ns.Path), Field: field})
	return nil
}

// ownFS tells whether p lies in a file system Oak gives every container
// of its own (/proc, /sys, /dev, /tmp), where no image content shows.
func ownFS(p string) bool {
	for _, m := range []string{"/proc", "/sys", "/dev", "/tmp"} {
		if p == m || strings.HasPrefix(p, m+"/") {
			return true
		}
	}
	return false
}

// ParseOCIConfig decodes config.json and checks its version: a major
// version other than 1 is refused.
func ParseOCIConfig(b []byte) (*specs.Spec, error) {
	var s specs.Spec
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("config.json: %w", err)
	}
	major, _, _ := strings.Cut(s.Version, ".")
	if major != strconv.Itoa(specs.VersionMajor) {
		return nil, refuse("ociVersion", "%q: Oak reads version %d.x configurations", s.Version, specs.VersionMajor)
	}
	return &s, nil
}

var ociIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+-]*$`)

// CheckOCIID refuses a container id that could not name a state directory.
func CheckOCIID(id string) error {
	if len(id) > 255 || !ociIDPattern.MatchString(id) {
		return fmt.Errorf("invalid container id %q: want [A-Za-z0-9][A-Za-z0-9_.+-]*", id)
	}
	return nil
}

// MapOCISpec resolves s, the config of the bundle in directory bundle (an
// absolute path), onto Oak's container, or refuses it naming the field.
// It touches no file: paths are checked lexically here and on the host by
// LoadBundle.
func MapOCISpec(bundle string, s *specs.Spec, opts OCIOptions) (*OCIContainer, error) {
	if !filepath.IsAbs(bundle) {
		return nil, fmt.Errorf("bundle %q: not an absolute path", bundle)
	}
	c := &OCIContainer{Bundle: filepath.Clean(bundle), Annotations: s.Annotations, Hostname: s.Hostname}
	var err error
	warn := func(format string, a ...any) { c.Warnings = append(c.Warnings, fmt.Sprintf(format, a...)) }
	narrow := func(field, format string, a ...any) error {
		if opts.Strict {
			return refuse(field, format+" (refused in strict mode)", a...)
		}
		warn("config.json: "+field+": "+format, a...)
		return nil
	}

	// root
	if s.Root == nil || s.Root.Path == "" {
		return nil, refuse("root.path", "missing")
	}
	if filepath.IsAbs(s.Root.Path) {
		// An absolute root is the caller's choice (podman's --rootfs and
		// its image mounts are outside the bundle); it becomes a read-only
		// lower layer and grants nothing more.
		c.RootFS = filepath.Clean(s.Root.Path)
	} else {
		p := filepath.Clean(s.Root.Path)
		if p == ".." || strings.HasPrefix(p, "../") {
			return nil, refuse("root.path", "%q lies outside the bundle", s.Root.Path)
		}
		c.RootFS = filepath.Join(c.Bundle, p)
	}
	c.ReadOnly = s.Root.Readonly
	if len(c.Hostname) > 64 || strings.ContainsRune(c.Hostname, 0) {
		return nil, refuse("hostname", "%q is not a host name", c.Hostname)
	}
	if s.Domainname != "" {
		if err := narrow("domainname", "not set; Oak's container keeps the empty domain name"); err != nil {
			return nil, err
		}
	}

	// process
	p := s.Process
	if p == nil {
		return nil, refuse("process", "missing")
	}
	if len(p.Args) == 0 || p.Args[0] == "" {
		return nil, refuse("process.args", "no command")
	}
	if p.CommandLine != "" {
		return nil, refuse("process.commandLine", "is for Windows")
	}
	for i, a := range p.Args {
		if strings.ContainsRune(a, 0) {
			return nil, refuse(fmt.Sprintf("process.args[%d]", i), "contains a NUL byte")
		}
	}
	c.Args = p.Args
	for i, kv := range p.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" || strings.ContainsRune(kv, 0) {
			return nil, refuse(fmt.Sprintf("process.env[%d]", i), "%q: want KEY=VALUE", kv)
		}
	}
	c.Env = p.Env
	if p.Cwd == "" || !path.IsAbs(p.Cwd) || strings.ContainsRune(p.Cwd, 0) {
		return nil, refuse("process.cwd", "%q is not an absolute path", p.Cwd)
	}
	c.Cwd = path.Clean(p.Cwd)
	if p.User.UID >= idSize || p.User.GID >= idSize {
		return nil, refuse("process.user", "uid %d gid %d: a container's ids are 0..%d", p.User.UID, p.User.GID, idSize-1)
	}
	c.UID, c.GID = p.User.UID, p.User.GID
	if p.User.Username != "" {
		return nil, refuse("process.user.username", "is for Windows")
	}
	for i, g := range p.User.AdditionalGids {
		// Groups of the container's own id block: no authority outside it.
		if g >= idSize {
			return nil, refuse(fmt.Sprintf("process.user.additionalGids[%d]", i), "gid %d: a container's ids are 0..%d", g, idSize-1)
		}
		if !slices.Contains(c.Groups, g) {
			c.Groups = append(c.Groups, g)
		}
	}
	c.Terminal = p.Terminal
	if p.ConsoleSize != nil {
		if p.ConsoleSize.Height > 0xffff || p.ConsoleSize.Width > 0xffff {
			return nil, refuse("process.consoleSize", "%dx%d is not a terminal size", p.ConsoleSize.Width, p.ConsoleSize.Height)
		}
		c.ConsoleRows, c.ConsoleCols = uint16(p.ConsoleSize.Height), uint16(p.ConsoleSize.Width)
	}
	inConfig := func(format string, a ...any) { warn("config.json: "+format, a...) }
	if c.DropCaps, c.NarrowedCaps, err = mapCapabilities(p.Capabilities, 0, opts.Strict); err != nil {
		return nil, err
	}
	if len(c.NarrowedCaps) > 0 {
		inConfig("%s", narrowedCaps(c.NarrowedCaps))
	}
	for i, rl := range p.Rlimits {
		field := fmt.Sprintf("process.rlimits[%d]", i)
		res, ok := rlimitTypes[rl.Type]
		if !ok {
			return nil, refuse(field, "unknown type %q", rl.Type)
		}
		if rl.Soft > rl.Hard {
			return nil, refuse(field, "%s soft limit %d is above its hard limit %d", rl.Type, rl.Soft, rl.Hard)
		}
		if opts.HostHardLimit == nil {
			return nil, refuse(field, "%s: the host's limit is unknown", rl.Type)
		}
		if h := opts.HostHardLimit(res); rl.Hard > h {
			return nil, refuse(field, "%s hard limit %d is above this host's hard limit %d, which no process here may raise", rl.Type, rl.Hard, h)
		}
		c.Rlimits = append(c.Rlimits, OCIRlimit{Resource: res, Soft: rl.Soft, Hard: rl.Hard})
	}
	if p.OOMScoreAdj != nil {
		// Raising it only makes the container the OOM killer's choice
		// sooner; lowering it below the runtime's own value needs
		// CAP_SYS_RESOURCE, which the kernel refuses at create.
		if v := *p.OOMScoreAdj; v < -1000 || v > 1000 {
			return nil, refuse("process.oomScoreAdj", "%d is outside -1000..1000", v)
		}
		v := *p.OOMScoreAdj
		c.OOMScoreAdj = &v
	}
	if p.ApparmorProfile != "" || p.SelinuxLabel != "" {
		warn("config.json: process.apparmorProfile/selinuxLabel: not applied; Oak's confinement does not rely on an LSM")
	}
	if p.Scheduler != nil {
		return nil, refuse("process.scheduler", "not supported")
	}
	if p.IOPriority != nil {
		return nil, refuse("process.ioPriority", "not supported")
	}
	if p.ExecCPUAffinity != nil {
		return nil, refuse("process.execCPUAffinity", "not supported")
	}

	// mounts
	for i, m := range s.Mounts {
		field := fmt.Sprintf("mounts[%d]", i)
		dst := path.Clean(m.Destination)
		if !path.IsAbs(m.Destination) {
			return nil, refuse(field, "destination %q is not an absolute path", m.Destination)
		}
		bind := m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
		typ := m.Type
		if bind {
			typ = "bind"
		}
		if types, ok := ownMounts[dst]; ok && slices.Contains(types, typ) {
			continue // Oak's own
		}
		if bind && slices.Contains(copiedFiles, dst) {
			if m.Source == "" || !filepath.IsAbs(m.Source) {
				return nil, refuse(field, "bind mount on %s: source %q is not an absolute path", dst, m.Source)
			}
			c.CopyFiles = append(c.CopyFiles, OCICopyFile{Source: filepath.Clean(m.Source), Target: dst})
			continue
		}
		if bind && dst == terminationLog {
			if err := narrow(field, "%s not mounted: the kubelet's termination-message file is a host file, which Oak does not grant; the message stays in the container (terminationMessagePolicy FallbackToLogsOnError reports the log's tail instead)", dst); err != nil {
				return nil, err
			}
			continue
		}
		if bind {
			return nil, refuse(field, "bind mount of host path %q on %s: Oak grants no host directories (use an Oak volume)", m.Source, dst)
		}
		if m.Type == "tmpfs" && !strings.HasPrefix(dst+"/", "/proc/") && !strings.HasPrefix(dst+"/", "/dev/") &&
			!strings.HasPrefix(dst+"/", "/sys/") && dst != "/" && !strings.HasPrefix(dst, "/tmp/") {
			// A tmpfs is memory of the container's own, charged to its
			// limit: no authority over anything outside it.
			if !slices.Contains(c.Tmpfs, dst) {
				c.Tmpfs = append(c.Tmpfs, dst)
			}
			continue
		}
		return nil, refuse(field, "a %q mount on %s is not one Oak provides", m.Type, dst)
	}

	// hooks
	if h := s.Hooks; h != nil {
		if len(h.Prestart)+len(h.CreateRuntime)+len(h.CreateContainer)+len(h.StartContainer)+len(h.Poststart)+len(h.Poststop) > 0 {
			return nil, refuse("hooks", "Oak runs no host programs on a container's behalf")
		}
	}

	// linux
	c.Limits = sandbox.Limits{MemoryBytes: DefaultMemoryBytes, Pids: DefaultPids}
	l := s.Linux
	if l == nil {
		return nil, refuse("linux", "missing")
	}
	if len(l.UIDMappings) > 0 || len(l.GIDMappings) > 0 {
		return nil, refuse("linux.uidMappings", "Oak maps every container onto an id block of its own; the root file system's owners 0..65535 appear as themselves")
	}
	seen := map[specs.LinuxNamespaceType]bool{}
	for i, ns := range l.Namespaces {
		field := fmt.Sprintf("linux.namespaces[%d]", i)
		switch ns.Type {
		case specs.PIDNamespace, specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace,
			specs.MountNamespace, specs.UserNamespace, specs.CgroupNamespace:
		default:
			return nil, refuse(field, "namespace type %q is not supported", ns.Type)
		}
		if ns.Path != "" {
			if err := mapNamespacePath(c, field+".path", ns); err != nil {
				return nil, err
			}
		}
		seen[ns.Type] = true
	}
	var shared []string
	for _, t := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.NetworkNamespace, specs.IPCNamespace,
		specs.UTSNamespace, specs.MountNamespace} {
		if !seen[t] {
			shared = append(shared, string(t))
		}
	}
	if len(shared) > 0 {
		warn("config.json: linux.namespaces: %s not listed (the host's would be shared); the container gets new ones", strings.Join(shared, ", "))
	}
	if c.Hostname != "" && slices.ContainsFunc(c.Join, func(j OCIJoin) bool { return j.Type == specs.UTSNamespace }) {
		warn("config.json: hostname: %q not set; the joined uts namespace keeps its own", c.Hostname)
		c.Hostname = ""
	}
	if r := l.Resources; r != nil {
		if r.Memory != nil && r.Memory.Limit != nil {
			switch v := *r.Memory.Limit; {
			case v < 0:
				c.Limits.MemoryBytes = 0
			case v > 0:
				c.Limits.MemoryBytes = v
			}
		}
		if r.Pids != nil {
			switch v := r.Pids.Limit; {
			case v < 0:
				c.Limits.Pids = 0
			case v > 0:
				c.Limits.Pids = v
			}
		}
		if r.CPU != nil && r.CPU.Quota != nil && *r.CPU.Quota > 0 {
			period := uint64(100000)
			if r.CPU.Period != nil && *r.CPU.Period > 0 {
				period = *r.CPU.Period
			}
			q := uint64(*r.CPU.Quota)
			if q > 1<<40 || period > 1<<40 {
				return nil, refuse("linux.resources.cpu", "quota %d per period %d is out of range", q, period)
			}
			c.Limits.CPUMilli = max(int64(q*1000/period), 1)
		}
		// linux.resources.devices (the device cgroup) is left to
		// Oak: no rule can make a node the container does not have, and
		// it has only its five, on a nodev /dev.
		if err := c.Limits.Check(); err != nil {
			return nil, refuse("linux.resources", "%v", err)
		}
	}
	for i, d := range l.Devices {
		if !slices.Contains(ownDevices, path.Clean(d.Path)) {
			return nil, refuse(fmt.Sprintf("linux.devices[%d]", i), "%s: Oak's containers have only %s", d.Path, strings.Join(ownDevices, " "))
		}
	}
	if l.Seccomp != nil {
		if err := narrow("linux.seccomp", "not installed; Oak's own allowlist applies to every container (sandbox/policy)"); err != nil {
			return nil, err
		}
	}
	if len(l.Sysctl) > 0 {
		keys := make([]string, 0, len(l.Sysctl))
		for k := range l.Sysctl {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if err := narrow("linux.sysctl", "%s not set; the container's namespaces keep the kernel's defaults", strings.Join(keys, ", ")); err != nil {
			return nil, err
		}
	}
	if l.IntelRdt != nil {
		return nil, refuse("linux.intelRdt", "not supported")
	}
	if l.Personality != nil {
		return nil, refuse("linux.personality", "not supported")
	}
	if len(l.TimeOffsets) > 0 {
		return nil, refuse("linux.timeOffsets", "not supported")
	}
	if l.RootfsPropagation != "" && l.RootfsPropagation != "private" && l.RootfsPropagation != "rprivate" && l.RootfsPropagation != "slave" && l.RootfsPropagation != "rslave" {
		return nil, refuse("linux.rootfsPropagation", "%q: an Oak container's mounts are private", l.RootfsPropagation)
	}
	for i, m := range l.MaskedPaths {
		p := path.Clean(m)
		switch {
		case !path.IsAbs(m) || strings.ContainsRune(m, 0):
			return nil, refuse(fmt.Sprintf("linux.maskedPaths[%d]", i), "%q is not an absolute path", m)
		case p == "/":
			return nil, refuse(fmt.Sprintf("linux.maskedPaths[%d]", i), "masking the whole root leaves nothing to run")
		case ownFS(p):
			// Oak's /proc is read-only with kernel state masked, it has
			// no /sys but /sys/fs/cgroup, five devices and a fresh /tmp.
		case !slices.Contains(c.MaskedPaths, p):
			c.MaskedPaths = append(c.MaskedPaths, p)
		}
	}
	for i, m := range l.ReadonlyPaths {
		p := path.Clean(m)
		switch {
		case !path.IsAbs(m) || strings.ContainsRune(m, 0):
			return nil, refuse(fmt.Sprintf("linux.readonlyPaths[%d]", i), "%q is not an absolute path", m)
		case p == "/":
			c.ReadOnly = true
		case ownFS(p):
			// Oak's /proc and /sys are read-only; /dev and /tmp are its own.
		case !slices.Contains(c.ReadOnlyPaths, p):
			c.ReadOnlyPaths = append(c.ReadOnlyPaths, p)
		}
	}
	// linux.cgroupsPath: the container's groups are Oak's own.
	return c, nil
}

// mapCapabilities returns the capabilities of Oak's eight (bit N: number
// N) that caps does not give root: a capability counts only if every set
// that is listed (bounding, effective, permitted) holds it, since root's
// execve gets its bounding set. Capabilities outside Oak's eight are
// narrowed with a warning, or refused when strict; one of the eight in
// dropped (those the container's root was not given) is refused: an
// exec'd process may not have more than its container's root.
func mapCapabilities(caps *specs.LinuxCapabilities, dropped uint64, strict bool) (drop uint64, narrowed []string, err error) {
	if caps == nil {
		return 0, nil, nil
	}
	sets := []struct {
		name string
		caps []string
	}{{"bounding", caps.Bounding}, {"effective", caps.Effective}, {"permitted", caps.Permitted},
		{"inheritable", caps.Inheritable}, {"ambient", caps.Ambient}}
	var extra []string
	for _, set := range sets {
		for i, cp := range set.caps {
			field := fmt.Sprintf("process.capabilities.%s[%d]", set.name, i)
			if !slices.Contains(linuxCapabilities, cp) {
				return 0, nil, refuse(field, "%q is not a Linux capability", cp)
			}
			if j := slices.Index(OakCapabilities, cp); j >= 0 {
				if dropped&(1<<oakCapNumbers[j]) != 0 {
					return 0, nil, refuse(field, "%s was not given to the container's root", cp)
				}
				continue
			}
			if strict {
				return 0, nil, refuse(field, "%s is not one of Oak's capabilities (%s)", cp, strings.Join(OakCapabilities, ", "))
			}
			if !slices.Contains(extra, cp) {
				extra = append(extra, cp)
			}
		}
	}
	for i, name := range OakCapabilities {
		for _, set := range sets[:3] {
			if set.caps != nil && !slices.Contains(set.caps, name) {
				drop |= 1 << oakCapNumbers[i]
			}
		}
	}
	return drop, extra, nil
}

// narrowedCaps is the warning for capabilities outside Oak's eight that
// were asked for and not granted.
func narrowedCaps(extra []string) string {
	return fmt.Sprintf("process.capabilities: %s not granted; container root holds only %s, in its own user namespace",
		strings.Join(extra, ", "), strings.Join(OakCapabilities, ", "))
}

// OCIExec is a process to start in a running OCI container (oak-runtime
// exec), resolved onto Oak's container.
type OCIExec struct {
	Args     []string
	Env      []string
	Cwd      string
	UID, GID uint32
	Terminal bool
	// ConsoleRows and ConsoleCols are the terminal's first size (0: the kernel's).
	ConsoleRows, ConsoleCols uint16
	// DropCaps are the container's dropped capabilities and those p
	// gives up too (bit N: number N).
	DropCaps uint64
	Warnings []string
}

// ExecProcess is the process runc's exec runs without --process: the
// container's own (environment, working directory, user, capabilities)
// with args, as flags then change it.
func (c *OCIContainer) ExecProcess(args []string) *specs.Process {
	var held []string
	for i, name := range OakCapabilities {
		if c.DropCaps&(1<<oakCapNumbers[i]) == 0 {
			held = append(held, name)
		}
	}
	return &specs.Process{
		Args: args, Env: slices.Clone(c.Env), Cwd: c.Cwd, User: specs.User{UID: c.UID, GID: c.GID},
		Capabilities:    &specs.LinuxCapabilities{Bounding: held, Effective: slices.Clone(held), Permitted: slices.Clone(held)},
		NoNewPrivileges: true,
	}
}

// MapOCIExec resolves p, a runtime-spec process to start in container c
// (from exec's --process FILE or its flags; input names which, for
// errors), as MapOCISpec does the bundle's: it never gives the process
// more than the container's root holds. Capabilities outside Oak's eight,
// an LSM label and supplementary groups are narrowed with a warning
// (refused when strict); capabilities of the eight the container was not
// given, rlimits, and what MapOCISpec refuses, are refused naming the
// field. no_new_privs is always set in an Oak container.
func MapOCIExec(c *OCIContainer, p *specs.Process, input string, strict bool) (*OCIExec, error) {
	x := &OCIExec{}
	warn := func(format string, a ...any) { x.Warnings = append(x.Warnings, input+": "+fmt.Sprintf(format, a...)) }
	fail := func(err error) (*OCIExec, error) {
		if fe, ok := err.(*FieldError); ok {
			fe.Input = input
		}
		return nil, err
	}
	bad := func(field, format string, a ...any) (*OCIExec, error) {
		return fail(refuse(field, format, a...))
	}
	if p == nil {
		return bad("process", "missing")
	}
	if len(p.Args) == 0 || p.Args[0] == "" {
		return bad("process.args", "no command")
	}
	if p.CommandLine != "" {
		return bad("process.commandLine", "is for Windows")
	}
	for i, a := range p.Args {
		if strings.ContainsRune(a, 0) {
			return bad(fmt.Sprintf("process.args[%d]", i), "contains a NUL byte")
		}
	}
	for i, kv := range p.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" || strings.ContainsRune(kv, 0) {
			return bad(fmt.Sprintf("process.env[%d]", i), "%q: want KEY=VALUE", kv)
		}
	}
	if p.Cwd == "" || !path.IsAbs(p.Cwd) || strings.ContainsRune(p.Cwd, 0) {
		return bad("process.cwd", "%q is not an absolute path", p.Cwd)
	}
	if p.User.UID >= idSize || p.User.GID >= idSize {
		return bad("process.user", "uid %d gid %d: a container's ids are 0..%d", p.User.UID, p.User.GID, idSize-1)
	}
	if p.User.Username != "" {
		return bad("process.user.username", "is for Windows")
	}
	if len(p.User.AdditionalGids) > 0 {
		if strict {
			return bad("process.user.additionalGids", "not set; the process runs with no supplementary groups (refused in strict mode)")
		}
		warn("process.user.additionalGids: not set; the process runs with no supplementary groups")
	}
	if p.ConsoleSize != nil {
		if p.ConsoleSize.Height > 0xffff || p.ConsoleSize.Width > 0xffff {
			return bad("process.consoleSize", "%dx%d is not a terminal size", p.ConsoleSize.Width, p.ConsoleSize.Height)
		}
		x.ConsoleRows, x.ConsoleCols = uint16(p.ConsoleSize.Height), uint16(p.ConsoleSize.Width)
	}
	// What the bundle's process asked for beyond the eight was narrowed,
	// with a warning, when the container was made; an exec asking for the
	// same again (podman's does, every time) is told only of the others.
	drop, extra, err := mapCapabilities(p.Capabilities, c.DropCaps, strict)
	if err != nil {
		return fail(err)
	}
	if extra = slices.DeleteFunc(extra, func(cp string) bool { return slices.Contains(c.NarrowedCaps, cp) }); len(extra) > 0 {
		warn("%s", narrowedCaps(extra))
	}
	for i, rl := range p.Rlimits {
		// The process has the container's limits (its init's); a
		// request for those is no change.
		res, ok := rlimitTypes[rl.Type]
		if !ok || !slices.Contains(c.Rlimits, OCIRlimit{Resource: res, Soft: rl.Soft, Hard: rl.Hard}) {
			return bad(fmt.Sprintf("process.rlimits[%d]", i), "%s %d:%d: an exec'd process has the container's limits", rl.Type, rl.Soft, rl.Hard)
		}
	}
	if p.ApparmorProfile != "" || p.SelinuxLabel != "" {
		warn("process.apparmorProfile/selinuxLabel: not applied; Oak's confinement does not rely on an LSM")
	}
	switch {
	case p.Scheduler != nil:
		return bad("process.scheduler", "not supported")
	case p.IOPriority != nil:
		return bad("process.ioPriority", "not supported")
	case p.ExecCPUAffinity != nil:
		return bad("process.execCPUAffinity", "not supported")
	}
	x.Args, x.Env, x.Cwd = p.Args, p.Env, path.Clean(p.Cwd)
	x.UID, x.GID, x.Terminal = p.User.UID, p.User.GID, p.Terminal
	x.DropCaps = c.DropCaps | drop
	return x, nil
}

// ParseOCIProcess decodes a runtime-spec process, as exec's --process FILE
// holds it; MapOCIExec checks it.
func ParseOCIProcess(b []byte) (*specs.Process, error) {
	var p specs.Process
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("process: %w", err)
	}
	return &p, nil
}

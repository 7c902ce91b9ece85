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
	// Warnings say what was narrowed to Oak's container.
	Warnings []string `json:"warnings,omitempty"`
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

// FieldError is a refusal of one config.json field.
type FieldError struct {
	Field string // e.g. "process.capabilities.bounding[3]"
	Err   string
}

func (e *FieldError) Error() string { return "config.json: " + e.Field + ": " + e.Err }

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

// ownDevices are the device nodes an Oak container has.
var ownDevices = []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"}

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
	if p.Capabilities != nil {
		sets := []struct {
			name string
			caps []string
		}{{"bounding", p.Capabilities.Bounding}, {"effective", p.Capabilities.Effective},
			{"permitted", p.Capabilities.Permitted}, {"inheritable", p.Capabilities.Inheritable},
			{"ambient", p.Capabilities.Ambient}}
		var extra []string
		for _, set := range sets {
			for i, cp := range set.caps {
				if !slices.Contains(linuxCapabilities, cp) {
					return nil, refuse(fmt.Sprintf("process.capabilities.%s[%d]", set.name, i), "%q is not a Linux capability", cp)
				}
				if slices.Contains(OakCapabilities, cp) {
					continue
				}
				if opts.Strict {
					return nil, refuse(fmt.Sprintf("process.capabilities.%s[%d]", set.name, i),
						"%s is not one of Oak's capabilities (%s)", cp, strings.Join(OakCapabilities, ", "))
				}
				if !slices.Contains(extra, cp) {
					extra = append(extra, cp)
				}
			}
		}
		// What the bundle does not give root of Oak's eight, root does
		// not get: a capability counts only if every set that is listed
		// holds it (root's execve gets its bounding set).
		for i, name := range OakCapabilities {
			for _, set := range sets[:3] {
				if set.caps != nil && !slices.Contains(set.caps, name) {
					c.DropCaps |= 1 << oakCapNumbers[i]
				}
			}
		}
		if len(extra) > 0 {
			warn("config.json: process.capabilities: %s not granted; container root holds only %s, in its own user namespace",
				strings.Join(extra, ", "), strings.Join(OakCapabilities, ", "))
		}
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
			return nil, refuse(field+".path", "joining the %s namespace at %q is not supported: every Oak container gets new namespaces", ns.Type, ns.Path)
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

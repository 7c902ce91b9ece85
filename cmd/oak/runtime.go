package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/oak-engine/oak/engine"
)

// oak-runtime is Oak's OCI runtime: the runc command-line contract that
// podman (through conmon) and containerd's runc shim speak, as a second
// entry of the oak binary, reached through a link named oak-runtime (or as
// `oak runtime VERB`). It is a separate entry rather than more verbs of
// oak because oak's own kill, start and rm have docker's semantics and
// flags, which differ from runc's in argument order, defaults and exit
// statuses.
const runtimeName = "oak-runtime"

// defaultRuntimeRoot is where state lives without --root (runc's is /run/runc).
const defaultRuntimeRoot = "/run/oak-runtime"

// supervisorVerb is the hidden verb a container's supervisor runs.
const supervisorVerb = "_supervise"

// execProxyName is the command name of exec -d's proxy (execproxy.c), as
// ps shows it.
const execProxyName = "oak-runtime-exec-proxy"

// rtFlags is the set of flags a verb takes: name → takes a value. Short
// aliases map to their long name.
type rtFlags struct {
	value   map[string]bool
	aliases map[string]string
	multi   map[string]bool // may repeat; values joined with NUL
}

// parse splits args into flags and positional arguments; flags may come
// anywhere before "--", as -x, --x, --x=v or --x v.
func (f rtFlags) parse(args []string) (map[string]string, []string, error) {
	vals := map[string]string{}
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if long, ok := f.aliases[name]; ok {
			name = long
		}
		takes, ok := f.value[name]
		if !ok {
			return nil, nil, fmt.Errorf("flag provided but not defined: -%s", name)
		}
		switch {
		case takes && !hasVal:
			if i+1 >= len(args) {
				return nil, nil, fmt.Errorf("flag needs an argument: -%s", name)
			}
			i++
			val = args[i]
		case !takes && !hasVal:
			val = "true"
		case !takes:
			if _, err := strconv.ParseBool(val); err != nil {
				return nil, nil, fmt.Errorf("invalid boolean value %q for -%s", val, name)
			}
		}
		if old, ok := vals[name]; ok && f.multi[name] {
			val = old + "\x00" + val
		}
		vals[name] = val
	}
	return vals, pos, nil
}

func isTrue(vals map[string]string, name string) bool {
	b, _ := strconv.ParseBool(vals[name])
	return b
}

var globalFlags = rtFlags{
	value: map[string]bool{"root": true, "log": true, "log-format": true, "systemd-cgroup": false,
		"debug": false, "rootless": true, "criu": true, "strict": false, "help": false, "version": false},
	aliases: map[string]string{"h": "help", "v": "version"},
}

// createFlags are create's and run's: runc's, as conmon and the shim pass them.
var createFlags = map[string]bool{"bundle": true, "pid-file": true, "console-socket": true,
	"preserve-fds": true, "no-pivot": false, "no-new-keyring": false, "pidfd-socket": true}

// rtLogger writes the runtime's messages to --log (in --log-format, runc's
// "text" or "json" lines) or, without --log, to stderr. Errors go to
// stderr as well, where conmon reads them.
type rtLogger struct {
	w    io.Writer
	json bool
	file bool
}

func (l *rtLogger) log(level, msg string) {
	msg = oneLine(msg)
	now := time.Now().UTC().Format(time.RFC3339Nano)
	if l.json {
		b, _ := json.Marshal(map[string]string{"level": level, "msg": msg, "time": now})
		fmt.Fprintf(l.w, "%s\n", b)
	} else {
		fmt.Fprintf(l.w, "time=%q level=%s msg=%q\n", now, level, msg)
	}
	if level == "error" && l.file {
		fmt.Fprintf(os.Stderr, "%s: %s\n", runtimeName, msg)
	}
}

// runtimeMain runs one oak-runtime command line and returns the exit
// status: 0, 1 for any failure (as runc), or the container's status for run.
func runtimeMain(args []string) int {
	g, rest, err := globalFlags.parseUntilVerb(args)
	lg := &rtLogger{w: os.Stderr}
	if err == nil && g["log"] != "" {
		f, ferr := os.OpenFile(g["log"], os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_CLOEXEC, 0o644)
		if ferr != nil {
			err = fmt.Errorf("open log %s: %w", g["log"], ferr)
		} else {
			defer f.Close()
			lg.w, lg.file = f, true
		}
	}
	switch g["log-format"] {
	case "", "text":
	case "json":
		lg.json = true
	default:
		if err == nil {
			err = fmt.Errorf("unknown log-format %q", g["log-format"])
		}
	}
	if err != nil {
		lg.log("error", err.Error())
		return 1
	}
	if isTrue(g, "version") {
		fmt.Printf("%s version %s\nspec: %s\n", runtimeName, strings.TrimPrefix(strings.SplitN(versionText(), "\n", 2)[0], "oak version "), specs.Version)
		return 0
	}
	if isTrue(g, "help") || len(rest) == 0 {
		fmt.Print(runtimeUsage)
		if len(rest) == 0 && !isTrue(g, "help") {
			return 1
		}
		return 0
	}
	if rest[0] == supervisorVerb && g["log"] == "" {
		// The supervisor's stderr is the container's: without --log its
		// warnings go nowhere (its start errors reach create and start).
		lg.w = io.Discard
	}
	root := g["root"]
	if root == "" {
		root = defaultRuntimeRoot
	}
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	rt := &engine.Runtime{Root: root, Strict: isTrue(g, "strict"), Warn: func(m string) { lg.log("warning", m) }}
	if isTrue(g, "systemd-cgroup") {
		lg.log("warning", "--systemd-cgroup: ignored; Oak places each container in cgroups of its own (linux.cgroupsPath is not used)")
	}
	code, err := runtimeVerb(rt, g, rest[0], rest[1:])
	// Callers tell a missing command (their 127) from one that cannot run
	// (126) by these words in the runtime's error, as runc writes them.
	switch {
	case err == nil || strings.Contains(err.Error(), "executable file not found") || strings.Contains(err.Error(), "permission denied"):
	case errors.Is(err, engine.ErrCommandNotFound):
		err = fmt.Errorf("%w: executable file not found in $PATH", err)
	case errors.Is(err, engine.ErrCommandNotExecutable):
		err = fmt.Errorf("%w: permission denied", err)
	}
	if err != nil {
		lg.log("error", err.Error())
		if code == 0 {
			code = 1
		}
	}
	return code
}

// parseUntilVerb parses the global flags before the verb.
func (f rtFlags) parseUntilVerb(args []string) (map[string]string, []string, error) {
	i := 0
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		name, _, hasVal := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if long, ok := f.aliases[name]; ok {
			name = long
		}
		i++
		if f.value[name] && !hasVal {
			i++
		}
	}
	if i > len(args) {
		i = len(args)
	}
	vals, _, err := f.parse(args[:i])
	return vals, args[i:], err
}

func oneID(verb string, pos []string, max int) (string, error) {
	if len(pos) < 1 || len(pos) > max {
		return "", fmt.Errorf("%s: want a container id (see '%s --help')", verb, runtimeName)
	}
	return pos[0], nil
}

func runtimeVerb(rt *engine.Runtime, g map[string]string, verb string, args []string) (int, error) {
	switch verb {
	case "create", "run":
		fl := rtFlags{value: map[string]bool{}, aliases: map[string]string{"b": "bundle", "d": "detach"}}
		for k, v := range createFlags {
			fl.value[k] = v
		}
		if verb == "run" {
			fl.value["detach"], fl.value["keep"] = false, false
		}
		vals, pos, err := fl.parse(args)
		if err != nil {
			return 1, fmt.Errorf("%s: %w", verb, err)
		}
		id, err := oneID(verb, pos, 1)
		if err != nil {
			return 1, err
		}
		extra, err := preservedFiles(vals["preserve-fds"])
		if err != nil {
			return 1, fmt.Errorf("%s: %w", verb, err)
		}
		if vals["pidfd-socket"] != "" {
			return 1, fmt.Errorf("%s: --pidfd-socket is not supported", verb)
		}
		bundle := vals["bundle"]
		if bundle == "" {
			bundle = "."
		}
		sup := supervisorCmd(rt, g, id)
		sup.Stdin, sup.Stdout, sup.Stderr = os.Stdin, os.Stdout, os.Stderr
		cmd, err := rt.Create(id, engine.CreateOptions{Bundle: bundle, PidFile: vals["pid-file"],
			ConsoleSocket: vals["console-socket"], Supervisor: sup, ExtraFiles: extra})
		if err != nil {
			return 1, err
		}
		if verb == "create" {
			return 0, nil
		}
		if err := rt.Start(id); err != nil {
			rt.Delete(id, true)
			cmd.Wait()
			return 1, err
		}
		if isTrue(vals, "detach") {
			return 0, nil
		}
		cmd.Wait()
		code := cmd.ProcessState.ExitCode()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
		if !isTrue(vals, "keep") {
			if err := rt.Delete(id, true); err != nil {
				return code, err
			}
		}
		return code, nil
	case "start", "state":
		_, pos, err := rtFlags{}.parse(args)
		if err != nil {
			return 1, fmt.Errorf("%s: %w", verb, err)
		}
		id, err := oneID(verb, pos, 1)
		if err != nil {
			return 1, err
		}
		if verb == "start" {
			return 0, rt.Start(id)
		}
		st, err := rt.State(id)
		if err != nil {
			return 1, err
		}
		return 0, printJSON(st)
	case "kill":
		vals, pos, err := rtFlags{value: map[string]bool{"all": false}, aliases: map[string]string{"a": "all"}}.parse(args)
		if err != nil {
			return 1, fmt.Errorf("kill: %w", err)
		}
		id, err := oneID(verb, pos, 2)
		if err != nil {
			return 1, err
		}
		sig := syscall.SIGTERM
		if len(pos) == 2 {
			if sig, err = parseSignal(pos[1]); err != nil {
				return 1, fmt.Errorf("kill: unknown signal %q", pos[1])
			}
		}
		return 0, rt.Kill(id, sig, isTrue(vals, "all"))
	case "delete":
		vals, pos, err := rtFlags{value: map[string]bool{"force": false}, aliases: map[string]string{"f": "force"}}.parse(args)
		if err != nil {
			return 1, fmt.Errorf("delete: %w", err)
		}
		id, err := oneID(verb, pos, 1)
		if err != nil {
			return 1, err
		}
		return 0, rt.Delete(id, isTrue(vals, "force"))
	case "list":
		vals, _, err := rtFlags{value: map[string]bool{"format": true, "quiet": false}, aliases: map[string]string{"f": "format", "q": "quiet"}}.parse(args)
		if err != nil {
			return 1, fmt.Errorf("list: %w", err)
		}
		sts, created, err := rt.List()
		if err != nil {
			return 1, err
		}
		switch {
		case isTrue(vals, "quiet"):
			for _, s := range sts {
				fmt.Println(s.ID)
			}
		case vals["format"] == "json":
			type entry struct {
				*specs.State
				Created time.Time `json:"created"`
			}
			out := []entry{}
			for i, s := range sts {
				out = append(out, entry{s, created[i]})
			}
			return 0, json.NewEncoder(os.Stdout).Encode(out)
		case vals["format"] == "" || vals["format"] == "table":
			tw := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
			fmt.Fprintln(tw, "ID\tPID\tSTATUS\tBUNDLE\tCREATED")
			for i, s := range sts {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, created[i].Format(time.RFC3339Nano))
			}
			tw.Flush()
		default:
			return 1, fmt.Errorf("list: invalid format %q", vals["format"])
		}
		return 0, nil
	case "ps":
		vals, pos, err := rtFlags{value: map[string]bool{"format": true}, aliases: map[string]string{"f": "format"}}.parse(args)
		if err != nil {
			return 1, fmt.Errorf("ps: %w", err)
		}
		if len(pos) < 1 {
			return 1, fmt.Errorf("ps: want a container id")
		}
		pids, err := rt.Pids(pos[0])
		if err != nil {
			return 1, err
		}
		if vals["format"] == "json" {
			return 0, json.NewEncoder(os.Stdout).Encode(pids)
		}
		fmt.Println("PID")
		for _, p := range pids {
			fmt.Println(p)
		}
		return 0, nil
	case "exec":
		return runtimeExec(rt, g, args)
	case "pause", "resume":
		_, pos, err := rtFlags{}.parse(args)
		if err != nil {
			return 1, fmt.Errorf("%s: %w", verb, err)
		}
		id, err := oneID(verb, pos, 1)
		if err != nil {
			return 1, err
		}
		if verb == "pause" {
			return 0, rt.Pause(id)
		}
		return 0, rt.Resume(id)
	case "update", "checkpoint", "restore", "events":
		return 1, fmt.Errorf("%s: not supported by Oak", verb)
	case "features":
		return 0, printJSON(runtimeFeatures())
	case "spec":
		vals, _, err := rtFlags{value: map[string]bool{"bundle": true, "rootless": false}, aliases: map[string]string{"b": "bundle"}}.parse(args)
		if err != nil {
			return 1, fmt.Errorf("spec: %w", err)
		}
		p := filepath.Join(vals["bundle"], "config.json")
		if _, err := os.Stat(p); err == nil {
			return 1, fmt.Errorf("spec: %s exists: remove it first", p)
		}
		b, _ := json.MarshalIndent(defaultOCISpec(), "", "\t")
		return 0, os.WriteFile(p, append(b, '\n'), 0o644)
	case supervisorVerb:
		id, err := oneID(verb, args, 1)
		if err != nil {
			return 1, err
		}
		return rt.Supervise(id, os.NewFile(3, "report")), nil
	}
	return 1, fmt.Errorf("unknown command %q (see '%s --help')", verb, runtimeName)
}

// supervisorCmd is this binary as container id's supervisor, with the
// global flags that matter to it.
func supervisorCmd(rt *engine.Runtime, g map[string]string, id string) *exec.Cmd {
	args := []string{runtimeName, "--root", rt.Root}
	if g["log"] != "" {
		if abs, err := filepath.Abs(g["log"]); err == nil {
			args = append(args, "--log", abs)
		}
	}
	if g["log-format"] != "" {
		args = append(args, "--log-format", g["log-format"])
	}
	if rt.Strict {
		args = append(args, "--strict")
	}
	return &exec.Cmd{Path: "/proc/self/exe", Args: append(args, supervisorVerb, id), Env: os.Environ()}
}

// runtimeFeatures is what `features` reports (runtime-spec features.md).
func runtimeFeatures() *features.Features {
	yes, no := true, false
	ns := []string{"pid", "network", "ipc", "uts", "mount", "user", "cgroup"}
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{},
		MountOptions:  []string{},
		Linux: &features.Linux{
			Namespaces:   ns,
			Capabilities: engine.OakCapabilities,
			Cgroup:       &features.Cgroup{V1: &yes, V2: &yes, Systemd: &no, SystemdUser: &no},
			Seccomp:      &features.Seccomp{Enabled: &no},
			Apparmor:     &features.Apparmor{Enabled: &no},
			Selinux:      &features.Selinux{Enabled: &no},
		},
		Annotations: map[string]string{"run.oak.runtime": runtimeName, "run.oak.arch": runtime.GOARCH},
	}
}

// defaultOCISpec is the config `spec` writes: what an Oak container is.
func defaultOCISpec() *specs.Spec {
	return &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Args: []string{"sh"}, Cwd: "/",
			Env:          []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"},
			Capabilities: &specs.LinuxCapabilities{Bounding: engine.OakCapabilities, Effective: engine.OakCapabilities, Permitted: engine.OakCapabilities},
			Rlimits:      []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
		},
		Root:     &specs.Root{Path: "rootfs"},
		Hostname: "oak",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs"},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: "pid"}, {Type: "network"}, {Type: "ipc"}, {Type: "uts"},
				{Type: "mount"}, {Type: "user"}, {Type: "cgroup"}},
		},
	}
}

const runtimeUsage = `oak-runtime: Oak's OCI runtime (the runc command-line contract)

usage: oak-runtime [global flags] VERB [flags] ARGS

verbs: create start state kill delete run exec list ps pause resume features spec
global flags: --root DIR (default /run/oak-runtime), --log FILE,
       --log-format text|json, --strict (refuse what is otherwise narrowed
       to Oak's container), --systemd-cgroup (ignored), --debug, --version
`

// newRuntimeCmd is `oak runtime VERB …`, the same as oak-runtime VERB … for
// callers that cannot name a link.
func newRuntimeCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "runtime [global flags] VERB [flags] ARGS",
		Short:              "Oak's OCI runtime (runc's command line), also reached as a link named oak-runtime",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := runtimeMain(args); code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
}

// preservedFiles are this process's descriptors 3..3+n-1 for
// --preserve-fds n: what the caller left open for the container.
func preservedFiles(n string) ([]*os.File, error) {
	if n == "" {
		return nil, nil
	}
	count, err := strconv.Atoi(n)
	if err != nil || count < 0 || count > engine.MaxPreservedFDs {
		return nil, fmt.Errorf("--preserve-fds %q: want 0..%d", n, engine.MaxPreservedFDs)
	}
	var files []*os.File
	for fd := 3; fd < 3+count; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			return nil, fmt.Errorf("--preserve-fds %d: descriptor %d: %w", count, fd, err)
		}
		// Go's runtime keeps the cgroup CPU files it sizes GOMAXPROCS
		// from open from its start, in the lowest free numbers: where
		// the caller passed fewer descriptors than it said, those would
		// be taken for the caller's.
		if l, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd)); strings.HasPrefix(l, "/sys/fs/cgroup/") {
			return nil, fmt.Errorf("--preserve-fds %d: descriptor %d is %s, not one the caller passed", count, fd, l)
		}
		files = append(files, os.NewFile(uintptr(fd), "preserved"))
	}
	return files, nil
}

// execFlags are runc's exec flags: name → takes a value.
var execFlags = rtFlags{
	value: map[string]bool{"console-socket": true, "pidfd-socket": true, "cwd": true, "env": true, "tty": false,
		"user": true, "additional-gids": true, "process": true, "detach": false, "pid-file": true,
		"process-label": true, "apparmor": true, "no-new-privs": false, "cap": true, "preserve-fds": true,
		"cgroup": true, "ignore-paused": false, "no-subreaper": false},
	aliases: map[string]string{"e": "env", "t": "tty", "u": "user", "g": "additional-gids", "p": "process",
		"d": "detach", "c": "cap"},
	multi: map[string]bool{"env": true, "additional-gids": true, "cap": true, "cgroup": true},
}

// proxySignals are what exec passes on to the process it started (as the
// supervisor does to a container's command, and execproxy.c's forwarded):
// SIGKILL cannot be caught, and exec's end closes the connection, which
// kills the process.
var proxySignals = []os.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1,
	unix.SIGUSR2, unix.SIGWINCH, unix.SIGCONT, unix.SIGALRM}

// runtimeExec is `exec [flags] ID [COMMAND ARGS...]`: it starts a process
// in a running container and, without -d, waits for it and exits with its
// status. With -d it leaves a proxy (execproxy.c) holding the process's
// connection, whose pid goes to --pid-file: conmon and containerd's shim
// are sub-reapers that wait for that pid as their child and signal it,
// while the process itself is a child of the container's init.
func runtimeExec(rt *engine.Runtime, g map[string]string, args []string) (int, error) {
	// Flags end at the container id: the command's own flags follow.
	i := 0
	for i < len(args) && strings.HasPrefix(args[i], "-") && args[i] != "--" {
		name, _, hasVal := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if long, ok := execFlags.aliases[name]; ok {
			name = long
		}
		i++
		if execFlags.value[name] && !hasVal {
			i++
		}
	}
	if i < len(args) && args[i] == "--" {
		i++
	}
	vals, _, err := execFlags.parse(args[:min(i, len(args))])
	if err != nil {
		return 255, fmt.Errorf("exec: %w", err)
	}
	if i >= len(args) {
		return 255, fmt.Errorf("exec: want a container id (see '%s --help')", runtimeName)
	}
	id, command := args[i], args[i+1:]
	multi := func(name string) []string {
		if vals[name] == "" {
			return nil
		}
		return strings.Split(vals[name], "\x00")
	}
	for _, name := range []string{"pidfd-socket", "cgroup"} {
		if vals[name] != "" {
			return 255, fmt.Errorf("exec: --%s is not supported", name)
		}
	}
	opts := engine.OCIExecOptions{IgnorePaused: isTrue(vals, "ignore-paused"), ConsoleSocket: vals["console-socket"],
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	if file := vals["process"]; file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return 255, fmt.Errorf("exec: --process: %w", err)
		}
		if opts.Process, err = engine.ParseOCIProcess(b); err != nil {
			return 255, fmt.Errorf("exec: --process %s: %w", file, err)
		}
		opts.Input = "--process " + file
	} else {
		// runc's exec without --process: the container's process with
		// the command and what the flags change.
		if len(command) == 0 {
			return 255, fmt.Errorf("exec: want a command after the container id")
		}
		oc, err := rt.Container(id)
		if err != nil {
			return 255, err
		}
		p := oc.ExecProcess(command)
		opts.Process, opts.Input = p, "exec flags"
		if vals["cwd"] != "" {
			p.Cwd = vals["cwd"]
		}
		p.Env = append(p.Env, multi("env")...)
		p.Terminal = isTrue(vals, "tty")
		if u := vals["user"]; u != "" {
			uid, gid, hasGID := strings.Cut(u, ":")
			n, err := strconv.ParseUint(uid, 10, 32)
			if err != nil {
				return 255, fmt.Errorf("exec: --user %q: want UID[:GID]", u)
			}
			p.User.UID = uint32(n)
			if hasGID {
				if n, err = strconv.ParseUint(gid, 10, 32); err != nil {
					return 255, fmt.Errorf("exec: --user %q: want UID[:GID]", u)
				}
				p.User.GID = uint32(n)
			}
		}
		for _, c := range multi("cap") {
			if !slices.Contains(engine.OakCapabilities, c) {
				return 255, fmt.Errorf("exec: --cap %s: not one of Oak's capabilities (%s)", c, strings.Join(engine.OakCapabilities, ", "))
			}
			p.Capabilities.Bounding = append(p.Capabilities.Bounding, c)
			p.Capabilities.Effective = append(p.Capabilities.Effective, c)
			p.Capabilities.Permitted = append(p.Capabilities.Permitted, c)
		}
		for _, s := range multi("additional-gids") {
			n, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				return 255, fmt.Errorf("exec: --additional-gids %q: not a group id", s)
			}
			p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(n))
		}
		p.ApparmorProfile, p.SelinuxLabel = vals["apparmor"], vals["process-label"]
		// --no-new-privs: an Oak container's processes always have it.
	}
	if opts.ExtraFiles, err = preservedFiles(vals["preserve-fds"]); err != nil {
		return 255, fmt.Errorf("exec: %w", err)
	}
	sess, err := rt.Exec(id, opts)
	if err != nil {
		return 255, err
	}
	defer sess.Close()
	if isTrue(vals, "detach") {
		conn, err := sess.File()
		if err != nil {
			return 255, fmt.Errorf("exec: %w", err)
		}
		defer conn.Close()
		// The proxy says when it catches signals: only then may its
		// pid be known, and so signalled.
		ready, readyW, err := os.Pipe()
		if err != nil {
			return 255, fmt.Errorf("exec: %w", err)
		}
		defer ready.Close()
		proxy := &exec.Cmd{Path: "/proc/self/exe", Args: []string{execProxyName, id},
			Env: []string{execProxyEnv + "=" + signalList(engine.ForwardedSignals)}, ExtraFiles: []*os.File{conn, readyW}}
		err = proxy.Start()
		readyW.Close()
		if err != nil {
			return 255, fmt.Errorf("exec: start its proxy: %w", err)
		}
		if n, _ := ready.Read(make([]byte, 1)); n != 1 {
			proxy.Process.Kill() // and with its connection the process
			proxy.Wait()
			return 255, fmt.Errorf("exec: its proxy ended before it was ready")
		}
		if vals["pid-file"] != "" {
			if err := engine.WritePidFile(vals["pid-file"], proxy.Process.Pid); err != nil {
				proxy.Process.Kill() // and with its connection the process
				return 255, fmt.Errorf("exec: --pid-file: %w", err)
			}
		}
		return 0, nil // the proxy is reparented to our caller
	}
	if vals["pid-file"] != "" {
		// The process to wait for is this one, which ends with it.
		if err := engine.WritePidFile(vals["pid-file"], os.Getpid()); err != nil {
			return 255, fmt.Errorf("exec: --pid-file: %w", err)
		}
	}
	return waitExec(sess), nil
}

// waitExec forwards signals to the session's process until it ends, and
// returns its exit status (128+N if signal N ended it), as exec -d's proxy
// does. A connection that ends without a status means the container ended,
// which killed the process.
func waitExec(sess *engine.OCIExecSession) int {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, proxySignals...)
	defer signal.Stop(sigs)
	code, err := sess.Wait(sigs)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", runtimeName, err)
		return 128 + int(unix.SIGKILL)
	}
	return code
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/oak-engine/oak/api"
	"github.com/oak-engine/oak/engine"
	"github.com/oak-engine/oak/internal/trace"
	"github.com/oak-engine/oak/sandbox"
)

func newRunCmd(stateRoot func() string) *cobra.Command {
	var (
		opts                engine.RunOptions
		memory, tmpfs, cpus string
		storage, spawnDisk  string
		pids                int64
		detach, interactive bool
		tty                 bool
		mounts              []string
	)
	var logMaxSize, logMaxFile, restart string
	var entrypoint string
	var envFiles, labels, ulimits []string
	cmd := &cobra.Command{
		Use:   "run [flags] IMAGE|ROOTFS-DIR [COMMAND [ARG...]]",
		Short: "Run a command in a new container",
		Long: `Run a command in a new container. IMAGE is a root file system directory,
or "demo" for the built-in busybox image. The container starts with nothing
but a private writable copy of its image (--read-only: the image as it is),
a private /tmp and its own /proc: no network, no host files, authority only
over its own files and users, a fixed system-call allowlist.`,
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: completeImages(true, stateRoot),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if memory != "" {
				if opts.Limits.MemoryBytes, err = engine.ParseMemory(memory); err != nil {
					return err
				}
			}
			if tmpfs != "" {
				if opts.Limits.TmpfsBytes, err = engine.ParseTmpfsSize(tmpfs); err != nil {
					return err
				}
			}
			if storage != "" {
				if opts.Limits.WritableBytes, err = engine.ParseBytes("--storage-size", storage); err != nil {
					return err
				}
			}
			if spawnDisk != "" {
				if opts.SpawnDisk, err = engine.ParseBytes("--spawn-disk", spawnDisk); err != nil {
					return err
				}
			}
			if cpus != "" {
				if opts.Limits.CPUMilli, err = engine.ParseCPUs(cpus, runtime.NumCPU()); err != nil {
					return err
				}
			}
			if opts.Limits.Pids, err = engine.ParsePids(pids); err != nil {
				return err
			}
			if opts.Factory != "" || asTenant() {
				// A limit not given is the factory's (a tenant's
				// containers are made from its factory).
				if !cmd.Flags().Changed("memory") {
					opts.Limits.MemoryBytes = 0
				}
				if !cmd.Flags().Changed("pids") {
					opts.Limits.Pids = 0
				}
			}
			if opts.Log.MaxSize, err = engine.ParseLogMaxSize(logMaxSize); err != nil {
				return err
			}
			if opts.Log.MaxFile, err = engine.ParseLogMaxFile(logMaxFile); err != nil {
				return err
			}
			opts.Image, opts.Args = args[0], args[1:]
			for _, m := range mounts {
				v, err := engine.ParseMountFlag(m)
				if err != nil {
					return err
				}
				opts.Volumes = append(opts.Volumes, v)
			}
			opts.TTY = detach && tty // a foreground -t gets this process's own pty below
			if err := checkRefusals(cmd.Flags()); err != nil {
				return err
			}
			if opts.Restart, err = engine.ParseRestartPolicy(restart); err != nil {
				return err
			}
			if cmd.Flags().Changed("entrypoint") {
				opts.Entrypoint = []string{}
				if entrypoint != "" {
					opts.Entrypoint = []string{entrypoint}
				}
			}
			var env []string
			for _, f := range envFiles {
				vars, err := engine.ReadEnvFile(f, os.LookupEnv)
				if err != nil {
					return err
				}
				env = append(env, vars...)
			}
			opts.Env = append(env, engine.ResolveEnv(opts.Env, os.LookupEnv)...)
			for _, l := range labels {
				k, v, _ := strings.Cut(l, "=")
				if k == "" {
					return fmt.Errorf("invalid --label %q: want KEY=VALUE", l)
				}
				if opts.Labels == nil {
					opts.Labels = map[string]string{}
				}
				opts.Labels[k] = v
			}
			for _, u := range ulimits {
				ul, err := engine.ParseUlimit(u)
				if err != nil {
					return err
				}
				opts.Ulimits = append(opts.Ulimits, ul)
			}
			if detach {
				b, err := openBackend(stateRoot())
				if err != nil {
					return err
				}
				id, err := b.RunDetached(opts)
				if err != nil {
					return err
				}
				fmt.Println(id)
				return nil
			}
			// Through the daemon, a supervisor of its pool runs the
			// container (api/pool_linux.go); in-process, this one. A
			// tenant's always goes through the daemon, as the tenant
			// (openTenantClient refuses --no-daemon to it).
			throughDaemon := daemonWanted() || asTenant()
			var e *engine.Engine
			if !throughDaemon {
				if e, err = engine.New(stateRoot()); err != nil {
					return err
				}
			}
			stdio := engine.Stdio{Stdout: os.Stdout, Stderr: os.Stderr}
			// The container never gets this process's own terminal or
			// stdin: a pipe fed from it, or a terminal Oak makes (-t).
			switch {
			case tty:
				p, err := newPTY()
				if err != nil {
					return err
				}
				defer p.close()
				wait := p.pump()
				defer wait()
				stdio.TTY = p.slave
				defer p.slave.Close()
			case interactive:
				r, w, err := os.Pipe()
				if err != nil {
					return err
				}
				go func() {
					io.Copy(w, os.Stdin)
					w.Close()
				}()
				defer r.Close()
				stdio.Stdin = r
			}
			var ex engine.Exit
			if throughDaemon {
				ex, err = runAttached(stateRoot(), opts, stdio)
				var ae *api.Error
				if errors.As(err, &ae) && (ae.Code == api.CodeNotFound || ae.Code == api.CodeMethodNotAllowed) && !asTenant() {
					// A daemon from before foreground runs went
					// through it (an upgrade): this process runs it.
					if e, err = engine.New(stateRoot()); err != nil {
						return err
					}
					ex, err = e.Run(opts, stdio)
				}
			} else {
				ex, err = e.Run(opts, stdio)
			}
			trace.Mark("cli: run returned")
			if stdio.TTY != nil {
				stdio.TTY.Close() // the master then ends once the container's copies are gone
			}
			if err != nil {
				return err
			}
			if ex.OOMKilled {
				return &exitError{code: ex.Code, msg: fmt.Sprintf("container %s: out of memory (limit %s): the kernel killed a process in it",
					engine.ShortID(ex.ID), humanBytes(ex.Memory))}
			}
			if ex.Code != 0 {
				return &exitError{code: ex.Code}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false) // flags after IMAGE belong to the command
	f.BoolVar(&opts.AutoRemove, "rm", false, "remove the container when it exits")
	f.BoolVarP(&detach, "detach", "d", false, "run in the background and print the container id")
	f.BoolVarP(&interactive, "interactive", "i", false, "keep stdin open (default: /dev/null)")
	f.BoolVarP(&tty, "tty", "t", false, "give the command a terminal (Oak's own, copied to and from this one)")
	f.StringVar(&opts.Name, "name", "", "name of the container")
	f.StringArrayVarP(&opts.Env, "env", "e", nil, "set an environment variable KEY=VALUE, or KEY to pass oak's own (left out if unset)")
	f.StringArrayVar(&envFiles, "env-file", nil, "read environment variables from a file: KEY=VALUE or KEY lines, # comments (-e wins)")
	f.StringVarP(&opts.User, "user", "u", "", "user inside the container: NAME|UID[:GROUP|GID], from the image's /etc/passwd and /etc/group")
	f.StringVar(&entrypoint, "entrypoint", "", "run this instead of the image's entrypoint (the image's Cmd is not used; \"\" for none)")
	f.StringArrayVar(&labels, "label", nil, "set a label KEY=VALUE on the container, kept in its record")
	f.Bool("init", false, "accepted for docker's sake: every Oak container runs an init as pid 1 that forwards signals and reaps")
	f.StringArrayVar(&ulimits, "ulimit", nil, "set a resource limit NAME=SOFT[:HARD] (e.g. nofile=1024:2048), at most the host's hard limit:\nOak never raises one")
	addRefusals(f)
	f.StringVarP(&opts.Workdir, "workdir", "w", "", "working directory inside the container")
	f.StringVarP(&memory, "memory", "m", sizeArg(engine.DefaultMemoryBytes),
		fmt.Sprintf("memory limit, /tmp included (e.g. 256m; 0 or -1: none; at least %s). The default is fixed,\nnot a share of the host: enough for common servers, and a runaway is killed before it starves the host", sizeArg(sandbox.MinMemoryBytes)))
	f.Int64Var(&pids, "pids", engine.DefaultPids,
		fmt.Sprintf("limit on processes and threads (0 or -1: none; at least %d). The default lets a fork bomb\ntake at most 1/32 of a default pid_max (32768)", sandbox.MinPids))
	f.StringVar(&cpus, "cpus", "", "CPU limit in cores, e.g. 0.5; at least 0.01 (default: none)")
	f.StringVar(&tmpfs, "tmpfs-size", sizeArg(sandbox.DefaultTmpfsBytes), "size of /tmp, charged to --memory")
	f.StringVar(&logMaxSize, "log-max-size", sizeArg(engine.DefaultLogMaxSize),
		fmt.Sprintf("size at which the log (oak logs) rotates; 0 or -1: never; at least %s", sizeArg(engine.MinLogMaxSize)))
	f.StringVar(&logMaxFile, "log-max-file", strconv.Itoa(engine.DefaultLogMaxFile),
		"log files kept, the current one included: the oldest output goes first")
	f.StringArrayVarP(&opts.Volumes, "volume", "v", nil, "grant a volume NAME:/PATH[:ro] (see oak volume create), or a host directory /DIR:/PATH[:ro]")
	f.StringArrayVar(&mounts, "mount", nil, "type=volume|bind,source=SRC,target=/PATH[,readonly], as -v")
	f.BoolVarP(&opts.PublishAll, "publish-all", "P", false, "publish every port the image exposes, each on a host port picked at start (see oak port)")
	f.StringArrayVar(&opts.Tmpfs, "tmpfs", nil, "a private tmpfs at PATH, of --tmpfs-size, charged to the memory limit")
	f.StringArrayVarP(&opts.Publish, "publish", "p", nil, "grant listening: [[HOSTIP:][HOSTPORT]:]PORT[/tcp|udp] (no HOSTPORT: a free one, see oak port)")
	f.StringArrayVar(&opts.Egress, "egress", nil, "grant connecting: PREFIX[:PORT][/tcp|udp], or any")
	f.BoolVar(&opts.Spawn, "spawn", false, "with -d: hold the capability to make sub-containers of this image and a subset of these\ngrants, sharing --memory and --pids (fd 3, $OAK_SPAWN_FD; see docs/spawn.md)")
	f.StringVar(&spawnDisk, "spawn-disk", "", "with --spawn: the disk its factory holds, for its own and its sub-containers'\nwritable layers together (default: none of its own; under a factory that limits disk,\na tenant's, its --storage-size)")
	f.BoolVar(&opts.ReadOnly, "read-only", false, "run on the image as it is, without a private writable layer")
	f.StringVar(&opts.Factory, "factory", "", "make the container from this factory (oak factory create): its quota bounds the\ncontainer and its siblings together; --memory, --pids and --cpus default to its limits")
	f.StringVar(&storage, "storage-size", "", "size of the private writable layer over the image, in memory (default 1g)")
	f.StringVar(&opts.Names.Hostname, "hostname", "", "host name inside the container (default: its short id)")
	f.StringArrayVar(&opts.Names.DNS, "dns", nil, "resolver address for /etc/resolv.conf (default: the host's); needs an egress grant to it")
	f.StringArrayVar(&opts.Names.DNSSearch, "dns-search", nil, "search domain for /etc/resolv.conf")
	f.StringArrayVar(&opts.Names.DNSOptions, "dns-option", nil, "option for /etc/resolv.conf, e.g. ndots:2")
	f.StringArrayVar(&opts.Names.AddHosts, "add-host", nil, "add NAME:IP to /etc/hosts")
	f.StringVar(&restart, "restart", "no", "restart the command when it ends: no, on-failure[:N], always, unless-stopped\n(back-off from 100ms, doubling; oak stop ends it for good; unless-stopped is always: nothing restarts containers at boot)")
	return cmd
}

// runAttached runs a container in the foreground through the daemon of
// root: a supervisor of the daemon's is handed this process's stdio (as
// stdio gives it: a terminal's slave, stdin's pipe, or none) and the
// signals this process is sent (engine.ForwardedSignals); if this process
// dies, the container is killed. A tenant's run is the tenant's (its uid's
// or its token's), on the tenants' socket; it starts no daemon.
func runAttached(root string, opts engine.RunOptions, stdio engine.Stdio) (engine.Exit, error) {
	var c *api.Client
	var err error
	if asTenant() {
		if c, err = openTenantClient(root); err != nil {
			return engine.Exit{}, err
		}
		root = ""
	} else {
		e, err := engine.New(root) // makes the root, as a first in-process verb would
		if err != nil {
			return engine.Exit{}, err
		}
		root = e.Root
		c = api.NewClient(root)
	}
	stdin, tty := stdio.Stdin, stdio.TTY != nil
	switch {
	case tty:
		stdin = stdio.TTY
	case stdin == nil:
		if stdin, err = os.Open(os.DevNull); err != nil {
			return engine.Exit{}, err
		}
		defer stdin.Close()
	}
	opts.Image = absImage(opts.Image)
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, engine.ForwardedSignals...)
	defer signal.Stop(sigs)
	// The daemon is asked at once, and started only when none answers:
	// a ConnError comes before the daemon has the descriptors, so
	// nothing ran.
	ex, err := c.RunAttached(context.Background(), opts, tty, stdin, os.Stdout, os.Stderr, sigs)
	if ce := (*api.ConnError)(nil); errors.As(err, &ce) && root != "" {
		if err := ensureDaemon(c, root); err != nil {
			return engine.Exit{}, err
		}
		ex, err = c.RunAttached(context.Background(), opts, tty, stdin, os.Stdout, os.Stderr, sigs)
	}
	return ex, err
}

// sizeArg writes n as a size argument would give it: "1g", "64m", "4k".
func sizeArg(n int64) string {
	for _, u := range []struct {
		shift  uint
		suffix string
	}{{30, "g"}, {20, "m"}, {10, "k"}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

func newKillCmd(stateRoot func() string) *cobra.Command {
	var sig string
	cmd := &cobra.Command{
		Use:   "kill [-s SIGNAL] CONTAINER...",
		Short: "Send a signal to running containers (default SIGKILL)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := parseSignal(sig)
			if err != nil {
				return err
			}
			b, err := openBackend(stateRoot())
			if err != nil {
				return err
			}
			return eachRef(args, func(ref string) error { return b.Kill(ref, s) })
		},
	}
	cmd.ValidArgsFunction = completeRunning(false, stateRoot)
	cmd.Flags().StringVarP(&sig, "signal", "s", "KILL", "signal name or number")
	return cmd
}

func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid --signal %q: no such signal", s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if n := unix.SignalNum(name); n != 0 {
		return n, nil
	}
	return 0, fmt.Errorf("invalid --signal %q: no such signal", s)
}

// eachRef runs f for every argument, reports each failure on its own line
// and fails if any did, like docker's multi-container verbs.
func eachRef(refs []string, f func(string) error) error {
	failed := 0
	for _, r := range refs {
		if err := f(r); err != nil {
			fmt.Fprintln(os.Stderr, "oak: "+oneLine(err.Error()))
			failed++
			continue
		}
		fmt.Println(r)
	}
	if failed > 0 {
		return &exitError{code: 1}
	}
	return nil
}

func newRmCmd(stateRoot func() string) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rm [-f] CONTAINER...",
		Short: "Remove containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := openBackend(stateRoot())
			if err != nil {
				return err
			}
			return eachRef(args, func(ref string) error { return b.Remove(ref, force) })
		},
	}
	cmd.ValidArgsFunction = completeContainers(stateRoot)
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill a running container first")
	return cmd
}

func newLogsCmd(stateRoot func() string) *cobra.Command {
	var opts engine.LogsOptions
	var tail, since string
	cmd := &cobra.Command{
		Use:   "logs [-f] [--tail N] [--since TIME] [-t] CONTAINER",
		Short: "Print a container's output: its stdout to stdout, its stderr to stderr",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Tail = -1
			if tail != "all" {
				n, err := strconv.Atoi(tail)
				if err != nil || n < 0 {
					return fmt.Errorf("invalid --tail %q: want a number of lines or all", tail)
				}
				opts.Tail = n
			}
			if since != "" {
				t, err := engine.ParseSince(since, time.Now())
				if err != nil {
					return err
				}
				opts.Since = t
			}
			b, err := openBackend(stateRoot())
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return b.Logs(ctx, args[0], opts, os.Stdout, os.Stderr)
		},
		ValidArgsFunction: completeNames(true, containerNames(false), stateRoot),
	}
	f := cmd.Flags()
	f.BoolVarP(&opts.Follow, "follow", "f", false, "go on printing output as it is written, until the container exits")
	f.StringVarP(&tail, "tail", "n", "all", "print only the last N lines (all: every line)")
	f.StringVar(&since, "since", "", "print only lines written since a time (2006-01-02T15:04:05Z, Unix seconds) or for a duration back from now (10m)")
	f.BoolVarP(&opts.Timestamps, "timestamps", "t", false, "start every line with the time it was written (RFC 3339, UTC)")
	return cmd
}

func newDemoRootFSCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "demo-rootfs DIR",
		Short: "Write the built-in demo image (static busybox) into DIR",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return engine.WriteDemoRootFS(args[0])
		},
	}
}

func newSuperviseCmd(stateRoot func() string) *cobra.Command {
	return &cobra.Command{
		Use:    "_supervise ID",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return supervise(stateRoot(), args[0])
		},
	}
}

// supervise is the body of `oak --root ROOT _supervise ID`: the report
// pipe is fd 3, the container's slot lock fd 4 (see engine.Supervise).
func supervise(root, id string) error {
	e, err := engine.New(root)
	if err != nil {
		return err
	}
	return e.Supervise(id, os.NewFile(3, "report"), os.NewFile(4, "slot"))
}

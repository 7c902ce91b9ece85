package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Names of the startup variants, for StartupConfig.Variants.
const (
	VariantPlain = "plain" // ROOTFS/bin/true run directly
	VariantRunc  = "runc"  // runc run, runc's default spec for ROOTFS
	VariantOak   = "oak"   // oak run --rm ROOTFS true
)

// startupVariants lists the startup variants in report order.
var startupVariants = []string{VariantPlain, VariantRunc, VariantOak}

// StartupConfig configures Startup. Only RootFS is required.
type StartupConfig struct {
	// RootFS is the root file system every variant starts `true` from: a
	// directory with bin/true (for example a symlink to a static busybox)
	// and the mount points proc, dev and sys. runc creates the mount points
	// of its default spec that are missing, so without them RootFS must be
	// writable.
	RootFS string

	// Variants selects variants by name (VariantPlain, VariantRunc,
	// VariantOak); empty means all three.
	Variants []string

	// OakPath is the oak binary to run; empty means os.Executable().
	OakPath string
	// OakRoot is passed as `oak --root OakRoot`; empty means a fresh
	// directory under WorkDir, removed afterwards.
	OakRoot string

	// RuncPath is the runc binary; empty means "runc" looked up in $PATH,
	// and the runc variant is skipped (not failed) if there is none.
	RuncPath string

	// Runs is the number of timed runs per variant; 0 means DefaultRuns.
	Runs int
	// Warmup is the number of untimed runs per variant first; 0 means
	// DefaultWarmup, and a negative value means none.
	Warmup int

	// WorkDir is where Startup makes its temporary directory (runc bundle
	// and state, oak root); empty means os.TempDir(). The temporary
	// directory is removed when Startup returns.
	WorkDir string
}

// Defaults for StartupConfig.
const (
	DefaultRuns   = 50
	DefaultWarmup = 3
)

// Startup measures the launch of a container: the time from starting to
// the exit of `true` in cfg.RootFS, for a plain process, `runc run` with
// runc's default spec for the same root file system (read-only), and
// `oak run --rm`, interleaved in one invocation. Every variant is started
// from this process with os/exec (stdin and stdout /dev/null), and timed
// from just before the start to the return of wait, so the cost of starting
// a process from Go is in every variant alike. The report gives each
// variant's median vs plain's and oak's vs runc's.
//
// Startup refuses a RootFS without bin/true and an unknown variant name. A
// variant that cannot run here is reported as skipped: runc when RuncPath
// is empty and there is no runc in $PATH. A run that exits non-zero ends
// the benchmark with an error that names the variant and includes the
// run's stderr.
func Startup(ctx context.Context, cfg StartupConfig) (*Report, error) {
	names, err := pickVariants("startup", cfg.Variants, startupVariants)
	if err != nil {
		return nil, err
	}
	if cfg.RootFS == "" {
		return nil, errors.New("bench startup: no root file system given")
	}
	rootfs, err := filepath.Abs(cfg.RootFS)
	if err != nil {
		return nil, fmt.Errorf("bench startup: rootfs %s: %w", cfg.RootFS, err)
	}
	trueBin := filepath.Join(rootfs, "bin", "true")
	if _, err := os.Stat(trueBin); err != nil {
		return nil, fmt.Errorf("bench startup: rootfs %s: %w", rootfs, err)
	}
	opts := Options{Runs: cfg.Runs, Warmup: cfg.Warmup}
	if opts.Runs == 0 {
		opts.Runs = DefaultRuns
	}
	switch {
	case opts.Warmup == 0:
		opts.Warmup = DefaultWarmup
	case opts.Warmup < 0:
		opts.Warmup = 0
	}

	work, err := os.MkdirTemp(cfg.WorkDir, "oak-bench-startup-")
	if err != nil {
		return nil, fmt.Errorf("bench startup: %w", err)
	}
	defer os.RemoveAll(work)

	var variants []Variant
	for _, n := range startupVariants { // report order, whatever the order asked
		if !slices.Contains(names, n) {
			continue
		}
		var v Variant
		switch n {
		case VariantPlain:
			v = commandVariant(VariantPlain, trueBin)
		case VariantRunc:
			v, err = runcVariant(ctx, cfg.RuncPath, rootfs, work)
		case VariantOak:
			v, err = oakVariant(cfg.OakPath, cfg.OakRoot, rootfs, work)
		}
		if err != nil {
			return nil, err
		}
		variants = append(variants, v)
	}

	rep, err := Measure(ctx, variants, opts)
	if err != nil {
		return nil, err
	}
	rep.Benchmark = "startup"
	rep.Description = "start → exit of `true` in " + rootfs
	for _, v := range variants {
		if v.Name != VariantPlain {
			rep.AddRatio(v.Name, VariantPlain)
		}
	}
	rep.AddRatio(VariantOak, VariantRunc)
	return rep, nil
}

// commandVariant runs argv as a process to completion. Each run gets a new
// exec.Cmd; stdin and stdout are /dev/null and stderr is kept for the error.
func commandVariant(name string, argv ...string) Variant {
	return Variant{
		Name:   name,
		Detail: strings.Join(argv, " "),
		Run:    func(ctx context.Context) error { return runCommand(ctx, argv) },
	}
}

// runCommand runs argv and waits for it; an error includes its stderr.
func runCommand(ctx context.Context, argv []string) error {
	var stderr tailBuffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return fmt.Errorf("%s: %w: %s", argv[0], err, msg)
		}
		return fmt.Errorf("%s: %w", argv[0], err)
	}
	return nil
}

// oakVariant runs `OAK --root OAKROOT run --rm ROOTFS true`.
func oakVariant(oak, oakRoot, rootfs, work string) (Variant, error) {
	if oak == "" {
		exe, err := os.Executable()
		if err != nil {
			return Variant{}, fmt.Errorf("bench startup: oak binary: %w", err)
		}
		oak = exe
	} else if _, err := os.Stat(oak); err != nil {
		return Variant{}, fmt.Errorf("bench startup: oak binary: %w", err)
	}
	if oakRoot == "" {
		oakRoot = filepath.Join(work, "oak-root")
		if err := os.Mkdir(oakRoot, 0o700); err != nil {
			return Variant{}, fmt.Errorf("bench startup: %w", err)
		}
	}
	return commandVariant(VariantOak, oak, "--root", oakRoot, "run", "--rm", rootfs, "true"), nil
}

// runcVariant runs `runc --root STATE run --bundle BUNDLE ID` with a fresh
// ID per run, on a bundle whose config.json is runc's own default (`runc
// spec`) with the root set to rootfs, read-only, and the process to `true`
// without a terminal.
func runcVariant(ctx context.Context, runc, rootfs, work string) (Variant, error) {
	if runc == "" {
		p, err := exec.LookPath("runc")
		if err != nil {
			return Variant{Name: VariantRunc, Skip: "runc not found"}, nil
		}
		runc = p
	} else if _, err := os.Stat(runc); err != nil {
		return Variant{}, fmt.Errorf("bench startup: runc binary: %w", err)
	}
	bundle := filepath.Join(work, "runc-bundle")
	state := filepath.Join(work, "runc-state")
	for _, d := range []string{bundle, state} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return Variant{}, fmt.Errorf("bench startup: %w", err)
		}
	}
	if err := runCommand(ctx, []string{runc, "spec", "--bundle", bundle}); err != nil {
		return Variant{}, fmt.Errorf("bench startup: runc spec: %w", err)
	}
	configPath := filepath.Join(bundle, "config.json")
	if err := editRuncSpec(configPath, rootfs); err != nil {
		return Variant{}, fmt.Errorf("bench startup: %w", err)
	}

	detail := runc
	if out, err := exec.CommandContext(ctx, runc, "--version").Output(); err == nil {
		first, _, _ := strings.Cut(string(out), "\n")
		detail = runc + " (" + strings.TrimSpace(first) + ")"
	}
	detail += ", default spec, root " + rootfs + " read-only"

	prefix := fmt.Sprintf("oak-bench-%d-", os.Getpid())
	var n int
	var id string
	return Variant{
		Name:   VariantRunc,
		Detail: detail,
		Run: func(ctx context.Context) error {
			n++
			id = prefix + fmt.Sprint(n)
			return runCommand(ctx, []string{runc, "--root", state, "run", "--bundle", bundle, id})
		},
		// `runc run` without --detach deletes the container when its
		// process exits; this only removes what a failed or cancelled run
		// left behind.
		After: func(ctx context.Context) error {
			if _, err := os.Stat(filepath.Join(state, id)); errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return runCommand(ctx, []string{runc, "--root", state, "delete", "--force", id})
		},
	}, nil
}

// editRuncSpec rewrites the runc spec at path to run `true` in rootfs. It
// keeps every other field as runc wrote it, including ones this package
// does not know.
func editRuncSpec(path, rootfs string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var spec map[string]any
	if err := json.Unmarshal(data, &spec); err != nil {
		return fmt.Errorf("runc spec %s: %w", path, err)
	}
	process, ok := spec["process"].(map[string]any)
	if !ok {
		return fmt.Errorf("runc spec %s: no process object", path)
	}
	process["args"] = []string{"true"}
	process["terminal"] = false
	spec["root"] = map[string]any{"path": rootfs, "readonly": true}
	out, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		return fmt.Errorf("runc spec %s: %w", path, err)
	}
	return os.WriteFile(path, out, 0o600)
}

// tailBuffer keeps the last tailMax bytes written to it: enough of a
// failing run's stderr for an error message, however much it writes.
type tailBuffer struct{ b bytes.Buffer }

const tailMax = 4096

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= tailMax {
		t.b.Reset()
		p = p[len(p)-tailMax:]
	} else if over := t.b.Len() + len(p) - tailMax; over > 0 {
		t.b.Next(over)
	}
	t.b.Write(p)
	return n, nil
}

func (t *tailBuffer) String() string { return t.b.String() }

package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Names of the storage variants, for StorageConfig.Variants.
const (
	// VariantHost runs the load as a host process on a directory of the
	// host file system.
	VariantHost = "host"
	// VariantVolume runs the load in an oak container on a volume
	// mounted at /data.
	VariantVolume = "volume"
)

// storageVariants lists the storage variants in report order.
var storageVariants = []string{VariantHost, VariantVolume}

// storageTests lists the timed load modes in the order they are measured.
var storageTests = []string{LoadSeqWrite, LoadSeqRead, LoadSmallFiles}

// StorageConfig configures Storage. The zero value measures both variants
// and the image import with the defaults below.
type StorageConfig struct {
	// Variants selects variants by name (VariantHost, VariantVolume);
	// empty means both.
	Variants []string

	// SeqMiB is the size of the sequential file; 0 means DefaultSeqMiB.
	SeqMiB int
	// SmallFiles is the number of small files per run; 0 means
	// DefaultSmallFiles.
	SmallFiles int
	// Rounds is how many times each variant runs each test, and how many
	// images are imported; 0 means DefaultStorageRounds.
	Rounds int
	// Warmup is the number of untimed sequential writes per variant
	// before the timed runs: they allocate the volume image's blocks on
	// the host, which only a volume's first writes pay. 0 means 1, a
	// negative value none.
	Warmup int
	// KeepCache leaves the page cache alone before the read runs; by
	// default it is dropped (as root) so that both variants read from the
	// disk.
	KeepCache bool

	// ImageMiB is the size of the random data in the image the import
	// part builds and imports; 0 means DefaultImageMiB, a negative value
	// leaves the import part out.
	ImageMiB int
	// ImageLayers is the number of layers the data is split into; 0 means
	// DefaultImageLayers.
	ImageLayers int

	// OakPath is the oak binary that runs the containers and manages
	// volumes and images; empty means os.Executable().
	OakPath string
	// OakRoot is passed as `oak --root OakRoot`; empty means a fresh
	// directory under the work directory, removed afterwards. The
	// benchmark's volume (and imported images) are removed either way.
	OakRoot string
	// LoadPath is the binary that runs `LoadPath _storageload MODE DIR`
	// (StorageLoad): run directly by the host variant and copied into the
	// containers' root file system and the imported image as /oak. It
	// must be statically linked. Empty means OakPath.
	LoadPath string

	// WorkDir is where Storage makes its temporary directory: the host
	// variant's directory, the oak root (and so the volume's image), the
	// image archive. Put it on the file system to measure, the one that
	// holds Oak's state; empty means os.TempDir().
	WorkDir string
	// Log, if not nil, receives a line per run as the benchmark goes.
	Log io.Writer
}

// Defaults for StorageConfig.
const (
	DefaultSeqMiB        = 1024
	DefaultSmallFiles    = 2000
	DefaultStorageRounds = 3
	DefaultImageMiB      = 256
	DefaultImageLayers   = 4
)

// loadGrace is how long a load process (or `oak run`) has to end after it
// got SIGTERM because the benchmark was cancelled; oak run forwards the
// signal to the container and removes it.
const loadGrace = 30 * time.Second

// storageEnv is what Storage prepared for its parts.
type storageEnv struct {
	cfg StorageConfig
	// work is Storage's temporary directory.
	work string
	// rootfs is the containers' root file system, unless rootfsErr says
	// why there is none.
	rootfs    string
	rootfsErr error
	// oakRoot is the state root the containers run under ("" until made).
	oakRoot string
	logf    func(format string, args ...any)
}

// oak returns the argv of `oak --root ROOT ARGS...`.
func (env *storageEnv) oak(root string, args ...string) []string {
	return append([]string{env.cfg.OakPath, "--root", root}, args...)
}

// loadArgs returns the arguments after MODE DIR that size a load.
func (env *storageEnv) loadArgs() []string {
	return []string{"--size-mib", strconv.Itoa(env.cfg.SeqMiB), "--files", strconv.Itoa(env.cfg.SmallFiles)}
}

// storageVariant is one variant as Storage drives it.
type storageVariant struct {
	res *StorageResult
	// load runs one load of mode and returns what it printed.
	load func(ctx context.Context, mode string) (LoadResult, error)
	// ok is false once the variant failed (or never started).
	ok bool
	// readDisk reads the counters of the host disk that holds the
	// variant's files, or is nil if there are none to read.
	readDisk func() (diskCounters, error)
}

// Storage measures file-system I/O in an oak container's volume against the
// same I/O as a host process in a directory on the file system that holds
// the volume's image: a sequential write of cfg.SeqMiB MiB with an fsync at
// the end, a sequential read of it (the page cache dropped first), and the
// creation of cfg.SmallFiles files of 4 KiB, each written, fsynced and
// closed. Each test runs cfg.Rounds times per variant, in an order rotated
// by one place per round; the I/O is timed by the load program itself
// (StorageLoad), so a container's start is not in the numbers. The report
// gives the median of the rounds and volume's ratio to host.
//
// Then, unless cfg.ImageMiB is negative, it builds a docker-save archive
// (the load binary as /oak and cfg.ImageMiB MiB of random data in
// cfg.ImageLayers uncompressed layers), imports it cfg.Rounds times into a
// fresh state root with `oak image import`, and after each import times
// the first and the next `oak run --rm` of the image, beside a run from a
// directory root file system. If the first import fails, that part is
// reported as skipped with the error.
//
// Storage refuses an unknown variant name, negative sizes and rounds, and
// a work directory without room for the files. A variant that fails keeps
// its row with the error and the other goes on. Storage removes everything
// it made (volume, containers, images, files) before it returns, also
// when ctx is cancelled.
func Storage(ctx context.Context, cfg StorageConfig) (*StorageReport, error) {
	cfg, names, err := storageDefaults(cfg)
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp(cfg.WorkDir, "oak-bench-storage-")
	if err != nil {
		return nil, fmt.Errorf("bench storage: %w", err)
	}
	defer os.RemoveAll(work)
	if work, err = filepath.Abs(work); err != nil {
		return nil, fmt.Errorf("bench storage: %w", err)
	}
	if err := os.Chmod(work, 0o700); err != nil {
		return nil, fmt.Errorf("bench storage: %w", err)
	}
	if need := storageSpace(cfg); need > 0 {
		if free, err := freeBytes(work); err == nil && free < need {
			return nil, fmt.Errorf("bench storage: %s has %d MiB free, the benchmark needs about %d MiB (use smaller sizes or another work directory)",
				work, free>>20, need>>20)
		}
	}

	env := &storageEnv{cfg: cfg, work: work}
	env.logf = func(format string, args ...any) {
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, format+"\n", args...)
		}
	}
	rep := &StorageReport{
		Benchmark: "storage",
		Description: "sequential write/read and small-file create+fsync: a host process in a host directory vs an oak container " +
			"in a volume whose image lies on the same file system",
		SeqBytes:      int64(cfg.SeqMiB) << 20,
		BlockSize:     SeqBlockSize,
		SmallFiles:    cfg.SmallFiles,
		SmallFileSize: SmallFileSize,
		Rounds:        cfg.Rounds,
		Warmup:        cfg.Warmup,
		Order:         "for each test, rounds of every variant, the order rotated by one per round",
		Timing:        "by the load program around its I/O (a container's start and exit excluded)",
		Cache:         "dropped before each read run (sync; echo 3 > /proc/sys/vm/drop_caches)",
		Notes:         []string{},
	}
	if cfg.KeepCache {
		rep.Cache = "kept (reads may be served from the page cache)"
	}

	if slices.Contains(names, VariantVolume) || cfg.ImageMiB > 0 {
		env.rootfs = filepath.Join(work, "rootfs")
		if err := makeNetRootFS(env.rootfs, cfg.LoadPath); err != nil {
			env.rootfsErr = fmt.Errorf("root file system: %w", err)
		}
	}

	var cleanups []func(context.Context) error
	defer func() {
		// Not cancellable: a volume left attached is worse than a slow
		// ctrl-C.
		for _, c := range slices.Backward(cleanups) {
			if err := c(context.WithoutCancel(ctx)); err != nil {
				fmt.Fprintf(os.Stderr, "bench storage: cleaning up: %v\n", err)
			}
		}
	}()

	var vs []*storageVariant
	for _, name := range storageVariants { // report order, whatever the order asked
		if !slices.Contains(names, name) {
			continue
		}
		v := &storageVariant{res: &StorageResult{Name: name}}
		vs = append(vs, v)
		rep.Variants = append(rep.Variants, v.res)
		var cleanup func(context.Context) error
		switch name {
		case VariantHost:
			err = setupHostVariant(env, v)
		case VariantVolume:
			cleanup, err = setupVolumeVariant(ctx, env, v)
		}
		if cleanup != nil {
			cleanups = append(cleanups, cleanup)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("bench storage: %w", ctx.Err())
		}
		if err != nil {
			v.res.Error = err.Error()
			env.logf("%s: %s", name, v.res.Error)
			continue
		}
		v.ok = true
		env.logf("%s: %s", name, v.res.Detail)
		dir := filepath.Join(work, "host")
		if name == VariantVolume {
			dir = env.oakRoot
		}
		if disk, read, err := diskOf(dir); err == nil {
			v.res.Disk, v.readDisk = disk, read
		}
	}
	if h, vol := rep.Result(VariantHost), rep.Result(VariantVolume); h != nil && vol != nil && env.oakRoot != "" {
		if same, err := sameFileSystem(filepath.Join(work, "host"), env.oakRoot); err == nil && !same {
			rep.Notes = append(rep.Notes, "the host directory and the oak root (the volume's image) are on different file systems")
		}
	}

	active := func() []*storageVariant {
		var a []*storageVariant
		for _, v := range vs {
			if v.ok {
				a = append(a, v)
			}
		}
		return a
	}
	fail := func(v *storageVariant, what string, err error) {
		v.ok = false
		v.res.Error = what + ": " + err.Error()
		env.logf("%s: %s", v.res.Name, v.res.Error)
	}

	for i := range cfg.Warmup {
		for _, v := range active() {
			r, err := v.load(ctx, LoadSeqWrite)
			if ctx.Err() != nil {
				return nil, fmt.Errorf("bench storage: %w", ctx.Err())
			}
			if err != nil {
				fail(v, fmt.Sprintf("warm-up %d", i+1), err)
				continue
			}
			env.logf("warm-up %d/%d: %-6s %s %8.1f MB/s (not counted)", i+1, cfg.Warmup, v.res.Name, LoadSeqWrite, mbps(r.Bytes, r.Seconds))
		}
	}

	var cacheErr error
	for _, test := range storageTests {
		for round := range cfg.Rounds {
			act := active()
			for _, k := range rotation(len(act), round) {
				v := act[k]
				if test == LoadSeqRead && !cfg.KeepCache && cacheErr == nil {
					if cacheErr = dropCaches(); cacheErr != nil {
						rep.Cache = fmt.Sprintf("NOT dropped (%v): reads may be served from the page cache", cacheErr)
						env.logf("%s", rep.Cache)
					}
				}
				value, err := v.measure(ctx, test)
				if ctx.Err() != nil {
					return nil, fmt.Errorf("bench storage: %w", ctx.Err())
				}
				if err != nil {
					fail(v, fmt.Sprintf("%s, round %d", test, round+1), err)
					continue
				}
				env.logf("%s, round %d/%d: %-6s %10.1f %s", test, round+1, cfg.Rounds, v.res.Name, value, testUnit(test))
			}
		}
	}
	rep.AddRatio(VariantVolume, VariantHost)

	if cfg.ImageMiB > 0 {
		rep.Import = storageImport(ctx, env)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("bench storage: %w", ctx.Err())
		}
	}
	return rep, nil
}

// measure runs one load of test in v, adds its rate to v's result and
// returns it. For the small-files test it also counts the requests that
// v's disk completed meanwhile.
func (v *storageVariant) measure(ctx context.Context, test string) (float64, error) {
	var before diskCounters
	countDisk := test == LoadSmallFiles && v.readDisk != nil
	if countDisk {
		var err error
		before, err = v.readDisk()
		countDisk = err == nil
	}
	r, err := v.load(ctx, test)
	if err != nil {
		return 0, err
	}
	if r.Seconds <= 0 {
		return 0, fmt.Errorf("load reported %v s", r.Seconds)
	}
	if countDisk && r.Files > 0 {
		if after, err := v.readDisk(); err == nil {
			v.res.DiskWrites.add(round3(float64(after.writes-before.writes) / float64(r.Files)))
			v.res.DiskFlushes.add(round3(float64(after.flushes-before.flushes) / float64(r.Files)))
		}
	}
	if v.res.Mount == "" {
		v.res.Mount = r.Mount
	}
	var value float64
	switch test {
	case LoadSeqWrite:
		value = mbps(r.Bytes, r.Seconds)
		v.res.SeqWrite.add(value)
	case LoadSeqRead:
		value = mbps(r.Bytes, r.Seconds)
		v.res.SeqRead.add(value)
	case LoadSmallFiles:
		value = round3(float64(r.Files) / r.Seconds)
		v.res.SmallFiles.add(value)
	}
	return value, nil
}

// storageDefaults checks cfg, fills in its defaults and returns the
// variants to run.
func storageDefaults(cfg StorageConfig) (StorageConfig, []string, error) {
	names, err := pickVariants("storage", cfg.Variants, storageVariants)
	if err != nil {
		return cfg, nil, err
	}
	for _, f := range []struct {
		what string
		v    *int
		def  int
	}{
		{"sequential size (MiB)", &cfg.SeqMiB, DefaultSeqMiB},
		{"small files", &cfg.SmallFiles, DefaultSmallFiles},
		{"rounds", &cfg.Rounds, DefaultStorageRounds},
		{"image layers", &cfg.ImageLayers, DefaultImageLayers},
	} {
		switch {
		case *f.v < 0:
			return cfg, nil, fmt.Errorf("bench storage: %s %d: must not be negative", f.what, *f.v)
		case *f.v == 0:
			*f.v = f.def
		}
	}
	switch {
	case cfg.Warmup == 0:
		cfg.Warmup = 1
	case cfg.Warmup < 0:
		cfg.Warmup = 0
	}
	switch {
	case cfg.ImageMiB == 0:
		cfg.ImageMiB = DefaultImageMiB
	case cfg.ImageMiB < 0:
		cfg.ImageMiB = 0
	}
	if cfg.ImageMiB > 0 && cfg.ImageMiB < cfg.ImageLayers {
		return cfg, nil, fmt.Errorf("bench storage: %d MiB of image data cannot fill %d layers (at least 1 MiB each)", cfg.ImageMiB, cfg.ImageLayers)
	}
	if cfg.OakPath == "" {
		exe, err := os.Executable()
		if err != nil {
			return cfg, nil, fmt.Errorf("bench storage: oak binary: %w", err)
		}
		cfg.OakPath = exe
	}
	if cfg.LoadPath == "" {
		cfg.LoadPath = cfg.OakPath
	}
	return cfg, names, nil
}

// storageSpace estimates the bytes the benchmark writes to its work
// directory at most: the host's file, the volume's image (it grows as the
// container writes), the image archive and one imported copy of it, with
// room for the file systems' own data.
func storageSpace(cfg StorageConfig) int64 {
	seq := int64(cfg.SeqMiB)<<20 + int64(cfg.SmallFiles)*2*SmallFileSize
	img := int64(cfg.ImageMiB) << 20
	return 2*seq + 3*img + 256<<20
}

// volumeSize is the size of the benchmark's volume: twice what the load
// writes, so that ext4 inside it allocates as freely as on the host, and
// at least 256 MiB.
func volumeSize(cfg StorageConfig) int64 {
	need := int64(cfg.SeqMiB)<<20 + int64(cfg.SmallFiles)*2*SmallFileSize
	size := max(2*need+128<<20, 256<<20)
	return (size + 1<<20 - 1) &^ (1<<20 - 1)
}

// setupHostVariant makes the host variant's directory and its load.
func setupHostVariant(env *storageEnv, v *storageVariant) error {
	dir := filepath.Join(env.work, "host")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	argv := func(mode string) []string {
		return append([]string{env.cfg.LoadPath, StorageLoadCommand, mode, dir}, env.loadArgs()...)
	}
	v.res.Detail = strings.Join(argv("MODE"), " ") + " (host process)"
	v.load = func(ctx context.Context, mode string) (LoadResult, error) {
		return runLoad(ctx, argv(mode), mode)
	}
	return nil
}

// setupVolumeVariant creates the benchmark's volume and returns its
// removal with the variant's load: `oak run --rm -v NAME:/data ROOTFS /oak
// _storageload MODE /data`.
func setupVolumeVariant(ctx context.Context, env *storageEnv, v *storageVariant) (func(context.Context) error, error) {
	if _, err := os.Stat(env.cfg.OakPath); err != nil {
		return nil, fmt.Errorf("oak binary: %w", err)
	}
	if env.rootfsErr != nil {
		return nil, env.rootfsErr
	}
	root := env.cfg.OakRoot
	if root == "" {
		root = filepath.Join(env.work, "oak-root")
		if err := os.Mkdir(root, 0o700); err != nil {
			return nil, err
		}
	}
	env.oakRoot = root
	name := fmt.Sprintf("oak-bench-storage-%d", os.Getpid())
	size := volumeSize(env.cfg)
	cleanup := func(ctx context.Context) error {
		// A container that a cancelled run left behind would keep the
		// volume attached: remove the benchmark's containers first.
		err := removeContainers(ctx, env.oak, root, env.rootfs)
		rerr := runCommand(ctx, env.oak(root, "volume", "rm", name))
		if rerr != nil && strings.Contains(rerr.Error(), "no such volume") {
			rerr = nil // its create failed or was cancelled
		}
		return errors.Join(err, rerr)
	}
	if err := runCommand(ctx, env.oak(root, "volume", "create", "--size", fmt.Sprintf("%dm", size>>20), name)); err != nil {
		return cleanup, fmt.Errorf("volume create: %w", err)
	}
	argv := func(mode string) []string {
		return append(env.oak(root, "run", "--rm", "--memory", "0", "-v", name+":/data", env.rootfs, "/oak", StorageLoadCommand, mode, "/data"), env.loadArgs()...)
	}
	v.res.Detail = fmt.Sprintf("%s; volume %s of %d MiB", strings.Join(argv("MODE"), " "), name, size>>20)

	// While the first container runs, look at the loop device that backs
	// the volume: whether it does direct I/O to the image file decides
	// whether the data sits in the host's page cache twice. The suffix is
	// the volume store's layout (storage/volume): ROOT/volumes/vols/NAME/disk.img.
	suffix := filepath.Join("vols", name, "disk.img")
	var once sync.Once
	v.load = func(ctx context.Context, mode string) (LoadResult, error) {
		var stop func() string
		once.Do(func() { stop = watchLoop(suffix) })
		r, err := runLoad(ctx, argv(mode), mode)
		if stop != nil {
			if s := stop(); s != "" {
				v.res.Detail += "; " + s
			}
		}
		return r, err
	}
	return cleanup, nil
}

// watchLoop polls for a loop device backed by a file ending in suffix
// until the returned stop is called; stop returns what it found: "loop
// device /dev/loop0, direct I/O on", or "".
func watchLoop(suffix string) (stop func() string) {
	done := make(chan struct{})
	found := make(chan string, 1)
	go func() {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			if dev, dio, ok := loopBacking(suffix); ok {
				found <- fmt.Sprintf("loop device %s, direct I/O %s", dev, dio)
				return
			}
			select {
			case <-done:
				found <- ""
				return
			case <-t.C:
			}
		}
	}()
	return func() string {
		close(done)
		return <-found
	}
}

// removeContainers removes, with `oak rm -f`, every container under root
// that runs one of images (as given to oak run): what a cancelled `oak run
// --rm` can leave behind.
func removeContainers(ctx context.Context, oak func(string, ...string) []string, root string, images ...string) error {
	out, err := commandOutput(ctx, oak(root, "ps", "-a", "--no-trunc", "--format", "json"))
	if err != nil {
		return err
	}
	var ps []struct{ ID, Image string }
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var c struct{ ID, Image string }
		if line == "" {
			continue
		}
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			return fmt.Errorf("oak ps: %w", err)
		}
		ps = append(ps, c)
	}
	var errs []error
	for _, c := range ps {
		if slices.Contains(images, c.Image) {
			errs = append(errs, runCommand(ctx, oak(root, "rm", "-f", c.ID)))
		}
	}
	return errors.Join(errs...)
}

// runLoad runs a storage load (argv ends in `_storageload MODE ...`) and
// returns the result it printed as the last line of its output. When ctx
// is cancelled the process gets SIGTERM, which `oak run` forwards to the
// container before it removes it, and loadGrace to end.
func runLoad(ctx context.Context, argv []string, mode string) (LoadResult, error) {
	var stderr tailBuffer
	var stdout strings.Builder
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = loadGrace
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return LoadResult{}, fmt.Errorf("%s: %w: %s", argv[0], err, oneLine(msg))
		}
		return LoadResult{}, fmt.Errorf("%s: %w", argv[0], err)
	}
	return parseLoadOutput(stdout.String(), mode)
}

// parseLoadOutput reads the LoadResult a load printed as its last line of
// output, and checks that it is for mode.
func parseLoadOutput(out, mode string) (LoadResult, error) {
	var last string
	for l := range strings.Lines(out) {
		if l = strings.TrimSpace(l); l != "" {
			last = l
		}
	}
	var r LoadResult
	if err := json.Unmarshal([]byte(last), &r); err != nil {
		return r, fmt.Errorf("load output %q: %w", last, err)
	}
	if r.Mode != mode {
		return r, fmt.Errorf("load output %q: for mode %q, want %q", last, r.Mode, mode)
	}
	return r, nil
}

// mbps is bytes over seconds in MB/s (10⁶ bytes per second), to three
// decimals.
func mbps(bytes int64, seconds float64) float64 {
	if seconds <= 0 {
		return 0
	}
	return round3(float64(bytes) / seconds / 1e6)
}

// testUnit is the unit of a test's values.
func testUnit(test string) string {
	if test == LoadSmallFiles {
		return "files/s"
	}
	return "MB/s"
}

// diskCounters are a block device's cumulative request counts.
type diskCounters struct {
	writes, flushes uint64
}

// parseDiskStat reads a block device's stat file
// (Documentation/admin-guide/iostats.rst): the 5th field counts completed
// writes, the 16th completed flushes. It refuses a file without flush
// counts (kernels before 5.5).
func parseDiskStat(s string) (diskCounters, error) {
	f := strings.Fields(s)
	if len(f) < 17 {
		return diskCounters{}, fmt.Errorf("block device stat %q: %d fields, want at least 17 (flushes are counted since Linux 5.5)", s, len(f))
	}
	w, err := strconv.ParseUint(f[4], 10, 64)
	if err != nil {
		return diskCounters{}, fmt.Errorf("block device stat: writes %q: %w", f[4], err)
	}
	fl, err := strconv.ParseUint(f[15], 10, 64)
	if err != nil {
		return diskCounters{}, fmt.Errorf("block device stat: flushes %q: %w", f[15], err)
	}
	return diskCounters{writes: w, flushes: fl}, nil
}

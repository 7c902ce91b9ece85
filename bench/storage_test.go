package bench

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestStorageDefaults(t *testing.T) {
	cfg, names, err := storageDefaults(StorageConfig{OakPath: "/bin/oak"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(names, []string{VariantHost, VariantVolume}) {
		t.Errorf("variants = %v", names)
	}
	want := StorageConfig{SeqMiB: DefaultSeqMiB, SmallFiles: DefaultSmallFiles, Rounds: DefaultStorageRounds, Warmup: 1,
		ImageMiB: DefaultImageMiB, ImageLayers: DefaultImageLayers, OakPath: "/bin/oak", LoadPath: "/bin/oak"}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("defaults = %+v\nwant %+v", cfg, want)
	}
	cfg, _, err = storageDefaults(StorageConfig{Warmup: -1, ImageMiB: -1, OakPath: "/o", LoadPath: "/l"})
	if err != nil || cfg.Warmup != 0 || cfg.ImageMiB != 0 || cfg.LoadPath != "/l" {
		t.Errorf("negative warm-up and image = %+v, %v; want none of either", cfg, err)
	}
}

func TestStorageRefuses(t *testing.T) {
	tests := []struct {
		cfg  StorageConfig
		want string
	}{
		{StorageConfig{Variants: []string{"tmpfs"}}, `unknown variant "tmpfs"`},
		{StorageConfig{SeqMiB: -1}, "sequential size (MiB) -1"},
		{StorageConfig{SmallFiles: -5}, "small files -5"},
		{StorageConfig{Rounds: -1}, "rounds -1"},
		{StorageConfig{ImageLayers: -1}, "image layers -1"},
		{StorageConfig{ImageMiB: 3, ImageLayers: 4}, "cannot fill 4 layers"},
	}
	for _, tt := range tests {
		tt.cfg.WorkDir = t.TempDir()
		_, err := Storage(context.Background(), tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Storage(%+v) = %v, want an error containing %q", tt.cfg, err, tt.want)
		}
		if ents, _ := os.ReadDir(tt.cfg.WorkDir); len(ents) != 0 {
			t.Errorf("Storage(%+v) left %d entries in the work directory", tt.cfg, len(ents))
		}
	}
}

// TestStorageHostOnly runs the host variant with a stand-in load program
// (the static testdata one) and no image part: everything but oak.
func TestStorageHostOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the load program")
	}
	load := buildStaticLoad(t)
	work := t.TempDir()
	var log bytes.Buffer
	rep, err := Storage(context.Background(), StorageConfig{
		Variants:   []string{VariantHost},
		SeqMiB:     2,
		SmallFiles: 5,
		Rounds:     2,
		ImageMiB:   -1,
		KeepCache:  os.Geteuid() != 0,
		OakPath:    "/nonexistent/oak",
		LoadPath:   load,
		WorkDir:    work,
		Log:        &log,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := rep.Result(VariantHost)
	if h == nil || h.Error != "" {
		t.Fatalf("host = %+v", h)
	}
	for name, s := range map[string]Series{"seq write": h.SeqWrite, "seq read": h.SeqRead, "small files": h.SmallFiles} {
		if len(s.Values) != 2 || s.Median <= 0 {
			t.Errorf("host %s = %+v, want 2 rounds", name, s)
		}
	}
	if h.Mount == "" || !strings.Contains(h.Detail, load+" _storageload MODE") {
		t.Errorf("host mount %q, detail %q", h.Mount, h.Detail)
	}
	if len(rep.Ratios) != 0 || rep.Import != nil {
		t.Errorf("ratios %+v, import %+v; want neither with one variant and no image", rep.Ratios, rep.Import)
	}
	if !strings.Contains(log.String(), "smallfiles, round 2/2: host") {
		t.Errorf("log lacks the last run:\n%s", log.String())
	}
	if ents, _ := os.ReadDir(work); len(ents) != 0 {
		t.Errorf("Storage left %d entries in the work directory", len(ents))
	}
}

func TestVolumeSize(t *testing.T) {
	for _, cfg := range []StorageConfig{{SeqMiB: 1, SmallFiles: 1}, {SeqMiB: 1024, SmallFiles: 2000}, {SeqMiB: 3001, SmallFiles: 77}} {
		size := volumeSize(cfg)
		need := int64(cfg.SeqMiB)<<20 + int64(cfg.SmallFiles)*SmallFileSize
		if size < 2*need || size < 256<<20 || size%(1<<20) != 0 {
			t.Errorf("volumeSize(%d MiB, %d files) = %d", cfg.SeqMiB, cfg.SmallFiles, size)
		}
	}
}

func TestSeries(t *testing.T) {
	var s Series
	for _, x := range []float64{3, 1, 2, 10} {
		s.add(x)
	}
	if s.Median != 2.5 || !reflect.DeepEqual(s.Values, []float64{3, 1, 2, 10}) {
		t.Errorf("series = %+v, want median 2.5 and the values in order", s)
	}
	out, err := json.Marshal(Series{})
	if err != nil || string(out) != `{"values":[],"median":0}` {
		t.Errorf("empty series = %s, %v", out, err)
	}
}

// sampleStorageReport is a report as Storage makes it, with a failed
// variant's neighbour and an import part.
func sampleStorageReport() *StorageReport {
	rep := &StorageReport{
		Benchmark: "storage", Description: "test", SeqBytes: 1 << 30, BlockSize: SeqBlockSize,
		SmallFiles: 2000, SmallFileSize: SmallFileSize, Rounds: 3, Warmup: 1,
		Order: "rotated", Timing: "inside", Cache: "dropped",
		Notes: []string{"different file systems"},
	}
	host := &StorageResult{Name: VariantHost, Detail: "oak _storageload MODE /h", Mount: "ext4 /dev/vda rw (rw)"}
	vol := &StorageResult{Name: VariantVolume, Detail: "oak run -v x:/data", Mount: "ext4 /dev/loop0 rw (rw)"}
	for _, x := range []float64{1000, 1200, 1100} {
		host.SeqWrite.add(x)
		host.SeqRead.add(2 * x)
		host.SmallFiles.add(x / 10)
		vol.SeqWrite.add(0.9 * x)
		vol.SeqRead.add(2 * x)
		vol.SmallFiles.add(x / 20)
		host.DiskWrites.add(4)
		host.DiskFlushes.add(1)
		vol.DiskWrites.add(5.25)
		vol.DiskFlushes.add(2.15)
	}
	host.Disk, vol.Disk = "vda", "vda"
	rep.Variants = []*StorageResult{host, vol}
	rep.AddRatio(VariantVolume, VariantHost)
	rep.Import = &ImportResult{Archive: "docker-save archive, 5 layers", LayerBytes: 1 << 28, ArchiveBytes: 1<<28 + 10240, Detail: "oak image import"}
	for _, x := range []float64{0.5, 0.6, 0.7} {
		rep.Import.Seconds.add(x)
		rep.Import.MBps.add(mbps(rep.Import.LayerBytes, x))
		rep.Import.FirstStart.add(100 * x)
		rep.Import.NextStart.add(20 * x)
		rep.Import.DirStart.add(20 * x)
	}
	return rep
}

func TestStorageReportRatios(t *testing.T) {
	rep := sampleStorageReport()
	want := []StorageRatio{{Of: VariantVolume, Base: VariantHost, SeqWrite: 0.9, SeqRead: 1, SmallFiles: 0.5}}
	if !reflect.DeepEqual(rep.Ratios, want) {
		t.Errorf("ratios = %+v, want %+v", rep.Ratios, want)
	}
	rep.Variants[1].SeqWrite, rep.Variants[1].SeqRead = Series{}, Series{}
	rep.Ratios = nil
	if !rep.AddRatio(VariantVolume, VariantHost) || rep.Ratios[0].SeqWrite != 0 || rep.Ratios[0].SmallFiles != 0.5 {
		t.Errorf("partial ratio = %+v", rep.Ratios)
	}
	rep.Variants[1].SmallFiles = Series{}
	if rep.AddRatio(VariantVolume, VariantHost) || rep.AddRatio(VariantVolume, "runc") {
		t.Error("AddRatio added a ratio with nothing to compare")
	}
}

func TestStorageReportPrint(t *testing.T) {
	rep := sampleStorageReport()
	var b strings.Builder
	if err := rep.Print(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"sequential: 1 GiB in 1 MiB writes",
		"small files: 2000 × 4 KiB",
		"variant      seq write MB/s  seq read MB/s  small files/s",
		"host                 1100.0         2200.0            110",
		"volume                990.0         2200.0             55",
		"volume/host           0.90x          1.00x          0.50x",
		"requests to the host's disk per small file  device  writes  flushes\n" +
			"host                                        vda       4.00     1.00\n" +
			"volume                                      vda       5.25     2.15\n",
		"import                       0.60 s  447.4 MB/s",
		"first start from the image  60.0 ms",
		"start from a directory      12.0 ms",
		"ran: oak image import",
		"volume:  oak run -v x:/data\n         on ext4 /dev/loop0 rw (rw)",
		"NOTE: different file systems",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}

	rep.Variants[1].Error = "seqread, round 1: boom"
	rep.Variants[1].SeqRead, rep.Variants[1].SmallFiles = Series{}, Series{}
	rep.Ratios = nil
	rep.AddRatio(VariantVolume, VariantHost)
	rep.Import = &ImportResult{Archive: "x", Skipped: "oak image import: unknown command"}
	b.Reset()
	if err := rep.Print(&b); err != nil {
		t.Fatal(err)
	}
	out = b.String()
	for _, want := range []string{
		"volume                990.0         failed         failed",
		"volume/host           0.90x              -              -",
		"skipped: oak image import: unknown command",
		"volume:  FAILED: seqread, round 1: boom\n         oak run -v x:/data",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report with a failure lacks %q:\n%s", want, out)
		}
	}
}

func TestStorageReportJSON(t *testing.T) {
	out, err := json.Marshal(sampleStorageReport())
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"benchmark", "seq_bytes", "block_bytes", "small_files", "small_file_bytes", "rounds",
		"warmup", "order", "timing", "page_cache", "notes", "variants", "ratios", "import"} {
		if _, ok := got[key]; !ok {
			t.Errorf("JSON lacks %q: %s", key, out)
		}
	}
	v := got["variants"].([]any)[1].(map[string]any)
	if sw := v["seq_write_mbps"].(map[string]any); sw["median"] != 990.0 || len(sw["values"].([]any)) != 3 {
		t.Errorf("volume seq_write_mbps = %v", sw)
	}
	im := got["import"].(map[string]any)
	for _, key := range []string{"import_seconds", "import_mbps", "first_start_ms", "next_start_ms", "dir_start_ms", "layer_bytes"} {
		if _, ok := im[key]; !ok {
			t.Errorf("import JSON lacks %q: %v", key, im)
		}
	}
	empty, err := json.Marshal(StorageReport{Benchmark: "storage"})
	if err != nil || !strings.Contains(string(empty), `"variants":[],"ratios":[]`) || strings.Contains(string(empty), `"import"`) {
		t.Errorf("empty report = %s, %v", empty, err)
	}
}

func TestMakeImageArchive(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "prog")
	progData := []byte("#!/bin/false\nnot really a program\n")
	if err := os.WriteFile(prog, progData, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "image.tar")
	const tag = "localhost/oak-bench-storage:test"
	a, err := makeImageArchive(path, tag, prog, 5, 2)
	if err != nil {
		t.Fatal(err)
	}
	if a.layers != 3 || !strings.Contains(a.description, "3 uncompressed layers") {
		t.Errorf("archive = %+v", a)
	}

	// Read it back the way an importer would.
	ref, err := name.NewTag(tag)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(path, &ref)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH || len(cf.RootFS.DiffIDs) != 3 {
		t.Errorf("config = %+v", cf)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	wantFiles := []map[string]int64{
		{"proc/": 0, "dev/": 0, "sys/": 0, "tmp/": 0, "etc/": 0, "oak": int64(len(progData))},
		{"bench/": 0, "bench/layer1": 2 << 20},
		{"bench/": 0, "bench/layer2": 3 << 20},
	}
	for i, l := range layers {
		diffID, _ := l.DiffID()
		if diffID != cf.RootFS.DiffIDs[i] {
			t.Errorf("layer %d: diff ID %s, config %s", i, diffID, cf.RootFS.DiffIDs[i])
		}
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		cr := &countingReader{r: rc}
		files := map[string]int64{}
		tr := tar.NewReader(cr)
		var content []byte
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("layer %d: %v", i, err)
			}
			files[h.Name] = h.Size
			if h.Name == "oak" {
				if h.Mode&0o111 == 0 {
					t.Errorf("/oak has mode %o", h.Mode)
				}
				content, _ = io.ReadAll(tr)
			}
		}
		io.Copy(io.Discard, cr) // the tar's end blocks and padding
		rc.Close()
		if !reflect.DeepEqual(files, wantFiles[i]) {
			t.Errorf("layer %d holds %v, want %v", i, files, wantFiles[i])
		}
		if i == 0 && !bytes.Equal(content, progData) {
			t.Errorf("/oak = %q, want the program", content)
		}
		total += cr.n
	}
	if a.layerBytes != total || total < 5<<20 {
		t.Errorf("layer bytes = %d, layers hold %d", a.layerBytes, total)
	}

	// Layers are stored uncompressed, as docker save writes them: each
	// layer file is the tar whose digest is its diff ID.
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var layerFiles []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(h.Name, ".gz") || strings.HasSuffix(h.Name, ".zst") {
			t.Errorf("archive holds a compressed layer %s", h.Name)
		}
		if !strings.HasSuffix(h.Name, ".tar") {
			continue
		}
		sum := sha256.New()
		io.Copy(sum, tr)
		if got := hex.EncodeToString(sum.Sum(nil)) + ".tar"; got != h.Name {
			t.Errorf("layer file %s has digest %s", h.Name, got)
		}
		layerFiles = append(layerFiles, strings.TrimSuffix(h.Name, ".tar"))
	}
	var wantLayers []string
	for _, d := range cf.RootFS.DiffIDs {
		wantLayers = append(wantLayers, d.Hex)
	}
	slices.Sort(layerFiles)
	slices.Sort(wantLayers)
	if !reflect.DeepEqual(layerFiles, wantLayers) {
		t.Errorf("archive layer files %v, want the diff IDs %v", layerFiles, wantLayers)
	}

	if _, err := makeImageArchive(filepath.Join(dir, "b.tar"), tag, prog, 1, 2); err == nil {
		t.Error("makeImageArchive made 2 layers of 1 MiB")
	}
	if _, err := makeImageArchive(filepath.Join(dir, "c.tar"), "Bad Tag", prog, 2, 2); err == nil {
		t.Error("makeImageArchive took a bad tag")
	}
}

// buildStaticLoad builds testdata/storageload without cgo: a static
// `_storageload` for containers, since the test binary may need a loader.
func buildStaticLoad(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to build the static load program")
	}
	out := filepath.Join(t.TempDir(), "storageload")
	cmd := exec.Command(goBin, "build", "-o", out, "./testdata/storageload")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the static load program: %v\n%s", err, msg)
	}
	return out
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestParseDiskStat(t *testing.T) {
	// Linux 6.x: 17 fields; writes are the 5th, flushes the 16th.
	stat := "   88217 100 2000 300 1465067 5 6 7 0 9 10 217535 12 13 14 4293 16\n"
	c, err := parseDiskStat(stat)
	if err != nil || c != (diskCounters{writes: 1465067, flushes: 4293}) {
		t.Errorf("parseDiskStat = %+v, %v", c, err)
	}
	if _, err := parseDiskStat("1 2 3 4 5 6 7 8 9 10 11"); err == nil || !strings.Contains(err.Error(), "Linux 5.5") {
		t.Errorf("parseDiskStat of an old kernel's stat = %v, want a refusal", err)
	}
	if _, err := parseDiskStat("1 2 3 4 x 6 7 8 9 10 11 12 13 14 15 16 17"); err == nil {
		t.Error("parseDiskStat took a non-number")
	}
}

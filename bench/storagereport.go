package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// StorageReport is the outcome of the storage benchmark. Rates are in MB/s
// (10⁶ bytes per second) and files per second; it marshals to JSON with
// the unit in every field name.
type StorageReport struct {
	// Benchmark is "storage".
	Benchmark string
	// Description says what is measured.
	Description string
	// SeqBytes is the size of the sequential file; BlockSize the size of
	// each write and read of it.
	SeqBytes  int64
	BlockSize int
	// SmallFiles is the number of files of SmallFileSize bytes per run.
	SmallFiles    int
	SmallFileSize int
	// Rounds is the number of timed runs per variant and test; Warmup the
	// untimed sequential writes per variant before them.
	Rounds int
	Warmup int
	// Order says how the runs of the variants were ordered.
	Order string
	// Timing says where the runs were timed.
	Timing string
	// Cache says what was done to the page cache before each read run.
	Cache string
	// Notes are warnings about the set-up that bear on the numbers.
	Notes []string
	// Variants has one entry per variant, failed ones included.
	Variants []*StorageResult
	// Ratios compares pairs of variants that both have results.
	Ratios []StorageRatio
	// Import is the image import part, or nil if it was left out.
	Import *ImportResult
}

// StorageResult is what one variant measured.
type StorageResult struct {
	Name string `json:"name"`
	// Detail describes what the variant set up and ran.
	Detail string `json:"detail,omitempty"`
	// Mount is the file system the load ran on, as the load saw it:
	// "TYPE SOURCE MOUNT-OPTIONS (FS-OPTIONS)".
	Mount string `json:"mount,omitempty"`
	// Error, if not empty, is the failure that stopped the variant; the
	// results it had by then are kept.
	Error string `json:"error,omitempty"`
	// SeqWrite and SeqRead are in MB/s, SmallFiles in files per second.
	SeqWrite   Series `json:"seq_write_mbps"`
	SeqRead    Series `json:"seq_read_mbps"`
	SmallFiles Series `json:"small_files_per_s"`
	// Disk is the host's block device that holds the variant's files
	// ("vda"), or "" if it has none whose requests can be counted.
	Disk string `json:"disk,omitempty"`
	// DiskWrites and DiskFlushes are the write and flush requests Disk
	// completed during each small-files run, per file. They are the
	// device's own counters: anything else on the host that writes to it
	// counts too, and for the volume so do the container's start and exit.
	DiskWrites  Series `json:"disk_writes_per_file"`
	DiskFlushes Series `json:"disk_flushes_per_file"`
}

// Series holds one value per round, in the order they were taken, and
// their median (0 when there are none).
type Series struct {
	Values []float64 `json:"values"`
	Median float64   `json:"median"`
}

// add appends x and updates the median.
func (s *Series) add(x float64) {
	s.Values = append(s.Values, x)
	s.Median = round3(medianFloat(s.Values))
}

// MarshalJSON writes an empty series with "values": [].
func (s Series) MarshalJSON() ([]byte, error) {
	type plain Series
	if s.Values == nil {
		s.Values = []float64{}
	}
	return json.Marshal(plain(s))
}

// StorageRatio compares the medians of variant Of with those of variant
// Base: above 1 means Of was faster. A ratio is 0 where either has no
// median.
type StorageRatio struct {
	Of         string  `json:"of"`
	Base       string  `json:"base"`
	SeqWrite   float64 `json:"seq_write"`
	SeqRead    float64 `json:"seq_read"`
	SmallFiles float64 `json:"small_files"`
}

// ImportResult is the image import part: importing a freshly built image
// archive into an empty state root, and starting containers from it.
type ImportResult struct {
	// Skipped, if not empty, is why the part did not run (`oak image
	// import` failed on the first archive).
	Skipped string `json:"skipped,omitempty"`
	// Error, if not empty, is the failure that stopped the part later;
	// the results it had by then are kept.
	Error string `json:"error,omitempty"`
	// Archive describes the archive that was imported.
	Archive string `json:"archive"`
	// LayerBytes is the uncompressed size of its layers (tar streams),
	// ArchiveBytes the size of the archive file.
	LayerBytes   int64 `json:"layer_bytes"`
	ArchiveBytes int64 `json:"archive_bytes"`
	// Seconds is the wall time of each `oak image import`, MBps the layer
	// bytes over it in MB/s.
	Seconds Series `json:"import_seconds"`
	MBps    Series `json:"import_mbps"`
	// FirstStart is the time of the first `oak run --rm IMAGE` after each
	// import, NextStart of the one after it, DirStart of an `oak run --rm`
	// of a directory root file system with the same program, in
	// milliseconds from start to exit of the oak process.
	FirstStart Series `json:"first_start_ms"`
	NextStart  Series `json:"next_start_ms"`
	DirStart   Series `json:"dir_start_ms"`
	// Detail says what was run.
	Detail string `json:"detail,omitempty"`
}

// Result returns the named variant's result, or nil.
func (r *StorageReport) Result(name string) *StorageResult {
	for _, v := range r.Variants {
		if v.Name == name {
			return v
		}
	}
	return nil
}

// AddRatio appends the ratio of variant of to variant base if they have a
// median in common to compare, and reports whether it did.
func (r *StorageReport) AddRatio(of, base string) bool {
	o, b := r.Result(of), r.Result(base)
	if o == nil || b == nil {
		return false
	}
	q := StorageRatio{
		Of:         of,
		Base:       base,
		SeqWrite:   seriesRatio(o.SeqWrite, b.SeqWrite),
		SeqRead:    seriesRatio(o.SeqRead, b.SeqRead),
		SmallFiles: seriesRatio(o.SmallFiles, b.SmallFiles),
	}
	if q.SeqWrite == 0 && q.SeqRead == 0 && q.SmallFiles == 0 {
		return false
	}
	r.Ratios = append(r.Ratios, q)
	return true
}

func seriesRatio(o, b Series) float64 {
	if o.Median <= 0 || b.Median <= 0 {
		return 0
	}
	return round3(o.Median / b.Median)
}

// MarshalJSON writes r with the units in the field names.
func (r StorageReport) MarshalJSON() ([]byte, error) {
	type out struct {
		Benchmark     string           `json:"benchmark"`
		Description   string           `json:"description,omitempty"`
		SeqBytes      int64            `json:"seq_bytes"`
		BlockBytes    int              `json:"block_bytes"`
		SmallFiles    int              `json:"small_files"`
		SmallFileSize int              `json:"small_file_bytes"`
		Rounds        int              `json:"rounds"`
		Warmup        int              `json:"warmup"`
		Order         string           `json:"order"`
		Timing        string           `json:"timing"`
		Cache         string           `json:"page_cache"`
		Notes         []string         `json:"notes"`
		Variants      []*StorageResult `json:"variants"`
		Ratios        []StorageRatio   `json:"ratios"`
		Import        *ImportResult    `json:"import,omitempty"`
	}
	o := out{
		Benchmark: r.Benchmark, Description: r.Description, SeqBytes: r.SeqBytes, BlockBytes: r.BlockSize,
		SmallFiles: r.SmallFiles, SmallFileSize: r.SmallFileSize, Rounds: r.Rounds, Warmup: r.Warmup,
		Order: r.Order, Timing: r.Timing, Cache: r.Cache, Notes: r.Notes, Variants: r.Variants,
		Ratios: r.Ratios, Import: r.Import,
	}
	if o.Notes == nil {
		o.Notes = []string{}
	}
	if o.Variants == nil {
		o.Variants = []*StorageResult{}
	}
	if o.Ratios == nil {
		o.Ratios = []StorageRatio{}
	}
	return json.Marshal(o)
}

// Print writes r as aligned tables: the medians of each variant with the
// ratios, the import part, and what each variant ran on or why it failed.
func (r *StorageReport) Print(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s\n", r.Benchmark, r.Description)
	fmt.Fprintf(&b, "sequential: %s in %s writes, fsync at the end; read back in %s reads; page cache %s\n",
		sizeString64(r.SeqBytes), sizeString(r.BlockSize), sizeString(r.BlockSize), r.Cache)
	fmt.Fprintf(&b, "small files: %d × %s, each created, written, fsynced and closed; directory fsynced at the end\n",
		r.SmallFiles, sizeString(r.SmallFileSize))
	fmt.Fprintf(&b, "order: %s; %d rounds after %d untimed sequential write(s) per variant; timed %s\n",
		r.Order, r.Rounds, r.Warmup, r.Timing)
	b.WriteString("values are medians of the rounds; MB/s is 10⁶ bytes/s; A/B is A's over B's (above 1: A was faster)\n\n")

	rows := [][]string{{"variant", "seq write MB/s", "seq read MB/s", "small files/s"}}
	for _, v := range r.Variants {
		rows = append(rows, []string{v.Name, seriesCell(v.SeqWrite, v.Error, "%.1f"),
			seriesCell(v.SeqRead, v.Error, "%.1f"), seriesCell(v.SmallFiles, v.Error, "%.0f")})
	}
	for _, q := range r.Ratios {
		rows = append(rows, []string{q.Of + "/" + q.Base, ratioCell(q.SeqWrite), ratioCell(q.SeqRead), ratioCell(q.SmallFiles)})
	}
	writeTable(&b, rows, 1)

	rows = [][]string{{"requests to the host's disk per small file", "device", "writes", "flushes"}}
	for _, v := range r.Variants {
		if len(v.DiskFlushes.Values) > 0 {
			rows = append(rows, []string{v.Name, v.Disk, fmt.Sprintf("%.2f", v.DiskWrites.Median), fmt.Sprintf("%.2f", v.DiskFlushes.Median)})
		}
	}
	if len(rows) > 1 {
		b.WriteString("\n")
		writeTable(&b, rows, 2)
		b.WriteString("(the device's own counters, medians of the rounds: other writers on the host count too)\n")
	}

	if im := r.Import; im != nil {
		b.WriteString("\nimage import: " + im.Archive + "\n")
		switch {
		case im.Skipped != "":
			fmt.Fprintf(&b, "skipped: %s\n", im.Skipped)
		default:
			fmt.Fprintf(&b, "each round imports into an empty state root, wall time of the oak process; medians of %d round(s)\n\n", len(im.Seconds.Values))
			rows := [][]string{{"", "median", ""}}
			if len(im.Seconds.Values) > 0 {
				rows = append(rows,
					[]string{"import", fmt.Sprintf("%.2f s", im.Seconds.Median), fmt.Sprintf("%.1f MB/s", im.MBps.Median)})
			}
			for _, s := range []struct {
				name string
				s    Series
			}{
				{"first start from the image", im.FirstStart},
				{"next start from the image", im.NextStart},
				{"start from a directory", im.DirStart},
			} {
				if len(s.s.Values) > 0 {
					rows = append(rows, []string{s.name, fmt.Sprintf("%.1f ms", s.s.Median), ""})
				}
			}
			if len(rows) > 1 {
				writeTable(&b, rows, 1)
			}
			if im.Error != "" {
				fmt.Fprintf(&b, "FAILED: %s\n", im.Error)
			}
		}
		if im.Detail != "" {
			fmt.Fprintf(&b, "ran: %s\n", im.Detail)
		}
	}

	b.WriteString("\n")
	nameW := 0
	for _, v := range r.Variants {
		nameW = max(nameW, len(v.Name)+1)
	}
	for _, v := range r.Variants {
		if v.Error != "" {
			fmt.Fprintf(&b, "%-*s  FAILED: %s\n", nameW, v.Name+":", v.Error)
		}
		if v.Detail != "" {
			label := v.Name + ":"
			if v.Error != "" {
				label = ""
			}
			fmt.Fprintf(&b, "%-*s  %s\n", nameW, label, v.Detail)
		}
		if v.Mount != "" {
			fmt.Fprintf(&b, "%-*s  on %s\n", nameW, "", v.Mount)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "NOTE: %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// seriesCell is a series' median in format, or why there is none.
func seriesCell(s Series, failed, format string) string {
	switch {
	case len(s.Values) > 0:
		return fmt.Sprintf(format, s.Median)
	case failed != "":
		return "failed"
	}
	return "-"
}

// ratioCell is a ratio as "0.97x", or "-" for none.
func ratioCell(q float64) string {
	if q <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", q)
}

// sizeString64 writes n bytes the way the report does: "1 GiB", "256 MiB",
// "10.3 MiB".
func sizeString64(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// StorageLoadCommand is the hidden oak command that does the storage
// benchmark's I/O (StorageLoad): `oak _storageload MODE DIR [flags]`. The
// benchmark runs it as a host process and, copied into a root file system
// as /oak, in containers.
const StorageLoadCommand = "_storageload"

// Modes of StorageLoad.
const (
	// LoadSeqWrite writes DIR/seq sequentially and fsyncs it.
	LoadSeqWrite = "seqwrite"
	// LoadSeqRead reads DIR/seq, as the last seqwrite left it, sequentially.
	LoadSeqRead = "seqread"
	// LoadSmallFiles creates small files in DIR/small, each written,
	// fsynced and closed before the next.
	LoadSmallFiles = "smallfiles"
	// LoadNoop does nothing: it times a container's start.
	LoadNoop = "noop"
)

// loadModes lists the modes StorageLoad knows.
var loadModes = []string{LoadSeqWrite, LoadSeqRead, LoadSmallFiles, LoadNoop}

// Sizes of the storage load's I/O.
const (
	// SeqBlockSize is the size of each write and read of the sequential
	// modes.
	SeqBlockSize = 1 << 20
	// SmallFileSize is the size of each file of LoadSmallFiles.
	SmallFileSize = 4 << 10
)

// Names of the storage load's files below DIR.
const (
	seqName   = "seq"
	smallName = "small"
)

// LoadOptions size a StorageLoad.
type LoadOptions struct {
	// SeqMiB is how many MiB LoadSeqWrite writes; it must be at least 1
	// for that mode.
	SeqMiB int
	// Files is how many files LoadSmallFiles creates; it must be at least
	// 1 for that mode.
	Files int
}

// LoadResult is what one StorageLoad did. The program prints it as one
// line of JSON.
type LoadResult struct {
	Mode string `json:"mode"`
	// Bytes is the number of bytes written or read.
	Bytes int64 `json:"bytes"`
	// Files is the number of files created (LoadSmallFiles).
	Files int `json:"files,omitempty"`
	// Seconds is the time the I/O took, measured around it in the load
	// program itself: for a container it excludes the container's start
	// and exit.
	Seconds float64 `json:"seconds"`
	// Mount describes the file system DIR is on, as the load program
	// sees it; empty if /proc/self/mountinfo cannot be read.
	Mount string `json:"mount,omitempty"`
}

// StorageLoad does the I/O of mode in dir and times it:
//
//   - LoadSeqWrite removes DIR/seq (and commits the removal with an fsync
//     of DIR), then, timed: creates it, writes opts.SeqMiB MiB in
//     SeqBlockSize writes of pseudo-random data (every block different, so
//     nothing on the way can compress or deduplicate it), fsyncs and
//     closes it.
//   - LoadSeqRead, timed: opens DIR/seq, reads it to its end in
//     SeqBlockSize reads and closes it. Whether the data comes from the
//     page cache is the caller's business (the benchmark drops the cache
//     first).
//   - LoadSmallFiles removes DIR/small and makes it anew (committed with an
//     fsync of DIR), then, timed: creates opts.Files files of
//     SmallFileSize bytes in it, each written, fsynced and closed before
//     the next, and fsyncs DIR/small at the end.
//   - LoadNoop does nothing; dir may be empty.
//
// StorageLoad refuses an unknown mode, a missing dir and sizes below 1 for
// the mode that needs them; LoadSeqRead fails if there is no DIR/seq. It
// stops with ctx's error between blocks or files.
func StorageLoad(ctx context.Context, mode, dir string, opts LoadOptions) (LoadResult, error) {
	res := LoadResult{Mode: mode}
	fail := func(err error) (LoadResult, error) {
		return res, fmt.Errorf("storage load %s %s: %w", mode, dir, err)
	}
	switch mode {
	case LoadNoop:
		return res, nil
	case LoadSeqWrite:
		if opts.SeqMiB < 1 {
			return fail(fmt.Errorf("size %d MiB: must be at least 1", opts.SeqMiB))
		}
	case LoadSmallFiles:
		if opts.Files < 1 {
			return fail(fmt.Errorf("%d files: must be at least 1", opts.Files))
		}
	case LoadSeqRead:
	default:
		return res, fmt.Errorf("storage load: unknown mode %q (want one of %s)", mode, strings.Join(loadModes, ", "))
	}
	if st, err := os.Stat(dir); err != nil {
		return fail(err)
	} else if !st.IsDir() {
		return fail(errors.New("not a directory"))
	}
	res.Mount = mountOf(dir)

	var err error
	var d time.Duration
	switch mode {
	case LoadSeqWrite:
		res.Bytes, d, err = seqWrite(ctx, dir, opts.SeqMiB)
	case LoadSeqRead:
		res.Bytes, d, err = seqRead(ctx, dir)
	case LoadSmallFiles:
		res.Files, d, err = smallFiles(ctx, dir, opts.Files)
		res.Bytes = int64(res.Files) * SmallFileSize
	}
	res.Seconds = d.Seconds()
	if err != nil {
		return fail(err)
	}
	return res, nil
}

// seqWrite writes DIR/seq; see StorageLoad.
func seqWrite(ctx context.Context, dir string, mib int) (int64, time.Duration, error) {
	path := filepath.Join(dir, seqName)
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, 0, err
	}
	if err := syncDir(dir); err != nil {
		return 0, 0, err
	}
	block := make([]byte, SeqBlockSize)
	fillRandom(block, uint64(mib))

	start := time.Now()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return 0, 0, err
	}
	var n int64
	for i := range mib {
		if err := ctx.Err(); err != nil {
			f.Close()
			return n, time.Since(start), err
		}
		// Make every block different from every other.
		binary.LittleEndian.PutUint64(block, uint64(i))
		w, err := f.Write(block)
		n += int64(w)
		if err != nil {
			f.Close()
			return n, time.Since(start), err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return n, time.Since(start), fmt.Errorf("fsync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return n, time.Since(start), err
	}
	return n, time.Since(start), nil
}

// seqRead reads DIR/seq; see StorageLoad.
func seqRead(ctx context.Context, dir string) (int64, time.Duration, error) {
	path := filepath.Join(dir, seqName)
	block := make([]byte, SeqBlockSize)
	start := time.Now()
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("%w (run %s first)", err, LoadSeqWrite)
		}
		return 0, 0, err
	}
	defer f.Close()
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, time.Since(start), err
		}
		r, err := f.Read(block)
		n += int64(r)
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, time.Since(start), err
		}
	}
	err = f.Close()
	return n, time.Since(start), err
}

// smallFiles creates the files of DIR/small; see StorageLoad.
func smallFiles(ctx context.Context, dir string, files int) (int, time.Duration, error) {
	small := filepath.Join(dir, smallName)
	if err := os.RemoveAll(small); err != nil {
		return 0, 0, err
	}
	if err := os.Mkdir(small, 0o755); err != nil {
		return 0, 0, err
	}
	if err := syncDir(dir); err != nil {
		return 0, 0, err
	}
	data := make([]byte, SmallFileSize)
	fillRandom(data, uint64(files))

	start := time.Now()
	for i := range files {
		if err := ctx.Err(); err != nil {
			return i, time.Since(start), err
		}
		binary.LittleEndian.PutUint64(data, uint64(i))
		if err := writeSynced(filepath.Join(small, fmt.Sprintf("f%06d", i)), data); err != nil {
			return i, time.Since(start), err
		}
	}
	if err := syncDir(small); err != nil {
		return files, time.Since(start), err
	}
	return files, time.Since(start), nil
}

// writeSynced creates path, writes data, fsyncs and closes it.
func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	return f.Close()
}

// syncDir fsyncs the directory dir, committing the entries made or
// removed in it.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// fillRandom fills b with pseudo-random bytes from a generator seeded with
// seed: data no storage layer can compress.
func fillRandom(b []byte, seed uint64) {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	r := rand.NewChaCha8(key)
	r.Read(b)
}

// mountOf describes the mount that holds dir, from /proc/self/mountinfo:
// "ext4 /dev/vda rw,relatime (rw,discard)" — type, source, mount options
// and, in parentheses, the file system's own options. It returns "" if it
// cannot tell.
func mountOf(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	if p, err := filepath.EvalSymlinks(abs); err == nil {
		abs = p
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	m, ok := findMount(f, abs)
	if !ok {
		return ""
	}
	return m.String()
}

// mountEntry is one line of /proc/self/mountinfo.
type mountEntry struct {
	point, fsType, source, options, superOptions string
}

func (m mountEntry) String() string {
	return fmt.Sprintf("%s %s %s (%s)", m.fsType, m.source, m.options, m.superOptions)
}

// findMount returns the entry of mountinfo (proc(5) format) whose mount
// point holds path with the longest match; of several mounts on one point
// the last, which is the one on top.
func findMount(mountinfo io.Reader, path string) (mountEntry, bool) {
	var best mountEntry
	found := false
	sc := bufio.NewScanner(mountinfo)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" && i >= 6 {
				sep = i
				break
			}
		}
		if sep < 0 || len(fields) < sep+4 {
			continue
		}
		m := mountEntry{
			point:        unescapeMount(fields[4]),
			options:      fields[5],
			fsType:       fields[sep+1],
			source:       unescapeMount(fields[sep+2]),
			superOptions: fields[sep+3],
		}
		if !pathWithin(path, m.point) {
			continue
		}
		if !found || len(m.point) >= len(best.point) {
			best, found = m, true
		}
	}
	return best, found
}

// pathWithin reports whether path is dir or lies below it.
func pathWithin(path, dir string) bool {
	if dir == "/" || path == dir {
		return true
	}
	return strings.HasPrefix(path, dir+"/")
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return '0' <= c && c <= '7' }

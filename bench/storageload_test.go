package bench

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStorageLoadModes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()

	w, err := StorageLoad(ctx, LoadSeqWrite, dir, LoadOptions{SeqMiB: 3})
	if err != nil {
		t.Fatal(err)
	}
	if w.Mode != LoadSeqWrite || w.Bytes != 3<<20 || w.Seconds <= 0 {
		t.Errorf("seqwrite = %+v, want 3 MiB in some time", w)
	}
	data, err := os.ReadFile(filepath.Join(dir, seqName))
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != 3<<20 {
		t.Fatalf("seq file has %d bytes, want %d", len(data), 3<<20)
	}
	b0, b1, b2 := data[:SeqBlockSize], data[SeqBlockSize:2*SeqBlockSize], data[2*SeqBlockSize:]
	if bytes.Equal(b0, b1) || bytes.Equal(b1, b2) {
		t.Error("blocks of the sequential file repeat")
	}
	if zeros := bytes.Count(b0, []byte{0}); zeros > SeqBlockSize/64 {
		t.Errorf("block 0 has %d zero bytes: not random data", zeros)
	}

	// A second write replaces the file, it does not append.
	if _, err := StorageLoad(ctx, LoadSeqWrite, dir, LoadOptions{SeqMiB: 2}); err != nil {
		t.Fatal(err)
	}
	r, err := StorageLoad(ctx, LoadSeqRead, dir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Mode != LoadSeqRead || r.Bytes != 2<<20 || r.Seconds <= 0 {
		t.Errorf("seqread = %+v, want 2 MiB read", r)
	}

	for _, n := range []int{7, 3} {
		s, err := StorageLoad(ctx, LoadSmallFiles, dir, LoadOptions{Files: n})
		if err != nil {
			t.Fatal(err)
		}
		if s.Files != n || s.Bytes != int64(n)*SmallFileSize || s.Seconds <= 0 {
			t.Errorf("smallfiles %d = %+v", n, s)
		}
		ents, err := os.ReadDir(filepath.Join(dir, smallName))
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != n { // the run before is gone
			t.Errorf("smallfiles %d left %d files", n, len(ents))
		}
		for _, e := range ents {
			if info, err := e.Info(); err != nil || info.Size() != SmallFileSize {
				t.Errorf("%s: %v, %v; want %d bytes", e.Name(), info, err, SmallFileSize)
			}
		}
	}

	n, err := StorageLoad(ctx, LoadNoop, "", LoadOptions{})
	if err != nil || n != (LoadResult{Mode: LoadNoop}) {
		t.Errorf("noop = %+v, %v", n, err)
	}
}

func TestStorageLoadRefuses(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		mode, dir string
		opts      LoadOptions
		want      string
	}{
		{"fio", dir, LoadOptions{}, `unknown mode "fio"`},
		{LoadSeqWrite, dir, LoadOptions{}, "size 0 MiB"},
		{LoadSmallFiles, dir, LoadOptions{Files: -1}, "-1 files"},
		{LoadSeqWrite, filepath.Join(dir, "missing"), LoadOptions{SeqMiB: 1}, "no such file"},
		{LoadSeqRead, file, LoadOptions{}, "not a directory"},
		{LoadSeqRead, dir, LoadOptions{}, "run seqwrite first"},
	}
	for _, tt := range tests {
		_, err := StorageLoad(context.Background(), tt.mode, tt.dir, tt.opts)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("StorageLoad(%s, %s, %+v) = %v, want an error containing %q", tt.mode, tt.dir, tt.opts, err, tt.want)
		}
	}
}

func TestStorageLoadCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, mode := range []string{LoadSeqWrite, LoadSmallFiles} {
		_, err := StorageLoad(ctx, mode, t.TempDir(), LoadOptions{SeqMiB: 4, Files: 4})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: err = %v", mode, err)
		}
	}
}

func TestFindMount(t *testing.T) {
	const mountinfo = `22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard
23 22 0:5 / /dev rw,nosuid master:2 - devtmpfs devtmpfs rw,size=10k
40 22 0:40 / /data rw,nosuid,nodev - ext4 /dev/loop0 rw
41 40 0:41 / /data/sub\040dir rw - tmpfs my\040tmp rw
42 22 0:42 / /data rw,noexec - ext4 /dev/loop1 rw
43 22 0:43 / /database rw - xfs /dev/sdb rw
bad line
`
	tests := []struct{ path, want string }{
		{"/", "ext4 /dev/vda rw,relatime (rw,discard)"},
		{"/home/x", "ext4 /dev/vda rw,relatime (rw,discard)"},
		{"/dev/null", "devtmpfs devtmpfs rw,nosuid (rw,size=10k)"},
		{"/data", "ext4 /dev/loop1 rw,noexec (rw)"}, // the mount on top
		{"/data/x", "ext4 /dev/loop1 rw,noexec (rw)"},
		{"/data/sub dir/f", "tmpfs my tmp rw (rw)"},
		{"/database", "xfs /dev/sdb rw (rw)"},
		{"/datab", "ext4 /dev/vda rw,relatime (rw,discard)"},
	}
	for _, tt := range tests {
		m, ok := findMount(strings.NewReader(mountinfo), tt.path)
		if !ok || m.String() != tt.want {
			t.Errorf("findMount(%s) = %q, %v; want %q", tt.path, m.String(), ok, tt.want)
		}
	}
	if _, ok := findMount(strings.NewReader("bad\n"), "/"); ok {
		t.Error("findMount found a mount in garbage")
	}
	if got := mountOf(t.TempDir()); got == "" {
		t.Error("mountOf(temp dir) is empty; this host has /proc/self/mountinfo")
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{
		`/a\040b`:     "/a b",
		`/tab\011x`:   "/tab\tx",
		`/back\134sl`: `/back\sl`,
		`/plain`:      "/plain",
		`/short\04`:   `/short\04`,
		`/not\0a9`:    `/not\0a9`,
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseLoadOutput(t *testing.T) {
	good := "starting\n{\"mode\":\"seqwrite\",\"bytes\":1048576,\"seconds\":0.5}\n\n"
	r, err := parseLoadOutput(good, LoadSeqWrite)
	if err != nil || r.Bytes != 1<<20 || r.Seconds != 0.5 {
		t.Errorf("parseLoadOutput(good) = %+v, %v", r, err)
	}
	for _, tt := range []struct{ out, want string }{
		{good, `for mode "seqwrite", want "seqread"`},
		{"", "load output"},
		{"oops\n", "load output \"oops\""},
	} {
		if _, err := parseLoadOutput(tt.out, LoadSeqRead); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseLoadOutput(%q) = %v, want an error containing %q", tt.out, err, tt.want)
		}
	}
}

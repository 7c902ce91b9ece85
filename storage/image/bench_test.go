//go:build linux

package image

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// BenchmarkImport imports a single-layer image of 200 files of 1 MiB
// (about 200 MB, compressible about twofold) into a fresh store; the
// MB/s reported are uncompressed layer bytes per second, everything
// included (reading, decompressing, hashing, writing, syncfs, metadata).
//
//	go test -run '^$' -bench Import -benchtime 3x ./storage/image/
func BenchmarkImport(b *testing.B) {
	requireRoot(b)
	tb := noiseTar(b, 7, 200, 1<<20)
	dir := b.TempDir()
	inputs := []struct{ name, path string }{
		{"docker-save-uncompressed", writeDockerSave(b, filepath.Join(dir, "plain.tar"), map[string]v1.Image{"big:1": buildImage(b, v1.Config{}, plainLayer(tb))})},
		{"oci-layout-gzip", writeLayout(b, filepath.Join(dir, "gz"), map[string]v1.Image{"big:1": buildImage(b, v1.Config{}, gzLayer(b, tb))})},
		{"oci-layout-zstd", writeLayout(b, filepath.Join(dir, "zst"), map[string]v1.Image{"big:1": buildImage(b, v1.Config{}, zstdLayer(b, tb))})},
	}
	for _, in := range inputs {
		b.Run(in.name, func(b *testing.B) {
			b.SetBytes(int64(len(tb)))
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				root := filepath.Join(dir, "store")
				s, err := Open(root)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := s.Import(context.Background(), in.path, ImportOptions{}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				os.RemoveAll(root)
				b.StartTimer()
			}
		})
	}
}

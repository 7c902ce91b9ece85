package image

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"
)

// Exportable is an image as Export writes it: its names, configuration
// and layer directories (bottom to top), in the form unpacking left them
// (overlayfs whiteouts and opaque marks).
type Exportable struct {
	Tags         []string
	Config       Config
	OS           string
	Architecture string
	Created      time.Time
	LayerDirs    []string
}

// Exportable returns what Export needs of the image ref names.
func (s *Store) Exportable(ref string) (*Exportable, error) {
	img, err := s.Get(ref)
	if err != nil {
		return nil, err
	}
	return &Exportable{Tags: img.Tags, Config: img.Config, OS: img.OS, Architecture: img.Architecture,
		Created: img.Created, LayerDirs: img.Layers()}, nil
}

// Export writes imgs to w as one docker-save archive, which docker load
// and oak image import read. Each layer is the tar of its directory,
// written afresh (whiteouts and opaque directories turned back into
// ".wh." entries), so its digests, and the image id, differ from those of
// the archive it was imported from; the content and configuration are
// the same. Layer tars are staged under the store's tmp directory.
func (s *Store) Export(ctx context.Context, w io.Writer, imgs []*Exportable) error {
	stage, err := os.MkdirTemp(s.tmpDir(), "export-")
	if err != nil {
		return fmt.Errorf("image save: %w", err)
	}
	defer os.RemoveAll(stage)
	refs := map[name.Reference]v1.Image{}
	for i, x := range imgs {
		label := "image"
		if len(x.Tags) > 0 {
			label = x.Tags[0]
		}
		var layers []v1.Layer
		for j, dir := range x.LayerDirs {
			if err := ctx.Err(); err != nil {
				return err
			}
			p := filepath.Join(stage, fmt.Sprintf("%d-%d.tar", i, j))
			if err := writeLayerFile(p, dir); err != nil {
				return fmt.Errorf("image save %s: layer %d: %w", label, j, err)
			}
			l, err := tarball.LayerFromFile(p, tarball.WithCompressionLevel(gzip.BestSpeed))
			if err != nil {
				return fmt.Errorf("image save %s: layer %d: %w", label, j, err)
			}
			layers = append(layers, l)
		}
		osName, arch := x.OS, x.Architecture
		if osName == "" {
			osName = "linux"
		}
		if arch == "" {
			arch = runtime.GOARCH
		}
		base, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{OS: osName, Architecture: arch,
			Created: v1.Time{Time: x.Created},
			Config: v1.Config{Env: x.Config.Env, Cmd: x.Config.Cmd, Entrypoint: x.Config.Entrypoint,
				WorkingDir: x.Config.WorkingDir, User: x.Config.User},
			RootFS: v1.RootFS{Type: "layers"}})
		if err != nil {
			return fmt.Errorf("image save %s: %w", label, err)
		}
		img, err := mutate.AppendLayers(base, layers...)
		if err != nil {
			return fmt.Errorf("image save %s: %w", label, err)
		}
		if len(x.Tags) == 0 {
			d, err := img.Digest()
			if err != nil {
				return fmt.Errorf("image save %s: %w", label, err)
			}
			ref, err := name.NewDigest("untagged@" + d.String())
			if err != nil {
				return fmt.Errorf("image save %s: %w", label, err)
			}
			refs[ref] = img
		}
		for _, t := range x.Tags {
			tag, err := name.NewTag(t)
			if err != nil {
				return fmt.Errorf("image save %s: tag %q: %w", label, t, err)
			}
			refs[tag] = img
		}
	}
	if err := tarball.MultiRefWrite(refs, w); err != nil {
		return fmt.Errorf("image save: %w", err)
	}
	return nil
}

// writeLayerFile writes the tar of the layer directory dir to the file p.
func writeLayerFile(p, dir string) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	err = writeLayerTar(f, dir)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeLayerTar writes the layer directory dir as a layer tar: entries in
// lexical order with their owners, modes and times; a hard-linked file
// once and then as links; an overlayfs whiteout (a 0/0 character device)
// as a ".wh." file and an opaque directory with a ".wh..wh..opq" entry,
// as the OCI layer format has them.
func writeLayerTar(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	type inode struct{ dev, ino uint64 }
	links := map[inode]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		hdr := &tar.Header{Name: rel, Mode: int64(st.Mode & 0o7777), Uid: int(st.Uid), Gid: int(st.Gid),
			ModTime: time.Unix(st.Mtim.Unix()).UTC(), Format: tar.FormatPAX}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			hdr.Typeflag, hdr.Name = tar.TypeDir, rel+"/"
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if opaque(p) {
				return tw.WriteHeader(&tar.Header{Name: rel + "/" + whiteoutOpaque, Typeflag: tar.TypeReg,
					Mode: 0o644, ModTime: hdr.ModTime, Format: tar.FormatPAX})
			}
			return nil
		case unix.S_IFCHR:
			if st.Rdev != 0 {
				return fmt.Errorf("%s: a device node, which no layer may hold", rel)
			}
			parent, base := splitName(rel)
			return tw.WriteHeader(&tar.Header{Name: joinName(parent, whiteoutPrefix+base), Typeflag: tar.TypeReg,
				Mode: 0o644, ModTime: hdr.ModTime, Format: tar.FormatPAX})
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
			return tw.WriteHeader(hdr)
		case unix.S_IFIFO:
			hdr.Typeflag = tar.TypeFifo
			return tw.WriteHeader(hdr)
		case unix.S_IFREG:
			if st.Nlink > 1 {
				k := inode{st.Dev, st.Ino}
				if first, ok := links[k]; ok {
					hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
					return tw.WriteHeader(hdr)
				}
				links[k] = rel
			}
			hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			f, err := os.Open(p)
			if err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
			defer f.Close()
			if _, err := io.CopyN(tw, f, st.Size); err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
			return nil
		}
		return fmt.Errorf("%s: unexpected file type %#o", rel, st.Mode&unix.S_IFMT)
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// opaque reports whether the directory p is marked opaque for overlayfs.
func opaque(p string) bool {
	var buf [8]byte
	n, err := unix.Lgetxattr(p, opaqueXattr, buf[:])
	return err == nil && strings.TrimRight(string(buf[:n]), "\x00") == "y"
}

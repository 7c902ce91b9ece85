package engine

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/oak-engine/oak/sandbox"
	"github.com/oak-engine/oak/storage/image"
)

// DemoImage is the image name that stands for Oak's built-in demo root file
// system: a static busybox, made locally from the host's busybox-static.
const DemoImage = "demo"

// BusyboxPath is where Debian's busybox-static installs its binary.
const BusyboxPath = "/bin/busybox"

// Resolved is an image reference turned into what a container is built from.
type Resolved struct {
	Ref    string       // as the request named it
	ID     string       // the stored image's id; "" for a directory
	Layers []string     // host directories, top layer first
	Config image.Config // the image's defaults (zero for a directory)
}

// ResolveImage turns an image reference into layers: "demo" is the
// built-in image (made on first use), an existing directory is a root file
// system of one layer (checked with sandbox.CheckRootFS), and anything else
// names an image in the store (name[:tag], id or id prefix).
func (e *Engine) ResolveImage(ref string) (*Resolved, error) {
	switch {
	case ref == "":
		return nil, fmt.Errorf("run: no image given")
	case ref == DemoImage:
		dir := filepath.Join(e.Root, "images", DemoImage)
		if _, err := os.Stat(dir); err != nil {
			if err := WriteDemoRootFS(dir); err != nil {
				if _, serr := os.Stat(dir); serr != nil { // else a concurrent oak made it first
					return nil, err
				}
			}
		}
		return &Resolved{Ref: ref, Layers: []string{dir}}, nil
	}
	if fi, err := os.Stat(ref); err == nil && fi.IsDir() {
		abs, err := filepath.Abs(ref)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", ref, err)
		}
		if err := sandbox.CheckRootFS(abs); err != nil {
			return nil, err
		}
		return &Resolved{Ref: ref, Layers: []string{abs}}, nil
	}
	store, err := e.Images()
	if err != nil {
		return nil, err
	}
	img, err := store.Get(ref)
	if err != nil {
		if strings.ContainsRune(ref, os.PathSeparator) || strings.HasPrefix(ref, ".") {
			return nil, fmt.Errorf("image %s: no such directory, and %w", ref, err)
		}
		return nil, err
	}
	layers := img.Layers()
	slices.Reverse(layers)
	return &Resolved{Ref: ref, ID: img.ID, Layers: layers, Config: img.Config}, nil
}

// metaDB is the one crash-safe database of the state root's image and
// volume records (bbolt, each store in its own buckets). Container records
// are the files under containers/, replaced atomically and reconciled
// with the host on every command.
func (e *Engine) metaDB() string { return filepath.Join(e.Root, "oak.db") }

// Images opens the state root's image store.
func (e *Engine) Images() (*image.Store, error) {
	return image.OpenDB(filepath.Join(e.Root, "images"), e.metaDB())
}

// WriteDemoRootFS creates the demo image at dir: /bin/busybox with a link
// per applet, the mount points Oak and runc need, and a minimal /etc. It is
// built beside dir and renamed into place, so dir is whole or absent.
func WriteDemoRootFS(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("demo image %s: already exists", dir)
	}
	if err := checkStatic(BusyboxPath); err != nil {
		return fmt.Errorf("demo image: %w (install Debian's busybox-static)", err)
	}
	out, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		return fmt.Errorf("demo image: %s --list: %w", BusyboxPath, err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("demo image %s: %w", dir, unwrapPath(err))
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".demo-*")
	if err != nil {
		return fmt.Errorf("demo image %s: %w", dir, unwrapPath(err))
	}
	if err := populateDemo(tmp, strings.Fields(string(out))); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("demo image %s: %w", dir, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("demo image %s: %w", dir, unwrapPath(err))
	}
	return nil
}

func populateDemo(root string, applets []string) error {
	for _, d := range []string{"bin", "proc", "dev", "tmp", "sys", "etc", "root", "home", "var", "usr/bin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777); err != nil {
		return err
	}
	if err := copyFile(BusyboxPath, filepath.Join(root, "bin/busybox"), 0o755); err != nil {
		return err
	}
	for _, a := range applets {
		if a == "busybox" || strings.Contains(a, "/") {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil && !os.IsExist(err) {
			return err
		}
	}
	files := map[string]string{
		"etc/passwd":     "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":      "root:x:0:\nnogroup:x:65534:\n",
		"etc/hostname":   "oak\n",
		"etc/os-release": "NAME=\"Oak demo\"\nID=oak-demo\nPRETTY_NAME=\"Oak demo image (busybox)\"\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// checkStatic refuses a binary that needs a dynamic loader: the demo image
// has no libc.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s: not statically linked", path)
		}
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return errors.Join(err, os.Remove(dst))
	}
	return nil
}

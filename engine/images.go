package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/oak-engine/oak/sandbox/nsinit"

	"github.com/oak-engine/oak/storage/image"
)

// Image archives and registry data are untrusted: they are parsed and
// unpacked by the storage service, a separate oak process confined before
// its Go runtime starts (sandbox/nsinit/service.c) to a root holding only
// the state root and its one input, with just the capabilities that
// writing layers with their owners needs. It reports the stored images as
// JSON on its standard output; its own error line goes to stderr.

// storageCmd is the hidden command (under oak image) the storage service runs as.
const storageCmd = "_storage"

// StoredImage is what the storage service reports of an image it stored.
type StoredImage struct {
	ID   string   `json:"id"`
	Tags []string `json:"tags"`
}

// ShortID is the 12-character prefix of the image id's hex.
func (s StoredImage) ShortID() string {
	_, hex, _ := strings.Cut(s.ID, ":")
	return ShortID(hex)
}

// ErrReported is returned when a child oak process has already printed
// the error; Code is its exit status.
type ErrReported struct{ Code int }

func (e *ErrReported) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// ImportImage imports an archive or layout (a path on the host) into the
// state root's store, in the storage service.
// The storage service writes its progress bar (when progress is a
// terminal and quiet is not set), warnings and error line to progress.
func (e *Engine) ImportImage(ctx context.Context, path, tag string, quiet bool, progress io.Writer) ([]StoredImage, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("image import %s: %w", path, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("image import %s: %w", path, unwrapPath(err))
	}
	if err := importable(abs, fi); err != nil {
		return nil, fmt.Errorf("image import %s: %w", path, err)
	}
	return e.storageService(ctx, abs, progress, "import", "--quiet="+strconv.FormatBool(quiet), "--tag", tag, path)
}

// importable refuses, before the storage service is started, an input it
// cannot read: anything but a regular file (an archive) or a directory
// holding an OCI image layout. The service sees its input through a
// read-only, nodev bind mount, where a device cannot be opened and a pipe
// cannot be bound at all.
func importable(path string, fi os.FileInfo) error {
	m := fi.Mode()
	switch {
	case m.IsRegular():
		return nil
	case m.IsDir():
		if _, err := os.Stat(filepath.Join(path, "oci-layout")); err != nil {
			return errors.New("a directory must be an OCI image layout (it has no oci-layout file)")
		}
		return nil
	case m&os.ModeCharDevice != 0:
		return errors.New("is a character device, not an archive file or an OCI layout directory")
	case m&os.ModeDevice != 0:
		return errors.New("is a block device, not an archive file or an OCI layout directory")
	case m&os.ModeNamedPipe != 0:
		return errors.New("is a pipe, not an archive file or an OCI layout directory; save the archive to a file first")
	case m&os.ModeSocket != 0:
		return errors.New("is a socket, not an archive file or an OCI layout directory")
	}
	return fmt.Errorf("is not an archive file or an OCI layout directory (mode %v)", m)
}

// PullImage pulls ref from its registry into the store, in the storage
// service; progress is as for ImportImage.
func (e *Engine) PullImage(ctx context.Context, ref string, insecure, quiet bool, progress io.Writer) ([]StoredImage, error) {
	return e.storageService(ctx, "", progress, "pull", "--quiet="+strconv.FormatBool(quiet), "--insecure="+strconv.FormatBool(insecure), ref)
}

func (e *Engine) storageService(ctx context.Context, input string, progress io.Writer, args ...string) ([]StoredImage, error) {
	cmd := exec.CommandContext(ctx, "/proc/self/exe", append([]string{"--root", e.Root, "image", storageCmd}, args...)...)
	cmd.Env = []string{nsinit.ServiceEnvVar + "=storage", "_OAK_STORAGE_ROOT=" + e.Root, "_OAK_STORAGE_INPUT=" + input}
	cmd.Stderr = progress
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() > 0 {
		return nil, &ErrReported{Code: ee.ExitCode()}
	}
	if err != nil {
		return nil, fmt.Errorf("storage service: %w", err)
	}
	var imgs []StoredImage
	if err := json.Unmarshal(out, &imgs); err != nil {
		return nil, fmt.Errorf("storage service: bad report: %w", err)
	}
	return imgs, nil
}

// serviceInput is where the storage service sees its one input (see
// sandbox/nsinit/service.c).
const serviceInput = "/input"

// renamePath rewrites msg so that the path inner, wherever it appears as
// a whole path or as the leading part of one ("/input", "/input/blobs/x"),
// reads outer instead. Other paths that merely contain it are left alone.
func renamePath(msg, inner, outer string) string {
	var b strings.Builder
	for {
		i := strings.Index(msg, inner)
		if i < 0 {
			b.WriteString(msg)
			return b.String()
		}
		end := i + len(inner)
		b.WriteString(msg[:i])
		if (i == 0 || !pathByte(msg[i-1])) && (end == len(msg) || msg[end] == '/' || !pathByte(msg[end])) {
			b.WriteString(outer)
		} else {
			b.WriteString(inner)
		}
		msg = msg[end:]
	}
}

// pathByte reports whether c can continue a path name in a message.
func pathByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '/' || c == '.' || c == '_' || c == '-'
}

// RunStorageService is the body of `oak image _storage import|pull REF`:
// it runs confined, with the input (if any) at /input (REF is then its
// host path, for messages), and prints the stored images as JSON. Its
// progress bar goes to stderr unless quiet (and only to a terminal).
func (e *Engine) RunStorageService(ctx context.Context, op, tag, ref string, insecure, quiet bool, stderr io.Writer) error {
	store, err := e.Images()
	if err != nil {
		return err
	}
	store.Warnings = stderr
	var progress io.Writer
	if !quiet {
		progress = stderr
	}
	var imgs []*image.Image
	switch op {
	case "import":
		imgs, err = store.Import(ctx, serviceInput, image.ImportOptions{Tag: tag, Progress: progress, Name: ref})
	case "pull":
		var img *image.Image
		img, err = store.Pull(ctx, ref, image.PullOptions{Insecure: insecure, Progress: progress})
		imgs = []*image.Image{img}
	default:
		err = fmt.Errorf("storage service: unknown operation %q", op)
	}
	if err != nil {
		// The service sees its input at /input; the person named ref. (The
		// state root is bound at its own path: its names need no change.)
		return &reportedError{msg: renamePath(err.Error(), serviceInput, ref), cause: err}
	}
	out := []StoredImage{}
	for _, img := range imgs {
		out = append(out, StoredImage{ID: img.ID, Tags: img.Tags})
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

// RemoveImage removes an image unless a container that has not been
// removed was made from it (its layers are that container's root).
func (e *Engine) RemoveImage(ref string) error {
	store, err := e.Images()
	if err != nil {
		return err
	}
	img, err := store.Get(ref)
	if err != nil {
		return err
	}
	unlock, err := e.lock()
	if err != nil {
		return err
	}
	defer unlock()
	cs, err := e.reconcile()
	if err != nil {
		return err
	}
	for _, c := range cs {
		var spec Spec
		if readJSON(e.specPath(c.ID), &spec) == nil && spec.ImageID == img.ID {
			return fmt.Errorf("image rm %s: used by container %s (%s); remove it first", ref, c.Name, c.Status)
		}
	}
	return store.Remove(ref)
}

// SaveImages writes the images refs name ("demo" included) to w as one
// docker-save archive, which docker load and oak image import read. The
// layers are read from the store, which verified them when they came in,
// so this runs in the engine's own process.
func (e *Engine) SaveImages(ctx context.Context, w io.Writer, refs []string) error {
	store, err := e.Images()
	if err != nil {
		return err
	}
	var xs []*image.Exportable
	for _, ref := range refs {
		if ref == DemoImage {
			info, err := e.demoInfo()
			if err != nil {
				return err
			}
			xs = append(xs, &image.Exportable{Tags: []string{"oak.local/demo:latest"}, Created: info.Created,
				Config: image.Config{Cmd: info.Config.Cmd}, LayerDirs: info.RootFS.Layers})
			continue
		}
		x, err := store.Exportable(ref)
		if err != nil {
			return err
		}
		xs = append(xs, x)
	}
	return store.Export(ctx, w, xs)
}

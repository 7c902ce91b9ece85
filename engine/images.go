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
func (e *Engine) ImportImage(ctx context.Context, path, tag string, progress io.Writer) ([]StoredImage, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("image import %s: %w", path, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("image import %s: %w", path, unwrapPath(err))
	}
	return e.storageService(ctx, abs, progress, "import", "--tag", tag, abs)
}

// PullImage pulls ref from its registry into the store, in the storage service.
func (e *Engine) PullImage(ctx context.Context, ref string, insecure bool, progress io.Writer) ([]StoredImage, error) {
	return e.storageService(ctx, "", progress, "pull", "--insecure="+strconv.FormatBool(insecure), ref)
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

// RunStorageService is the body of `oak image _storage import|pull REF`:
// it runs confined, with the input (if any) at /input (REF is then its
// host path, for messages), and prints the stored images as JSON.
func (e *Engine) RunStorageService(ctx context.Context, op, tag, ref string, insecure bool, progress io.Writer) error {
	store, err := e.Images()
	if err != nil {
		return err
	}
	var imgs []*image.Image
	switch op {
	case "import":
		imgs, err = store.Import(ctx, "/input", image.ImportOptions{Tag: tag, Progress: progress})
		if err != nil {
			// The service sees its input at /input; the person named ref.
			err = errors.New(strings.Replace(err.Error(), "/input", ref, 1))
		}
	case "pull":
		var img *image.Image
		img, err = store.Pull(ctx, ref, image.PullOptions{Insecure: insecure, Progress: progress})
		imgs = []*image.Image{img}
	default:
		err = fmt.Errorf("storage service: unknown operation %q", op)
	}
	if err != nil {
		return err
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

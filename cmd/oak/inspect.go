package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/oak-engine/oak/api"
	"github.com/oak-engine/oak/engine"
	"github.com/oak-engine/oak/storage/image"
	"github.com/oak-engine/oak/storage/volume"
)

func newInspectCmd(stateRoot func() string) *cobra.Command {
	var format, kind string
	cmd := &cobra.Command{
		Use:   "inspect [--type container|image|volume] [-f FORMAT] NAME|ID...",
		Short: "Show containers, images or volumes as JSON",
		Long: `Show containers, images or volumes as a JSON array, or each through a Go
template, e.g. --format '{{.State.Status}}' or '{{json .Config}}'. A name is
looked up as a container, then an image, then a volume, as docker does;
--type looks for one kind only. The JSON keys are the template's fields.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return inspectObjects(stateRoot, kind, format, args)
		},
		ValidArgsFunction: completeObjects(stateRoot),
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "json (default) or a Go template such as {{.State.Status}}")
	cmd.Flags().StringVar(&kind, "type", "", "look only for a container, image or volume")
	return cmd
}

// inspectObjects prints the objects refs name, of kind ("" for any), in
// format (see printInspected).
func inspectObjects(stateRoot func() string, kind, spec string, refs []string) error {
	var e inspector // the stores: root's in-process; a tenant's through the daemon
	var err error
	switch {
	case !asTenant():
		if e, err = engine.New(stateRoot()); err != nil {
			return err
		}
	case kind != engine.KindContainer:
		c, err := openTenantClient(stateRoot())
		if err != nil {
			return err
		}
		e = tenantStores{c}
	}
	var b backend
	if kind == "" || kind == engine.KindContainer {
		if b, err = openBackend(stateRoot()); err != nil {
			return err
		}
	}
	return printInspected(spec, refs, func(ref string) (any, error) { return inspectOne(b, e, ref, kind) })
}

// printInspected prints what find returns for each of refs, as a JSON
// array or each through the Go template spec. Like docker, it prints what
// it found and then fails, exit 1, if any ref found nothing, saying why.
func printInspected(spec string, refs []string, find func(ref string) (any, error)) error {
	var f *format
	if spec != "" {
		var err error
		if f, err = parseFormat(spec, ""); err != nil {
			return err
		}
		f.table = false // a table means nothing for single objects
	}
	objs := []any{}
	var errs []error
	for _, ref := range refs {
		o, err := find(ref)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		objs = append(objs, o)
	}
	if len(objs) > 0 || f == nil {
		if err := f.objects(os.Stdout, objs); err != nil {
			return err
		}
	}
	for _, err := range errs {
		fmt.Fprintln(os.Stderr, "oak: "+oneLine(err.Error()))
	}
	if len(errs) > 0 {
		return &exitError{code: exitFailed}
	}
	return nil
}

// inspectOne finds ref: a container through b (the daemon), else, unless
// kind asks for a container only, an image or a volume in the stores.
func inspectOne(b backend, e inspector, ref, kind string) (any, error) {
	if b != nil {
		c, err := b.InspectContainer(ref)
		if err == nil || kind == engine.KindContainer || !errors.Is(err, engine.ErrNoSuchContainer) {
			return c, err
		}
	}
	if e == nil {
		return nil, fmt.Errorf("%w: %s", engine.ErrNoSuchContainer, ref)
	}
	return e.Inspect(ref, kind)
}

// inspector finds an object of a kind ("" for any) by ref, as
// engine.Inspect does.
type inspector interface {
	Inspect(ref, kind string) (any, error)
}

// tenantStores is a tenant's view of the image and volume stores,
// through the daemon: the host's images, and its own volumes only
// (another tenant's is not found, as one that does not exist).
type tenantStores struct{ c *api.Client }

func (t tenantStores) Inspect(ref, kind string) (any, error) {
	ctx := context.Background()
	switch kind {
	case engine.KindImage:
		return t.c.Image(ctx, ref)
	case engine.KindVolume:
		return t.c.Volume(ctx, ref)
	case "":
		// Containers were asked first (through the backend).
		if img, err := t.c.Image(ctx, ref); err == nil || !errors.Is(err, image.ErrNotFound) {
			return img, err
		}
		if volume.ValidName(ref) {
			if v, err := t.c.Volume(ctx, ref); err == nil || !errors.Is(err, volume.ErrNotFound) {
				return v, err
			}
		}
		return nil, fmt.Errorf("%w: %s", engine.ErrNoSuchObject, ref)
	}
	return nil, fmt.Errorf("invalid --type %q: want container, image or volume", kind)
}

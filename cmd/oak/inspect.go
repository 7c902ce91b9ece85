package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/oak-engine/oak/engine"
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
	var e *engine.Engine // the stores, root's alone: a tenant inspects containers only
	var err error
	if !asTenant() {
		if e, err = engine.New(stateRoot()); err != nil {
			return err
		}
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
func inspectOne(b backend, e *engine.Engine, ref, kind string) (any, error) {
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

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/oak-engine/oak/engine"
)

func newImageCmd(stateRoot func() string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Manage images: import docker-save/OCI archives, pull from registries",
	}
	imp := newImportCmd(stateRoot, "import [--tag NAME:TAG] FILE|DIR")
	rm := newRmiCmd(stateRoot, "rm IMAGE...")
	rm.Aliases = []string{"remove"}
	var inspectFormat string
	inspect := &cobra.Command{
		Use:   "inspect IMAGE...",
		Short: "Show images as JSON",
		Long:  "Show images as a JSON array, or each through a Go template (--format '{{.Size}}').",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return inspectObjects(stateRoot, engine.KindImage, inspectFormat, args)
		},
		ValidArgsFunction: completeImages(false, stateRoot),
	}
	inspect.Flags().StringVarP(&inspectFormat, "format", "f", "", "json (default) or a Go template such as {{.Id}}")
	tagCmd := &cobra.Command{
		Use:   "tag IMAGE NAME[:TAG]",
		Short: "Give an image another name (taking it from any image that had it)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := imagesAreRoots("image tag"); err != nil {
				return err
			}
			e, err := engine.New(stateRoot())
			if err != nil {
				return err
			}
			return e.TagImage(args[0], args[1])
		},
		ValidArgsFunction: completeImages(true, stateRoot),
	}
	prune := &cobra.Command{
		Use:   "prune",
		Short: "Remove the images no container uses, and the layers no image uses",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := imagesAreRoots("image prune"); err != nil {
				return err
			}
			e, err := engine.New(stateRoot())
			if err != nil {
				return err
			}
			removed, err := e.PruneImages()
			for _, img := range removed {
				fmt.Printf("%s %s\n", img.ShortID(), strings.Join(img.Tags, " "))
			}
			return err
		},
	}
	var svcTag string
	var svcInsecure, svcQuiet bool
	svc := &cobra.Command{
		Use:    "_storage import|pull [REF]",
		Hidden: true,
		Args:   cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := engine.New(stateRoot())
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			ref := ""
			if len(args) == 2 {
				ref = args[1]
			}
			return e.RunStorageService(ctx, args[0], svcTag, ref, svcInsecure, svcQuiet, os.Stderr)
		},
	}
	svc.Flags().StringVar(&svcTag, "tag", "", "")
	svc.Flags().BoolVar(&svcInsecure, "insecure", false, "")
	svc.Flags().BoolVar(&svcQuiet, "quiet", false, "")
	cmd.AddCommand(imp, newPullCmd(stateRoot), newImagesCmd(stateRoot, "ls"), rm, inspect, tagCmd, prune,
		newSaveCmd(stateRoot))
	cmd.AddCommand(svc)
	return cmd
}

// newImportCmd is oak image import, and (with -i) oak load.
func newImportCmd(stateRoot func() string, use string) *cobra.Command {
	var tag, input string
	var quiet bool
	load := strings.HasPrefix(use, "load")
	cmd := &cobra.Command{
		Use:   use,
		Short: "Import a docker-save archive, an OCI image layout directory or an OCI archive (tar, gzip, zstd)",
		Long: `Import a docker-save archive, an OCI image layout directory or an OCI archive
(tar, gzip, zstd). On a terminal, a progress line shows the bytes unpacked of
the total, the percentage and the rate; -q, or a standard error that is not
a terminal, leaves it out.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := input
			if !load {
				path = args[0]
			}
			if err := imagesAreRoots(strings.Fields(use)[0]); err != nil {
				return err
			}
			e, err := engine.New(stateRoot())
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			imgs, err := e.ImportImage(ctx, path, tag, quiet, os.Stderr)
			return printStored(imgs, err)
		},
	}
	if load {
		cmd.Short = "Load images from a docker-save or OCI archive (oak image import)"
		cmd.Args = cobra.NoArgs
		cmd.Flags().StringVarP(&input, "input", "i", "", "the archive or OCI layout to load (required)")
		cmd.MarkFlagRequired("input")
	}
	cmd.Flags().StringVar(&tag, "tag", "", "tag the imported image NAME[:TAG]")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "show no progress")
	return cmd
}

// newPullCmd is oak image pull and oak pull.
func newPullCmd(stateRoot func() string) *cobra.Command {
	var insecure, quiet bool
	pull := &cobra.Command{
		Use:   "pull [--insecure] REF",
		Short: "Pull an image from an OCI registry (plain HTTP only for loopback, with --insecure)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := imagesAreRoots("pull"); err != nil {
				return err
			}
			e, err := engine.New(stateRoot())
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			imgs, err := e.PullImage(ctx, args[0], insecure, quiet, os.Stderr)
			return printStored(imgs, err)
		},
	}
	pull.Flags().BoolVar(&insecure, "insecure", false, "allow plain HTTP to a loopback registry")
	pull.Flags().BoolVarP(&quiet, "quiet", "q", false, "show no progress")
	return pull
}

// newRmiCmd is oak image rm and oak rmi.
func newRmiCmd(stateRoot func() string, use string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: "Remove images (refused while a container uses one)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if asTenant() {
				// The daemon refuses it (403): the catalogue is root's.
				c, err := openTenantClient(stateRoot())
				if err != nil {
					return err
				}
				return eachRef(args, func(ref string) error { return c.RemoveImage(context.Background(), ref) })
			}
			e, err := engine.New(stateRoot())
			if err != nil {
				return err
			}
			return eachRef(args, e.RemoveImage)
		},
		ValidArgsFunction: completeImages(false, stateRoot),
	}
}

// imageRow is one row of oak image ls, one per name, after docker's: its
// JSON keys and template fields.
type imageRow struct {
	ID           string // short unless --no-trunc; "-" for the demo image, which has none
	Repository   string // "<none>" for an untagged image
	Tag          string
	Digest       string
	CreatedAt    string
	CreatedSince string
	Size         string // human, e.g. "5 MiB"
	Layers       int
}

const imagesTable = `{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}`

func imageRows(imgs []*engine.ImageInfo, noTrunc bool) []imageRow {
	rows := []imageRow{}
	for _, img := range imgs {
		r := imageRow{ID: img.Id, CreatedAt: img.Created.Local().Format("2006-01-02 15:04:05 -0700 MST"),
			CreatedSince: since(img.Created), Size: sizeText(img.Size), Layers: len(img.RootFS.Layers), Digest: "<none>"}
		if !noTrunc {
			_, hex, _ := strings.Cut(img.Id, ":")
			r.ID = engine.ShortID(hex)
		}
		if img.Id == "" {
			r.ID = "-"
		}
		if len(img.RepoDigests) > 0 {
			_, r.Digest, _ = strings.Cut(img.RepoDigests[0], "@")
		}
		if len(img.RepoTags) == 0 {
			r.Repository, r.Tag = "<none>", "<none>"
			rows = append(rows, r)
		}
		for _, t := range img.RepoTags {
			r.Repository, r.Tag = t, ""
			if i := strings.LastIndexByte(t, ':'); i > strings.LastIndexByte(t, '/') {
				r.Repository, r.Tag = t[:i], t[i+1:]
			}
			if r.Tag == "" {
				r.Tag = "-"
			}
			// As docker lists them: Docker Hub's names without their
			// registry and library/ parts.
			r.Repository = strings.TrimPrefix(strings.TrimPrefix(r.Repository, "docker.io/"), "library/")
			rows = append(rows, r)
		}
	}
	return rows
}

// newImagesCmd is oak image ls and oak images.
func newImagesCmd(stateRoot func() string, use string) *cobra.Command {
	var format string
	var quiet, noTrunc bool
	cmd := &cobra.Command{
		Use:   use,
		Short: "List images, the built-in demo image included",
		Long: `List images, one row per name, the built-in demo image included.

--format takes table, json (one object a line), a Go template such as
'{{.Repository}}:{{.Tag}} {{.Size}}', or "table" and a template. The
fields are the JSON keys.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFormat(format, imagesTable)
			if err != nil {
				return err
			}
			imgs, err := listImages(stateRoot())
			if err != nil {
				return err
			}
			if quiet {
				seen := map[string]bool{}
				for _, r := range imageRows(imgs, noTrunc) {
					if r.ID != "-" && !seen[r.ID] {
						seen[r.ID] = true
						fmt.Println(r.ID)
					}
				}
				return nil
			}
			return f.rows(os.Stdout, imageRows(imgs, noTrunc),
				map[string]string{"ID": "IMAGE ID", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT"})
		},
	}
	if use == "ls" {
		cmd.Aliases = []string{"list"}
	}
	cmd.Flags().StringVar(&format, "format", "", "table (default), json, or a Go template (table TEMPLATE for a table)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only image ids")
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "print whole image ids")
	return cmd
}

// newSaveCmd is oak image save and oak save.
func newSaveCmd(stateRoot func() string) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "save [-o FILE] IMAGE...",
		Short: "Write images to a docker-save archive (docker load and oak load read it)",
		Long: `Write images to one docker-save archive, on standard output or to -o FILE
(written beside it and renamed into place when complete). The layers are
re-made from the stored ones, so their digests and the image id differ from
the archive they came from; content and configuration are the same.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if asTenant() {
				return errors.New("save: not open to tenants yet (the daemon serves no image archives); the host's administrator saves images")
			}
			e, err := engine.New(stateRoot())
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if output == "" {
				if term.IsTerminal(int(os.Stdout.Fd())) {
					return fmt.Errorf("save: refusing to write an archive to a terminal; use -o FILE or redirect")
				}
				return e.SaveImages(ctx, os.Stdout, args)
			}
			tmp, err := os.CreateTemp(filepath.Dir(output), ".oak-save-*")
			if err != nil {
				return fmt.Errorf("save -o %s: %w", output, err)
			}
			err = e.SaveImages(ctx, tmp, args)
			if cerr := tmp.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				err = os.Rename(tmp.Name(), output)
			}
			if err != nil {
				os.Remove(tmp.Name())
			}
			return err
		},
		ValidArgsFunction: completeImages(false, stateRoot),
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to FILE instead of standard output")
	return cmd
}

// printStored prints one line per image the storage service stored, then
// reports its error, if any.
func printStored(imgs []engine.StoredImage, err error) error {
	for _, img := range imgs {
		fmt.Printf("%s %s\n", img.ShortID(), strings.Join(img.Tags, " "))
	}
	return reported(err)
}

// reported turns an error a child oak already printed into a bare exit
// status: oak's own failure, whatever status the child used (its
// confinement step exits 126, which would read as "not executable").
func reported(err error) error {
	var r *engine.ErrReported
	if errors.As(err, &r) {
		return &exitError{code: exitEngine}
	}
	return err
}

func age(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}

// imagesAreRoots refuses verb to a tenant: images are the host's
// catalogue, which every tenant runs and only root adds to, tags or
// prunes. A tenant's import could not be charged to its quota: layers
// are shared by every image that has them, and the store is not a
// factory's.
func imagesAreRoots(verb string) error {
	if !asTenant() {
		return nil
	}
	return fmt.Errorf("%s: images are the host's, shared by every tenant: only root adds, tags or removes them; a tenant lists (oak images) and runs them", verb)
}

// listImages is the stored images: from the store in this process for
// root, through the daemon for a tenant.
func listImages(root string) ([]*engine.ImageInfo, error) {
	if asTenant() {
		c, err := openTenantClient(root)
		if err != nil {
			return nil, err
		}
		return c.Images(context.Background())
	}
	e, err := engine.New(root)
	if err != nil {
		return nil, err
	}
	return e.ListImages()
}

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/oak-engine/oak/engine"
	"github.com/oak-engine/oak/storage/image"
)

func newImageCmd(stateRoot func() string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Manage images: import docker-save/OCI archives, pull from registries",
	}
	var tag string
	imp := &cobra.Command{
		Use:   "import [--tag NAME:TAG] FILE|DIR",
		Short: "Import a docker-save archive, an OCI image layout directory or an OCI archive (tar, gzip, zstd)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := engine.New(stateRoot())
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			imgs, err := e.ImportImage(ctx, args[0], tag, os.Stderr)
			return printStored(imgs, err)
		},
	}
	imp.Flags().StringVar(&tag, "tag", "", "tag the imported image NAME[:TAG]")
	var insecure bool
	pull := &cobra.Command{
		Use:   "pull [--insecure] REF",
		Short: "Pull an image from an OCI registry (plain HTTP only for loopback, with --insecure)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := engine.New(stateRoot())
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			imgs, err := e.PullImage(ctx, args[0], insecure, os.Stderr)
			return printStored(imgs, err)
		},
	}
	pull.Flags().BoolVar(&insecure, "insecure", false, "allow plain HTTP to a loopback registry")
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := engine.New(stateRoot())
			if err != nil {
				return err
			}
			store, err := e.Images()
			if err != nil {
				return err
			}
			imgs, err := store.List()
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 3, ' ', 0)
			fmt.Fprintln(w, "REPOSITORY:TAG\tIMAGE ID\tCREATED\tSIZE\tLAYERS")
			for _, img := range imgs {
				name := "<none>"
				if len(img.Tags) > 0 {
					name = strings.Join(img.Tags, ",")
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\n", name, img.ShortID(), age(img.Created), humanBytes(img.Size), len(img.DiffIDs))
			}
			return w.Flush()
		},
	}
	rm := &cobra.Command{
		Use:   "rm IMAGE...",
		Short: "Remove images (refused while a container uses one)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := engine.New(stateRoot())
			if err != nil {
				return err
			}
			return eachRef(args, e.RemoveImage)
		},
	}
	inspect := &cobra.Command{
		Use:   "inspect IMAGE...",
		Short: "Show images as JSON",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := engine.New(stateRoot())
			if err != nil {
				return err
			}
			store, err := e.Images()
			if err != nil {
				return err
			}
			var imgs []*image.Image
			for _, ref := range args {
				img, err := store.Get(ref)
				if err != nil {
					return err
				}
				imgs = append(imgs, img)
			}
			return printJSON(imgs)
		},
	}
	tagCmd := &cobra.Command{
		Use:   "tag IMAGE NAME[:TAG]",
		Short: "Give an image another name (taking it from any image that had it)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := engine.New(stateRoot())
			if err != nil {
				return err
			}
			store, err := e.Images()
			if err != nil {
				return err
			}
			return store.Tag(args[0], args[1])
		},
	}
	prune := &cobra.Command{
		Use:   "prune",
		Short: "Remove the images no container uses, and the layers no image uses",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
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
	var svcInsecure bool
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
			return e.RunStorageService(ctx, args[0], svcTag, ref, svcInsecure, os.Stderr)
		},
	}
	svc.Flags().StringVar(&svcTag, "tag", "", "")
	svc.Flags().BoolVar(&svcInsecure, "insecure", false, "")
	cmd.AddCommand(imp, pull, ls, rm, inspect, tagCmd, prune)
	cmd.AddCommand(svc)
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

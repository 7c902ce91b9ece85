package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/oak-engine/oak/api"
	"github.com/oak-engine/oak/engine"
)

// volumeRow is one row of oak volume ls: its JSON keys and template
// fields.
type volumeRow struct {
	Name      string
	Size      string // human, e.g. "1 GiB"
	Allocated string
	Sparse    bool
	CreatedAt string
	Attached  string // the loop device, "MISSING IMAGE" for a broken volume, or ""
}

const volumeTable = "{{.Name}}\t{{.Size}}\t{{.Allocated}}\t{{.CreatedAt}}\t{{.Attached}}"

func volumeRows(vs []*engine.VolumeInfo) []volumeRow {
	rows := make([]volumeRow, 0, len(vs))
	for _, v := range vs {
		state := v.Device
		if v.Missing {
			state = "MISSING IMAGE"
		}
		rows = append(rows, volumeRow{Name: v.Name, Size: sizeText(v.Size), Allocated: sizeText(v.Allocated),
			Sparse: v.Sparse, CreatedAt: since(v.CreatedAt), Attached: state})
	}
	return rows
}

func newVolumeCmd(stateRoot func() string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "volume",
		Short: "Manage volumes: file systems with an exact size, granted to containers with -v",
	}
	var size, owner, factory string
	var sparse bool
	create := &cobra.Command{
		Use:   "create --size SIZE [--sparse] [--owner UID:GID] NAME",
		Short: "Create a volume",
		Long: `Create a volume: an ext4 file system of exactly --size bytes, the most
a container can store in it. All of it is reserved on the host at once, so
the volume never finds the host full; creation is refused if it does not fit.

--sparse skips the reservation: the volume takes host space only as it is
written, so volumes can promise more than the host has. The risk: if the
host file system fills, writes inside the volume fail below its file system,
ext4 aborts its journal and the volume turns read-only until repaired with
e2fsck, and data not yet synced is lost.

A new volume is filled, the first time a container mounts it, from what the
container's image has at that path (owner, mode, contents), as docker does.
--owner UID:GID gives its root directory to those ids (a container's, 0 to
65535) instead, and such a volume is never filled from an image.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if size == "" {
				return fmt.Errorf("volume create %s: --size is required (e.g. --size 1g)", args[0])
			}
			n, err := engine.ParseBytes("--size", size)
			if err != nil {
				return err
			}
			o := engine.VolumeOptions{Sparse: sparse}
			if owner != "" {
				var uid, gid uint32
				if _, err := fmt.Sscanf(owner, "%d:%d", &uid, &gid); err != nil || fmt.Sprintf("%d:%d", uid, gid) != owner {
					return fmt.Errorf("invalid --owner %q: want UID:GID, numbers of the container's ids", owner)
				}
				o.Owner = &engine.VolumeOwner{UID: uid, GID: gid}
			}
			if asTenant() {
				return tenantCreateVolume(stateRoot(), args[0], n, o, factory)
			}
			e, err := engine.New(stateRoot())
			if err != nil {
				return err
			}
			create := e.CreateVolume
			if factory != "" {
				create = func(name string, n int64, o engine.VolumeOptions) (*engine.VolumeInfo, error) {
					return e.CreateFactoryVolume(factory, name, n, o)
				}
			}
			v, err := create(args[0], n, o)
			if err != nil {
				return err
			}
			fmt.Println(v.Name)
			return nil
		},
	}
	create.Flags().StringVar(&size, "size", "", "size of the volume's file system, e.g. 1g (its exact quota)")
	create.Flags().StringVar(&owner, "owner", "", "give the volume's root directory to UID:GID (container ids) instead of filling it from an image")
	create.Flags().StringVar(&factory, "factory", "", "reserve its size of this factory's --disk quota; oak factory rm -f removes it")
	create.Flags().BoolVar(&sparse, "sparse", false, "do not reserve the size on the host (overcommit; the volume breaks if the host fills)")
	var lsFormat string
	var quiet bool
	ls := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFormat(lsFormat, volumeTable)
			if err != nil {
				return err
			}
			list, err := listVolumes(stateRoot())
			if err != nil {
				return err
			}
			if quiet {
				for _, v := range list {
					fmt.Println(v.Name)
				}
				return nil
			}
			return f.rows(os.Stdout, volumeRows(list), map[string]string{"CreatedAt": "CREATED"})
		},
	}
	ls.Flags().StringVar(&lsFormat, "format", "", "table (default), json, or a Go template such as {{.Name}}")
	ls.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the names")
	var inspectFormat string
	inspect := &cobra.Command{
		Use:   "inspect NAME...",
		Short: "Show volumes as JSON",
		Long:  "Show volumes as a JSON array, or each through a Go template (--format '{{.Size}}').",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return inspectObjects(stateRoot, engine.KindVolume, inspectFormat, args)
		},
		ValidArgsFunction: completeVolumes(stateRoot),
	}
	inspect.Flags().StringVarP(&inspectFormat, "format", "f", "", "json (default) or a Go template such as {{.Allocated}}")
	rm := &cobra.Command{
		Use:   "rm NAME...",
		Short: "Remove volumes (refused while a container uses one)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if asTenant() {
				c, err := openTenantClient(stateRoot())
				if err != nil {
					return err
				}
				return eachRef(args, func(name string) error { return c.RemoveVolume(context.Background(), name) })
			}
			e, err := engine.New(stateRoot())
			if err != nil {
				return err
			}
			return eachRef(args, e.RemoveVolume)
		},
		ValidArgsFunction: completeVolumes(stateRoot),
	}
	prune := &cobra.Command{
		Use:   "prune",
		Short: "Remove the volumes no container was granted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if asTenant() {
				return errors.New("volume prune: not open to tenants (it would weigh every tenant's volumes); remove your volumes by name (oak volume rm)")
			}
			e, err := engine.New(stateRoot())
			if err != nil {
				return err
			}
			removed, err := e.PruneVolumes()
			for _, name := range removed {
				fmt.Println(name)
			}
			return err
		},
	}
	cmd.AddCommand(create, ls, inspect, rm, prune)
	return cmd
}

// listVolumes is every volume, for root (from the store in this process),
// or the tenant's own (through the daemon).
func listVolumes(root string) ([]*engine.VolumeInfo, error) {
	if asTenant() {
		c, err := openTenantClient(root)
		if err != nil {
			return nil, err
		}
		return c.Volumes(context.Background())
	}
	e, err := engine.New(root)
	if err != nil {
		return nil, err
	}
	return e.ListVolumes()
}

// tenantCreateVolume makes a volume through the daemon, for the tenant's
// own factory (charged to its --disk quota): the only one it may name.
func tenantCreateVolume(root, name string, size int64, o engine.VolumeOptions, factory string) error {
	if factory != "" {
		return fmt.Errorf("volume create %s: --factory is root's: a tenant's volumes are made for its own factory, without the flag", name)
	}
	c, err := openTenantClient(root)
	if err != nil {
		return err
	}
	req := api.VolumeCreate{Name: name, Size: size, Sparse: o.Sparse}
	if o.Owner != nil {
		req.Owner = &api.VolumeOwner{UID: o.Owner.UID, GID: o.Owner.GID}
	}
	v, err := c.CreateVolume(context.Background(), req)
	if err != nil {
		return err
	}
	fmt.Println(v.Name)
	return nil
}

// since is how long ago t was, as docker writes it: "3 minutes ago".
func since(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return humanDuration(time.Since(t)) + " ago"
}

// humanDuration is d in docker's words: "Less than a second", "About a
// minute", "3 hours", "2 weeks".
func humanDuration(d time.Duration) string {
	s := int(d.Seconds())
	switch {
	case s < 1:
		return "Less than a second"
	case s == 1:
		return "1 second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	}
	m := int(d.Minutes())
	switch {
	case m == 1:
		return "About a minute"
	case m < 60:
		return fmt.Sprintf("%d minutes", m)
	}
	h := int(d.Hours() + 0.5)
	switch {
	case h == 1:
		return "About an hour"
	case h < 48:
		return fmt.Sprintf("%d hours", h)
	case h < 24*7*2:
		return fmt.Sprintf("%d days", h/24)
	case h < 24*30*2:
		return fmt.Sprintf("%d weeks", h/24/7)
	case h < 24*365*2:
		return fmt.Sprintf("%d months", h/24/30)
	}
	return fmt.Sprintf("%d years", h/24/365)
}

package main

import (
	"errors"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/oak-engine/oak/engine"
	"github.com/oak-engine/oak/storage/volume"
)

// openVolumes opens the volume store of the state root.
func openVolumes(stateRoot func() string) (*volume.Store, error) {
	e, err := engine.New(stateRoot())
	if err != nil {
		return nil, err
	}
	return e.Volumes()
}

func newVolumeCmd(stateRoot func() string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "volume",
		Short: "Manage volumes: file systems with an exact size, granted to containers with -v",
	}
	var size string
	var sparse bool
	create := &cobra.Command{
		Use:   "create --size SIZE [--sparse] NAME",
		Short: "Create a volume",
		Long: `Create a volume: an ext4 file system of exactly --size bytes, the most
a container can store in it. All of it is reserved on the host at once, so
the volume never finds the host full; creation is refused if it does not fit.

--sparse skips the reservation: the volume takes host space only as it is
written, so volumes can promise more than the host has. The risk: if the
host file system fills, writes inside the volume fail below its file system,
ext4 aborts its journal and the volume turns read-only until repaired with
e2fsck, and data not yet synced is lost.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if size == "" {
				return fmt.Errorf("volume create %s: --size is required (e.g. --size 1g)", args[0])
			}
			n, err := engine.ParseBytes("--size", size)
			if err != nil {
				return err
			}
			vs, err := openVolumes(stateRoot)
			if err != nil {
				return err
			}
			create := vs.Create
			if sparse {
				create = vs.CreateSparse
			}
			v, err := create(args[0], n)
			if errors.Is(err, volume.ErrNoSpace) {
				return fmt.Errorf("%w (--sparse overcommits, at a risk: see oak volume create --help)", err)
			}
			if err != nil {
				return err
			}
			fmt.Println(v.Name)
			return nil
		},
	}
	create.Flags().StringVar(&size, "size", "", "size of the volume's file system, e.g. 1g (its exact quota)")
	create.Flags().BoolVar(&sparse, "sparse", false, "do not reserve the size on the host (overcommit; the volume breaks if the host fills)")
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List volumes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			vs, err := openVolumes(stateRoot)
			if err != nil {
				return err
			}
			list, err := vs.List()
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 3, ' ', 0)
			fmt.Fprintln(w, "NAME\tSIZE\tALLOCATED\tCREATED\tATTACHED")
			for _, v := range list {
				state := v.Device
				if v.Missing {
					state = "MISSING IMAGE"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s ago\t%s\n", v.Name, humanBytes(v.Size), humanBytes(v.Allocated),
					time.Since(v.Created).Round(time.Second), state)
			}
			return w.Flush()
		},
	}
	inspect := &cobra.Command{
		Use:   "inspect NAME",
		Short: "Show a volume as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			vs, err := openVolumes(stateRoot)
			if err != nil {
				return err
			}
			v, err := vs.Inspect(args[0])
			if err != nil {
				return err
			}
			return printJSON(v)
		},
	}
	rm := &cobra.Command{
		Use:   "rm NAME...",
		Short: "Remove volumes (refused while a container uses one)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			vs, err := openVolumes(stateRoot)
			if err != nil {
				return err
			}
			return eachRef(args, vs.Remove)
		},
	}
	prune := &cobra.Command{
		Use:   "prune",
		Short: "Remove the volumes no container was granted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
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

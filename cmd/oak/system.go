package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/oak-engine/oak/engine"
)

func newContainerCmd(stateRoot func() string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "container",
		Short: "Manage containers",
	}
	var force bool
	prune := &cobra.Command{
		Use:   "prune [-f]",
		Short: "Remove all exited containers",
		Long: `Remove all exited containers, their records and logs. It asks first; -f
does not ask. Without a terminal to ask on, it needs -f.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force {
				if !term.IsTerminal(int(os.Stdin.Fd())) {
					return fmt.Errorf("container prune: no terminal to confirm on; use -f to remove all exited containers")
				}
				fmt.Fprint(os.Stderr, "This removes all exited containers. Continue? [y/N] ")
				var answer string
				fmt.Fscanln(os.Stdin, &answer)
				if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
					return &exitError{code: exitFailed, msg: "container prune: not confirmed"}
				}
			}
			e, err := engine.New(stateRoot())
			if err != nil {
				return err
			}
			removed, err := e.PruneContainers()
			for _, id := range removed {
				fmt.Println(id)
			}
			return err
		},
	}
	prune.Flags().BoolVarP(&force, "force", "f", false, "do not ask for confirmation")
	inspect := newInspectCmd(stateRoot)
	inspect.Use = "inspect [-f FORMAT] CONTAINER..."
	inspect.Short = "Show containers as JSON"
	inspect.Flags().Lookup("type").Value.Set(engine.KindContainer)
	inspect.Flags().Lookup("type").Hidden = true
	inspect.ValidArgsFunction = completeContainers(stateRoot)
	ls := newPsCmd(stateRoot)
	ls.Use, ls.Aliases = "ls", []string{"ps", "list"}
	cmd.AddCommand(prune, inspect, ls, newRmCmd(stateRoot), newKillCmd(stateRoot), newLogsCmd(stateRoot))
	return cmd
}

func newSystemCmd(stateRoot func() string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "system",
		Short: "Show what Oak holds and how it is set up",
	}
	var format string
	df := &cobra.Command{
		Use:   "df",
		Short: "Show the disk space images, containers and volumes take",
		Long: `Show, for images, containers and volumes, how many there are, how many are
in use (ACTIVE: images and volumes a container holds, running containers)
and the host disk space they take. A container's writable layer is in
memory, charged to its memory limit, and takes no disk.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFormat(format, `{{.Type}}\t{{.Total}}\t{{.Active}}\t{{.Size}}`)
			if err != nil {
				return err
			}
			e, err := engine.New(stateRoot())
			if err != nil {
				return err
			}
			us, err := e.DiskUsage()
			if err != nil {
				return err
			}
			if f.json {
				return f.rows(os.Stdout, us, nil)
			}
			type row struct {
				Type          string
				Total, Active int
				Size          string
			}
			var rows []row
			for _, u := range us {
				rows = append(rows, row{u.Type, u.Total, u.Active, sizeText(u.Size)})
			}
			return f.rows(os.Stdout, rows, nil)
		},
	}
	df.Flags().StringVar(&format, "format", "", "table (default), json (sizes in bytes), or a Go template")
	cmd.AddCommand(df, newInfoCmd(stateRoot))
	return cmd
}

func newInfoCmd(stateRoot func() string) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "info",
		Short: "Show Oak's version, state root, counts, the host's kernel and cgroups, the syscall policy and defaults",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := engine.New(stateRoot())
			if err != nil {
				return err
			}
			si, err := e.Info()
			if err != nil {
				return err
			}
			info := struct {
				Version string
				*engine.SystemInfo
			}{version, si}
			if format != "" {
				f, err := parseFormat(format, "")
				if err != nil {
					return err
				}
				f.table = false
				if f.json {
					return printJSON(info)
				}
				return f.objects(os.Stdout, []any{info})
			}
			d := si.Defaults
			fmt.Printf(`Version: %s
State root: %s
Containers: %d
 Running: %d
 Exited: %d
Images: %d
Volumes: %d
Kernel: %s
Cgroups: %s
System calls: %d of %d reachable (%d always, %d for some arguments), %d served by Oak, %d refused
Default limits:
 Memory: %s
 Tasks: %d
 /tmp: %s
 Writable layer: %s
 Log: %d files of %s
`, version, si.StateRoot, si.Containers, si.ContainersRunning, si.ContainersExited, si.Images, si.Volumes,
				si.Kernel, si.CgroupMode, si.Syscalls.Allowed+si.Syscalls.Conditional, si.Syscalls.Total,
				si.Syscalls.Allowed, si.Syscalls.Conditional, si.Syscalls.Notify, si.Syscalls.Refused,
				humanBytes(d.Memory), d.PidsLimit, humanBytes(d.TmpfsSize), humanBytes(d.StorageSize), d.LogMaxFile, humanBytes(d.LogMaxSize))
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "json, or a Go template such as {{.Kernel}}")
	return cmd
}

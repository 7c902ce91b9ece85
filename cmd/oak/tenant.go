package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/oak-engine/oak/engine"
)

// tenantView is a tenant as oak tenant ls and inspect show it: JSON keys
// and template fields are its field names, as everywhere in Oak's output.
type tenantView struct {
	Name       string
	UIDs       []uint32
	Factory    string
	OwnFactory bool // made with the tenant, removed with it
	Created    time.Time
}

// tenantRow is one row of oak tenant ls.
type tenantRow struct {
	Name      string
	UIDs      string
	Factory   string
	CreatedAt string
}

const tenantTable = "{{.Name}}\t{{.UIDs}}\t{{.Factory}}\t{{.CreatedAt}}"

func viewTenant(t *engine.Tenant) tenantView {
	return tenantView{Name: t.Name, UIDs: t.UIDs, Factory: t.Factory, OwnFactory: t.OwnFactory, Created: t.Created}
}

// parseUIDs reads --uid: UID[,UID…], numeric (a tenant's users need no
// account on the host: the kernel reports the peer's uid as a number).
func parseUIDs(args []string) ([]uint32, error) {
	var out []uint32
	for _, a := range args {
		for _, s := range strings.Split(a, ",") {
			n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
			if err != nil {
				return nil, fmt.Errorf("invalid --uid %q: want a numeric uid", s)
			}
			out = append(out, uint32(n))
		}
	}
	return out, nil
}

// tenantEngine opens the state root for a tenant verb: root's alone.
func tenantEngine(stateRoot func() string) (*engine.Engine, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("oak tenant: only root manages tenants (this is uid %d)", os.Geteuid())
	}
	return engine.New(stateRoot())
}

// tenantNames lists the names of tenants, for completion.
func tenantNames(e *engine.Engine) []string {
	ts, err := e.ListTenants()
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(ts))
	for _, t := range ts {
		names = append(names, t.Name)
	}
	return names
}

func newTenantCmd(stateRoot func() string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tenant",
		Short: "Manage tenants: host users confined to their own containers, within a factory's quota",
		Long: `Manage tenants. A tenant is a factory plus the host users (uids) that act
as it: a process of one of those uids that calls the daemon (any oak
command run as that user) sees and reaches only the tenant's own
containers and volumes, and its containers are made from the tenant's
factory, whose quota bounds them all. Any other user but root is refused.
Only root manages tenants. See docs/tenants.md.`,
	}
	var uids []string
	var factory, memory, pids, cpus, disk string
	create := &cobra.Command{
		Use:   "create --uid UID[,UID…] (--factory F | [--memory SIZE] [--pids N] [--cpus N] [--disk SIZE]) NAME",
		Short: "Create a tenant",
		Long: `Create a tenant NAME for the users --uid. Its containers are made from
--factory F, an existing factory no other tenant has, or, given a quota
instead (--memory, --pids, --cpus, --disk, as oak factory create takes
them), from a factory named NAME made for it and removed with it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, err := parseUIDs(uids)
			if err != nil {
				return err
			}
			o := engine.TenantOptions{Name: args[0], UIDs: ids, Factory: factory}
			if memory != "" || pids != "" || cpus != "" || disk != "" {
				q, err := engine.ParseFactoryQuota(memory, pids, cpus, disk, runtime.NumCPU())
				if err != nil {
					return err
				}
				o.Quota = &q
			}
			e, err := tenantEngine(stateRoot)
			if err != nil {
				return err
			}
			t, err := e.CreateTenant(o)
			if err != nil {
				return err
			}
			fmt.Println(t.Name)
			return nil
		},
	}
	create.ValidArgsFunction = cobra.NoFileCompletions
	cf := create.Flags()
	cf.StringSliceVar(&uids, "uid", nil, "the host users that act as the tenant, numeric uids (repeatable or comma-separated)")
	cf.StringVar(&factory, "factory", "", "make its containers from this existing factory")
	cf.StringVarP(&memory, "memory", "m", "", "memory of all its containers together (a factory made for it)")
	cf.StringVar(&pids, "pids", "", "processes and threads of all its containers together")
	cf.StringVar(&cpus, "cpus", "", "CPU time of all its containers together, in cores")
	cf.StringVar(&disk, "disk", "", "bytes of its volumes and writable layers together")
	create.RegisterFlagCompletionFunc("factory", completeFactories(stateRoot))
	var lsFormat string
	var quiet bool
	ls := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List tenants",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFormat(lsFormat, tenantTable)
			if err != nil {
				return err
			}
			e, err := tenantEngine(stateRoot)
			if err != nil {
				return err
			}
			list, err := e.ListTenants()
			if err != nil {
				return err
			}
			rows := make([]tenantRow, 0, len(list))
			for _, t := range list {
				if quiet {
					fmt.Println(t.Name)
					continue
				}
				ids := make([]string, len(t.UIDs))
				for i, u := range t.UIDs {
					ids[i] = strconv.FormatUint(uint64(u), 10)
				}
				rows = append(rows, tenantRow{Name: t.Name, UIDs: strings.Join(ids, ","), Factory: t.Factory, CreatedAt: since(t.Created)})
			}
			if quiet {
				return nil
			}
			return f.rows(os.Stdout, rows, map[string]string{"CreatedAt": "CREATED"})
		},
	}
	ls.Flags().StringVar(&lsFormat, "format", "", "table (default), json, or a Go template such as {{.Name}}")
	ls.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the names")
	var inspectFormat string
	inspect := &cobra.Command{
		Use:   "inspect NAME...",
		Short: "Show tenants as JSON",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := tenantEngine(stateRoot)
			if err != nil {
				return err
			}
			return printInspected(inspectFormat, args, func(name string) (any, error) {
				t, err := e.InspectTenant(name)
				if err != nil {
					return nil, err
				}
				return viewTenant(t), nil
			})
		},
	}
	inspect.ValidArgsFunction = completeNames(false, tenantNames, stateRoot)
	inspect.Flags().StringVarP(&inspectFormat, "format", "f", "", "json (default) or a Go template such as {{.Factory}}")
	rm := &cobra.Command{
		Use:   "rm NAME...",
		Short: "Remove tenants",
		Long: `Remove tenants: their users are refused from then on. A tenant that still
has containers is refused; the factory made for a tenant goes with it
(refused while it holds volumes: remove them, or oak factory rm -f).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := tenantEngine(stateRoot)
			if err != nil {
				return err
			}
			return eachRef(args, e.RemoveTenant)
		},
	}
	rm.ValidArgsFunction = completeNames(false, tenantNames, stateRoot)
	cmd.AddCommand(create, ls, inspect, rm)
	return cmd
}

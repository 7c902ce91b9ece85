package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/oak-engine/oak/api"
	"github.com/oak-engine/oak/engine"
)

// tenantRow is one row of oak tenant ls.
type tenantRow struct {
	Name      string
	UIDs      string
	Factory   string
	Token     bool // it has a token
	CreatedAt string
}

const tenantTable = "{{.Name}}\t{{.UIDs}}\t{{.Factory}}\t{{.CreatedAt}}"

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

// tenantAdmin is what oak tenant asks for: the daemon's tenant routes,
// or the engine in this process (--no-daemon). Both answer from the same
// records with the same errors.
type tenantAdmin interface {
	CreateTenant(req api.TenantCreate) (*api.TenantInfo, error)
	Tenants() ([]api.TenantInfo, error)
	Tenant(name string) (*api.TenantInfo, error)
	RemoveTenant(name string) error
	WithdrawTenant(name string) error
	NewTenantToken(name string) (string, error)
	RevokeTenantToken(name string) error
}

// openTenantAdmin is the daemon (started if none answers), or the engine
// in this process when the daemon is not wanted. A tenant's oak asks the
// daemon, which refuses it (only root manages tenants).
func openTenantAdmin(stateRoot func() string) (tenantAdmin, error) {
	if asTenant() {
		c, err := openTenantClient(stateRoot())
		if err != nil {
			return nil, err
		}
		return clientTenants{c}, nil
	}
	e, err := engine.New(stateRoot())
	if err != nil {
		return nil, err
	}
	if !daemonWanted() {
		return localTenants{e}, nil
	}
	c := api.NewClient(e.Root)
	if err := ensureDaemon(c, e.Root); err != nil {
		return nil, err
	}
	return clientTenants{c}, nil
}

type clientTenants struct{ c *api.Client }

func (t clientTenants) CreateTenant(req api.TenantCreate) (*api.TenantInfo, error) {
	return t.c.CreateTenant(context.Background(), req)
}
func (t clientTenants) Tenants() ([]api.TenantInfo, error) { return t.c.Tenants(context.Background()) }
func (t clientTenants) Tenant(name string) (*api.TenantInfo, error) {
	return t.c.Tenant(context.Background(), name)
}
func (t clientTenants) RemoveTenant(name string) error {
	return t.c.RemoveTenant(context.Background(), name)
}
func (t clientTenants) WithdrawTenant(name string) error {
	return t.c.WithdrawTenant(context.Background(), name)
}
func (t clientTenants) NewTenantToken(name string) (string, error) {
	return t.c.NewTenantToken(context.Background(), name)
}
func (t clientTenants) RevokeTenantToken(name string) error {
	return t.c.RevokeTenantToken(context.Background(), name)
}

type localTenants struct{ e *engine.Engine }

func (t localTenants) CreateTenant(req api.TenantCreate) (*api.TenantInfo, error) {
	o := engine.TenantOptions{Name: req.Name, UIDs: req.UIDs, Factory: req.Factory}
	if q := req.Quota; q != nil {
		o.Quota = &engine.FactoryQuota{MemoryBytes: q.MemoryBytes, Pids: q.Pids, CPUMilli: q.CPUMilli, DiskBytes: q.DiskBytes}
	}
	tn, err := t.e.CreateTenant(o)
	if err != nil {
		return nil, err
	}
	info := api.NewTenantInfo(tn)
	return &info, nil
}
func (t localTenants) Tenants() ([]api.TenantInfo, error) {
	ts, err := t.e.ListTenants()
	out := make([]api.TenantInfo, 0, len(ts))
	for _, tn := range ts {
		out = append(out, api.NewTenantInfo(tn))
	}
	return out, err
}
func (t localTenants) Tenant(name string) (*api.TenantInfo, error) {
	tn, err := t.e.InspectTenant(name)
	if err != nil {
		return nil, err
	}
	info, err := api.DescribeTenant(t.e, tn)
	if err != nil {
		return nil, err
	}
	return &info, nil
}
func (t localTenants) RemoveTenant(name string) error             { return t.e.RemoveTenant(name) }
func (t localTenants) WithdrawTenant(name string) error           { return t.e.WithdrawTenant(name) }
func (t localTenants) NewTenantToken(name string) (string, error) { return t.e.NewTenantToken(name) }
func (t localTenants) RevokeTenantToken(name string) error        { return t.e.RevokeTenantToken(name) }

// issueToken gives tenant name a new token (revoking the one it had) and
// writes it to path for uid, or, with no path, prints it. The file is
// made first, so that a path refused changes nothing.
func issueToken(ta tenantAdmin, name, path string, uid uint32) error {
	var sink *tokenSink
	if path != "" {
		var err error
		if sink, err = createTokenFile(path, uid); err != nil {
			return err
		}
	}
	tok, err := ta.NewTenantToken(name)
	if err != nil {
		if sink != nil {
			sink.discard()
		}
		return err
	}
	if sink == nil {
		fmt.Println(tok)
		return nil
	}
	return sink.write(tok)
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
	var factory, memory, pids, cpus, disk, tokenOut, tokenOwnerFlag string
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
			req := api.TenantCreate{Name: args[0], UIDs: ids, Factory: factory}
			if memory != "" || pids != "" || cpus != "" || disk != "" {
				q, err := engine.ParseFactoryQuota(memory, pids, cpus, disk, runtime.NumCPU())
				if err != nil {
					return err
				}
				req.Quota = &api.TenantQuota{MemoryBytes: q.MemoryBytes, Pids: q.Pids, CPUMilli: q.CPUMilli, DiskBytes: q.DiskBytes}
			}
			if cmd.Flags().Changed("token-owner") && tokenOut == "" {
				return errors.New("tenant create: --token-owner is the owner of --token-file; give --token-file too")
			}
			owner := uint32(0)
			if tokenOut != "" {
				if len(ids) == 0 {
					return errors.New("tenant create: --uid is required: a tenant is the host users that act as it")
				}
				if owner, err = tokenOwner(tokenOwnerFlag, ids[0]); err != nil {
					return err
				}
			}
			ta, err := openTenantAdmin(stateRoot)
			if err != nil {
				return err
			}
			var sink *tokenSink
			if tokenOut != "" {
				// Made before the tenant, so that a bad path changes nothing.
				if sink, err = createTokenFile(tokenOut, owner); err != nil {
					return err
				}
			}
			t, err := ta.CreateTenant(req)
			if err != nil {
				if sink != nil {
					sink.discard()
				}
				return err
			}
			if sink != nil {
				tok, err := ta.NewTenantToken(t.Name)
				if err == nil {
					err = sink.write(tok)
				} else {
					sink.discard()
				}
				if err != nil {
					return fmt.Errorf("tenant %s was created, but its token was not: %w (oak tenant token %s --file PATH makes one)", t.Name, err, t.Name)
				}
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
	cf.StringVar(&tokenOut, "token-file", "", "also give it a token, written to this new file (mode 0600), for its holder")
	cf.StringVar(&tokenOwnerFlag, "token-owner", "", "the uid that owns --token-file (default the first --uid)")
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
			ta, err := openTenantAdmin(stateRoot)
			if err != nil {
				return err
			}
			list, err := ta.Tenants()
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
				rows = append(rows, tenantRow{Name: t.Name, UIDs: strings.Join(ids, ","), Factory: t.Factory, Token: t.Token, CreatedAt: since(t.Created)})
			}
			if quiet {
				return nil
			}
			return f.rows(os.Stdout, rows, map[string]string{"UIDs": "UIDS", "CreatedAt": "CREATED"})
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
			ta, err := openTenantAdmin(stateRoot)
			if err != nil {
				return err
			}
			return printInspected(inspectFormat, args, func(name string) (any, error) {
				return ta.Tenant(name)
			})
		},
	}
	inspect.ValidArgsFunction = completeNames(false, tenantNames, stateRoot)
	inspect.Flags().StringVarP(&inspectFormat, "format", "f", "", "json (default) or a Go template such as {{.Factory}}")
	var force bool
	rm := &cobra.Command{
		Use:   "rm [-f] NAME...",
		Short: "Remove tenants",
		Long: `Remove tenants: their users are refused from then on. A tenant that still
has containers is refused; the factory made for a tenant goes with it
(refused while it holds volumes: remove them, or oak factory rm -f).
With -f, everything the tenant has goes too: its containers, each with
its sub-containers, and the factory made for it as oak factory rm -f
removes one (its volumes included).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ta, err := openTenantAdmin(stateRoot)
			if err != nil {
				return err
			}
			if force {
				return eachRef(args, ta.WithdrawTenant)
			}
			return eachRef(args, ta.RemoveTenant)
		},
	}
	rm.Flags().BoolVarP(&force, "force", "f", false, "remove its containers, their sub-containers and its own factory's volumes too")
	rm.ValidArgsFunction = completeNames(false, tenantNames, stateRoot)
	cmd.AddCommand(create, ls, inspect, rm, newTenantTokenCmd(stateRoot))
	return cmd
}

// tokenOwner is the uid --owner (flag) names, or def.
func tokenOwner(flag string, def uint32) (uint32, error) {
	if flag == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(flag, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("invalid owner %q: want a numeric uid", flag)
	}
	return uint32(n), nil
}

func newTenantTokenCmd(stateRoot func() string) *cobra.Command {
	var file, owner string
	cmd := &cobra.Command{
		Use:   "token [--file PATH [--owner UID]] NAME",
		Short: "Give a tenant a new token (revoking its old one); oak tenant token rm NAME revokes it",
		Long: `Give tenant NAME a token: a secret of 256 random bits with which whoever
holds it acts as the tenant, whatever uid it runs as (oak --token-file
PATH …, or OAK_TOKEN_FILE). A token the tenant had is revoked at once:
this is how a token is rotated. The daemon keeps only a hash of it.

--file PATH writes it to a new file, mode 0600, owned by --owner UID (by
default the tenant's first uid); an existing file, or a path through a
symbolic link, is refused. Without --file it is printed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if owner != "" && file == "" {
				return errors.New("tenant token: --owner is the owner of --file; give --file too")
			}
			ta, err := openTenantAdmin(stateRoot)
			if err != nil {
				return err
			}
			uid := uint32(0)
			if file != "" {
				t, err := ta.Tenant(args[0])
				if err != nil {
					return err
				}
				if uid, err = tokenOwner(owner, t.UIDs[0]); err != nil {
					return err
				}
			}
			return issueToken(ta, args[0], file, uid)
		},
	}
	cmd.ValidArgsFunction = completeNames(false, tenantNames, stateRoot)
	cmd.Flags().StringVar(&file, "file", "", "write the token to this new file (mode 0600) instead of printing it")
	cmd.Flags().StringVar(&owner, "owner", "", "the uid that owns --file (default the tenant's first uid)")
	rm := &cobra.Command{
		Use:   "rm NAME...",
		Short: "Revoke tenants' tokens: refused from the next request on",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ta, err := openTenantAdmin(stateRoot)
			if err != nil {
				return err
			}
			return eachRef(args, ta.RevokeTenantToken)
		},
	}
	rm.ValidArgsFunction = completeNames(false, tenantNames, stateRoot)
	cmd.AddCommand(rm)
	return cmd
}

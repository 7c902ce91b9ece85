package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/oak-engine/oak/api"
	"github.com/oak-engine/oak/engine"
)

// factoryAdmin is what oak factory asks for: the daemon's factory routes
// or the engine in this process (*engine.Engine has it). Both answer
// from the same records with the same errors.
type factoryAdmin interface {
	CreateFactory(o engine.FactoryOptions) (*engine.FactoryInfo, error)
	ListFactories() ([]*engine.FactoryInfo, error)
	InspectFactory(name string) (*engine.FactoryInfo, error)
	RemoveFactory(name string, force bool) error
}

// openFactoryAdmin is the daemon when one answers for the root (it holds
// the host's capability core), else the engine in this process; a
// tenant's oak always asks the daemon, which shows it its own factories
// only (docs/tenants.md).
func openFactoryAdmin(root string) (factoryAdmin, error) {
	if asTenant() {
		c, err := openTenantClient(root)
		if err != nil {
			return nil, err
		}
		return clientFactories{c: c}, nil
	}
	e, err := engine.New(root)
	if err != nil {
		return nil, err
	}
	if daemonWanted() {
		c := api.NewClient(e.Root)
		ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
		err := c.Ping(ctx)
		cancel()
		if err == nil {
			return clientFactories{c, e}, nil
		}
	}
	return e, nil
}

// routeMissing says whether err is a daemon's answer that it has no such
// route: one older than this oak.
func routeMissing(err error) bool {
	var ae *api.Error
	return errors.As(err, &ae) && (ae.Code == api.CodeNotFound || ae.Code == api.CodeMethodNotAllowed)
}

// clientFactories is the daemon's factory routes; a daemon from before
// they existed (an upgrade) answers that it has no such route, and then
// local, the engine in this process, acts on the records, as then. A
// tenant has no local.
type clientFactories struct {
	c     *api.Client
	local *engine.Engine
}

// fallback says whether err asks for the engine in this process.
func (f clientFactories) fallback(err error) bool { return f.local != nil && routeMissing(err) }

func (f clientFactories) CreateFactory(o engine.FactoryOptions) (*engine.FactoryInfo, error) {
	q := o.Quota
	fi, err := f.c.CreateFactory(context.Background(), api.FactoryCreate{Name: o.Name, Parent: o.Parent,
		Quota: api.TenantQuota{MemoryBytes: q.MemoryBytes, Pids: q.Pids, CPUMilli: q.CPUMilli, DiskBytes: q.DiskBytes}})
	if f.fallback(err) {
		return f.local.CreateFactory(o)
	}
	return fi, err
}
func (f clientFactories) ListFactories() ([]*engine.FactoryInfo, error) {
	fs, err := f.c.Factories(context.Background())
	if f.fallback(err) {
		return f.local.ListFactories()
	}
	return fs, err
}
func (f clientFactories) InspectFactory(name string) (*engine.FactoryInfo, error) {
	fi, err := f.c.Factory(context.Background(), name)
	if f.fallback(err) {
		return f.local.InspectFactory(name)
	}
	return fi, err
}
func (f clientFactories) RemoveFactory(name string, force bool) error {
	err := f.c.RemoveFactory(context.Background(), name, force)
	if f.fallback(err) {
		return f.local.RemoveFactory(name, force)
	}
	return err
}

// factoryRow is one row of oak factory ls: its JSON keys and template
// fields. Each resource reads "USE / LIMIT": memory and pids as the kernel
// charges the factory's group now, CPUs and disk as given out to
// sub-factories and (disk) reserved for volumes and writable layers; "-"
// is no limit of the factory's own.
type factoryRow struct {
	Name       string
	Parent     string
	Memory     string
	Pids       string
	CPUs       string
	Disk       string
	Containers int
	CreatedAt  string
}

const factoryTable = "{{.Name}}\t{{.Parent}}\t{{.Memory}}\t{{.Pids}}\t{{.CPUs}}\t{{.Disk}}\t{{.Containers}}\t{{.CreatedAt}}"

func factoryRows(fs []*engine.FactoryInfo) []factoryRow {
	rows := make([]factoryRow, 0, len(fs))
	for _, f := range fs {
		name := f.Name
		if f.Removing {
			name += " (removing)"
		}
		rows = append(rows, factoryRow{Name: name, Parent: f.Parent,
			Memory:     useOf(f.Usage.MemoryBytes, f.Limit.MemoryBytes, sizeText),
			Pids:       useOf(f.Usage.Pids, f.Limit.Pids, func(n int64) string { return strconv.FormatInt(n, 10) }),
			CPUs:       useOf(f.Given.CPUMilli, f.Limit.CPUMilli, cpuText),
			Disk:       useOf(f.Given.DiskBytes, f.Limit.DiskBytes, sizeText),
			Containers: len(f.Containers), CreatedAt: since(f.Created)})
	}
	return rows
}

func useOf(use, limit int64, text func(int64) string) string {
	l := "-"
	if limit > 0 {
		l = text(limit)
	}
	return text(use) + " / " + l
}

func cpuText(milli int64) string { return strconv.FormatFloat(float64(milli)/1000, 'f', -1, 64) }

// factoryNames lists the names of factories, for completion.
func factoryNames(e *engine.Engine) []string {
	fs, err := e.ListFactories()
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(fs))
	for _, f := range fs {
		names = append(names, f.Name)
	}
	return names
}

func completeFactories(stateRoot func() string) completeFunc {
	return completeNames(false, factoryNames, stateRoot)
}

func newFactoryCmd(stateRoot func() string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "factory",
		Short: "Manage factories: quotas that bind the sum of the containers made from them",
	}
	var memory, pids, cpus, disk, parent string
	create := &cobra.Command{
		Use:   "create [--parent P] [--memory SIZE] [--pids N] [--cpus N] [--disk SIZE] NAME",
		Short: "Create a factory",
		Long: `Create a factory: a quota that every container made from it (oak run
--factory NAME) shares. The kernel bounds the sum of its containers'
memory, tasks and CPU time by it, because their control groups sit inside
the factory's; its --disk holds its volumes (oak volume create --factory)
and its containers' writable layers (--storage-size, 1g by default),
reserved when each is made.

With --parent, the factory is made out of P's quota: the sum of P's
sub-factories' limits never exceeds P's, per resource, and a resource P
limits must be limited here too. A flag left out is no limit of the
factory's own (allowed only where the parent sets none).

A tenant makes sub-factories of its own factory (the default --parent)
or of those under it, and runs containers from them (oak run --factory
NAME); see docs/tenants.md.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q, err := engine.ParseFactoryQuota(memory, pids, cpus, disk, runtime.NumCPU())
			if err != nil {
				return err
			}
			e, err := openFactoryAdmin(stateRoot())
			if err != nil {
				return err
			}
			f, err := e.CreateFactory(engine.FactoryOptions{Name: args[0], Parent: parent, Quota: q})
			if err != nil {
				return err
			}
			fmt.Println(f.Name)
			return nil
		},
	}
	create.ValidArgsFunction = cobra.NoFileCompletions // a new name
	cf := create.Flags()
	cf.StringVar(&parent, "parent", "", "make it out of factory P's quota (default: the host's)")
	cf.StringVarP(&memory, "memory", "m", "", "memory of all its containers together, e.g. 1g")
	cf.StringVar(&pids, "pids", "", "processes and threads of all its containers together")
	cf.StringVar(&cpus, "cpus", "", "CPU time of all its containers together, in cores, e.g. 1.5")
	cf.StringVar(&disk, "disk", "", "bytes of its volumes and its containers' writable layers together, e.g. 10g")
	create.RegisterFlagCompletionFunc("parent", completeFactories(stateRoot))
	var lsFormat string
	var quiet bool
	ls := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List factories with what each uses of its limits",
		Long: `List factories. MEMORY and PIDS show what the kernel charges the factory's
group now (its containers and sub-factories together) against its limit;
CPUS and DISK what it has given to sub-factories and (disk) reserved for
volumes and writable layers. "-" is no limit of its own.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFormat(lsFormat, factoryTable)
			if err != nil {
				return err
			}
			e, err := openFactoryAdmin(stateRoot())
			if err != nil {
				return err
			}
			list, err := e.ListFactories()
			if err != nil {
				return err
			}
			if quiet {
				for _, f := range list {
					fmt.Println(f.Name)
				}
				return nil
			}
			return f.rows(os.Stdout, factoryRows(list), map[string]string{"CreatedAt": "CREATED", "CPUs": "CPUS"})
		},
	}
	ls.Flags().StringVar(&lsFormat, "format", "", "table (default), json, or a Go template such as {{.Name}}")
	ls.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the names")
	var inspectFormat string
	inspect := &cobra.Command{
		Use:   "inspect NAME...",
		Short: "Show factories as JSON: limits, what is given out and reserved, kernel usage, members",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openFactoryAdmin(stateRoot())
			if err != nil {
				return err
			}
			return printInspected(inspectFormat, args, func(name string) (any, error) {
				fi, err := e.InspectFactory(name)
				if err != nil {
					return nil, err
				}
				return fi, nil
			})
		},
	}
	inspect.ValidArgsFunction = completeFactories(stateRoot)
	inspect.Flags().StringVarP(&inspectFormat, "format", "f", "", "json (default) or a Go template such as {{.Limit.Pids}}")
	var force bool
	rm := &cobra.Command{
		Use:   "rm [-f] NAME...",
		Short: "Remove factories",
		Long: `Remove factories. A factory that still has containers, sub-factories or
volumes is refused; with -f everything made from it goes with it,
recursively: its containers and its sub-factories' are killed and removed,
their volumes removed (with their data), their control groups removed.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openFactoryAdmin(stateRoot())
			if err != nil {
				return err
			}
			return eachRef(args, func(name string) error { return e.RemoveFactory(name, force) })
		},
	}
	rm.ValidArgsFunction = completeFactories(stateRoot)
	rm.Flags().BoolVarP(&force, "force", "f", false, "also kill and remove its containers, sub-factories and volumes")
	cmd.AddCommand(create, ls, inspect, rm)
	return cmd
}

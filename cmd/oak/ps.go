package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/oak-engine/oak/engine"
)

// psRow is one row of oak ps, after docker's: its JSON keys and template
// fields. Text fields read as docker's (ID short unless --no-trunc,
// Command quoted, Status "Up 3 minutes"); State, ExitCode and Pid are for
// scripts.
type psRow struct {
	ID         string
	Image      string
	Command    string
	CreatedAt  string
	RunningFor string
	Ports      string // where its ports are published while it runs
	Status     string
	Names      string
	Labels     string // KEY=VALUE,... (see Label)
	Mounts     string // volume names
	State      string // created, running, exited or broken
	ExitCode   int
	OOMKilled  bool
	Pid        int    // host pid of its init while running
	Restarts   int    // how often its restart policy started it again
	Problem    string `json:",omitempty"` // why a broken record cannot be read

	labels map[string]string
}

// Label is the value of one label, for {{.Label "KEY"}}.
func (r psRow) Label(key string) string { return r.labels[key] }

const psTable = `{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}`

var psHeaders = map[string]string{"ID": "CONTAINER ID", "RunningFor": "CREATED", "Names": "NAMES", "CreatedAt": "CREATED AT"}

func psRowOf(c *engine.ContainerInfo, noTrunc bool) psRow {
	r := psRow{ID: c.Id, Image: c.Config.Image, Command: strings.Join(c.Config.Cmd, " "),
		CreatedAt: c.Created.Local().Format("2006-01-02 15:04:05 -0700 MST"), RunningFor: since(c.Created),
		Ports: strings.Join(c.NetworkSettings.Ports, ", "), Names: c.Name, State: c.State.Status,
		ExitCode: c.State.ExitCode, OOMKilled: c.State.OOMKilled, Pid: c.State.Pid, Problem: c.State.Error,
		Restarts: c.RestartCount,
		labels:   c.Config.Labels}
	if !noTrunc {
		r.ID = engine.ShortID(r.ID)
		r.Command = truncate(r.Command, 20)
	}
	r.Command = strconv.Quote(r.Command)
	var ls []string
	for k, v := range c.Config.Labels {
		ls = append(ls, k+"="+v)
	}
	sort.Strings(ls)
	r.Labels = strings.Join(ls, ",")
	var ms []string
	for _, m := range c.Mounts {
		ms = append(ms, m.Name)
	}
	r.Mounts = strings.Join(ms, ",")
	switch c.State.Status {
	case engine.StatusRunning:
		r.Status = "Up " + humanDuration(time.Since(c.Created))
	case engine.StatusCreated:
		r.Status = "Created"
	case engine.StatusBroken:
		r.Status = "Broken: " + c.State.Error
	case engine.StatusRestarting:
		r.Status = "Restarting (" + strconv.Itoa(c.State.ExitCode) + ") " + since(c.State.FinishedAt)
	case engine.StatusExited:
		code := strconv.Itoa(c.State.ExitCode)
		if c.State.ExitCode < 0 {
			code = "unknown"
		}
		r.Status = "Exited (" + code + ")"
		if c.State.OOMKilled {
			r.Status += " OOM"
		}
		if !c.State.FinishedAt.IsZero() {
			r.Status += " " + since(c.State.FinishedAt)
		}
	}
	return r
}

// psOptions are oak ps's flags.
type psOptions struct {
	all, quiet, latest, noTrunc bool
	last                        int
	filters                     []string
	format                      string
}

func newPsCmd(stateRoot func() string) *cobra.Command {
	var o psOptions
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List containers",
		Long: `List containers, newest first: the running ones, or with -a all of them.

--filter KEY=VALUE selects, as docker's: id=PREFIX, name=REGEXP, status=
created|running|exited|broken, label=KEY[=VALUE], ancestor=IMAGE. A key
given twice matches either value; different keys must all match.

--format takes table, json (one object a line), a Go template such as
'{{.ID}} {{.State}}', or "table" and a template for a table with headers:
'table {{.ID}}\t{{.Names}}'. The fields are the JSON keys.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPs(stateRoot, o)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.all, "all", "a", false, "show all containers (default: running ones)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "print only container ids")
	f.StringArrayVarP(&o.filters, "filter", "f", nil, "select containers: KEY=VALUE (id, name, status, label, ancestor)")
	f.IntVarP(&o.last, "last", "n", -1, "show the N most recently created containers, in any state")
	f.BoolVarP(&o.latest, "latest", "l", false, "show the most recently created container, in any state")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "do not shorten ids and commands")
	f.StringVar(&o.format, "format", "", "table (default), json, or a Go template (table TEMPLATE for a table)")
	return cmd
}

func runPs(stateRoot func() string, o psOptions) error {
	fmtr, err := parseFormat(o.format, psTable)
	if err != nil {
		return err
	}
	if _, err := engine.ParseFilter(o.filters); err != nil {
		return err // refused here, in the CLI's words, before any daemon is asked
	}
	if o.latest {
		o.last = 1
	}
	b, err := openBackend(stateRoot())
	if err != nil {
		return err
	}
	cs, err := b.ListContainers(o.filters) // newest first
	if err != nil {
		return err
	}
	rows := []psRow{}
	for _, c := range cs {
		if o.last >= 0 && len(rows) == o.last {
			break
		}
		// As docker: -n and -l look at every container; a status
		// filter does too.
		if !o.all && o.last < 0 && len(filterValues(o.filters, "status")) == 0 && c.State.Status != engine.StatusRunning && c.State.Status != engine.StatusRestarting {
			continue
		}
		rows = append(rows, psRowOf(c, o.noTrunc))
	}
	if o.quiet {
		for _, r := range rows {
			fmt.Println(r.ID)
		}
		return nil
	}
	return fmtr.rows(os.Stdout, rows, psHeaders)
}

// filterValues returns the values given for key among --filter arguments.
func filterValues(filters []string, key string) []string {
	var vs []string
	for _, f := range filters {
		if k, v, ok := strings.Cut(f, "="); ok && strings.EqualFold(strings.TrimSpace(k), key) {
			vs = append(vs, v)
		}
	}
	return vs
}

// truncate shortens s to n characters, the last an ellipsis.
func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/oak-engine/oak/engine"
)

func newRevokeCmd(stateRoot func() string) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke CONTAINER GRANT",
		Short: "Withdraw a network grant from a running container (see oak grants)",
		Long: `Withdraw a network grant from a running container. GRANT is as oak grants
lists it, e.g. "egress 127.0.0.1:6379/tcp" or "publish 127.0.0.1:18080:80/tcp".
When the command returns, no new socket, bind, listen, connect or send is
served under the grant; connections the container already holds stay its own.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := openBackend(stateRoot())
			if err != nil {
				return err
			}
			return b.Revoke(args[0], args[1])
		},
		ValidArgsFunction: completeRunning(true, stateRoot),
	}
}

func newGrantsCmd(stateRoot func() string) *cobra.Command {
	return &cobra.Command{
		Use:   "grants CONTAINER",
		Short: "List the network grants a running container holds",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := openBackend(stateRoot())
			if err != nil {
				return err
			}
			gs, err := b.Grants(args[0])
			for _, g := range gs {
				fmt.Println(g)
			}
			return err
		},
		ValidArgsFunction: completeRunning(true, stateRoot),
	}
}

func newPortCmd(stateRoot func() string) *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PORT[/PROTO]]",
		Short: "List the host addresses a running container's ports are published on",
		Long: `List the host addresses a running container's ports are published on, one
line each, as docker does: "80/tcp -> 127.0.0.1:49153". With PORT (PROTO
defaults to tcp) only that port's host addresses are listed, and a port not
published is an error. A -p without a host IP is listed once per family.`,
		Args:              cobra.RangeArgs(1, 2),
		ValidArgsFunction: completeRunning(true, stateRoot),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := engine.New(stateRoot())
			if err != nil {
				return err
			}
			var port uint16
			var proto string
			if len(args) == 2 {
				if port, proto, err = engine.ParsePortFilter(args[1]); err != nil {
					return err
				}
			}
			ps, err := e.Ports(args[0])
			if err != nil {
				return err
			}
			found := false
			for _, p := range ps {
				switch {
				case port == 0:
					fmt.Printf("%s -> %s\n", p.Private(), p.Host)
				case p.ContainerPort == port && p.Proto == proto:
					fmt.Println(p.Host)
					found = true
				}
			}
			if port != 0 && !found {
				return fmt.Errorf("no public port '%d/%s' published for %s", port, proto, args[0])
			}
			return nil
		},
	}
}

func newNetServiceCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "_netsvc",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return engine.RunNetService(os.NewFile(3, "listener"), os.NewFile(4, "control"), os.NewFile(5, "local"), os.NewFile(6, "counts"))
		},
	}
}

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"

	"github.com/spf13/cobra"

	"github.com/oak-engine/oak/engine"
)

func newExecCmd(stateRoot func() string) *cobra.Command {
	var (
		opts        engine.ExecOptions
		interactive bool
	)
	cmd := &cobra.Command{
		Use:   "exec [flags] CONTAINER COMMAND [ARG...]",
		Short: "Run a command in a running container",
		Long: `Run a command in a running container. The process joins the container
through its init: the same namespaces, root, groups, seccomp filter and
network grants as the container's own processes, the container's
capabilities for its user and nothing more, and no descriptor of the host's
but its standard input, output and error (pipes, or with -t a terminal Oak
makes). It counts against the container's limits.`,
		Args:              cobra.MinimumNArgs(2),
		ValidArgsFunction: completeRunning(true, stateRoot),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := openBackend(stateRoot())
			if err != nil {
				return err
			}
			opts.Args = args[1:]
			sigs := make(chan os.Signal, 8)
			signal.Notify(sigs, engine.ForwardedSignals...)
			defer signal.Stop(sigs)
			code, err := execStdio(opts.TTY, interactive, func(in, out, errw *os.File) (int, error) {
				return b.Exec(args[0], opts, in, out, errw, sigs)
			})
			if err != nil {
				return err
			}
			if code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.BoolVarP(&interactive, "interactive", "i", false, "keep stdin open (default: /dev/null)")
	f.BoolVarP(&opts.TTY, "tty", "t", false, "give the command a terminal")
	f.StringArrayVarP(&opts.Env, "env", "e", nil, "set an environment variable KEY=VALUE")
	f.StringVarP(&opts.Workdir, "workdir", "w", "", "working directory inside the container")
	f.StringVarP(&opts.User, "user", "u", "", "user NAME|UID[:GROUP|GID] of the image (default: the container's)")
	return cmd
}

// execStdio runs start with the descriptors a container process gets for
// its stdin, stdout and stderr: with tty, the slave of a terminal Oak makes
// (this terminal in raw mode meanwhile); otherwise pipes, copied to and from
// this process's own (stdin only with interactive, else /dev/null).
func execStdio(tty, interactive bool, start func(in, out, errw *os.File) (int, error)) (int, error) {
	if tty {
		p, err := newPTY()
		if err != nil {
			return 0, err
		}
		defer p.close()
		wait := p.pump()
		code, err := start(p.slave, p.slave, p.slave)
		p.slave.Close()
		if err == nil {
			wait()
		}
		return code, err
	}
	var copies sync.WaitGroup
	var in *os.File
	if interactive {
		r, w, err := os.Pipe()
		if err != nil {
			return 0, err
		}
		in = r
		go func() {
			io.Copy(w, os.Stdin)
			w.Close()
		}()
	} else {
		f, err := os.Open(os.DevNull)
		if err != nil {
			return 0, err
		}
		in = f
	}
	pipeTo := func(dst io.Writer) (*os.File, error) {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		copies.Add(1)
		go func() {
			defer copies.Done()
			io.Copy(dst, r)
			r.Close()
		}()
		return w, nil
	}
	out, err1 := pipeTo(os.Stdout)
	errw, err2 := pipeTo(os.Stderr)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("exec: %w", err)
	}
	code, err := start(in, out, errw)
	in.Close()
	out.Close()
	errw.Close()
	if err == nil {
		copies.Wait()
	}
	return code, err
}

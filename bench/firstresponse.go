package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// httpdPort is the port the server listens on inside an oak container.
const httpdPort = 8080

// firstResponseTimeout bounds one run's wait for its server's first 200.
const firstResponseTimeout = 20 * time.Second

// FirstResponseDescription says what the first-response case measures and
// how its variants differ, for the report and the docs.
const FirstResponseDescription = "start → first HTTP 200 from busybox httpd, polled every 1 ms over loopback. " +
	"plain: the host process in its own session; runc: default spec but the host's network namespace " +
	"(runc has no port publishing, so this spares it any network set-up); oak: oak run --rm -p 127.0.0.1:PORT:8080, " +
	"its own empty network namespace with the port published through the network service"

// firstResponse runs busybox httpd from a small root file system of its
// own (busybox and /www/index.html) once per run, timing from the start of
// the command to the first HTTP 200 on its port, and stops it untimed.
func (env *startupEnv) firstResponse(ctx context.Context) (*Report, error) {
	root := filepath.Join(env.work, "httpd-root")
	if err := makeHTTPDRootFS(root, env.rootfs); err != nil {
		return nil, fmt.Errorf("bench startup: first response: %w", err)
	}
	busybox := filepath.Join(root, "bin", "busybox")
	var variants []Variant
	for _, name := range env.names {
		if v, ok := env.skipped(name); ok {
			variants = append(variants, v)
			continue
		}
		port, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("bench startup: first response: %w", err)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		var s server
		switch name {
		case VariantPlain:
			s = server{argv: []string{busybox, "httpd", "-f", "-p", addr, "-h", filepath.Join(root, "www")}, setsid: true}
		case VariantRunc:
			bundle := filepath.Join(env.work, "runc-httpd")
			args := []string{"/bin/busybox", "httpd", "-f", "-p", addr, "-h", "/www"}
			if err := writeRuncBundle(ctx, env.runc, bundle, root, args, false); err != nil {
				return nil, err
			}
			var id string
			s = server{
				argvFor: func() []string {
					id = env.runcID()
					return []string{env.runc, "--root", env.runcState, "run", "--bundle", bundle, id}
				},
				stop: func(ctx context.Context, p *os.Process) error {
					return runCommand(ctx, []string{env.runc, "--root", env.runcState, "kill", id, "KILL"})
				},
				cleanup: func(ctx context.Context) error { return env.runcRemove(ctx, env.runcState, id) },
			}
			s.detail = env.runcDetail + ", " + strings.Join(args, " ") + ", host network namespace"
		case VariantOak, VariantOakDirect:
			argv := []string{env.oak, "--root", env.oakRoot, "run", "--rm", "-p", fmt.Sprintf("%s:%d", addr, httpdPort),
				root, "/bin/busybox", "httpd", "-f", "-p", fmt.Sprintf("0.0.0.0:%d", httpdPort), "-h", "/www"}
			if name == VariantOakDirect {
				argv = slices.Insert(argv, 1, "--no-daemon")
			}
			s = server{
				argv: argv,
				// oak run forwards the signal to the container and removes it.
				stop: func(ctx context.Context, p *os.Process) error { return p.Signal(syscall.SIGTERM) },
			}
		}
		if s.detail == "" {
			s.detail = strings.Join(s.argv, " ")
		}
		variants = append(variants, s.variant(name, addr))
	}
	opts := Options{Runs: env.cfg.ResponseRuns, Warmup: 1}
	if opts.Runs == 0 {
		opts.Runs = DefaultResponseRuns
	}
	rep, err := Measure(ctx, variants, opts)
	if err != nil {
		return nil, err
	}
	rep.Benchmark = "startup"
	rep.Case = CaseFirstResponse
	rep.Description = FirstResponseDescription
	for _, n := range env.names {
		if n != VariantPlain {
			rep.AddRatio(n, VariantPlain)
		}
	}
	rep.AddRatio(VariantRunc, VariantOak)
	return rep, nil
}

// server is how one variant starts and stops its HTTP server.
type server struct {
	argv    []string        // the command, or
	argvFor func() []string // a new command per run
	setsid  bool
	detail  string
	// stop asks the running command to end (default: SIGKILL); the
	// variant then waits for it.
	stop func(ctx context.Context, p *os.Process) error
	// cleanup, if not nil, runs after the command has ended.
	cleanup func(ctx context.Context) error
}

// variant returns a Variant whose Run starts the server and returns at its
// first HTTP 200 on addr, and whose After stops it and waits for it.
func (s server) variant(name, addr string) Variant {
	var cmd *exec.Cmd
	var done chan struct{}
	var stderr *tailBuffer
	return Variant{
		Name:   name,
		Detail: s.detail,
		Run: func(ctx context.Context) error {
			argv := s.argv
			if s.argvFor != nil {
				argv = s.argvFor()
			}
			stderr = new(tailBuffer)
			cmd = exec.Command(argv[0], argv[1:]...)
			cmd.Stderr = stderr
			if s.setsid {
				cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
			}
			if err := cmd.Start(); err != nil {
				cmd = nil
				return err
			}
			done = make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			exited := func() error {
				select {
				case <-done:
					return fmt.Errorf("%s exited: %v: %s", argv[0], cmd.ProcessState, oneLine(stderr.String()))
				default:
					return nil
				}
			}
			return waitHTTP200(ctx, addr, firstResponseTimeout, exited)
		},
		After: func(ctx context.Context) error {
			if cmd == nil {
				return nil
			}
			defer func() { cmd = nil }()
			var err error
			select {
			case <-done:
			default:
				if s.stop != nil {
					err = s.stop(ctx, cmd.Process)
				} else {
					err = cmd.Process.Kill()
				}
				select {
				case <-done:
				case <-time.After(firstResponseTimeout):
					cmd.Process.Kill()
					<-done
					err = errors.Join(err, fmt.Errorf("%s did not end within %v of being stopped; killed", name, firstResponseTimeout))
				}
			}
			if s.cleanup != nil {
				err = errors.Join(err, s.cleanup(ctx))
			}
			return err
		},
	}
}

// waitHTTP200 polls addr every millisecond with `GET /` until it answers
// 200. A connection refused is polled again; any other status is an error,
// as is exited() returning one, and the timeout.
func waitHTTP200(ctx context.Context, addr string, timeout time.Duration, exited func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		status, err := httpGetStatus(addr, time.Until(deadline))
		if err == nil {
			if status == 200 {
				return nil
			}
			return fmt.Errorf("GET http://%s/: status %d, want 200", addr, status)
		}
		if xerr := exited(); xerr != nil {
			return xerr
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("GET http://%s/: no answer within %v: %w", addr, timeout, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// httpGetStatus sends `GET / HTTP/1.0` to addr and returns the status code
// of the answer.
func httpGetStatus(addr string, timeout time.Duration) (int, error) {
	c, err := net.DialTimeout("tcp", addr, max(timeout, time.Millisecond))
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(max(timeout, time.Second)))
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\nHost: bench\r\n\r\n"); err != nil {
		return 0, err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return 0, err
	}
	return parseStatusLine(line)
}

// parseStatusLine returns the code of an HTTP/1.x status line.
func parseStatusLine(line string) (int, error) {
	f := strings.Fields(line)
	if len(f) < 2 || !strings.HasPrefix(f[0], "HTTP/1.") || len(f[1]) != 3 {
		return 0, fmt.Errorf("not an HTTP status line: %q", line)
	}
	code, err := strconv.Atoi(f[1])
	if err != nil || code < 100 {
		return 0, fmt.Errorf("not an HTTP status line: %q", line)
	}
	return code, nil
}

// makeHTTPDRootFS makes the server's root file system at dir: a copy of
// the static busybox of rootfs (or the host's /bin/busybox) as
// /bin/busybox, /www/index.html, and empty mount points.
func makeHTTPDRootFS(dir, rootfs string) error {
	for _, d := range []string{"bin", "www", "proc", "dev", "sys", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	src := filepath.Join(rootfs, "bin", "busybox")
	if _, err := os.Stat(src); err != nil {
		src = "/bin/busybox"
	}
	if err := checkStaticBinary(src); err != nil {
		return err
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("busybox for the server: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "busybox"), data, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "www", "index.html"), []byte("oak bench\n"), 0o644)
}

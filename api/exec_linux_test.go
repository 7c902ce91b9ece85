package api

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/oak-engine/oak/engine"
)

// TestExecPassesDescriptors runs an exec through a daemon on its socket:
// the engine gets the caller's own descriptors (what it writes arrives in
// the caller's pipes), a signal reaches it, and its status comes back.
func TestExecPassesDescriptors(t *testing.T) {
	root := t.TempDir()
	startServe(t, root, &fakeEngine{})
	c := NewClient(root)
	inR, inW, _ := os.Pipe()
	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	inW.WriteString("from stdin")
	inW.Close()
	sigs := make(chan os.Signal, 1)
	sigs <- syscall.SIGUSR1
	code, err := c.Exec(context.Background(), "web", ExecRequest{Cmd: []string{"echo", "hi"}, Tty: true}, inR, outW, errW, sigs)
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		t.Fatal(err)
	}
	if code != 128+int(syscall.SIGUSR1) {
		t.Errorf("exit %d, want %d (the forwarded signal)", code, 128+int(syscall.SIGUSR1))
	}
	out, _ := io.ReadAll(outR)
	errs, _ := io.ReadAll(errR)
	if string(out) != "echo hi tty=true\n" || string(errs) != "from stdin" {
		t.Errorf("stdout %q, stderr %q", out, errs)
	}
}

// TestExecErrors: refusals before the switch come with a status, the
// engine's errors after it as an ErrorBody line; both unwrap as in-process.
func TestExecErrors(t *testing.T) {
	root := t.TempDir()
	startServe(t, root, &fakeEngine{})
	c := NewClient(root)
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = c.Exec(context.Background(), "nosuch", ExecRequest{Cmd: []string{"true"}}, f, f, f, nil)
	if !errors.Is(err, engine.ErrNoSuchContainer) {
		t.Errorf("exec in a missing container: %v", err)
	}
	_, err = c.Exec(context.Background(), "web", ExecRequest{}, f, f, f, nil)
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(ae.Message, "Cmd") {
		t.Errorf("exec without a command: %v", err)
	}
	_, err = c.Exec(context.Background(), "web", ExecRequest{Cmd: []string{"fail"}}, f, f, f, nil)
	if !errors.As(err, &ae) || ae.Code != CodeRefused || !strings.Contains(ae.Message, "not running") {
		t.Errorf("exec the engine refuses: %v", err)
	}
}

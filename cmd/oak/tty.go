package main

import (
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/oak-engine/oak/engine"
)

// ptyPair is a pseudo-terminal Oak makes for a container process (-t): the
// process gets the slave as its controlling terminal; the master stays
// here and is copied to and from this process's own terminal. The
// container never holds the caller's terminal, on which it could push
// input (TIOCSTI) or change modes.
type ptyPair struct {
	master, slave *os.File
	restore       func()
	stop          chan struct{}
}

// newPTY opens a pseudo-terminal sized like stdin's terminal (if stdin is
// one) and puts stdin's terminal in raw mode, so that Ctrl-C, Ctrl-Z and
// Ctrl-\ reach the container's line discipline as bytes and become signals
// for its foreground process group there. close restores the mode.
func newPTY() (*ptyPair, error) {
	master, slave, err := engine.OpenPTY()
	if err != nil {
		return nil, err
	}
	p := &ptyPair{master: master, slave: slave, restore: func() {}, stop: make(chan struct{})}
	in := int(os.Stdin.Fd())
	if term.IsTerminal(in) {
		p.resize()
		if st, err := term.MakeRaw(in); err == nil {
			p.restore = func() { term.Restore(in, st) }
		}
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		go func() {
			defer signal.Stop(winch)
			for {
				select {
				case <-winch:
					p.resize()
				case <-p.stop:
					return
				}
			}
		}()
	}
	return p, nil
}

// resize gives the terminal stdin's window size.
func (p *ptyPair) resize() {
	if ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ); err == nil {
		unix.IoctlSetWinsize(int(p.master.Fd()), unix.TIOCSWINSZ, ws)
	}
}

// pump copies stdin to the terminal and the terminal to stdout until the
// process is done; wait returns once the output has drained.
func (p *ptyPair) pump() (wait func()) {
	go io.Copy(p.master, os.Stdin)
	done := make(chan struct{})
	go func() {
		io.Copy(os.Stdout, p.master) // ends with EIO once every slave is closed
		close(done)
	}()
	return func() { <-done }
}

func (p *ptyPair) close() {
	close(p.stop)
	p.restore()
	p.master.Close()
}

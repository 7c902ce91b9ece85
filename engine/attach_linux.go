package engine

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// A detached container with a terminal (oak run -dit) gets a terminal its
// supervisor makes: the command holds the slave, the supervisor the master,
// whose output goes to the log and to every client attached (oak attach),
// and whose input is what the attached clients type. Nothing of a client's
// reaches the container but those bytes and its window size.

// termHub is the master side of a detached container's terminal.
type termHub struct {
	master *os.File
	mu     sync.Mutex
	conns  map[net.Conn]bool
}

// OpenPTY opens a pseudo-terminal pair: the master for Oak, the slave for
// a container process (see sandbox.Task.TTY).
func OpenPTY() (master, slave *os.File, err error) {
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("terminal: %w", err)
	}
	master = os.NewFile(uintptr(mfd), "ptmx")
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("terminal: unlock: %w", err)
	}
	// TIOCGPTPEER opens the slave of this very master, with open flags.
	sfd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(mfd), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if errno != 0 {
		master.Close()
		return nil, nil, fmt.Errorf("terminal: open slave: %w", errno)
	}
	return master, os.NewFile(sfd, "pts"), nil
}

// newTermHub starts copying master's output to the log (as stdout) and to
// the attached clients, until the master reports that the last slave closed
// (the container ended); then the clients are let go.
func newTermHub(master *os.File, lw *logWriter) *termHub {
	h := &termHub{master: master, conns: map[net.Conn]bool{}}
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := master.Read(buf)
			if n > 0 {
				lw.write(streamStdout, buf[:n])
				h.mu.Lock()
				for c := range h.conns {
					c.SetWriteDeadline(time.Now().Add(5 * time.Second))
					if _, err := c.Write(buf[:n]); err != nil {
						delete(h.conns, c)
						c.Close()
					}
				}
				h.mu.Unlock()
			}
			if err != nil {
				h.mu.Lock()
				for c := range h.conns {
					c.Close()
				}
				h.conns = nil
				h.mu.Unlock()
				return
			}
		}
	}()
	return h
}

// attach serves one client: its bytes are the terminal's input until it
// goes; the terminal's output reaches it from now on.
func (h *termHub) attach(c net.Conn, rows, cols uint16) {
	h.mu.Lock()
	if h.conns == nil {
		h.mu.Unlock()
		writeControl(c, controlReply{Error: "the container's terminal is closed"})
		c.Close()
		return
	}
	h.resize(rows, cols)
	c.SetDeadline(time.Time{})
	writeControl(c, controlReply{})
	h.conns[c] = true
	h.mu.Unlock()
	io.Copy(h.master, c)
	h.mu.Lock()
	if h.conns != nil {
		delete(h.conns, c)
	}
	h.mu.Unlock()
	c.Close()
}

func (h *termHub) resize(rows, cols uint16) {
	if rows > 0 && cols > 0 {
		unix.IoctlSetWinsize(int(h.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
	}
}

// attachRequest asks a supervisor for its container's terminal.
type attachRequest struct {
	Rows uint16 `json:"rows"`
	Cols uint16 `json:"cols"`
}

// ErrNoTerminal: oak attach of a container that runs without a terminal.
var ErrNoTerminal = errors.New("it has no terminal (started without -t): follow its output with oak logs -f")

// Attach connects to the terminal of the running container ref: what
// comes from in goes to it until in ends or the detach keys come (they are
// held back while they might be the keys, and never reach the container);
// the terminal's output goes to out. size gives the window size now and
// after each SIGWINCH on winch. It returns detached=true after the detach
// keys, else once the container ended, with its exit status.
func (e *Engine) Attach(ref string, in io.Reader, out io.Writer, size func() (rows, cols uint16), winch <-chan os.Signal, keys []byte) (code int, detached bool, err error) {
	if len(keys) == 0 {
		return 0, false, errors.New("attach: no detach keys")
	}
	c, err := e.Get(ref)
	if err != nil {
		return 0, false, err
	}
	if c.Status != StatusRunning {
		return 0, false, fmt.Errorf("attach %s: container is %s, not running", ref, c.Status)
	}
	path, closeDir, err := e.controlAddr(c.ID)
	if err != nil {
		return 0, false, fmt.Errorf("attach %s: %w", ref, err)
	}
	defer closeDir()
	conn, err := net.Dial("unix", path)
	if err != nil {
		return 0, false, fmt.Errorf("attach %s: %w", ref, err)
	}
	defer conn.Close()
	rows, cols := size()
	b, _ := json.Marshal(controlRequest{Attach: &attachRequest{Rows: rows, Cols: cols}})
	if _, err := conn.Write(append(b, '\n')); err != nil {
		return 0, false, fmt.Errorf("attach %s: %w", ref, err)
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadBytes('\n')
	var rep controlReply
	if err == nil {
		err = json.Unmarshal(line, &rep)
	}
	if err != nil {
		return 0, false, fmt.Errorf("attach %s: no answer from its supervisor: %w", ref, err)
	}
	if rep.Error != "" {
		return 0, false, fmt.Errorf("attach %s: %s", ref, rep.Error)
	}
	go func() {
		for range winch {
			rows, cols := size()
			e.control(ref, "resize", controlRequest{Resize: &attachRequest{Rows: rows, Cols: cols}})
		}
	}()
	detachedCh := make(chan struct{})
	go func() {
		buf := make([]byte, 1)
		var held []byte // a prefix of keys, not yet sent
		for {
			n, err := in.Read(buf)
			if n == 1 {
				b := buf[0]
				var send []byte
				switch {
				case b == keys[len(held)]:
					held = append(held, b)
				case b == keys[0]:
					send, held = held, []byte{b}
				default:
					send, held = append(held, b), nil
				}
				if len(held) == len(keys) {
					close(detachedCh)
					conn.Close() // ends the copy below; the supervisor lets this client go
					return
				}
				if len(send) > 0 {
					if _, err := conn.Write(send); err != nil {
						return
					}
				}
			}
			if err != nil {
				conn.(*net.UnixConn).CloseWrite()
				return
			}
		}
	}()
	io.Copy(out, r)
	select {
	case <-detachedCh:
		return 0, true, nil
	default:
	}
	// The terminal closed: the container ended. Its status is in its
	// record once the supervisor has written it.
	for i := 0; i < 200; i++ {
		c, err := e.Get(ref)
		if err != nil {
			return 0, false, err
		}
		if c.Status != StatusRunning {
			return c.ExitCode, false, nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	return 0, false, fmt.Errorf("attach %s: the terminal closed but the container still runs", ref)
}

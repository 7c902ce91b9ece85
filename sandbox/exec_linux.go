package sandbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/oak-engine/oak/sandbox/nsinit"
)

// ExecSpec is a process to start in a running container (oak exec).
type ExecSpec struct {
	Args     []string // argv; Args[0] is looked up in the PATH of Env
	Env      []string
	Cwd      string // "" means /
	UID, GID uint32
	// TTY: Stdin is a terminal, to become the process's controlling one.
	TTY                   bool
	Stdin, Stdout, Stderr *os.File
	// ExtraFiles reach the process at 3, 4, ... (at most nsinit.MaxExtraFDs).
	ExtraFiles []*os.File
	// DropCaps (bit N: capability N) are capabilities of the container's
	// root that this process does not get; it can only take away.
	DropCaps uint32
}

// MaxExtraFiles bounds ExecSpec.ExtraFiles and Task.ExtraFiles.
const MaxExtraFiles = nsinit.MaxExtraFDs

// Exec is a process started by Process.Exec.
type Exec struct {
	Pid  int // in the container's pid namespace
	id   uint32
	ch   *execChannel
	done chan struct{}
	code int
}

// ErrContainerEnded is what an Exec's Wait reports when the container
// ended before the process did (which it then did too).
var ErrContainerEnded = errors.New("the container ended")

// Exec starts spec in the container, through its init: the process is in
// the container's namespaces, root, groups and seccomp filter, holds what
// the container's own processes hold for its user (the eight capabilities
// as root, none otherwise) and nothing of the host's but spec's three
// descriptors. It returns once the process runs, or with an *ExecError if
// its command could not be started.
func (p *Process) Exec(spec ExecSpec) (*Exec, error) {
	if p.execs == nil {
		return nil, errors.New("exec: the container has no exec channel")
	}
	if len(spec.Args) == 0 || spec.Args[0] == "" {
		return nil, errors.New("exec: no command")
	}
	return p.execs.start(spec)
}

// Wait waits for the process to end and returns its status (128+N if
// signal N killed it).
func (x *Exec) Wait() (int, error) {
	<-x.done
	if x.code < 0 {
		return -1, ErrContainerEnded
	}
	return x.code, nil
}

// Signal sends sig to the process.
func (x *Exec) Signal(sig syscall.Signal) error {
	return x.ch.send(nsinit.ExecSignal, x.id, uint32(sig), nil, nil)
}

// execChannel is the host's end of a container's exec channel (see
// nsinit.c serve_exec): requests go out under mu, and one goroutine reads
// the answers and routes them to the waiting Execs by id.
type execChannel struct {
	f       *os.File
	mu      sync.Mutex
	next    uint32
	starts  map[uint32]chan int32
	running map[uint32]*Exec
	closed  bool
	// cmdDone is closed when init reports the command's status (cmdCode,
	// cmdOK) or the channel ends without it.
	cmdDone chan struct{}
	cmdCode int
	cmdOK   bool
}

func newExecChannel(f *os.File) *execChannel {
	ch := &execChannel{f: f, starts: map[uint32]chan int32{}, running: map[uint32]*Exec{}, cmdDone: make(chan struct{})}
	go ch.read()
	return ch
}

func (ch *execChannel) send(typ, id, val uint32, body []byte, fds []int) error {
	msg := binary.LittleEndian.AppendUint32(nil, uint32(typ))
	msg = binary.LittleEndian.AppendUint32(msg, id)
	msg = binary.LittleEndian.AppendUint32(msg, val)
	msg = append(msg, body...)
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if err := unix.Sendmsg(int(ch.f.Fd()), msg, oob, nil, 0); err != nil {
		return fmt.Errorf("exec channel: %w", err)
	}
	return nil
}

func (ch *execChannel) start(spec ExecSpec) (*Exec, error) {
	if len(spec.Args) > 4096 || len(spec.Env) > 4096 {
		return nil, errors.New("exec: too many arguments or variables")
	}
	var flags uint32
	if spec.TTY {
		flags |= nsinit.ExecFlagTTY
	}
	var body []byte
	for _, v := range []uint32{spec.GID, flags, uint32(len(spec.Args)), uint32(len(spec.Env)), spec.DropCaps} {
		body = binary.LittleEndian.AppendUint32(body, v)
	}
	for _, s := range append(append([]string{spec.Cwd}, spec.Args...), spec.Env...) {
		for i := 0; i < len(s); i++ {
			if s[i] == 0 {
				return nil, fmt.Errorf("exec: %q holds a NUL byte", s)
			}
		}
		body = append(append(body, s...), 0)
	}
	if len(spec.ExtraFiles) > nsinit.MaxExtraFDs {
		return nil, fmt.Errorf("exec: %d extra descriptors: at most %d", len(spec.ExtraFiles), nsinit.MaxExtraFDs)
	}
	stdio := append([]*os.File{spec.Stdin, spec.Stdout, spec.Stderr}, spec.ExtraFiles...)
	fds := make([]int, len(stdio))
	for i, f := range stdio {
		if f == nil {
			return nil, errors.New("exec: stdin, stdout, stderr and every extra descriptor must be given")
		}
		fds[i] = int(f.Fd())
	}
	ch.mu.Lock()
	if ch.closed {
		ch.mu.Unlock()
		return nil, ErrContainerEnded
	}
	ch.next++
	if ch.next == nsinit.ExecCommand { // after a wrap: the command's id
		ch.next++
	}
	id := ch.next
	started := make(chan int32, 1)
	ch.starts[id] = started
	x := &Exec{id: id, ch: ch, done: make(chan struct{})}
	ch.running[id] = x
	err := ch.send(nsinit.ExecStart, id, spec.UID, body, fds)
	if err != nil {
		delete(ch.starts, id)
		delete(ch.running, id)
	}
	ch.mu.Unlock()
	for _, f := range stdio {
		f.Fd() // keep them open until sent
	}
	if err != nil {
		return nil, err
	}
	res, ok := <-started
	if !ok {
		return nil, ErrContainerEnded
	}
	if res < 0 {
		ch.mu.Lock()
		delete(ch.running, id)
		ch.mu.Unlock()
		e := syscall.Errno(-res)
		return nil, &ExecError{Errno: e, Msg: fmt.Sprintf("exec %s: %s", spec.Args[0], execMessage(e))}
	}
	x.Pid = int(res)
	return x, nil
}

func execMessage(e syscall.Errno) string {
	if e == syscall.ENOENT {
		return "not found in the image's PATH"
	}
	return e.Error()
}

// read routes init's answers until the channel closes (the container
// ended); then every waiting Exec learns so.
func (ch *execChannel) read() {
	buf := make([]byte, 64)
	for {
		n, _, _, _, err := unix.Recvmsg(int(ch.f.Fd()), buf, nil, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			break
		}
		if n < 12 {
			continue
		}
		typ, id := binary.LittleEndian.Uint32(buf), binary.LittleEndian.Uint32(buf[4:])
		val := int32(binary.LittleEndian.Uint32(buf[8:]))
		ch.mu.Lock()
		switch typ {
		case nsinit.ExecStarted:
			if c, ok := ch.starts[id]; ok {
				delete(ch.starts, id)
				c <- val
			}
		case nsinit.ExecExited:
			if id == nsinit.ExecCommand && !ch.cmdOK {
				ch.cmdCode, ch.cmdOK = int(val), true
				close(ch.cmdDone)
			} else if x, ok := ch.running[id]; ok {
				delete(ch.running, id)
				x.code = int(val)
				close(x.done)
			}
		}
		ch.mu.Unlock()
	}
	ch.mu.Lock()
	ch.closed = true
	if !ch.cmdOK {
		close(ch.cmdDone)
	}
	ch.f.Close()
	for id, c := range ch.starts {
		delete(ch.starts, id)
		close(c)
	}
	for id, x := range ch.running {
		delete(ch.running, id)
		x.code = -1
		close(x.done)
	}
	ch.mu.Unlock()
}

// command waits until init reports the command's status or the channel
// ends without it (ok false).
func (ch *execChannel) command() (code int, ok bool) {
	<-ch.cmdDone
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.cmdCode, ch.cmdOK
}

// close ends the channel: a reader blocked on it returns.
func (ch *execChannel) close() {
	unix.Shutdown(int(ch.f.Fd()), unix.SHUT_RDWR)
}

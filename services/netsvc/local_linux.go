//go:build linux && (amd64 || arm64)

package netsvc

import (
	"bytes"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/oak-engine/oak/sandbox/nsinit"
)

// The container's own AF_UNIX sockets.
//
// A container may make AF_UNIX sockets (path and abstract names) and use
// them between its own processes: a path is looked up in the container's
// file system, an abstract name in its own network namespace, both of which
// are its own. The calls still arrive here, because the filter cannot tell
// an AF_UNIX socket from a host socket the service injected (both are just
// a descriptor number), and they are served so that nothing can be swapped
// between the check and the kernel's action:
//
//   - socket(AF_UNIX, ...) is let through (SECCOMP_USER_NOTIF_FLAG_CONTINUE):
//     its arguments are registers of the trapped thread, which no one else
//     can change, and the socket is made in the container's namespace.
//   - bind, listen, connect, sendto, sendmsg and sendmmsg on a descriptor
//     that, in the service's copy, is an AF_UNIX socket are let through only
//     when the calling process has a single thread. That thread is stopped
//     in this call, and the filter refuses clone(CLONE_FILES) without
//     CLONE_THREAD, so no one else can change the process's descriptor table
//     before the kernel re-reads the arguments: the descriptor the kernel
//     acts on is the AF_UNIX socket checked here, and on an AF_UNIX socket
//     any address names only the container's own objects. The kernel then
//     does the lookup with the caller's own root, working directory and
//     credentials.
//   - From a process with several threads, another thread could put a host
//     socket behind the number after the check, so nothing is let through:
//     bind and connect to an abstract name and listen are performed by the
//     service on its own copy (the name is looked up in the socket's network
//     namespace, the container's). A path name must be looked up in the
//     container's root, from the caller's working directory, with the
//     caller's ids: the service hands its copy of the socket, the caller's
//     working directory and ids to the container's init (Server.Local, see
//     nsinit.c serve_local), whose single-threaded helper makes the call
//     (let through by the rule above) and reports the result. Sends with a
//     path address go the way of other socketpair ends (see send_linux.go):
//     refused. Without Server.Local a path bind or connect is refused too.

// localCall serves c if it is about an AF_UNIX socket; ok is false
// otherwise, and c goes to the network handlers.
func (l *loop) localCall(c *call) (r result, ok bool) {
	if c.nr == unix.SYS_SOCKET {
		if int32(c.args[0]) != afUnix {
			return result{}, false
		}
		return result{cont: true}, true
	}
	switch c.nr {
	case unix.SYS_BIND, unix.SYS_LISTEN, unix.SYS_CONNECT, unix.SYS_SENDTO, unix.SYS_SENDMSG, unix.SYS_SENDMMSG:
	default:
		return result{}, false
	}
	s, err := c.sock(0)
	if err != nil {
		return result{err: err}, true
	}
	if s.kind.family != afUnix {
		return result{}, false
	}
	single, err := singleThreaded(c.tid)
	if err != nil {
		return result{err: err}, true
	}
	if single {
		if !c.valid() {
			return result{err: errGone}, true
		}
		return result{cont: true}, true
	}
	switch c.nr {
	case unix.SYS_LISTEN:
		if !c.valid() {
			return result{err: errGone}, true
		}
		return performed(0, unix.Listen(s.fd, int(int32(c.args[1])))), true
	case unix.SYS_BIND, unix.SYS_CONNECT:
		n := int32(c.args[2])
		if n < 2 || n > sizeofSockaddrUnix {
			return result{err: einval}, true
		}
		b := make([]byte, n)
		if err := c.read(c.args[1], b); err != nil {
			return result{err: err}, true
		}
		abstract := len(b) == 2 || b[2] == 0 // unnamed (autobind) or abstract
		fam := uint16(b[0]) | uint16(b[1])<<8
		if fam != afUnix && !(fam == afUnspec && c.nr == unix.SYS_CONNECT) {
			return result{err: einval}, true
		}
		if fam == afUnix && !abstract {
			if l.delegate == nil {
				return result{err: deny(eacces, "AF_UNIX path name from a multi-threaded process")}, true
			}
			op := uint32(nsinit.LocalBind)
			if c.nr == unix.SYS_CONNECT {
				op = nsinit.LocalConnect
			}
			cr, cwd, err := callerCreds(c.tid)
			if err != nil {
				return result{err: err}, true
			}
			if !c.valid() {
				unix.Close(cwd)
				return result{err: errGone}, true
			}
			// A helper in the container makes the call; this thread must
			// stay free to let the helper's own trapped call through.
			return result{later: func() result {
				defer unix.Close(cwd)
				return performed(0, l.delegate.do(op, s.fd, cwd, cr, b))
			}}, true
		}
		if !c.valid() {
			return result{err: errGone}, true
		}
		nr := uintptr(unix.SYS_BIND)
		if c.nr == unix.SYS_CONNECT {
			nr = unix.SYS_CONNECT
		}
		return performed(0, sysSockaddr(nr, s.fd, b)), true
	}
	return result{}, false // sends: see send_linux.go
}

// sizeofSockaddrUnix is sizeof(struct sockaddr_un).
const sizeofSockaddrUnix = 110

// singleThreaded reports whether the process of thread tid has one thread.
func singleThreaded(tid int) (bool, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/stat")
	if err != nil {
		if os.IsNotExist(err) {
			return false, errGone
		}
		return false, failure{eacces, &opError{"read thread count", err}}
	}
	// Field 20, num_threads, counted after the command name's ")".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return false, failure{eacces, fmt.Errorf("/proc/%d/stat: malformed", tid)}
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 18 {
		return false, failure{eacces, fmt.Errorf("/proc/%d/stat: malformed", tid)}
	}
	return string(f[17]) == "1", nil
}

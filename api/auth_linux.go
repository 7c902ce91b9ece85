package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// TenantSocket is the path of the socket tenants reach the daemon of
// root on: ROOT.tenants.sock, beside the state root rather than in it,
// because the root stays 0700 (no tenant may read a record, a log or a
// volume image directly) and a socket can only be reached through
// directories its caller may search. It is mode 0666: who may connect is
// decided per request, from the peer's credentials (see auth.go).
func TenantSocket(root string) string { return filepath.Clean(root) + ".tenants.sock" }

// socketFor is the socket the calling process reaches root's daemon on:
// root's own, 0600, for uid 0; the tenants' for anyone else.
func socketFor(root string) string {
	if os.Geteuid() == 0 {
		return filepath.Join(root, SocketName)
	}
	return TenantSocket(root)
}

// peerContext is the http.Server's ConnContext: it reads the credentials
// of the connection's peer, as the kernel recorded them when it
// connected (SO_PEERCRED), once per connection.
func peerContext(ctx context.Context, c net.Conn) context.Context {
	return withPeer(ctx, peerOf(c))
}

func peerOf(c net.Conn) peer {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return peer{err: fmt.Errorf("a %T is not a unix socket", c)}
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return peer{err: fmt.Errorf("peer credentials: %w", err)}
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		cerr = err
	}
	if cerr != nil {
		return peer{err: fmt.Errorf("peer credentials: %w", cerr)}
	}
	return peer{uid: cred.Uid, pid: cred.Pid}
}

// listenTenants makes the tenants' socket of root, mode 0666 from the
// start (umask 0111): connecting is anyone's, authority is decided per
// request. A socket file left by a dead daemon is replaced (the caller
// holds the daemon lock). The state root is narrowed to its owner's
// first, with a warning, if others may read or search it: a tenant must
// reach the records through the daemon only.
func listenTenants(root string, log *slog.Logger) (net.Listener, error) {
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("state root %s: %w", root, err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		if err := os.Chmod(root, perm&0o700); err != nil {
			return nil, fmt.Errorf("state root %s: narrow to its owner: %w", root, err)
		}
		log.Warn("daemon: the state root was open to others; narrowed to its owner, as tenants must not read it",
			"root", root, "was", perm.String(), "now", (perm & 0o700).String())
	}
	path := TenantSocket(root)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	old := syscall.Umask(0o111)
	l, err := listenUnix(path)
	syscall.Umask(old)
	if err != nil {
		return nil, err
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false) // Serve removes it, once
	return l, nil
}

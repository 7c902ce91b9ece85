package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/oak-engine/oak/api"
	"github.com/oak-engine/oak/engine"
)

// A tenant's token travels in a file, never on a command line (where any
// user reads it in /proc): root's oak writes it (oak tenant token NAME
// --file PATH, oak tenant create … --token-file PATH) for the user that
// will hold it, and that user's oak reads it (--token-file PATH, or
// OAK_TOKEN_FILE) and presents it to the daemon, which then takes the
// caller for the token's tenant (docs/tenants.md).

// tokenFile is --token-file.
var tokenFile string

func addTokenFlag(f *pflag.FlagSet) {
	f.StringVar(&tokenFile, "token-file", "", "act as the tenant whose token this file holds (env OAK_TOKEN_FILE; mode 0600, yours)")
}

// tokenPath is the token file this oak presents, if any.
func tokenPath() string {
	if tokenFile != "" {
		return tokenFile
	}
	return os.Getenv("OAK_TOKEN_FILE")
}

// maxTokenFile bounds what is read of a token file: a token and a newline.
const maxTokenFile = 4096

// readTokenFile reads the token in path. It refuses a file that is not
// the caller's own, one that others may read or write (a secret others
// can read is no longer the caller's, as ssh refuses such a key), a
// symbolic link, and anything but a regular file; what it reads must be
// a token and nothing else. Its errors never contain the file's content.
func readTokenFile(path string) (string, error) {
	op := "token file " + path
	// O_NONBLOCK: a FIFO put in the token's place must not hang the open.
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if errors.Is(err, unix.ELOOP) {
		return "", fmt.Errorf("%s: is a symbolic link; give the file itself", op)
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	perm := os.FileMode(st.Mode & 0o777)
	switch euid := uint32(os.Geteuid()); {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return "", fmt.Errorf("%s: not a regular file", op)
	case st.Uid != euid:
		return "", fmt.Errorf("%s: owned by uid %d, not by you (uid %d): a token file must be its holder's own", op, st.Uid, euid)
	case perm&0o077 != 0:
		return "", fmt.Errorf("%s: mode %04o lets others read or write it; a token is a secret: chmod 600 %s", op, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	if len(b) > maxTokenFile {
		return "", fmt.Errorf("%s: above %d bytes: not a token file", op, maxTokenFile)
	}
	tok := strings.TrimSpace(string(b))
	if err := engine.CheckTokenFormat(tok); err != nil {
		return "", fmt.Errorf("%s: holds no token (%v)", op, err)
	}
	return tok, nil
}

// tokenSink is a token file being made: created, empty, before the token
// exists, so that a bad path fails before anything is changed.
type tokenSink struct {
	f    *os.File
	path string
}

// createTokenFile makes path for a token held by uid: a new file (never
// one that exists: O_EXCL), reached without following any symbolic link
// on the way (openat2 RESOLVE_NO_SYMLINKS: root writes it, possibly in a
// directory a tenant's user controls), mode 0600, owned by uid.
func createTokenFile(path string, uid uint32) (*tokenSink, error) {
	op := "token file " + path
	fd, err := unix.Openat2(unix.AT_FDCWD, path, &unix.OpenHow{
		Flags:   unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Mode:    0o600,
		Resolve: unix.RESOLVE_NO_SYMLINKS,
	})
	switch {
	case errors.Is(err, unix.EEXIST):
		return nil, fmt.Errorf("%s: exists; a token file is always a new file (remove it, or choose another path)", op)
	case errors.Is(err, unix.ELOOP):
		return nil, fmt.Errorf("%s: the path goes through a symbolic link; give one without", op)
	case err != nil:
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	f := os.NewFile(uintptr(fd), path)
	if err := unix.Fchmod(fd, 0o600); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := unix.Fchown(fd, int(uid), -1); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("%s: give it to uid %d: %w", op, uid, err)
	}
	return &tokenSink{f: f, path: path}, nil
}

// write puts tok in the file and closes it.
func (s *tokenSink) write(tok string) error {
	_, err := s.f.WriteString(tok + "\n")
	if err == nil {
		err = s.f.Sync()
	}
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(s.path)
		return fmt.Errorf("token file %s: %w", s.path, err)
	}
	return nil
}

// discard removes the file, when no token came.
func (s *tokenSink) discard() {
	s.f.Close()
	os.Remove(s.path)
}

// openTenantClient is the client of root's daemon for this process as a
// tenant: on the tenants' socket for a uid but root's, presenting the
// token of --token-file if one is given. It fails, naming the socket, if
// no daemon answers: a tenant does not start one.
func openTenantClient(root string) (*api.Client, error) {
	if !daemonWanted() {
		if tokenPath() != "" {
			return nil, errors.New("--no-daemon (OAK_NO_DAEMON) with a token: a token is presented to the daemon; the engine in this process knows no tenants")
		}
		return nil, fmt.Errorf("--no-daemon (OAK_NO_DAEMON): only root runs the engine in this process; uid %d reaches it through the daemon, as a tenant", os.Geteuid())
	}
	c := api.NewClient(root)
	if p := tokenPath(); p != "" {
		tok, err := readTokenFile(p)
		if err != nil {
			return nil, err
		}
		c.WithToken(tok)
	}
	ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
	defer cancel()
	err := c.Ping(ctx)
	var ce *api.ConnError
	if errors.As(err, &ce) {
		var cause any = ce.Err
		var errno syscall.Errno
		if errors.As(ce.Err, &errno) {
			cause = errno // "no such file or directory", not the HTTP request around it
		}
		if os.Geteuid() == 0 {
			return nil, fmt.Errorf("no oak daemon answers on %s (%v): an oak presenting a token (--token-file, OAK_TOKEN_FILE) starts none; start it first (oak daemon)",
				filepath.Join(root, api.SocketName), cause)
		}
		return nil, fmt.Errorf("no oak daemon answers on %s (%v): uid %d cannot start one, because the daemon runs as root; the host's administrator starts it (oak daemon)",
			api.TenantSocket(root), cause, os.Geteuid())
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

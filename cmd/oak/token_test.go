package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/oak-engine/oak/engine"
)

var testToken = engine.TokenPrefix + strings.Repeat("x", engine.TokenLen-len(engine.TokenPrefix))

// TestTokenFileWrite: a token file is a new file, 0600, its holder's,
// reached through no symbolic link; an existing path or a link is
// refused and left as it was.
func TestTokenFileWrite(t *testing.T) {
	dir := t.TempDir()
	me := uint32(os.Geteuid())
	path := filepath.Join(dir, "tok")
	s, err := createTokenFile(path, me)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.write(testToken); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o600 || fi.Sys().(*syscall.Stat_t).Uid != me {
		t.Errorf("token file: mode %v uid %d, want -rw------- and uid %d", fi.Mode(), fi.Sys().(*syscall.Stat_t).Uid, me)
	}
	if got, err := readTokenFile(path); err != nil || got != testToken {
		t.Errorf("readTokenFile = %q, %v", got, err)
	}
	if _, err := createTokenFile(path, me); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("a second token file at the same path: %v, want refused as existing", err)
	}
	// A link in the token's place, or on the way to it.
	victim := filepath.Join(dir, "victim")
	os.WriteFile(victim, []byte("keep"), 0o644)
	os.Symlink(victim, filepath.Join(dir, "link"))
	os.Symlink(filepath.Join(dir, "missing"), filepath.Join(dir, "dangling"))
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o755)
	os.Symlink(sub, filepath.Join(dir, "sublink"))
	for _, p := range []string{filepath.Join(dir, "link"), filepath.Join(dir, "dangling"), filepath.Join(dir, "sublink", "tok")} {
		if s, err := createTokenFile(p, me); err == nil {
			s.discard()
			t.Errorf("createTokenFile(%s) through a symbolic link: made it", p)
		}
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Errorf("the link's target was written: %q", b)
	}
	for _, p := range []string{filepath.Join(dir, "missing"), filepath.Join(sub, "tok")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s was made through a link", p)
		}
	}
	if os.Geteuid() == 0 {
		p := filepath.Join(dir, "for4001")
		s, err := createTokenFile(p, 4001)
		if err != nil {
			t.Fatal(err)
		}
		s.write(testToken)
		if fi, err := os.Stat(p); err != nil || fi.Sys().(*syscall.Stat_t).Uid != 4001 || fi.Mode() != 0o600 {
			t.Errorf("token file for uid 4001: %v %v", fi, err)
		}
		// Not the reader's own: refused.
		if _, err := readTokenFile(p); err == nil || !strings.Contains(err.Error(), "owned by uid 4001") {
			t.Errorf("reading uid 4001's token file as root: %v", err)
		}
	}
}

// TestTokenFileRead: what the CLI refuses to present.
func TestTokenFileRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	ok := write("ok", testToken+"\n", 0o600)
	if got, err := readTokenFile(ok); err != nil || got != testToken {
		t.Errorf("readTokenFile(0600 file) = %q, %v", got, err)
	}
	if got, err := readTokenFile(write("ro", testToken, 0o400)); err != nil || got != testToken {
		t.Errorf("readTokenFile(0400 file) = %q, %v", got, err)
	}
	os.Symlink(ok, filepath.Join(dir, "link"))
	syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600)
	for _, c := range []struct{ path, want string }{
		{write("wide", testToken, 0o644), "mode 0644 lets others read or write it"},
		{write("group", testToken, 0o640), "mode 0640"},
		{write("gw", testToken, 0o620), "mode 0620"},
		{filepath.Join(dir, "link"), "symbolic link"},
		{filepath.Join(dir, "fifo"), "not a regular file"},
		{dir, "not a regular file"},
		{filepath.Join(dir, "missing"), "no such file"},
		{write("junk", "password123\n", 0o600), "holds no token"},
		{write("two", testToken+"\n"+testToken+"\n", 0o600), "holds no token"},
		{write("big", strings.Repeat("x", 5000), 0o600), "not a token file"},
	} {
		got, err := readTokenFile(c.path)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("readTokenFile(%s) = %q, %v; want an error saying %q", c.path, got, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), "password123") || strings.Contains(err.Error(), testToken[4:12]) {
			t.Errorf("readTokenFile(%s): the error repeats the content: %v", c.path, err)
		}
	}
}

//go:build linux

package integration

import (
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tokenDir is a directory the tenants' users may reach files in (0711),
// removed after the test.
func tokenDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "oak-tokens-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	return dir
}

// fileOwner is path's uid and permission bits.
func fileOwner(t *testing.T, path string) (uint32, os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Uid, fi.Mode()
}

// TestTenantTokens: root gives tenant a a token in a file for uid 4009,
// who is no tenant: with it, 4009 acts as a (its containers, a's
// factory), and only as a. A wrong token, a rotated-out one and a revoked
// one get one refusal that names no tenant; a token file others may read
// is refused by the CLI; a token file is never written over an existing
// file or through a link; root presenting a token acts as that tenant.
func TestTenantTokens(t *testing.T) {
	needOak(t, true)
	o := newTenantOak(t)
	dir := tokenDir(t)
	tokA := filepath.Join(dir, "a.token")
	if r := o.run("tenant", "token", "a", "--file", tokA, "--owner", "4009"); r.code != 0 {
		t.Fatalf("%s", r)
	}
	if uid, mode := fileOwner(t, tokA); uid != uidNobody || mode != 0o600 {
		t.Errorf("token file: uid %d mode %v, want uid %d, -rw-------", uid, mode, uidNobody)
	}
	if b, _ := os.ReadFile(tokA); !strings.HasPrefix(string(b), "oak_") || len(strings.TrimSpace(string(b))) != 47 {
		t.Errorf("token file holds %d bytes, want oak_ and 43 characters", len(b))
	}
	if r := o.run("tenant", "inspect", "a", "--format", "{{.Token}}"); r.code != 0 || strings.TrimSpace(r.stdout) != "true" {
		t.Errorf("tenant a has a token: want true\n%s", r)
	}
	// The record keeps no token.
	if b, err := os.ReadFile(filepath.Join(o.root, "tenants", "a.json")); err != nil || strings.Contains(string(b), "oak_") {
		t.Errorf("tenant a's record: %v\n%s", err, b)
	}

	// uid 4009 is no tenant, but with a's token acts as a.
	if r := o.as(uidNobody, "ps"); r.code == 0 || !strings.Contains(r.stderr, "not a tenant") {
		t.Errorf("uid 4009 without a token\n%s", r)
	}
	r := o.as(uidNobody, "--token-file", tokA, "run", "-d", "--name", "tokweb", "demo", "sleep", "600")
	if r.code != 0 {
		t.Fatalf("uid 4009 running a container with a's token\n%s", r)
	}
	id := strings.TrimSpace(r.stdout)
	if r := o.asEnv(uidNobody, []string{"OAK_TOKEN_FILE=" + tokA}, "ps", "--format", "{{.Names}}"); r.code != 0 || strings.TrimSpace(r.stdout) != "tokweb" {
		t.Errorf("uid 4009 with a's token (OAK_TOKEN_FILE): ps: want tokweb\n%s", r)
	}
	if r := o.run("ps", "--format", "{{.Names}}"); r.code != 0 || strings.TrimSpace(r.stdout) != "a.tokweb" {
		t.Errorf("root's ps: want a.tokweb, a's container\n%s", r)
	}
	if r := o.as(uidA, "ps", "-q", "--no-trunc"); r.code != 0 || strings.TrimSpace(r.stdout) != id {
		t.Errorf("tenant a (by uid) sees the container made with its token: want %s\n%s", id, r)
	}
	if r := o.as(uidB, "inspect", id); r.code == 0 {
		t.Errorf("tenant b inspected a's container\n%s", r)
	}
	if r := o.as(uidNobody, "--token-file", tokA, "tenant", "inspect", "self", "--format", "{{.Name}} {{.Token}}"); r.code != 0 || strings.TrimSpace(r.stdout) != "a true" {
		t.Errorf("uid 4009 with a's token: tenant inspect self: want a true\n%s", r)
	}
	if r := o.as(uidNobody, "--token-file", tokA, "tenant", "ls"); r.code == 0 || !strings.Contains(r.stderr, "only root manages tenants") {
		t.Errorf("a's token on the tenant routes: want 403\n%s", r)
	}

	// A token file is a new file, reached through no link; refusing one
	// changes nothing (a's token still works).
	victim := filepath.Join(dir, "victim")
	os.WriteFile(victim, []byte("keep\n"), 0o644)
	os.Symlink(victim, filepath.Join(dir, "link"))
	os.Symlink(dir, filepath.Join(dir, "dirlink"))
	for _, c := range []struct{ path, want string }{
		{tokA, "exists"},
		{filepath.Join(dir, "link"), "exists"}, // O_EXCL: the link is there
		{filepath.Join(dir, "dirlink", "new.token"), "symbolic link"},
	} {
		if r := o.run("tenant", "token", "a", "--file", c.path, "--owner", "4009"); r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("tenant token to %s: want a refusal saying %q\n%s", c.path, c.want, r)
		}
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep\n" {
		t.Errorf("a link's target was written: %q", b)
	}
	if _, err := os.Lstat(filepath.Join(dir, "new.token")); err == nil {
		t.Errorf("a token file was made through a directory link")
	}
	if r := o.as(uidNobody, "--token-file", tokA, "ps", "-q"); r.code != 0 {
		t.Errorf("a's token after refused token requests\n%s", r)
	}

	// The CLI refuses a token file others may read, and a link.
	os.Chmod(tokA, 0o644)
	if r := o.as(uidNobody, "--token-file", tokA, "ps"); r.code == 0 || !strings.Contains(r.stderr, "lets others read") {
		t.Errorf("a token file of mode 0644: want refused\n%s", r)
	}
	os.Chmod(tokA, 0o600)
	os.Symlink(tokA, filepath.Join(dir, "a.link"))
	if r := o.as(uidNobody, "--token-file", filepath.Join(dir, "a.link"), "ps"); r.code == 0 || !strings.Contains(r.stderr, "symbolic link") {
		t.Errorf("a token file through a link: want refused\n%s", r)
	}
	if r := o.run("--token-file", tokA, "ps"); r.code == 0 || !strings.Contains(r.stderr, "owned by uid 4009, not by you") {
		t.Errorf("root presenting uid 4009's token file: want refused\n%s", r)
	}

	// A wrong token, a rotated-out one and a revoked one: one refusal.
	b := make([]byte, 32)
	rand.Read(b)
	wrong := filepath.Join(dir, "wrong.token")
	os.WriteFile(wrong, []byte("oak_"+base64.RawURLEncoding.EncodeToString(b)+"\n"), 0o600)
	os.Chown(wrong, uidNobody, uidNobody)
	refusal := o.as(uidNobody, "--token-file", wrong, "ps")
	if refusal.code == 0 || !strings.Contains(refusal.stderr, "invalid token") {
		t.Fatalf("a wrong token: want refused\n%s", refusal)
	}
	for _, leak := range []string{"tenant a", "tenant b", "a's", "4001", "4002"} {
		if strings.Contains(refusal.stderr, leak) {
			t.Errorf("the refusal of a wrong token names %q: %s", leak, refusal.stderr)
		}
	}
	tokA2 := filepath.Join(dir, "a2.token")
	if r := o.run("tenant", "token", "a", "--file", tokA2, "--owner", "4009"); r.code != 0 {
		t.Fatalf("rotation\n%s", r)
	}
	if r := o.as(uidNobody, "--token-file", tokA, "ps"); r.code != refusal.code || r.stderr != refusal.stderr {
		t.Errorf("a rotated-out token: exit %d %q; a wrong one: exit %d %q", r.code, r.stderr, refusal.code, refusal.stderr)
	}
	if r := o.as(uidNobody, "--token-file", tokA2, "ps", "--format", "{{.Names}}"); r.code != 0 || strings.TrimSpace(r.stdout) != "tokweb" {
		t.Errorf("a's new token\n%s", r)
	}
	if r := o.run("tenant", "token", "rm", "a"); r.code != 0 {
		t.Fatalf("%s", r)
	}
	if r := o.as(uidNobody, "--token-file", tokA2, "ps"); r.code != refusal.code || r.stderr != refusal.stderr {
		t.Errorf("a revoked token: exit %d %q; a wrong one: exit %d %q", r.code, r.stderr, refusal.code, refusal.stderr)
	}
	if r := o.run("tenant", "inspect", "a", "--format", "{{.Token}}"); r.code != 0 || strings.TrimSpace(r.stdout) != "false" {
		t.Errorf("tenant a after its token was revoked: want false\n%s", r)
	}

	// A token acts as its tenant only: b's token, on a's uid or on root,
	// sees b's containers (none), not a's or root's.
	for _, who := range []struct {
		uid   uint32
		owner string
	}{{uidA, "4001"}, {0, "0"}} {
		tok := filepath.Join(dir, "b-for-"+who.owner)
		if r := o.run("tenant", "token", "b", "--file", tok, "--owner", who.owner); r.code != 0 {
			t.Fatalf("%s", r)
		}
		var r result
		if who.uid == 0 {
			r = o.run("--token-file", tok, "ps", "-a", "-q")
		} else {
			r = o.as(who.uid, "--token-file", tok, "ps", "-a", "-q")
		}
		if r.code != 0 || strings.TrimSpace(r.stdout) != "" {
			t.Errorf("uid %d with b's token: ps -a: want nothing (b has no containers)\n%s", who.uid, r)
		}
		if who.uid == 0 {
			if r := o.run("--token-file", tok, "tenant", "ls"); r.code == 0 || !strings.Contains(r.stderr, "only root manages tenants") {
				t.Errorf("root with b's token on the tenant routes: want 403, as b\n%s", r)
			}
		}
	}

	// oak tenant create --token-file: the tenant and its token at once.
	tokC := filepath.Join(dir, "c.token")
	if r := o.run("tenant", "create", "--uid", "4005", "--memory", "128m", "--token-file", tokC, "--token-owner", "4009", "c"); r.code != 0 {
		t.Fatalf("%s", r)
	}
	t.Cleanup(func() { o.run("tenant", "rm", "c") })
	if uid, mode := fileOwner(t, tokC); uid != uidNobody || mode != 0o600 {
		t.Errorf("tenant create --token-file: uid %d mode %v", uid, mode)
	}
	if r := o.as(uidNobody, "--token-file", tokC, "ps", "-a", "-q"); r.code != 0 || strings.TrimSpace(r.stdout) != "" {
		t.Errorf("c's token: want c's (no) containers\n%s", r)
	}
	if r := o.run("tenant", "create", "--uid", "4006", "--memory", "128m", "--token-file", tokC, "d"); r.code == 0 || !strings.Contains(r.stderr, "exists") {
		t.Errorf("tenant create --token-file over an existing file: want refused\n%s", r)
	}
	if r := o.run("tenant", "inspect", "d"); r.code == 0 {
		t.Errorf("tenant d was made though its token file was refused\n%s", r)
		o.run("tenant", "rm", "d")
	}
	if r := o.run("rm", "-f", id); r.code != 0 {
		t.Errorf("%s", r)
	}
}

// TestTenantManagementRoutes: oak tenant goes through the daemon for root
// (and in-process with --no-daemon); a tenant's oak tenant … is refused
// by the daemon, whichever tenant it names, and changes nothing.
func TestTenantManagementRoutes(t *testing.T) {
	needOak(t, true)
	o := newTenantOak(t)
	if r := o.run("tenant", "ls", "-q"); r.code != 0 || strings.Fields(r.stdout)[0] != "a" || len(strings.Fields(r.stdout)) != 2 {
		t.Errorf("root's tenant ls: want a and b\n%s", r)
	}
	log, err := os.ReadFile(filepath.Join(o.root, "daemon.log"))
	if err != nil || !strings.Contains(string(log), "tenant created") {
		t.Errorf("the tenants were not made through the daemon (its log: %v)\n%s", err, log)
	}
	if r := o.run("--no-daemon", "tenant", "inspect", "a", "--format", "{{.Factory}}"); r.code != 0 || strings.TrimSpace(r.stdout) != "a" {
		t.Errorf("root's tenant inspect in-process\n%s", r)
	}
	if r := o.run("tenant", "inspect", "nosuch"); r.code == 0 || !strings.Contains(r.stderr, "no such tenant") {
		t.Errorf("inspect of a missing tenant\n%s", r)
	}
	for _, args := range [][]string{
		{"tenant", "ls"}, {"tenant", "inspect", "a"}, {"tenant", "inspect", "b"}, {"tenant", "inspect", "nosuch"},
		{"tenant", "rm", "b"}, {"tenant", "token", "a"}, {"tenant", "token", "b"}, {"tenant", "token", "rm", "b"},
		{"tenant", "create", "--uid", "4007", "--memory", "64m", "x"},
	} {
		if r := o.as(uidA, args...); r.code == 0 || !strings.Contains(r.stderr, "only root manages tenants") {
			t.Errorf("tenant a: oak %s: want a refusal\n%s", strings.Join(args, " "), r)
		}
	}
	if r := o.as(uidB, "tenant", "inspect", "self", "--format", "{{.Name}} {{.Factory}}"); r.code != 0 || strings.TrimSpace(r.stdout) != "b b" {
		t.Errorf("tenant b: tenant inspect self: want b b\n%s", r)
	}
	if r := o.run("tenant", "inspect", "self"); r.code == 0 || !strings.Contains(r.stderr, "no such tenant") {
		t.Errorf("root: tenant inspect self: want no such tenant\n%s", r)
	}
	if r := o.run("tenant", "create", "--uid", "4008", "--memory", "64m", "self"); r.code == 0 || !strings.Contains(r.stderr, `invalid tenant name "self"`) {
		t.Errorf("a tenant named self: want refused\n%s", r)
		o.run("tenant", "rm", "self")
	}
	if r := o.as(uidNobody, "tenant", "ls"); r.code == 0 || !strings.Contains(r.stderr, "not a tenant") {
		t.Errorf("uid 4009: tenant ls: want a refusal\n%s", r)
	}
	if r := o.run("tenant", "ls", "-q"); strings.Join(strings.Fields(r.stdout), " ") != "a b" {
		t.Errorf("tenants after a's attempts: want a b\n%s", r)
	}
	if r := o.run("tenant", "inspect", "b", "--format", "{{.Token}}"); strings.TrimSpace(r.stdout) != "false" {
		t.Errorf("tenant b got a token from a's attempt\n%s", r)
	}
	// Without --file the token is printed; in-process as through the daemon.
	for _, args := range [][]string{{"tenant", "token", "b"}, {"--no-daemon", "tenant", "token", "b"}} {
		r := o.run(args...)
		if tok := strings.TrimSpace(r.stdout); r.code != 0 || !strings.HasPrefix(tok, "oak_") || len(tok) != 47 {
			t.Errorf("oak %s: want a token printed\n%s", strings.Join(args, " "), r)
		}
	}
	if r := o.run("tenant", "token", "rm", "b"); r.code != 0 {
		t.Errorf("%s", r)
	}
	if r := o.run("tenant", "token", "rm", "b"); r.code == 0 || !strings.Contains(r.stderr, "has no token") {
		t.Errorf("revoking a token b no longer has: want refused\n%s", r)
	}
}

// TestTenantVolumesAndImages: a tenant's volume verbs go through the
// daemon, for its own factory; another tenant cannot see, inspect, mount
// or remove its volume, and is told what it is told of a volume that
// does not exist; volume names are one space, and a taken one is said
// to be taken, never whose. Images are read-only to tenants.
func TestTenantVolumesAndImages(t *testing.T) {
	needOak(t, true)
	o := newTenantOak(t)
	t.Cleanup(func() { o.run("volume", "rm", "avol") }) // before the tenants go
	if r := o.as(uidA, "volume", "create", "--size", "16m", "--sparse", "avol"); r.code != 0 || strings.TrimSpace(r.stdout) != "avol" {
		t.Fatalf("tenant a's volume create\n%s", r)
	}
	if f := o.inspectFactory("a"); len(f.Volumes) != 1 || f.Volumes[0] != "avol" {
		t.Errorf("factory a's volumes: %v, want [avol]", f.Volumes)
	}
	if r := o.as(uidA, "volume", "create", "--size", "3g", "--sparse", "big"); r.code == 0 {
		t.Errorf("tenant a: a volume above its factory's 2g disk quota\n%s", r)
		o.run("volume", "rm", "big")
	}
	if r := o.as(uidA, "volume", "create", "--size", "16m", "--factory", "b", "x"); r.code == 0 || !strings.Contains(r.stderr, "own factory") {
		t.Errorf("tenant a: volume create --factory b\n%s", r)
	}
	if r := o.as(uidA, "volume", "ls", "-q"); r.code != 0 || strings.TrimSpace(r.stdout) != "avol" {
		t.Errorf("tenant a's volume ls: want avol\n%s", r)
	}
	if r := o.as(uidA, "volume", "inspect", "avol", "--format", "{{.Size}}"); r.code != 0 || strings.TrimSpace(r.stdout) != "16777216" {
		t.Errorf("tenant a's volume inspect\n%s", r)
	}
	if r := o.as(uidB, "volume", "ls", "-q"); r.code != 0 || strings.TrimSpace(r.stdout) != "" {
		t.Errorf("tenant b's volume ls: want nothing\n%s", r)
	}
	// b on a's volume: as on one that does not exist.
	for _, verb := range [][]string{{"volume", "inspect"}, {"volume", "rm"}, {"inspect", "--type", "volume"}, {"inspect"},
		{"run", "-d", "-v", "REF:/data", "demo", "true"}} {
		got := o.as(uidB, withRef(verb, "avol")...)
		missing := o.as(uidB, withRef(verb, "nosuchvol")...)
		want := strings.ReplaceAll(missing.stderr, "nosuchvol", "avol")
		if got.code == 0 || got.code != missing.code || got.stderr != want || !strings.Contains(got.stderr, "no such") {
			t.Errorf("tenant b: oak %s: exit %d %q; on a missing volume: exit %d %q",
				strings.Join(withRef(verb, "avol"), " "), got.code, got.stderr, missing.code, missing.stderr)
		}
	}
	if r := o.run("volume", "inspect", "avol"); r.code != 0 {
		t.Errorf("a's volume after b's attempts\n%s", r)
	}
	r := o.as(uidB, "volume", "create", "--size", "16m", "--sparse", "avol")
	if r.code == 0 || !strings.Contains(r.stderr, "taken") || strings.Contains(r.stderr, "tenant a") || strings.Contains(r.stderr, "factory a") {
		t.Errorf("tenant b creating a taken name: want 'taken', naming nobody\n%s", r)
	}
	// a mounts its own, writes to it, and removes it.
	r = o.as(uidA, "run", "-d", "--name", "w", "-v", "avol:/data", "demo", "/bin/sh", "-c", "echo kept > /data/f && cat /data/f && sleep 600")
	if r.code != 0 {
		t.Fatalf("tenant a mounting its volume\n%s", r)
	}
	o.waitOutput(strings.TrimSpace(r.stdout), "kept", 30*time.Second)
	if r := o.as(uidA, "volume", "rm", "avol"); r.code == 0 {
		t.Errorf("tenant a removed a volume its running container holds\n%s", r)
	}
	if r := o.as(uidB, "volume", "rm", "avol"); r.code == 0 || !strings.Contains(r.stderr, "no such volume") {
		t.Errorf("tenant b: volume rm of a's volume in use: want no such volume\n%s", r)
	}
	if r := o.as(uidA, "rm", "-f", "w"); r.code != 0 {
		t.Fatalf("%s", r)
	}
	if r := o.as(uidA, "volume", "rm", "avol"); r.code != 0 {
		t.Errorf("tenant a's volume rm\n%s", r)
	}
	if r := o.run("volume", "inspect", "avol"); r.code == 0 {
		t.Errorf("avol is left after its tenant removed it\n%s", r)
	}

	// Images: the host's, read-only to tenants.
	if r := o.as(uidA, "images", "--format", "{{.Repository}}"); r.code != 0 || !strings.Contains(r.stdout, "demo") {
		t.Errorf("tenant a's images: want demo\n%s", r)
	}
	if r := o.as(uidA, "image", "inspect", "demo"); r.code != 0 {
		t.Errorf("tenant a's image inspect\n%s", r)
	}
	if r := o.as(uidA, "image", "inspect", "nosuchimage"); r.code == 0 || !strings.Contains(r.stderr, "nosuchimage") {
		t.Errorf("tenant a's image inspect of a missing image\n%s", r)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"image", "import", "/etc/hostname"}, "only root adds"},
		{[]string{"load", "-i", "/etc/hostname"}, "only root adds"},
		{[]string{"pull", "localhost:5000/x"}, "only root adds"},
		{[]string{"image", "tag", "demo", "mine"}, "only root adds"},
		{[]string{"image", "prune"}, "only root adds"},
		{[]string{"image", "rm", "demo"}, "not open to tenants"},
		{[]string{"volume", "prune"}, "not open to tenants"},
	} {
		if r := o.as(uidA, c.args...); r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("tenant a: oak %s: want a refusal saying %q\n%s", strings.Join(c.args, " "), c.want, r)
		}
	}
	if r := o.as(uidNobody, "images"); r.code == 0 || !strings.Contains(r.stderr, "not a tenant") {
		t.Errorf("uid 4009: images: want refused\n%s", r)
	}
}

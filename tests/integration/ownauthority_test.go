//go:build linux

package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sh runs script with the test image's shell and returns the result.
func (o *oakEnv) sh(flags []string, script string) result {
	o.t.Helper()
	args := append(append([]string{"run", "--rm"}, flags...), rootfsDir, "/bin/sh", "-c", script)
	return o.run(args...)
}

// By default a container writes to a private layer over its image: what it
// writes is its own, invisible to the host and to other containers, bounded
// by --storage-size, and gone with the container.
func TestRootWritable(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	cases := [][]string{
		{"write-file", "/oak-new"},
		{"write-file", "/etc/oak-new"},
		{"write-file", "/bin/busybox"}, // truncating a file of the image copies it up
		{"mkdir", "/oak-dir"},
		{"unlink", "/bin/probe2"},
		{"chmod", "/bin/busybox"},
		{"symlink", "/bin/oak-link"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c, " "), func(t *testing.T) {
			o := o.sub(t)
			t.Parallel()
			got := o.probe(c...)
			if c[0] == "unlink" {
				if got != "err ENOENT" {
					t.Errorf("probe %s: got %q, want err ENOENT (the file does not exist)", strings.Join(c, " "), got)
				}
				return
			}
			if got != "ok" {
				t.Errorf("probe %s: got %q, want ok", strings.Join(c, " "), got)
			}
		})
	}
	t.Run("private and discarded", func(t *testing.T) {
		o := o.sub(t)
		t.Parallel()
		r := o.sh(nil, "echo mine > /etc/motd-oak && rm /bin/ls && cat /etc/motd-oak && ls /bin/ls 2>&1; true")
		if !strings.Contains(r.stdout, "mine") || !strings.Contains(r.stdout, "No such file") {
			t.Fatalf("write then read back in one container:\n%s", r)
		}
		r = o.sh(nil, "cat /etc/motd-oak 2>&1; ls /bin/ls")
		if strings.Contains(r.stdout, "mine") || !strings.Contains(r.stdout, "/bin/ls") {
			t.Errorf("a second container sees the first one's writes:\n%s", r)
		}
		for _, f := range []string{"etc/motd-oak"} {
			if _, err := os.Stat(filepath.Join(rootfsDir, f)); err == nil {
				t.Errorf("the image on the host gained %s", f)
			}
		}
		if _, err := os.Stat(filepath.Join(rootfsDir, "bin/ls")); err != nil {
			t.Errorf("the image on the host lost bin/ls: %v", err)
		}
	})
	t.Run("storage-size bounds it", func(t *testing.T) {
		o := o.sub(t)
		t.Parallel()
		r := o.sh([]string{"--storage-size", "2m"}, "dd if=/dev/zero of=/big bs=1024 count=4096 2>&1; echo status=$?")
		if !strings.Contains(r.stdout, "No space left") || strings.Contains(r.stdout, "status=0") {
			t.Errorf("writing 4 MiB into a 2 MiB writable layer:\n%s", r)
		}
	})
	t.Run("setuid bits mean nothing", func(t *testing.T) {
		o := o.sub(t)
		t.Parallel()
		// Root may make a setuid-root copy of a shell in its own layer; the
		// layer is nosuid and no_new_privs holds, so another user running
		// it stays that user.
		r := o.sh(nil, "cp /bin/busybox /id && chmod 4755 /id && ls -l /id && su -s /bin/sh nobody -c '/id -u'")
		out := strings.Fields(r.stdout)
		if r.code != 0 || len(out) == 0 || out[len(out)-1] != "65534" || !strings.HasPrefix(r.stdout, "-rwsr-xr-x") {
			t.Errorf("setuid copy of busybox run by nobody:\n%s", r)
		}
	})
}

// Container root has authority over its own files and users, as on a
// host, and nothing beyond: no new namespace, no mount, no unmapped id.
func TestOwnAuthority(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	cases := []struct {
		name, script, want string
	}{
		{"chown own file", "touch /tmp/f && chown 100:101 /tmp/f && stat -c %u:%g /tmp/f", "100:101"},
		{"chown in the image layer", "chown 5:5 /etc/passwd && stat -c %u:%g /etc/passwd", "5:5"},
		{"switch user", "su -s /bin/sh nobody -c 'id -u; grep CapEff /proc/self/status'", "65534\nCapEff:\t0000000000000000"},
		{"read another user's file", "echo s > /tmp/s && chown 100 /tmp/s && chmod 600 /tmp/s && cat /tmp/s", "s"},
		{"unmapped id refused", "touch /tmp/u && chown 70000 /tmp/u 2>&1; echo $?", "chown: /tmp/u: Invalid argument\n1"},
		{"signal another user's process", "su -s /bin/sh nobody -c 'sleep 30' & sleep 0.2; kill %1 && wait %1; echo $?", "143"},
		{"mount still refused", "mount -t tmpfs none /mnt 2>&1; echo $?", "mount: permission denied (are you root?)\n1"},
		{"no new user namespace", "unshare -U true 2>&1; echo $?", "unshare: unshare(0x10000000): Operation not permitted\n1"},
		{"capabilities of a non-root image user stay empty", "su -s /bin/sh nobody -c 'grep CapBnd /proc/self/status'", "CapBnd:\t00000000000001fb"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := o.sub(t)
			t.Parallel()
			r := o.sh(nil, c.script)
			if got := strings.TrimSpace(r.stdout); got != c.want {
				t.Errorf("sh -c %q: got %q, want %q\n%s", c.script, got, c.want, r)
			}
		})
	}
}

// AF_UNIX sockets are the container's own: path names in its file system,
// abstract names in its network namespace. They work with and without
// network grants (with grants the calls go through the network service; a
// multi-threaded program's path binds and connects are made by a helper in
// the container with its ids and working directory: see
// services/netsvc/local_linux.go), and the file system's permissions apply
// to the caller as they would natively.
func TestUnixSockets(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	grant := []string{"--egress", "127.0.0.1:9"}
	cases := []struct {
		name  string
		flags []string
		args  []string
		want  string
	}{
		{"stream path", nil, []string{"stream", "/tmp/s"}, "ok hi"},
		{"stream abstract", nil, []string{"stream", "@oak-test"}, "ok hi"},
		{"dgram path", nil, []string{"dgram", "/tmp/d"}, "ok hi"},
		{"threads stream path", nil, []string{"threads", "stream", "/tmp/s"}, "ok hi"},
		{"granted stream path", grant, []string{"stream", "/tmp/s"}, "ok hi"},
		{"granted stream path in the image", grant, []string{"stream", "/run-s"}, "ok hi"},
		{"granted stream abstract", grant, []string{"stream", "@oak-test"}, "ok hi"},
		{"granted dgram path", grant, []string{"dgram", "/tmp/d"}, "ok hi"},
		{"granted threads stream abstract", grant, []string{"threads", "stream", "@oak-test"}, "ok hi"},
		{"granted threads dgram abstract", grant, []string{"threads", "dgram", "@oak-test"}, "ok hi"},
		{"granted threads stream path", grant, []string{"threads", "stream", "/tmp/s"}, "ok hi"},
		{"granted threads dgram path", grant, []string{"threads", "dgram", "/tmp/d"}, "ok hi"},
		{"granted threads relative path", grant, []string{"threads", "stream", "rel-s"}, "ok hi"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := o.sub(t)
			t.Parallel()
			args := append(append(append([]string{"run", "--rm", "-w", "/tmp"}, c.flags...), rootfsDir, "/bin/unixsock"), c.args...)
			r := o.run(args...)
			if got := strings.TrimSpace(r.stdout); got != c.want {
				t.Errorf("unixsock %s: got %q, want %q\n%s", strings.Join(c.args, " "), got, c.want, r)
			}
		})
	}
}

// A path socket's permissions hold for a multi-threaded caller with grants
// as they do natively: its own directory works, another user's does not,
// and the socket file is the caller's.
func TestUnixSocketPermissions(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	for _, flags := range [][]string{nil, {"--egress", "127.0.0.1:9"}} {
		script := "mkdir /tmp/priv && chown nobody /tmp/priv && chmod 700 /tmp/priv; " +
			"su -s /bin/sh nobody -c '/bin/unixsock threads stream /tmp/priv/s'; stat -c %U /tmp/priv/s; " +
			"chmod 711 /tmp/priv; adduser -D -H -u 100 other 2>/dev/null || echo 'other:x:100:100::/:/bin/sh' >> /etc/passwd; " +
			"su -s /bin/sh other -c '/bin/unixsock threads stream /tmp/priv/t'"
		r := o.sh(flags, script)
		want := "ok hi\nnobody\nerr bind EACCES"
		if got := strings.TrimSpace(r.stdout); got != want {
			t.Errorf("flags %v: got %q, want %q\n%s", flags, got, want, r)
		}
	}
}

// A signal oak sends reaches the command after it switched to another
// user (as docker-library entrypoints do with gosu or su): the container's
// init forwards it with CAP_KILL of the container's own namespace.
func TestSignalReachesOtherUser(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	id := o.runD(rootfsDir, "/bin/su", "-s", "/bin/sh", "nobody", "-c", "trap 'echo got TERM; exit 9' TERM; while :; do sleep 0.1; done")
	o.waitRunning(id)
	time.Sleep(300 * time.Millisecond) // the trap is set
	if r := o.run("kill", "-s", "TERM", id); r.code != 0 {
		t.Fatalf("%s", r)
	}
	e := o.waitExited(id, 10*time.Second)
	if e.ExitCode != 9 {
		t.Errorf("command running as nobody: exit %d after SIGTERM, want 9 (its trap)\n%s", e.ExitCode, o.run("logs", id))
	}
}

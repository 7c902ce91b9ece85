//go:build linux

package integration

import (
	"archive/tar"
	"bytes"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/klauspost/compress/zstd"
)

// ---- building images ----

// tarEnt is one entry of a layer tar written by hand.
type tarEnt struct {
	name string
	typ  byte // tar.TypeReg when 0
	body string
	link string   // symlink or hardlink target
	mode int64    // 0o644 (files) or 0o755 (directories) when 0
	dev  [2]int64 // major, minor of a device node
}

// writeTarEnts appends ents to tw.
func writeTarEnts(t testing.TB, tw *tar.Writer, ents ...tarEnt) {
	t.Helper()
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode,
			Devmajor: e.dev[0], Devminor: e.dev[1], ModTime: time.Unix(1700000000, 0), Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tar %s: %v", e.name, err)
		}
		if h.Size > 0 {
			if _, err := io.WriteString(tw, e.body); err != nil {
				t.Fatalf("tar %s: %v", e.name, err)
			}
		}
	}
}

// writeTarTree appends the tree at dir to tw as relative names, owned by
// root, keeping symlinks as they are.
func writeTarTree(t testing.TB, tw *tar.Writer, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			h.Name += "/"
		}
		h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := io.Copy(tw, f); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("tar of %s: %v", dir, err)
	}
}

// layerTar is a tar of the tree at dir (none if dir is "") followed by ents.
func layerTar(t testing.TB, dir string, ents ...tarEnt) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if dir != "" {
		writeTarTree(t, tw, dir)
	}
	writeTarEnts(t, tw, ents...)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// gzLayerOf makes a gzip-compressed layer of an uncompressed tar.
func gzLayerOf(t testing.TB, tarBytes []byte) v1.Layer {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tarBytes)), nil
	}, tarball.WithCompressedCaching)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// imageOf stacks the layers (bottom first) under cfg, for linux and this
// machine's architecture.
func imageOf(t testing.TB, cfg v1.Config, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config = cfg
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// The greeter image: the suite's rootfs (busybox and the probe) in one
// layer with /etc/msg and /etc/gone added; a second layer that replaces
// /etc/msg, whites out /etc/gone and adds the user app (1234:1234).
const (
	greeterMsg1     = "msg from layer 1"
	greeterMsg2     = "msg from layer 2"
	greeterGreeting = "hello from the image env"
)

// greeterConfig runs "echo $GREETING; pwd; id -u; id -g; cat /etc/msg"
// through the entrypoint sh -c, as app, in /etc.
var greeterConfig = v1.Config{
	Entrypoint: []string{"/bin/sh", "-c"},
	Cmd:        []string{"echo $GREETING; pwd; id -u; id -g; cat /etc/msg"},
	Env:        []string{"PATH=/bin", "GREETING=" + greeterGreeting, "FROM_IMAGE=kept"},
	WorkingDir: "/etc",
	User:       "app",
}

// greeterOutput is what the greeter's default command prints.
var greeterOutput = greeterGreeting + "\n/etc\n1234\n1234\n" + greeterMsg2 + "\n"

func greeterLayers(t testing.TB) []v1.Layer {
	t.Helper()
	passwd, err := os.ReadFile(filepath.Join(rootfsDir, "etc", "passwd"))
	if err != nil {
		t.Fatal(err)
	}
	passwd = append(passwd, "app:x:1234:1234:app:/:/bin/sh\n"...)
	base := layerTar(t, rootfsDir,
		tarEnt{name: "etc/msg", body: greeterMsg1 + "\n"},
		tarEnt{name: "etc/gone", body: "this file is whited out by the layer above\n"},
	)
	top := layerTar(t, "",
		tarEnt{name: "etc/", typ: tar.TypeDir},
		tarEnt{name: "etc/msg", body: greeterMsg2 + "\n"},
		tarEnt{name: "etc/.wh.gone"},
		tarEnt{name: "etc/passwd", body: string(passwd)},
	)
	return []v1.Layer{gzLayerOf(t, base), gzLayerOf(t, top)}
}

func greeterImage(t testing.TB) v1.Image {
	t.Helper()
	return imageOf(t, greeterConfig, greeterLayers(t)...)
}

// writeDockerSave writes img as a docker-save archive tagged tag.
func writeDockerSave(t testing.TB, file, tag string, img v1.Image) string {
	t.Helper()
	ref, err := name.NewTag(tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.WriteToFile(file, ref, img); err != nil {
		t.Fatalf("docker-save archive %s: %v", file, err)
	}
	return file
}

// writeOCILayout writes img as an OCI image layout at dir, named refName
// by the org.opencontainers.image.ref.name annotation ("" for none).
func writeOCILayout(t testing.TB, dir, refName string, img v1.Image) string {
	t.Helper()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatalf("OCI layout %s: %v", dir, err)
	}
	var opts []layout.Option
	if refName != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": refName}))
	}
	if err := p.AppendImage(img, opts...); err != nil {
		t.Fatalf("OCI layout %s: %v", dir, err)
	}
	return dir
}

// imageDir is a directory for archives that oak (root, reading them)
// and nobody else can use.
func imageDir(t *testing.T) string {
	d := t.TempDir()
	os.Chmod(d, 0o755)
	return d
}

// ---- reading oak's answers ----

// imageNames lists the stored images' names, REPOSITORY:TAG of each row of
// oak image ls ("<none>" for an untagged image), leaving out the built-in
// demo image.
func (o *oakEnv) imageNames() []string {
	o.t.Helper()
	r := o.run("image", "ls")
	if r.code != 0 {
		o.t.Fatalf("oak image ls failed\n%s", r)
	}
	ls := lines(r.stdout)
	if len(ls) == 0 || !strings.HasPrefix(ls[0], "REPOSITORY") {
		o.t.Fatalf("oak image ls printed no header\n%s", r)
	}
	var names []string
	for _, l := range ls[1:] {
		f := strings.Fields(l)
		switch {
		case len(f) < 2 || f[0] == "demo":
		case f[0] == "<none>":
			names = append(names, "<none>")
		default:
			names = append(names, f[0]+":"+f[1])
		}
	}
	return names
}

// layerDirs lists the layer directories under the state root.
func (o *oakEnv) layerDirs() []string {
	ents, _ := os.ReadDir(filepath.Join(o.root, "images", "layers", "sha256"))
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// singleLine returns the single line of s, failing if there are more.
func singleLine(s string) (string, bool) {
	s = strings.TrimRight(s, "\n")
	return s, s != "" && !strings.Contains(s, "\n")
}

// ---- tests ----

// An image built here, written as a docker-save archive and as an OCI
// layout, is imported with the CLI, listed, and run with its config:
// Entrypoint + Cmd, Env, WorkingDir, User from its own /etc/passwd; the
// top layer's file wins and its whiteout hides the lower layer's file.
// Arguments replace Cmd and keep Entrypoint; -e and -w override. The
// image cannot be removed while a container made from it exists.
func TestImageImportRun(t *testing.T) {
	needOak(t, true)
	dir := imageDir(t)
	img := greeterImage(t)
	save := writeDockerSave(t, filepath.Join(dir, "greeter.tar"), "oak.test/greeter:save", img)
	oci := writeOCILayout(t, filepath.Join(dir, "greeter-oci"), "oak.test/greeter:oci", img)
	// An OCI archive: the layout as one tar, compressed with zstd.
	ociZst := filepath.Join(dir, "greeter-oci.tar.zst")
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ociZst, zw.EncodeAll(layerTar(t, oci), nil), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name       string
		importArgs []string
		tag        string
	}{
		{"docker-save", []string{save}, "oak.test/greeter:save"},
		{"oci-layout", []string{oci}, "oak.test/greeter:oci"},
		{"oci-layout --tag", []string{"--tag", "oak.test/retagged:7", oci}, "oak.test/retagged:7"},
		{"oci-archive zstd", []string{ociZst}, "oak.test/greeter:oci"},
	} {
		c := c
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			o := newOak(t)
			r := o.run(append([]string{"image", "import"}, c.importArgs...)...)
			if r.code != 0 {
				t.Fatalf("import failed\n%s", r)
			}
			if !strings.Contains(r.stdout, c.tag) {
				t.Errorf("oak image import does not print the tag %s\n%s", c.tag, r)
			}
			if names := o.imageNames(); len(names) != 1 || names[0] != c.tag {
				t.Errorf("oak image ls lists %q, want [%s]", names, c.tag)
			}
			if n := len(o.layerDirs()); n != 2 {
				t.Errorf("%d layer directories after importing a two-layer image, want 2: %v", n, o.layerDirs())
			}

			// The image's own command, env, working dir, user and files.
			r = o.run("run", "--rm", c.tag)
			if r.code != 0 || r.stdout != greeterOutput {
				t.Errorf("oak run %s: want stdout %q\n%s", c.tag, greeterOutput, r)
			}
			// The whiteout: /etc/gone is absent, and so is its marker.
			r = o.run("run", "--rm", c.tag, "/bin/probe read-file /etc/gone; ls -a /etc")
			if got := lines(r.stdout); r.code != 0 || len(got) == 0 || got[0] != "err ENOENT" {
				t.Errorf("reading the whited-out /etc/gone: want \"err ENOENT\"\n%s", r)
			}
			for _, f := range lines(r.stdout) {
				if f == "gone" || strings.HasPrefix(f, ".wh.") {
					t.Errorf("/etc lists %q inside the container\n%s", f, r)
				}
			}
			// Arguments replace Cmd and keep the entrypoint (sh -c): as a
			// command of its own, "echo x; pwd" would not be found.
			r = o.run("run", "--rm", c.tag, "echo x; pwd; echo $FROM_IMAGE")
			if r.code != 0 || r.stdout != "x\n/etc\nkept\n" {
				t.Errorf("oak run %s 'echo x; pwd; echo $FROM_IMAGE': want \"x\\n/etc\\nkept\\n\"\n%s", c.tag, r)
			}
			// -e overrides the image's variable and keeps the others.
			r = o.run("run", "--rm", "-e", "GREETING=from -e", c.tag, "echo $GREETING; echo $FROM_IMAGE")
			if r.code != 0 || r.stdout != "from -e\nkept\n" {
				t.Errorf("-e GREETING=...: want \"from -e\\nkept\\n\"\n%s", r)
			}
			// -w overrides the working directory.
			r = o.run("run", "--rm", "-w", "/tmp", c.tag)
			if want := strings.Replace(greeterOutput, "\n/etc\n", "\n/tmp\n", 1); r.code != 0 || r.stdout != want {
				t.Errorf("-w /tmp: want stdout %q\n%s", want, r)
			}

			// image rm is refused while a container made from it exists.
			id := o.runD(c.tag, "exec sleep 100")
			o.waitRunning(id)
			r = o.run("image", "rm", c.tag)
			if r.code == 0 {
				t.Errorf("oak image rm succeeded while container %s uses the image\n%s", id, r)
			} else if msg, ok := singleLine(r.stderr); !ok || !strings.Contains(msg, id[:12]) {
				t.Errorf("oak image rm refused: want one line naming the container\n%s", r)
			}
			if names := o.imageNames(); len(names) != 1 {
				t.Errorf("after a refused rm, oak image ls lists %q", names)
			}
			if r := o.run("run", "--rm", c.tag, "cat /etc/msg"); r.stdout != greeterMsg2+"\n" {
				t.Errorf("the image no longer runs after a refused rm\n%s", r)
			}
			if r := o.run("rm", "-f", id); r.code != 0 {
				t.Fatalf("oak rm -f\n%s", r)
			}
			// An exited container that was not removed holds it too.
			if r := o.run("run", "--name", "exited", c.tag, "true"); r.code != 0 {
				t.Fatalf("oak run --name exited\n%s", r)
			}
			if r := o.run("image", "rm", c.tag); r.code == 0 {
				t.Errorf("oak image rm succeeded while an exited container made from it exists\n%s", r)
			}
			if r := o.run("rm", "exited"); r.code != 0 {
				t.Fatalf("oak rm exited\n%s", r)
			}
			if r := o.run("image", "rm", c.tag); r.code != 0 {
				t.Errorf("oak image rm after its containers were removed\n%s", r)
			}
			if names := o.imageNames(); len(names) != 0 {
				t.Errorf("oak image ls lists %q after rm", names)
			}
			if ds := o.layerDirs(); len(ds) != 0 {
				t.Errorf("layer directories remain after the only image was removed: %v", ds)
			}
		})
	}
}

// An image pushed to a registry on 127.0.0.1 is pulled over plain HTTP
// with --insecure and runs; without --insecure plain HTTP is refused; and
// --insecure to a host that is not loopback is refused at once, naming
// the reason, before anything is sent.
func TestImagePull(t *testing.T) {
	needOak(t, true)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ref := u.Host + "/test/img:1"
	pushRef, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(pushRef, greeterImage(t)); err != nil {
		t.Fatalf("push to the test registry: %v", err)
	}

	o := newOak(t)
	t.Run("plain HTTP without --insecure", func(t *testing.T) {
		o := newOak(t)
		r := o.run("image", "pull", ref)
		if r.code == 0 {
			t.Errorf("oak image pull over plain HTTP without --insecure succeeded\n%s", r)
		}
		if names := o.imageNames(); len(names) != 0 {
			t.Errorf("oak image ls lists %q after a refused pull", names)
		}
	})

	r := o.run("image", "pull", "--insecure", ref)
	if r.code != 0 {
		t.Fatalf("oak image pull --insecure\n%s", r)
	}
	if names := o.imageNames(); len(names) != 1 || names[0] != ref {
		t.Errorf("oak image ls lists %q, want [%s]", names, ref)
	}
	if r := o.run("pull", "-q", "--insecure", ref); r.code != 0 || !strings.Contains(r.stdout, ref) || r.stderr != "" {
		t.Errorf("oak pull -q (docker's shorthand) of the same image\n%s", r)
	}
	r = o.run("run", ref)
	if r.code != 0 || r.stdout != greeterOutput {
		t.Errorf("oak run %s: want stdout %q\n%s", ref, greeterOutput, r)
	}

	for _, bad := range []string{
		"example.invalid:5000/x:1",
		"10.255.255.1:5000/x:1", // RFC 1918, where go-containerregistry would fall back to HTTP on its own
	} {
		t.Run(bad, func(t *testing.T) {
			o := newOak(t)
			r := o.runTimeout(20*time.Second, "image", "pull", "--insecure", bad)
			if r.code == 0 {
				t.Fatalf("oak image pull --insecure of a non-loopback registry succeeded\n%s", r)
			}
			msg, ok := singleLine(r.stderr)
			if !ok || !strings.Contains(strings.ToLower(msg), "loopback") && !strings.Contains(strings.ToLower(msg), "insecure") {
				t.Errorf("want one error line that says why (insecure / loopback)\n%s", r)
			}
			t.Logf("refused in %v: %s", r.elapsed.Round(time.Millisecond), msg)
			if r.elapsed > 2*time.Second {
				t.Errorf("the refusal took %v: it must come before any network access", r.elapsed)
			}
		})
	}
}

// A docker-save archive whose layer would write outside the layer is
// refused by oak image import: non-zero exit, one error line naming the
// layer and the entry, nothing written next to the state root, nothing
// stored.
func TestImageImportMalicious(t *testing.T) {
	needOak(t, true)
	dir := imageDir(t)
	up := strings.Repeat("../", 40) // enough to reach / from any depth
	cases := []struct {
		name  string
		ents  func(sentinel string) []tarEnt
		entry func(sentinel string) string // the entry the error must name
	}{
		{"dotdot",
			func(string) []tarEnt { return []tarEnt{{name: "../../escape", body: "ESCAPED\n"}} },
			func(string) string { return "../../escape" }},
		{"dotdot into the sentinel",
			func(s string) []tarEnt { return []tarEnt{{name: up + s[1:] + "/pwned", body: "ESCAPED\n"}} },
			func(s string) string { return up + s[1:] + "/pwned" }},
		{"file through a symlink",
			func(s string) []tarEnt {
				return []tarEnt{{name: "link", typ: tar.TypeSymlink, link: s}, {name: "link/pwned", body: "ESCAPED\n"}}
			},
			func(string) string { return "link/pwned" }},
		{"file through a relative symlink",
			func(s string) []tarEnt {
				return []tarEnt{{name: "up", typ: tar.TypeSymlink, link: up + s[1:]}, {name: "up/pwned", body: "ESCAPED\n"}}
			},
			func(string) string { return "up/pwned" }},
		{"hardlink out",
			func(s string) []tarEnt { return []tarEnt{{name: "hl", typ: tar.TypeLink, link: up + s[1:] + "/keep"}} },
			func(string) string { return `"hl"` }},
	}
	for i, c := range cases {
		c := c
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			o := newOak(t)
			// The state root and the sentinel directory side by side.
			base := t.TempDir()
			o.root = filepath.Join(base, "state")
			sentinel := filepath.Join(base, "sentinel")
			if err := os.MkdirAll(sentinel, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(sentinel, "keep"), []byte("original\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			ents := append([]tarEnt{{name: "ok/", typ: tar.TypeDir}, {name: "ok/file", body: "harmless\n"}}, c.ents(sentinel)...)
			layerBytes := layerTar(t, "", ents...)
			l := gzLayerOf(t, layerBytes)
			diffID, err := l.DiffID()
			if err != nil {
				t.Fatal(err)
			}
			digest, err := l.Digest()
			if err != nil {
				t.Fatal(err)
			}
			archive := writeDockerSave(t, filepath.Join(dir, strings.Repeat("x", i+1)+".tar"), "oak.test/evil:1",
				imageOf(t, v1.Config{Cmd: []string{"/bin/sh"}}, l))

			r := o.run("image", "import", archive)
			if r.code == 0 || r.code < 0 {
				t.Errorf("oak image import of a malicious archive: want a non-zero exit\n%s", r)
			}
			msg, ok := singleLine(r.stderr)
			if !ok {
				t.Errorf("want exactly one error line\n%s", r)
			}
			t.Logf("refused: %s", msg)
			if !strings.Contains(msg, diffID.Hex) && !strings.Contains(msg, digest.Hex) {
				t.Errorf("the error does not name the layer (diff id %s, digest %s)\n%s", diffID, digest, r)
			}
			if e := c.entry(sentinel); !strings.Contains(msg, e) {
				t.Errorf("the error does not name the entry %s\n%s", e, r)
			}

			// Nothing next to the state root changed.
			ents2, _ := os.ReadDir(base)
			var names []string
			for _, e := range ents2 {
				names = append(names, e.Name())
			}
			if strings.Join(names, ",") != "sentinel,state" {
				t.Errorf("next to the state root: %v, want only sentinel and state", names)
			}
			sents, _ := os.ReadDir(sentinel)
			if len(sents) != 1 || sents[0].Name() != "keep" {
				var got []string
				for _, e := range sents {
					got = append(got, e.Name())
				}
				t.Errorf("the sentinel directory now holds %v, want only keep", got)
			}
			if b, _ := os.ReadFile(filepath.Join(sentinel, "keep")); string(b) != "original\n" {
				t.Errorf("sentinel/keep changed: %q", b)
			}
			if fi, err := os.Stat(filepath.Join(sentinel, "keep")); err == nil {
				if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink != 1 {
					t.Errorf("sentinel/keep has %d links: a hard link to it was made", st.Nlink)
				}
			}
			// Nothing was stored.
			if names := o.imageNames(); len(names) != 0 {
				t.Errorf("oak image ls lists %q after a refused import", names)
			}
			if ds := o.layerDirs(); len(ds) != 0 {
				t.Errorf("layer directories after a refused import: %v", ds)
			}
			if tmp, _ := os.ReadDir(filepath.Join(o.root, "images", "tmp")); len(tmp) != 0 {
				t.Errorf("images/tmp holds %d entries after a refused import", len(tmp))
			}
		})
	}
}

// A root file system archived as it is (tar -C rootfs -c .) carries device
// nodes: they are left out with a warning, as docker does, and the image
// imports and runs.
func TestImageImportLeavesOutDevices(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	l := gzLayerOf(t, layerTar(t, rootfsDir,
		tarEnt{name: "dev/console", typ: tar.TypeChar, dev: [2]int64{5, 1}, mode: 0o600},
		tarEnt{name: "dev/sda", typ: tar.TypeBlock, dev: [2]int64{8, 0}, mode: 0o660},
	))
	archive := writeDockerSave(t, filepath.Join(imageDir(t), "devices.tar"), "oak.test/devices:1",
		imageOf(t, v1.Config{Cmd: []string{"/bin/sh"}}, l))
	r := o.run("image", "import", archive)
	if r.code != 0 || !strings.Contains(r.stderr, "left out 2 device node(s)") || !strings.Contains(r.stderr, "character device 5,1") {
		t.Fatalf("import of an image with device nodes: want success and a warning naming them\n%s", r)
	}
	r = o.run("run", "--rm", "oak.test/devices:1", "/bin/sh", "-c", "ls /dev; ls -l /dev/console /dev/sda 2>&1")
	if r.code == 0 || strings.Contains(r.stdout, "console") && !strings.Contains(r.stdout, "No such file") {
		t.Errorf("a device node of the image is in the container:\n%s", r)
	}
}

// -P publishes every port the image exposes, each on a host port picked at
// start, as docker does; oak port tells where.
func TestPublishAll(t *testing.T) {
	needOak(t, true)
	o := newOak(t)
	l := gzLayerOf(t, layerTar(t, rootfsDir))
	archive := writeDockerSave(t, filepath.Join(imageDir(t), "exposed.tar"), "oak.test/exposed:1",
		imageOf(t, v1.Config{Cmd: []string{"/bin/probe", "serve", "80", "1", "exposed"},
			ExposedPorts: map[string]struct{}{"80/tcp": {}}}, l))
	if r := o.run("image", "import", archive); r.code != 0 {
		t.Fatalf("%s", r)
	}
	if r := o.run("run", "--rm", "-P", "demo", "true"); r.code == 0 || !strings.Contains(r.stderr, "exposes no port") {
		t.Errorf("-P of an image exposing nothing: want a clear refusal\n%s", r)
	}
	id := o.runD("-P", "oak.test/exposed:1")
	o.waitRunning(id)
	r := o.run("port", id, "80")
	m := regexp.MustCompile(`(?m)^0\.0\.0\.0:(\d+)$`).FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil {
		t.Fatalf("oak port %s 80 after -P: want a picked IPv4 host port\n%s", id, r)
	}
	var c net.Conn
	var err error
	for i := 0; i < 100; i++ {
		if c, err = net.Dial("tcp", "127.0.0.1:"+m[1]); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("connect to the picked port %s: %v", m[1], err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	got, _ := io.ReadAll(c)
	if string(got) != "exposed 1\n" {
		t.Errorf("the server answered %q, want %q", got, "exposed 1\n")
	}
}

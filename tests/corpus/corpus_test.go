//go:build linux

// Package corpus runs real programs, unmodified, in Oak containers and
// under runc as the reference: PostgreSQL, Redis, nginx, MariaDB, Python,
// Node, OpenJDK 17, a static Go server, busybox and a musl-linked C
// program.
//
// The images are built from Debian's archive with mmdebstrap (one base
// root file system with every program, cached under /var/cache/oak-corpus
// by a hash of its recipe, so only the first run on a machine pays for
// it), plus a small layer per image with the entrypoint and test program
// written for this corpus, following the conventions of the corresponding
// docker-library image. They are written as one OCI image layout and
// imported with `oak image import`.
//
// Each program is started the way a user would (oak run -d -p
// 127.0.0.1:PORT:PORT -v VOLUME:/data-path IMAGE), driven with its standard
// client from the host (psql and pgbench, redis-cli, curl, mariadb), killed,
// started again on the same volume, and checked to have kept its data.
// The same image under runc (host network, a host directory as the volume)
// is the reference. A program that does not yet run under Oak is skipped
// with the exact cause and the work it waits on (see knownFailures;
// OAK_CORPUS_ALL=1 runs it anyway).
//
// The corpus is slow the first time (it downloads about 300 MB of Debian
// packages) and needs root, mmdebstrap, runc and the clients: it runs only
// when OAK_CORPUS=1 (as .ci/run and `make corpus` set) and skips otherwise.
// OAK_CORPUS_STRACE=FILE also records, under runc, the union of the system
// calls the programs make into FILE (syscalls.txt is that list, one name a
// line: the evidence for the system-call allowlist). OAK_CORPUS_KEEP=1
// keeps the work directory (binaries, image layout, Oak state root, runc
// bundles) for a look by hand.
package corpus

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var (
	skipReason string // every test skips with it
	setupErr   error  // every test fails with it

	workDir string // binaries, the image layout, bundles; removed at the end
	oakBin  string
	repo    string
	base    *baseImage
	images  *corpusImages
)

func TestMain(m *testing.M) {
	switch {
	case os.Getenv("OAK_CORPUS") != "1":
		skipReason = "the corpus builds Debian images and runs real servers: set OAK_CORPUS=1 (as .ci/run and make corpus do)"
	case os.Geteuid() != 0:
		skipReason = "the corpus starts containers and builds images with mmdebstrap: it needs root"
	default:
		setupErr = setup()
	}
	code := m.Run()
	if workDir != "" && os.Getenv("OAK_CORPUS_KEEP") == "" {
		unmountAll()
		os.RemoveAll(workDir)
	} else if workDir != "" {
		fmt.Fprintf(os.Stderr, "corpus: OAK_CORPUS_KEEP is set: kept %s (oak --root %s/oak-state)\n", workDir, workDir)
	}
	os.Exit(code)
}

func setup() error {
	var err error
	if repo, err = filepath.Abs("../.."); err != nil {
		return err
	}
	for _, tool := range []string{"mmdebstrap", "runc", "psql", "pgbench", "redis-cli", "curl", "mariadb", "musl-gcc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed (make deps installs the corpus's Debian packages): %w", tool, err)
		}
	}
	if workDir, err = os.MkdirTemp("", "oak-corpus-"); err != nil {
		return err
	}
	if err := os.Chmod(workDir, 0o755); err != nil {
		return err
	}
	oakBin = filepath.Join(workDir, "oak")
	if out, err := goBuild(oakBin, "./cmd/oak", nil); err != nil {
		return fmt.Errorf("build oak: %v\n%s", err, out)
	}
	logf := func(f string, a ...any) { fmt.Fprintf(os.Stderr, "corpus: "+f+"\n", a...) }
	if base, err = buildBase(logf); err != nil {
		return err
	}
	how := "from the cache"
	if base.Built {
		how = "built"
	}
	logf("base image %s (%d MB, sha256:%.12s): %s in %v", base.Tar, base.Size>>20, base.Digest, how, base.Took.Round(time.Millisecond))
	start := time.Now()
	if images, err = makeImages(filepath.Join(workDir, "layout")); err != nil {
		return err
	}
	logf("corpus layers and image layout written in %v", time.Since(start).Round(time.Millisecond))
	return nil
}

// goBuild builds a package of this repository.
func goBuild(out, pkg string, env []string) ([]byte, error) {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), env...)
	return cmd.CombinedOutput()
}

func needSetup(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	if setupErr != nil {
		t.Fatalf("corpus set-up: %v", setupErr)
	}
}

// unmountAll undoes the overlay mounts of runc bundles left by a failed
// test, deepest first, so that the work directory can be removed.
func unmountAll() {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var mps []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && strings.HasPrefix(f[4], workDir+"/") {
			mps = append(mps, f[4])
		}
	}
	for i := len(mps) - 1; i >= 0; i-- {
		exec.Command("umount", "-l", mps[i]).Run()
	}
}

package integration

import (
	"regexp"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

var coreLine = regexp.MustCompile(`host core: (\d+) factories, (\d+) containers, (\d+) spaces, (\d+) capabilities; generation (\d+) \(([^)]*)\); (\d+) builds`)

// hostCore is what oak daemon status says of the daemon's host core: its
// capabilities, generation, whether it is current, and its builds.
func (o *oakEnv) hostCore() (caps, gen int, current bool, builds int) {
	o.t.Helper()
	m := o.coreStatus()
	caps, _ = strconv.Atoi(m[4])
	gen, _ = strconv.Atoi(m[5])
	builds, _ = strconv.Atoi(m[7])
	return caps, gen, m[6] == "current", builds
}

// coreStatus is oak daemon status's host core line, matched by coreLine.
func (o *oakEnv) coreStatus() []string {
	o.t.Helper()
	r := o.run("daemon", "status")
	m := coreLine.FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil {
		o.t.Fatalf("oak daemon status: no host core (%q)\n%s", r.stdout, r)
	}
	return m
}

// TestHostCoreDaemonKill: the daemon holds the host core in which a
// sub-container's egress grant is derived from its parent's; killed with
// SIGKILL between that derivation and the revocation of the parent's
// grant, the next daemon builds the same core from the records, and the
// revocation there takes the part from the sub-container too.
func TestHostCoreDaemonKill(t *testing.T) {
	needOak(t, true)
	o := newDaemonOak(t)
	const mib = 1 << 20
	whole, part := "10.9.0.0/16:443/tcp", "10.9.1.2:443/tcp"
	script := "echo kid: $(/bin/probe spawn " + nestedReq(map[string]any{"Memory": 16 * mib, "PidsLimit": 8,
		"Egress": []string{part}}) + ")\necho done\nexec sleep 1000\n"
	parent := o.runD("--spawn", "--memory", "64m", "--pids", "32", "--egress", whole, "--egress", "10.8.0.1:80/tcp",
		rootfsDir, "/bin/sh", "-c", script)
	child := createdID(t, "kid", spawnAnswers(o.waitOutput(parent, "done", 90*time.Second))["kid"])
	if g := o.netGrants(child); g != "egress "+part {
		t.Fatalf("oak grants %s: got %q, want egress %s", child, g, part)
	}
	before, gen, current, _ := o.hostCore()
	if !current || gen == 0 {
		t.Fatalf("the daemon's core before the kill: generation %d, current %v; want a current core of a nonzero generation", gen, current)
	}
	first := o.daemonPid()
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); o.daemonPid() != 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("daemon %d still holds the root 20s after SIGKILL", first)
		}
	}
	// A new daemon, started by ps, builds its core from the records: the
	// same capabilities as the killed one held.
	if r := o.run("ps"); r.code != 0 {
		t.Fatalf("oak ps after the kill\n%s", r)
	}
	rebuilt, gen2, current, builds := o.hostCore()
	if second := o.daemonPid(); second == 0 || second == first {
		t.Fatalf("daemon after the kill: pid %d (the killed one was %d)", second, first)
	}
	if rebuilt != before || gen2 != gen || !current || builds < 1 {
		t.Fatalf("the new daemon's core: %d capabilities at generation %d (current %v, %d builds); the killed one's: %d at %d",
			rebuilt, gen2, current, builds, before, gen)
	}
	if r := o.run("revoke", parent, "egress "+whole); r.code != 0 {
		t.Fatalf("oak revoke %s egress %s through the new daemon\n%s", parent, whole, r)
	}
	if g := o.netGrants(child); g != "" {
		t.Errorf("oak grants %s after its parent's grant was revoked: got %q, want none", child, g)
	}
	if r := o.run("grants", parent); r.code != 0 || !regexp.MustCompile(`^egress 10\.8\.0\.1:80/tcp\nspawn\n$`).MatchString(r.stdout) {
		t.Errorf("oak grants %s after the revoke: want egress 10.8.0.1:80/tcp and spawn\n%s", parent, r)
	}
	// One core.Delete took the parent's minted grant, its copy in the
	// parent's space and the part derived into the child's; the daemon
	// kept its core current through its own writes (the marks).
	after, gen3, current, builds3 := o.hostCore()
	if after != before-3 || !current {
		t.Errorf("the core after the revoke: %d capabilities (current %v), want %d", after, current, before-3)
	}
	if builds3 != builds {
		t.Errorf("the daemon built its core %d times after the revoke, %d before: want its own writes kept, not rebuilt", builds3, builds)
	}
	if gen3 <= gen2 {
		t.Errorf("generation %d after the revoke, %d before: want it advanced by the marks", gen3, gen2)
	}
	t.Logf("host core: %d capabilities, generation %d → %d", before, gen, gen3)

	// A factory made by the CLI acting directly, beside the daemon: the
	// daemon's core has it at its next use, built again.
	direct := *o
	direct.env = append(slices.Clone(o.env), "OAK_NO_DAEMON=1")
	if r := direct.run("factory", "create", "--memory", "64m", "beside"); r.code != 0 {
		t.Fatalf("oak factory create without the daemon\n%s", r)
	}
	m := o.coreStatus()
	if m[1] != "2" || m[6] != "current" || m[7] != strconv.Itoa(builds3+1) {
		t.Errorf("the daemon's core after a factory made beside it: %s factories (%s), %s builds; want 2 (current), %d", m[1], m[6], m[7], builds3+1)
	}
	if r := direct.run("factory", "rm", "beside"); r.code != 0 {
		t.Fatalf("oak factory rm without the daemon\n%s", r)
	}
}

//go:build linux

package integration

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Quotas nested three deep hold under parallel launches: top (40 tasks)
// holds mid (24), which holds leaf (12). Three containers are launched at
// once into each of the three, every one forking and holding as many
// tasks as it can get. However the launches interleave, the kernel keeps
// each factory within its quota, counting its sub-factories' tasks as its
// own: leaf never counts more than 12, mid (leaf's included) more than 24,
// top more than 40; every container that was started saw its fork fail
// with EAGAIN inside; and a launch that finds no tasks left, at admission
// or while it clones, is refused naming a factory's pids quota.
//
// Not parallel: it forks many processes.
func TestFactoryNestedParallel(t *testing.T) {
	needOak(t, false)
	o := newOak(t)
	o.factory("--pids", "40", "top")
	o.factory("--parent", "top", "--pids", "24", "mid")
	o.factory("--parent", "mid", "--pids", "12", "leaf")
	levels := []struct {
		name  string
		quota int
	}{{"top", 40}, {"mid", 24}, {"leaf", 12}}
	infos := map[string]factoryInfo{}
	for _, l := range levels {
		infos[l.name] = o.inspectFactory(l.name)
	}
	// The groups nest as the factories do.
	if !strings.HasPrefix(infos["leaf"].Group, infos["mid"].Group+"/") || !strings.HasPrefix(infos["mid"].Group, infos["top"].Group+"/") {
		t.Fatalf("groups do not nest: top %s, mid %s, leaf %s", infos["top"].Group, infos["mid"].Group, infos["leaf"].Group)
	}

	var wg sync.WaitGroup
	results := make(chan result, 9)
	for _, l := range levels {
		for i := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results <- o.run("run", "-d", "--name", fmt.Sprintf("%s-%d", l.name, i), "--factory", l.name, rootfsDir, "/bin/sh", "-c", forkAndHold)
			}()
		}
	}
	wg.Wait()
	close(results)
	started := 0
	for r := range results {
		switch {
		case r.code == 0:
			started++
		case strings.Contains(r.stderr, "pids quota"):
			// Admission refused it: the factory (or an ancestor) was full
			// when it came. Allowed; said so.
			t.Logf("refused at launch: %s", strings.TrimSpace(r.stderr))
		default:
			t.Errorf("a launch into a nested factory failed otherwise\n%s", r)
		}
	}
	if started == 0 {
		t.Fatal("no launch was admitted")
	}
	// Wait until every started container has stopped growing (its fork
	// failed, or it reached 100 sleepers: impossible under these quotas).
	for _, l := range levels {
		for i := range 3 {
			name := fmt.Sprintf("%s-%d", l.name, i)
			if o.run("inspect", name).code != 0 {
				continue // refused at launch
			}
			o.waitOutput(name, "Resource temporarily unavailable", 2*time.Minute)
		}
	}
	counts := map[string]int{}
	racing := map[string]int{"top": 9, "mid": 6, "leaf": 3} // launches into each subtree
	for _, l := range levels {
		n := settledCount(t, factoryFile(infos[l.name], "pids", "pids.current"))
		counts[l.name] = n
		t.Logf("factory %s: %d tasks of %d", l.name, n, l.quota)
		if n > l.quota {
			t.Errorf("factory %s counts %d tasks, above its quota %d", l.name, n, l.quota)
		}
		// cgroup v1's pids controller limits forks, not moves: each
		// launch's init is moved into its group, so for the instant
		// before its fork of the command is refused, a full factory
		// counts one task more per launch racing into it (and nothing of
		// an image runs then). The peak may show that, never more.
		if peak := readFirst(factoryFile(infos[l.name], "pids", "pids.peak")); peak != "" {
			if p, _ := strconv.Atoi(peak); p > l.quota+racing[l.name] {
				t.Errorf("factory %s peaked at %d tasks, above its quota %d and the %d inits launched into it", l.name, p, l.quota, racing[l.name])
			}
		}
	}
	// A factory counts its sub-factories' tasks as its own.
	if counts["mid"] < counts["leaf"] || counts["top"] < counts["mid"] {
		t.Errorf("counts do not nest: top %d, mid %d, leaf %d", counts["top"], counts["mid"], counts["leaf"])
	}
}

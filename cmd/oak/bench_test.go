package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/oak-engine/oak/bench"
)

// parseStartupFlags parses args as oak bench startup's flags.
func parseStartupFlags(t *testing.T, args ...string) (*startupFlags, *pflag.FlagSet) {
	t.Helper()
	var fl startupFlags
	f := pflag.NewFlagSet("startup", pflag.ContinueOnError)
	fl.register(f)
	if err := f.Parse(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	return &fl, f
}

func TestStartupFlagsCases(t *testing.T) {
	tests := []struct {
		args     []string
		cases    []string
		parallel []int
	}{
		{nil, nil, bench.DefaultParallel}, // nil: every case
		{[]string{"--single"}, []string{bench.CaseWarm}, bench.DefaultParallel},
		{[]string{"--parallel", "1,8,32,64"}, []string{bench.CaseParallel}, []int{1, 8, 32, 64}},
		{[]string{"--parallel=4", "--parallel=2"}, []string{bench.CaseParallel}, []int{4, 2}},
		{[]string{"--first-response", "--cold"}, []string{bench.CaseCold, bench.CaseFirstResponse}, bench.DefaultParallel},
		{[]string{"--single", "--cold", "--parallel", "3", "--first-response"},
			[]string{bench.CaseWarm, bench.CaseCold, bench.CaseParallel, bench.CaseFirstResponse}, []int{3}},
	}
	for _, tt := range tests {
		fl, f := parseStartupFlags(t, tt.args...)
		cfg := fl.config(f.Changed)
		if !reflect.DeepEqual(cfg.Cases, tt.cases) {
			t.Errorf("%q: cases %q, want %q", tt.args, cfg.Cases, tt.cases)
		}
		if !reflect.DeepEqual(cfg.Parallel, tt.parallel) {
			t.Errorf("%q: parallel %v, want %v", tt.args, cfg.Parallel, tt.parallel)
		}
	}
}

func TestStartupFlagsConfig(t *testing.T) {
	fl, f := parseStartupFlags(t, "--runs", "7", "--warmup", "-1", "--cold-runs", "2", "--rounds", "3",
		"--response-runs", "4", "--variants", "plain,oak", "--csv")
	cfg := fl.config(f.Changed)
	want := bench.StartupConfig{
		Runs: 7, Warmup: -1, ColdRuns: 2, Rounds: 3, ResponseRuns: 4, Parallel: bench.DefaultParallel,
		Variants: []string{"plain", "oak"}, OakImage: "demo",
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("config = %+v, want %+v", cfg, want)
	}
	if !fl.asCSV || fl.asJSON {
		t.Errorf("--csv: asCSV %v asJSON %v", fl.asCSV, fl.asJSON)
	}
	// Another image is run as given: no demo image made in a cold run.
	fl, f = parseStartupFlags(t, "--image", "/srv/rootfs")
	if cfg := fl.config(f.Changed); cfg.OakImage != "" {
		t.Errorf("--image /srv/rootfs: OakImage %q, want empty (the root file system)", cfg.OakImage)
	}
}

func TestStartupFlagsCheck(t *testing.T) {
	tests := []struct {
		args []string
		want string // "" for accepted
	}{
		{[]string{"--json"}, ""},
		{[]string{"--plot", "x.svg"}, ""},
		{[]string{"--plot", "/tmp/X.PNG"}, ""},
		{[]string{"--json", "--csv"}, "choose one"},
		{[]string{"--plot", "x.pdf"}, ".svg or .png"},
		{[]string{"--plot", "x"}, ".svg or .png"},
	}
	for _, tt := range tests {
		fl, _ := parseStartupFlags(t, tt.args...)
		err := fl.check()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q: %v", tt.args, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%q: err %v, want one containing %q", tt.args, err, tt.want)
		}
	}
}

func TestStartupFlagsRefuseBadValues(t *testing.T) {
	var fl startupFlags
	f := pflag.NewFlagSet("startup", pflag.ContinueOnError)
	f.SetOutput(new(strings.Builder))
	fl.register(f)
	for _, args := range [][]string{{"--parallel", "x"}, {"--runs", "many"}, {"--parallel", "1,,2"}} {
		if err := f.Parse(args); err == nil {
			t.Errorf("%q parsed", args)
		}
	}
}

// Package bench is Oak's evaluation: it measures Oak against baselines (a
// plain process, runc) run in the same invocation, and reports the results as
// ratios to those baselines, never as absolute pass/fail thresholds.
//
// Each benchmark (startup.go; later network, storage, system-call surface)
// builds a list of Variants and hands it to Measure, which runs them
// interleaved so that drift on the host (frequency scaling, noisy
// neighbours, page-cache state) affects every variant alike.
package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Variant is one contender in a benchmark: a way of doing the measured thing.
type Variant struct {
	// Name identifies the variant in reports ("plain", "runc", "oak").
	Name string

	// Skip, if not empty, says why the variant is not run (for example
	// "runc not found"); the report keeps the row with this reason.
	Skip string

	// Detail describes what the variant runs (a command line, a version); it
	// is shown in reports and not interpreted.
	Detail string

	// Run does the measured thing once. Measure times the whole call; an
	// error ends the benchmark.
	Run func(ctx context.Context) error

	// After, if not nil, is called after every Run (also after a failed one)
	// and is not timed: the place to clean up what a run left behind.
	After func(ctx context.Context) error
}

// Options says how many times Measure runs each variant.
type Options struct {
	// Runs is the number of timed runs of each variant; it must be at least 1.
	Runs int
	// Warmup is the number of untimed runs of each variant before the timed
	// ones.
	Warmup int
}

// Measure runs each variant that is not skipped opts.Warmup times untimed,
// then opts.Runs times timed. The runs go in rounds: each round runs every
// variant once, in an order rotated by one place per round, so each variant
// runs in each position equally often when Runs is a multiple of the number
// of variants. The returned Report holds one Result per variant, in the order
// given, and no ratios.
//
// Measure refuses an empty variant list, duplicate or empty names, a variant
// without Run, and Runs < 1 or Warmup < 0. The first failing Run or After
// ends the measurement with an error naming the variant and the run.
func Measure(ctx context.Context, variants []Variant, opts Options) (*Report, error) {
	if err := checkVariants(variants, opts); err != nil {
		return nil, err
	}
	var active []int // indices into variants of those that run
	for i, v := range variants {
		if v.Skip == "" {
			active = append(active, i)
		}
	}
	samples := make([][]time.Duration, len(variants))
	for i := range samples {
		if variants[i].Skip == "" {
			samples[i] = make([]time.Duration, 0, opts.Runs)
		}
	}

	for round := range opts.Warmup {
		for _, k := range rotation(len(active), round) {
			v := &variants[active[k]]
			if _, err := runOnce(ctx, v); err != nil {
				return nil, fmt.Errorf("bench: %s, warm-up run %d: %w", v.Name, round+1, err)
			}
		}
	}
	for round := range opts.Runs {
		for _, k := range rotation(len(active), round) {
			i := active[k]
			v := &variants[i]
			d, err := runOnce(ctx, v)
			if err != nil {
				return nil, fmt.Errorf("bench: %s, run %d: %w", v.Name, round+1, err)
			}
			samples[i] = append(samples[i], d)
		}
	}

	rep := &Report{
		Runs:             opts.Runs,
		Warmup:           opts.Warmup,
		Order:            "interleaved, rotated per round",
		PercentileMethod: PercentileMethod,
		Ratios:           []Ratio{},
	}
	for i, v := range variants {
		rep.Results = append(rep.Results, Result{
			Name:    v.Name,
			Skipped: v.Skip,
			Detail:  v.Detail,
			Samples: samples[i],
			Summary: Summarize(samples[i]),
		})
	}
	return rep, nil
}

func checkVariants(variants []Variant, opts Options) error {
	if opts.Runs < 1 {
		return fmt.Errorf("bench: runs %d: must be at least 1", opts.Runs)
	}
	if opts.Warmup < 0 {
		return fmt.Errorf("bench: warm-up runs %d: must not be negative", opts.Warmup)
	}
	if len(variants) == 0 {
		return errors.New("bench: no variants to measure")
	}
	seen := make(map[string]bool, len(variants))
	for i, v := range variants {
		switch {
		case v.Name == "":
			return fmt.Errorf("bench: variant %d has no name", i)
		case seen[v.Name]:
			return fmt.Errorf("bench: variant %q named twice", v.Name)
		case v.Skip == "" && v.Run == nil:
			return fmt.Errorf("bench: variant %q has no Run", v.Name)
		}
		seen[v.Name] = true
	}
	return nil
}

// runOnce times one v.Run, then calls v.After untimed.
func runOnce(ctx context.Context, v *Variant) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	start := time.Now()
	err := v.Run(ctx)
	d := time.Since(start)
	if v.After != nil {
		// Clean up even when ctx was cancelled during Run.
		if aerr := v.After(context.WithoutCancel(ctx)); aerr != nil && err == nil {
			err = fmt.Errorf("after run: %w", aerr)
		}
	}
	return d, err
}

// rotation returns the order (indices 0..n-1) in which round runs n
// variants: the identity order rotated left by round places.
func rotation(n, round int) []int {
	order := make([]int, n)
	for k := range order {
		order[k] = (k + round) % n
	}
	return order
}

// pickVariants returns the variants asked for, or all known ones if none
// was; an unknown name is an error naming the benchmark and the choices.
func pickVariants(bench string, asked, known []string) ([]string, error) {
	if len(asked) == 0 {
		return known, nil
	}
	for _, n := range asked {
		if !slices.Contains(known, n) {
			return nil, fmt.Errorf("bench %s: unknown variant %q (want one of %s)", bench, n, strings.Join(known, ", "))
		}
	}
	return asked, nil
}

package bench

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestRotation(t *testing.T) {
	tests := []struct {
		n, round int
		want     []int
	}{
		{1, 0, []int{0}},
		{1, 5, []int{0}},
		{3, 0, []int{0, 1, 2}},
		{3, 1, []int{1, 2, 0}},
		{3, 2, []int{2, 0, 1}},
		{3, 3, []int{0, 1, 2}},
		{0, 4, []int{}},
	}
	for _, tt := range tests {
		if got := rotation(tt.n, tt.round); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("rotation(%d, %d) = %v, want %v", tt.n, tt.round, got, tt.want)
		}
	}
}

// Over n consecutive rounds every variant runs once in every position.
func TestRotationBalanced(t *testing.T) {
	for n := 1; n <= 5; n++ {
		count := make([][]int, n) // count[variant][position]
		for i := range count {
			count[i] = make([]int, n)
		}
		for round := range n {
			order := rotation(n, round)
			for pos, v := range order {
				count[v][pos]++
			}
		}
		for v := range n {
			for pos := range n {
				if count[v][pos] != 1 {
					t.Fatalf("n=%d: variant %d ran %d times in position %d", n, v, count[v][pos], pos)
				}
			}
		}
	}
}

// recorder makes variants that log each call, so tests can check the order.
type recorder struct{ log []string }

func (r *recorder) variant(name string) Variant {
	return Variant{
		Name:  name,
		Run:   func(context.Context) error { r.log = append(r.log, name); return nil },
		After: func(context.Context) error { r.log = append(r.log, name+".after"); return nil },
	}
}

func TestMeasureInterleaves(t *testing.T) {
	var r recorder
	vs := []Variant{r.variant("a"), {Name: "skipped", Skip: "not here"}, r.variant("b"), r.variant("c")}
	rep, err := Measure(context.Background(), vs, Options{Runs: 3, Warmup: 1})
	if err != nil {
		t.Fatal(err)
	}
	var runs []string
	for _, e := range r.log {
		if !strings.HasSuffix(e, ".after") {
			runs = append(runs, e)
		}
	}
	want := []string{
		"a", "b", "c", // warm-up round 0
		"a", "b", "c", // round 0
		"b", "c", "a", // round 1
		"c", "a", "b", // round 2
	}
	if !reflect.DeepEqual(runs, want) {
		t.Errorf("run order = %v, want %v", runs, want)
	}
	if len(r.log) != 2*len(want) {
		t.Errorf("log has %d entries, want every run followed by its After: %v", len(r.log), r.log)
	}
	for i := 0; i+1 < len(r.log); i += 2 {
		if r.log[i+1] != r.log[i]+".after" {
			t.Errorf("log[%d] = %q after %q, want its After", i+1, r.log[i+1], r.log[i])
		}
	}

	if len(rep.Results) != 4 {
		t.Fatalf("%d results, want 4", len(rep.Results))
	}
	for i, name := range []string{"a", "skipped", "b", "c"} {
		res := rep.Results[i]
		if res.Name != name {
			t.Errorf("result %d is %q, want %q", i, res.Name, name)
		}
		wantN := 3
		if name == "skipped" {
			wantN = 0
			if res.Skipped != "not here" {
				t.Errorf("skipped result says %q", res.Skipped)
			}
		}
		if res.N != wantN || len(res.Samples) != wantN {
			t.Errorf("%s: N=%d, %d samples, want %d", name, res.N, len(res.Samples), wantN)
		}
	}
	if rep.Runs != 3 || rep.Warmup != 1 || rep.PercentileMethod == "" {
		t.Errorf("report header = %+v", rep)
	}
}

func TestMeasureRunErrorNamesVariant(t *testing.T) {
	afterCalled := false
	boom := errors.New("exit status 3: boom")
	calls := 0
	vs := []Variant{{
		Name: "flaky",
		Run: func(context.Context) error {
			calls++
			if calls == 2 {
				return boom
			}
			return nil
		},
		After: func(context.Context) error { afterCalled = true; return nil },
	}}
	_, err := Measure(context.Background(), vs, Options{Runs: 5})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want it to wrap %v", err, boom)
	}
	if msg := err.Error(); !strings.Contains(msg, "flaky") || !strings.Contains(msg, "run 2") {
		t.Errorf("error %q does not name the variant and the run", msg)
	}
	if !afterCalled {
		t.Error("After was not called after the failing run")
	}
}

func TestMeasureAfterError(t *testing.T) {
	vs := []Variant{{
		Name:  "leaky",
		Run:   func(context.Context) error { return nil },
		After: func(context.Context) error { return errors.New("cannot delete") },
	}}
	_, err := Measure(context.Background(), vs, Options{Runs: 1})
	if err == nil || !strings.Contains(err.Error(), "leaky") || !strings.Contains(err.Error(), "cannot delete") {
		t.Errorf("err = %v, want the After error for leaky", err)
	}
}

func TestMeasureCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	vs := []Variant{{
		Name: "v",
		Run: func(context.Context) error {
			n++
			if n == 2 {
				cancel()
			}
			return nil
		},
	}}
	_, err := Measure(ctx, vs, Options{Runs: 10})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if n != 2 {
		t.Errorf("ran %d times after cancel, want 2", n)
	}
}

func TestMeasureRefuses(t *testing.T) {
	ok := func(context.Context) error { return nil }
	tests := []struct {
		name string
		vs   []Variant
		opts Options
		want string
	}{
		{"no variants", nil, Options{Runs: 1}, "no variants"},
		{"zero runs", []Variant{{Name: "a", Run: ok}}, Options{}, "at least 1"},
		{"negative warm-up", []Variant{{Name: "a", Run: ok}}, Options{Runs: 1, Warmup: -1}, "negative"},
		{"empty name", []Variant{{Run: ok}}, Options{Runs: 1}, "no name"},
		{"duplicate", []Variant{{Name: "a", Run: ok}, {Name: "a", Run: ok}}, Options{Runs: 1}, "twice"},
		{"no run", []Variant{{Name: "a"}}, Options{Runs: 1}, "no Run"},
	}
	for _, tt := range tests {
		_, err := Measure(context.Background(), tt.vs, tt.opts)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want one containing %q", tt.name, err, tt.want)
		}
	}
	// A skipped variant needs no Run, and all-skipped is a valid (empty) run.
	rep, err := Measure(context.Background(), []Variant{{Name: "a", Skip: "absent"}}, Options{Runs: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(rep.Results[0].Skipped); got != "absent" {
		t.Errorf("skip reason = %q", got)
	}
}

package netsvc

import "testing"

// TestTally: counters by call and outcome, each its own; out-of-range
// indices and a nil Tally count nothing; too little memory is refused.
func TestTally(t *testing.T) {
	if _, err := NewTally(make([]byte, TallyBytes-1)); err == nil {
		t.Error("NewTally accepted too little memory")
	}
	mem := make([]byte, TallyBytes+8)
	if _, err := NewTally(mem[1:]); err == nil {
		t.Error("NewTally accepted unaligned memory")
	}
	ta, err := NewTally(mem)
	if err != nil {
		t.Fatal(err)
	}
	for k := range Calls {
		for o := range Outcomes {
			for i := 0; i < k*len(Outcomes)+o+1; i++ {
				ta.Add(k, Outcome(o))
			}
		}
	}
	ta.Add(-1, OutcomeAllowed)
	ta.Add(len(Calls), OutcomeAllowed)
	ta.Add(0, Outcome(len(Outcomes)))
	for k := range Calls {
		for o := range Outcomes {
			if got, want := ta.Load(k, Outcome(o)), uint64(k*len(Outcomes)+o+1); got != want {
				t.Errorf("%s %s = %d, want %d", Calls[k], Outcomes[o], got, want)
			}
		}
	}
	var none *Tally
	none.Add(0, OutcomeAllowed)
	if none.Load(0, OutcomeAllowed) != 0 {
		t.Error("a nil Tally counted")
	}
}

package netsvc

import (
	"fmt"
	"sync/atomic"
	"unsafe"
)

// A Tally counts the trapped calls a Server answered, by call and by
// outcome, one outcome per call. Unlike Stats, its counters can live in
// memory another process maps too (NewTally over a MAP_SHARED mapping of a
// file): that is how the supervisor of a container keeps one count across
// restarts of its network service, which runs as a process of its own, and
// how the daemon reads it at scrape time without asking either of them.
//
// The layout is TallyWords little-endian uint64 counters, call-major: the
// counter of (call c, outcome o) is word c*len(Outcomes)+o. Add and Load
// are atomic; a nil *Tally counts nothing.
type Tally struct {
	words []uint64
}

// Calls names the counted calls, by index. A call the filter trapped that
// the service does not serve, or one of a foreign ABI, is "other".
var Calls = []string{"socket", "bind", "listen", "connect", "sendto", "sendmsg", "sendmmsg", "other"}

// Outcome is how a counted call ended.
type Outcome int

// The outcomes, as Stats defines them; a call the service acted on whose
// caller was gone before the answer counts as OutcomeGone only.
const (
	OutcomeAllowed Outcome = iota
	OutcomeDenied
	OutcomeInvalid
	OutcomeFailed
	OutcomeGone
)

// Outcomes names the outcomes, by value.
var Outcomes = []string{"allowed", "denied", "invalid", "failed", "gone"}

// TallyWords is the number of counters of a Tally; TallyBytes its size.
var (
	TallyWords = len(Calls) * len(Outcomes)
	TallyBytes = TallyWords * 8
)

// NewTally returns a Tally whose counters are the first TallyBytes of mem,
// which must be 8-byte aligned (a mapping is).
func NewTally(mem []byte) (*Tally, error) {
	if len(mem) < TallyBytes {
		return nil, fmt.Errorf("netsvc: tally needs %d bytes, got %d", TallyBytes, len(mem))
	}
	if uintptr(unsafe.Pointer(&mem[0]))%8 != 0 {
		return nil, fmt.Errorf("netsvc: tally memory is not 8-byte aligned")
	}
	return &Tally{words: unsafe.Slice((*uint64)(unsafe.Pointer(&mem[0])), TallyWords)}, nil
}

// Add counts one call of index call (an index of Calls) with outcome o.
func (t *Tally) Add(call int, o Outcome) {
	if t == nil || call < 0 || call >= len(Calls) || o < 0 || int(o) >= len(Outcomes) {
		return
	}
	atomic.AddUint64(&t.words[call*len(Outcomes)+int(o)], 1)
}

// Load returns the count of (call, o).
func (t *Tally) Load(call int, o Outcome) uint64 {
	if t == nil || call < 0 || call >= len(Calls) || o < 0 || int(o) >= len(Outcomes) {
		return 0
	}
	return atomic.LoadUint64(&t.words[call*len(Outcomes)+int(o)])
}

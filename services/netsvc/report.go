package netsvc

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// reporter tells the container's user why a call was refused, and which
// grant would allow it, without letting a program that retries in a loop
// flood its log: the first refusal of each kind is written at once, later
// ones at most once per interval per kind, with the count passed over.
type reporter struct {
	w     io.Writer
	every time.Duration
	now   func() time.Time
	mu    sync.Mutex
	kinds map[string]*reportState
}

type reportState struct {
	last    time.Time
	skipped int
}

// reportEvery is how often one kind of refusal is reported at most.
const reportEvery = 10 * time.Second

// maxReportKinds bounds the reporter's memory: a program that makes every
// refusal different (a port scan) is reported for the first kinds only,
// then once per interval in all.
const maxReportKinds = 256

func newReporter(w io.Writer) *reporter {
	return &reporter{w: w, every: reportEvery, now: time.Now, kinds: map[string]*reportState{}}
}

// denied reports that call was refused for d.
func (r *reporter) denied(call string, d denial) {
	if r == nil || r.w == nil {
		return
	}
	key := call + "\x00" + d.why
	r.mu.Lock()
	now := r.now()
	st, ok := r.kinds[key]
	if !ok && len(r.kinds) >= maxReportKinds {
		key = "\x00overflow"
		st, ok = r.kinds[key]
	}
	if !ok {
		st = &reportState{}
		r.kinds[key] = st
	} else if now.Sub(st.last) < r.every {
		st.skipped++
		r.mu.Unlock()
		return
	}
	skipped := st.skipped
	st.last, st.skipped = now, 0
	r.mu.Unlock()
	msg := fmt.Sprintf("oak: network: refused %s: %s (%s)", call, d.why, d.e.Error())
	if d.allow != "" {
		msg += "; allow it with " + d.allow
	}
	if skipped > 0 {
		msg += fmt.Sprintf(" [%d more like it not shown]", skipped)
	}
	io.WriteString(r.w, msg+"\n")
}

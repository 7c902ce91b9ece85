package engine

// An invocation's container counts its trapped calls in its counters file
// (netcounts_linux.go) while it runs, as every container does, and the
// file goes with its record, at the invocation's end. So that what
// functions' invocations did stays measured, the engine that ends an
// invocation adds its counts to its function's totals first (foldCalls,
// from finish); the daemon exports them by function. A new daemon starts
// them from zero, as it does its other counters.

// foldCalls adds the trapped calls counted for container id, an
// invocation of function name about to be removed, to name's totals.
func (e *Engine) foldCalls(name, id string) {
	nc, err := e.NetCounts(id)
	if err != nil {
		return // it counted none (never served), or they are unreadable
	}
	s := &e.functions
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls == nil {
		s.calls = map[string]*NetCounts{}
	}
	t := s.calls[name]
	if t == nil {
		t = &NetCounts{}
		s.calls[name] = t
	}
	t.Restarts += nc.Restarts
	for len(t.Calls) < len(nc.Calls) {
		t.Calls = append(t.Calls, nil)
	}
	for c, row := range nc.Calls {
		for len(t.Calls[c]) < len(row) {
			t.Calls[c] = append(t.Calls[c], 0)
		}
		for o, v := range row {
			t.Calls[c][o] += v
		}
	}
}

// FunctionNetCounts are the trapped calls of the invocations this engine
// ended, by function: a copy.
func (e *Engine) FunctionNetCounts() map[string]*NetCounts {
	s := &e.functions
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]*NetCounts, len(s.calls))
	for name, t := range s.calls {
		c := &NetCounts{Restarts: t.Restarts}
		for _, row := range t.Calls {
			c.Calls = append(c.Calls, append([]uint64(nil), row...))
		}
		out[name] = c
	}
	return out
}

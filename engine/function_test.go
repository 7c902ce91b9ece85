package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// waitQueued waits until n callers wait in q: the test orders arrivals
// by what the queue has seen, not by sleeping.
func waitQueued(t *testing.T, q *fairQueue, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for q.queued() != n {
		if time.Now().After(deadline) {
			t.Fatalf("queued = %d, want %d", q.queued(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestFairQueueFlood: one slot, client A holds it and queues 100 more,
// then B queues one. The slot A frees goes to B, not to A's queue.
func TestFairQueueFlood(t *testing.T) {
	q := newFairQueue(1)
	ctx := context.Background()
	first, err := q.acquire(ctx, "A")
	if err != nil {
		t.Fatal(err)
	}
	order := make(chan string, 101)
	releases := make(chan func(), 101)
	enqueue := func(client string, i int) {
		go func() {
			rel, err := q.acquire(ctx, client)
			if err != nil {
				t.Error(err)
				return
			}
			order <- fmt.Sprintf("%s%d", client, i)
			releases <- rel
		}()
	}
	for i := range 100 {
		enqueue("A", i)
		waitQueued(t, q, i+1) // arrival order within A is FIFO
	}
	enqueue("B", 0)
	waitQueued(t, q, 101)
	if h, w := q.counts(); h != 1 || w != 101 {
		t.Fatalf("counts: holding %d waiting %d, want 1 and 101", h, w)
	}
	first()
	if got := <-order; got != "B0" {
		t.Fatalf("first grant after the flood went to %s, want B0", got)
	}
	// Then A's invocations, in their order.
	for i := range 100 {
		(<-releases)()
		if got, want := <-order, fmt.Sprintf("A%d", i); got != want {
			t.Fatalf("grant %d went to %s, want %s", i, got, want)
		}
	}
	(<-releases)()
	if q.free != 1 || len(q.clients) != 0 {
		t.Fatalf("after all: free %d, clients %v; want 1 and none", q.free, q.clients)
	}
}

// TestFairQueueRoundRobin: with equal holdings, clients take turns.
func TestFairQueueRoundRobin(t *testing.T) {
	q := newFairQueue(1)
	ctx := context.Background()
	hold, _ := q.acquire(ctx, "X")
	order := make(chan string, 6)
	releases := make(chan func(), 6)
	n := 0
	for _, c := range []string{"A", "A", "A", "B", "B", "C"} {
		go func() {
			rel, err := q.acquire(ctx, c)
			if err != nil {
				t.Error(err)
				return
			}
			order <- c
			releases <- rel
		}()
		n++
		waitQueued(t, q, n)
	}
	hold()
	var got []string
	for range 6 {
		got = append(got, <-order)
		(<-releases)()
	}
	if s := strings.Join(got, ""); s != "ABCABA" {
		t.Fatalf("grant order %s, want ABCABA", s)
	}
}

// TestFairQueueCancel: a waiter whose context ends leaves the queue, and
// the slot is not lost.
func TestFairQueueCancel(t *testing.T) {
	q := newFairQueue(1)
	hold, _ := q.acquire(context.Background(), "A")
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() {
		_, err := q.acquire(ctx, "B")
		errc <- err
	}()
	waitQueued(t, q, 1)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled acquire: %v", err)
	}
	hold()
	hold() // a second release is a no-op
	if q.free != 1 || q.queued() != 0 {
		t.Fatalf("free %d queued %d, want 1 and 0", q.free, q.queued())
	}
}

func TestFunctionOptionsCheck(t *testing.T) {
	ok := FunctionOptions{Name: "echo", Image: "demo"}.withDefaults()
	if err := ok.check(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if q := ok.factoryQuota(); q.MemoryBytes != DefaultFunctionConcurrency*DefaultFunctionMemory ||
		q.Pids != DefaultFunctionConcurrency*DefaultFunctionPids || q.CPUMilli != DefaultFunctionConcurrency*DefaultFunctionCPUMilli {
		t.Fatalf("factory quota %+v is not concurrency × limits", q)
	}
	for _, tc := range []struct {
		edit func(*FunctionOptions)
		want string
	}{
		{func(o *FunctionOptions) { o.Name = "-x" }, "invalid function name"},
		{func(o *FunctionOptions) { o.Name = strings.Repeat("a", MaxNameLen) }, "invalid function name"},
		{func(o *FunctionOptions) { o.Image = "" }, "image is required"},
		{func(o *FunctionOptions) { o.Concurrency = -1 }, "--concurrency"},
		{func(o *FunctionOptions) { o.Concurrency = MaxFunctionConcurrency + 1 }, "--concurrency"},
		{func(o *FunctionOptions) { o.Warm = o.Concurrency + 1 }, "--warm"},
		{func(o *FunctionOptions) { o.Limits.Timeout = -time.Second }, "--timeout"},
		{func(o *FunctionOptions) { o.Limits.MemoryBytes = 1 << 10 }, "--memory"},
		{func(o *FunctionOptions) { o.Limits.Pids = 1 }, "--pids"},
		{func(o *FunctionOptions) { o.Env = []string{"=x"} }, "-e"},
		{func(o *FunctionOptions) { o.Limits.MemoryBytes = 1 << 62; o.Concurrency = 8 }, "overflows"},
	} {
		o := ok
		tc.edit(&o)
		err := o.check()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want an error with %q", o, err, tc.want)
		}
	}
}

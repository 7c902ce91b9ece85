package engine

import (
	"context"
	"sync"
)

// fairQueue hands out a function's invocation slots (its concurrency)
// fairly among clients. While a slot is free and nobody waits, a caller
// takes it at once. Otherwise callers wait, each client in its own FIFO
// queue, and a freed slot goes to the waiting client that holds the
// fewest slots now; among those, to the one served least recently. A
// client that floods the function with invocations therefore holds at
// most its share: another client's single invocation takes the next slot
// that frees, however many the flood has queued before it.
//
// The queue lives in the process that invokes (the daemon serves every
// client of a state root through one); the kernel bounds what the
// invocations use through the function's factory, whoever starts them.
type fairQueue struct {
	mu      sync.Mutex
	free    int
	clients map[string]*queueClient
	served  uint64 // grants made so far, to order clients by their last
	arrived uint64 // waiters queued so far, to order ties by arrival
}

// waiter is one caller waiting: closed when granted; seq is its arrival.
type waiter struct {
	ch  chan struct{}
	seq uint64
}

// queueClient is one client's state: its waiters in arrival order, the
// slots it holds, and when it was last given one.
type queueClient struct {
	waiting []waiter
	holding int
	last    uint64
}

func newFairQueue(slots int) *fairQueue {
	return &fairQueue{free: slots, clients: map[string]*queueClient{}}
}

// acquire waits for a slot for client, or for ctx to end. It returns the
// slot's release, to be called exactly once when the invocation is over.
func (q *fairQueue) acquire(ctx context.Context, client string) (release func(), err error) {
	q.mu.Lock()
	c := q.client(client)
	if q.free > 0 && q.waiters() == 0 {
		q.free--
		q.grant(c)
		q.mu.Unlock()
		return q.releaser(client), nil
	}
	ch := make(chan struct{})
	q.arrived++
	c.waiting = append(c.waiting, waiter{ch, q.arrived})
	q.mu.Unlock()
	select {
	case <-ch:
		return q.releaser(client), nil
	case <-ctx.Done():
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	select {
	case <-ch: // granted meanwhile: give it on
		q.put(client)
	default:
		for i, w := range c.waiting {
			if w.ch == ch {
				c.waiting = append(c.waiting[:i], c.waiting[i+1:]...)
				break
			}
		}
		q.forget(client)
	}
	return nil, ctx.Err()
}

// client is name's state, made when first seen. q.mu is held.
func (q *fairQueue) client(name string) *queueClient {
	c := q.clients[name]
	if c == nil {
		c = &queueClient{}
		q.clients[name] = c
	}
	return c
}

// forget drops a client that neither holds nor waits. q.mu is held.
func (q *fairQueue) forget(name string) {
	if c := q.clients[name]; c != nil && c.holding == 0 && len(c.waiting) == 0 {
		delete(q.clients, name)
	}
}

func (q *fairQueue) grant(c *queueClient) {
	c.holding++
	q.served++
	c.last = q.served
}

func (q *fairQueue) waiters() int {
	n := 0
	for _, c := range q.clients {
		n += len(c.waiting)
	}
	return n
}

func (q *fairQueue) releaser(client string) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			q.mu.Lock()
			defer q.mu.Unlock()
			q.put(client)
		})
	}
}

// put returns a slot client held and gives it to the next waiter, if
// any. q.mu is held.
func (q *fairQueue) put(client string) {
	if c := q.clients[client]; c != nil {
		c.holding--
		q.forget(client)
	}
	var next *queueClient
	for _, c := range q.clients {
		if len(c.waiting) == 0 {
			continue
		}
		if next == nil || before(c, next) {
			next = c
		}
	}
	if next == nil {
		q.free++
		return
	}
	w := next.waiting[0]
	next.waiting = next.waiting[1:]
	q.grant(next)
	close(w.ch)
}

// before says whether waiting client a is served before b: fewer slots
// held, then served longer ago, then waiting longer.
func before(a, b *queueClient) bool {
	if a.holding != b.holding {
		return a.holding < b.holding
	}
	if a.last != b.last {
		return a.last < b.last
	}
	return a.waiting[0].seq < b.waiting[0].seq
}

// counts is how many slots are held and how many callers wait.
func (q *fairQueue) counts() (holding, waiting int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, c := range q.clients {
		holding += c.holding
	}
	return holding, q.waiters()
}

// queued is how many callers wait, for tests.
func (q *fairQueue) queued() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.waiters()
}

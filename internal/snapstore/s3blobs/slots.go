package s3blobs

import (
	"container/heap"
	"context"
	"sync"
)

// slots bounds the range requests in flight. A request that waits for a
// slot gets it in the order its read is needed (snapstore.ReadOrder: the
// first page a read serves, in a pass through an image), not in the order
// it came: a restore's read-ahead launches the reads of several inner
// nodes' leaves at once, and with a plain semaphore the packs of the node
// the restore was waiting for could come last (a cold restore of 1 GiB
// waited 570 ms for its first page with eight packs fetched, the one it
// needed the eighth). Reads without an order (the tree's top, indexes, a
// capture's bases) go before any ordered one; equal orders go first come,
// first served.
type slots struct {
	mu      sync.Mutex
	free    int
	waiting waiters
	seq     uint64
}

func newSlots(n int) *slots { return &slots{free: n} }

type waiter struct {
	order int64
	seq   uint64
	ready chan struct{} // closed when the slot is granted
	index int           // in the heap; -1 once granted
}

type waiters []*waiter

func (w waiters) Len() int { return len(w) }
func (w waiters) Less(i, j int) bool {
	if w[i].order != w[j].order {
		return w[i].order < w[j].order
	}
	return w[i].seq < w[j].seq
}
func (w waiters) Swap(i, j int) {
	w[i], w[j] = w[j], w[i]
	w[i].index, w[j].index = i, j
}
func (w *waiters) Push(x any) {
	wt := x.(*waiter)
	wt.index = len(*w)
	*w = append(*w, wt)
}
func (w *waiters) Pop() any {
	old := *w
	wt := old[len(old)-1]
	old[len(old)-1] = nil
	*w = old[:len(old)-1]
	wt.index = -1
	return wt
}

// enqueue asks for a slot, which wait then waits for.
func (s *slots) enqueue(order int64) *waiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := &waiter{order: order, seq: s.seq, ready: make(chan struct{}), index: -1}
	s.seq++
	if s.free > 0 && len(s.waiting) == 0 {
		s.free--
		close(w.ready)
		return w
	}
	heap.Push(&s.waiting, w)
	return w
}

// boost moves a request still waiting up to order, when that is earlier:
// a read needed sooner waits for the blocks it fetches.
func (s *slots) boost(w *waiter, order int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.index >= 0 && order < w.order {
		w.order = order
		heap.Fix(&s.waiting, w.index)
	}
}

// wait waits for the slot enqueue asked for; the caller releases it.
func (s *slots) wait(ctx context.Context, w *waiter) error {
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		if w.index >= 0 {
			heap.Remove(&s.waiting, w.index)
			s.mu.Unlock()
		} else {
			// Granted meanwhile: the slot goes to the next.
			s.mu.Unlock()
			s.release()
		}
		return context.Cause(ctx)
	}
}

// release frees a slot, for the waiting request needed first.
func (s *slots) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.waiting) > 0 {
		close(heap.Pop(&s.waiting).(*waiter).ready)
		return
	}
	s.free++
}

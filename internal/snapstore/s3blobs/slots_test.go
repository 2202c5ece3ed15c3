package s3blobs

import (
	"context"
	"errors"
	"math"
	"testing"
)

// TestSlotsGoInReadOrder checks that a freed request slot goes to the
// waiting read needed first (the lowest snapstore.ReadOrder, reads
// without an order before all), not to the one that came first, and that
// a read that gives up waiting takes no slot with it.
func TestSlotsGoInReadOrder(t *testing.T) {
	s := newSlots(1)
	ctx := context.Background()
	if err := s.acquire(ctx, 0); err != nil {
		t.Fatal(err)
	}
	granted := make(chan int64, 5)
	queued := func(n int) {
		for {
			s.mu.Lock()
			l := len(s.waiting)
			s.mu.Unlock()
			if l == n {
				return
			}
		}
	}
	cancelled, cancel := context.WithCancelCause(ctx)
	gaveUp := make(chan error, 1)
	go func() { gaveUp <- s.acquire(cancelled, 5) }()
	queued(1)
	for k, order := range []int64{30, 10, math.MinInt64, 20} {
		go func() {
			if err := s.acquire(ctx, order); err != nil {
				t.Error(err)
			}
			granted <- order
		}()
		queued(k + 2)
	}
	stop := errors.New("stopped waiting")
	cancel(stop)
	if err := <-gaveUp; !errors.Is(err, stop) {
		t.Fatalf("a cancelled wait returned %v, want its cause", err)
	}
	var got []int64
	for range 4 {
		s.release()
		got = append(got, <-granted)
	}
	want := []int64{math.MinInt64, 10, 20, 30}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("slots granted in the order %v, want %v", got, want)
		}
	}
	s.release()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.free != 1 || len(s.waiting) != 0 {
		t.Errorf("after every release: %d free, %d waiting; want 1 and 0", s.free, len(s.waiting))
	}
}

// TestSlotsBoost checks that a waiting request moved up to an earlier
// order (a read needed sooner waits for its blocks) is granted before
// the ones it now precedes.
func TestSlotsBoost(t *testing.T) {
	s := newSlots(1)
	held := s.enqueue(0)
	late, early := s.enqueue(30), s.enqueue(20)
	s.boost(late, 10)
	s.boost(early, 40) // never later than asked first
	s.release()
	select {
	case <-late.ready:
	default:
		t.Fatal("the boosted request did not get the freed slot")
	}
	select {
	case <-early.ready:
		t.Fatal("both requests got a slot")
	default:
	}
	s.release()
	<-early.ready
	_ = held
}

// acquire waits for a slot of s, as Cache.fetchRun does in two steps
// (enqueue, then wait); the caller releases it.
func (s *slots) acquire(ctx context.Context, order int64) error {
	return s.wait(ctx, s.enqueue(order))
}

package auth

import (
	"context"
	"errors"
	"math"
	"sync/atomic"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// Bounds on argon2 work. Each hash holds argonMemory (19 MiB) for about
// 50 ms (measured on a 2-core AMD EPYC: 52 ms per hash). Unbounded, 60
// anonymous sign-ins at once took the server from 74 MB to 1.85 GB RSS.
// Two hashes at once cap that memory at 38 MiB and still check about 38
// sign-ins a second, far more than a console's people need. 32 callers may
// queue behind them, about 0.8 s of work; the rest are told to come back
// rather than pile up.
const (
	MaxHashes      = 2
	maxHashWaiters = 32
	// hashWait is how long a queued caller waits for a slot before being
	// told the console is busy: a full queue drains in under a second.
	hashWait = 2 * time.Second
	// busyRetry is the Retry-After given with a busy refusal.
	busyRetry = time.Second
)

// hashGate is a semaphore for password hashing: at most cap(slots) hashes
// run at once, at most maxWaiters callers queue for a slot.
type hashGate struct {
	slots      chan struct{}
	maxWaiters int64
	wait       time.Duration
	waiting    atomic.Int64
	// running is the hashes in progress and peak the most there ever were;
	// tests read peak to check the bound.
	running atomic.Int64
	peak    atomic.Int64
}

func newHashGate(n, maxWaiters int, wait time.Duration) *hashGate {
	return &hashGate{slots: make(chan struct{}, n), maxWaiters: int64(maxWaiters), wait: wait}
}

// errBusy refuses a hash when the gate's queue is full or the wait ran out.
var errBusy = &snapdeck.Error{Code: snapdeck.TooMany, Err: retryAfter(busyRetry),
	Message: "The console is busy checking other sign-ins. Try again in a moment."}

// do runs fn, which hashes, once a slot is free. It returns errBusy when
// too many callers already wait or no slot frees within the wait, and the
// context's error when the caller goes away.
func (g *hashGate) do(ctx context.Context, fn func()) error {
	select {
	case g.slots <- struct{}{}:
	default:
		if g.waiting.Add(1) > g.maxWaiters {
			g.waiting.Add(-1)
			return errBusy
		}
		timer := time.NewTimer(g.wait)
		select {
		case g.slots <- struct{}{}:
			timer.Stop()
			g.waiting.Add(-1)
		case <-timer.C:
			g.waiting.Add(-1)
			return errBusy
		case <-ctx.Done():
			timer.Stop()
			g.waiting.Add(-1)
			return ctx.Err()
		}
	}
	defer func() { <-g.slots }()
	n := g.running.Add(1)
	for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
	}
	defer g.running.Add(-1)
	fn()
	return nil
}

// retryAfter is the cause of a TooMany refusal: how long to wait.
type retryAfter time.Duration

func (r retryAfter) Error() string { return "retry after " + time.Duration(r).String() }

// RetryAfter returns how long a caller refused with TooMany should wait
// before trying again, in whole seconds, at least one.
func RetryAfter(err error) (time.Duration, bool) {
	var r retryAfter
	if !errors.As(err, &r) {
		return 0, false
	}
	return time.Duration(max(1, math.Ceil(time.Duration(r).Seconds()))) * time.Second, true
}

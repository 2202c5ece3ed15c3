package apikey

import (
	"math"
	"sync"
	"time"
)

// DefaultRate is Aura's documented limit: 125 requests a minute.
const DefaultRate = 125

// Limiter is a token bucket per key: a key may burst up to Rate requests,
// and regains Rate of them per Per. It lives in memory: a restart forgives
// everyone, which is harmless for a limit meant to stop runaway scripts.
type Limiter struct {
	rate float64
	per  time.Duration

	mu      sync.Mutex
	buckets map[string]*bucket
	sweep   time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

// NewLimiter returns a Limiter allowing rate requests per period per key.
func NewLimiter(rate int, per time.Duration) *Limiter {
	if rate <= 0 {
		rate = DefaultRate
	}
	if per <= 0 {
		per = time.Minute
	}
	return &Limiter{rate: float64(rate), per: per, buckets: map[string]*bucket{}}
}

// Allow takes one request from key's bucket at time now. When the bucket is
// empty it answers false and how long until the next request is allowed.
func (l *Limiter) Allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.forgetIdle(now)
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: l.rate, at: now}
		l.buckets[key] = b
	}
	if elapsed := now.Sub(b.at); elapsed > 0 {
		b.tokens = math.Min(l.rate, b.tokens+l.rate*elapsed.Seconds()/l.per.Seconds())
		b.at = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.rate * float64(l.per))
	return false, wait
}

// forgetIdle drops buckets that have refilled, once per period, so keys
// that stopped calling do not accumulate.
func (l *Limiter) forgetIdle(now time.Time) {
	if now.Sub(l.sweep) < l.per {
		return
	}
	l.sweep = now
	for k, b := range l.buckets {
		if now.Sub(b.at) >= l.per {
			delete(l.buckets, k)
		}
	}
}

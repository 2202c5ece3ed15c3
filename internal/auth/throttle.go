package auth

import (
	"container/list"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Sign-in throttling. Failures are counted per client address and per
// account at one address, never per account alone: a stranger's wrong
// guesses then cannot keep out a user who has the right password and signs
// in from another address. Guessing from many addresses at once is bounded
// by the hash gate instead.
const (
	// MaxFailures failed sign-ins for one account from one address within
	// FailureWindow refuse that account from that address until the oldest
	// ages out: enough for a user's typos, too few for guessing.
	MaxFailures = 5
	// MaxAddressFailures failed sign-ins from one address, whatever the
	// accounts, refuse that address: a guesser cannot get around the
	// account limit by trying one password on many accounts. Higher than
	// MaxFailures because several people may share an address.
	MaxAddressFailures = 30
	FailureWindow      = 15 * time.Minute
	// maxThrottleEntries bounds the failure records kept: an entry holds
	// at most MaxAddressFailures times, so the records stay under ~10 MB
	// however many addresses and emails are tried. Past it, the entry that
	// failed least recently is forgotten.
	maxThrottleEntries = 10000
)

// throttle keeps recent failure times per key, in memory. Entries are
// ordered by their latest failure, so expired ones are dropped from the
// back in passing and the least recent one goes first when full.
type throttle struct {
	mu      sync.Mutex
	entries map[string]*list.Element
	order   *list.List // of *throttleEntry, most recent failure in front
	max     int
}

type throttleEntry struct {
	key   string
	times []time.Time // oldest first, at most the key's limit
	// reported is set once a refusal of this key was recorded, so one
	// lockout is one line in the activity log however often it is hit.
	reported bool
}

func newThrottle(max int) *throttle {
	return &throttle{entries: map[string]*list.Element{}, order: list.New(), max: max}
}

// limit is a throttling key and the failures it may have in the window.
type limit struct {
	key string
	max int
}

// admit counts an attempt at now against every limit, as a failure until
// forget takes it back, unless one of them is reached already: then it
// counts nothing and returns that limit's index, how long it is still
// refused and whether this is the first refusal of the lockout; else -1.
// The check and the count are one step under the lock, so attempts that
// run together cannot all pass a limit before any of them is counted.
func (t *throttle) admit(limits []limit, now time.Time) (refusedBy int, wait time.Duration, first bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, l := range limits {
		if wait, first := t.refusedLocked(l.key, l.max, now); wait > 0 {
			return i, wait, first
		}
	}
	for _, l := range limits {
		t.failLocked(l.key, l.max, now)
	}
	return -1, 0, false
}

// refused returns how long key is still refused (0 when it is not) and
// whether this is the first refusal of the lockout.
func (t *throttle) refused(key string, limit int, now time.Time) (wait time.Duration, first bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.refusedLocked(key, limit, now)
}

func (t *throttle) refusedLocked(key string, limit int, now time.Time) (wait time.Duration, first bool) {
	el, ok := t.entries[key]
	if !ok {
		return 0, false
	}
	e := el.Value.(*throttleEntry)
	e.times = recent(e.times, now)
	if len(e.times) < limit {
		e.reported = false
		return 0, false
	}
	first = !e.reported
	e.reported = true
	return e.times[len(e.times)-limit].Add(FailureWindow).Sub(now), first
}

// fail records a failure of key at now, keeping at most limit times.
func (t *throttle) fail(key string, limit int, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failLocked(key, limit, now)
}

func (t *throttle) failLocked(key string, limit int, now time.Time) {
	el, ok := t.entries[key]
	if ok {
		t.order.MoveToFront(el)
	} else {
		t.prune(now)
		for t.order.Len() >= t.max {
			t.remove(t.order.Back())
		}
		el = t.order.PushFront(&throttleEntry{key: key})
		t.entries[key] = el
	}
	e := el.Value.(*throttleEntry)
	e.times = append(recent(e.times, now), now)
	if len(e.times) > limit {
		e.times = e.times[len(e.times)-limit:]
	}
}

// forget takes back the failure of key recorded at, for an attempt that
// turned out not to fail.
func (t *throttle) forget(key string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	el, ok := t.entries[key]
	if !ok {
		return
	}
	e := el.Value.(*throttleEntry)
	for i := len(e.times) - 1; i >= 0; i-- {
		if e.times[i].Equal(at) {
			e.times = append(e.times[:i:i], e.times[i+1:]...)
			return
		}
	}
}

// clear forgets key's failures, after a successful sign-in.
func (t *throttle) clear(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if el, ok := t.entries[key]; ok {
		t.remove(el)
	}
}

// len returns how many keys have failure records.
func (t *throttle) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.order.Len()
}

// prune drops entries whose latest failure is out of the window; they sit
// at the back.
func (t *throttle) prune(now time.Time) {
	for el := t.order.Back(); el != nil; el = t.order.Back() {
		e := el.Value.(*throttleEntry)
		if len(e.times) > 0 && now.Sub(e.times[len(e.times)-1]) < FailureWindow {
			return
		}
		t.remove(el)
	}
}

func (t *throttle) remove(el *list.Element) {
	delete(t.entries, el.Value.(*throttleEntry).key)
	t.order.Remove(el)
}

// recent drops the times that are out of the window.
func recent(times []time.Time, now time.Time) []time.Time {
	i := 0
	for i < len(times) && now.Sub(times[i]) >= FailureWindow {
		i++
	}
	return times[i:]
}

// clientAddress is the throttling key of a client address: an IPv6 client
// is its /64, since one host usually holds a whole /64 and could otherwise
// take a fresh address for every try.
func clientAddress(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		if len(addr) > 64 {
			addr = addr[:64]
		}
		return addr
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return ip.String()
	}
	p, err := ip.WithZone("").Prefix(64)
	if err != nil {
		return ip.String()
	}
	return p.String()
}

// accountKey is the throttling key of an email at a client address.
func accountKey(email, addr string) string {
	return strings.ToLower(email) + " from " + addr
}

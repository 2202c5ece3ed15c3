package s3blobs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// leaseKey is the object, under the prefix, that names the prefix's owner.
const leaseKey = "lease.json"

// LeaseTTL is how long a lease holds without a heartbeat: a node renews its
// lease every LeaseTTL/3, so a live node misses two renewals (a slow
// server, a short network cut) before another may take the prefix over.
const LeaseTTL = 30 * time.Second

// Holder is who holds a prefix, as the lease object records it.
type Holder struct {
	// Node identifies the node across restarts (kept in its data
	// directory), so a node restarted after a crash takes its own lease
	// back at once.
	Node      string    `json:"node"`
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	Started   time.Time `json:"started"`
	Heartbeat time.Time `json:"heartbeat"`
}

func (h Holder) String() string {
	return fmt.Sprintf("node %s (host %s, pid %d)", h.Node, h.Host, h.PID)
}

// Lease is this node's hold on a prefix: while it is held, another node
// refuses to start on the prefix. It is renewed in the background until
// Release.
type Lease struct {
	s      *S3
	me     Holder
	ttl    time.Duration
	now    func() time.Time
	logger *slog.Logger
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
	mu     sync.Mutex // serialises renewals and guards me.Heartbeat
}

// AcquireLease makes me the holder of s's prefix, unless another node holds
// it and renewed it within ttl (LeaseTTL when zero): then it refuses with a
// Conflict error that names the holder. A lease of me's own node is taken
// back at once (the node restarted), a stale one is taken over.
//
// S3 has no lock: after writing the lease AcquireLease reads it back, and
// of two nodes starting in the same instant the one whose write landed
// last wins and the other refuses.
func AcquireLease(ctx context.Context, s *S3, me Holder, ttl time.Duration, logger *slog.Logger) (*Lease, error) {
	if ttl <= 0 {
		ttl = LeaseTTL
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &Lease{s: s, me: me, ttl: ttl, now: time.Now, logger: logger, stop: make(chan struct{}), done: make(chan struct{})}
	now := l.now()
	held, err := l.read(ctx)
	switch {
	case snapdeck.ErrorCode(err) == snapdeck.NotFound:
	case err != nil:
		return nil, err
	case held.Node != me.Node && now.Sub(held.Heartbeat) < ttl:
		return nil, l.refusal(held, now)
	case held.Node != me.Node:
		logger.Warn("snapshot store: taking over a stale lease", "store", s.String(), "holder", held.String(), "heartbeat", held.Heartbeat)
	}
	l.me.Started, l.me.Heartbeat = now, now
	if err := l.write(ctx); err != nil {
		return nil, err
	}
	held, err = l.read(ctx)
	if err != nil {
		return nil, err
	}
	if held.Node != me.Node {
		return nil, l.refusal(held, now)
	}
	go l.renew()
	return l, nil
}

func (l *Lease) refusal(held Holder, now time.Time) error {
	return &snapdeck.Error{Code: snapdeck.Conflict, Message: fmt.Sprintf(
		"snapshot store %s is in use by %s, last heartbeat %s ago: one prefix has one owner; stop that node or use another prefix",
		l.s.String(), held.String(), now.Sub(held.Heartbeat).Round(time.Second))}
}

func (l *Lease) read(ctx context.Context) (Holder, error) {
	data, err := l.s.Get(ctx, leaseKey)
	if err != nil {
		return Holder{}, err
	}
	var h Holder
	if err := json.Unmarshal(data, &h); err != nil {
		return Holder{}, fmt.Errorf("read the lease of %s: %w", l.s.String(), err)
	}
	return h, nil
}

func (l *Lease) write(ctx context.Context) error {
	data, err := json.Marshal(l.me)
	if err != nil {
		return err
	}
	if err := l.s.Put(ctx, leaseKey, data); err != nil {
		return fmt.Errorf("write the lease of %s: %w", l.s.String(), err)
	}
	return nil
}

// renew writes a fresh heartbeat every ttl/3 until Release. A lease found
// taken over by another node (this one missed its renewals, or lost a
// start in the same instant) is logged and not written back, and the
// store is fenced: its Puts and Deletes fail from then on.
func (l *Lease) renew() {
	defer close(l.done)
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), l.ttl/3)
		err := l.Renew(ctx)
		cancel()
		if err != nil {
			l.logger.Error("snapshot store: lease not renewed", "store", l.s.String(), "err", err)
		}
	}
}

// Renew writes a fresh heartbeat now, unless another node has taken the
// lease over.
func (l *Lease) Renew(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	held, err := l.read(ctx)
	if err != nil && snapdeck.ErrorCode(err) != snapdeck.NotFound {
		return err
	}
	if err == nil && held.Node != l.me.Node {
		lost := &snapdeck.Error{Code: snapdeck.Conflict, Message: fmt.Sprintf(
			"snapshot store %s was taken over by %s: this node writes and deletes nothing there any more; restart it on another prefix",
			l.s.String(), held.String())}
		// Two nodes that start in the same instant can both read their
		// own write back; the first renewal tells the loser, which stops
		// writing then rather than sweep the other's packs.
		l.s.fence(lost)
		return lost
	}
	l.me.Heartbeat = l.now()
	return l.write(ctx)
}

// Release stops renewing and deletes the lease if it is still this node's,
// so another node may start on the prefix at once.
func (l *Lease) Release(ctx context.Context) error {
	l.once.Do(func() { close(l.stop) })
	<-l.done
	held, err := l.read(ctx)
	if snapdeck.ErrorCode(err) == snapdeck.NotFound {
		return nil
	}
	if err != nil {
		return err
	}
	if held.Node != l.me.Node {
		return nil
	}
	return l.s.Delete(ctx, leaseKey)
}

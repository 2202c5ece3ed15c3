package schedule

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/metrics"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// Notification is the JSON body POSTed to --notify-url.
type Notification struct {
	// Event is "snapshot.failed" or "restore.completed".
	Event        string `json:"event"`
	DatabaseID   string `json:"database_id"`
	SnapshotID   string `json:"snapshot_id,omitempty"`
	SnapshotType string `json:"snapshot_type,omitempty"`
	// Outcome of a restore: "ok" or "failed".
	Outcome string    `json:"outcome,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	Error   string    `json:"error,omitempty"`
	Actor   string    `json:"actor,omitempty"`
	At      time.Time `json:"at"`
}

// NotifierConfig configures a Notifier. Zero values take the defaults noted.
type NotifierConfig struct {
	URL     string
	Client  *http.Client // default: 10s timeout
	Clock   clockwork.Clock
	Logger  *slog.Logger
	Metrics *metrics.Metrics
	// Attempts per notification (default 5); Backoff the first wait between
	// them, doubled each time (default 2s).
	Attempts int
	Backoff  time.Duration
	// Queue is how many notifications may wait (default 256); beyond it
	// new ones are dropped and counted rather than holding up snapshots.
	Queue int
}

// Notifier POSTs a Notification when a snapshot fails or a restore ends,
// in the background, one at a time and in order, retrying with backoff.
type Notifier struct {
	cfg    NotifierConfig
	queue  chan Notification
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// NewNotifier starts a Notifier posting to cfg.URL.
func NewNotifier(cfg NotifierConfig) *Notifier {
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Attempts = cmp.Or(cfg.Attempts, 5)
	cfg.Backoff = cmp.Or(cfg.Backoff, 2*time.Second)
	cfg.Queue = cmp.Or(cfg.Queue, 256)
	n := &Notifier{cfg: cfg, queue: make(chan Notification, cfg.Queue), done: make(chan struct{})}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	go n.loop()
	return n
}

// Snapshot notifies a failed snapshot; the database services' observer calls it for
// every snapshot that ended.
func (n *Notifier) Snapshot(s snapdeck.Snapshot, _ time.Duration) {
	if s.Status != snapdeck.SnapshotFailed {
		return
	}
	n.Send(Notification{Event: "snapshot.failed", DatabaseID: s.DatabaseID, SnapshotID: s.ID, SnapshotType: string(s.Type),
		Reason: s.Reason, Error: s.Error, At: s.CompletedAt})
}

// Event notifies the end of a restore (or an API overwrite). It is the
// activity log's observer, told of every line: a restore or overwrite
// refused before it began replaced nothing, so it is not notified.
func (n *Notifier) Event(e snapdeck.Event) {
	if e.Action != string(activity.Restore) && e.Action != string(activity.Overwrite) || e.Outcome == snapdeck.OutcomeRefused {
		return
	}
	n.Send(Notification{Event: "restore.completed", DatabaseID: e.DatabaseID, SnapshotID: e.SnapshotID,
		Outcome: string(e.Outcome), Reason: e.Detail, Actor: e.Actor, At: cmp.Or(e.At, n.cfg.Clock.Now().UTC())})
}

// Send queues a notification without waiting.
func (n *Notifier) Send(msg Notification) {
	select {
	case n.queue <- msg:
	default:
		n.cfg.Metrics.Notified("dropped")
		n.cfg.Logger.Warn("webhook queue full; notification dropped", "database_id", msg.DatabaseID, "event", msg.Event)
	}
}

// Close stops delivering; notifications still queued are dropped.
func (n *Notifier) Close(ctx context.Context) error {
	n.cancel()
	select {
	case <-n.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (n *Notifier) loop() {
	defer close(n.done)
	for {
		select {
		case msg := <-n.queue:
			n.deliver(msg)
		case <-n.ctx.Done():
			return
		}
	}
}

func (n *Notifier) deliver(msg Notification) {
	body, err := json.Marshal(msg)
	if err != nil {
		n.cfg.Logger.Error("encode notification", "err", err)
		return
	}
	backoff := n.cfg.Backoff
	for attempt := 1; ; attempt++ {
		err := n.post(body)
		if err == nil {
			n.cfg.Metrics.Notified("sent")
			return
		}
		if attempt >= n.cfg.Attempts {
			n.cfg.Metrics.Notified("failed")
			n.cfg.Logger.Error("webhook notification failed; giving up", "database_id", msg.DatabaseID, "snapshot_id", msg.SnapshotID,
				"event", msg.Event, "attempts", attempt, "err", err)
			return
		}
		n.cfg.Logger.Warn("webhook notification failed; retrying", "database_id", msg.DatabaseID, "event", msg.Event, "retry_in", backoff, "err", err)
		select {
		case <-n.cfg.Clock.After(backoff):
		case <-n.ctx.Done():
			return
		}
		backoff *= 2
	}
}

func (n *Notifier) post(body []byte) error {
	req, err := http.NewRequestWithContext(n.ctx, http.MethodPost, n.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "snapdeck-notifier")
	res, err := n.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return fmt.Errorf("webhook answered %s", res.Status)
	}
	return nil
}

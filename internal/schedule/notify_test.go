package schedule

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

func TestNotifierRetriesWithBackoff(t *testing.T) {
	clock := clockwork.NewFakeClockAt(t0)
	got := make(chan Notification, 10)
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := calls.Add(1); n <= 2 {
			http.Error(w, "not now", http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(r.Body)
		var msg Notification
		if err := json.Unmarshal(b, &msg); err != nil || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("body %s (%v), content type %q", b, err, r.Header.Get("Content-Type"))
		}
		got <- msg
	}))
	defer srv.Close()
	n := NewNotifier(NotifierConfig{URL: srv.URL, Clock: clock, Backoff: time.Second})
	defer n.Close(context.Background())

	n.Snapshot(snapdeck.Snapshot{ID: "s1", DatabaseID: "a1b2c3d4", Status: snapdeck.SnapshotCompleted}, time.Second)
	n.Event(snapdeck.Event{Action: "snapshot.take", DatabaseID: "a1b2c3d4"})
	n.Snapshot(snapdeck.Snapshot{ID: "s2", DatabaseID: "a1b2c3d4", Type: snapdeck.SnapshotScheduled, Status: snapdeck.SnapshotFailed,
		Reason: "Hourly schedule", Error: "disk full", CompletedAt: t0}, time.Second)
	n.Event(snapdeck.Event{Action: "restore", DatabaseID: "a1b2c3d4", SnapshotID: "s3", Outcome: snapdeck.OutcomeOK, Actor: "ann@example.com", At: t0})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, wait := range []time.Duration{time.Second, 2 * time.Second} {
		if err := clock.BlockUntilContext(ctx, 1); err != nil {
			t.Fatal(err)
		}
		clock.Advance(wait)
	}
	for _, want := range []Notification{
		{Event: "snapshot.failed", DatabaseID: "a1b2c3d4", SnapshotID: "s2", SnapshotType: "Scheduled", Reason: "Hourly schedule", Error: "disk full", At: t0},
		{Event: "restore.completed", DatabaseID: "a1b2c3d4", SnapshotID: "s3", Outcome: "ok", Actor: "ann@example.com", At: t0},
	} {
		select {
		case msg := <-got:
			if msg != want {
				t.Errorf("got %+v, want %+v", msg, want)
			}
		case <-ctx.Done():
			t.Fatal("notification never arrived")
		}
	}
	if c := calls.Load(); c != 4 {
		t.Errorf("%d POSTs, want 4 (two refused, then one per notification)", c)
	}
}

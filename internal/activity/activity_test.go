package activity_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/store"
)

// TestOutcome is the one rule: how an action ended, from its error's code.
func TestOutcome(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want snapdeck.Outcome
	}{
		{"nil", nil, snapdeck.OutcomeOK},
		{"invalid", snapdeck.FieldError("name", "bad"), snapdeck.OutcomeRefused},
		{"forbidden", snapdeck.Errorf(snapdeck.Forbidden, "no"), snapdeck.OutcomeRefused},
		{"unauthorized", snapdeck.Errorf(snapdeck.Unauthorized, "no"), snapdeck.OutcomeRefused},
		{"not found", snapdeck.Errorf(snapdeck.NotFound, "gone"), snapdeck.OutcomeRefused},
		{"conflict", snapdeck.Errorf(snapdeck.Conflict, "taken"), snapdeck.OutcomeRefused},
		{"busy", snapdeck.Errorf(snapdeck.Busy, "restoring"), snapdeck.OutcomeRefused},
		{"too many", snapdeck.Errorf(snapdeck.TooMany, "slow down"), snapdeck.OutcomeRefused},
		{"too large", snapdeck.Errorf(snapdeck.TooLarge, "1 GiB"), snapdeck.OutcomeRefused},
		{"wrapped refusal", fmt.Errorf("load: %w", snapdeck.Errorf(snapdeck.TooLarge, "1 GiB")), snapdeck.OutcomeRefused},
		{"internal", snapdeck.Errorf(snapdeck.Internal, "broken"), snapdeck.OutcomeFailed},
		{"untyped", errors.New("disk full"), snapdeck.OutcomeFailed},
		{"cancelled", context.Canceled, snapdeck.OutcomeFailed},
		{"unknown code", snapdeck.Errorf(snapdeck.Code("new-code"), "?"), snapdeck.OutcomeFailed},
	} {
		if got := activity.Outcome(tc.err); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
}

// observed keeps what the recorder told it.
type observed []snapdeck.Event

func (o *observed) Event(e snapdeck.Event) { *o = append(*o, e) }

// TestRecordStoresThenTellsTheObserver checks that a line is in the store,
// with the outcome and detail the rule gives, when the observer hears of
// it, and that a cancelled request does not stop it being written.
func TestRecordStoresThenTellsTheObserver(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "console.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(ctx) })
	var seen observed
	rec := activity.New(db, &seen, nil)
	gone, cancel := context.WithCancel(ctx)
	cancel()
	for _, e := range []activity.Entry{
		{Actor: "ann@x", Action: activity.Restore, DatabaseID: "a1b2c3d4", SnapshotID: "s1", Detail: "from snapshot of today"},
		{Actor: "ann@x", Action: activity.Load, DatabaseID: "a1b2c3d4", Detail: "from big.dump",
			Err: snapdeck.Errorf(snapdeck.TooLarge, "The file is over the import limit.")},
		{Actor: "api key ci", Action: activity.SnapshotTake, DatabaseID: "a1b2c3d4", Err: errors.New("disk full")},
	} {
		rec.Record(gone, e)
	}
	want := []string{
		"restore ok a1b2c3d4 s1 from snapshot of today",
		"load refused a1b2c3d4  from big.dump: The file is over the import limit.",
		"snapshot.take failed a1b2c3d4  " + snapdeck.ErrorMessage(errors.New("x")),
	}
	stored, err := db.FindEvents(ctx, snapdeck.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != len(want) || len(seen) != len(want) {
		t.Fatalf("got %d stored and %d observed, want %d of each", len(stored), len(seen), len(want))
	}
	line := func(e snapdeck.Event) string {
		return fmt.Sprintf("%s %s %s %s %s", e.Action, e.Outcome, e.DatabaseID, e.SnapshotID, e.Detail)
	}
	for i, w := range want {
		s, o := stored[len(stored)-1-i], seen[i] // stored newest first
		if line(s) != w || line(o) != w {
			t.Errorf("line %d: stored %q, observed %q; want %q", i, line(s), line(o), w)
		}
		if o.ID != s.ID || o.ID == 0 {
			t.Errorf("line %d: observed id %d, stored %d: the observer is told after the line is written", i, o.ID, s.ID)
		}
	}
}

package schedule

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// TestRealTimersEverySecond runs the scheduler on the real clock with a
// one-second cadence and a three-second retention, the way the console is
// checked with seconds-long cadences: a "Database created" snapshot, then
// one a second, and the oldest swept away. It stops itself after at most 8s.
func TestRealTimersEverySecond(t *testing.T) {
	if testing.Short() {
		t.Skip("real timers")
	}
	ctx := context.Background()
	p := snapdeck.PlanPolicy{Cadence: time.Second, Retention: 3 * time.Second}
	obs := &created{}
	db, dbs, snaps := openServices(t, map[snapdeck.Plan]snapdeck.PlanPolicy{snapdeck.PlanFree: p, snapdeck.PlanProfessional: p, snapdeck.PlanEnterprise: p}, nil, obs)
	s := New(Config{Store: db, Snapshots: snaps})
	obs.s = s
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(ctx) })
	out, err := dbs.Create(ctx, "test", database.CreateRequest{Name: "orders", Plan: snapdeck.PlanEnterprise})
	d := out.Database
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]snapdeck.Snapshot{}
	createdGone := false
	most := 0
	deadline := time.After(8 * time.Second)
	for poll := time.Tick(100 * time.Millisecond); ; {
		select {
		case <-deadline:
			t.Fatalf("after 8s: saw %d snapshots, created one swept %v", len(seen), createdGone)
		case <-poll:
		}
		recs, err := db.FindSnapshots(ctx, snapdeck.SnapshotFilter{DatabaseID: d.ID, Status: snapdeck.SnapshotCompleted})
		if err != nil {
			t.Fatal(err)
		}
		most = max(most, len(recs))
		present := false
		for _, r := range recs {
			seen[r.ID] = r.Snapshot
			present = present || r.Reason == "Database created"
		}
		createdGone = len(seen) > 1 && !present
		if createdGone && len(seen) >= 5 {
			break
		}
	}
	var times []time.Time
	for _, r := range seen {
		if r.Reason == "Scheduled every 1s" {
			times = append(times, r.CreatedAt)
		} else if r.Reason != "Database created" {
			t.Errorf("unexpected reason %q", r.Reason)
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	// On the tick, a whole number of seconds apart: a busy machine may make
	// a run overlap the next tick, which then skips, but never shifts them.
	ones := 0
	for i := 1; i < len(times); i++ {
		gap := times[i].Sub(times[i-1])
		off := gap - gap.Round(time.Second)
		if gap < 700*time.Millisecond || off < -300*time.Millisecond || off > 300*time.Millisecond {
			t.Errorf("cadence snapshots %v apart, want a whole number of seconds", gap)
		}
		if gap.Round(time.Second) == time.Second {
			ones++
		}
	}
	if ones == 0 {
		t.Errorf("no two cadence snapshots 1s apart: %v", times)
	}
	// Retention 3s, swept every second: never more than about five listed.
	if most > 6 {
		t.Errorf("up to %d snapshots listed at once, want at most 6 with a 3s retention", most)
	}
}

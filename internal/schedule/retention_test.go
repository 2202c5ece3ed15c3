package schedule

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/job"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/store"
)

func TestRetentionDeletesExpiredButNeverTheLatestOfALiveDatabase(t *testing.T) {
	hour := snapdeck.PlanPolicy{Cadence: 24 * time.Hour, Retention: time.Hour}
	e := mustEnv(t, map[snapdeck.Plan]snapdeck.PlanPolicy{snapdeck.PlanFree: hour, snapdeck.PlanProfessional: hour, snapdeck.PlanEnterprise: hour})
	ctx := context.Background()
	pro := e.create("pro", snapdeck.PlanProfessional)
	free := e.create("free", snapdeck.PlanFree)
	gone := e.create("gone", snapdeck.PlanProfessional)
	var taken = map[string][]snapdeck.Snapshot{}
	for i := range 3 {
		for _, d := range []snapdeck.Database{pro, free, gone} {
			taken[d.ID] = append(taken[d.ID], e.snapshot(d.ID, "Hourly schedule"))
		}
		if i < 2 {
			e.clock.Advance(10 * time.Minute)
		}
	}
	// A failed snapshot and one still being taken, both long expired.
	for _, st := range []snapdeck.SnapshotStatus{snapdeck.SnapshotFailed, snapdeck.SnapshotInProgress} {
		rec := store.SnapshotRecord{Snapshot: snapdeck.Snapshot{ID: "rec-" + string(st), DatabaseID: pro.ID, Type: snapdeck.SnapshotScheduled,
			Reason: "Hourly schedule", Status: st, CreatedAt: t0.Add(-2 * time.Hour), ExpiresAt: t0.Add(-time.Hour)}}
		if err := e.db.CreateSnapshot(ctx, &rec); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.dbs.Delete(ctx, "test", gone.ID, &gone.Name); err != nil {
		t.Fatal(err)
	}
	s := e.scheduler(Config{})

	ids := func(d snapdeck.Database) []string {
		var out []string
		for _, r := range e.snapshots(d.ID) {
			out = append(out, r.ID)
		}
		return out
	}
	sweep := func(at time.Duration, wantDeleted int) {
		t.Helper()
		e.advanceTo(t0.Add(at))
		n, _, err := s.Sweep(ctx)
		if err != nil {
			t.Fatalf("sweep at +%v: %v", at, err)
		}
		if n != wantDeleted {
			t.Errorf("sweep at +%v deleted %d, want %d", at, n, wantDeleted)
		}
	}
	latest := func(d snapdeck.Database) string { return taken[d.ID][2].ID }

	// +25m: nothing expired yet, but the free plan keeps only its latest;
	// the failed record expired long ago.
	sweep(25*time.Minute, 2+1)
	if got := ids(free); len(got) != 1 || got[0] != latest(free) {
		t.Errorf("free database keeps %v, want only its latest %s", got, latest(free))
	}
	if got := ids(pro); len(got) != 4 {
		t.Errorf("professional database keeps %d records, want its 3 snapshots and the one in progress", len(got))
	}
	// +65m: the first of the professional database expired (the deleted
	// database's snapshots went with it).
	sweep(65*time.Minute, 1)
	if got := ids(pro); len(got) != 3 {
		t.Errorf("after the first expiry: %d records, want 3", len(got))
	}
	// +3h: everything expired. The live database keeps its latest
	// completed snapshot (and the one in progress); the deleted one has
	// nothing left to delete.
	sweep(3*time.Hour, 1)
	got := ids(pro)
	if len(got) != 2 || got[0] != latest(pro) || got[1] != "rec-in-progress" {
		t.Errorf("professional database keeps %v, want its latest %s and the snapshot in progress", got, latest(pro))
	}
	if got := ids(free); len(got) != 1 || got[0] != latest(free) {
		t.Errorf("free database keeps %v, want its latest %s though it expired", got, latest(free))
	}
	if got := ids(gone); len(got) != 0 {
		t.Errorf("deleted database keeps %v, want nothing", got)
	}
	// The latest snapshot still restores: its storage was not reclaimed.
	if _, _, err := e.snaps.Restore(ctx, pro.ID, latest(pro), "test"); err != nil {
		t.Errorf("restore of the kept snapshot: %v", err)
	}
	// And a direct delete of it is refused as well.
	if err := e.snaps.DeleteSnapshot(ctx, latest(free)); snapdeck.ErrorCode(err) != snapdeck.Conflict {
		t.Errorf("deleting the latest snapshot of a live database: got %v, want Conflict", err)
	}
}

func TestSweeperRunsOnItsOwnAndReschedulesPlanChanges(t *testing.T) {
	min := snapdeck.PlanPolicy{Cadence: time.Hour, Retention: 3 * time.Minute}
	day := snapdeck.PlanPolicy{Cadence: 24 * time.Hour, Retention: 3 * time.Minute}
	e := mustEnv(t, map[snapdeck.Plan]snapdeck.PlanPolicy{snapdeck.PlanFree: day, snapdeck.PlanProfessional: day, snapdeck.PlanEnterprise: min})
	ctx := context.Background()
	d := e.create("orders", snapdeck.PlanProfessional)
	first := e.snapshot(d.ID, "Database created")
	e.clock.Advance(time.Minute)
	e.snapshot(d.ID, "On demand")
	s := e.scheduler(Config{SweepEvery: time.Minute})
	s.start()
	s.waitWaiters(2)
	if got, want := s.NextSnapshot(d), (Spec{Every: 24 * time.Hour}).First(d.ID, e.clock.Now()); !got.Equal(want) {
		t.Fatalf("next %v, want %v", got, want)
	}
	plan := snapdeck.PlanEnterprise
	if _, err := e.db.UpdateDatabase(ctx, d.ID, store.DatabaseUpdate{Plan: &plan}); err != nil {
		t.Fatal(err)
	}
	// Each minute the sweeper runs: the first snapshot expires at +3m and
	// goes, and the reconcile (every 5 minutes) moves the schedule to
	// hourly. A sweep still running when the next minute fires is skipped,
	// so allow a few minutes more.
	done := func() bool {
		recs := e.snapshots(d.ID)
		return len(recs) == 1 && recs[0].ID != first.ID && s.NextSnapshot(d).Sub(e.clock.Now()) <= time.Hour
	}
	for range 10 {
		e.clock.Advance(time.Minute)
		s.waitWaiters(2)
		for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
			if done() {
				return
			}
		}
	}
	t.Errorf("after 10 minutes: snapshots %d (want 1, the newer), next snapshot in %v (want within the hour)",
		len(e.snapshots(d.ID)), s.NextSnapshot(d).Sub(e.clock.Now()))
}

// TestReclaimGivesWayToJobs checks that the reclaim of the snapshot store
// waits while a job of the console runs, and starts once it ends, or once
// ReclaimGiveWay has passed beside jobs that do not end.
func TestReclaimGivesWayToJobs(t *testing.T) {
	e := mustEnv(t, hourly())
	ctx := context.Background()
	jobs := job.NewRunner(e.db, nil)
	t.Cleanup(func() { jobs.Close(ctx) })
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // before jobs.Close, which waits for the job
	if _, err := jobs.Start(ctx, snapdeck.Job{Kind: snapdeck.JobExport}, func(ctx context.Context, p *job.Progress) error {
		<-release
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s := e.scheduler(Config{Quiet: jobs, ReclaimGiveWay: time.Hour})
	swept := make(chan error, 1)
	go func() { _, _, err := s.Sweep(ctx); swept <- err }()
	select {
	case err := <-swept:
		t.Fatalf("the sweep reclaimed while a job ran (err %v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	once.Do(func() { close(release) })
	select {
	case err := <-swept:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the sweep did not reclaim after the job ended")
	}

	// A job without end holds the reclaim back for ReclaimGiveWay only.
	never := make(chan struct{})
	t.Cleanup(func() { close(never) })
	if _, err := jobs.Start(ctx, snapdeck.Job{Kind: snapdeck.JobExport}, func(ctx context.Context, p *job.Progress) error {
		select {
		case <-never:
		case <-ctx.Done():
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s2 := e.scheduler(Config{Quiet: jobs, ReclaimGiveWay: 200 * time.Millisecond})
	start := time.Now()
	if _, _, err := s2.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 10*time.Second {
		t.Errorf("the sweep beside a job without end took %v, want about its 200ms give-way", d)
	}
}

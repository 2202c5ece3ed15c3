package schedule

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/store"
)

// warnings collects the database_id of every WARN record a scheduler
// logs, safe across goroutines.
type warnings struct {
	mu  sync.Mutex
	ids []string
}

func (w *warnings) Enabled(context.Context, slog.Level) bool { return true }
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler       { return w }
func (w *warnings) WithGroup(string) slog.Handler            { return w }

func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	if r.Level != slog.LevelWarn {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "database_id" {
			w.mu.Lock()
			w.ids = append(w.ids, a.Value.String())
			w.mu.Unlock()
		}
		return true
	})
	return nil
}

// about reports whether a WARN record named database id.
func (w *warnings) about(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Contains(w.ids, id)
}

// waitNext asks the scheduler when d's next snapshot is until it answers
// want: gocron takes a replaced job in its own loop.
func (ts *testScheduler) waitNext(d snapdeck.Database, want time.Time) {
	ts.e.t.Helper()
	var got time.Time
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if got = ts.NextSnapshot(d); got.Equal(want) {
			return
		}
	}
	ts.e.t.Fatalf("%s: next snapshot %v, want %v", d.Name, got, want)
}

// storeSchedule writes an override straight into the store, unchecked, as
// an older version of the console did.
func (e *env) storeSchedule(id, text string) snapdeck.Database {
	e.t.Helper()
	d, err := e.db.UpdateDatabase(context.Background(), id, store.DatabaseUpdate{Schedule: &text})
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// TestRefusedOverrideKeepsTheOldSchedule: an override that never runs or
// runs more often than once a minute is refused before it is stored, and
// the database goes on with the schedule it had.
func TestRefusedOverrideKeepsTheOldSchedule(t *testing.T) {
	e := mustEnv(t, hourly())
	ctx := context.Background()
	d := e.create("orders", snapdeck.PlanFree)
	e.snapshot(d.ID, "Database created")
	d = e.storeSchedule(d.ID, "30m")
	// Less than the 30m since "Database created", so no catch-up, and
	// more than half of it, so the first tick is not skipped as recent.
	e.clock.Advance(20 * time.Minute)
	s := e.scheduler(Config{})
	s.start()
	s.waitWaiters(2)
	want := Spec{Every: 30 * time.Minute}.First(d.ID, e.clock.Now())
	s.waitNext(d, want)

	for _, text := range []string{"0 0 30 2 *", "0 0 0 30 2 *", "*/1 * * * * *", "* * * * * *", "0-59/30 * * * * *", "@every 10s", "30s"} {
		_, err := s.SetOverride(ctx, "test", d.ID, text)
		if e, ok := snapdeck.AsError(err); !ok || e.Code != snapdeck.Invalid || e.Field != "schedule" {
			t.Errorf("override %q: got %v, want an Invalid error on the field schedule", text, err)
		}
		got, err := e.db.FindDatabase(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Schedule != "30m" {
			t.Errorf("override %q: stored %q, want the old 30m kept", text, got.Schedule)
		}
		if next := s.NextSnapshot(got); !next.Equal(want) {
			t.Errorf("override %q: next snapshot %v, want %v on the old schedule", text, next, want)
		}
		if problem := s.OverrideProblem(got); problem != nil {
			t.Errorf("override %q: the kept schedule is reported unusable: %v", text, problem)
		}
	}

	s.waitWaiters(2)
	e.advanceTo(want)
	if r := s.next(); r.outcome != "taken" || r.why != onCadence || !r.at.Equal(want) {
		t.Fatalf("run at %v: %s (trigger %d), want a cadence snapshot at %v", r.at, r.outcome, r.why, want)
	}
	if got := e.snapshots(d.ID)[0].Reason; got != "Scheduled every 30m" {
		t.Errorf("reason %q, want the old schedule's", got)
	}
}

// TestBadStoredOverrideAtStartRunsThePlanCadence: overrides an older
// version stored unchecked (one that never runs, one every second) do not
// stop Start; each such database is logged, reported, and runs on its
// plan's cadence.
func TestBadStoredOverrideAtStartRunsThePlanCadence(t *testing.T) {
	e := mustEnv(t, hourly())
	ctx := context.Background()
	var warned warnings
	bad := map[string]string{}
	var dbs []snapdeck.Database
	for name, text := range map[string]string{"feb30": "0 0 30 2 *", "every-second": "*/1 * * * * *"} {
		d := e.create(name, snapdeck.PlanFree)
		e.snapshot(d.ID, "Database created")
		dbs = append(dbs, e.storeSchedule(d.ID, text))
		bad[d.ID] = text
	}
	// 45 minutes later the console starts: no catch-up, the cadence alone.
	e.clock.Advance(45 * time.Minute)
	s := e.scheduler(Config{Logger: slog.New(&warned)})
	if err := s.Start(ctx); err != nil {
		t.Fatalf("start with bad stored overrides: %v", err)
	}
	s.waitWaiters(len(dbs) + 1)
	now := e.clock.Now()
	for _, d := range dbs {
		if next, want := s.NextSnapshot(d), (Spec{Every: time.Hour}).First(d.ID, now); !next.Equal(want) {
			t.Errorf("%s: next snapshot %v, want %v on the plan's hourly cadence", d.Name, next, want)
		}
		if problem := s.OverrideProblem(d); problem == nil {
			t.Errorf("%s: override %q not reported as unusable", d.Name, d.Schedule)
		}
		if !warned.about(d.ID) {
			t.Errorf("%s: no WARN record with its database_id", d.Name)
		}
	}

	// An hour later every database had exactly one snapshot, on the
	// plan's cadence.
	taken := s.cadenceUntil(dbs, now.Add(time.Hour))
	for _, d := range dbs {
		if len(taken[d.ID]) != 1 {
			t.Errorf("%s (%q): %d snapshots in an hour, want 1", d.Name, bad[d.ID], len(taken[d.ID]))
		}
		if got := e.snapshots(d.ID)[0].Reason; got != "Hourly schedule" {
			t.Errorf("%s: reason %q, want the plan's", d.Name, got)
		}
	}
}

// TestBadOverrideFoundAtReconcileRunsThePlanCadence: a bad override that
// appears in the store while the console runs (an older version sharing
// the data directory, a hand edit) is found by the periodic reconcile;
// the database keeps a schedule, its plan's, instead of losing its job.
func TestBadOverrideFoundAtReconcileRunsThePlanCadence(t *testing.T) {
	e := mustEnv(t, hourly())
	ctx := context.Background()
	var warned warnings
	d := e.create("orders", snapdeck.PlanFree)
	e.snapshot(d.ID, "Database created")
	s := e.scheduler(Config{Logger: slog.New(&warned), SweepEvery: reconcileEvery})
	s.start()
	s.waitWaiters(2)
	d, err := s.SetOverride(ctx, "test", d.ID, "30m")
	if err != nil {
		t.Fatal(err)
	}
	s.waitNext(d, Spec{Every: 30 * time.Minute}.First(d.ID, e.clock.Now()))
	s.waitWaiters(2)

	d = e.storeSchedule(d.ID, "0 0 30 2 *")
	// The housekeeping job at reconcileEvery reconciles; wait until the
	// job has been made again from what the store holds.
	e.clock.Advance(reconcileEvery)
	var job entry
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && job.override != d.Schedule; {
		s.mu.Lock()
		job = s.jobs[d.ID]
		s.mu.Unlock()
	}
	if job.override != d.Schedule || job.spec != "1h" {
		t.Fatalf("job after reconcile: spec %q made with override %q, want the plan's 1h in place of %q", job.spec, job.override, d.Schedule)
	}
	s.waitNext(d, Spec{Every: time.Hour}.First(d.ID, e.clock.Now()))
	if problem := s.OverrideProblem(d); problem == nil || !strings.Contains(problem.Error(), "never runs") {
		t.Errorf("override problem %v, want one saying it never runs", problem)
	}
	if !warned.about(d.ID) {
		t.Error("no WARN record with the database_id")
	}
}

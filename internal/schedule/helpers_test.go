package schedule

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/job"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/snapstore"
	"github.com/snapdeck/snapdeck/store"
)

// t0 is where every fake clock starts: a Monday, 00:00 UTC.
var t0 = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

// env is a console's snapshot machinery over real SQLite files and a real
// snapshot store in a temporary directory, on a fake clock.
type env struct {
	t     testing.TB
	clock *clockwork.FakeClock
	db    *store.DB
	dbs   *database.Databases
	snaps *database.Snapshots
}

func mustEnv(t testing.TB, policies map[snapdeck.Plan]snapdeck.PlanPolicy) *env {
	t.Helper()
	clock := clockwork.NewFakeClockAt(t0)
	db, dbs, snaps := openServices(t, policies, clock.Now, nil)
	return &env{t: t, clock: clock, db: db, dbs: dbs, snaps: snaps}
}

// openServices opens a store, database files, a snapshot store and the
// database services over them in a temporary directory; now gives the
// records their times (nil: the real clock); obs hears what the services
// did (nil: nobody). It builds them with their constructors, as
// internal/app does:
// this package's own tests cannot import app, which imports it, and they
// need a fake clock and the scheduler's observe hook that app does not offer.
func openServices(t testing.TB, policies map[snapdeck.Plan]snapdeck.PlanPolicy, now func() time.Time, obs database.Observer) (*store.DB, *database.Databases, *database.Snapshots) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, filepath.Join(dir, "console.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if now != nil {
		db.SetNow(now)
	}
	host, err := database.NewHost(filepath.Join(dir, "databases"), nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := snapstore.Open(ctx, filepath.Join(dir, "snapshots"), nil)
	if err != nil {
		t.Fatal(err)
	}
	jobs := job.NewRunner(db, nil)
	cfg := database.Config{Store: db, Host: host, Activity: activity.New(db, nil, nil), Observer: obs,
		Snapshots: database.SnapshotConfig{Store: st, Jobs: jobs, Policies: policies, TmpDir: filepath.Join(dir, "tmp"),
			ExportDir: filepath.Join(dir, "tmp", "exports"), Engine: "snapdeck test", SQLiteVersion: "3", Now: now}}
	snaps, err := database.NewSnapshots(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dbs, err := database.NewDatabases(cfg, snaps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		jobs.Close(ctx)
		host.Close(ctx)
		st.Close(ctx)
		db.Close(ctx)
	})
	return db, dbs, snaps
}

// hourly is every plan on an hourly cadence with a day's retention.
func hourly() map[snapdeck.Plan]snapdeck.PlanPolicy {
	p := snapdeck.PlanPolicy{Cadence: time.Hour, Retention: 24 * time.Hour}
	return map[snapdeck.Plan]snapdeck.PlanPolicy{snapdeck.PlanFree: p, snapdeck.PlanProfessional: p, snapdeck.PlanEnterprise: p}
}

// run is one ended run of the scheduler, as observe heard it.
type run struct {
	id      string
	why     trigger
	outcome string
	at      time.Time
}

// scheduler starts a Scheduler on the env whose runs can be awaited.
type testScheduler struct {
	*Scheduler
	e    *env
	runs chan run
}

func (e *env) scheduler(cfg Config) *testScheduler {
	e.t.Helper()
	cfg.Store, cfg.Snapshots, cfg.Clock = e.db, e.snaps, e.clock
	if cfg.SweepEvery == 0 {
		cfg.SweepEvery = 24 * time.Hour // out of the way unless a test wants it
	}
	ts := &testScheduler{Scheduler: New(cfg), e: e, runs: make(chan run, 1000)}
	ts.observe = func(id string, why trigger, outcome string) {
		ts.runs <- run{id: id, why: why, outcome: outcome, at: e.clock.Now()}
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ts.Close(ctx); err != nil {
			e.t.Errorf("close scheduler: %v", err)
		}
	})
	return ts
}

func (ts *testScheduler) start() {
	ts.e.t.Helper()
	if err := ts.Start(context.Background()); err != nil {
		ts.e.t.Fatal(err)
	}
}

// next waits for the next run to end. The timeout only turns a hang into
// a failure; nothing waits on it when the scheduler works.
func (ts *testScheduler) next() run {
	ts.e.t.Helper()
	select {
	case r := <-ts.runs:
		return r
	case <-time.After(10 * time.Second):
		ts.e.t.Fatal("no run ended within 10s")
		return run{}
	}
}

// waitWaiters waits until n timers are set on the fake clock: every job
// re-armed after the last Advance.
func (ts *testScheduler) waitWaiters(n int) {
	ts.e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.e.clock.BlockUntilContext(ctx, n); err != nil {
		ts.e.t.Fatalf("waiting for %d timers: %v", n, err)
	}
}

// cadenceUntil moves the fake clock from one cadence run of dbs to the
// next until end, each run having to take a snapshot, and returns when
// each database's were taken. Only dbs' jobs and retention may be set.
func (ts *testScheduler) cadenceUntil(dbs []snapdeck.Database, end time.Time) map[string][]time.Time {
	ts.e.t.Helper()
	taken := map[string][]time.Time{}
	for {
		var next time.Time
		for _, d := range dbs {
			if n := ts.NextSnapshot(d); next.IsZero() || n.Before(next) {
				next = n
			}
		}
		if next.After(end) {
			return taken
		}
		ts.e.advanceTo(next)
		r := ts.next()
		if r.outcome != "taken" || r.why != onCadence {
			ts.e.t.Fatalf("run of %s at %v: got %s (trigger %d), want a cadence snapshot taken", r.id, r.at, r.outcome, r.why)
		}
		taken[r.id] = append(taken[r.id], r.at)
		ts.waitWaiters(len(dbs) + 1)
	}
}

// advanceTo moves the fake clock to at.
func (e *env) advanceTo(at time.Time) { e.clock.Advance(at.Sub(e.clock.Now())) }

// create makes a running database directly, without hooks.
func (e *env) create(name string, plan snapdeck.Plan) snapdeck.Database {
	e.t.Helper()
	out, err := e.dbs.Create(context.Background(), "test", database.CreateRequest{Name: name, Plan: plan})
	if err != nil {
		e.t.Fatal(err)
	}
	return out.Database
}

// snapshot takes a Scheduled snapshot now, outside the scheduler.
func (e *env) snapshot(id, reason string) snapdeck.Snapshot {
	e.t.Helper()
	s, err := e.snaps.Snapshot(context.Background(), id, snapdeck.SnapshotScheduled, reason, "test")
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// snapshots lists a database's snapshot records, newest first.
func (e *env) snapshots(id string) []store.SnapshotRecord {
	e.t.Helper()
	recs, err := e.db.FindSnapshots(context.Background(), snapdeck.SnapshotFilter{DatabaseID: id})
	if err != nil {
		e.t.Fatal(err)
	}
	return recs
}

// counter counts calls, safe across goroutines.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) add(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[k]++
	return c.n[k]
}

// created passes the services' new databases to a scheduler made after
// the Snapshots service, which it needs; other news is not the scheduler's.
type created struct{ s *Scheduler }

func (c *created) DatabaseCreated(ctx context.Context, d snapdeck.Database) { c.s.Created(ctx, d) }
func (c *created) SnapshotEnded(snapdeck.Snapshot, time.Duration)           {}

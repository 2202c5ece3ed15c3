package schedule

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/jonboulle/clockwork"

	"github.com/snapdeck/snapdeck/internal/metrics"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/store"
)

func TestCadenceRunsEachDatabaseOncePerPeriodAtItsOffset(t *testing.T) {
	e := mustEnv(t, hourly())
	var dbs []snapdeck.Database
	for _, name := range []string{"orders", "users", "events"} {
		d := e.create(name, snapdeck.PlanEnterprise)
		e.snapshot(d.ID, "Database created")
		dbs = append(dbs, d)
	}
	// 45 minutes later the console starts: no catch-up, the cadence alone.
	e.clock.Advance(45 * time.Minute)
	s := e.scheduler(Config{})
	s.start()
	s.waitWaiters(len(dbs) + 1)
	start := e.clock.Now()
	for _, d := range dbs {
		want := Spec{Every: time.Hour}.First(d.ID, start)
		if got := s.NextSnapshot(d); !got.Equal(want) {
			t.Errorf("%s: next snapshot %v, want %v (its offset into the hour)", d.Name, got, want)
		}
	}
	taken := s.cadenceUntil(dbs, start.Add(3*time.Hour))
	for _, d := range dbs {
		runs := taken[d.ID]
		if len(runs) != 3 {
			t.Errorf("%s: %d cadence snapshots in 3 hours, want 3", d.Name, len(runs))
			continue
		}
		for i, at := range runs {
			if off := time.Duration(at.UnixNano() % int64(time.Hour)); off != Offset(d.ID, time.Hour) {
				t.Errorf("%s run %d at %v: offset %v into the hour, want %v", d.Name, i, at, off, Offset(d.ID, time.Hour))
			}
			if i > 0 && at.Sub(runs[i-1]) != time.Hour {
				t.Errorf("%s: runs %v apart, want 1h", d.Name, at.Sub(runs[i-1]))
			}
		}
		recs := e.snapshots(d.ID)
		if len(recs) != 4 {
			t.Fatalf("%s: %d snapshots recorded, want 4", d.Name, len(recs))
		}
		for _, r := range recs[:3] {
			if r.Type != snapdeck.SnapshotScheduled || r.Reason != "Hourly schedule" || r.Status != snapdeck.SnapshotCompleted {
				t.Errorf("%s: snapshot %s %q %s, want Scheduled \"Hourly schedule\" completed", d.Name, r.Type, r.Reason, r.Status)
			}
		}
	}
}

func TestCatchUpAfterDowntimeIsSpreadOverTheWindow(t *testing.T) {
	e := mustEnv(t, hourly())
	var stale, fresh []snapdeck.Database
	for i := range 6 {
		d := e.create(fmt.Sprintf("stale-%d", i), snapdeck.PlanEnterprise)
		e.snapshot(d.ID, "Database created")
		stale = append(stale, d)
	}
	e.clock.Advance(2*time.Hour + 50*time.Minute)
	for i := range 2 {
		d := e.create(fmt.Sprintf("fresh-%d", i), snapdeck.PlanEnterprise)
		e.snapshot(d.ID, "Database created")
		fresh = append(fresh, d)
	}
	e.clock.Advance(10 * time.Minute) // the console was down for three hours
	s := e.scheduler(Config{CatchUpWindow: 2 * time.Minute})
	now := e.clock.Now()
	end := now.Add(2 * time.Minute)
	// Cadence ticks may also fall inside the window; count them to know
	// how many runs to wait for.
	cadence := 0
	for _, d := range append(append([]snapdeck.Database{}, stale...), fresh...) {
		if !(Spec{Every: time.Hour}).First(d.ID, now).After(end) {
			cadence++
		}
	}
	s.start()

	step := 2 * time.Minute / 6
	var catchUps []run
	collect := func(wantCatchUps int) {
		for len(catchUps) < wantCatchUps {
			r := s.next()
			if r.why == onCatchUp {
				catchUps = append(catchUps, r)
			} else {
				cadence--
			}
		}
	}
	collect(1)
	if got := catchUps[0].at; !got.Equal(now) {
		t.Errorf("first catch-up at %v, want at once (%v)", got, now)
	}
	for i := 1; i < 6; i++ {
		e.advanceTo(now.Add(step * time.Duration(i)))
		collect(i + 1)
		if got, want := catchUps[i].at, now.Add(step*time.Duration(i)); !got.Equal(want) {
			t.Errorf("catch-up %d at +%v, want +%v: spread, not all at once", i, got.Sub(now), want.Sub(now))
		}
	}
	e.advanceTo(end)
	for ; cadence > 0; cadence-- {
		if r := s.next(); r.why == onCatchUp {
			t.Errorf("unexpected catch-up of %s at %v", r.id, r.at)
		}
	}
	ids := map[string]bool{}
	for _, r := range catchUps {
		ids[r.id] = true
	}
	for _, d := range stale {
		if !ids[d.ID] {
			t.Errorf("%s: no catch-up, but its last snapshot is 3h old", d.Name)
		}
		recs := e.snapshots(d.ID)
		if len(recs) != 2 {
			t.Errorf("%s: %d snapshots after catch-up, want 2 (one caught up, whichever of catch-up and cadence came first)", d.Name, len(recs))
		} else if !strings.HasPrefix(recs[0].Reason, "Hourly schedule") {
			t.Errorf("%s: reason %q, want Hourly schedule…", d.Name, recs[0].Reason)
		}
	}
	for _, d := range fresh {
		if ids[d.ID] {
			t.Errorf("%s: caught up though its snapshot is 10 minutes old", d.Name)
		}
		if n := len(e.snapshots(d.ID)); n != 1 {
			t.Errorf("%s: %d snapshots, want 1", d.Name, n)
		}
	}
}

func TestBusyDatabaseSkipsTheTickAndTheNextCatchesUp(t *testing.T) {
	e := mustEnv(t, hourly())
	d := e.create("orders", snapdeck.PlanEnterprise)
	e.snapshot(d.ID, "Database created")
	e.clock.Advance(45 * time.Minute)
	s := e.scheduler(Config{})
	s.start()
	s.waitWaiters(2)
	setStatus(t, e, d.ID, snapdeck.StatusLoading)
	e.advanceTo(s.NextSnapshot(d))
	if r := s.next(); r.outcome != "busy" {
		t.Fatalf("tick while loading: got %s, want busy", r.outcome)
	}
	s.waitWaiters(2)
	setStatus(t, e, d.ID, snapdeck.StatusRunning)
	e.advanceTo(s.NextSnapshot(d))
	if r := s.next(); r.outcome != "taken" {
		t.Fatalf("next tick: got %s, want taken", r.outcome)
	}
	if n := len(e.snapshots(d.ID)); n != 2 {
		t.Errorf("%d snapshots, want 2 (created, then the tick after the load)", n)
	}
}

func setStatus(t *testing.T, e *env, id string, st snapdeck.Status) {
	t.Helper()
	if _, err := e.db.UpdateDatabase(context.Background(), id, store.DatabaseUpdate{Status: &st}); err != nil {
		t.Fatal(err)
	}
}

func TestFailedSnapshotIsRetriedWithBackoffAndCounted(t *testing.T) {
	e := mustEnv(t, hourly())
	d := e.create("orders", snapdeck.PlanEnterprise)
	e.snapshot(d.ID, "Database created")
	e.clock.Advance(45 * time.Minute)
	m := metrics.New(metrics.Sources{})
	var calls counter
	var attempts []time.Time
	s := e.scheduler(Config{Metrics: m, Backoff: 30 * time.Second, Take: func(ctx context.Context, d snapdeck.Database, reason string) error {
		attempts = append(attempts, e.clock.Now())
		if calls.add("take") <= 2 {
			return errors.New("disk on fire")
		}
		_, err := e.snaps.Snapshot(ctx, d.ID, snapdeck.SnapshotScheduled, reason, "system")
		return err
	}})
	s.start()
	s.waitWaiters(2)
	tick := s.NextSnapshot(d)
	e.advanceTo(tick)
	s.waitWaiters(3) // re-armed job, retention, and the backoff
	e.clock.Advance(30 * time.Second)
	s.waitWaiters(3)
	e.clock.Advance(60 * time.Second)
	if r := s.next(); r.outcome != "taken" {
		t.Fatalf("got %s, want taken on the third attempt", r.outcome)
	}
	want := []time.Time{tick, tick.Add(30 * time.Second), tick.Add(90 * time.Second)}
	if fmt.Sprint(attempts) != fmt.Sprint(want) {
		t.Errorf("attempts at %v, want %v (backoff 30s, then 60s)", attempts, want)
	}
	if got := metricValue(t, m, "snapdeck_scheduled_snapshot_retries_total"); got != 2 {
		t.Errorf("retries counted %v, want 2", got)
	}
}

func TestGivesUpAfterAttemptsAndFlagsAFailingDatabase(t *testing.T) {
	e := mustEnv(t, hourly())
	ctx := context.Background()
	d := e.create("orders", snapdeck.PlanEnterprise)
	s := e.scheduler(Config{Attempts: 2, Backoff: time.Second, Take: func(context.Context, snapdeck.Database, string) error {
		return errors.New("disk on fire")
	}})
	s.start()
	// Never snapshotted: caught up at once, fails twice, gives up.
	s.waitWaiters(3)
	e.clock.Advance(time.Second)
	if r := s.next(); r.outcome != "failed" {
		t.Fatalf("got %s, want failed after 2 attempts", r.outcome)
	}
	if failing, _ := s.Failing(ctx, d.ID); failing {
		t.Error("flagged with no failed snapshot recorded")
	}
	for i := range 3 {
		rec := store.SnapshotRecord{Snapshot: snapdeck.Snapshot{ID: fmt.Sprintf("f%d", i), DatabaseID: d.ID, Type: snapdeck.SnapshotScheduled,
			Reason: "Hourly schedule", Status: snapdeck.SnapshotFailed, CreatedAt: t0.Add(time.Duration(i) * time.Hour)}}
		if err := e.db.CreateSnapshot(ctx, &rec); err != nil {
			t.Fatal(err)
		}
	}
	if failing, err := s.Failing(ctx, d.ID); !failing || err != nil {
		t.Errorf("three failed Scheduled snapshots in a row: Failing = %v, %v; want true", failing, err)
	}
	e.advanceTo(t0.Add(4 * time.Hour))
	e.snapshot(d.ID, "Hourly schedule")
	if failing, _ := s.Failing(ctx, d.ID); failing {
		t.Error("still flagged after a completed Scheduled snapshot")
	}
}

func TestOverrideReschedulesAtOnce(t *testing.T) {
	e := mustEnv(t, hourly())
	ctx := context.Background()
	d := e.create("orders", snapdeck.PlanFree)
	e.snapshot(d.ID, "Database created")
	s := e.scheduler(Config{})
	s.start()
	s.waitWaiters(2)
	now := e.clock.Now()
	if got, want := s.NextSnapshot(d), (Spec{Every: time.Hour}).First(d.ID, now); !got.Equal(want) {
		t.Errorf("plan cadence: next %v, want %v", got, want)
	}
	if _, err := s.SetOverride(ctx, "test", d.ID, "every day"); snapdeck.ErrorCode(err) != snapdeck.Invalid {
		t.Fatalf("override %q: got %v, want an Invalid error", "every day", err)
	} else if e, _ := snapdeck.AsError(err); e.Field != "schedule" {
		t.Errorf("error on field %q, want schedule", e.Field)
	}
	cases := []struct{ text, want string }{
		{"30m", (Spec{Every: 30 * time.Minute}).First(d.ID, now).Format(time.RFC3339Nano)},
		{"0 3 * * *", "2026-01-05T03:00:00Z"},
		{"", (Spec{Every: time.Hour}).First(d.ID, now).Format(time.RFC3339Nano)},
	}
	for _, tc := range cases {
		nd, err := s.SetOverride(ctx, "test", d.ID, tc.text)
		if err != nil {
			t.Fatalf("override %q: %v", tc.text, err)
		}
		if nd.Schedule != tc.text {
			t.Errorf("override %q: stored %q", tc.text, nd.Schedule)
		}
		var got time.Time
		// gocron takes the new job in its own loop: ask until it answers.
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
			if got = s.NextSnapshot(nd); got.Format(time.RFC3339Nano) == tc.want {
				break
			}
		}
		if got.Format(time.RFC3339Nano) != tc.want {
			t.Errorf("override %q: next snapshot %v, want %s", tc.text, got, tc.want)
		}
	}
}

func TestParseSpecAndReasons(t *testing.T) {
	cases := []struct {
		text, reason, err string
	}{
		{text: "1h", reason: "Hourly schedule"},
		{text: "24h", reason: "Daily schedule"},
		{text: "1m", reason: "Scheduled every 1m"},
		{text: "90m", reason: "Scheduled every 1h30m"},
		{text: " 30m ", reason: "Scheduled every 30m"},
		{text: "0 3 * * *", reason: "Scheduled by cron 0 3 * * *"},
		{text: "* * * * *", reason: "Scheduled by cron * * * * *"},
		{text: "0 * * * * *", reason: "Scheduled by cron 0 * * * * *"},
		{text: "30 */5 * * * *", reason: "Scheduled by cron 30 */5 * * * *"},
		{text: "@daily", reason: "Scheduled by cron @daily"},
		{text: "@every 90s", reason: "Scheduled by cron @every 90s"},
		{text: "0 0 29 2 *", reason: "Scheduled by cron 0 0 29 2 *"},
		{text: "", err: "Give an interval"},
		{text: "500ms", err: "too short"},
		{text: "4s", err: "at least 1 minute apart"},
		{text: "59s", err: "at least 1 minute apart"},
		{text: "daily", err: "neither an interval"},
		{text: "61 * * * *", err: "not a valid cron expression (end of range (61) above maximum (59): 61)"},
		{text: "* * *", err: "not a valid cron expression"},
		{text: "0 0 30 2 *", err: "never runs"},
		{text: "0 0 31 4 *", err: "never runs"},
		{text: "0 0 0 30 2 *", err: "never runs"},
		{text: "*/1 * * * * *", err: "as often as every 1s"},
		{text: "* * * * * *", err: "as often as every 1s"},
		{text: "0-59/30 * * * * *", err: "as often as every 30s: scheduled snapshots must be at least 1 minute apart"},
		{text: "0,59 * * * * *", err: "as often as every 1s"},
		{text: "*/10 * * * * *", err: "give it one value"},
		{text: "@every 1s", err: "as often as every 1s"},
		{text: "@every 59s", err: "at least 1 minute apart"},
	}
	for _, tc := range cases {
		spec, err := ParseSpec(tc.text, t0)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || snapdeck.ErrorCode(err) != snapdeck.Invalid {
				t.Errorf("%q: got %v, want an Invalid error containing %q", tc.text, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.text, err)
			continue
		}
		if got := spec.Reason(); got != tc.reason {
			t.Errorf("%q: reason %q, want %q", tc.text, got, tc.reason)
		}
	}
}

// TestParseSpecAgreesWithGocron makes a gocron CronJob of every cron
// expression ParseSpec accepts or refuses as one that never runs: the
// check must be gocron's own, so that no stored override can be one
// gocron refuses at the next start.
func TestParseSpecAgreesWithGocron(t *testing.T) {
	c, err := gocron.NewScheduler(gocron.WithClock(clockwork.NewFakeClockAt(t0)), gocron.WithLocation(time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()
	for _, text := range []string{"0 3 * * *", "0 * * * * *", "@daily", "0 0 29 2 *", "0 0 30 2 *", "0 0 0 30 2 *", "61 * * * *", "0 0 * * * * *", "TZ=Nowhere/Atlantis 0 3 * * *"} {
		_, perr := ParseSpec(text, t0)
		_, gerr := c.NewJob(gocron.CronJob(text, withSeconds(text)), gocron.NewTask(func() {}))
		if (perr == nil) != (gerr == nil) {
			t.Errorf("%q: ParseSpec says %v, gocron says %v", text, perr, gerr)
		}
	}
}

func TestOffsetsSpreadEvenlyOverThePeriod(t *testing.T) {
	const n = 6000
	var perMinute [60]int
	for i := range n {
		id := fmt.Sprintf("%08x", uint32(i)*2654435761)
		off := Offset(id, time.Hour)
		if off != Offset(id, time.Hour) {
			t.Fatal("offset not stable")
		}
		perMinute[off/time.Minute]++
	}
	for m, c := range perMinute {
		if c < n/60/2 || c > n/60*3/2 {
			t.Errorf("minute %d: %d databases, want about %d", m, c, n/60)
		}
	}
}

// metricValue sums a metric family's samples as /metrics would show them.
func metricValue(t *testing.T, m *metrics.Metrics, name string) float64 {
	t.Helper()
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			sum += s.GetCounter().GetValue() + s.GetGauge().GetValue()
		}
	}
	return sum
}

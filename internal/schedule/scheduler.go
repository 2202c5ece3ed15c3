// Package schedule takes the snapshots nobody clicks for: "Database
// created", "System upgrade" at start, and each database's cadence (its
// plan's or its own override), driven by gocron in the serve process; and it
// sweeps expired snapshots away. Time comes from an injectable clock, so
// tests run an hour of schedules in milliseconds.
package schedule

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/jonboulle/clockwork"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/metrics"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/store"
)

// Config configures a Scheduler. Zero values take the defaults noted.
type Config struct {
	Store *store.DB
	// Snapshots takes the Scheduled snapshots, deletes the expired ones
	// and reclaims their storage.
	Snapshots *database.Snapshots
	// Activity records the console's changes of a schedule override
	// (database.settings); nil records nothing.
	Activity *activity.Recorder
	// Clock drives gocron, backoff and retention; nil is the real clock.
	Clock   clockwork.Clock
	Logger  *slog.Logger
	Metrics *metrics.Metrics
	// Workers bounds the snapshots taken at once (default 2): a schedule
	// must not starve the console of disk bandwidth.
	Workers int
	// Take takes one Scheduled snapshot of d and returns when it is
	// durable; nil is Snapshots.Snapshot. The benchmark injects one that
	// takes nothing, to measure the scheduler alone.
	Take func(ctx context.Context, d snapdeck.Database, reason string) error
	// Attempts is how often a failed snapshot is tried before the run gives
	// up until the next (default 3); Backoff the first wait, doubled after
	// each failure up to MaxBackoff (defaults 30s and 10m).
	Attempts            int
	Backoff, MaxBackoff time.Duration
	// CatchUpWindow is how long the catch-up after downtime is spread over
	// (default 2m, at most the shortest cadence).
	CatchUpWindow time.Duration
	// SweepEvery is how often retention runs and the schedule is
	// reconciled with the databases (default a third of the shortest
	// retention, between 1s and 1m).
	SweepEvery time.Duration
	// FailingAfter is how many Scheduled snapshots in a row must fail for
	// the database list to flag the database (default 3).
	FailingAfter int
	// Version and SQLiteVersion are the running console's; a change from
	// the ones recorded at the previous start is a system change.
	Version, SQLiteVersion string
	// Quiet, when set, tells when the console runs jobs users wait for
	// (job.Runner). The hourly reclaim of the snapshot store marks every
	// live piece, and captures wait for it: it starts once no job runs,
	// or after ReclaimGiveWay (default a minute) of jobs without end.
	Quiet          Quiet
	ReclaimGiveWay time.Duration
}

// Quiet is who tells when the console runs work a user waits for.
type Quiet interface {
	// WaitQuiet returns nil once no such work runs, or ctx's error when
	// ctx ends first.
	WaitQuiet(ctx context.Context) error
}

// Scheduler runs every database's Scheduled snapshots and the retention
// sweeper. New makes one that can already change overrides and answer the
// console's questions; Start starts the clockwork.
type Scheduler struct {
	cfg    Config
	clock  clockwork.Clock
	logger *slog.Logger
	take   func(ctx context.Context, d snapdeck.Database, reason string) error
	// workers is a semaphore: a slot per snapshot being taken.
	workers chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	cron    gocron.Scheduler // nil until Start
	jobs    map[string]entry
	catchUp map[string]time.Time
	last    map[string]time.Time // newest Scheduled snapshot per database
	// offCadence is when this process last took a database's "Database
	// created", catch-up or system upgrade snapshot: the next cadence
	// tick skips if it comes less than half a period after.
	offCadence map[string]time.Time
	inFlight   map[string]bool
	reclaim    time.Time // last Reclaim of the snapshot store
	// reconciled is when the jobs were last compared with the databases.
	reconciled time.Time
	// refused is the override, per database, that gocron refused when its
	// job was made although ParseSpec accepted it: the plan's cadence runs
	// instead until the override changes.
	refused map[string]string

	// observe, when set, hears how every run ended ("taken", "busy",
	// "recent", "in-flight", "failed", "gone", "stopped"): tests wait on it
	// instead of sleeping.
	observe func(id string, why trigger, outcome string)
}

// entry is a database's cadence job, the spec it was made from and the
// override stored when it was made (which may be one that could not be used).
type entry struct {
	job      gocron.Job
	spec     string
	override string
}

// trigger is why a run takes a snapshot.
type trigger int

const (
	onCadence trigger = iota
	onCatchUp
	onCreate
	onUpgrade
)

// New returns a Scheduler that is not yet running.
func New(cfg Config) *Scheduler {
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Workers = cmp.Or(max(cfg.Workers, 0), 2)
	cfg.Attempts = cmp.Or(max(cfg.Attempts, 0), 3)
	cfg.Backoff = cmp.Or(cfg.Backoff, 30*time.Second)
	cfg.MaxBackoff = cmp.Or(cfg.MaxBackoff, 10*time.Minute)
	cfg.CatchUpWindow = cmp.Or(cfg.CatchUpWindow, 2*time.Minute)
	cfg.FailingAfter = cmp.Or(cfg.FailingAfter, 3)
	s := &Scheduler{cfg: cfg, clock: cfg.Clock, logger: cfg.Logger, take: cfg.Take, workers: make(chan struct{}, cfg.Workers),
		jobs: map[string]entry{}, catchUp: map[string]time.Time{}, last: map[string]time.Time{}, offCadence: map[string]time.Time{},
		inFlight: map[string]bool{}, refused: map[string]string{}}
	if s.take == nil {
		s.take = func(ctx context.Context, d snapdeck.Database, reason string) error {
			_, err := cfg.Snapshots.Snapshot(ctx, d.ID, snapdeck.SnapshotScheduled, reason, "system")
			return err
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// sweepEvery is a third of the shortest retention, between 1s and 1m, so
// that a snapshot outlives its expiry by at most a third of its retention.
func (s *Scheduler) sweepEvery() time.Duration {
	if s.cfg.SweepEvery > 0 {
		return s.cfg.SweepEvery
	}
	every := time.Minute
	for _, plan := range snapdeck.Plans {
		if r := s.cfg.Snapshots.Policy(plan).Retention; r > 0 {
			every = min(every, r/3)
		}
	}
	return max(every, time.Second)
}

// Start registers a job per database, catches up the databases whose
// latest Scheduled snapshot is older than their cadence, spread over the
// catch-up window, and starts gocron. Call SystemChange first: it must run
// before the console serves.
func (s *Scheduler) Start(ctx context.Context) error {
	c, err := gocron.NewScheduler(gocron.WithClock(s.clock), gocron.WithLocation(time.UTC))
	if err != nil {
		return fmt.Errorf("start scheduler: %w", err)
	}
	last, err := s.cfg.Store.LatestScheduledTimes(ctx)
	if err != nil {
		return err
	}
	dbs, err := s.cfg.Store.FindDatabases(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.cron = c
	for id, t := range last {
		if t.After(s.last[id]) {
			s.last[id] = t
		}
		// Taken by another process, maybe off its cadence: a tick of ours
		// coming soon after skips, as for our own off-cadence snapshots.
		if t.After(s.offCadence[id]) {
			s.offCadence[id] = t
		}
	}
	last = maps.Clone(s.last)
	s.mu.Unlock()

	now := s.clock.Now()
	s.mu.Lock()
	s.reconciled = now // the loop below is a reconcile
	s.mu.Unlock()
	var overdue []snapdeck.Database
	window := s.cfg.CatchUpWindow
	for _, d := range dbs {
		if d.Status == snapdeck.StatusDeleting {
			continue
		}
		if err := s.ensure(d); err != nil {
			return err
		}
		if spec := s.specFor(d); d.Status == snapdeck.StatusRunning && spec.Due(last[d.ID], now) {
			overdue = append(overdue, d)
			window = min(window, spec.Period(now))
		}
	}
	// The longest without a snapshot go first.
	slices.SortStableFunc(overdue, func(a, b snapdeck.Database) int { return last[a.ID].Compare(last[b.ID]) })
	for i, d := range overdue {
		at := now.Add(window * time.Duration(i) / time.Duration(len(overdue)))
		if err := s.scheduleCatchUp(d.ID, at, i == 0); err != nil {
			return err
		}
	}
	if len(overdue) > 0 {
		s.logger.Info("catching up scheduled snapshots missed while the console was down", "databases", len(overdue), "window", window)
	}
	if _, err := c.NewJob(gocron.DurationJob(s.sweepEvery()), gocron.NewTask(s.maintain), gocron.WithName("retention"),
		gocron.WithSingletonMode(gocron.LimitModeReschedule)); err != nil {
		return fmt.Errorf("schedule retention: %w", err)
	}
	c.Start()
	s.logger.Info("scheduler started", "databases", len(dbs), "workers", s.cfg.Workers, "sweep_every", s.sweepEvery())
	return nil
}

func (s *Scheduler) scheduleCatchUp(id string, at time.Time, now bool) error {
	start := gocron.OneTimeJobStartDateTime(at)
	if now {
		start = gocron.OneTimeJobStartImmediately()
	}
	s.mu.Lock()
	s.catchUp[id] = at
	c := s.cron
	s.mu.Unlock()
	_, err := c.NewJob(gocron.OneTimeJob(start), gocron.NewTask(func() {
		s.mu.Lock()
		delete(s.catchUp, id)
		s.mu.Unlock()
		s.run(s.ctx, id, onCatchUp, "")
	}), gocron.WithName("catch-up "+id), gocron.WithLimitedRuns(1))
	if err != nil {
		return fmt.Errorf("schedule catch-up of %s: %w", id, err)
	}
	return nil
}

// Close stops the schedules and waits for snapshots under way to end;
// they are cancelled, and the next start marks them failed.
func (s *Scheduler) Close(ctx context.Context) error {
	s.cancel()
	s.mu.Lock()
	c := s.cron
	s.mu.Unlock()
	var err error
	if c != nil {
		err = c.ShutdownWithContext(ctx)
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// specFor is the database's own override when it has one that can be
// used, else its plan's cadence.
func (s *Scheduler) specFor(d snapdeck.Database) Spec {
	spec, _ := s.spec(d)
	return spec
}

// spec is the spec the database runs on, and why its override is not used
// when it has one that cannot be (nil otherwise): stored by an older
// version that checked less, or refused by gocron.
func (s *Scheduler) spec(d snapdeck.Database) (Spec, error) {
	if d.Schedule == "" {
		return s.planSpec(d), nil
	}
	spec, err := ParseSpec(d.Schedule, s.clock.Now())
	if err != nil {
		return s.planSpec(d), err
	}
	s.mu.Lock()
	refused := s.refused[d.ID] == d.Schedule
	s.mu.Unlock()
	if refused {
		return s.planSpec(d), snapdeck.FieldError("schedule", "The scheduler could not set up the schedule %q (the server log says why), so it cannot be used.", d.Schedule)
	}
	return spec, nil
}

func (s *Scheduler) planSpec(d snapdeck.Database) Spec {
	return Spec{Every: s.cfg.Snapshots.Policy(d.Plan).Cadence}
}

// OverrideProblem says why the database's stored schedule override is not
// used and its plan's cadence runs instead; nil when it has none or it is
// in use. The database list flags such databases.
func (s *Scheduler) OverrideProblem(d snapdeck.Database) error {
	_, err := s.spec(d)
	return err
}

// ensure gives the database a cadence job matching its current spec,
// replacing one made from an older spec (a plan change, a new override).
// An override that cannot be used, because it does not parse or because
// gocron refuses it, is logged and the plan's cadence runs instead: a bad
// stored schedule must never stop the console nor leave a database
// without Scheduled snapshots. Only the plan's own cadence failing is an
// error.
func (s *Scheduler) ensure(d snapdeck.Database) error {
	spec, problem := s.spec(d)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cron == nil {
		return nil
	}
	old, ok := s.jobs[d.ID]
	if ok && old.spec == spec.String() && old.override == d.Schedule {
		return nil
	}
	if ok {
		if err := s.cron.RemoveJob(old.job.ID()); err != nil {
			s.logger.Warn("remove old schedule", "database_id", d.ID, "err", err)
		}
		delete(s.jobs, d.ID)
	}
	if problem != nil {
		s.logger.Warn("unusable schedule override; using the plan's cadence", "database_id", d.ID, "schedule", d.Schedule,
			"plan", d.Plan, "cadence", spec.String(), "err", problem)
	}
	j, err := s.newCadenceJob(d.ID, spec)
	if err != nil && problem == nil && d.Schedule != "" {
		s.refused[d.ID] = d.Schedule
		s.logger.Warn("scheduler refused the schedule override; using the plan's cadence", "database_id", d.ID, "schedule", d.Schedule,
			"plan", d.Plan, "err", err)
		spec = s.planSpec(d)
		j, err = s.newCadenceJob(d.ID, spec)
	}
	if err != nil {
		return fmt.Errorf("schedule snapshots of %s (%s): %w", d.ID, spec.String(), err)
	}
	s.jobs[d.ID] = entry{job: j, spec: spec.String(), override: d.Schedule}
	return nil
}

// newCadenceJob adds the gocron job that runs the database's cadence on
// spec. Called with s.mu held.
func (s *Scheduler) newCadenceJob(id string, spec Spec) (gocron.Job, error) {
	def, opts := spec.definition(id, s.clock.Now())
	return s.cron.NewJob(def, gocron.NewTask(func() { s.run(s.ctx, id, onCadence, "") }), append(opts, gocron.WithName(id))...)
}

// forget drops a deleted database's job.
func (s *Scheduler) forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.jobs[id]; ok && s.cron != nil {
		if err := s.cron.RemoveJob(e.job.ID()); err != nil {
			s.logger.Debug("remove schedule of deleted database", "database_id", id, "err", err)
		}
	}
	delete(s.jobs, id)
	delete(s.last, id)
	delete(s.offCadence, id)
	delete(s.catchUp, id)
	delete(s.refused, id)
}

// Created takes a new database's "Database created" snapshot in the
// background and starts its schedule; the database services' observer calls it.
func (s *Scheduler) Created(_ context.Context, d snapdeck.Database) {
	if err := s.ensure(d); err != nil {
		s.logger.Error("schedule new database", "database_id", d.ID, "err", err)
	}
	if s.ctx.Err() != nil {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.run(s.ctx, d.ID, onCreate, "Database created")
	}()
}

// claim marks a database as having a run under way; a second run of the
// same database (a tick during a retry's backoff) skips instead of piling up.
func (s *Scheduler) claim(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inFlight[id] {
		return false
	}
	s.inFlight[id] = true
	return true
}

func (s *Scheduler) unclaim(id string) {
	s.mu.Lock()
	delete(s.inFlight, id)
	s.mu.Unlock()
}

// lastOf is when the database's last Scheduled snapshot was taken: any,
// or with onlyOffCadence those not taken by its cadence.
func (s *Scheduler) lastOf(id string, onlyOffCadence bool) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if onlyOffCadence {
		return s.offCadence[id]
	}
	return s.last[id]
}

func (s *Scheduler) setLast(id string, t time.Time, why trigger) {
	s.mu.Lock()
	if t.After(s.last[id]) {
		s.last[id] = t
	}
	if why != onCadence {
		s.offCadence[id] = t
	}
	s.mu.Unlock()
}

// run takes one Scheduled snapshot of a database, retrying failures with
// backoff. Cadence and catch-up runs skip a database that is not running
// (the next tick catches up). A catch-up also skips when any Scheduled
// snapshot is less than half a period old, and a tick when an off-cadence
// one is (a "Database created" just before the tick): a tick never skips
// because the previous tick ran late.
func (s *Scheduler) run(ctx context.Context, id string, why trigger, reason string) (err error) {
	outcome := "stopped"
	if s.observe != nil {
		defer func() { s.observe(id, why, outcome) }()
	}
	if !s.claim(id) {
		s.cfg.Metrics.Skipped("in-flight")
		outcome = "in-flight"
		return nil
	}
	defer s.unclaim(id)
	backoff := s.cfg.Backoff
	for attempt := 1; ; attempt++ {
		d, err := s.cfg.Store.FindDatabase(ctx, id)
		if snapdeck.ErrorCode(err) == snapdeck.NotFound {
			s.forget(id)
			outcome = "gone"
			return nil
		}
		if err != nil {
			s.logger.Error("scheduled snapshot: find database", "database_id", id, "err", err)
			outcome = "failed"
			return err
		}
		now := s.clock.Now()
		switch why {
		case onCadence, onCatchUp:
			if d.Status != snapdeck.StatusRunning {
				s.cfg.Metrics.Skipped("busy")
				s.logger.Info("database busy; its scheduled snapshot waits for the next run", "database_id", id, "status", d.Status)
				outcome = "busy"
				return nil
			}
			spec := s.specFor(d)
			if spec.Recent(s.lastOf(id, why == onCadence), now) {
				s.cfg.Metrics.Skipped("recent")
				outcome = "recent"
				return nil
			}
			reason = spec.Reason()
			if why == onCatchUp {
				reason += " (caught up after downtime)"
			}
		case onCreate:
			if d.Status != snapdeck.StatusRunning {
				outcome = "busy"
				return nil
			}
		case onUpgrade:
			if d.Status != snapdeck.StatusRunning && d.Status != snapdeck.StatusPaused {
				outcome = "busy"
				return nil
			}
		}
		err = s.takeBounded(ctx, d, reason)
		if err == nil {
			s.setLast(id, now, why)
			outcome = "taken"
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		if snapdeck.ErrorCode(err) == snapdeck.Busy {
			s.cfg.Metrics.Skipped("busy")
			outcome = "busy"
			return nil
		}
		if attempt >= s.cfg.Attempts {
			s.logger.Error("scheduled snapshot failed; giving up until the next run", "database_id", id, "attempts", attempt, "reason", reason, "err", err)
			outcome = "failed"
			return err
		}
		s.cfg.Metrics.Retry()
		s.logger.Warn("scheduled snapshot failed; retrying", "database_id", id, "attempt", attempt, "retry_in", backoff, "err", err)
		select {
		case <-s.clock.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(backoff*2, s.cfg.MaxBackoff)
	}
}

// takeBounded takes the snapshot in one of the worker slots.
func (s *Scheduler) takeBounded(ctx context.Context, d snapdeck.Database, reason string) error {
	select {
	case s.workers <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.cfg.Metrics.WorkerBusy(1)
	defer func() {
		s.cfg.Metrics.WorkerBusy(-1)
		<-s.workers
	}()
	return s.take(ctx, d, reason)
}

// reconcileEvery is how often the jobs are compared with the databases:
// listing 10,000 databases costs about 20 ms, too much for every sweep, and
// creations and overrides reschedule at once anyway; a plan change takes
// effect within this.
const reconcileEvery = 5 * time.Minute

// maintain is the periodic housekeeping job: reconcile the schedule with
// the databases when due, then retention.
func (s *Scheduler) maintain() {
	now := s.clock.Now()
	s.mu.Lock()
	due := s.reconciled.IsZero() || now.Sub(s.reconciled) >= reconcileEvery
	if due {
		s.reconciled = now
	}
	s.mu.Unlock()
	if due {
		s.reconcile(s.ctx)
	}
	if _, _, err := s.Sweep(s.ctx); err != nil && s.ctx.Err() == nil {
		s.logger.Error("retention sweep", "err", err)
	}
}

// reconcile gives new databases their job, replaces the jobs of databases
// whose plan or override changed, and drops those of deleted databases.
func (s *Scheduler) reconcile(ctx context.Context) {
	dbs, err := s.cfg.Store.FindDatabases(ctx)
	if err != nil {
		s.logger.Error("reconcile schedules", "err", err)
	} else {
		seen := make(map[string]bool, len(dbs))
		for _, d := range dbs {
			seen[d.ID] = true
			if d.Status == snapdeck.StatusDeleting {
				continue
			}
			if err := s.ensure(d); err != nil {
				s.logger.Error("reconcile schedule", "database_id", d.ID, "err", err)
			}
		}
		s.mu.Lock()
		var gone []string
		for id := range s.jobs {
			if !seen[id] {
				gone = append(gone, id)
			}
		}
		s.mu.Unlock()
		for _, id := range gone {
			s.forget(id)
		}
	}
}

// NextSnapshot is when the database's next Scheduled snapshot is due: its
// catch-up if one is pending, else its cadence job's next run. Zero when
// nothing is scheduled (the scheduler is not running).
func (s *Scheduler) NextSnapshot(d snapdeck.Database) time.Time {
	s.mu.Lock()
	e, ok := s.jobs[d.ID]
	next := s.catchUp[d.ID]
	s.mu.Unlock()
	if !ok {
		return next
	}
	t, err := e.job.NextRun()
	if err != nil || t.IsZero() {
		return next
	}
	if !next.IsZero() && next.Before(t) {
		return next
	}
	return t.UTC()
}

// PlanDefault says a plan's cadence in words, for the Settings tab.
func (s *Scheduler) PlanDefault(plan snapdeck.Plan) string {
	return describe(Spec{Every: s.cfg.Snapshots.Policy(plan).Cadence})
}

// SetOverride sets or, with an empty text, removes a database's own
// schedule for actor, and reschedules it at once. The text is checked with
// ParseSpec before anything is stored: one that is neither a duration nor
// a cron expression, never runs, or runs more often than MinInterval is an
// Invalid error on the field "schedule", and the old schedule stays. The
// change, or its refusal, is recorded in the activity log as
// database.settings; it returns the database as it now is.
func (s *Scheduler) SetOverride(ctx context.Context, actor, id, text string) (snapdeck.Database, error) {
	d, err := s.setOverride(ctx, id, text)
	detail := ""
	switch {
	case err != nil:
	case d.Schedule == "":
		detail = fmt.Sprintf("%s follows its plan's schedule again.", d.Name)
	default:
		detail = fmt.Sprintf("%s is now snapshotted on its own schedule: %s.", d.Name, d.Schedule)
	}
	if s.cfg.Activity != nil {
		s.cfg.Activity.Record(ctx, activity.Entry{Actor: actor, Action: activity.DatabaseConfig, DatabaseID: id, Detail: detail, Err: err})
	}
	return d, err
}

func (s *Scheduler) setOverride(ctx context.Context, id, text string) (snapdeck.Database, error) {
	if !snapdeck.ValidDatabaseID(id) {
		return snapdeck.Database{}, snapdeck.DatabaseNotFound(id)
	}
	text = strings.TrimSpace(text)
	if text != "" {
		if _, err := ParseSpec(text, s.clock.Now()); err != nil {
			return snapdeck.Database{}, err
		}
	}
	d, err := s.cfg.Store.UpdateDatabase(ctx, id, store.DatabaseUpdate{Schedule: &text})
	if err != nil {
		return d, err
	}
	// A new text gets its own chance with gocron, even one refused before.
	s.mu.Lock()
	delete(s.refused, id)
	s.mu.Unlock()
	return d, s.ensure(d)
}

// Failing reports whether the database's last FailingAfter Scheduled
// snapshots all failed: the database list flags it. Read from the store, so
// the flag survives a restart.
func (s *Scheduler) Failing(ctx context.Context, id string) (bool, error) {
	recs, err := s.cfg.Store.FindSnapshots(ctx, snapdeck.SnapshotFilter{DatabaseID: id, Type: snapdeck.SnapshotScheduled, Limit: s.cfg.FailingAfter})
	if err != nil || len(recs) < s.cfg.FailingAfter {
		return false, err
	}
	for _, r := range recs {
		if r.Status != snapdeck.SnapshotFailed {
			return false, nil
		}
	}
	return true, nil
}

// Package app is the console's one wiring: New builds every part that
// `snapdeck serve` runs, from the store to the web server, out of one
// Config, and Close stops them in the order that loses nothing. serve and
// the tests of the web layer build the console through it.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/apikey"
	"github.com/snapdeck/snapdeck/internal/auth"
	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/dataplane"
	"github.com/snapdeck/snapdeck/internal/dbtoken"
	"github.com/snapdeck/snapdeck/internal/importfile"
	"github.com/snapdeck/snapdeck/internal/job"
	"github.com/snapdeck/snapdeck/internal/metrics"
	"github.com/snapdeck/snapdeck/internal/pitr"
	"github.com/snapdeck/snapdeck/internal/schedule"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/snapstore"
	"github.com/snapdeck/snapdeck/internal/upload"
	"github.com/snapdeck/snapdeck/store"
	"github.com/snapdeck/snapdeck/web"
)

// Config is everything the console is built from. Zero values take the
// defaults of the parts they configure.
type Config struct {
	// DataDir holds console.db, databases/, snapshots/ and tmp/.
	DataDir string
	// Logger is nil for none.
	Logger *slog.Logger
	// Version is the console's; SQLiteVersion the SQLite it links. Both
	// go into every .dump manifest, and a change from the previous start
	// is a system change.
	Version, SQLiteVersion string
	// QueryTimeout interrupts a Query tab statement running longer; zero
	// is the Host's default.
	QueryTimeout time.Duration
	// Policies are every plan's cadence and retention; nil is SPEC's.
	Policies map[snapdeck.Plan]snapdeck.PlanPolicy
	// SnapshotWorkers bounds the scheduler's snapshots at once.
	SnapshotWorkers int
	// NotifyURL, when set, receives a JSON POST when a snapshot fails or
	// a restore ends.
	NotifyURL string
	// ExportTTL is how long a prepared .dump is kept, ExportCacheSize the
	// disk the prepared ones may take.
	ExportTTL       time.Duration
	ExportCacheSize int64
	// ImportChecks bounds the uploads checked at once.
	ImportChecks int
	// AdminEmail and AdminPassword make the first admin when no user
	// exists (SNAPDECK_ADMIN_EMAIL, SNAPDECK_ADMIN_PASSWORD).
	AdminEmail, AdminPassword string
	// SnapshotStore is where snapshots are kept: "" for snapshots/ in
	// DataDir, or s3://BUCKET/PREFIX with S3 saying how to reach it.
	SnapshotStore string
	S3            S3Config
	// Web configures the HTTP layer; its Version is Version when empty.
	Web web.Config
	// Observer, when set, is told of every line of the activity log as
	// well as the webhook: tests wait on it for an action to end.
	Observer activity.Observer
	// PITRWindows is how much point-in-time history each plan keeps
	// (SPEC §10); nil or 0 keeps none: no database is replicated.
	PITRWindows map[snapdeck.Plan]time.Duration
	// PITRInterval is how soon a commit becomes restorable; zero is 1s.
	PITRInterval time.Duration
	// Unscheduled builds a scheduler that stores overrides and answers
	// the console's questions but takes no snapshot: no "Database
	// created", no "System upgrade" at start, no cadence. Tests of the web
	// layer use it to see only the snapshots they take; serve never does.
	Unscheduled bool
}

// App is a built console. Its parts are exported for the tests that drive
// one directly; serve only serves Web and closes the App.
type App struct {
	Store *store.DB
	Host  *database.Host
	// SnapshotStore is where the snapshots' pages are kept.
	SnapshotStore *snapstore.Store
	Jobs          *job.Runner
	Activity      *activity.Recorder
	Databases     *database.Databases
	Snapshots     *database.Snapshots
	// Uploads are the API's resumable uploads.
	Uploads *upload.Service
	// PITR replicates the databases of plans with a point-in-time window.
	PITR      *pitr.Replicators
	Scheduler *schedule.Scheduler
	Metrics   *metrics.Metrics
	APIKeys   *apikey.Manager
	Auth      *auth.Authenticator
	Web       *web.Server

	// Tokens are the data plane's tokens, one database and scope each.
	Tokens *dbtoken.Service
	// DataPlane serves Hrana over HTTP at /db/ (issue 15).
	DataPlane *dataplane.Server
	// AdminCreated tells that New made the first admin; AdminPassword is
	// the password it generated for it, "" when SNAPDECK_ADMIN_PASSWORD
	// gave one. serve shows them once.
	AdminCreated  bool
	AdminPassword string

	logger *slog.Logger
	// closers stop what New built, in the reverse order of building.
	closers []func(ctx context.Context)
}

// New builds the console in cfg.DataDir: it clears tmp/, opens the store,
// the database files and the snapshot store, recovers work a stop
// interrupted, takes the system-change snapshots before anything serves,
// starts the scheduler, makes the first admin and builds the web server.
// On an error, what was built is closed again.
func New(ctx context.Context, cfg Config) (*App, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	logger := cfg.Logger
	for _, dir := range []string{cfg.DataDir, filepath.Join(cfg.DataDir, "databases"), filepath.Join(cfg.DataDir, "snapshots")} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
	}
	// tmp/ holds only work in progress; whatever is there was interrupted.
	tmp := filepath.Join(cfg.DataDir, "tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return nil, fmt.Errorf("clear %s: %w", tmp, err)
	}
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		return nil, err
	}

	db, err := store.Open(ctx, filepath.Join(cfg.DataDir, "console.db"), logger)
	if err != nil {
		return nil, err
	}
	a := &App{Store: db, logger: logger}
	a.onClose(func(ctx context.Context) { db.Close(ctx) })
	if err := a.build(ctx, cfg, tmp); err != nil {
		a.Close(context.Background())
		return nil, err
	}
	return a, nil
}

// build is New after the store is open.
func (a *App) build(ctx context.Context, cfg Config, tmp string) error {
	logger, db := cfg.Logger, a.Store
	host, err := database.NewHost(filepath.Join(cfg.DataDir, "databases"), logger)
	if err != nil {
		return err
	}
	if cfg.QueryTimeout > 0 {
		host.QueryTimeout = cfg.QueryTimeout
	}
	a.Host = host
	snaps, closeSnaps, err := openSnapshots(ctx, cfg, logger)
	if err != nil {
		return err
	}
	a.SnapshotStore = snaps
	a.onClose(closeSnaps)
	// Point-in-time files follow the snapshots, under their own prefix.
	// Closed after the jobs (a restore to a time restarts its database's
	// replicator) and the database files, before the snapshot store.
	// Made here for the replicators (their compactions give way to the
	// jobs); closed where registered below.
	a.Jobs = job.NewRunner(db, logger)
	reps, err := pitr.New(pitr.Config{Blobs: snaps.Blobs(), Checkpoints: host, Interval: cfg.PITRInterval, Quiet: a.Jobs, Logger: logger})
	if err != nil {
		return err
	}
	a.PITR = reps
	a.onClose(func(ctx context.Context) { reps.Close(ctx) })
	// The database files close before their replicators: Litestream's
	// connection is then the last, and it keeps the write-ahead log
	// (PERSIST_WAL), so the next start carries its history on from where
	// it stopped. Closed last, the console's connection would checkpoint
	// the log away, and every start would copy each whole database again
	// as a new snapshot (issue 16).
	a.onClose(func(ctx context.Context) { host.Close(ctx) })
	// Closed before the store and files beneath it: running jobs are
	// cancelled and recorded as stopped.
	a.onClose(func(ctx context.Context) {
		a.Jobs.Close(ctx)
		// What the jobs left running (replaced files being removed).
		if a.Snapshots != nil {
			a.Snapshots.Close(ctx)
		}
	})
	consoleDB := filepath.Join(cfg.DataDir, "console.db")
	a.Metrics = metrics.New(metrics.Sources{SnapshotStore: snaps.Stats, LastSuccess: db.LatestSnapshotTimes, Logger: logger,
		OpenJobs:          func(ctx context.Context) ([]snapdeck.Job, error) { return db.FindOpenJobs(ctx, "") },
		ConsoleStoreBytes: func() int64 { return fileSize(consoleDB) + fileSize(consoleDB+"-wal") },
		ReplicationLag:    reps.Lag})

	// The webhook hears of restores and overwrites from the activity log.
	obs := &observer{metrics: a.Metrics}
	var heard activityObservers
	// A deleted database's tokens leave the cache as its deletion is
	// recorded, before anyone else hears of it; the store drops them
	// with the database.
	forget := &forgetTokens{}
	heard = append(heard, forget)
	if cfg.NotifyURL != "" {
		obs.notifier = schedule.NewNotifier(schedule.NotifierConfig{URL: cfg.NotifyURL, Logger: logger, Metrics: a.Metrics})
		a.onClose(func(ctx context.Context) { obs.notifier.Close(ctx) })
		heard = append(heard, obs.notifier)
	}
	if cfg.Observer != nil {
		heard = append(heard, cfg.Observer)
	}
	var activityObserver activity.Observer
	if len(heard) > 0 {
		activityObserver = heard
	}
	a.Activity = activity.New(db, activityObserver, logger)

	services := database.Config{Store: db, Host: host, Activity: a.Activity, Observer: obs, Logger: logger,
		Snapshots: database.SnapshotConfig{Store: snaps, Jobs: a.Jobs, Policies: cfg.Policies, TmpDir: tmp, ExportDir: filepath.Join(tmp, "exports"),
			ExportTTL: cfg.ExportTTL, ExportCacheSize: cfg.ExportCacheSize, Engine: "snapdeck " + cfg.Version, SQLiteVersion: cfg.SQLiteVersion,
			ImportChecks: cfg.ImportChecks},
		PITR: database.PITR{Replicators: reps, Windows: cfg.PITRWindows}}
	if a.Snapshots, err = database.NewSnapshots(services); err != nil {
		return err
	}
	if a.Databases, err = database.NewDatabases(services, a.Snapshots); err != nil {
		return err
	}
	a.Scheduler = schedule.New(schedule.Config{Store: db, Snapshots: a.Snapshots, Activity: a.Activity, Logger: logger, Metrics: a.Metrics,
		Workers: cfg.SnapshotWorkers, Version: cfg.Version, SQLiteVersion: cfg.SQLiteVersion, Quiet: a.Jobs})
	// Closed before the job runner and the store: snapshots under way are
	// cancelled first.
	a.onClose(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		a.Scheduler.Close(ctx)
	})
	if !cfg.Unscheduled {
		// Every database gets a Scheduled snapshot as soon as it exists.
		// The scheduler needs the Snapshots service, so it joins the
		// services' observer here, before anything can create a database.
		obs.scheduler = a.Scheduler
	}
	if err := a.Databases.Recover(ctx); err != nil {
		return fmt.Errorf("recover interrupted work: %w", err)
	}
	if err := a.Databases.StartReplication(ctx); err != nil {
		return fmt.Errorf("start point-in-time replication: %w", err)
	}
	var nextSnapshot func(snapdeck.Database) time.Time
	if !cfg.Unscheduled {
		// Before listening: after a system change no database serves a
		// query or an API call before its "System upgrade" snapshot.
		if _, err := a.Scheduler.SystemChange(ctx); err != nil {
			return fmt.Errorf("system change snapshots: %w", err)
		}
		if err := a.Scheduler.Start(ctx); err != nil {
			return err
		}
		nextSnapshot = a.Scheduler.NextSnapshot
	}
	a.Auth = auth.NewAuthenticator(db, a.Activity, logger, nil)
	if a.AdminCreated, a.AdminPassword, err = a.Auth.EnsureAdmin(ctx, cfg.AdminEmail, cfg.AdminPassword); err != nil {
		return err
	}
	if a.APIKeys, err = apikey.NewManager(ctx, db, a.Activity, logger, time.Now); err != nil {
		return err
	}
	if a.Tokens, err = dbtoken.New(dbtoken.Config{Store: db, Activity: a.Activity, Logger: logger}); err != nil {
		return err
	}
	forget.tokens.Store(a.Tokens)
	// Closed before the store: the last uses being recorded are written.
	a.onClose(a.Tokens.Close)
	if cfg.Web.Version == "" {
		cfg.Web.Version = cfg.Version
	}
	// The data plane's streams are leases of the Host; it is closed before
	// the Host, so each stream ends as a client would see it.
	if a.DataPlane, err = dataplane.New(dataplane.Config{Host: host, Metrics: a.Metrics, Logger: logger,
		Authenticate: func(ctx context.Context, bearer string) (dataplane.Grant, error) {
			g, err := a.Tokens.Authenticate(ctx, bearer)
			return dataplane.Grant{TokenID: g.TokenID, DatabaseID: g.DatabaseID, ReadOnly: g.Scope != dbtoken.ReadWrite}, err
		},
		Status:     db.DatabaseStatus,
		HTTPStatus: web.StatusOf, StatementTimeout: host.QueryTimeout}); err != nil {
		return err
	}
	a.onClose(func(ctx context.Context) { a.DataPlane.Close(ctx) })
	a.Uploads = upload.New(upload.Config{Loader: a.Snapshots, FindJob: a.Snapshots.FindJob, Activity: a.Activity,
		Limits: importfile.Limits{MaxSize: cfg.Web.MaxImportSize, CheckTimeout: cfg.Web.ImportCheckTimeout}, Logger: logger})
	// Closed once the web server stopped, before the jobs and the files:
	// the files of uploads under way go.
	a.onClose(func(ctx context.Context) { a.Uploads.Close(ctx) })
	a.Web, err = web.New(ctx, cfg.Web, web.Deps{Store: db, Databases: a.Databases, Snapshots: a.Snapshots, Uploads: a.Uploads, Auth: a.Auth, Activity: a.Activity, Logger: logger,
		NextSnapshot: nextSnapshot, Scheduler: a.Scheduler, Metrics: a.Metrics, APIKeys: a.APIKeys, Tokens: a.Tokens,
		DataPlane: a.DataPlane})
	return err
}

// onClose registers what Close stops; the last registered stops first.
func (a *App) onClose(f func(ctx context.Context)) { a.closers = append(a.closers, f) }

// Close stops the console after its HTTP server stopped: the scheduler's
// snapshots under way are cancelled, then the webhook drains, the jobs
// are cancelled and recorded as stopped, and the snapshot store, the
// database files and the store close, in that order; "stopped" is logged
// last, once stopping the process loses nothing.
func (a *App) Close(ctx context.Context) {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i](ctx)
	}
	a.closers = nil
	a.logger.Info("stopped")
}

// observer passes the database services' news on: a new database to the scheduler,
// for its "Database created" snapshot; an ended snapshot to metrics and
// to the webhook.
type observer struct {
	scheduler *schedule.Scheduler // nil when unscheduled
	metrics   *metrics.Metrics
	notifier  *schedule.Notifier // nil without --notify-url
}

func (o *observer) DatabaseCreated(ctx context.Context, d snapdeck.Database) {
	if o.scheduler != nil {
		o.scheduler.Created(ctx, d)
	}
}

func (o *observer) SnapshotEnded(s snapdeck.Snapshot, took time.Duration) {
	o.metrics.Snapshot(s, took)
	if o.notifier != nil {
		o.notifier.Snapshot(s, took)
	}
}

// activityObservers tells each of its observers of every activity line.
type activityObservers []activity.Observer

func (all activityObservers) Event(e snapdeck.Event) {
	for _, o := range all {
		o.Event(e)
	}
}

// forgetTokens empties the token cache of a database whose deletion the
// activity log records, whatever its outcome: forgetting costs only a
// store read at the next use.
type forgetTokens struct {
	// tokens is set once the service is built; until then nothing is
	// cached, and a deletion (by Recover) has nothing to forget.
	tokens atomic.Pointer[dbtoken.Service]
}

func (f *forgetTokens) Event(e snapdeck.Event) {
	if t := f.tokens.Load(); t != nil && e.Action == string(activity.DatabaseDelete) && e.DatabaseID != "" {
		t.Forget(e.DatabaseID)
	}
}

// fileSize is a file's size, or 0 when it is missing.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

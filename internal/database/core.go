package database

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/store"
)

// core is what the Databases and Snapshots services share: the store's
// records, the files on disk, the activity log, the observer and the log.
// Only the services record activity; the handlers of web call them.
type core struct {
	db     *store.DB
	host   *Host
	logger *slog.Logger
	// observer hears of databases created and snapshots ended.
	observer Observer
	// activity records every action on a database, refusals included;
	// its observer (the webhook) hears of restores there.
	activity *activity.Recorder
	// pitr replicates the databases of plans with a window (pitr.go).
	pitr PITR
}

// Observer hears what a service did, once it is done: the scheduler takes
// a new database's "Database created" snapshot, metrics and the webhook
// count the snapshots that ended. Its methods run on the service's
// goroutine and must return quickly.
type Observer interface {
	// DatabaseCreated is told of a database created and running, empty
	// or from a snapshot.
	DatabaseCreated(ctx context.Context, d snapdeck.Database)
	// SnapshotEnded is told of every snapshot that ended, completed or
	// failed, and how long it took.
	SnapshotEnded(s snapdeck.Snapshot, took time.Duration)
}

// Config is every dependency of the Snapshots service, and of the
// Databases service with the Snapshots it copies from.
type Config struct {
	// Store keeps the records; Host the database files.
	Store *store.DB
	Host  *Host
	// Activity records every action on a database, refusals included.
	Activity *activity.Recorder
	// Snapshots is the snapshot store, the job runner and the snapshot,
	// export and import settings.
	Snapshots SnapshotConfig
	// Observer hears of databases created and snapshots ended; nil when
	// nobody listens.
	Observer Observer
	// PITR is point-in-time restore's replicators and windows; the zero
	// value is off.
	PITR PITR
	// Logger is nil for none.
	Logger *slog.Logger
}

// newCore checks cfg's shared dependencies and fills its defaults.
func newCore(cfg Config) (*core, error) {
	if cfg.Store == nil || cfg.Host == nil || cfg.Activity == nil {
		return nil, errors.New("database: a service needs its Store, Host and Activity")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Observer == nil {
		cfg.Observer = noObserver{}
	}
	return &core{db: cfg.Store, host: cfg.Host, activity: cfg.Activity, observer: cfg.Observer, logger: cfg.Logger, pitr: cfg.PITR}, nil
}

// noObserver is the Observer when nobody listens.
type noObserver struct{}

func (noObserver) DatabaseCreated(context.Context, snapdeck.Database) {}
func (noObserver) SnapshotEnded(snapdeck.Snapshot, time.Duration)     {}

// record writes an action on a database to the activity log.
func (m *core) record(ctx context.Context, actor string, action activity.Action, dbID, sid string, err error, took time.Duration, detail string) {
	m.activity.Record(ctx, activity.Entry{Actor: actor, Action: action, DatabaseID: dbID, SnapshotID: sid,
		Detail: detail, Duration: took, Err: err})
}

// setStatus sets a database's status after the fact, from a job: a
// database deleted meanwhile is no error.
func (m *core) setStatus(id string, s snapdeck.Status) {
	if _, err := m.db.UpdateDatabase(context.Background(), id, store.DatabaseUpdate{Status: &s}); err != nil &&
		snapdeck.ErrorCode(err) != snapdeck.NotFound {
		m.logger.Error("set database status", "database_id", id, "status", s, "err", err)
	}
}

// findDatabase returns the database id names; an id that cannot name one
// is not found before anything looks it up.
func (c *core) findDatabase(ctx context.Context, id string) (snapdeck.Database, error) {
	if !snapdeck.ValidDatabaseID(id) {
		return snapdeck.Database{}, snapdeck.DatabaseNotFound(id)
	}
	return c.db.FindDatabase(ctx, id)
}

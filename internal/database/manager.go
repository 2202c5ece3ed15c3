package database

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/snapshot"
	"github.com/snapdeck/snapdeck/store"
)

// Manager is what the console and the API call to manage hosted databases:
// it keeps the store's records and the files on disk in step.
type Manager struct {
	db     *store.DB
	host   *Host
	logger *slog.Logger
	// observer hears of databases created and snapshots ended.
	observer Observer
	// activity records every action on a database, refusals included;
	// its observer (the webhook) hears of restores there.
	activity *activity.Recorder
	snaps    *snapshotState
	loads    loadState
	// pitr replicates the databases of plans with a window (pitr.go).
	pitr PITR
}

// Observer hears what a Manager did, once it is done: the scheduler takes
// a new database's "Database created" snapshot, metrics and the webhook
// count the snapshots that ended. Its methods run on the Manager's
// goroutine and must return quickly.
type Observer interface {
	// DatabaseCreated is told of a database created and running, empty
	// or from a snapshot.
	DatabaseCreated(ctx context.Context, d snapdeck.Database)
	// SnapshotEnded is told of every snapshot that ended, completed or
	// failed, and how long it took.
	SnapshotEnded(s snapdeck.Snapshot, took time.Duration)
}

// Config is every dependency of a Manager.
type Config struct {
	// Store keeps the records; Host the database files.
	Store *store.DB
	Host  *Host
	// Activity records every action on a database, refusals included.
	Activity *activity.Recorder
	// Snapshots is the snapshot store, the job runner and the snapshot,
	// export and import settings.
	Snapshots Snapshots
	// Observer hears of databases created and snapshots ended; nil when
	// nobody listens.
	Observer Observer
	// PITR is point-in-time restore's replicators and windows; the zero
	// value is off.
	PITR PITR
	// Logger is nil for none.
	Logger *slog.Logger
}

// NewManager returns a Manager over its dependencies, ready to serve:
// the snapshot scratch and export directories exist once it returns.
func NewManager(cfg Config) (*Manager, error) {
	switch {
	case cfg.Store == nil, cfg.Host == nil, cfg.Activity == nil, cfg.Snapshots.Store == nil, cfg.Snapshots.Jobs == nil:
		return nil, errors.New("database: a Manager needs its Store, Host, Activity, Snapshots.Store and Snapshots.Jobs")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Observer == nil {
		cfg.Observer = noObserver{}
	}
	m := &Manager{db: cfg.Store, host: cfg.Host, activity: cfg.Activity, observer: cfg.Observer, logger: cfg.Logger, pitr: cfg.PITR}
	if err := m.initSnapshots(cfg.Snapshots); err != nil {
		return nil, err
	}
	if r := cfg.PITR.Replicators; r != nil {
		cfg.Host.OnCommit(r.Committed)
	}
	return m, nil
}

// noObserver is the Observer when nobody listens.
type noObserver struct{}

func (noObserver) DatabaseCreated(context.Context, snapdeck.Database) {}
func (noObserver) SnapshotEnded(snapdeck.Snapshot, time.Duration)     {}

// Host returns the files the manager keeps.
func (m *Manager) Host() *Host { return m.host }

// Create makes an empty database with the given name and plan.
func (m *Manager) Create(ctx context.Context, name string, plan snapdeck.Plan) (snapdeck.Database, error) {
	name = strings.TrimSpace(name)
	if err := snapdeck.ValidateDatabaseName(name); err != nil {
		return snapdeck.Database{}, err
	}
	if !plan.Valid() {
		return snapdeck.Database{}, snapdeck.FieldError("plan", "Choose a plan: free, professional or enterprise.")
	}
	d := snapdeck.Database{ID: snapdeck.NewDatabaseID(), Name: name, Plan: plan, Status: snapdeck.StatusCreating}
	// The record comes first: a crash before the file exists leaves a
	// "creating" record that the next start marks failed, never a file
	// that no record owns.
	if err := m.db.CreateDatabase(ctx, &d); err != nil {
		return d, err
	}
	if err := m.host.Create(ctx, d.ID); err != nil {
		failed := snapdeck.StatusFailed
		if _, uerr := m.db.UpdateDatabase(ctx, d.ID, store.DatabaseUpdate{Status: &failed}); uerr != nil {
			m.logger.Error("mark database failed", "database_id", d.ID, "err", uerr)
		}
		return d, fmt.Errorf("create database %s: %w", d.ID, err)
	}
	running := snapdeck.StatusRunning
	d, err := m.db.UpdateDatabase(ctx, d.ID, store.DatabaseUpdate{Status: &running})
	if err != nil {
		return d, err
	}
	m.logger.Info("database created", "database_id", d.ID, "plan", d.Plan)
	m.observer.DatabaseCreated(ctx, d)
	m.startPITR(ctx, d)
	return d, nil
}

// Find returns one database with its current size on disk.
func (m *Manager) Find(ctx context.Context, id string) (snapdeck.Database, error) {
	d, err := m.db.FindDatabase(ctx, id)
	if err != nil {
		return d, err
	}
	d.SizeBytes = m.host.Size(id)
	return d, nil
}

// List returns every database with its current size on disk.
func (m *Manager) List(ctx context.Context) ([]snapdeck.Database, error) {
	dbs, err := m.db.FindDatabases(ctx)
	if err != nil {
		return nil, err
	}
	for i := range dbs {
		dbs[i].SizeBytes = m.host.Size(dbs[i].ID)
	}
	return dbs, nil
}

// Rename gives a database a new name.
func (m *Manager) Rename(ctx context.Context, id, name string) (snapdeck.Database, error) {
	name = strings.TrimSpace(name)
	if err := snapdeck.ValidateDatabaseName(name); err != nil {
		return snapdeck.Database{}, err
	}
	return m.db.UpdateDatabase(ctx, id, store.DatabaseUpdate{Name: &name})
}

// SetPlan moves a database to another plan.
func (m *Manager) SetPlan(ctx context.Context, id string, plan snapdeck.Plan) (snapdeck.Database, error) {
	if !plan.Valid() {
		return snapdeck.Database{}, snapdeck.FieldError("plan", "Choose a plan: free, professional or enterprise.")
	}
	d, err := m.db.UpdateDatabase(ctx, id, store.DatabaseUpdate{Plan: &plan})
	if err == nil && d.Status == snapdeck.StatusRunning {
		m.startPITR(ctx, d) // the new plan's window, or none
	}
	return d, err
}

// Delete removes a database after the user typed its exact name. A database
// busy with another operation is refused.
func (m *Manager) Delete(ctx context.Context, id, typedName string) error {
	d, err := m.db.FindDatabase(ctx, id)
	if err != nil {
		return err
	}
	if typedName != d.Name {
		return snapdeck.FieldError("confirm_name", "Type the database name, %s, exactly to delete it.", d.Name)
	}
	if _, err := m.db.TransitionDatabase(ctx, id,
		[]snapdeck.Status{snapdeck.StatusRunning, snapdeck.StatusFailed, snapdeck.StatusPaused}, snapdeck.StatusDeleting); err != nil {
		return err
	}
	m.dropPITR(ctx, id)
	if err := m.host.Delete(ctx, id); err != nil {
		return fmt.Errorf("delete database %s: %w", id, err)
	}
	snapshot.ForgetFile(m.host.Path(id))
	if err := m.db.DeleteDatabase(ctx, id); err != nil {
		return err
	}
	m.logger.Info("database deleted", "database_id", id)
	// Its snapshots go with it: no restore, overwrite or copy may bring
	// the data of a deleted database back.
	m.forgetSnapshots(ctx)
	return nil
}

// forgetSnapshots deletes the records of the snapshots of deleted
// databases and sweeps the snapshot store. The database is gone whatever
// happens here, so a failure is only logged: the next start deletes the
// records (Recover), and the retention sweeper reclaims the storage.
func (m *Manager) forgetSnapshots(ctx context.Context) {
	n, err := m.db.DeleteOrphanSnapshots(ctx)
	if err != nil {
		m.logger.Error("delete snapshots of deleted databases", "err", err)
		return
	}
	if n == 0 || m.snaps == nil {
		return
	}
	reclaimed, err := m.Reclaim(ctx)
	if err != nil {
		m.logger.Warn("reclaim the snapshots of a deleted database", "err", err)
		return
	}
	m.logger.Info("snapshots of deleted databases deleted", "count", n, "reclaimed_bytes", reclaimed)
}

// Query runs user SQL on a running database.
func (m *Manager) Query(ctx context.Context, id, sqlText string, readOnly bool) (*Result, error) {
	d, err := m.db.FindDatabase(ctx, id)
	if err != nil {
		return nil, err
	}
	if d.Status != snapdeck.StatusRunning {
		return nil, &snapdeck.Error{Code: snapdeck.Busy, Reason: "ongoing-database-operation",
			Message: fmt.Sprintf("The database is %s; queries run again once it is running.", d.Status)}
	}
	return m.host.Query(ctx, id, sqlText, readOnly)
}

// Recover cleans up after a crash, before anything serves: the safety
// snapshot of a replace (restore, overwrite, load) that a stop interrupted
// after the swap is taken again from the replaced file the replace kept,
// other snapshots and jobs that never finished are marked failed, leftover
// temporary files of every purpose (tempPurposes) are removed, a database
// still "creating" failed, one "deleting" finishes deleting, the snapshots
// of deleted databases go, and one caught "restoring" or "loading" serves
// again: its file is whole, old or new, because the swap is one atomic
// rename. Completed
// snapshots whose verification a stop cancelled are verified again, in the
// background.
func (m *Manager) Recover(ctx context.Context) error {
	var errs []error
	if m.snaps != nil {
		n, err := m.db.FailInterruptedSnapshots(ctx)
		errs = append(errs, err)
		if n > 0 {
			m.logger.Warn("snapshots interrupted by a stop were marked failed", "count", n)
		}
		jobs, err := m.db.FailInterruptedJobs(ctx)
		errs = append(errs, err)
		for _, j := range jobs {
			m.logger.Warn("job interrupted by a stop was marked failed", "job_id", j.ID, "kind", j.Kind, "database_id", j.DatabaseID)
		}
	}
	if m.snaps != nil {
		errs = append(errs, m.recoverUndo(ctx))
	}
	errs = append(errs, m.removeTempFiles())
	dbs, err := m.db.FindDatabases(ctx)
	if err != nil {
		return err
	}
	for _, d := range dbs {
		switch d.Status {
		case snapdeck.StatusCreating:
			failed := snapdeck.StatusFailed
			_, err := m.db.UpdateDatabase(ctx, d.ID, store.DatabaseUpdate{Status: &failed})
			errs = append(errs, err)
			m.logger.Warn("database creation was interrupted; marked failed", "database_id", d.ID)
		case snapdeck.StatusDeleting:
			m.dropPITR(ctx, d.ID)
			errs = append(errs, m.host.Delete(ctx, d.ID), m.db.DeleteDatabase(ctx, d.ID))
			snapshot.ForgetFile(m.host.Path(d.ID))
		case snapdeck.StatusRestoring, snapdeck.StatusLoading:
			running := snapdeck.StatusRunning
			_, err := m.db.UpdateDatabase(ctx, d.ID, store.DatabaseUpdate{Status: &running})
			errs = append(errs, err)
			m.logger.Warn("restore or load was interrupted; the database serves its old or its new content, whichever the atomic swap left", "database_id", d.ID)
		}
	}
	// Snapshots of deleted databases: kept by consoles before they went
	// with their database, or left by a stop during a delete. The first
	// sweep of the retention sweeper reclaims their storage.
	if n, err := m.db.DeleteOrphanSnapshots(ctx); err != nil {
		errs = append(errs, err)
	} else if n > 0 {
		m.logger.Info("snapshots of deleted databases deleted", "count", n)
	}
	if m.snaps != nil {
		// A stop cancels verifications under way; they run again.
		unverified, err := m.db.FindUnverifiedSnapshots(ctx)
		errs = append(errs, err)
		for _, rec := range unverified {
			m.verifyLater(rec)
		}
		if len(unverified) > 0 {
			m.logger.Info("verifying snapshots whose verification never finished", "count", len(unverified))
		}
	}
	return errors.Join(errs...)
}

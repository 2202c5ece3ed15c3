package database

import (
	"context"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// Pause stops a running database from serving: its connections close and
// queries are refused until Resume. Its file and snapshots stay. It is
// recorded as database.pause, refused or not, and returns the database
// as it now is.
func (ds *Databases) Pause(ctx context.Context, actor, id string) (snapdeck.Database, error) {
	d, err := ds.find(ctx, id)
	if err == nil {
		d, err = ds.db.TransitionDatabase(ctx, id, []snapdeck.Status{snapdeck.StatusRunning}, snapdeck.StatusPaused)
	}
	if err == nil {
		if cerr := ds.host.CloseDatabase(ctx, id); cerr != nil {
			// The status already refuses queries; an unclosed pool only
			// holds file handles until the next restart.
			ds.logger.Warn("close paused database", "database_id", id, "err", cerr)
		}
		// After the pools: the replicator's connection closes last and
		// keeps the write-ahead log, so Resume carries the history on
		// instead of copying the whole database again (issue 16). Under
		// the database's lock, as a plan change starts or stops it: one
		// that passed its check before this pause must not start it
		// again after this stop.
		l := ds.snaps.lock(id)
		l.Lock()
		ds.stopPITR(ctx, id)
		l.Unlock()
		ds.logger.Info("database paused", "database_id", id)
		d.SizeBytes = ds.host.Size(id)
	}
	ds.record(ctx, actor, activity.DatabasePause, id, "", err, 0, "")
	return d, err
}

// Resume lets a paused database serve again, recorded as
// database.resume, and returns the database as it now is.
func (ds *Databases) Resume(ctx context.Context, actor, id string) (snapdeck.Database, error) {
	d, err := ds.find(ctx, id)
	if err == nil {
		d, err = ds.db.TransitionDatabase(ctx, id, []snapdeck.Status{snapdeck.StatusPaused}, snapdeck.StatusRunning)
	}
	if err == nil {
		// Under the database's lock, with the plan as it is then: a plan
		// change beside this resume starts or stops the replication too,
		// and the later of the two must use the new plan's window.
		l := ds.snaps.lock(id)
		l.Lock()
		if cur, ferr := ds.find(ctx, id); ferr == nil && cur.Status != snapdeck.StatusPaused {
			ds.startPITR(ctx, cur)
		}
		l.Unlock()
		ds.logger.Info("database resumed", "database_id", id)
		d.SizeBytes = ds.host.Size(id)
	}
	ds.record(ctx, actor, activity.DatabaseResume, id, "", err, 0, "")
	return d, err
}

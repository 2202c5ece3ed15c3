package database

import (
	"context"
	"fmt"
	"time"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/job"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/store"
)

// OverwriteSource is where an overwrite's data comes from: a completed
// snapshot of any database (Snapshot), or the current data of a database
// (Database alone). With both, the snapshot must be of that database,
// unless Database names the target itself, as aura-cli sends when only a
// snapshot is given.
type OverwriteSource struct {
	Database, Snapshot string
	// BadInput, when set, is why the door could not read the request:
	// Overwrite refuses it, recorded, and changes nothing.
	BadInput error
}

// Overwrite replaces a running database's data from src, in the
// background, with a safety snapshot of the replaced data, as Restore
// does: the one entry of POST /v1/instances/{id}/overwrite. It returns the
// database as it now is, restoring, and the job. A refusal is recorded in
// the activity log here, the overwrite's outcome by the job.
func (ss *Snapshots) Overwrite(ctx context.Context, dbID string, src OverwriteSource, actor string) (snapdeck.Database, snapdeck.Job, error) {
	d, j, err := ss.overwrite(ctx, dbID, src, actor)
	if err != nil {
		ss.recordRefusal(ctx, actor, activity.Overwrite, dbID, src.Snapshot, err)
	}
	return d, j, err
}

func (ss *Snapshots) overwrite(ctx context.Context, dbID string, src OverwriteSource, actor string) (snapdeck.Database, snapdeck.Job, error) {
	if _, err := ss.findDatabase(ctx, dbID); err != nil {
		return snapdeck.Database{}, snapdeck.Job{}, err
	}
	var d snapdeck.Database
	var j snapdeck.Job
	var err error
	switch {
	case src.BadInput != nil:
		err = src.BadInput
	case src.Snapshot == "" && src.Database == "":
		err = snapdeck.FieldError("source_instance_id", "Send source_instance_id, source_snapshot_id, or both, to say where the data comes from.")
	case src.Snapshot == "":
		if _, err = findSource(ctx, ss.db, src.Database); err == nil {
			d, j, err = ss.overwriteFromDatabase(ctx, dbID, src.Database, actor)
		}
	default:
		d, j, err = ss.overwriteFromSnapshot(ctx, dbID, src, actor)
	}
	return d, j, err
}

func (ss *Snapshots) overwriteFromSnapshot(ctx context.Context, dbID string, src OverwriteSource, actor string) (snapdeck.Database, snapdeck.Job, error) {
	s, err := ss.findLiveSnapshot(ctx, src.Snapshot)
	if err != nil {
		return snapdeck.Database{}, snapdeck.Job{}, err
	}
	if src.Database != "" && src.Database != dbID {
		if _, err := findSource(ctx, ss.db, src.Database); err != nil {
			return snapdeck.Database{}, snapdeck.Job{}, err
		}
		if s.DatabaseID != src.Database {
			return snapdeck.Database{}, snapdeck.Job{}, &snapdeck.Error{Code: snapdeck.NotFound, Reason: "snapshot-not-found", Field: "source_snapshot_id",
				Message: fmt.Sprintf("Snapshot %s is not a snapshot of instance %s.", s.ID, src.Database)}
		}
	}
	if err := usableSource(s); err != nil {
		return snapdeck.Database{}, snapdeck.Job{}, err
	}
	detail := fmt.Sprintf("from snapshot of %s taken %s", s.DatabaseID, s.CreatedAt.Format(timeFormat))
	return ss.startOverwrite(ctx, dbID, s.ID, actor, detail, func(context.Context, *job.Progress) (store.SnapshotRecord, error) {
		return s, nil
	}, s.CreatedAt)
}

// overwriteFromDatabase replaces a running database's data with another
// database's current data: a fresh On-demand snapshot of the source, then
// an overwrite from it, both in one background job. The target is marked
// busy before the reply, so a client polling it never sees it running
// until the whole overwrite is over. The source may be the target itself.
func (ss *Snapshots) overwriteFromDatabase(ctx context.Context, dbID, srcID, actor string) (snapdeck.Database, snapdeck.Job, error) {
	src, err := ss.db.FindDatabase(ctx, srcID)
	if err != nil {
		return snapdeck.Database{}, snapdeck.Job{}, err
	}
	if src.ID != dbID && src.Status != snapdeck.StatusRunning {
		return snapdeck.Database{}, snapdeck.Job{}, &snapdeck.Error{Code: snapdeck.Busy, Reason: "ongoing-database-operation",
			Message: fmt.Sprintf("The source database %s is %s; overwrite from it once it is running.", src.ID, src.Status)}
	}
	// The target must be free before the source's snapshot is recorded: a
	// refused overwrite leaves no stray pending snapshot behind.
	if err := ss.checkRunning(ctx, dbID); err != nil {
		return snapdeck.Database{}, snapdeck.Job{}, err
	}
	rec, err := ss.newSnapshot(ctx, src, snapdeck.SnapshotOnDemand, "For overwrite of database "+dbID)
	if err != nil {
		return snapdeck.Database{}, snapdeck.Job{}, err
	}
	d, j, err := ss.startOverwrite(ctx, dbID, rec.ID, actor, "from the current data of database "+src.ID,
		func(ctx context.Context, p *job.Progress) (store.SnapshotRecord, error) {
			// A copy: the caller still reads rec while the job runs.
			taken := rec
			p.Stage("Taking a snapshot of the source database", ss.host.Size(src.ID))
			start := time.Now()
			err := ss.capture(ctx, &taken, p.Bytes)
			ss.record(ctx, actor, activity.SnapshotTake, src.ID, taken.ID, err, time.Since(start), taken.Reason)
			return taken, err
		}, rec.CreatedAt)
	if err != nil {
		// An error means the job never ran: the snapshot will never be taken.
		rec.Status, rec.Error = snapdeck.SnapshotFailed, snapdeck.ErrorMessage(err)
		if uerr := ss.db.UpdateSnapshot(context.Background(), rec); uerr != nil {
			ss.logger.Error("record failed snapshot", "snapshot_id", rec.ID, "err", uerr)
		}
	}
	return d, j, err
}

// checkRunning refuses a database that is not running, as the overwrite's
// transition would, without changing it.
func (ss *Snapshots) checkRunning(ctx context.Context, id string) error {
	d, err := ss.db.FindDatabase(ctx, id)
	if err != nil {
		return err
	}
	if d.Status != snapdeck.StatusRunning {
		return &snapdeck.Error{Code: snapdeck.Busy, Reason: "ongoing-database-operation",
			Message: fmt.Sprintf("The database is currently undergoing an operation: %s", d.Status)}
	}
	return nil
}

// startOverwrite overwrites the database with the completed snapshot
// source yields (replace). Whatever fails, the database serves again after.
func (ss *Snapshots) startOverwrite(ctx context.Context, dbID, sid, actor, detail string,
	source func(context.Context, *job.Progress) (store.SnapshotRecord, error), taken time.Time) (snapdeck.Database, snapdeck.Job, error) {
	return ss.replace(ctx, dbID, replacement{door: "overwrite", kind: snapdeck.JobOverwrite, status: snapdeck.StatusRestoring,
		action: activity.Overwrite, snapshotID: sid, actor: actor, detail: detail,
		safetyReason: "Before restore of " + taken.Format(timeFormat), swapping: "Swapping in the restored data",
		prepare: ss.fromSnapshot(source)})
}

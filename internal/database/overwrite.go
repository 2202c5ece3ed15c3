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

// OverwriteFromSnapshot replaces a running database's data with a
// completed snapshot of any database, in the background, with a safety
// snapshot first, as Restore does. A refusal is recorded in the activity
// log here, the overwrite's outcome by the job.
func (m *Manager) OverwriteFromSnapshot(ctx context.Context, dbID, sid, actor string) (snapdeck.Job, error) {
	j, err := m.overwriteFromSnapshot(ctx, dbID, sid, actor)
	if err != nil {
		m.recordRefusal(ctx, actor, activity.Overwrite, dbID, sid, err)
	}
	return j, err
}

func (m *Manager) overwriteFromSnapshot(ctx context.Context, dbID, sid, actor string) (snapdeck.Job, error) {
	s, err := m.findLiveSnapshot(ctx, sid)
	if err != nil {
		return snapdeck.Job{}, err
	}
	if err := usableSource(s); err != nil {
		return snapdeck.Job{}, err
	}
	detail := fmt.Sprintf("from snapshot of %s taken %s", s.DatabaseID, s.CreatedAt.Format(timeFormat))
	return m.startOverwrite(ctx, dbID, s.ID, actor, detail, func(context.Context, *job.Progress) (store.SnapshotRecord, error) {
		return s, nil
	}, s.CreatedAt)
}

// OverwriteFromDatabase replaces a running database's data with another
// database's current data: a fresh On-demand snapshot of the source, then
// an overwrite from it, both in one background job. The target is marked
// busy before the reply, so a client polling it never sees it running
// until the whole overwrite is over. The source may be the target itself.
// A refusal is recorded in the activity log here, the outcome by the job.
func (m *Manager) OverwriteFromDatabase(ctx context.Context, dbID, srcID, actor string) (snapdeck.Snapshot, snapdeck.Job, error) {
	s, j, err := m.overwriteFromDatabase(ctx, dbID, srcID, actor)
	if err != nil {
		m.recordRefusal(ctx, actor, activity.Overwrite, dbID, "", err)
	}
	return s, j, err
}

func (m *Manager) overwriteFromDatabase(ctx context.Context, dbID, srcID, actor string) (snapdeck.Snapshot, snapdeck.Job, error) {
	src, err := m.db.FindDatabase(ctx, srcID)
	if err != nil {
		return snapdeck.Snapshot{}, snapdeck.Job{}, err
	}
	if src.ID != dbID && src.Status != snapdeck.StatusRunning {
		return snapdeck.Snapshot{}, snapdeck.Job{}, &snapdeck.Error{Code: snapdeck.Busy, Reason: "ongoing-database-operation",
			Message: fmt.Sprintf("The source database %s is %s; overwrite from it once it is running.", src.ID, src.Status)}
	}
	// The target must be free before the source's snapshot is recorded: a
	// refused overwrite leaves no stray pending snapshot behind.
	if err := m.checkRunning(ctx, dbID); err != nil {
		return snapdeck.Snapshot{}, snapdeck.Job{}, err
	}
	rec, err := m.newSnapshot(ctx, src, snapdeck.SnapshotOnDemand, "For overwrite of database "+dbID)
	if err != nil {
		return snapdeck.Snapshot{}, snapdeck.Job{}, err
	}
	j, err := m.startOverwrite(ctx, dbID, rec.ID, actor, "from the current data of database "+src.ID,
		func(ctx context.Context, p *job.Progress) (store.SnapshotRecord, error) {
			// A copy: the caller still reads rec while the job runs.
			taken := rec
			p.Stage("Taking a snapshot of the source database", m.host.Size(src.ID))
			start := time.Now()
			err := m.capture(ctx, &taken, p.Bytes)
			m.record(ctx, actor, activity.SnapshotTake, src.ID, taken.ID, err, time.Since(start), taken.Reason)
			return taken, err
		}, rec.CreatedAt)
	if err != nil {
		// An error means the job never ran: the snapshot will never be taken.
		rec.Status, rec.Error = snapdeck.SnapshotFailed, snapdeck.ErrorMessage(err)
		if uerr := m.db.UpdateSnapshot(context.Background(), rec); uerr != nil {
			m.logger.Error("record failed snapshot", "snapshot_id", rec.ID, "err", uerr)
		}
	}
	return rec.Snapshot, j, err
}

// checkRunning refuses a database that is not running, as the overwrite's
// transition would, without changing it.
func (m *Manager) checkRunning(ctx context.Context, id string) error {
	d, err := m.db.FindDatabase(ctx, id)
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
func (m *Manager) startOverwrite(ctx context.Context, dbID, sid, actor, detail string,
	source func(context.Context, *job.Progress) (store.SnapshotRecord, error), taken time.Time) (snapdeck.Job, error) {
	return m.replace(ctx, dbID, replacement{door: "overwrite", kind: snapdeck.JobOverwrite, status: snapdeck.StatusRestoring,
		action: activity.Overwrite, snapshotID: sid, actor: actor, detail: detail,
		safetyReason: "Before restore of " + taken.Format(timeFormat), swapping: "Swapping in the restored data",
		prepare: m.fromSnapshot(source)})
}

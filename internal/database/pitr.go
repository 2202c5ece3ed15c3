package database

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"modernc.org/sqlite"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/job"
	"github.com/snapdeck/snapdeck/internal/pitr"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/snapshot"
)

// PITR is point-in-time restore's part of the services' configuration
// (issue 16, SPEC §10): the replicators and each plan's window.
type PITR struct {
	// Replicators replicate the databases of plans with a window; nil
	// turns point-in-time restore off.
	Replicators *pitr.Replicators
	// Windows is how much history each plan keeps; a plan missing or 0
	// keeps none and is not replicated.
	Windows map[snapdeck.Plan]time.Duration
}

// pitrWindow is how much history a plan keeps; 0 when it keeps none.
func (m *core) pitrWindow(plan snapdeck.Plan) time.Duration {
	if m.pitr.Replicators == nil {
		return 0
	}
	return m.pitr.Windows[plan]
}

// startPITR replicates a running database whose plan has a window, and
// stops replicating one whose plan has none (its history goes). A failure
// is logged: the database serves either way, and PITRWindow says it has
// no history.
func (m *core) startPITR(ctx context.Context, d snapdeck.Database) {
	r := m.pitr.Replicators
	if r == nil {
		return
	}
	window := m.pitrWindow(d.Plan)
	var err error
	if window > 0 {
		err = r.Start(ctx, d.ID, m.host.Path(d.ID), window)
	} else {
		err = r.Drop(ctx, d.ID, m.host.Path(d.ID))
	}
	if err != nil {
		m.logger.Error("point-in-time replication", "database_id", d.ID, "plan", d.Plan, "err", err)
	}
}

// startPITRAfterSwap is startPITR right after d's file was swapped, with
// replaced the file swapped out (pitr.Replicators.StartAfterSwap).
func (m *core) startPITRAfterSwap(ctx context.Context, d snapdeck.Database, replaced string) {
	r := m.pitr.Replicators
	if r == nil {
		return
	}
	window := m.pitrWindow(d.Plan)
	if window <= 0 {
		m.startPITR(ctx, d)
		return
	}
	if err := r.StartAfterSwap(ctx, d.ID, m.host.Path(d.ID), window, replaced); err != nil {
		m.logger.Error("point-in-time replication", "database_id", d.ID, "plan", d.Plan, "err", err)
	}
}

// stopPITR stops replicating a database, keeping its history: before its
// pools close (pause), or for a swap once they are closed (replace, from
// Host.Replace's quiesced), after a last upload of what the WAL holds.
// Litestream keeps the WAL file when it closes (PERSIST_WAL); Host.Replace
// copies what is left into the replaced file once every pool and lease is
// closed (drainWAL). A database not replicated is left as it is
// (Replicators.Stop does nothing for it).
func (m *core) stopPITR(ctx context.Context, id string) {
	if r := m.pitr.Replicators; r != nil {
		if err := r.Stop(ctx, id); err != nil {
			m.logger.Error("stop point-in-time replication", "database_id", id, "err", err)
		}
	}
}

// dropPITR stops replicating a database being deleted and deletes its
// history: no restore may bring a deleted database's data back.
func (m *core) dropPITR(ctx context.Context, id string) {
	if r := m.pitr.Replicators; r != nil {
		if err := r.Drop(ctx, id, m.host.Path(id)); err != nil {
			m.logger.Error("delete point-in-time history", "database_id", id, "err", err)
		}
	}
}

// StartReplication replicates every running database whose plan has a
// window, and drops the history of those whose plan has none; the wiring
// calls it once Recover is done, before serving. Litestream goes on with
// each history where it was: after a crash it reads the WAL the crash
// left; after a clean stop, whose last close checkpointed the WAL away,
// the whole file starts it again (pitr's base, as after a swap).
func (m *Databases) StartReplication(ctx context.Context) error {
	if m.pitr.Replicators == nil {
		return nil
	}
	dbs, err := m.db.FindDatabases(ctx)
	if err != nil {
		return err
	}
	for _, d := range dbs {
		if d.Status == snapdeck.StatusRunning {
			m.startPITR(ctx, d)
		}
	}
	return nil
}

// PITRWindow is the span of time database dbID can be restored to: from
// the later of its oldest history and its plan's window ago, to now. ok
// is false when it has none (a plan without a window, or no history yet).
func (m *Snapshots) PITRWindow(ctx context.Context, dbID string) (from, to time.Time, ok bool, err error) {
	d, err := m.db.FindDatabase(ctx, dbID)
	if err != nil {
		return from, to, false, err
	}
	window := m.pitrWindow(d.Plan)
	if window <= 0 {
		return from, to, false, nil
	}
	earliest, ok, err := m.pitr.Replicators.Earliest(ctx, dbID)
	if err != nil || !ok {
		return from, to, false, err
	}
	to = time.Now().UTC()
	from = to.Add(-window)
	if earliest.After(from) {
		from = earliest
	}
	return from.UTC(), to, true, nil
}

// PITRStorage is how many bytes database dbID's point-in-time history
// takes in the snapshot store (all of its LTX files), for the database
// list; 0 when it has none.
func (m *Snapshots) PITRStorage(ctx context.Context, dbID string) (int64, error) {
	if m.pitr.Replicators == nil {
		return 0, nil
	}
	return m.pitr.Replicators.Bytes(ctx, dbID)
}

// pitrTarget checks that at is inside database dbID's window and returns
// the time a restore takes: at, and a time given to the whole second
// covers that whole second (a commit at 12:00:00.300 is one "at
// 12:00:00"). A time outside is refused as Invalid, naming the window.
func (m *Snapshots) pitrTarget(ctx context.Context, dbID string, at time.Time) (time.Time, error) {
	from, to, ok, err := m.PITRWindow(ctx, dbID)
	if err != nil {
		return at, err
	}
	if !ok {
		return at, &snapdeck.Error{Code: snapdeck.Invalid, Reason: "no-pitr-window", Field: "time",
			Message: "This database has no point-in-time history: its plan keeps none, or nothing was replicated yet."}
	}
	target := at
	if at.Nanosecond() == 0 {
		target = at.Add(time.Second - time.Millisecond)
	}
	if target.Before(from) || at.After(to) {
		return at, &snapdeck.Error{Code: snapdeck.Invalid, Reason: "outside-pitr-window", Field: "time",
			Message: fmt.Sprintf("%s is outside the point-in-time window, from %s to %s.",
				at.UTC().Format(timeFormat), from.Format(timeFormat), to.Format(timeFormat))}
	}
	return target, nil
}

// RestoreToTime overwrites database dbID with its content as of at,
// through the replace pipeline: a safety snapshot first, then the swap.
// The database then holds the last transaction committed at or before at
// (told apart to pitr.Tuning.MonitorInterval). A time outside the window
// is refused as Invalid and changes nothing. The replication goes on over
// the swap, on the same timeline: a later restore to a time before this
// one gives the content before it.
func (m *Snapshots) RestoreToTime(ctx context.Context, actor, dbID string, at time.Time) (snapdeck.Database, snapdeck.Job, error) {
	asked := at.UTC().Format(time.RFC3339Nano)
	target, err := m.pitrTarget(ctx, dbID, at)
	var d snapdeck.Database
	var j snapdeck.Job
	if err == nil {
		d, j, err = m.replace(ctx, dbID, replacement{door: "restore-to-time", kind: snapdeck.JobRestore, status: snapdeck.StatusRestoring,
			action: activity.RestoreToTime, actor: actor, detail: "to " + asked,
			safetyReason: "Before restore to " + at.UTC().Format(timeFormat), swapping: "Swapping in the restored data",
			prepare: m.fromTime(target)})
	}
	if err != nil {
		m.record(ctx, actor, activity.RestoreToTime, dbID, "", err, 0, "to "+asked)
	}
	return d, j, err
}

// fromTime is the preparer that writes the database as of at next to it.
func (m *Snapshots) fromTime(at time.Time) preparer {
	return func(ctx context.Context, d snapdeck.Database, p *job.Progress) (prepared, error) {
		p.Stage("Writing the data as of "+at.UTC().Format(timeFormat), 0)
		out := prepared{path: tempPath(m.host.Path(d.ID), tempRestore, ""), point: "materialized",
			done: fmt.Sprintf("Restored %s to %s", d.Name, at.UTC().Format(timeFormat))}
		if err := m.pitr.Replicators.RestoreTo(ctx, d.ID, at, out.path); err != nil {
			snapdeck.RemoveDatabaseFiles(out.path)
			return prepared{}, err
		}
		if fi, err := os.Stat(out.path); err == nil {
			out.size = fi.Size()
		}
		return out, nil
	}
}

// createAtTime makes a new database holding database req.FromDatabase's
// content as of req.At, for Databases.Create: its record, placement and
// credentials in one insert, then a job writing the data. A time outside
// the window is refused as Invalid, and nothing is created. The caller
// records a refusal; the copy's outcome is recorded by the job.
func (m *Snapshots) createAtTime(ctx context.Context, actor string, req CreateRequest) (Created, error) {
	at := req.At
	target, err := m.pitrTarget(ctx, req.FromDatabase, at)
	if err != nil {
		return Created{}, err
	}
	out, err := m.insertNew(ctx, req)
	if err != nil {
		return out, err
	}
	d, dbID := out.Database, req.FromDatabase
	start := time.Now()
	j, err := m.cfg.Jobs.Start(ctx, snapdeck.Job{Kind: snapdeck.JobCreateFromSnapshot, DatabaseID: dbID, TargetID: d.ID, Actor: actor},
		func(ctx context.Context, p *job.Progress) error {
			p.Stage("Writing the data as of "+at.UTC().Format(timeFormat)+" into the new database", 0)
			tmp := tempPath(m.host.Path(d.ID), tempCreate, "")
			err := m.pitr.Replicators.RestoreTo(ctx, dbID, target, tmp)
			if err == nil {
				err = snapshot.Install(tmp, m.host.Path(d.ID))
			}
			snapdeck.RemoveDatabaseFiles(tmp)
			m.record(ctx, actor, activity.CreateAtTime, d.ID, "", err, time.Since(start), atTimeDetail(dbID, at))
			if err := m.copyEnded(ctx, d, err); err != nil {
				return err
			}
			p.Stage(fmt.Sprintf("Created %s from database %s as of %s", d.Name, dbID, at.UTC().Format(timeFormat)), 0)
			return nil
		})
	out.Job = j
	if err != nil {
		m.setStatus(d.ID, snapdeck.StatusFailed)
	}
	return out, err
}

// atTimeDetail is the activity detail of a database created as of a time.
func atTimeDetail(dbID string, at time.Time) string {
	return "from database " + dbID + " at " + at.UTC().Format(time.RFC3339Nano)
}

// copyEnded ends the job of a copy d with its outcome err: the database
// failed, or it runs, is told to the observer and is replicated if its
// plan has a window.
func (m *core) copyEnded(ctx context.Context, d snapdeck.Database, err error) error {
	if err != nil {
		m.setStatus(d.ID, snapdeck.StatusFailed)
		return err
	}
	m.setStatus(d.ID, snapdeck.StatusRunning)
	// A copy: the caller returns d as it was at the start, and the job
	// must not write to it meanwhile.
	d.Status = snapdeck.StatusRunning
	m.observer.DatabaseCreated(ctx, d)
	m.startPITR(ctx, d)
	return nil
}

// replicatorTables are pitr.Tables by lower-case name.
var replicatorTables = func() map[string]bool {
	m := map[string]bool{}
	for _, t := range pitr.Tables {
		m[strings.ToLower(t)] = true
	}
	return m
}()

// notReplicatorTable ends a query of sqlite_schema's names, leaving out the
// replicator's tables: the console's table lists never show them, and they
// do not make an empty database hold data.
var notReplicatorTable = func() string {
	quoted := make([]string, len(pitr.Tables))
	for i, t := range pitr.Tables {
		quoted[i] = "'" + t + "'"
	}
	return " AND name NOT IN (" + strings.Join(quoted, ", ") + ")"
}()

// replicatorTableChanged tells whether an authorizer action changes one of
// the replicator's tables (its rows, its definition, or by a trigger or
// index on it) or makes a table of its name, and which.
func replicatorTableChanged(action sqlite.AuthorizerActionCode, arg1, arg2 string) (string, bool) {
	var table string
	switch action {
	case sqlite.AuthInsert, sqlite.AuthUpdate, sqlite.AuthDelete, sqlite.AuthDropTable, sqlite.AuthCreateTable:
		table = arg1
	case sqlite.AuthAlterTable, sqlite.AuthCreateTrigger, sqlite.AuthCreateIndex, sqlite.AuthCreateTempTrigger:
		table = arg2
	default:
		return "", false
	}
	return table, replicatorTables[strings.ToLower(table)]
}

package database

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/durable"
	"github.com/snapdeck/snapdeck/internal/job"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/snapshot"
	"github.com/snapdeck/snapdeck/store"
)

// tempPurpose is why a file lives for a while next to a database file, in
// the databases directory. Its name says it: tempPath gives it, and Recover
// tells every purpose apart by parseTempName, so the two never disagree.
type tempPurpose string

const (
	// tempRestore is a snapshot's image written for a restore or an
	// overwrite, before it is swapped in.
	tempRestore tempPurpose = "restore"
	// tempCreate is a snapshot's image written for a new database.
	tempCreate tempPurpose = "create"
	// tempLoad is an uploaded file checked for a load.
	tempLoad tempPurpose = "load"
	// tempUndo is the replaced file a replace keeps, durably, until its
	// safety snapshot is captured from it (snapshot.InstallKeeping).
	tempUndo tempPurpose = "undo"
	// tempReplaced is the second name snapshot.Install gives the file it
	// replaces until it is removed (snapshot.ReplacedMarker).
	tempReplaced tempPurpose = "replaced"
)

// tempPurposes lists every purpose, for Recover.
var tempPurposes = []tempPurpose{tempRestore, tempCreate, tempLoad, tempUndo, tempReplaced}

// marker is what a file of this purpose has between its database file's
// name and its own id: ".undo-" is snapshot.UndoMarker and ".replaced-"
// snapshot.ReplacedMarker, as the snapshot engine names those files too.
func (p tempPurpose) marker() string { return "." + string(p) + "-" }

// tempPath names the file for purpose next to the database file dbPath: in
// its directory, so that it replaces the database by one atomic rename.
// An empty id is a fresh random one; a kept file is named after the
// safety snapshot that is captured from it.
func tempPath(dbPath string, purpose tempPurpose, id string) string {
	if id == "" {
		id = uuid.NewString()[:8]
	}
	return dbPath + purpose.marker() + id
}

// parseTempName tells from a file's name in the databases directory
// whether tempPath named it, and for which database, purpose and id. The
// -wal, -shm and -journal files SQLite makes next to a temporary file are
// the temporary file's own; they parse with its purpose, and the id keeps
// their suffix.
func parseTempName(name string) (dbID string, purpose tempPurpose, id string, ok bool) {
	for _, p := range tempPurposes {
		sep := dbFileExt + p.marker()
		if i := strings.Index(name, sep); i > 0 {
			return name[:i], p, name[i+len(sep):], true
		}
	}
	return "", "", "", false
}

// dbFileExt is the extension of a hosted database's file (Host.Path).
const dbFileExt = ".sqlite"

// replacement describes one overwrite of a database's data to replace:
// what marks it, what it is recorded as, and where its new data comes from.
type replacement struct {
	// door is the operation: "restore", "overwrite" or "load". The
	// crash tests stop it at door + ":" + a point of replace.
	door string
	// kind, status and action are its job's kind, the database's status
	// while it runs (restoring or loading) and its activity.
	kind   snapdeck.JobKind
	status snapdeck.Status
	action activity.Action
	// snapshotID is the job's snapshot: the one restored, if known.
	snapshotID string
	actor      string
	// detail is the activity's detail.
	detail string
	// safetyReason is the safety snapshot's reason.
	safetyReason string
	// swapping is the progress stage of the swap.
	swapping string
	// prepare yields the prepared, checked file to swap in.
	prepare preparer
	// held, when set, is a file prepared before replace was called (a
	// load's checked upload), which prepare yields: replace removes it
	// whatever happens, the job never started included.
	held string
	// seal, when set, runs after the swap and before the database serves
	// again: a load takes its Load snapshot there, so that it holds
	// exactly what was loaded.
	seal func(ctx context.Context, d snapdeck.Database, p *job.Progress) error
}

// preparer yields the prepared, checked file that replaces a database's
// data: written next to the database file, in its directory, whole and
// durable. replace removes it afterwards, swapped in or not.
type preparer func(ctx context.Context, d snapdeck.Database, p *job.Progress) (prepared, error)

// prepared is the file a preparer yields.
type prepared struct {
	// path is the file; size its size, for progress.
	path string
	size int64
	// point names the moment the file is ready, for the crash tests:
	// "materialized" for a snapshot's image, "prepared" for an upload.
	point string
	// done says what the replace did, e.g. "Restored x to the snapshot of
	// ...", as the job's last stage before its undo.
	done string
}

// fromSnapshot is the preparer that writes the image of the snapshot
// source yields (already known, or taken in the job) next to the database.
func (ss *Snapshots) fromSnapshot(source func(context.Context, *job.Progress) (store.SnapshotRecord, error)) preparer {
	return func(ctx context.Context, d snapdeck.Database, p *job.Progress) (prepared, error) {
		s, err := source(ctx, p)
		if err == nil {
			err = usable(s)
		}
		if err != nil {
			return prepared{}, err
		}
		p.Stage("Writing the snapshot's data", s.SizeBytes)
		out := prepared{path: tempPath(ss.host.Path(d.ID), tempRestore, ""), size: s.SizeBytes, point: "materialized",
			done: fmt.Sprintf("Restored %s to the snapshot of %s", d.Name, s.CreatedAt.Format(timeFormat))}
		if err := snapshot.Materialize(ctx, ss.cfg.Store, image(s), out.path, snapshot.ForRestore, p.Bytes); err != nil {
			os.Remove(out.path)
			return prepared{}, err
		}
		return out, nil
	}
}

// timeFormat is how a snapshot's time shows in reasons and messages.
const timeFormat = "2006-01-02 15:04:05 UTC"

// replace overwrites a database's data, in the background: restore,
// overwrite and load all go through it. It marks the running database
// r.status, then its job records a pending safety snapshot, has r.prepare
// yield the new file, swaps it in keeping the replaced file durably
// (snapshot.InstallKeeping), runs r.seal, sets the database running, and
// captures the safety snapshot from the kept file, which then goes.
//
// The database is set running exactly once: at the swap, or on a failure
// before it, when it keeps its old content and the unused safety snapshot
// is deleted. After the swap the next operation may already have begun,
// and its status must not be overwritten. The safety snapshot is captured
// after the swap, offline from the kept file: captured online before it,
// a restore of 1 GiB took 6.5-12.6 × a copy of the file (issue 14). A stop
// at any point leaves the old content, or the new one with the kept file,
// from which Recover captures the safety snapshot at the next start.
//
// It returns the database as the replace marked it and the job. The job
// records the outcome in the activity log; a refusal before the job is the
// caller's to record.
func (ss *Snapshots) replace(ctx context.Context, dbID string, r replacement) (snapdeck.Database, snapdeck.Job, error) {
	d, err := ss.db.TransitionDatabase(ctx, dbID, []snapdeck.Status{snapdeck.StatusRunning}, r.status)
	if err != nil {
		if r.held != "" {
			snapdeck.RemoveDatabaseFiles(r.held)
		}
		return snapdeck.Database{}, snapdeck.Job{}, err
	}
	d.SizeBytes = ss.host.Size(dbID)
	start := time.Now()
	j, err := ss.cfg.Jobs.Start(ctx, snapdeck.Job{Kind: r.kind, DatabaseID: dbID, SnapshotID: r.snapshotID, Actor: r.actor},
		func(ctx context.Context, p *job.Progress) error {
			err := ss.runReplace(ctx, d, r, p)
			ss.record(ctx, r.actor, r.action, dbID, p.Job().SnapshotID, err, time.Since(start), r.detail)
			return err
		})
	if err != nil {
		if r.held != "" {
			snapdeck.RemoveDatabaseFiles(r.held)
		}
		ss.setStatus(dbID, snapdeck.StatusRunning)
		return snapdeck.Database{}, j, err
	}
	return d, j, nil
}

// runReplace is replace's job.
func (ss *Snapshots) runReplace(ctx context.Context, d snapdeck.Database, r replacement, p *job.Progress) error {
	if r.held != "" {
		defer snapdeck.RemoveDatabaseFiles(r.held)
	}
	swapped := false
	defer func() {
		if !swapped {
			ss.setStatus(d.ID, snapdeck.StatusRunning)
		}
	}()
	// The base of the safety snapshot's deltas is the latest snapshot
	// before the replace, the one closest to the replaced data; a load's
	// Load snapshot is later and holds the new data.
	base := ss.latestRoot(ctx, d.ID)
	safety, err := ss.newSnapshot(ctx, d, snapdeck.SnapshotOnDemand, r.safetyReason)
	if err != nil {
		return err
	}
	defer func() {
		if !swapped {
			// Nothing was replaced, so there is nothing to undo.
			if derr := ss.db.DeleteSnapshot(context.Background(), safety.ID); derr != nil {
				ss.logger.Warn("remove the unused safety snapshot", "snapshot_id", safety.ID, "err", derr)
			}
		}
	}()
	p.SetTarget(safety.ID)
	in, err := r.prepare(ctx, d, p)
	if in.path != "" {
		// Once swapped in it has the database's name; this removes the
		// -wal and -shm a check may have left next to it.
		defer snapdeck.RemoveDatabaseFiles(in.path)
	}
	if err != nil {
		return err
	}
	fault(r.door + ":" + in.point)
	p.StageInBackground(r.swapping, in.size)
	undo := tempPath(ss.host.Path(d.ID), tempUndo, safety.ID)
	l := ss.lock(d.ID)
	l.Lock()
	// Litestream holds the WAL open: it stops, after a last upload, for
	// the swap, and goes on over the new file with the same history, so
	// that a restore to a time before the swap gives the old content. It
	// stops once every other connection is closed, so that its last
	// upload holds every commit: the history then ends on the replaced
	// file, and its base after the swap need hold only the pages the new
	// file changes (pitr.Replicators.StartAfterSwap). Its connection,
	// open until then, keeps the WAL from the pools' last close.
	stopped := false
	err = ss.host.Replace(ctx, d.ID, in.path, func() {
		ss.stopPITR(ctx, d.ID)
		stopped = true
	}, func(tmpPath, dbPath string) error {
		_, err := snapshot.InstallKeeping(tmpPath, dbPath, undo)
		return err
	})
	if !stopped {
		// The pools did not close: it stops now, as it must before a
		// start, and the database keeps its file.
		ss.stopPITR(ctx, d.ID)
	}
	if err == nil {
		ss.startPITRAfterSwap(ctx, d, undo)
	} else {
		ss.startPITR(ctx, d)
	}
	l.Unlock()
	if err != nil {
		return err
	}
	swapped = true
	ss.logger.Info("database replaced", "database_id", d.ID, "operation", r.door, "user", r.actor, "bytes", in.size)
	var sealErr error
	if r.seal != nil {
		sealErr = r.seal(ctx, d, p)
	}
	ss.setStatus(d.ID, snapdeck.StatusRunning)
	fault(r.door + ":swapped")
	if err := ss.captureUndo(ctx, &safety, undo, base, r.door, p); err != nil {
		return errors.Join(sealErr, err)
	}
	if sealErr != nil {
		return sealErr
	}
	p.Stage(fmt.Sprintf("%s. To undo, restore the safety snapshot %q taken at %s.",
		in.done, safety.Reason, safety.CreatedAt.Format(timeFormat)), in.size)
	return nil
}

// latestRoot is the root of the database's latest completed snapshot, the
// base of a capture's deltas; "" when it has none.
func (ss *Snapshots) latestRoot(ctx context.Context, dbID string) string {
	prev, err := ss.db.LatestCompletedSnapshot(ctx, dbID)
	if err == nil {
		return prev.Root
	}
	if snapdeck.ErrorCode(err) != snapdeck.NotFound {
		ss.logger.Warn("find the base of a snapshot", "database_id", dbID, "err", err)
	}
	return ""
}

// captureUndo takes the safety snapshot rec from the replaced file kept at
// undo, with base as its deltas' base, then removes the file. On failure
// the file stays, so the undo is not lost: the error names it, and the next
// start tries again. door names the operation for the crash tests.
func (ss *Snapshots) captureUndo(ctx context.Context, rec *store.SnapshotRecord, undo, base, door string, p *job.Progress) error {
	var size int64
	if fi, err := os.Stat(undo); err == nil {
		size = fi.Size()
	}
	var progress snapshot.Progress
	if p != nil {
		p.Stage("Taking the safety snapshot of the replaced data", size)
		progress = p.Bytes
	}
	err := ss.captureWithBase(ctx, rec, undo, base, progress)
	snapshot.ForgetFile(undo)
	if err != nil {
		return fmt.Errorf("the data was replaced, but its safety snapshot failed; the replaced data is kept in %s until it succeeds at the next start: %w", undo, err)
	}
	fault(door + ":safety-captured")
	if door == "recover" {
		return removeKept(undo)
	}
	// The safety snapshot is durable, so the kept file may go; a job
	// need not wait for that: dropping a GiB file from the page cache and
	// the file system takes about a third of a second on the benchmark
	// machine (see snapshot.Install). A stop before it is gone leaves a
	// kept file whose safety snapshot is completed, which Recover removes.
	id := rec.ID
	ss.background.Go(func() {
		fault(door + ":removing-kept")
		if err := removeKept(undo); err != nil {
			ss.logger.Warn("remove the replaced data kept for a safety snapshot", "snapshot_id", id, "err", err)
		}
	})
	return nil
}

// removeKept removes a kept replaced file once its safety snapshot is
// durable, with the files SQLite made next to it.
func removeKept(undo string) error {
	snapdeck.RemoveDatabaseFiles(undo)
	return durable.SyncDir(filepath.Dir(undo))
}

// recoverUndo finishes the safety snapshots of replaces that a stop
// interrupted. A kept replaced file (tempUndo) whose safety snapshot is not
// completed is either still the database's own file (the stop came before
// the swap: nothing was replaced, the second name goes) or the only copy of
// the replaced data (after the swap: the safety snapshot is captured from
// it now, before anything serves, and only then is it removed).
func (ss *Snapshots) recoverUndo(ctx context.Context) error {
	entries, err := os.ReadDir(ss.host.Dir())
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		dbID, purpose, sid, ok := parseTempName(e.Name())
		if !ok || purpose != tempUndo || strings.HasSuffix(sid, "-wal") || strings.HasSuffix(sid, "-shm") || strings.HasSuffix(sid, "-journal") {
			continue
		}
		undo := filepath.Join(ss.host.Dir(), e.Name())
		rec, err := ss.db.FindSnapshot(ctx, sid)
		uf, uerr := os.Stat(undo)
		df, derr := os.Stat(ss.host.Path(dbID))
		switch {
		case err == nil && rec.Status == snapdeck.SnapshotCompleted,
			snapdeck.ErrorCode(err) == snapdeck.NotFound,
			uerr == nil && derr == nil && os.SameFile(uf, df):
			snapdeck.RemoveDatabaseFiles(undo)
			if err == nil && rec.Status != snapdeck.SnapshotCompleted {
				errs = append(errs, ss.db.DeleteSnapshot(ctx, sid)) // nothing was replaced: no undo to keep
			}
			continue
		case err != nil:
			errs = append(errs, err)
			continue
		}
		ss.logger.Warn("a restore, overwrite or load was stopped after its swap; taking its safety snapshot from the replaced data", "database_id", dbID, "snapshot_id", sid)
		rec.Status, rec.Error = snapdeck.SnapshotPending, ""
		if err := ss.captureUndo(ctx, &rec, undo, ss.latestRoot(ctx, dbID), "recover", nil); err != nil {
			ss.logger.Error("safety snapshot of a replace stopped after its swap", "database_id", dbID, "snapshot_id", sid, "err", err)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeTempFiles removes the temporary files a stop left in the databases
// directory, of every purpose but the kept replaced files, which are
// recoverUndo's.
func (ss *Snapshots) removeTempFiles() error {
	entries, err := os.ReadDir(ss.host.Dir())
	if err != nil {
		return nil // no databases directory yet: nothing left
	}
	var errs []error
	for _, e := range entries {
		if _, purpose, _, ok := parseTempName(e.Name()); ok && purpose != tempUndo {
			errs = append(errs, os.Remove(filepath.Join(ss.host.Dir(), e.Name())))
		}
	}
	return errors.Join(errs...)
}

package database

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/dump"
	"github.com/snapdeck/snapdeck/internal/job"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/snapshot"
	"github.com/snapdeck/snapdeck/internal/snapstore"
	"github.com/snapdeck/snapdeck/store"
)

// SnapshotConfig configures the Snapshots service: Store and Jobs are
// required.
type SnapshotConfig struct {
	Store    *snapstore.Store
	Jobs     *job.Runner
	Policies map[snapdeck.Plan]snapdeck.PlanPolicy
	// TmpDir holds verification scratch files; ExportDir the prepared
	// .dump files served for download.
	TmpDir, ExportDir string
	// ExportTTL is how long a prepared export is kept.
	ExportTTL time.Duration
	// ExportCacheSize caps the bytes prepared exports take in ExportDir:
	// the oldest go first, and none while it is being downloaded. Zero
	// means DefaultExportCacheSize.
	ExportCacheSize int64
	// Engine and SQLiteVersion go into every .dump manifest.
	Engine, SQLiteVersion string
	Now                   func() time.Time
	// ImportChecks bounds how many uploads Load checks at once;
	// zero means DefaultImportChecks.
	ImportChecks int
}

// Snapshots is the service of everything that reads or writes a
// database's data as a whole: taking snapshots, restoring, overwriting
// and loading (one replace pipeline), exporting, copying into a new
// database, deleting and reclaiming snapshots, and finding them and their
// jobs. Each action takes its actor and records itself in the activity
// log, refusals included, whichever door asked.
type Snapshots struct {
	*core
	cfg SnapshotConfig
	// locks hold per database: captures share it, replacing the file
	// takes it alone, so a file is never swapped under a capture.
	locks sync.Map // database id -> *sync.RWMutex
	// preparing holds the exports being written, by snapshot id, so
	// that a second download follows the first's preparation.
	preparingMu sync.Mutex
	preparing   map[string]*preparation
	// exports holds the prepared .dump files.
	exports *exportCache
	// verifying bounds background verification to one at a time: it
	// rebuilds whole images and should not starve captures.
	verifying chan struct{}
	loads     loadState
	// background is the work a job leaves behind when it ends (the
	// removal of a replaced file kept for its safety snapshot); Close
	// waits for it.
	background sync.WaitGroup
}

// Close waits for the work the jobs left running in the background, until
// ctx ends. The console calls it once its jobs have stopped, so that
// nothing is left half done by the service when the process exits;
// whatever a stop still interrupts, Recover finishes at the next start.
func (ss *Snapshots) Close(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		ss.background.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// NewSnapshots returns the Snapshots service over its dependencies, ready
// to serve: the snapshot scratch and export directories exist once it
// returns.
func NewSnapshots(cfg Config) (*Snapshots, error) {
	c, err := newCore(cfg)
	if err != nil {
		return nil, err
	}
	sc := cfg.Snapshots
	if sc.Store == nil || sc.Jobs == nil {
		return nil, errors.New("database: Snapshots needs its Snapshots.Store and Snapshots.Jobs")
	}
	if sc.Policies == nil {
		sc.Policies = snapdeck.DefaultPolicies()
	}
	if sc.Now == nil {
		sc.Now = time.Now
	}
	if sc.ExportTTL == 0 {
		sc.ExportTTL = 24 * time.Hour
	}
	if sc.ExportCacheSize == 0 {
		sc.ExportCacheSize = DefaultExportCacheSize
	}
	for _, d := range []string{sc.TmpDir, sc.ExportDir} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, err
		}
	}
	if sc.ImportChecks <= 0 {
		sc.ImportChecks = DefaultImportChecks
	}
	ss := &Snapshots{core: c, cfg: sc, verifying: make(chan struct{}, 1), preparing: map[string]*preparation{},
		exports: &exportCache{dir: sc.ExportDir, limit: sc.ExportCacheSize, ttl: sc.ExportTTL, now: sc.Now,
			logger: c.logger, leases: map[string]int{}}}
	ss.loads.checks = make(chan struct{}, sc.ImportChecks)
	if r := cfg.PITR.Replicators; r != nil {
		// Once, here: a commit of user SQL is read into the history.
		cfg.Host.OnCommit(r.Committed)
	}
	return ss, nil
}

// Policy returns a plan's cadence and retention.
func (ss *Snapshots) Policy(plan snapdeck.Plan) snapdeck.PlanPolicy {
	return ss.Policies()[plan]
}

// Policies returns every plan's cadence and retention as this console runs
// them: the Config's, or SPEC's defaults when it gave none.
func (ss *Snapshots) Policies() map[snapdeck.Plan]snapdeck.PlanPolicy {
	return ss.cfg.Policies
}

func (ss *Snapshots) lock(id string) *sync.RWMutex {
	l, _ := ss.locks.LoadOrStore(id, &sync.RWMutex{})
	return l.(*sync.RWMutex)
}

func (ss *Snapshots) now() time.Time { return ss.cfg.Now().UTC() }

// image turns a stored snapshot into the engine's description of it.
func image(s store.SnapshotRecord) snapshot.Image {
	return snapshot.Image{Root: s.Root, Size: s.SizeBytes, SHA256: s.SHA256, PageSize: s.PageSize, Pages: s.Pages}
}

// newSnapshot records a pending snapshot of d.
func (ss *Snapshots) newSnapshot(ctx context.Context, d snapdeck.Database, typ snapdeck.SnapshotType, reason string) (store.SnapshotRecord, error) {
	now := ss.now()
	rec := store.SnapshotRecord{Snapshot: snapdeck.Snapshot{
		ID: uuid.NewString(), DatabaseID: d.ID, Type: typ, Reason: reason, Status: snapdeck.SnapshotPending,
		CreatedAt: now, ExpiresAt: now.Add(ss.Policy(d.Plan).Retention),
	}}
	return rec, ss.db.CreateSnapshot(ctx, &rec)
}

// capture takes the snapshot rec of its database and records the outcome.
// The snapshot is listed completed only after Capture returned, that is
// once all of its data is durable. It holds the database's lock shared,
// so that its file is not swapped under it.
func (ss *Snapshots) capture(ctx context.Context, rec *store.SnapshotRecord, progress snapshot.Progress) error {
	// The latest completed snapshot is the base for deltas of the pages
	// changed since; without one, pages are stored whole.
	base := ss.latestRoot(ctx, rec.DatabaseID)
	l := ss.lock(rec.DatabaseID)
	l.RLock()
	defer l.RUnlock()
	return ss.captureWithBase(ctx, rec, ss.host.Path(rec.DatabaseID), base, progress)
}

// captureWithBase is capture from the file at path (the database's own,
// or the replaced file a replace keeps for its safety snapshot), with the
// root of the snapshot whose pages are the base of the deltas; "" stores
// pages whole. It takes no lock: capture holds the database's; the kept
// replaced file of captureUndo is no longer the database's file, and
// nothing swaps or writes it.
func (ss *Snapshots) captureWithBase(ctx context.Context, rec *store.SnapshotRecord, path, baseRoot string, progress snapshot.Progress) error {
	rec.Status = snapdeck.SnapshotInProgress
	if err := ss.db.UpdateSnapshot(ctx, *rec); err != nil {
		return err
	}
	start := time.Now()
	img, err := snapshot.CaptureWithBase(ctx, path, ss.cfg.Store, baseRoot, progress)
	rec.CompletedAt = ss.now()
	if err != nil {
		rec.Status = snapdeck.SnapshotFailed
		rec.Error = snapdeck.ErrorMessage(err)
		if uerr := ss.db.UpdateSnapshot(context.Background(), *rec); uerr != nil {
			ss.logger.Error("record failed snapshot", "snapshot_id", rec.ID, "err", uerr)
		}
		ss.logger.Error("snapshot failed", "database_id", rec.DatabaseID, "snapshot_id", rec.ID, "err", err)
		ss.snapshotEnded(rec.Snapshot, start)
		return fmt.Errorf("snapshot of %s: %w", rec.DatabaseID, err)
	}
	rec.Status = snapdeck.SnapshotCompleted
	rec.Root, rec.SizeBytes, rec.SHA256, rec.PageSize, rec.Pages = img.Root, img.Size, img.SHA256, img.PageSize, img.Pages
	if err := ss.db.UpdateSnapshot(context.Background(), *rec); err != nil {
		return err
	}
	ss.logger.Info("snapshot completed", "database_id", rec.DatabaseID, "snapshot_id", rec.ID, "type", rec.Type,
		"bytes", img.Size, "new_bytes", img.NewBytes, "duration", time.Since(start))
	ss.snapshotEnded(rec.Snapshot, start)
	ss.verifyLater(*rec)
	return nil
}

// verifyLater rebuilds the snapshot's image in the background and checks
// its SHA-256 and integrity, recording the outcome on the snapshot.
func (ss *Snapshots) verifyLater(rec store.SnapshotRecord) {
	_, err := ss.cfg.Jobs.Start(context.Background(), snapdeck.Job{Kind: snapdeck.JobVerify, DatabaseID: rec.DatabaseID,
		SnapshotID: rec.ID, Actor: "system"}, func(ctx context.Context, p *job.Progress) error {
		select {
		case ss.verifying <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		defer func() { <-ss.verifying }()
		p.Stage("Verifying snapshot", rec.SizeBytes)
		err := snapshot.Verify(ctx, ss.cfg.Store, image(rec), ss.cfg.TmpDir)
		if errors.Is(err, context.Canceled) {
			return err
		}
		cur, ferr := ss.db.FindSnapshot(context.Background(), rec.ID)
		if ferr != nil {
			return ferr // deleted meanwhile: nothing to record
		}
		cur.Verified, cur.VerifiedAt = err == nil, ss.now()
		if err != nil {
			cur.VerifyError = snapdeck.ErrorMessage(err)
			ss.logger.Error("SNAPSHOT FAILED VERIFICATION", "database_id", rec.DatabaseID, "snapshot_id", rec.ID, "err", err)
		}
		if uerr := ss.db.UpdateSnapshot(context.Background(), cur); uerr != nil {
			return uerr
		}
		return err
	})
	if err != nil {
		ss.logger.Warn("schedule verification", "snapshot_id", rec.ID, "err", err)
	}
}

// TakeSnapshot starts a snapshot of a running database in the background
// and returns its pending record and the job taking it. A refusal is
// recorded in the activity log here, the snapshot's outcome by the job.
func (ss *Snapshots) TakeSnapshot(ctx context.Context, id string, typ snapdeck.SnapshotType, reason, actor string) (snapdeck.Snapshot, snapdeck.Job, error) {
	s, j, err := ss.takeSnapshot(ctx, id, typ, reason, actor)
	if err != nil {
		ss.record(ctx, actor, activity.SnapshotTake, id, s.ID, err, 0, reason)
	}
	return s, j, err
}

func (ss *Snapshots) takeSnapshot(ctx context.Context, id string, typ snapdeck.SnapshotType, reason, actor string) (snapdeck.Snapshot, snapdeck.Job, error) {
	d, err := ss.findDatabase(ctx, id)
	if err != nil {
		return snapdeck.Snapshot{}, snapdeck.Job{}, err
	}
	if d.Status != snapdeck.StatusRunning {
		return snapdeck.Snapshot{}, snapdeck.Job{}, &snapdeck.Error{Code: snapdeck.Busy, Reason: "ongoing-database-operation",
			Message: fmt.Sprintf("The database is %s; take the snapshot once it is running again.", d.Status)}
	}
	rec, err := ss.newSnapshot(ctx, d, typ, reason)
	if err != nil {
		return snapdeck.Snapshot{}, snapdeck.Job{}, err
	}
	// The job changes rec as it runs; the caller gets the record as it was
	// when the job started.
	pending := rec.Snapshot
	start := time.Now()
	j, err := ss.cfg.Jobs.Start(ctx, snapdeck.Job{Kind: snapdeck.JobSnapshot, DatabaseID: id, SnapshotID: rec.ID, Actor: actor},
		func(ctx context.Context, p *job.Progress) error {
			p.Stage("Taking snapshot", ss.host.Size(id))
			err := ss.capture(ctx, &rec, p.Bytes)
			ss.record(ctx, actor, activity.SnapshotTake, id, rec.ID, err, time.Since(start), reason)
			return err
		})
	if err != nil {
		rec.Status, rec.Error = snapdeck.SnapshotFailed, snapdeck.ErrorMessage(err)
		ss.db.UpdateSnapshot(context.Background(), rec)
		return rec.Snapshot, j, err
	}
	return pending, j, nil
}

// Snapshot takes a snapshot now and returns when it is durable; the
// scheduler uses it.
func (ss *Snapshots) Snapshot(ctx context.Context, id string, typ snapdeck.SnapshotType, reason, actor string) (snapdeck.Snapshot, error) {
	d, err := ss.db.FindDatabase(ctx, id)
	if err != nil {
		return snapdeck.Snapshot{}, err
	}
	rec, err := ss.newSnapshot(ctx, d, typ, reason)
	if err != nil {
		return snapdeck.Snapshot{}, err
	}
	start := time.Now()
	err = ss.capture(ctx, &rec, nil)
	ss.record(ctx, actor, activity.SnapshotTake, id, rec.ID, err, time.Since(start), reason)
	return rec.Snapshot, err
}

// FindSnapshot returns a snapshot of the given database, or of any
// database that exists when dbID is "".
func (ss *Snapshots) FindSnapshot(ctx context.Context, dbID, sid string) (snapdeck.Snapshot, error) {
	s, err := ss.findSnapshot(ctx, dbID, sid)
	return s.Snapshot, err
}

func (ss *Snapshots) findSnapshot(ctx context.Context, dbID, sid string) (store.SnapshotRecord, error) {
	s, err := ss.findLiveSnapshot(ctx, sid)
	if err != nil {
		return s, err
	}
	if dbID != "" && s.DatabaseID != dbID {
		return s, &snapdeck.Error{Code: snapdeck.NotFound, Reason: "snapshot-not-found",
			Message: fmt.Sprintf("Snapshot %s does not belong to database %s.", sid, dbID)}
	}
	return s, nil
}

// findLiveSnapshot returns a snapshot of any database that exists. The
// snapshots of a deleted database go with it; one still recorded (a
// delete under way) is out of reach all the same, as NotFound.
func (ss *Snapshots) findLiveSnapshot(ctx context.Context, sid string) (store.SnapshotRecord, error) {
	s, err := ss.db.FindSnapshot(ctx, sid)
	if err != nil {
		return s, err
	}
	d, err := ss.db.FindDatabase(ctx, s.DatabaseID)
	if snapdeck.ErrorCode(err) == snapdeck.NotFound || err == nil && d.Status == snapdeck.StatusDeleting {
		return store.SnapshotRecord{}, &snapdeck.Error{Code: snapdeck.NotFound, Reason: "snapshot-not-found",
			Message: fmt.Sprintf("Snapshot %s is of a database that was deleted; its snapshots went with it.", sid)}
	}
	return s, err
}

// FindSnapshots lists a database's snapshots, newest first, with the total
// matching the filter. A free database shows only its latest completed
// snapshot, as its plan promises.
func (ss *Snapshots) FindSnapshots(ctx context.Context, f snapdeck.SnapshotFilter) ([]snapdeck.Snapshot, int, error) {
	d, err := ss.db.FindDatabase(ctx, f.DatabaseID)
	if err != nil {
		return nil, 0, err
	}
	if d.Plan == snapdeck.PlanFree {
		latest, err := ss.db.LatestCompletedSnapshot(ctx, d.ID)
		if snapdeck.ErrorCode(err) == snapdeck.NotFound {
			return nil, 0, nil
		}
		if err != nil {
			return nil, 0, err
		}
		if (f.Type != "" && latest.Type != f.Type) || (!f.From.IsZero() && latest.CreatedAt.Before(f.From)) ||
			(!f.To.IsZero() && !latest.CreatedAt.Before(f.To)) || f.Offset > 0 {
			return nil, 0, nil
		}
		return []snapdeck.Snapshot{latest.Snapshot}, 1, nil
	}
	recs, err := ss.db.FindSnapshots(ctx, f)
	if err != nil {
		return nil, 0, err
	}
	total, err := ss.db.CountSnapshots(ctx, f)
	if err != nil {
		return nil, 0, err
	}
	out := make([]snapdeck.Snapshot, len(recs))
	for i, r := range recs {
		out[i] = r.Snapshot
	}
	return out, total, nil
}

// usable checks a snapshot can be restored, exported or copied: the one
// "not exportable" rule of both doors. It is Invalid, as Aura answers 400
// for a snapshot it cannot use (docs/api.md).
func usable(s store.SnapshotRecord) error {
	return notExportable(s, "Snapshot", "")
}

// usableSource is usable for a snapshot named as the source of a new or
// overwritten database, with the field that named it.
func usableSource(s store.SnapshotRecord) error {
	return notExportable(s, "Source snapshot", "source_snapshot_id")
}

func notExportable(s store.SnapshotRecord, what, field string) error {
	var why string
	switch {
	case s.Status != snapdeck.SnapshotCompleted:
		why = fmt.Sprintf("it is %s, not completed", s.Status)
	case s.VerifyError != "":
		why = fmt.Sprintf("it failed verification (%s) and cannot be trusted", s.VerifyError)
	default:
		return nil
	}
	return &snapdeck.Error{Code: snapdeck.Invalid, Reason: "snapshot-not-exportable", Field: field,
		Message: fmt.Sprintf("%s %s is not exportable: %s.", what, s.ID, why)}
}

// Restore overwrites a database with one of its snapshots, in the
// background (replace): the snapshot's image materialised next to the file
// and swapped in atomically, then a safety On-demand snapshot of the
// replaced data. It returns the database as it now is, restoring, and the
// job. A refusal is recorded in the activity log here, the restore's
// outcome by the job.
func (ss *Snapshots) Restore(ctx context.Context, dbID, sid, actor string) (snapdeck.Database, snapdeck.Job, error) {
	var s store.SnapshotRecord
	var d snapdeck.Database
	var j snapdeck.Job
	_, err := ss.findDatabase(ctx, dbID)
	if err == nil {
		s, err = ss.findSnapshot(ctx, dbID, sid)
	}
	if err == nil {
		d, j, err = ss.restore(ctx, dbID, s, actor)
	}
	if err != nil {
		ss.recordRefusal(ctx, actor, activity.Restore, dbID, sid, err)
	}
	return d, j, err
}

// RestoreConfirm is the text the console's restore form must be sent,
// exactly, for the restore to proceed.
const RestoreConfirm = "RESTORE"

// errNotConfirmed refuses a restore whose confirmation is not exactly
// RestoreConfirm, on the field "confirm".
func errNotConfirmed() error {
	return snapdeck.FieldError("confirm", "Type %s in capital letters, exactly, to continue. Nothing was changed.", RestoreConfirm)
}

// RestoreTyped is Restore behind the console's confirmation: it proceeds
// only when typed is exactly RestoreConfirm. Anything else is refused
// (Invalid, on the field "confirm") and recorded, and nothing changes.
func (ss *Snapshots) RestoreTyped(ctx context.Context, dbID, sid, typed, actor string) (snapdeck.Database, snapdeck.Job, error) {
	if typed != RestoreConfirm {
		err := errNotConfirmed()
		ss.recordRefusal(ctx, actor, activity.Restore, dbID, sid, err)
		return snapdeck.Database{}, snapdeck.Job{}, err
	}
	return ss.Restore(ctx, dbID, sid, actor)
}

// recordRefusal records an action that ended before its work began, with
// the outcome the error's code gives.
func (ss *Snapshots) recordRefusal(ctx context.Context, actor string, action activity.Action, dbID, sid string, err error) {
	ss.record(ctx, actor, action, dbID, sid, err, 0, "")
}

func (ss *Snapshots) restore(ctx context.Context, dbID string, s store.SnapshotRecord, actor string) (snapdeck.Database, snapdeck.Job, error) {
	if err := usable(s); err != nil {
		return snapdeck.Database{}, snapdeck.Job{}, err
	}
	return ss.replace(ctx, dbID, replacement{door: "restore", kind: snapdeck.JobRestore, status: snapdeck.StatusRestoring,
		action: activity.Restore, snapshotID: s.ID, actor: actor, detail: "from snapshot of " + s.CreatedAt.Format(timeFormat),
		safetyReason: "Before restore of " + s.CreatedAt.Format(timeFormat), swapping: "Swapping in the restored data",
		prepare: ss.fromSnapshot(func(context.Context, *job.Progress) (store.SnapshotRecord, error) { return s, nil })})
}

// faultHook, when set, is called at named points of a replace (restore,
// overwrite, load); the crash tests set it in a child process to die there.
var faultHook atomic.Pointer[func(point string)]

func fault(point string) {
	if f := faultHook.Load(); f != nil {
		(*f)(point)
	}
}

// createFromSnapshot makes a new database holding the data of the
// snapshot req names, for Databases.Create: its record, placement and
// credentials in one insert, then a job writing the data. The new
// database then gets its own "Database created" snapshot, which shares
// every page with the source in the snapshot store. The caller records a
// refusal; the copy's outcome is recorded by the job.
func (ss *Snapshots) createFromSnapshot(ctx context.Context, actor string, req CreateRequest) (Created, error) {
	s, err := ss.findSnapshot(ctx, req.FromDatabase, req.FromSnapshot)
	if err != nil {
		return Created{}, err
	}
	if err := usableSource(s); err != nil {
		return Created{}, err
	}
	out, err := ss.insertNew(ctx, req)
	if err != nil {
		return out, err
	}
	d := out.Database
	start := time.Now()
	j, err := ss.cfg.Jobs.Start(ctx, snapdeck.Job{Kind: snapdeck.JobCreateFromSnapshot, DatabaseID: s.DatabaseID,
		SnapshotID: s.ID, TargetID: d.ID, Actor: actor}, func(ctx context.Context, p *job.Progress) error {
		err := ss.materializeNew(ctx, d, s, p)
		ss.record(ctx, actor, activity.CreateFromSnap, d.ID, s.ID, err, time.Since(start), "from database "+s.DatabaseID)
		return ss.copyEnded(ctx, d, err)
	})
	out.Job = j
	if err != nil {
		ss.setStatus(d.ID, snapdeck.StatusFailed)
		return Created{Database: d, Job: j}, err
	}
	return out, nil
}

func (ss *Snapshots) materializeNew(ctx context.Context, d snapdeck.Database, s store.SnapshotRecord, p *job.Progress) error {
	p.Stage("Writing the snapshot's data into the new database", s.SizeBytes)
	tmp := tempPath(ss.host.Path(d.ID), tempCreate, "")
	defer os.Remove(tmp)
	if err := snapshot.Materialize(ctx, ss.cfg.Store, image(s), tmp, snapshot.ForNewDatabase, p.Bytes); err != nil {
		return err
	}
	return snapshot.Install(tmp, ss.host.Path(d.ID))
}

// Export returns the snapshot's .dump opened for one download. A prepared
// one (fresh, from an earlier export) is served whole; otherwise it is
// prepared by a background job with progress, and the download follows
// the file as the job writes it, so that preparing and downloading
// overlap instead of one waiting for the other. The job runs on its own
// context: a download that stops does not stop it, and the finished file
// is kept for the next download. The caller closes the export when the
// download ends; until then its file is kept, whatever the export cache's
// size. Every export, refusals included, is recorded in the activity log.
func (ss *Snapshots) Export(ctx context.Context, dbID, sid, actor string) (*Export, error) {
	d, err := ss.findDatabase(ctx, dbID)
	var s store.SnapshotRecord
	if err == nil {
		s, err = ss.findSnapshot(ctx, dbID, sid)
	}
	if err == nil {
		err = usable(s)
	}
	if err != nil {
		ss.recordRefusal(ctx, actor, activity.SnapshotExport, dbID, sid, err)
		return nil, err
	}
	name := fmt.Sprintf("%s-%s.dump", d.Name, s.CreatedAt.UTC().Format("20060102T150405Z"))
	file := s.ID + dumpExt
	ss.preparingMu.Lock()
	defer ss.preparingMu.Unlock()
	if prep, ok := ss.preparing[s.ID]; ok && prep.joinable() {
		ss.record(ctx, actor, activity.SnapshotExport, dbID, sid, nil, 0, name)
		return prep.follow(name)
	}
	if e, ok := ss.exports.open(file, name); ok {
		ss.record(ctx, actor, activity.SnapshotExport, dbID, sid, nil, 0, name)
		return e, nil
	}
	// The image's size bounds the .dump's: it is the image compressed
	// with zstd. Room is made before the work, so the disk does not hold
	// both the old exports and the new one.
	ss.exports.makeRoom(s.SizeBytes)
	tmp, err := os.CreateTemp(ss.cfg.ExportDir, ".export-*")
	if err != nil {
		return nil, err
	}
	prep := newPreparation(tmp, ss.exports, file)
	e, err := prep.follow(name)
	if err != nil {
		prep.close()
		os.Remove(tmp.Name())
		return nil, err
	}
	start := time.Now()
	// The job is recorded with its stage, rather than a Stage after: one
	// write to the console's store less before the download's first byte.
	j, err := ss.cfg.Jobs.Start(ctx, snapdeck.Job{Kind: snapdeck.JobExport, DatabaseID: dbID, SnapshotID: sid, Actor: actor,
		Message: "Preparing export", TotalBytes: s.SizeBytes},
		func(ctx context.Context, p *job.Progress) error {
			err := ss.writeDump(ctx, d, s, prep, name, p)
			ss.record(ctx, actor, activity.SnapshotExport, dbID, sid, err, time.Since(start), name)
			ss.preparingMu.Lock()
			// A download that came after this preparation gave its cached
			// copy up has a preparation of its own under the same ID.
			if ss.preparing[s.ID] == prep {
				delete(ss.preparing, s.ID)
			}
			ss.preparingMu.Unlock()
			// After a failure the file goes, but only now: until the
			// preparation left the map, a new download could find it
			// there and open the file by this name. Once installed, the
			// file has another name.
			os.Remove(tmp.Name())
			prep.end(err)
			return err
		})
	if err != nil {
		e.Close()
		prep.close()
		os.Remove(tmp.Name())
		return nil, err
	}
	prep.jobID, e.JobID = j.ID, j.ID
	ss.preparing[s.ID] = prep
	return e, nil
}

// writeDump writes the snapshot's .dump into the preparation's file, makes
// it durable and installs it in the export cache.
func (ss *Snapshots) writeDump(ctx context.Context, d snapdeck.Database, s store.SnapshotRecord, prep *preparation, name string, p *job.Progress) error {
	defer prep.close() // the job removes the file after a failure
	img, err := snapshot.OpenImage(ctx, ss.cfg.Store, image(s))
	if err != nil {
		return err
	}
	defer img.Close()
	man := dump.Manifest{FormatVersion: dump.FormatVersion, DatabaseName: d.Name, DatabaseID: d.ID, SnapshotID: s.ID,
		SnapshotType: string(s.Type), SnapshotTime: s.CreatedAt, Engine: ss.cfg.Engine, SQLiteVersion: ss.cfg.SQLiteVersion,
		Size: s.SizeBytes, SHA256: s.SHA256, PageSize: s.PageSize}
	counted := &countingReader{r: img, progress: p}
	// A verified snapshot's image was rebuilt and hashed whole after its
	// capture, and OpenImage checks every page it reads against its hash
	// and the snapshot's tree: hashing it whole again only costs time.
	write := dump.Write
	if s.Verified {
		write = dump.WriteChecked
	}
	if err := write(ctx, prep, man, counted); err != nil {
		return err
	}
	// The downloads following the export have it whole once it is handed
	// over; making the cached copy durable is not theirs to wait for. A
	// copy given up is not an export that failed: it is not kept.
	if err := prep.complete(); err != nil {
		ss.logger.Info("prepared export not kept", "database_id", d.ID, "snapshot_id", s.ID, "err", err)
		return nil
	}
	e, err := prep.install(name)
	if err != nil {
		return err
	}
	return e.Close()
}

// countingReader reports bytes read as job progress (which Progress
// records in the background, a few times a second).
type countingReader struct {
	r        io.Reader
	n        int64
	progress *job.Progress
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.add(n)
	return n, err
}

func (c *countingReader) add(n int) {
	c.n += int64(n)
	c.progress.Bytes(c.n, c.progress.Job().TotalBytes)
}

// WriteTo hands the image's runs of pages to w as the image reader holds
// them (dump.Write takes this path), without copying them into a buffer
// first.
func (c *countingReader) WriteTo(w io.Writer) (int64, error) {
	wt, ok := c.r.(io.WriterTo)
	if !ok {
		return io.Copy(w, struct{ io.Reader }{c})
	}
	return wt.WriteTo(countingWriter{w: w, c: c})
}

// countingWriter counts what passes through it into c.
type countingWriter struct {
	w io.Writer
	c *countingReader
}

func (cw countingWriter) Write(b []byte) (int, error) {
	n, err := cw.w.Write(b)
	cw.c.add(n)
	return n, err
}

// DeleteSnapshot removes a snapshot's record; the storage it alone used is
// reclaimed by the next Reclaim. The latest completed snapshot of a live
// database is kept.
func (ss *Snapshots) DeleteSnapshot(ctx context.Context, sid string) error {
	s, err := ss.db.FindSnapshot(ctx, sid)
	if err != nil {
		return err
	}
	if s.Status == snapdeck.SnapshotCompleted {
		latest, err := ss.db.LatestCompletedSnapshot(ctx, s.DatabaseID)
		if err == nil && latest.ID == s.ID {
			if _, derr := ss.db.FindDatabase(ctx, s.DatabaseID); derr == nil {
				return snapdeck.Errorf(snapdeck.Conflict, "This is the latest snapshot of its database; it is kept.")
			}
		}
	}
	return ss.db.DeleteSnapshot(ctx, sid)
}

// FindJob returns a job as last recorded.
func (ss *Snapshots) FindJob(ctx context.Context, id string) (snapdeck.Job, error) {
	return ss.cfg.Jobs.Find(ctx, id)
}

// FindOpenJobs returns the jobs not yet ended, of one database or, for
// "", of all.
func (ss *Snapshots) FindOpenJobs(ctx context.Context, dbID string) ([]snapdeck.Job, error) {
	return ss.cfg.Jobs.FindOpen(ctx, dbID)
}

// LatestSnapshotTimes returns, per database, when its newest completed
// snapshot was taken.
func (ss *Snapshots) LatestSnapshotTimes(ctx context.Context) (map[string]time.Time, error) {
	return ss.db.LatestSnapshotTimes(ctx)
}

// Reclaim deletes from the snapshot store everything no snapshot record
// references, prepared exports past their time (none being downloaded),
// and sign-in sessions past their expiry. The scheduler's housekeeping
// calls it at least hourly.
func (ss *Snapshots) Reclaim(ctx context.Context) (int64, error) {
	roots, err := ss.db.SnapshotRoots(ctx)
	if err != nil {
		return 0, err
	}
	n, err := ss.cfg.Store.Sweep(ctx, roots)
	if err != nil {
		return n, err
	}
	ss.exports.expire()
	if err := ss.db.DeleteExpiredSessions(ctx); err != nil {
		return n, fmt.Errorf("delete expired sessions: %w", err)
	}
	return n, nil
}

func (ss *Snapshots) snapshotEnded(s snapdeck.Snapshot, start time.Time) {
	ss.observer.SnapshotEnded(s, time.Since(start))
}

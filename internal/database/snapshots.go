package database

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
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

// Snapshots configures snapshot work for a Manager: Store and Jobs are
// required.
type Snapshots struct {
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

// snapshotState is the Manager's snapshot machinery.
type snapshotState struct {
	cfg Snapshots
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
}

// initSnapshots sets up the Manager's snapshot machinery; NewManager
// calls it.
func (m *Manager) initSnapshots(cfg Snapshots) error {
	if cfg.Policies == nil {
		cfg.Policies = snapdeck.DefaultPolicies()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ExportTTL == 0 {
		cfg.ExportTTL = 24 * time.Hour
	}
	if cfg.ExportCacheSize == 0 {
		cfg.ExportCacheSize = DefaultExportCacheSize
	}
	for _, d := range []string{cfg.TmpDir, cfg.ExportDir} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return err
		}
	}
	if cfg.ImportChecks <= 0 {
		cfg.ImportChecks = DefaultImportChecks
	}
	m.snaps = &snapshotState{cfg: cfg, verifying: make(chan struct{}, 1), preparing: map[string]*preparation{}, exports: &exportCache{dir: cfg.ExportDir,
		limit: cfg.ExportCacheSize, ttl: cfg.ExportTTL, now: cfg.Now, logger: m.logger, leases: map[string]int{}}}
	m.loads.checks = make(chan struct{}, cfg.ImportChecks)
	return nil
}

// Policy returns a plan's cadence and retention.
func (m *Manager) Policy(plan snapdeck.Plan) snapdeck.PlanPolicy {
	return m.Policies()[plan]
}

// Policies returns every plan's cadence and retention as this console runs
// them: the Config's, or SPEC's defaults when it gave none.
func (m *Manager) Policies() map[snapdeck.Plan]snapdeck.PlanPolicy {
	return m.snaps.cfg.Policies
}

func (m *Manager) lock(id string) *sync.RWMutex {
	l, _ := m.snaps.locks.LoadOrStore(id, &sync.RWMutex{})
	return l.(*sync.RWMutex)
}

func (m *Manager) now() time.Time { return m.snaps.cfg.Now().UTC() }

// image turns a stored snapshot into the engine's description of it.
func image(s store.SnapshotRecord) snapshot.Image {
	return snapshot.Image{Root: s.Root, Size: s.SizeBytes, SHA256: s.SHA256, PageSize: s.PageSize, Pages: s.Pages}
}

// newSnapshot records a pending snapshot of d.
func (m *Manager) newSnapshot(ctx context.Context, d snapdeck.Database, typ snapdeck.SnapshotType, reason string) (store.SnapshotRecord, error) {
	now := m.now()
	rec := store.SnapshotRecord{Snapshot: snapdeck.Snapshot{
		ID: uuid.NewString(), DatabaseID: d.ID, Type: typ, Reason: reason, Status: snapdeck.SnapshotPending,
		CreatedAt: now, ExpiresAt: now.Add(m.Policy(d.Plan).Retention),
	}}
	return rec, m.db.CreateSnapshot(ctx, &rec)
}

// capture takes the snapshot rec of its database and records the outcome.
// The snapshot is listed completed only after Capture returned, that is
// once all of its data is durable. It holds the database's lock shared,
// so that its file is not swapped under it.
func (m *Manager) capture(ctx context.Context, rec *store.SnapshotRecord, progress snapshot.Progress) error {
	// The latest completed snapshot is the base for deltas of the pages
	// changed since; without one, pages are stored whole.
	base := m.latestRoot(ctx, rec.DatabaseID)
	l := m.lock(rec.DatabaseID)
	l.RLock()
	defer l.RUnlock()
	return m.captureWithBase(ctx, rec, m.host.Path(rec.DatabaseID), base, progress)
}

// captureWithBase is capture from the file at path (the database's own,
// or the replaced file a replace keeps for its safety snapshot), with the
// root of the snapshot whose pages are the base of the deltas; "" stores
// pages whole. It takes no lock: capture holds the database's; the kept
// replaced file of captureUndo is no longer the database's file, and
// nothing swaps or writes it.
func (m *Manager) captureWithBase(ctx context.Context, rec *store.SnapshotRecord, path, baseRoot string, progress snapshot.Progress) error {
	rec.Status = snapdeck.SnapshotInProgress
	if err := m.db.UpdateSnapshot(ctx, *rec); err != nil {
		return err
	}
	start := time.Now()
	img, err := snapshot.CaptureWithBase(ctx, path, m.snaps.cfg.Store, baseRoot, progress)
	rec.CompletedAt = m.now()
	if err != nil {
		rec.Status = snapdeck.SnapshotFailed
		rec.Error = snapdeck.ErrorMessage(err)
		if uerr := m.db.UpdateSnapshot(context.Background(), *rec); uerr != nil {
			m.logger.Error("record failed snapshot", "snapshot_id", rec.ID, "err", uerr)
		}
		m.logger.Error("snapshot failed", "database_id", rec.DatabaseID, "snapshot_id", rec.ID, "err", err)
		m.snapshotEnded(rec.Snapshot, start)
		return fmt.Errorf("snapshot of %s: %w", rec.DatabaseID, err)
	}
	rec.Status = snapdeck.SnapshotCompleted
	rec.Root, rec.SizeBytes, rec.SHA256, rec.PageSize, rec.Pages = img.Root, img.Size, img.SHA256, img.PageSize, img.Pages
	if err := m.db.UpdateSnapshot(context.Background(), *rec); err != nil {
		return err
	}
	m.logger.Info("snapshot completed", "database_id", rec.DatabaseID, "snapshot_id", rec.ID, "type", rec.Type,
		"bytes", img.Size, "new_bytes", img.NewBytes, "duration", time.Since(start))
	m.snapshotEnded(rec.Snapshot, start)
	m.verifyLater(*rec)
	return nil
}

// verifyLater rebuilds the snapshot's image in the background and checks
// its SHA-256 and integrity, recording the outcome on the snapshot.
func (m *Manager) verifyLater(rec store.SnapshotRecord) {
	_, err := m.snaps.cfg.Jobs.Start(context.Background(), snapdeck.Job{Kind: snapdeck.JobVerify, DatabaseID: rec.DatabaseID,
		SnapshotID: rec.ID, Actor: "system"}, func(ctx context.Context, p *job.Progress) error {
		select {
		case m.snaps.verifying <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		defer func() { <-m.snaps.verifying }()
		p.Stage("Verifying snapshot", rec.SizeBytes)
		err := snapshot.Verify(ctx, m.snaps.cfg.Store, image(rec), m.snaps.cfg.TmpDir)
		if errors.Is(err, context.Canceled) {
			return err
		}
		cur, ferr := m.db.FindSnapshot(context.Background(), rec.ID)
		if ferr != nil {
			return ferr // deleted meanwhile: nothing to record
		}
		cur.Verified, cur.VerifiedAt = err == nil, m.now()
		if err != nil {
			cur.VerifyError = snapdeck.ErrorMessage(err)
			m.logger.Error("SNAPSHOT FAILED VERIFICATION", "database_id", rec.DatabaseID, "snapshot_id", rec.ID, "err", err)
		}
		if uerr := m.db.UpdateSnapshot(context.Background(), cur); uerr != nil {
			return uerr
		}
		return err
	})
	if err != nil {
		m.logger.Warn("schedule verification", "snapshot_id", rec.ID, "err", err)
	}
}

// TakeSnapshot starts a snapshot of a running database in the background
// and returns its pending record and the job taking it. A refusal is
// recorded in the activity log here, the snapshot's outcome by the job.
func (m *Manager) TakeSnapshot(ctx context.Context, id string, typ snapdeck.SnapshotType, reason, actor string) (snapdeck.Snapshot, snapdeck.Job, error) {
	s, j, err := m.takeSnapshot(ctx, id, typ, reason, actor)
	if err != nil {
		m.record(ctx, actor, activity.SnapshotTake, id, s.ID, err, 0, reason)
	}
	return s, j, err
}

func (m *Manager) takeSnapshot(ctx context.Context, id string, typ snapdeck.SnapshotType, reason, actor string) (snapdeck.Snapshot, snapdeck.Job, error) {
	d, err := m.db.FindDatabase(ctx, id)
	if err != nil {
		return snapdeck.Snapshot{}, snapdeck.Job{}, err
	}
	if d.Status != snapdeck.StatusRunning {
		return snapdeck.Snapshot{}, snapdeck.Job{}, &snapdeck.Error{Code: snapdeck.Busy, Reason: "ongoing-database-operation",
			Message: fmt.Sprintf("The database is %s; take the snapshot once it is running again.", d.Status)}
	}
	rec, err := m.newSnapshot(ctx, d, typ, reason)
	if err != nil {
		return snapdeck.Snapshot{}, snapdeck.Job{}, err
	}
	// The job changes rec as it runs; the caller gets the record as it was
	// when the job started.
	pending := rec.Snapshot
	start := time.Now()
	j, err := m.snaps.cfg.Jobs.Start(ctx, snapdeck.Job{Kind: snapdeck.JobSnapshot, DatabaseID: id, SnapshotID: rec.ID, Actor: actor},
		func(ctx context.Context, p *job.Progress) error {
			p.Stage("Taking snapshot", m.host.Size(id))
			err := m.capture(ctx, &rec, p.Bytes)
			m.record(ctx, actor, activity.SnapshotTake, id, rec.ID, err, time.Since(start), reason)
			return err
		})
	if err != nil {
		rec.Status, rec.Error = snapdeck.SnapshotFailed, snapdeck.ErrorMessage(err)
		m.db.UpdateSnapshot(context.Background(), rec)
		return rec.Snapshot, j, err
	}
	return pending, j, nil
}

// Snapshot takes a snapshot now and returns when it is durable; the
// scheduler uses it.
func (m *Manager) Snapshot(ctx context.Context, id string, typ snapdeck.SnapshotType, reason, actor string) (snapdeck.Snapshot, error) {
	d, err := m.db.FindDatabase(ctx, id)
	if err != nil {
		return snapdeck.Snapshot{}, err
	}
	rec, err := m.newSnapshot(ctx, d, typ, reason)
	if err != nil {
		return snapdeck.Snapshot{}, err
	}
	start := time.Now()
	err = m.capture(ctx, &rec, nil)
	m.record(ctx, actor, activity.SnapshotTake, id, rec.ID, err, time.Since(start), reason)
	return rec.Snapshot, err
}

// FindSnapshot returns a snapshot of the given database, or of any
// database that exists when dbID is "".
func (m *Manager) FindSnapshot(ctx context.Context, dbID, sid string) (snapdeck.Snapshot, error) {
	s, err := m.findSnapshot(ctx, dbID, sid)
	return s.Snapshot, err
}

func (m *Manager) findSnapshot(ctx context.Context, dbID, sid string) (store.SnapshotRecord, error) {
	s, err := m.findLiveSnapshot(ctx, sid)
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
func (m *Manager) findLiveSnapshot(ctx context.Context, sid string) (store.SnapshotRecord, error) {
	s, err := m.db.FindSnapshot(ctx, sid)
	if err != nil {
		return s, err
	}
	d, err := m.db.FindDatabase(ctx, s.DatabaseID)
	if snapdeck.ErrorCode(err) == snapdeck.NotFound || err == nil && d.Status == snapdeck.StatusDeleting {
		return store.SnapshotRecord{}, &snapdeck.Error{Code: snapdeck.NotFound, Reason: "snapshot-not-found",
			Message: fmt.Sprintf("Snapshot %s is of a database that was deleted; its snapshots went with it.", sid)}
	}
	return s, err
}

// FindSnapshots lists a database's snapshots, newest first, with the total
// matching the filter. A free database shows only its latest completed
// snapshot, as its plan promises.
func (m *Manager) FindSnapshots(ctx context.Context, f snapdeck.SnapshotFilter) ([]snapdeck.Snapshot, int, error) {
	d, err := m.db.FindDatabase(ctx, f.DatabaseID)
	if err != nil {
		return nil, 0, err
	}
	if d.Plan == snapdeck.PlanFree {
		latest, err := m.db.LatestCompletedSnapshot(ctx, d.ID)
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
	recs, err := m.db.FindSnapshots(ctx, f)
	if err != nil {
		return nil, 0, err
	}
	total, err := m.db.CountSnapshots(ctx, f)
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
// replaced data. A refusal is recorded in the activity log here, the
// restore's outcome by the job.
func (m *Manager) Restore(ctx context.Context, dbID, sid, actor string) (snapdeck.Job, error) {
	s, err := m.findSnapshot(ctx, dbID, sid)
	var j snapdeck.Job
	if err == nil {
		j, err = m.restore(ctx, dbID, s, actor)
	}
	if err != nil {
		m.recordRefusal(ctx, actor, activity.Restore, dbID, sid, err)
	}
	return j, err
}

// recordRefusal records an action that ended before its work began, with
// the outcome the error's code gives.
func (m *Manager) recordRefusal(ctx context.Context, actor string, action activity.Action, dbID, sid string, err error) {
	m.record(ctx, actor, action, dbID, sid, err, 0, "")
}

func (m *Manager) restore(ctx context.Context, dbID string, s store.SnapshotRecord, actor string) (snapdeck.Job, error) {
	if err := usable(s); err != nil {
		return snapdeck.Job{}, err
	}
	return m.replace(ctx, dbID, replacement{door: "restore", kind: snapdeck.JobRestore, status: snapdeck.StatusRestoring,
		action: activity.Restore, snapshotID: s.ID, actor: actor, detail: "from snapshot of " + s.CreatedAt.Format(timeFormat),
		safetyReason: "Before restore of " + s.CreatedAt.Format(timeFormat), swapping: "Swapping in the restored data",
		prepare: m.fromSnapshot(func(context.Context, *job.Progress) (store.SnapshotRecord, error) { return s, nil })})
}

// faultHook, when set, is called at named points of a replace (restore,
// overwrite, load); the crash tests set it in a child process to die there.
var faultHook func(point string)

func fault(point string) {
	if faultHook != nil {
		faultHook(point)
	}
}

// CreateFromSnapshot makes a new database holding a snapshot's data. The
// new database then gets its own "Database created" snapshot, which shares
// every page with the source in the snapshot store. A refusal is recorded
// in the activity log here, the copy's outcome by the job.
func (m *Manager) CreateFromSnapshot(ctx context.Context, dbID, sid, name string, plan snapdeck.Plan, actor string) (snapdeck.Database, snapdeck.Job, error) {
	d, j, err := m.createFromSnapshot(ctx, dbID, sid, name, plan, actor)
	if err != nil {
		m.record(ctx, actor, activity.CreateFromSnap, d.ID, sid, err, 0, "")
	}
	return d, j, err
}

func (m *Manager) createFromSnapshot(ctx context.Context, dbID, sid, name string, plan snapdeck.Plan, actor string) (snapdeck.Database, snapdeck.Job, error) {
	s, err := m.findSnapshot(ctx, dbID, sid)
	if err != nil {
		return snapdeck.Database{}, snapdeck.Job{}, err
	}
	if err := usableSource(s); err != nil {
		return snapdeck.Database{}, snapdeck.Job{}, err
	}
	if err := snapdeck.ValidateDatabaseName(name); err != nil {
		return snapdeck.Database{}, snapdeck.Job{}, err
	}
	if !plan.Valid() {
		return snapdeck.Database{}, snapdeck.Job{}, snapdeck.FieldError("plan", "Choose a plan: free, professional or enterprise.")
	}
	d := snapdeck.Database{ID: snapdeck.NewDatabaseID(), Name: name, Plan: plan, Status: snapdeck.StatusCreating}
	if err := m.db.CreateDatabase(ctx, &d); err != nil {
		return d, snapdeck.Job{}, err
	}
	start := time.Now()
	j, err := m.snaps.cfg.Jobs.Start(ctx, snapdeck.Job{Kind: snapdeck.JobCreateFromSnapshot, DatabaseID: s.DatabaseID,
		SnapshotID: s.ID, TargetID: d.ID, Actor: actor}, func(ctx context.Context, p *job.Progress) error {
		err := m.materializeNew(ctx, d, s, p)
		m.record(ctx, actor, activity.CreateFromSnap, d.ID, s.ID, err, time.Since(start), "from database "+s.DatabaseID)
		if err != nil {
			m.setStatus(d.ID, snapdeck.StatusFailed)
			return err
		}
		m.setStatus(d.ID, snapdeck.StatusRunning)
		// A copy: the caller returns d as it was at the start, and the
		// job must not write to it meanwhile.
		created := d
		created.Status = snapdeck.StatusRunning
		m.observer.DatabaseCreated(ctx, created)
		return nil
	})
	if err != nil {
		m.setStatus(d.ID, snapdeck.StatusFailed)
	}
	return d, j, err
}

func (m *Manager) materializeNew(ctx context.Context, d snapdeck.Database, s store.SnapshotRecord, p *job.Progress) error {
	p.Stage("Writing the snapshot's data into the new database", s.SizeBytes)
	tmp := tempPath(m.host.Path(d.ID), tempCreate, "")
	defer os.Remove(tmp)
	if err := snapshot.Materialize(ctx, m.snaps.cfg.Store, image(s), tmp, snapshot.ForNewDatabase, p.Bytes); err != nil {
		return err
	}
	return snapshot.Install(tmp, m.host.Path(d.ID))
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
func (m *Manager) Export(ctx context.Context, dbID, sid, actor string) (*Export, error) {
	d, err := m.db.FindDatabase(ctx, dbID)
	var s store.SnapshotRecord
	if err == nil {
		s, err = m.findSnapshot(ctx, dbID, sid)
	}
	if err == nil {
		err = usable(s)
	}
	if err != nil {
		m.recordRefusal(ctx, actor, activity.SnapshotExport, dbID, sid, err)
		return nil, err
	}
	name := fmt.Sprintf("%s-%s.dump", d.Name, s.CreatedAt.UTC().Format("20060102T150405Z"))
	file := s.ID + dumpExt
	m.snaps.preparingMu.Lock()
	defer m.snaps.preparingMu.Unlock()
	if prep, ok := m.snaps.preparing[s.ID]; ok {
		m.record(ctx, actor, activity.SnapshotExport, dbID, sid, nil, 0, name)
		return prep.follow(name)
	}
	if e, ok := m.snaps.exports.open(file, name); ok {
		m.record(ctx, actor, activity.SnapshotExport, dbID, sid, nil, 0, name)
		return e, nil
	}
	// The image's size bounds the .dump's: it is the image compressed
	// with zstd. Room is made before the work, so the disk does not hold
	// both the old exports and the new one.
	m.snaps.exports.makeRoom(s.SizeBytes)
	tmp, err := os.CreateTemp(m.snaps.cfg.ExportDir, ".export-*")
	if err != nil {
		return nil, err
	}
	prep := newPreparation(tmp, m.snaps.exports, file)
	e, err := prep.follow(name)
	if err != nil {
		prep.close()
		os.Remove(tmp.Name())
		return nil, err
	}
	start := time.Now()
	j, err := m.snaps.cfg.Jobs.Start(ctx, snapdeck.Job{Kind: snapdeck.JobExport, DatabaseID: dbID, SnapshotID: sid, Actor: actor},
		func(ctx context.Context, p *job.Progress) error {
			p.Stage("Preparing export", s.SizeBytes)
			err := m.writeDump(ctx, d, s, prep, name, p)
			m.record(ctx, actor, activity.SnapshotExport, dbID, sid, err, time.Since(start), name)
			m.snaps.preparingMu.Lock()
			delete(m.snaps.preparing, s.ID)
			m.snaps.preparingMu.Unlock()
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
	m.snaps.preparing[s.ID] = prep
	return e, nil
}

// writeDump writes the snapshot's .dump into the preparation's file, makes
// it durable and installs it in the export cache.
func (m *Manager) writeDump(ctx context.Context, d snapdeck.Database, s store.SnapshotRecord, prep *preparation, name string, p *job.Progress) error {
	defer prep.close() // the job removes the file after a failure
	img, err := snapshot.OpenImage(ctx, m.snaps.cfg.Store, image(s))
	if err != nil {
		return err
	}
	defer img.Close()
	man := dump.Manifest{FormatVersion: dump.FormatVersion, DatabaseName: d.Name, DatabaseID: d.ID, SnapshotID: s.ID,
		SnapshotType: string(s.Type), SnapshotTime: s.CreatedAt, Engine: m.snaps.cfg.Engine, SQLiteVersion: m.snaps.cfg.SQLiteVersion,
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
	// over; making the cached copy durable is not theirs to wait for.
	if err := prep.complete(); err != nil {
		return err
	}
	e, err := prep.install(name)
	if err != nil {
		return err
	}
	return e.Close()
}

// countingReader reports bytes read as job progress.
type countingReader struct {
	r        io.Reader
	n        int64
	progress *job.Progress
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	j := c.progress.Job()
	c.progress.Bytes(c.n, j.TotalBytes)
	return n, err
}

// DeleteSnapshot removes a snapshot's record; the storage it alone used is
// reclaimed by the next Reclaim. The latest completed snapshot of a live
// database is kept.
func (m *Manager) DeleteSnapshot(ctx context.Context, sid string) error {
	s, err := m.db.FindSnapshot(ctx, sid)
	if err != nil {
		return err
	}
	if s.Status == snapdeck.SnapshotCompleted {
		latest, err := m.db.LatestCompletedSnapshot(ctx, s.DatabaseID)
		if err == nil && latest.ID == s.ID {
			if _, derr := m.db.FindDatabase(ctx, s.DatabaseID); derr == nil {
				return snapdeck.Errorf(snapdeck.Conflict, "This is the latest snapshot of its database; it is kept.")
			}
		}
	}
	return m.db.DeleteSnapshot(ctx, sid)
}

// Reclaim deletes from the snapshot store everything no snapshot record
// references, prepared exports past their time (none being downloaded),
// and sign-in sessions past their expiry. The scheduler's housekeeping
// calls it at least hourly.
func (m *Manager) Reclaim(ctx context.Context) (int64, error) {
	roots, err := m.db.SnapshotRoots(ctx)
	if err != nil {
		return 0, err
	}
	n, err := m.snaps.cfg.Store.Sweep(ctx, roots)
	if err != nil {
		return n, err
	}
	m.snaps.exports.expire()
	if err := m.db.DeleteExpiredSessions(ctx); err != nil {
		return n, fmt.Errorf("delete expired sessions: %w", err)
	}
	return n, nil
}

func (m *Manager) setStatus(id string, s snapdeck.Status) {
	if _, err := m.db.UpdateDatabase(context.Background(), id, store.DatabaseUpdate{Status: &s}); err != nil &&
		snapdeck.ErrorCode(err) != snapdeck.NotFound {
		m.logger.Error("set database status", "database_id", id, "status", s, "err", err)
	}
}

// record writes an action on a database to the activity log.
func (m *Manager) record(ctx context.Context, actor string, action activity.Action, dbID, sid string, err error, took time.Duration, detail string) {
	m.activity.Record(ctx, activity.Entry{Actor: actor, Action: action, DatabaseID: dbID, SnapshotID: sid,
		Detail: detail, Duration: took, Err: err})
}

func (m *Manager) snapshotEnded(s snapdeck.Snapshot, start time.Time) {
	m.observer.SnapshotEnded(s, time.Since(start))
}

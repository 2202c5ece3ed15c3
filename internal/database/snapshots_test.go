package database_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/dump"
	"github.com/snapdeck/snapdeck/internal/job"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/snapshot"
	"github.com/snapdeck/snapdeck/internal/snapstore"
	"github.com/snapdeck/snapdeck/store"
)

// env is the database services over real files in a temporary directory.
type env struct {
	dir       string
	db        *store.DB
	dbs       *database.Databases
	snapshots *database.Snapshots
	jobs      *job.Runner
	snaps     *snapstore.Store
}

// mustEnv returns an env; configure adjusts the services' configuration.
func mustEnv(t *testing.T, configure ...func(*database.Config)) *env {
	t.Helper()
	return envAt(t, t.TempDir(), configure...)
}

// envAt is mustEnv over the data in dir, which may hold a previous run's.
func envAt(t testing.TB, dir string, configure ...func(*database.Config)) *env {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(dir, "console.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	host, err := database.NewHost(filepath.Join(dir, "databases"), nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := snapstore.Open(ctx, filepath.Join(dir, "snapshots"), nil)
	if err != nil {
		t.Fatal(err)
	}
	jobs := job.NewRunner(db, nil)
	cfg := database.Config{Store: db, Host: host, Activity: activity.New(db, nil, nil), Snapshots: database.SnapshotConfig{Store: st, Jobs: jobs,
		TmpDir: filepath.Join(dir, "tmp"), ExportDir: filepath.Join(dir, "tmp", "exports"), Engine: "snapdeck test", SQLiteVersion: "3"}}
	for _, f := range configure {
		f(&cfg)
	}
	snapshots, err := database.NewSnapshots(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dbs, err := database.NewDatabases(cfg, snapshots)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		jobs.Close(ctx)
		host.Close(ctx)
		st.Close(ctx)
		db.Close(ctx)
	})
	return &env{dir: dir, db: db, dbs: dbs, snapshots: snapshots, jobs: jobs, snaps: st}
}

// create makes an empty database, as either door does.
func (e *env) create(ctx context.Context, name string, plan snapdeck.Plan) (snapdeck.Database, error) {
	out, err := e.dbs.Create(ctx, "test", database.CreateRequest{Name: name, Plan: plan})
	return out.Database, err
}

// copy makes a database from snapshot sid of database dbID, as either
// door does, and returns it with the job writing its data.
func (e *env) copy(ctx context.Context, dbID, sid, name string, plan snapdeck.Plan, actor string) (snapdeck.Database, snapdeck.Job, error) {
	out, err := e.dbs.Create(ctx, actor, database.CreateRequest{Name: name, Plan: plan, FromDatabase: dbID, FromSnapshot: sid})
	return out.Database, out.Job, err
}

// mode returns the permission of database id's file, which must be
// snapdeck.FileMode (less the umask) however the file was made.
func (e *env) mode(t *testing.T, id string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(filepath.Join(e.dir, "databases", id+".sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func (e *env) exec(t *testing.T, id, sql string) {
	t.Helper()
	if _, err := e.dbs.Query(context.Background(), id, sql, false); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func (e *env) count(t *testing.T, id string) string {
	t.Helper()
	r, err := e.dbs.Query(context.Background(), id, "SELECT count(*) || ':' || coalesce(sum(n), 0) FROM t", true)
	if err != nil {
		t.Fatal(err)
	}
	return r.Rows[0][0]
}

// waitJob waits for the job to end and returns it as recorded.
func (e *env) waitJob(t *testing.T, id string) snapdeck.Job {
	t.Helper()
	// The timeout only turns a hang into a failure.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	j, err := e.jobs.Wait(ctx, id)
	if err != nil {
		t.Fatalf("job %s: %v", id, err)
	}
	return j
}

// waitIdle waits until no job is open, background verifications
// included: each open job is waited for, then the list is read again for
// jobs those started.
func (e *env) waitIdle(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		open, err := e.db.FindOpenJobs(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(open) == 0 {
			return
		}
		for _, j := range open {
			if _, err := e.jobs.Wait(ctx, j.ID); err != nil {
				t.Fatalf("job %s: %v", j.ID, err)
			}
		}
	}
}

func TestTakeRestoreAndUndo(t *testing.T) {
	ctx := context.Background()
	e := mustEnv(t)
	d, err := e.create(ctx, "orders", snapdeck.PlanProfessional)
	if err != nil {
		t.Fatal(err)
	}
	e.exec(t, d.ID, "CREATE TABLE t (n INTEGER)")
	e.exec(t, d.ID, "WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v+1 FROM s WHERE v < 1000) INSERT INTO t SELECT v FROM s")
	snap, j, err := e.snapshots.TakeSnapshot(ctx, d.ID, snapdeck.SnapshotOnDemand, "Taken by ann@example.com", "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if j := e.waitJob(t, j.ID); j.Status != snapdeck.JobSucceeded {
		t.Fatalf("snapshot job: got %s (%s), want succeeded", j.Status, j.Error)
	}
	got, err := e.snapshots.FindSnapshot(ctx, d.ID, snap.ID)
	if err != nil || got.Status != snapdeck.SnapshotCompleted || got.SizeBytes == 0 || len(got.SHA256) != 64 {
		t.Fatalf("snapshot: got %+v, %v; want completed with size and sha256", got, err)
	}
	if want := got.CreatedAt.Add(7 * 24 * time.Hour); !got.ExpiresAt.Equal(want) {
		t.Errorf("expires: got %s, want %s (professional keeps 7 days)", got.ExpiresAt, want)
	}

	e.exec(t, d.ID, "DELETE FROM t WHERE n > 10")
	if got := e.count(t, d.ID); got != "10:55" {
		t.Fatalf("after delete: got %s, want 10:55", got)
	}
	_, rj, err := e.snapshots.Restore(ctx, d.ID, snap.ID, "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	rj = e.waitJob(t, rj.ID)
	if rj.Status != snapdeck.JobSucceeded {
		t.Fatalf("restore: got %s (%s), want succeeded", rj.Status, rj.Error)
	}
	if got := e.count(t, d.ID); got != "1000:500500" {
		t.Fatalf("after restore: got %s, want 1000:500500", got)
	}
	if got, want := e.mode(t, d.ID), os.FileMode(snapdeck.FileMode)&^umask(); got != want {
		t.Errorf("file mode after restore: got %v, want %v, as created", got, want)
	}
	if !strings.Contains(rj.Message, "To undo, restore the safety snapshot") {
		t.Errorf("restore job message: got %q, want how to undo it", rj.Message)
	}
	d2, _ := e.dbs.Find(ctx, d.ID)
	if d2.Status != snapdeck.StatusRunning {
		t.Errorf("status after restore: got %s, want running", d2.Status)
	}

	// The safety snapshot holds the data from just before the restore;
	// restoring it undoes the restore.
	safety, err := e.snapshots.FindSnapshot(ctx, d.ID, rj.TargetID)
	if err != nil || safety.Type != snapdeck.SnapshotOnDemand || safety.Reason[:len("Before restore of ")] != "Before restore of " {
		t.Fatalf("safety snapshot: got %+v, %v", safety, err)
	}
	_, uj, err := e.snapshots.Restore(ctx, d.ID, safety.ID, "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	e.waitJob(t, uj.ID)
	if got := e.count(t, d.ID); got != "10:55" {
		t.Fatalf("after undo: got %s, want 10:55", got)
	}
	events, _ := e.db.FindEvents(ctx, snapdeck.EventFilter{DatabaseID: d.ID})
	restores := 0
	for _, ev := range events {
		if ev.Action == "restore" && ev.Outcome == snapdeck.OutcomeOK {
			restores++
		}
	}
	if restores != 2 {
		t.Errorf("activity log restores: got %d, want 2", restores)
	}
}

// TestRestoreRefusesABusyDatabase checks the one-overwrite-at-a-time rule
// without racing a real restore: the database is held in "restoring" as a
// running restore holds it, and a second restore must be refused and start
// nothing.
func TestRestoreRefusesABusyDatabase(t *testing.T) {
	ctx := context.Background()
	e := mustEnv(t)
	d, err := e.create(ctx, "orders", snapdeck.PlanProfessional)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := e.snapshots.Snapshot(ctx, d.ID, snapdeck.SnapshotOnDemand, "test", "system")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.TransitionDatabase(ctx, d.ID, []snapdeck.Status{snapdeck.StatusRunning}, snapdeck.StatusRestoring); err != nil {
		t.Fatal(err)
	}
	_, _, err = e.snapshots.Restore(ctx, d.ID, snap.ID, "bob@example.com")
	if e, ok := snapdeck.AsError(err); !ok || e.Code != snapdeck.Busy || e.Reason != "ongoing-database-operation" {
		t.Fatalf("restore of a restoring database: got %v, want Busy ongoing-database-operation", err)
	}
	jobs, _ := e.db.FindOpenJobs(ctx, d.ID)
	for _, j := range jobs {
		// The first snapshot's background verification may still run.
		if j.Kind != snapdeck.JobVerify {
			t.Errorf("open job after the refusal: got a %s job, want none", j.Kind)
		}
	}
	if n, _ := e.db.CountSnapshots(ctx, snapdeck.SnapshotFilter{DatabaseID: d.ID}); n != 1 {
		t.Errorf("snapshots after the refusal: got %d, want 1 (no safety snapshot)", n)
	}
}

func TestCreateFromSnapshotAndExport(t *testing.T) {
	ctx := context.Background()
	e := mustEnv(t)
	d, err := e.create(ctx, "source", snapdeck.PlanEnterprise)
	if err != nil {
		t.Fatal(err)
	}
	e.exec(t, d.ID, "CREATE TABLE t (n INTEGER)")
	e.exec(t, d.ID, "WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v+1 FROM s WHERE v < 100) INSERT INTO t SELECT v FROM s")
	snap, err := e.snapshots.Snapshot(ctx, d.ID, snapdeck.SnapshotOnDemand, "test", "system")
	if err != nil {
		t.Fatal(err)
	}
	nd, j, err := e.copy(ctx, d.ID, snap.ID, "copy", snapdeck.PlanFree, "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if j := e.waitJob(t, j.ID); j.Status != snapdeck.JobSucceeded {
		t.Fatalf("create from snapshot: got %s (%s)", j.Status, j.Error)
	}
	if got := e.count(t, nd.ID); got != "100:5050" {
		t.Fatalf("copy: got %s, want 100:5050", got)
	}
	if got, want := e.mode(t, nd.ID), os.FileMode(snapdeck.FileMode)&^umask(); got != want {
		t.Errorf("file mode of the copy: got %v, want %v, as created", got, want)
	}
	e.exec(t, nd.ID, "DELETE FROM t")
	if got := e.count(t, d.ID); got != "100:5050" {
		t.Fatalf("source after changing the copy: got %s, want 100:5050", got)
	}

	exp, err := e.snapshots.Export(ctx, d.ID, snap.ID, "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Close()
	if want := "source-" + snap.CreatedAt.UTC().Format("20060102T150405Z") + ".dump"; exp.Name != want {
		t.Errorf("export name: got %s, want %s", exp.Name, want)
	}
	// Read as it is prepared, the download is a whole, valid .dump of the
	// snapshot.
	if exp.Prepared() {
		t.Errorf("the first export of a snapshot is prepared already; want it followed as it is written")
	}
	man, err := dump.Verify(ctx, exp, t.TempDir(), dump.Limits{})
	if err != nil {
		t.Fatalf("the followed export: %v", err)
	}
	if man.SnapshotID != snap.ID || man.SHA256 != snap.SHA256 {
		t.Errorf("the followed export's manifest: %+v; want snapshot %s with sha %s", man, snap.ID, snap.SHA256)
	}
	// Once the job has ended, a second export is the prepared file.
	if err := exp.Wait(); err != nil {
		t.Fatal(err)
	}
	again, err := e.snapshots.Export(ctx, d.ID, snap.ID, "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if !again.Prepared() {
		t.Errorf("the second export is not the prepared file")
	}
	if _, err := dump.Verify(ctx, again, t.TempDir(), dump.Limits{}); err != nil {
		t.Errorf("the prepared export: %v", err)
	}
}

func TestFreeDatabasesListOnlyTheLatest(t *testing.T) {
	ctx := context.Background()
	e := mustEnv(t)
	d, err := e.create(ctx, "tiny", snapdeck.PlanFree)
	if err != nil {
		t.Fatal(err)
	}
	var last snapdeck.Snapshot
	for i := 0; i < 3; i++ {
		if last, err = e.snapshots.Snapshot(ctx, d.ID, snapdeck.SnapshotOnDemand, "test", "system"); err != nil {
			t.Fatal(err)
		}
	}
	list, total, err := e.snapshots.FindSnapshots(ctx, snapdeck.SnapshotFilter{DatabaseID: d.ID, Limit: 50})
	if err != nil || total != 1 || len(list) != 1 || list[0].ID != last.ID {
		t.Fatalf("free list: got %d of %d (%v); want only %s", len(list), total, err, last.ID)
	}
}

func TestRecoverFailsInterruptedWork(t *testing.T) {
	ctx := context.Background()
	e := mustEnv(t)
	d, err := e.create(ctx, "crashy", snapdeck.PlanProfessional)
	if err != nil {
		t.Fatal(err)
	}
	rec := store.SnapshotRecord{Snapshot: snapdeck.Snapshot{ID: "11111111-1111-1111-1111-111111111111", DatabaseID: d.ID,
		Type: snapdeck.SnapshotOnDemand, Reason: "x", Status: snapdeck.SnapshotInProgress}}
	if err := e.db.CreateSnapshot(ctx, &rec); err != nil {
		t.Fatal(err)
	}
	restoring := snapdeck.StatusRestoring
	if _, err := e.db.UpdateDatabase(ctx, d.ID, store.DatabaseUpdate{Status: &restoring}); err != nil {
		t.Fatal(err)
	}
	leftover := filepath.Join(e.dir, "databases", d.ID+".sqlite.restore-abcd1234")
	if err := os.WriteFile(leftover, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The second name Install gives a replaced file, left by a crash.
	replaced := filepath.Join(e.dir, "databases", d.ID+".sqlite"+snapshot.ReplacedMarker+"0123456789ab")
	if err := os.WriteFile(replaced, []byte("old content"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.dbs.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := e.db.FindSnapshot(ctx, rec.ID)
	if got.Status != snapdeck.SnapshotFailed {
		t.Errorf("interrupted snapshot: got %s, want failed", got.Status)
	}
	if d2, _ := e.dbs.Find(ctx, d.ID); d2.Status != snapdeck.StatusRunning {
		t.Errorf("interrupted restore: database got %s, want running", d2.Status)
	}
	for _, p := range []string{leftover, replaced} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("leftover %s still there", p)
		}
	}
}

// umask returns the process's umask, which new files' modes lose.
func umask() os.FileMode {
	m := syscall.Umask(0)
	syscall.Umask(m)
	return os.FileMode(m)
}

// TestRecoverVerifiesSnapshotsAStopLeftUnverified checks that a completed
// snapshot whose background verification a stop cancelled is verified at
// the next start.
func TestRecoverVerifiesSnapshotsAStopLeftUnverified(t *testing.T) {
	ctx := context.Background()
	e := mustEnv(t)
	d, err := e.create(ctx, "orders", snapdeck.PlanProfessional)
	if err != nil {
		t.Fatal(err)
	}
	e.exec(t, d.ID, "CREATE TABLE t (n INTEGER)")
	e.exec(t, d.ID, "INSERT INTO t VALUES (1), (2), (3)")
	snap, j, err := e.snapshots.TakeSnapshot(ctx, d.ID, snapdeck.SnapshotOnDemand, "before the stop", "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if j := e.waitJob(t, j.ID); j.Status != snapdeck.JobSucceeded {
		t.Fatalf("snapshot job: %s (%s)", j.Status, j.Error)
	}
	verified := func() store.SnapshotRecord {
		t.Helper()
		e.waitIdle(t) // the verification is a job of its own
		rec, err := e.db.FindSnapshot(ctx, snap.ID)
		if err != nil || rec.VerifiedAt.IsZero() {
			t.Fatalf("snapshot %s not verified: %+v, %v", snap.ID, rec, err)
		}
		return rec
	}
	rec := verified()
	// As a stop during its verification leaves it.
	rec.Verified, rec.VerifiedAt = false, time.Time{}
	if err := e.db.UpdateSnapshot(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := e.dbs.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if rec := verified(); !rec.Verified || rec.VerifyError != "" {
		t.Errorf("after Recover: verified %v, error %q; want verified", rec.Verified, rec.VerifyError)
	}
}

// TestSnapshotsOfADeletedDatabaseAreGone deletes a database and checks that
// no path brings its data back through one of its snapshots, and that
// their storage is reclaimed.
func TestSnapshotsOfADeletedDatabaseAreGone(t *testing.T) {
	ctx := context.Background()
	e := mustEnv(t)
	// No capture runs unrecorded here: the sweep may take young packs.
	e.snaps.SetGrace(0)
	gone, snap := e.snapshotOfNew(t, "gone", "CREATE TABLE t (n INTEGER, b BLOB)",
		"WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v+1 FROM s WHERE v < 200) INSERT INTO t SELECT v, randomblob(4000) FROM s")
	target, err := e.create(ctx, "target", snapdeck.PlanEnterprise)
	if err != nil {
		t.Fatal(err)
	}
	_, before, err := e.snaps.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.dbs.Delete(ctx, "test", gone.ID, &gone.Name); err != nil {
		t.Fatal(err)
	}
	checkGone := func(when string) {
		t.Helper()
		if _, _, err := e.snapshots.Overwrite(ctx, target.ID, database.OverwriteSource{Snapshot: snap.ID}, "ann@example.com"); snapdeck.ErrorCode(err) != snapdeck.NotFound {
			t.Errorf("%s: overwrite from it: got %v, want NotFound", when, err)
		}
		if _, _, err := e.copy(ctx, "", snap.ID, "revived", snapdeck.PlanFree, "ann@example.com"); snapdeck.ErrorCode(err) != snapdeck.NotFound {
			t.Errorf("%s: create from it: got %v, want NotFound", when, err)
		}
		if _, err := e.snapshots.FindSnapshot(ctx, gone.ID, snap.ID); snapdeck.ErrorCode(err) != snapdeck.NotFound {
			t.Errorf("%s: find it: got %v, want NotFound", when, err)
		}
		if _, _, err := e.snapshots.Restore(ctx, gone.ID, snap.ID, "ann@example.com"); snapdeck.ErrorCode(err) != snapdeck.NotFound {
			t.Errorf("%s: restore it: got %v, want NotFound", when, err)
		}
		if _, err := e.snapshots.Export(ctx, gone.ID, snap.ID, "ann@example.com"); snapdeck.ErrorCode(err) != snapdeck.NotFound {
			t.Errorf("%s: export it: got %v, want NotFound", when, err)
		}
		if got, _ := e.dbs.Find(ctx, target.ID); got.Status != snapdeck.StatusRunning {
			t.Errorf("%s: target: got %s, want running and untouched", when, got.Status)
		}
	}
	checkGone("after delete")
	if _, err := e.db.FindSnapshot(ctx, snap.ID); snapdeck.ErrorCode(err) != snapdeck.NotFound {
		t.Errorf("snapshot record after delete: got %v, want NotFound", err)
	}
	_, after, err := e.snaps.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after >= before || after > before-snap.SizeBytes/2 {
		t.Errorf("snapshot store: %d bytes before the delete, %d after; want the deleted database's %d bytes reclaimed", before, after, snap.SizeBytes)
	}

	// A console before this one kept the snapshots of deleted databases:
	// they are out of reach too, and the next start deletes them.
	gone, snap = e.snapshotOfNew(t, "old")
	if err := e.db.DeleteDatabase(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	checkGone("kept by an older console")
	if err := e.dbs.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.FindSnapshot(ctx, snap.ID); snapdeck.ErrorCode(err) != snapdeck.NotFound {
		t.Errorf("snapshot of a deleted database after Recover: got %v, want NotFound", err)
	}
}

// snapshotOfNew creates a database, runs statements in it and takes an
// On-demand snapshot of it.
func (e *env) snapshotOfNew(t *testing.T, name string, statements ...string) (snapdeck.Database, snapdeck.Snapshot) {
	t.Helper()
	ctx := context.Background()
	d, err := e.create(ctx, name, snapdeck.PlanEnterprise)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range statements {
		e.exec(t, d.ID, q)
	}
	s, err := e.snapshots.Snapshot(ctx, d.ID, snapdeck.SnapshotOnDemand, "test", "system")
	if err != nil {
		t.Fatal(err)
	}
	return d, s
}

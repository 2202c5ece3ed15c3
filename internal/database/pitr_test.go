package database_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/pitr"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// pitrEnv is an env whose enterprise plan keeps an hour of point-in-time
// history, replicated every 100 ms.
type pitrEnv struct {
	*env
	reps *pitr.Replicators
}

func mustPITREnv(t *testing.T) *pitrEnv {
	t.Helper()
	return pitrEnvAt(t, t.TempDir())
}

func pitrEnvAt(t *testing.T, dir string) *pitrEnv {
	t.Helper()
	var reps *pitr.Replicators
	e := envAt(t, dir, func(cfg *database.Config) {
		var err error
		reps, err = pitr.New(pitr.Config{Blobs: cfg.Snapshots.Store.Blobs(), Checkpoints: cfg.Host, Interval: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		cfg.PITR = database.PITR{Replicators: reps, Windows: map[snapdeck.Plan]time.Duration{snapdeck.PlanEnterprise: time.Hour}}
	})
	// Registered after envAt's: runs before the host closes.
	t.Cleanup(func() { reps.Close(context.Background()) })
	// As the wiring does at every start: recover, then replicate.
	if err := e.dbs.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.dbs.StartReplication(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &pitrEnv{env: e, reps: reps}
}

// batch inserts n rows in one transaction, makes them restorable at once
// and returns a time after them.
func (e *pitrEnv) batch(t *testing.T, id string, n int) time.Time {
	t.Helper()
	e.exec(t, id, fmt.Sprintf("WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < %d) INSERT INTO t(n) SELECT i FROM s", n))
	if err := e.reps.Sync(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	// A later commit must fall in a later millisecond than at.
	time.Sleep(5 * time.Millisecond)
	return at
}

// ledger creates an enterprise database with an empty table t.
func (e *pitrEnv) ledger(t *testing.T) snapdeck.Database {
	t.Helper()
	d, err := e.create(context.Background(), "ledger", snapdeck.PlanEnterprise)
	if err != nil {
		t.Fatal(err)
	}
	e.exec(t, d.ID, "CREATE TABLE t(id INTEGER PRIMARY KEY, n INTEGER)")
	return d
}

func (e *pitrEnv) rows(t *testing.T, id string) string {
	t.Helper()
	r, err := e.dbs.Query(context.Background(), id, "SELECT count(*) FROM t", true)
	if err != nil {
		t.Fatal(err)
	}
	ic, err := e.dbs.Query(context.Background(), id, "PRAGMA integrity_check", true)
	if err != nil {
		t.Fatal(err)
	}
	return r.Rows[0][0] + " " + ic.Rows[0][0]
}

func (e *pitrEnv) restoreTo(t *testing.T, id string, at time.Time) {
	t.Helper()
	_, j, err := e.snapshots.RestoreToTime(context.Background(), "ann@x", id, at)
	if err != nil {
		t.Fatal(err)
	}
	if j = e.waitJob(t, j.ID); j.Status != snapdeck.JobSucceeded {
		t.Fatalf("restore to %s: %s %s", at, j.Status, j.Error)
	}
}

func TestRestoreToTimeAfterEachBatch(t *testing.T) {
	ctx := context.Background()
	e := mustPITREnv(t)
	d := e.ledger(t)
	var times []time.Time
	for range 5 {
		times = append(times, e.batch(t, d.ID, 2000))
	}
	from, to, ok, err := e.snapshots.PITRWindow(ctx, d.ID)
	if err != nil || !ok || from.After(times[0]) || to.Before(times[4]) {
		t.Fatalf("window: %s to %s, %v, %v; want one holding %s to %s", from, to, ok, err, times[0], times[4])
	}
	// Backwards then forwards: each restore keeps the timeline.
	for _, i := range []int{2, 0, 4, 1, 3} {
		e.restoreTo(t, d.ID, times[i])
		if got, want := e.rows(t, d.ID), fmt.Sprintf("%d ok", 2000*(i+1)); got != want {
			t.Errorf("restored to after batch %d: got %s, want %s", i+1, got, want)
		}
	}
}

func TestRestoreToTimeOutsideTheWindowChangesNothing(t *testing.T) {
	ctx := context.Background()
	e := mustPITREnv(t)
	d := e.ledger(t)
	e.batch(t, d.ID, 10)
	for _, at := range []time.Time{time.Now().Add(-2 * time.Hour), time.Now().Add(time.Hour)} {
		if _, _, err := e.snapshots.RestoreToTime(ctx, "ann@x", d.ID, at); snapdeck.ErrorCode(err) != snapdeck.Invalid {
			t.Errorf("restore to %s: got %v, want Invalid", at, err)
		}
		if _, _, err := e.createAtTime(ctx, "ann@x", d.ID, at, "copy", snapdeck.PlanFree); snapdeck.ErrorCode(err) != snapdeck.Invalid {
			t.Errorf("create at %s: got %v, want Invalid", at, err)
		}
	}
	if got := e.rows(t, d.ID); got != "10 ok" {
		t.Errorf("after refused restores: got %s, want 10 ok", got)
	}
	dbs, _ := e.dbs.List(ctx)
	if len(dbs) != 1 {
		t.Errorf("databases after refused creates: got %d, want 1", len(dbs))
	}
	// A plan without a window has no history.
	free, err := e.create(ctx, "scratch", snapdeck.PlanFree)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok, err := e.snapshots.PITRWindow(ctx, free.ID); ok || err != nil {
		t.Errorf("window of a free database: got %v, %v; want none", ok, err)
	}
	if _, _, err := e.snapshots.RestoreToTime(ctx, "ann@x", free.ID, time.Now()); snapdeck.ErrorCode(err) != snapdeck.Invalid {
		t.Errorf("restore of a free database: got %v, want Invalid", err)
	}
}

func TestCreateDatabaseAtTime(t *testing.T) {
	ctx := context.Background()
	e := mustPITREnv(t)
	d := e.ledger(t)
	at := e.batch(t, d.ID, 300)
	e.batch(t, d.ID, 700)
	c, j, err := e.createAtTime(ctx, "ann@x", d.ID, at, "ledger then", snapdeck.PlanEnterprise)
	if err != nil {
		t.Fatal(err)
	}
	if j = e.waitJob(t, j.ID); j.Status != snapdeck.JobSucceeded {
		t.Fatalf("create at time: %s %s", j.Status, j.Error)
	}
	if got := e.rows(t, c.ID); got != "300 ok" {
		t.Errorf("new database: got %s, want 300 ok", got)
	}
	if got := e.rows(t, d.ID); got != "1000 ok" {
		t.Errorf("source: got %s, want 1000 ok", got)
	}
	if !e.reps.Running(c.ID) {
		t.Errorf("the new enterprise database is not replicated")
	}
}

func TestReplicatorTablesAreInvisible(t *testing.T) {
	ctx := context.Background()
	e := mustPITREnv(t)
	d, err := e.create(ctx, "empty", snapdeck.PlanEnterprise)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.reps.Sync(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	// Litestream made exactly the tables the console hides.
	r, err := e.dbs.Query(ctx, d.ID, `SELECT group_concat(name, ' ') FROM (SELECT name FROM sqlite_schema WHERE name LIKE '\_litestream%' ESCAPE '\' ORDER BY name)`, true)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Rows[0][0], "_litestream_lock _litestream_seq"; got != want || len(pitr.Tables) != 2 {
		t.Fatalf("Litestream's tables: got %q, want %q (pitr.Tables %v)", got, want, pitr.Tables)
	}
	tables, err := e.dbs.Host().Tables(ctx, d.ID)
	if err != nil || len(tables) != 0 {
		t.Errorf("table list of an empty replicated database: got %+v, %v; want none", tables, err)
	}
	if holds, err := e.snapshots.HoldsData(ctx, d.ID); holds || err != nil {
		t.Errorf("HoldsData of an empty replicated database: got %v, %v; want false", holds, err)
	}
	for _, sql := range []string{
		"DELETE FROM _litestream_seq",
		"UPDATE _litestream_seq SET seq = 0",
		"INSERT INTO _litestream_lock VALUES (2)",
		"DROP TABLE _litestream_lock",
		"ALTER TABLE _litestream_seq ADD COLUMN x",
		"CREATE TRIGGER tr AFTER INSERT ON _LITESTREAM_LOCK BEGIN SELECT 1; END",
		"CREATE INDEX i ON _litestream_seq(seq)",
	} {
		_, err := e.dbs.Query(ctx, d.ID, sql, false)
		if snapdeck.ErrorCode(err) != snapdeck.Invalid || !strings.Contains(err.Error(), "point-in-time replication keeps it") {
			t.Errorf("%s: got %v, want a refusal naming the replication", sql, err)
		}
	}
	// The replication goes on, and a user table shows as before.
	e.exec(t, d.ID, "CREATE TABLE t(id INTEGER PRIMARY KEY, n INTEGER)")
	if tables, err := e.dbs.Host().Tables(ctx, d.ID); err != nil || len(tables) != 1 || tables[0].Name != "t" {
		t.Errorf("table list: got %+v, %v; want t", tables, err)
	}
	if err := e.reps.Sync(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
}

// sync makes every commit so far restorable and returns a time after them.
func (e *pitrEnv) sync(t *testing.T, id string) time.Time {
	t.Helper()
	if err := e.reps.Sync(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	time.Sleep(5 * time.Millisecond)
	return at
}

func TestRestoreToTimeAcrossASnapshotRestoreAndALoad(t *testing.T) {
	ctx := context.Background()
	e := mustPITREnv(t)
	d := e.ledger(t)
	type point struct {
		at   time.Time
		want string
	}
	var points []point
	points = append(points, point{e.batch(t, d.ID, 2000), "2000 ok"})
	snap, err := e.snapshots.Snapshot(ctx, d.ID, snapdeck.SnapshotOnDemand, "test", "system")
	if err != nil {
		t.Fatal(err)
	}
	points = append(points, point{e.batch(t, d.ID, 2000), "4000 ok"})
	_, j, err := e.snapshots.Restore(ctx, d.ID, snap.ID, "ann@x")
	if err != nil {
		t.Fatal(err)
	}
	if j = e.waitJob(t, j.ID); j.Status != snapdeck.JobSucceeded {
		t.Fatalf("restore: %s %s", j.Status, j.Error)
	}
	points = append(points, point{e.sync(t, d.ID), "2000 ok"})
	points = append(points, point{e.batch(t, d.ID, 500), "2500 ok"})
	j, err = e.snapshots.Load(ctx, d.ID, e.upload(t, "../importfile/testdata/good.sqlite"), "ann@x")
	if err != nil {
		t.Fatal(err)
	}
	if j = e.waitJob(t, j.ID); j.Status != snapdeck.JobSucceeded {
		t.Fatalf("load: %s %s", j.Status, j.Error)
	}
	points = append(points, point{e.sync(t, d.ID), "100 ok"})
	points = append(points, point{e.batch(t, d.ID, 50), "150 ok"})
	for _, i := range []int{0, 5, 1, 4, 2, 3} {
		e.restoreTo(t, d.ID, points[i].at)
		if got := e.rows(t, d.ID); got != points[i].want {
			t.Errorf("restored to point %d: got %s, want %s", i+1, got, points[i].want)
		}
	}
}

func TestReplicationFollowsPausePlanAndDelete(t *testing.T) {
	ctx := context.Background()
	e := mustPITREnv(t)
	d := e.ledger(t)
	before := e.batch(t, d.ID, 10)
	if _, err := e.dbs.Pause(ctx, "system", d.ID); err != nil {
		t.Fatal(err)
	}
	if e.reps.Running(d.ID) {
		t.Errorf("a paused database is replicated")
	}
	if _, err := e.dbs.Resume(ctx, "system", d.ID); err != nil {
		t.Fatal(err)
	}
	if !e.reps.Running(d.ID) {
		t.Fatalf("a resumed enterprise database is not replicated")
	}
	e.batch(t, d.ID, 20)
	e.restoreTo(t, d.ID, before)
	if got := e.rows(t, d.ID); got != "10 ok" {
		t.Errorf("restored to before the pause: got %s, want 10 ok", got)
	}
	// A plan without a window keeps no history.
	if _, err := e.dbs.Update(ctx, "system", d.ID, database.Changes{Plan: ptr(snapdeck.PlanFree)}); err != nil {
		t.Fatal(err)
	}
	if n, err := e.reps.Bytes(ctx, d.ID); e.reps.Running(d.ID) || n != 0 || err != nil {
		t.Errorf("on the free plan: running %v, %d bytes of history (%v); want neither", e.reps.Running(d.ID), n, err)
	}
	if _, err := e.dbs.Update(ctx, "system", d.ID, database.Changes{Plan: ptr(snapdeck.PlanEnterprise)}); err != nil {
		t.Fatal(err)
	}
	e.sync(t, d.ID)
	if n, err := e.snapshots.PITRStorage(ctx, d.ID); n == 0 || err != nil {
		t.Errorf("back on enterprise: %d bytes of history (%v); want some", n, err)
	}
	// A deleted database's history goes with it.
	if _, err := e.dbs.Delete(ctx, "system", d.ID, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := e.snapshots.PITRStorage(ctx, d.ID); e.reps.Running(d.ID) || n != 0 || err != nil {
		t.Errorf("after delete: running %v, %d bytes of history (%v); want neither", e.reps.Running(d.ID), n, err)
	}
	if left, _ := filepath.Glob(filepath.Join(e.dir, "databases", "."+d.ID+"*")); len(left) != 0 {
		t.Errorf("after delete: Litestream's local files are left: %v", left)
	}
}

// TestRestoreToTheMomentAQueryTabCommitReturned checks that a Query-tab
// commit is given a time before its run returns: a restore to the time
// noted right after each of five commits made milliseconds apart gives
// exactly that commit, with no wait for the replication's next read.
func TestRestoreToTheMomentAQueryTabCommitReturned(t *testing.T) {
	e := mustPITREnv(t)
	d := e.ledger(t)
	var times []time.Time
	for range 5 {
		e.exec(t, d.ID, "INSERT INTO t(n) VALUES (1), (2), (3)")
		times = append(times, time.Now())
		// Times are kept to the millisecond: the next commit in
		// another one.
		time.Sleep(3 * time.Millisecond)
	}
	e.sync(t, d.ID)
	for _, i := range []int{1, 4, 0, 3, 2} {
		e.restoreTo(t, d.ID, times[i])
		if got, want := e.rows(t, d.ID), fmt.Sprintf("%d ok", 3*(i+1)); got != want {
			t.Errorf("restored to right after commit %d: got %s, want %s", i+1, got, want)
		}
	}
}

// TestHistoryIsPrunedWithTheWindow runs a database on a two-second window:
// its history keeps moving its start forward, and restores before it are
// refused. Litestream prunes on its own schedule, so this waits for it.
func TestHistoryIsPrunedWithTheWindow(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for Litestream's retention, about 30 s")
	}
	ctx := context.Background()
	var reps *pitr.Replicators
	e := envAt(t, t.TempDir(), func(cfg *database.Config) {
		reps, _ = pitr.New(pitr.Config{Blobs: cfg.Snapshots.Store.Blobs(), Checkpoints: cfg.Host, Interval: 100 * time.Millisecond})
		cfg.PITR = database.PITR{Replicators: reps, Windows: map[snapdeck.Plan]time.Duration{snapdeck.PlanEnterprise: 2 * time.Second}}
	})
	t.Cleanup(func() { reps.Close(ctx) })
	d, err := e.create(ctx, "short", snapdeck.PlanEnterprise)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	e.exec(t, d.ID, "CREATE TABLE t(n)")
	// The timeout only turns a hang into a failure. Litestream's
	// retention has no event to wait on: it took 26 s here on a loaded
	// machine (its L1 compaction every 30 s comes first).
	deadline := time.Now().Add(120 * time.Second)
	for {
		e.exec(t, d.ID, "INSERT INTO t VALUES (1)")
		earliest, ok, err := reps.Earliest(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if ok && earliest.After(created.Add(2*time.Second)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("history still starts at %s (%v), 120 s after the database was made at %s with a 2 s window", earliest, ok, created)
		}
		time.Sleep(200 * time.Millisecond)
	}
	from, _, ok, err := e.snapshots.PITRWindow(ctx, d.ID)
	if err != nil || !ok || time.Since(from) > 3*time.Second {
		t.Errorf("window starts at %s (%v, %v), want within the last 2 s", from, ok, err)
	}
	if _, _, err := e.snapshots.RestoreToTime(ctx, "ann@x", d.ID, created); snapdeck.ErrorCode(err) != snapdeck.Invalid {
		t.Errorf("restore to before the window: got %v, want Invalid", err)
	}
}

// ptr returns a pointer to v, for the optional fields of a change.
func ptr[T any](v T) *T { return &v }

// createAtTime makes a database as of at through Create, as both doors do.
func (e *env) createAtTime(ctx context.Context, actor, dbID string, at time.Time, name string, plan snapdeck.Plan) (snapdeck.Database, snapdeck.Job, error) {
	out, err := e.dbs.Create(ctx, actor, database.CreateRequest{Name: name, Plan: plan, FromDatabase: dbID, At: at})
	return out.Database, out.Job, err
}

// TestPlanChangeDuringRestoreToTime races a plan change with a restore to
// a time, in two goroutines: the change has checked that the database is
// running when the restore claims it and prepares its file. The change
// must then be refused as Busy and change nothing, so that the restore's
// swap, which stops and starts the replication, is not interleaved with
// the change's own start or stop of it: afterwards the database is on its
// plan, replicated as the plan says, and holds the restored rows.
func TestPlanChangeDuringRestoreToTime(t *testing.T) {
	ctx := context.Background()
	e := mustPITREnv(t)
	d := e.ledger(t)
	at := e.batch(t, d.ID, 2000)
	e.batch(t, d.ID, 1000)

	checked, release := make(chan struct{}), make(chan struct{})
	prepared, swap := make(chan struct{}), make(chan struct{})
	database.SetFaultHook(func(p string) {
		switch p {
		case "update:checked":
			close(checked)
			<-release
		case "restore-to-time:materialized":
			close(prepared)
			<-swap
		}
	})
	defer database.SetFaultHook(nil)

	updated := make(chan error, 1)
	go func() {
		_, err := e.dbs.Update(ctx, "system", d.ID, database.Changes{Plan: ptr(snapdeck.PlanFree)})
		updated <- err
	}()
	<-checked
	_, j, err := e.snapshots.RestoreToTime(ctx, "ann@x", d.ID, at)
	if err != nil {
		t.Fatal(err)
	}
	<-prepared
	close(release)
	var uerr error
	returned := false
	select {
	case uerr = <-updated:
		returned = true
	case <-time.After(5 * time.Second):
		// The change waits for the swap (it may, if it then applies to
		// the restored database as it is).
	}
	close(swap)
	if j = e.waitJob(t, j.ID); j.Status != snapdeck.JobSucceeded {
		t.Fatalf("restore: %s %s", j.Status, j.Error)
	}
	if !returned {
		uerr = <-updated
	}
	got, err := e.dbs.Find(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	replicated := e.reps.Running(d.ID)
	switch {
	case snapdeck.ErrorCode(uerr) == snapdeck.Busy:
		if got.Plan != snapdeck.PlanEnterprise || !replicated {
			t.Errorf("plan change refused: plan %s, replicated %v; want enterprise, replicated", got.Plan, replicated)
		}
	case uerr == nil:
		t.Errorf("plan change went through while the restore held the database (plan %s, replicated %v)", got.Plan, replicated)
	default:
		t.Fatalf("plan change: %v", uerr)
	}
	if got := e.rows(t, d.ID); got != "2000 ok" {
		t.Errorf("restored: got %s, want 2000 ok", got)
	}
}

// TestRestoreStoresWhatChangedInTheHistory restores a replicated database
// to a snapshot while another user keeps writing: the history after the
// swap holds the pages the restore changed, not the whole file (the
// replicator stops once the writers are closed, so its history ends on
// the replaced file), and what it holds at the end is the database as it
// is, commit for commit.
func TestRestoreStoresWhatChangedInTheHistory(t *testing.T) {
	ctx := context.Background()
	e := mustPITREnv(t)
	d := e.ledger(t)
	e.exec(t, d.ID, "CREATE TABLE big(id INTEGER PRIMARY KEY, pad BLOB)")
	e.exec(t, d.ID, "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < 4000) INSERT INTO big(pad) SELECT randomblob(1000) FROM s")
	e.batch(t, d.ID, 100)
	snap, err := e.snapshots.Snapshot(ctx, d.ID, snapdeck.SnapshotOnDemand, "test", "system")
	if err != nil {
		t.Fatal(err)
	}
	e.batch(t, d.ID, 100)
	e.exec(t, d.ID, "UPDATE big SET pad = randomblob(1000) WHERE id % 500 = 0")
	e.sync(t, d.ID)
	path := filepath.Join(e.dir, "databases", d.ID+".sqlite")
	// The image the restore writes: the file alone may be smaller, with
	// pages still in the WAL below Litestream's checkpoint threshold.
	size := snap.SizeBytes
	before, err := e.reps.Bytes(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}

	// The other user: one-row commits until the restore is done, refused
	// while it runs.
	stop := make(chan struct{})
	wrote := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				wrote <- n
				return
			default:
			}
			if _, err := e.dbs.Query(ctx, d.ID, "INSERT INTO t(n) VALUES (1)", false); err == nil {
				n++
			}
		}
	}()
	_, j, err := e.snapshots.Restore(ctx, d.ID, snap.ID, "ann@x")
	if err != nil {
		t.Fatal(err)
	}
	if j = e.waitJob(t, j.ID); j.Status != snapdeck.JobSucceeded {
		t.Fatalf("restore: %s %s", j.Status, j.Error)
	}
	time.Sleep(50 * time.Millisecond)
	close(stop)
	t.Logf("%d commits of the other user", <-wrote)
	e.sync(t, d.ID)
	after, err := e.reps.Bytes(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the history grew by %d bytes over the restore of a file of %d bytes", after-before, size)
	if after-before > size/4 {
		t.Errorf("the history grew by %d bytes over the restore of a file of %d bytes; want under a quarter of it", after-before, size)
	}
	out := filepath.Join(t.TempDir(), "now.sqlite")
	if err := e.reps.RestoreTo(ctx, d.ID, time.Now(), out); err != nil {
		t.Fatal(err)
	}
	if restored, live := rowsDigest(t, out), rowsDigest(t, path); restored != live {
		t.Errorf("the history ends on rows %s; the database holds %s", restored, live)
	}
}

// rowsDigest is a digest of the rows of tables t and big in the database
// file path, read through a connection of its own.
func rowsDigest(t *testing.T, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h := sha256.New()
	n := 0
	for _, q := range []string{"SELECT id, n FROM t ORDER BY id", "SELECT id, pad FROM big ORDER BY id"} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id int64
			var v []byte
			if err := rows.Scan(&id, &v); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(h, "%d:%x;", id, v)
			n++
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return fmt.Sprintf("%d rows, %x", n, h.Sum(nil)[:8])
}

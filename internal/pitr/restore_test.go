package pitr_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"

	"github.com/snapdeck/snapdeck/internal/checkpoint"
	"github.com/snapdeck/snapdeck/internal/pitr"
	"github.com/snapdeck/snapdeck/internal/snapstore"
)

// replicated is a database replicated into blobs under dir, with its
// writer.
type replicated struct {
	dir   string
	path  string
	w     *sql.DB
	blobs snapstore.Blobs
	reps  *pitr.Replicators
}

const testID = "db1"

func startReplicated(t *testing.T) *replicated {
	t.Helper()
	return startReplicatedEvery(t, 100*time.Millisecond)
}

// startReplicatedEvery is startReplicated with a replication interval
// of its own.
func startReplicatedEvery(t *testing.T, interval time.Duration) *replicated {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "db.sqlite")
	w := openWriter(t, path)
	if _, err := w.Exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, n INTEGER, pad TEXT)`); err != nil {
		t.Fatal(err)
	}
	ck := checkpoint.New(w, nil)
	t.Cleanup(ck.Close)
	blobs, err := snapstore.NewLocal(filepath.Join(dir, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	reps, err := pitr.New(pitr.Config{Blobs: blobs, Checkpoints: checkpointsOf{ck}, Interval: interval})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reps.Close(ctx) })
	if err := reps.Start(ctx, testID, path, time.Hour); err != nil {
		t.Fatal(err)
	}
	return &replicated{dir: dir, path: path, w: w, blobs: blobs, reps: reps}
}

// step runs sql, makes it restorable and returns a time after it.
func (r *replicated) step(t *testing.T, sql string) time.Time {
	t.Helper()
	if _, err := r.w.Exec(sql); err != nil {
		t.Fatal(err)
	}
	if err := r.reps.Sync(context.Background(), testID); err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	time.Sleep(5 * time.Millisecond)
	return at
}

// TestRestoreToMatchesLitestream restores to each time of a history that
// grows the database, rewrites it, shrinks it (VACUUM) and grows it again,
// and compares each file byte for byte with Litestream's own restore
// (Replica.Restore, the compactor) of the same time, then counts its rows.
func TestRestoreToMatchesLitestream(t *testing.T) {
	ctx := context.Background()
	r := startReplicated(t)
	insert := func(n int) string {
		return fmt.Sprintf(`WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < %d)
			INSERT INTO t(n, pad) SELECT i, hex(randomblob(100)) FROM s`, n)
	}
	type point struct {
		at   time.Time
		rows int
	}
	var points []point
	points = append(points, point{r.step(t, insert(3000)), 3000})
	for i := range 5 {
		points = append(points, point{r.step(t, insert(7)), 3007 + 7*i})
	}
	points = append(points, point{r.step(t, `UPDATE t SET pad = hex(randomblob(120)) WHERE id % 3 = 0`), 3035})
	points = append(points, point{r.step(t, `DELETE FROM t WHERE id > 500`), 500})
	points = append(points, point{r.step(t, `VACUUM`), 500})
	points = append(points, point{r.step(t, insert(2000)), 2500})
	for i, p := range points {
		mine := filepath.Join(r.dir, fmt.Sprintf("mine-%d.sqlite", i))
		if err := r.reps.RestoreTo(ctx, testID, p.at, mine); err != nil {
			t.Fatalf("point %d: %v", i, err)
		}
		theirs := filepath.Join(r.dir, fmt.Sprintf("theirs-%d.sqlite", i))
		opt := litestream.NewRestoreOptions()
		opt.OutputPath = theirs
		opt.Timestamp = p.at.Add(time.Millisecond)
		if err := litestream.NewReplicaWithClient(nil, pitr.NewClient(r.blobs, testID, nil)).Restore(ctx, opt); err != nil {
			t.Fatalf("point %d, Litestream: %v", i, err)
		}
		a, _ := os.ReadFile(mine)
		b, _ := os.ReadFile(theirs)
		if !bytes.Equal(a, b) {
			t.Errorf("point %d: restored %d bytes, Litestream %d bytes, not the same", i, len(a), len(b))
		}
		n, ok := rowsAndCheck(t, mine)
		if n != p.rows || ok != "ok" {
			t.Errorf("point %d: %d rows, integrity_check %q; want %d rows, ok", i, n, ok, p.rows)
		}
	}
}

// TestRestoreToRefusesADamagedFile flips one byte in the middle of each
// later file in turn, and of the snapshot, then one in each one's page
// index: each restore is refused, and
// leaves no file behind.
func TestRestoreToRefusesADamagedFile(t *testing.T) {
	ctx := context.Background()
	r := startReplicated(t)
	r.step(t, `WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < 2000) INSERT INTO t(n, pad) SELECT i, hex(randomblob(100)) FROM s`)
	r.step(t, `INSERT INTO t(n) VALUES (1)`)
	at := r.step(t, `UPDATE t SET n = n + 1 WHERE id < 100`)
	var files []string
	filepath.WalkDir(filepath.Join(r.dir, "snapshots"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".ltx") && !strings.Contains(p, "/l1/") && !strings.Contains(p, "/l2/") && !strings.Contains(p, "/l3/") {
			files = append(files, p)
		}
		return nil
	})
	if len(files) < 3 {
		t.Fatalf("want a snapshot and two later files, have %v", files)
	}
	out := filepath.Join(r.dir, "out.sqlite")
	if err := r.reps.RestoreTo(ctx, testID, at, out); err != nil {
		t.Fatalf("undamaged: %v", err)
	}
	os.Remove(out)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// In the pages, and in the page index before the trailer, which
		// tells the restore which file's copy of each page to write.
		for _, at2 := range []int{len(data) / 2, len(data) - ltx.TrailerSize - 8 - 3} {
			damaged := bytes.Clone(data)
			damaged[at2] ^= 0x40
			os.WriteFile(f, damaged, 0o644)
			err = r.reps.RestoreTo(ctx, testID, at, out)
			os.WriteFile(f, data, 0o644)
			if err == nil {
				t.Errorf("%s damaged at byte %d of %d: restored", filepath.Base(f), at2, len(data))
			}
			if _, serr := os.Stat(out); serr == nil {
				t.Errorf("%s damaged: %s left behind", filepath.Base(f), out)
				os.Remove(out)
			}
		}
	}
}

// localL0 is how many L0 files Litestream keeps next to the database.
func localL0(t *testing.T, path string) int {
	t.Helper()
	ents, err := os.ReadDir(litestream.NewDB(path).LTXLevelDir(0))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".ltx") {
			n++
		}
	}
	return n
}

// TestLocalCopyKeepsOnlyTheNewest makes twenty commits, each uploaded:
// Litestream's local directory keeps the newest L0 file only, the blobs
// keep every one, a restore to each time is exact, and replication
// started again goes on from where it was.
func TestLocalCopyKeepsOnlyTheNewest(t *testing.T) {
	ctx := context.Background()
	r := startReplicated(t)
	var ats []time.Time
	ats = append(ats, r.step(t, `WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < 2000) INSERT INTO t(n, pad) SELECT i, hex(randomblob(100)) FROM s`))
	for range 19 {
		ats = append(ats, r.step(t, `INSERT INTO t(n) VALUES (1)`))
	}
	if n := localL0(t, r.path); n != 1 {
		t.Errorf("%d local L0 files after twenty uploaded commits, want 1", n)
	}
	infos, err := remoteL0(ctx, r.blobs)
	if err != nil {
		t.Fatal(err)
	}
	if infos < 20 {
		t.Errorf("%d L0 files in the blobs, want 20 or more", infos)
	}
	for i, at := range ats {
		out := filepath.Join(r.dir, fmt.Sprintf("r-%d.sqlite", i))
		if err := r.reps.RestoreTo(ctx, testID, at, out); err != nil {
			t.Fatal(err)
		}
		if n, ok := rowsAndCheck(t, out); n != 2000+i || ok != "ok" {
			t.Errorf("restore to commit %d: %d rows, integrity_check %q; want %d, ok", i, n, ok, 2000+i)
		}
	}
	// Stopped and started again, as a plan change does: Litestream reads
	// its position from the newest local file.
	if err := r.reps.Stop(ctx, testID); err != nil {
		t.Fatal(err)
	}
	if err := r.reps.Start(ctx, testID, r.path, time.Hour); err != nil {
		t.Fatal(err)
	}
	at := r.step(t, `INSERT INTO t(n) VALUES (2)`)
	out := filepath.Join(r.dir, "after-restart.sqlite")
	if err := r.reps.RestoreTo(ctx, testID, at, out); err != nil {
		t.Fatal(err)
	}
	if n, ok := rowsAndCheck(t, out); n != 2020 || ok != "ok" {
		t.Errorf("after a restart: %d rows, integrity_check %q; want 2020, ok", n, ok)
	}
}

// remoteL0 counts the L0 files of testID in blobs.
func remoteL0(ctx context.Context, blobs snapstore.Blobs) (int, error) {
	var n int
	err := snapstore.ListPrefix(ctx, blobs, pitr.KeyPrefix+testID+"/l0/", func(string) error {
		n++
		return nil
	})
	return n, err
}

// rowsAndCheck is t's row count in the database at path and its
// integrity_check.
func rowsAndCheck(t *testing.T, path string) (int, string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	var ok string
	if err := db.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return n, ok
}

// TestRestoreOverManyLevel0FilesAllocatesLittle restores to a time whose
// plan holds hundreds of level-0 files of a page or two, as a busy
// database's last half minute does before its next compaction: each file
// takes buffers of its size, not a MiB's worth (4 MiB of pieces and 1 MiB
// of read buffer each, and as much again for its page index, took 4-9 s
// for 800 files of a 12 MB database, zeroing 5 GB).
func TestRestoreOverManyLevel0FilesAllocatesLittle(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path, _, reps := replicatedFile(t, dir, 1000)
	w := openWriter(t, path)
	const commits = 300
	for range commits {
		if _, err := w.Exec(`INSERT INTO t(n) VALUES (-1)`); err != nil {
			t.Fatal(err)
		}
		reps.Committed(ctx, testID, true)
	}
	if err := reps.Sync(ctx, testID); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "restored.sqlite")
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := reps.RestoreTo(ctx, testID, time.Now(), out); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if n, ok := rowsAndCheck(t, out); n != 1000+commits || ok != "ok" {
		t.Fatalf("restored %d rows, integrity_check %q; want %d, ok", n, ok, 1000+commits)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// The whole process allocates meanwhile (Litestream's ticks too): a
	// bound well above a restore's own needs, far below a MiB a file.
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d bytes allocated by the process during a restore over about %d files, of a %d-byte database", allocated, commits, fi.Size())
	if limit := uint64(fi.Size()) + 64<<20; allocated > limit {
		t.Errorf("%d bytes allocated during a restore over about %d files; want under %d", allocated, commits, limit)
	}
}

// TestCommitRestorableWithinInterval: a commit, told to the replicator as
// a lease does (Committed without waiting), is restorable within half the
// interval even when it comes right after an upload, the worst moment:
// each commit after the first is made 50 ms after the previous one became
// restorable, which is just after an upload. With the uploads on a ticker
// of the whole interval (before uploadInterval) such a commit waited
// nearly the whole interval.
func TestCommitRestorableWithinInterval(t *testing.T) {
	ctx := context.Background()
	const interval = 4 * time.Second
	r := startReplicatedEvery(t, interval)
	dir, w, reps := r.dir, r.w, r.reps
	if err := reps.Sync(ctx, testID); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 4; i++ {
		if _, err := w.Exec(`INSERT INTO t(n) VALUES (?)`, i); err != nil {
			t.Fatal(err)
		}
		committed := time.Now()
		reps.Committed(ctx, testID, false)
		out := filepath.Join(dir, "restored.sqlite")
		for {
			if err := reps.RestoreTo(ctx, testID, time.Now(), out); err != nil {
				t.Fatal(err)
			}
			n, _ := rowsAndCheck(t, out)
			for _, f := range []string{out, out + "-wal", out + "-shm"} {
				os.Remove(f)
			}
			if n == i {
				break
			}
			if waited := time.Since(committed); waited > interval/2 {
				t.Fatalf("commit %d not restorable %s after it (interval %s)", i, waited.Round(time.Millisecond), interval)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("commit %d restorable after %s", i, time.Since(committed).Round(time.Millisecond))
		time.Sleep(50 * time.Millisecond)
	}
}

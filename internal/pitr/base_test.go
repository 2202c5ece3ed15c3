package pitr_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"

	"github.com/snapdeck/snapdeck/internal/pitr"
	"github.com/snapdeck/snapdeck/internal/snapstore"
)

// noCheckpointer stands for Host when the test's writers never checkpoint
// by themselves (wal_autocheckpoint(0)).
type noCheckpointer struct{}

func (noCheckpointer) TakeOverCheckpoints(string, string) (func(), error) { return func() {}, nil }

// procIO is how many write system calls this process has made so far,
// and how many bytes it has read (/proc/self/io), and false where that is
// not known.
func procIO(t *testing.T) (writes, read int64, ok bool) {
	t.Helper()
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, 0, false
	}
	found := 0
	for line := range strings.Lines(string(data)) {
		for key, to := range map[string]*int64{"syscw:": &writes, "rchar:": &read} {
			if v, ok := strings.CutPrefix(line, key); ok {
				n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				if err != nil {
					return 0, 0, false
				}
				*to = n
				found++
			}
		}
	}
	return writes, read, found == 2
}

// fileWithRows makes a database file at path, without a WAL, as a swap
// installs one: table t with rows rows of 2 KB.
func fileWithRows(t *testing.T, path string, rows int) {
	t.Helper()
	w, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Exec(fmt.Sprintf(`CREATE TABLE t(id INTEGER PRIMARY KEY, n INTEGER, pad TEXT);
		WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < %d)
		INSERT INTO t(n, pad) SELECT i, hex(randomblob(1000)) FROM s`, rows)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "-wal"); err == nil {
		t.Fatalf("%s still has a WAL after its last close", path)
	}
}

// replicatedFile makes a database file of rows rows in dir (fileWithRows)
// and starts replicating it into local blobs under dir, every 100 ms
// with an hour's window; it returns the file's path, the blobs and the
// replicators, closed at the test's end.
func replicatedFile(t *testing.T, dir string, rows int) (string, *snapstore.Local, *pitr.Replicators) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(dir, "db.sqlite")
	fileWithRows(t, path, rows)
	blobs, err := snapstore.NewLocal(filepath.Join(dir, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	reps, err := pitr.New(pitr.Config{Blobs: blobs, Checkpoints: noCheckpointer{}, Interval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reps.Close(ctx) })
	if err := reps.Start(ctx, testID, path, time.Hour); err != nil {
		t.Fatal(err)
	}
	return path, blobs, reps
}

// TestStartAfterASwapWritesTheBaseInPieces replicates a database, swaps
// another file in as a restore does (replication stopped, the new file
// without a WAL renamed over the old), starts again and commits at once.
// The history after the swap starts from the whole new file, read once
// and written a piece at a time (Litestream's own encoder wrote three
// write system calls a page, and its start read the base once more), and
// the timeline is exact: a restore to before the swap
// gives the old content, to after the commit the new content with it,
// byte for byte as Litestream's own restore gives it.
func TestStartAfterASwapWritesTheBaseInPieces(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path, blobs, reps := replicatedFile(t, dir, 100)
	w := openWriter(t, path)
	if _, err := w.Exec(`INSERT INTO t(n) VALUES (-1)`); err != nil {
		t.Fatal(err)
	}
	if err := reps.Sync(ctx, testID); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	time.Sleep(5 * time.Millisecond)

	// The swap, as Host.Replace does it: replication stops, the pools
	// close, what the WAL holds is copied into the old file and the WAL
	// goes (Litestream keeps it: PERSIST_WAL), the new file takes the old
	// one's name.
	if err := reps.Stop(ctx, testID); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	drain, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := drain.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	if err := drain.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > 0 {
		t.Fatalf("the old file's WAL still holds %d bytes after its last close", fi.Size())
	}
	next := filepath.Join(dir, "next.sqlite")
	fileWithRows(t, next, 3000)
	if err := os.Rename(next, path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	pages := fi.Size() / 4096
	os.Remove(path + "-shm")

	sysw0, read0, counted := procIO(t)
	if err := reps.Start(ctx, testID, path, time.Hour); err != nil {
		t.Fatal(err)
	}
	w = openWriter(t, path)
	if _, err := w.Exec(`INSERT INTO t(n) VALUES (-2)`); err != nil {
		t.Fatal(err)
	}
	if err := reps.Sync(ctx, testID); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	sysw1, read1, _ := procIO(t)
	t.Logf("%d write system calls and %d bytes read for a file of %d pages", sysw1-sysw0, read1-read0, pages)
	if counted && sysw1-sysw0 > pages/4 {
		t.Errorf("%d write system calls from the start to the first commit after the swap being restorable, for a file of %d pages; want under %d",
			sysw1-sysw0, pages, pages/4)
	}
	// The base reads the file once; Litestream, opening, checks the whole
	// of its last level-0 file: the small one after the base, not the base.
	if counted && read1-read0 > fi.Size()*3/2 {
		t.Errorf("%d bytes read from the start to the first commit after the swap being restorable, for a file of %d bytes; want under %d",
			read1-read0, fi.Size(), fi.Size()*3/2)
	}
	time.Sleep(5 * time.Millisecond)
	if _, err := w.Exec(`INSERT INTO t(n) VALUES (-3)`); err != nil {
		t.Fatal(err)
	}
	if err := reps.Sync(ctx, testID); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name string
		at   time.Time
		rows int
	}{{"before the swap", before, 101}, {"after the first commit after it", after, 3001}, {"now", time.Now(), 3002}} {
		mine := filepath.Join(dir, "mine.sqlite")
		os.Remove(mine)
		if err := reps.RestoreTo(ctx, testID, c.at, mine); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if n, ok := rowsAndCheck(t, mine); n != c.rows || ok != "ok" {
			t.Errorf("%s: %d rows, integrity_check %q; want %d, ok", c.name, n, ok, c.rows)
		}
		sameAsLitestream(t, blobs, c.name, c.at, mine)
	}
}

// sameAsLitestream checks that mine, restored to at (what) from the
// history in blobs, is byte for byte what Litestream's own restore gives.
func sameAsLitestream(t *testing.T, blobs snapstore.Blobs, what string, at time.Time, mine string) {
	t.Helper()
	theirs := filepath.Join(t.TempDir(), "theirs.sqlite")
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = theirs
	opt.Timestamp = at.Add(time.Millisecond)
	if err := litestream.NewReplicaWithClient(nil, pitr.NewClient(blobs, testID, nil)).Restore(context.Background(), opt); err != nil {
		t.Fatalf("%s, Litestream: %v", what, err)
	}
	a, _ := os.ReadFile(mine)
	b, _ := os.ReadFile(theirs)
	if !bytes.Equal(a, b) {
		t.Errorf("%s: restored %d bytes, Litestream %d bytes, not the same", what, len(a), len(b))
	}
}

// copyTree copies the files under from to to.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
}

// TestStartBehindTheReplicaLeavesItToLitestream puts back a database
// file and Litestream's directory next to it as a backup had them, one
// file behind the replica (the next TXID is taken there), and starts: the
// base is not written over that TXID, Litestream catches up with the
// replica and reads the whole file itself, and a restore to the end holds
// the file as put back and the commit after it.
func TestStartBehindTheReplicaLeavesItToLitestream(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "db.sqlite")
	fileWithRows(t, path, 100)
	blobs, err := snapstore.NewLocal(filepath.Join(dir, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	reps, err := pitr.New(pitr.Config{Blobs: blobs, Checkpoints: noCheckpointer{}, Interval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reps.Close(ctx) })
	meta := litestream.NewDB(path).MetaPath()
	backup := filepath.Join(dir, "backup")
	stop := func(w *sql.DB) {
		t.Helper()
		if err := reps.Stop(ctx, testID); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		drain, err := sql.Open("sqlite", "file:"+path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := drain.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			t.Fatal(err)
		}
		drain.Close()
		os.Remove(path + "-wal")
		os.Remove(path + "-shm")
	}
	commit := func(w *sql.DB, n int) {
		t.Helper()
		if _, err := w.Exec(`INSERT INTO t(n) VALUES (?)`, n); err != nil {
			t.Fatal(err)
		}
	}

	if err := reps.Start(ctx, testID, path, time.Hour); err != nil {
		t.Fatal(err)
	}
	w := openWriter(t, path)
	commit(w, -1)
	if err := reps.Sync(ctx, testID); err != nil {
		t.Fatal(err)
	}
	stop(w)
	copyTree(t, meta, filepath.Join(backup, "meta"))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	// One more file in the replica: a change already in the WAL when the
	// replication starts, read by Litestream into the next TXID.
	w = openWriter(t, path)
	if _, err := w.Exec(`UPDATE t SET pad = 'changed after the backup' WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	if err := reps.Start(ctx, testID, path, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := reps.Sync(ctx, testID); err != nil {
		t.Fatal(err)
	}
	stop(w)

	// The backup goes back, one file behind the replica.
	if err := os.RemoveAll(meta); err != nil {
		t.Fatal(err)
	}
	copyTree(t, filepath.Join(backup, "meta"), meta)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := reps.Start(ctx, testID, path, time.Hour); err != nil {
		t.Fatal(err)
	}
	w = openWriter(t, path)
	commit(w, -3)
	if err := reps.Sync(ctx, testID); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "restored.sqlite")
	if err := reps.RestoreTo(ctx, testID, time.Now(), out); err != nil {
		t.Fatal(err)
	}
	if n, ok := rowsAndCheck(t, out); n != 102 || ok != "ok" {
		t.Errorf("restored to the end: %d rows, integrity_check %q; want 102 (the file put back and one commit), ok", n, ok)
	}
	if got, want := content(t, out), content(t, path); got != want {
		t.Errorf("restored to the end: not the file put back and the commit after it (%d and %d bytes of rows)", len(got), len(want))
	}
}

// content is every row of t in the database at path, as one string.
func content(t *testing.T, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var s string
	if err := db.QueryRow(`SELECT group_concat(id || ',' || n || ',' || ifnull(pad, ''), ';') FROM (SELECT * FROM t ORDER BY id)`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStartAfterSwapStoresWhatChanged swaps in a copy of the database with
// a few rows changed, as a restore to a snapshot or to a time mostly does,
// and starts again with the replaced file: once the history ended on the
// replaced file (the writers closed, then the stop), the base after the
// swap holds the pages that changed, not the file, and the timeline is
// exact on either side of the swap, byte for byte as Litestream's own
// restore gives it. Given a file the history did not end on, the base
// holds the whole file.
func TestStartAfterSwapStoresWhatChanged(t *testing.T) {
	for _, c := range []struct {
		name  string
		other bool // the replaced file given is not the one the history ended on
	}{{"over the replaced file", false}, {"over another file", true}} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			path, blobs, reps := replicatedFile(t, dir, 3000)
			w := openWriter(t, path)
			if _, err := w.Exec(`UPDATE t SET n = -n WHERE id % 100 = 0`); err != nil {
				t.Fatal(err)
			}
			if err := reps.Sync(ctx, testID); err != nil {
				t.Fatal(err)
			}
			// The swap, as Host.Replace does it: the writers close, then
			// replication stops, what the WAL holds is copied into the old
			// file, which is kept under another name, and the new file takes
			// its name.
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if err := reps.Stop(ctx, testID); err != nil {
				t.Fatal(err)
			}
			before := time.Now()
			time.Sleep(5 * time.Millisecond)
			drain, err := sql.Open("sqlite", "file:"+path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := drain.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
				t.Fatal(err)
			}
			if err := drain.Close(); err != nil {
				t.Fatal(err)
			}
			os.Remove(path + "-wal")
			os.Remove(path + "-shm")
			old, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			next := filepath.Join(dir, "next.sqlite")
			if err := os.WriteFile(next, old, 0o644); err != nil {
				t.Fatal(err)
			}
			e, err := sql.Open("sqlite", "file:"+next)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.Exec(`UPDATE t SET n = 777777 WHERE id IN (5, 1500, 2999)`); err != nil {
				t.Fatal(err)
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			os.Remove(next + "-wal")
			kept := filepath.Join(dir, "db.sqlite.undo-1")
			if err := os.Rename(path, kept); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(next, path); err != nil {
				t.Fatal(err)
			}
			replaced := kept
			if c.other {
				replaced = filepath.Join(dir, "other.sqlite")
				if err := os.WriteFile(replaced, old, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			stored0, err := reps.Bytes(ctx, testID)
			if err != nil {
				t.Fatal(err)
			}
			if err := reps.StartAfterSwap(ctx, testID, path, time.Hour, replaced); err != nil {
				t.Fatal(err)
			}
			// The replaced file goes while the base may still be read from
			// it, as a replace removes it once its safety snapshot is done.
			if err := os.Remove(kept); err != nil {
				t.Fatal(err)
			}
			w = openWriter(t, path)
			if _, err := w.Exec(`INSERT INTO t(n) VALUES (-2)`); err != nil {
				t.Fatal(err)
			}
			if err := reps.Sync(ctx, testID); err != nil {
				t.Fatal(err)
			}
			after := time.Now()
			stored1, err := reps.Bytes(ctx, testID)
			if err != nil {
				t.Fatal(err)
			}
			grew := stored1 - stored0
			t.Logf("the history grew by %d bytes over the swap of a file of %d bytes", grew, fi.Size())
			if small := grew < fi.Size()/10; small == c.other {
				t.Errorf("the history grew by %d bytes over the swap of a file of %d bytes; want %s", grew, fi.Size(),
					map[bool]string{false: "under a tenth of it", true: "the whole file"}[c.other])
			}
			for _, at := range []struct {
				name    string
				at      time.Time
				rows    int
				changed int
			}{{"before the swap", before, 3000, 0}, {"after the first commit after it", after, 3001, 3}} {
				mine := filepath.Join(dir, "mine.sqlite")
				os.Remove(mine)
				if err := reps.RestoreTo(ctx, testID, at.at, mine); err != nil {
					t.Fatalf("%s: %v", at.name, err)
				}
				if n, ok := rowsAndCheck(t, mine); n != at.rows || ok != "ok" {
					t.Errorf("%s: %d rows, integrity_check %q; want %d, ok", at.name, n, ok, at.rows)
				}
				r, err := sql.Open("sqlite", "file:"+mine+"?mode=ro")
				if err != nil {
					t.Fatal(err)
				}
				var changed int
				if err := r.QueryRow(`SELECT count(*) FROM t WHERE n = 777777`).Scan(&changed); err != nil {
					t.Fatal(err)
				}
				r.Close()
				if changed != at.changed {
					t.Errorf("%s: %d rows changed by the new file; want %d", at.name, changed, at.changed)
				}
				sameAsLitestream(t, blobs, at.name, at.at, mine)
			}
			// The new file itself, page for page, is what the history holds
			// at the end (but for Litestream's own tables).
			mine := filepath.Join(dir, "end.sqlite")
			if err := reps.RestoreTo(ctx, testID, time.Now(), mine); err != nil {
				t.Fatal(err)
			}
			if n, ok := rowsAndCheck(t, mine); n != 3001 || ok != "ok" {
				t.Errorf("now: %d rows, %q", n, ok)
			}
		})
	}
}

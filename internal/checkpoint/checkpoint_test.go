package checkpoint

import (
	"database/sql"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// openPair opens the database at path twice, as a writer that never
// checkpoints and a pool for the checkpointer, with a table t to write to.
func openPair(t *testing.T, path string) (w, ckDB *sql.DB) {
	t.Helper()
	open := func() *sql.DB {
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(wal)&_pragma=synchronous(normal)&_pragma=wal_autocheckpoint(0)&_pragma=busy_timeout(5000)")
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		t.Cleanup(func() { db.Close() })
		return db
	}
	w, ckDB = open(), open()
	if _, err := w.Exec(`CREATE TABLE t (v BLOB)`); err != nil {
		t.Fatal(err)
	}
	return w, ckDB
}

// TestNudgedCheckpointsReachTheFile commits on a connection that never
// checkpoints and checks that the nudged checkpointer copies the commits
// into the database file, and that Close returns once it has stopped.
func TestNudgedCheckpointsReachTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db.sqlite")
	w, ckDB := openPair(t, path)
	c := New(ckDB, nil)
	for range 10 {
		if _, err := w.Exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 100) INSERT INTO t SELECT randomblob(1000) FROM n`); err != nil {
			t.Fatal(err)
		}
		c.Nudge()
	}
	waitCheckpointed(t, path)
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	c.Nudge() // after Close: must neither block nor panic
}

// TestCopiedWALIsTruncated checks that once a checkpoint has copied a long
// WAL, the file is truncated rather than kept at its largest size.
func TestCopiedWALIsTruncated(t *testing.T) {
	defer func(n int) { truncateFrames = n }(truncateFrames)
	truncateFrames = 100
	path := filepath.Join(t.TempDir(), "db.sqlite")
	w, ckDB := openPair(t, path)
	if _, err := w.Exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 1000) INSERT INTO t SELECT randomblob(1000) FROM n`); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path + "-wal"); err != nil || fi.Size() < 1_000_000 {
		t.Fatalf("WAL before the checkpoint: %v, %v; want over 1 MB", fi, err)
	}
	c := New(ckDB, nil)
	defer c.Close()
	c.Nudge()
	deadline := time.Now().Add(5 * time.Second)
	for {
		fi, err := os.Stat(path + "-wal")
		if err == nil && fi.Size() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("WAL still %d bytes 5 s after a checkpoint that copied it all", fi.Size())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The writer goes on, and its data is there.
	var n int
	if err := w.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil || n != 1000 {
		t.Errorf("after truncation: %d rows, %v; want 1000", n, err)
	}
	// The pooled connection got its busy timeout back: openPair's 5000 ms.
	var ms int
	if err := ckDB.QueryRow(`PRAGMA busy_timeout`).Scan(&ms); err != nil || ms != 5000 {
		t.Errorf("checkpointer's connection busy_timeout %d, %v; want %d", ms, err, 5000)
	}
}

// TestStandAsideStopsCheckpoints checks the seam for another owner of the
// checkpoints: once StandAside returns, nudges are dropped and the file is
// left alone; Resume checkpoints what was committed meanwhile.
func TestStandAsideStopsCheckpoints(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db.sqlite")
	w, ckDB := openPair(t, path)
	c := New(ckDB, nil)
	defer c.Close()
	c.Nudge() // a nudge waiting is dropped by StandAside
	c.StandAside()
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := w.Exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 100) INSERT INTO t SELECT randomblob(1000) FROM n`); err != nil {
			t.Fatal(err)
		}
		c.Nudge()
		if len(c.kick) != 0 {
			t.Fatal("a nudge was queued while the checkpointer stands aside")
		}
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != before.Size() {
		t.Fatalf("database file while standing aside: %v, %v; want %d bytes", fi, err, before.Size())
	}
	c.Resume()
	waitCheckpointed(t, path)
}

// waitCheckpointed waits until the database file at path holds the 1 MB of
// commits the tests make, that is until a checkpoint copied them.
func waitCheckpointed(t *testing.T, path string) {
	t.Helper()
	// The deadline only turns a hang into a failure.
	deadline := time.Now().Add(5 * time.Second)
	for {
		fi, err := os.Stat(path)
		if err == nil && fi.Size() > 900_000 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("database file %d bytes after 1 MB of commits: nothing was checkpointed", fi.Size())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBusyWriterKeepsItsWAL checks that a long WAL is not truncated under a
// writer that keeps committing (the truncation holds every commit for the
// fsync and the ftruncate, 100-440 ms in the engine benchmark), and that
// it is once the writer stops.
func TestBusyWriterKeepsItsWAL(t *testing.T) {
	defer func(n int) { truncateFrames = n }(truncateFrames)
	truncateFrames = 100
	path := filepath.Join(t.TempDir(), "db.sqlite")
	w, ckDB := openPair(t, path)
	if _, err := w.Exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 1000) INSERT INTO t SELECT randomblob(1000) FROM n`); err != nil {
		t.Fatal(err)
	}
	walSize := func() int64 {
		fi, err := os.Stat(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	c := New(ckDB, nil)
	defer c.Close()
	// Six times Every of commits, each nudging: every checkpoint copies
	// a WAL of more than truncateFrames, and none may truncate it.
	largest := walSize()
	commits := 0
	for end := time.Now().Add(6 * Every); time.Now().Before(end); commits++ {
		if _, err := w.Exec(`INSERT INTO t VALUES (randomblob(1000))`); err != nil {
			t.Fatal(err)
		}
		c.Nudge()
		// A pause between commits, as a real writer has, in which the
		// write lock is free for a truncation to take.
		time.Sleep(time.Millisecond)
		if n := walSize(); n < largest {
			t.Fatalf("commit %d: WAL truncated from %d to %d bytes while the writer was busy", commits, largest, n)
		} else {
			largest = n
		}
	}
	// The writer stopped: the WAL goes.
	deadline := time.Now().Add(5 * time.Second)
	for walSize() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("WAL still %d bytes 5 s after the writer stopped (%d commits)", walSize(), commits)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBusyWriterRestartsTheWAL checks that a writer that never pauses does
// not grow the WAL without end: a passive checkpoint never catches up with
// it, so the WAL starts again from its beginning only if the checkpointer
// restarts it. A restart shows as new salts in the WAL's header.
func TestBusyWriterRestartsTheWAL(t *testing.T) {
	defer func(n int) { truncateFrames = n }(truncateFrames)
	truncateFrames = 100
	path := filepath.Join(t.TempDir(), "db.sqlite")
	w, ckDB := openPair(t, path)
	c := New(ckDB, nil)
	defer c.Close()
	if _, err := w.Exec(`INSERT INTO t VALUES (randomblob(1000))`); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	salts := func() string {
		hdr := make([]byte, 24)
		if _, err := f.ReadAt(hdr, 0); err != nil {
			t.Fatal(err)
		}
		return string(hdr[16:24])
	}
	var commits atomic.Int64
	stop := make(chan struct{})
	done := make(chan error)
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if _, err := w.Exec(`INSERT INTO t VALUES (randomblob(1000))`); err != nil {
				done <- err
				return
			}
			commits.Add(1)
			c.Nudge()
		}
	}()
	last, restarts := salts(), 0
	for end := time.Now().Add(6 * Every); time.Now().Before(end); {
		time.Sleep(5 * time.Millisecond)
		if s := salts(); s != last {
			last = s
			restarts++
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if restarts < 2 {
		t.Fatalf("%d commits over %s with no pause: the WAL started again %d times; want at least 2", commits.Load(), 6*Every, restarts)
	}
}

package checkpoint

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// TestNudgedCheckpointsReachTheFile commits on a connection that never
// checkpoints and checks that the nudged checkpointer copies the commits
// into the database file, and that Close returns once it has stopped.
func TestNudgedCheckpointsReachTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db.sqlite")
	open := func() *sql.DB {
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(wal)&_pragma=wal_autocheckpoint(0)&_pragma=busy_timeout(5000)")
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		t.Cleanup(func() { db.Close() })
		return db
	}
	w, ckDB := open(), open()
	if _, err := w.Exec(`CREATE TABLE t (v BLOB)`); err != nil {
		t.Fatal(err)
	}
	c := New(ckDB, nil)
	for range 10 {
		if _, err := w.Exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 100) INSERT INTO t SELECT randomblob(1000) FROM n`); err != nil {
			t.Fatal(err)
		}
		c.Nudge()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		fi, err := os.Stat(path)
		if err == nil && fi.Size() > 900_000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("database file %d bytes after 1 MB of commits: nothing was checkpointed", fi.Size())
		}
		time.Sleep(20 * time.Millisecond)
	}
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	c.Nudge() // after Close: must neither block nor panic
}

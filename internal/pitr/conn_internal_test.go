package pitr

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"testing"
	"time"
)

// TestLitestreamRunsNormalSync: Litestream's own connections to a
// replicated database run synchronous=NORMAL (normalSync), and no other
// connection is changed.
func TestLitestreamRunsNormalSync(t *testing.T) {
	ctx := context.Background()
	path, w, reps := replicatedWriter(t)
	const id = replicatedID
	if _, err := w.Exec(`INSERT INTO t(pad) VALUES ('x')`); err != nil {
		t.Fatal(err)
	}
	if err := reps.Sync(ctx, id); err != nil {
		t.Fatal(err)
	}
	reps.mu.Lock()
	ls := reps.running[id].db.SQLDB()
	reps.mu.Unlock()
	// Litestream holds a read transaction on one connection: asking on
	// two more at once makes the pool open new ones.
	c1, err := ls.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	c2, err := ls.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	for i, c := range []*sql.Conn{c1, c2} {
		var level int
		if err := c.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&level); err != nil {
			t.Fatal(err)
		}
		if level != 1 {
			t.Errorf("Litestream's connection %d runs synchronous=%d, want 1 (NORMAL)", i+1, level)
		}
		// The barrier's wait (DefaultBusyTimeout), not Litestream's 1 s.
		var busy int64
		if err := c.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&busy); err != nil {
			t.Fatal(err)
		}
		if want := DefaultBusyTimeout.Milliseconds(); busy != want {
			t.Errorf("Litestream's connection %d waits %d ms for a lock, want %d", i+1, busy, want)
		}
	}
	// Any other connection keeps what its DSN says, or SQLite's FULL.
	for dsn, want := range map[string]int{
		"file:" + path + "?_pragma=busy_timeout(10000)":                                                         2,
		"file:" + path + "?_pragma=busy_timeout(10000)&_pragma=wal_autocheckpoint(0)&_pragma=foo(1)":            2,
		"file:" + path + "?" + url.Values{"_pragma": {"busy_timeout(10000)", "wal_autocheckpoint(0)"}}.Encode(): 2,
		"file:" + path + "?_pragma=busy_timeout(10000)&_pragma=synchronous(EXTRA)":                              3,
	} {
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			t.Fatal(err)
		}
		var level int
		err = db.QueryRow(`PRAGMA synchronous`).Scan(&level)
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		if level != want {
			t.Errorf("%s: synchronous=%d, want %d", dsn, level, want)
		}
	}
}

func TestLitestreamDSN(t *testing.T) {
	for dsn, want := range map[string]bool{
		"file:/d/db.sqlite?_pragma=busy_timeout(1000)&_pragma=wal_autocheckpoint(0)":         true,
		"file:/d/a?b.sqlite?_pragma=busy_timeout(0)&_pragma=wal_autocheckpoint(0)":           true,
		"file:/d/db.sqlite?_pragma=busy_timeout()&_pragma=wal_autocheckpoint(0)":             false,
		"file:/d/db.sqlite?_pragma=busy_timeout(1x)&_pragma=wal_autocheckpoint(0)":           false,
		"file:/d/db.sqlite?_pragma=busy_timeout(1000)&_pragma=wal_autocheckpoint(1000)":      false,
		"/d/db.sqlite?_pragma=busy_timeout(1000)&_pragma=wal_autocheckpoint(0)":              false,
		"file:/d/db.sqlite?_pragma=busy_timeout%281000%29&_pragma=wal_autocheckpoint%280%29": false,
	} {
		if got := litestreamDSN(dsn); got != want {
			t.Errorf("litestreamDSN(%q) = %v, want %v", dsn, got, want)
		}
	}
}

// TestLitestreamCheckpointsOverItsThreshold: Litestream leaves a WAL of
// fewer than DefaultMinCheckpointPageN pages alone when it reads it, and
// checkpoints one past that, copying its pages into the database file.
func TestLitestreamCheckpointsOverItsThreshold(t *testing.T) {
	ctx := context.Background()
	path, w, reps := replicatedWriter(t)
	const id = replicatedID
	fileSize := func() int64 {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	// A page of 4 KiB per row: the rows' pages go to the WAL.
	insert := func(rows int) {
		t.Helper()
		if _, err := w.Exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
			INSERT INTO t(pad) SELECT randomblob(3900) FROM n`, rows); err != nil {
			t.Fatal(err)
		}
		if err := reps.Sync(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	before := fileSize()
	insert(DefaultMinCheckpointPageN / 2)
	if got := fileSize(); got > before+1<<20 {
		t.Fatalf("a WAL of about %d pages was checkpointed: the file grew from %d to %d bytes", DefaultMinCheckpointPageN/2, before, got)
	}
	insert(DefaultMinCheckpointPageN)
	if got, want := fileSize(), int64(DefaultMinCheckpointPageN)*4096; got < want {
		t.Fatalf("a WAL of about %d pages was not checkpointed: the file has %d bytes, want at least %d", 3*DefaultMinCheckpointPageN/2, got, want)
	}
}

// replicatedID is the database id replicatedWriter replicates under.
const replicatedID = "db1"

// replicatedWriter is checkpointedWriter's database with a replicator
// running for it as replicatedID, reading its WAL every 100 ms.
func replicatedWriter(t *testing.T) (string, *sql.DB, *Replicators) {
	t.Helper()
	path, w, reps, _ := startLitestream(t, Config{Interval: 100 * time.Millisecond}, nil)
	return path, w, reps
}

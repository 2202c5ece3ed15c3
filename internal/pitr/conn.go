package pitr

import (
	"context"
	"strings"
	"sync"

	"modernc.org/sqlite"
)

// Litestream opens its own connections to a replicated database with
// SQLite's default synchronous=FULL, so every commit it makes fsyncs the
// WAL: the bump of _litestream_seq right after each of its checkpoints,
// which holds the write lock for that fsync while the user's writer waits
// (docs/benchmarks.md, s7-barrier). normalSync sets synchronous=NORMAL on
// them, as the console's own write pools run (internal/database, dsn).
//
// What that changes: a checkpoint still fsyncs the WAL before it copies
// pages into the database and the database after (SQLite does so at
// NORMAL as at FULL), and restarting the WAL still fsyncs its header.
// Only Litestream's own commits are no longer fsynced one by one; they
// reach the disk with the next checkpoint's fsync of the WAL, as every
// commit of the console's pools does. After a kill -9 nothing changes (the
// page cache survives a process). After a power loss, the last bump
// can be lost with the user's commits after the last fsync of the WAL,
// which NORMAL could lose already: Litestream then finds its replica
// ahead of the database and starts its history again from the database.

// registerNormalSync installs normalSync on the driver, once per process.
var registerNormalSync = sync.OnceFunc(func() { sqlite.RegisterConnectionHook(normalSync) })

// normalSync is the driver's connection hook: it sets synchronous=NORMAL
// on the connections Litestream opens (litestreamDSN), and leaves every
// other connection alone.
func normalSync(conn sqlite.ExecQuerierContext, dsn string) error {
	if !litestreamDSN(dsn) {
		return nil
	}
	_, err := conn.ExecContext(context.Background(), "PRAGMA synchronous = NORMAL", nil)
	return err
}

// litestreamDSN tells whether dsn is the one Litestream v0.5 opens a
// database with (litestream.DB's init): "file:<path>?_pragma=busy_timeout(<ms>)&_pragma=wal_autocheckpoint(0)",
// unescaped, which the console's own DSNs (url.Values, escaped) never are.
// The base's connection (base.go) opens the same, on purpose.
// TestLitestreamRunsNormalSync fails if a new Litestream opens another.
func litestreamDSN(dsn string) bool {
	rest, ok := strings.CutPrefix(dsn, "file:")
	if !ok {
		return false
	}
	i := strings.LastIndex(rest, "?_pragma=busy_timeout(")
	if i < 0 {
		return false
	}
	q := rest[i+len("?_pragma=busy_timeout("):]
	ms, ok := strings.CutSuffix(q, ")&_pragma=wal_autocheckpoint(0)")
	if !ok || ms == "" {
		return false
	}
	for _, c := range ms {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

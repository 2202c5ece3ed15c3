package database_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/snapshot"
)

func mustHost(t *testing.T) *database.Host {
	t.Helper()
	h, err := database.NewHost(filepath.Join(t.TempDir(), "databases"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return h
}

func TestCreateQueryAndDelete(t *testing.T) {
	ctx := context.Background()
	h := mustHost(t)
	id := snapdeck.NewDatabaseID()
	if err := h.Create(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := h.Create(ctx, id); err == nil {
		t.Fatal("second create of the same id: got nil error, want one")
	}
	res, err := h.Query(ctx, id, "CREATE TABLE t (a INTEGER, b TEXT)", false)
	if err != nil {
		t.Fatal(err)
	}
	if res.IsQuery {
		t.Fatalf("CREATE TABLE: got IsQuery, want a change")
	}
	res, err = h.Query(ctx, id, "INSERT INTO t VALUES (1, 'one'), (2, NULL)", false)
	if err != nil || res.RowsAffected != 2 {
		t.Fatalf("insert: got %+v, %v; want 2 rows affected", res, err)
	}
	res, err = h.Query(ctx, id, "SELECT a, b FROM t ORDER BY a", true)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(res.Columns, ","), "a,b"; got != want {
		t.Errorf("columns: got %s, want %s", got, want)
	}
	if len(res.Rows) != 2 || res.Rows[0][1] != "one" || res.Rows[1][1] != "NULL" {
		t.Errorf("rows: got %v, want [[1 one] [2 NULL]]", res.Rows)
	}
	tables, err := h.Tables(ctx, id)
	if err != nil || len(tables) != 1 || tables[0].Name != "t" || tables[0].Rows != 2 {
		t.Fatalf("tables: got %+v, %v; want t with 2 rows", tables, err)
	}
	if err := h.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Query(ctx, id, "SELECT 1", false); snapdeck.ErrorCode(err) != snapdeck.NotFound {
		t.Fatalf("query after delete: got %v, want NotFound", err)
	}
}

func TestReadOnlyRefusesWrites(t *testing.T) {
	ctx := context.Background()
	h := mustHost(t)
	id := snapdeck.NewDatabaseID()
	if err := h.Create(ctx, id); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		"CREATE TABLE t (a)",
		"PRAGMA query_only = 0; CREATE TABLE t (a)",
		"ATTACH 'x.db' AS x",
	} {
		if _, err := h.Query(ctx, id, sql, true); snapdeck.ErrorCode(err) != snapdeck.Invalid {
			t.Errorf("%q read-only: got %v, want Invalid", sql, err)
		}
	}
	tables, _ := h.Tables(ctx, id)
	if len(tables) != 0 {
		t.Fatalf("tables after read-only writes: got %v, want none", tables)
	}
}

func TestFileTouchingStatementsAreRefused(t *testing.T) {
	ctx := context.Background()
	h := mustHost(t)
	id := snapdeck.NewDatabaseID()
	if err := h.Create(ctx, id); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "outside.db")
	for _, sql := range []string{
		"ATTACH '" + outside + "' AS x",
		"VACUUM INTO '" + outside + "'",
		"PRAGMA journal_mode = DELETE",
		"SELECT load_extension('x')",
	} {
		for _, ro := range []bool{false, true} {
			if _, err := h.Query(ctx, id, sql, ro); snapdeck.ErrorCode(err) != snapdeck.Invalid {
				t.Errorf("%q (read-only %v): got %v, want Invalid", sql, ro, err)
			}
		}
	}
	if _, err := os.Stat(outside); err == nil {
		t.Fatalf("%s was created; want no file outside the database", outside)
	}
}

func TestErrorsInPlainWordsAndRowLimit(t *testing.T) {
	ctx := context.Background()
	h := mustHost(t)
	h.MaxRows = 10
	id := snapdeck.NewDatabaseID()
	if err := h.Create(ctx, id); err != nil {
		t.Fatal(err)
	}
	_, err := h.Query(ctx, id, "SELECT * FROM missing", false)
	if got := snapdeck.ErrorMessage(err); !strings.Contains(got, "no such table: missing") {
		t.Errorf("missing table: got %q, want it to name the table", got)
	}
	// SQLite's sentence holds the words of its result code again
	// ("constraint failed: UNIQUE constraint failed: t.a"): only the
	// leading code text goes.
	if _, err := h.Query(ctx, id, "CREATE TABLE t(a UNIQUE); INSERT INTO t VALUES (1); INSERT INTO t VALUES (1)", false); snapdeck.ErrorMessage(err) != "SQLite says: UNIQUE constraint failed: t.a" {
		t.Errorf("unique violation: got %q, want %q", snapdeck.ErrorMessage(err), "SQLite says: UNIQUE constraint failed: t.a")
	}
	res, err := h.Query(ctx, id, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 50) SELECT i FROM n", false)
	if err != nil || len(res.Rows) != 10 || !res.Truncated {
		t.Fatalf("limit: got %d rows truncated=%v err=%v; want 10 truncated", len(res.Rows), res != nil && res.Truncated, err)
	}
}

func TestLongStatementIsInterrupted(t *testing.T) {
	ctx := context.Background()
	h := mustHost(t)
	h.QueryTimeout = 200 * time.Millisecond
	id := snapdeck.NewDatabaseID()
	if err := h.Create(ctx, id); err != nil {
		t.Fatal(err)
	}
	_, err := h.Query(ctx, id, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n) SELECT count(*) FROM n", false)
	if got := snapdeck.ErrorMessage(err); !strings.Contains(got, "interrupted") {
		t.Fatalf("endless query: got %q, want an interruption message", got)
	}
}

// TestRealsReadAsInTheSQLiteShell checks how query results show REAL
// values: as the sqlite3 shell does, never in Go's exponent form for an
// ordinary amount, and with a decimal point so a REAL does not read as an
// INTEGER.
func TestRealsReadAsInTheSQLiteShell(t *testing.T) {
	ctx := context.Background()
	h := mustHost(t)
	id := snapdeck.NewDatabaseID()
	if err := h.Create(ctx, id); err != nil {
		t.Fatal(err)
	}
	res, err := h.Query(ctx, id, `SELECT 1026888896.26, 2.0, 0.1, -3.5, 1e20, 1.5e-7, 9e999, 7`, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"1026888896.26", "2.0", "0.1", "-3.5", "1.0e+20", "1.5e-07", "Inf", "7"}
	if got := res.Rows[0]; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestCommitsLeaveCheckpointsToTheCheckpointer checks that what users
// commit reaches the database file while the database stays open, although
// the console's write connections never checkpoint inside a commit.
func TestCommitsLeaveCheckpointsToTheCheckpointer(t *testing.T) {
	ctx := context.Background()
	h := mustHost(t)
	id := snapdeck.NewDatabaseID()
	if err := h.Create(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Query(ctx, id, "CREATE TABLE t (v TEXT)", false); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(h.Path(id))
	// About 2 MB of rows, in commits of their own.
	for range 20 {
		if _, err := h.Query(ctx, id, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 100) INSERT INTO t SELECT randomblob(1000) FROM n", false); err != nil {
			t.Fatal(err)
		}
	}
	var res *database.Result
	var err error
	if res, err = h.Query(ctx, id, "PRAGMA wal_autocheckpoint", false); err != nil || len(res.Rows) != 1 || res.Rows[0][0] != "0" {
		t.Fatalf("wal_autocheckpoint of a console connection: got %+v, %v; want 0", res, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		fi, err := os.Stat(h.Path(id))
		if err == nil && fi.Size() >= before.Size()+1<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("database file %d bytes after 2 MB of commits (was %d): nothing was checkpointed", fi.Size(), before.Size())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// mustDatabase creates a database with a table t (v) for Query tests.
func mustDatabase(t *testing.T, h *database.Host) string {
	t.Helper()
	id := snapdeck.NewDatabaseID()
	if err := h.Create(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	mustQuery(t, h, id, "CREATE TABLE t (v)", false)
	return id
}

func mustQuery(t *testing.T, h *database.Host, id, sql string, readOnly bool) *database.Result {
	t.Helper()
	res, err := h.Query(context.Background(), id, sql, readOnly)
	if err != nil {
		t.Fatalf("%q (read-only %v): %v", sql, readOnly, err)
	}
	return res
}

// countRows counts t's rows on a connection of its own, outside the Host.
func countRows(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestQueryLeavesNoTransactionOpen is the lost writes of issue 12: one user
// runs BEGIN, another's INSERTs answer success. They must be seen by a
// connection of its own and still be there once every pool is closed.
func TestQueryLeavesNoTransactionOpen(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "databases")
	h, err := database.NewHost(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := mustDatabase(t, h)
	h.Query(ctx, id, "BEGIN", false)
	for range 3 {
		if res := mustQuery(t, h, id, "INSERT INTO t VALUES (1)", false); res.RowsAffected != 1 {
			t.Fatalf("insert: got %d rows changed, want 1", res.RowsAffected)
		}
	}
	if n := countRows(t, h.Path(id)); n != 3 {
		t.Errorf("rows seen by another connection: got %d, want 3", n)
	}
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, h.Path(id)); n != 3 {
		t.Errorf("rows after the pools closed: got %d, want 3", n)
	}
}

// TestQueryRollsBackAnOpenTransaction checks that a transaction the SQL
// leaves open is rolled back, said so in the result, and that a viewer's
// BEGIN does not freeze what the next run sees.
func TestQueryRollsBackAnOpenTransaction(t *testing.T) {
	h := mustHost(t)
	id := mustDatabase(t, h)
	res := mustQuery(t, h, id, "BEGIN; INSERT INTO t VALUES (1)", false)
	if !res.RolledBack {
		t.Errorf("BEGIN; INSERT: got RolledBack false, want true")
	}
	if n := countRows(t, h.Path(id)); n != 0 {
		t.Errorf("rows after a rolled back insert: got %d, want 0", n)
	}
	if res := mustQuery(t, h, id, "BEGIN; INSERT INTO t VALUES (1); COMMIT", false); res.RolledBack {
		t.Errorf("BEGIN; INSERT; COMMIT: got RolledBack true, want false")
	}
	if res := mustQuery(t, h, id, "BEGIN; SELECT count(*) FROM t", true); !res.RolledBack || res.Rows[0][0] != "1" {
		t.Errorf("viewer's BEGIN; SELECT: got %+v, want 1 row counted and RolledBack", res)
	}
	mustQuery(t, h, id, "INSERT INTO t VALUES (2)", false)
	if res := mustQuery(t, h, id, "SELECT count(*) FROM t", true); res.Rows[0][0] != "2" {
		t.Errorf("viewer's count after another insert: got %s, want 2", res.Rows[0][0])
	}
	_, err := h.Query(context.Background(), id, "BEGIN; INSERT INTO t VALUES (3); SELECT * FROM missing", false)
	if got := snapdeck.ErrorMessage(err); !strings.Contains(got, "no such table") || !strings.Contains(got, "rolled back") {
		t.Errorf("failing run in a transaction: got %q, want the error and that it was rolled back", got)
	}
}

// TestQueryTempObjectsDoNotLeak checks that a TEMP table and trigger of one
// run do not shadow main.t for the runs after it.
func TestQueryTempObjectsDoNotLeak(t *testing.T) {
	h := mustHost(t)
	id := mustDatabase(t, h)
	mustQuery(t, h, id, "INSERT INTO t VALUES ('main')", false)
	mustQuery(t, h, id, "CREATE TEMP TABLE t (v); INSERT INTO temp.t VALUES ('temp')", false)
	mustQuery(t, h, id, "CREATE TEMP TRIGGER gone AFTER INSERT ON main.t BEGIN DELETE FROM main.t; END", false)
	for _, ro := range []bool{false, true, false} {
		if res := mustQuery(t, h, id, "SELECT v FROM t", ro); len(res.Rows) != 1 || res.Rows[0][0] != "main" {
			t.Errorf("SELECT v FROM t (read-only %v): got %v, want [[main]]", ro, res.Rows)
		}
	}
	mustQuery(t, h, id, "INSERT INTO t VALUES ('second')", false)
	if n := countRows(t, h.Path(id)); n != 2 {
		t.Errorf("rows after an insert: got %d, want 2 (a temporary trigger ran)", n)
	}
}

// TestQueryPragmasDoNotLeak sets each pragma issue 12 found left on pooled
// connections, checks it took effect in its run, and that the next run
// has the console's value again.
func TestQueryPragmasDoNotLeak(t *testing.T) {
	h := mustHost(t)
	id := mustDatabase(t, h)
	for _, pragma := range []string{"foreign_keys", "busy_timeout", "max_page_count", "trusted_schema"} {
		for _, ro := range []bool{false, true} {
			before := mustQuery(t, h, id, "PRAGMA "+pragma, ro).Rows[0][0]
			other := map[string]string{"busy_timeout": "0", "max_page_count": "5"}[pragma]
			if other == "" { // a switch: turn it the other way
				other = map[string]string{"0": "1", "1": "0"}[before]
			}
			set := mustQuery(t, h, id, "PRAGMA "+pragma+" = "+other+"; PRAGMA "+pragma, ro)
			if set.Rows[0][0] == before {
				t.Fatalf("PRAGMA %s = %s (read-only %v) did not take effect: still %s", pragma, other, ro, before)
			}
			for range 3 {
				if after := mustQuery(t, h, id, "PRAGMA "+pragma, ro).Rows[0][0]; after != before {
					t.Errorf("PRAGMA %s (read-only %v) in the next run: got %s, want %s", pragma, ro, after, before)
				}
			}
		}
	}
}

// TestQueryValuesAndPagesAreBounded checks the limits on one value and on
// one result page.
func TestQueryValuesAndPagesAreBounded(t *testing.T) {
	h := mustHost(t)
	id := mustDatabase(t, h)
	for _, sql := range []string{"SELECT randomblob(900000000)", "SELECT zeroblob(17000000)", "SELECT printf('%.*c', 17000000, 'x')"} {
		_, err := h.Query(context.Background(), id, sql, true)
		if got := snapdeck.ErrorMessage(err); !strings.Contains(got, "larger than the 16MiB one value may have") {
			t.Errorf("%s: got %q, want the value limit in words", sql, got)
		}
	}
	res := mustQuery(t, h, id, "SELECT printf('%.*c', 100000, 'x')", true)
	if got := res.Rows[0][0]; len(got) > 5000 || !strings.HasSuffix(got, "… (100,000 bytes)") {
		t.Errorf("a 100,000-byte value: got %d bytes ending %q, want it cut with its length", len(got), got[max(len(got)-30, 0):])
	}
	// The recursive CTE of issue 12 returned 100 MB of text in one page;
	// three such columns are 300 MB.
	res = mustQuery(t, h, id, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 1000) "+
		"SELECT printf('%.*c', 100000, 'x') AS a, printf('%.*c', 100000, 'y') AS b, printf('%.*c', 100000, 'z') AS c FROM n", true)
	var total int
	for _, row := range res.Rows {
		for _, cell := range row {
			total += len(cell)
		}
	}
	if total > 8<<20 || !res.Truncated || res.PageLimit != 8<<20 || len(res.Rows) == 0 {
		t.Errorf("a 300 MB result: got %d rows, %d bytes, truncated %v, page limit %d; want at most 8 MiB, cut at the page limit",
			len(res.Rows), total, res.Truncated, res.PageLimit)
	}
}

// TestQueryRefusalsSayWhat checks that what could corrupt the file or
// change the whole process is refused, for members and viewers, with what
// was refused and why.
func TestQueryRefusalsSayWhat(t *testing.T) {
	h := mustHost(t)
	id := mustDatabase(t, h)
	mustQuery(t, h, id, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 200) INSERT INTO t SELECT randomblob(100) FROM n", false)
	for _, tt := range []struct {
		sql, want  string
		memberOnly bool
	}{
		{"UPDATE sqlite_dbpage SET data = zeroblob(4096) WHERE pgno = 2", "Writing sqlite_dbpage is refused: it rewrites raw pages", true},
		{"INSERT INTO sqlite_dbpage VALUES (2, zeroblob(4096))", "Writing sqlite_dbpage is refused", true},
		{"DELETE FROM dbstat", "dbstat may not be modified", true},
		{"CREATE VIRTUAL TABLE pages USING sqlite_dbpage", `A virtual table using "sqlite_dbpage" is refused`, true},
		{"PRAGMA hard_heap_limit = 1099511627776", "PRAGMA hard_heap_limit is refused: it changes a setting of the whole console process", false},
		{"PRAGMA soft_heap_limit = 1099511627776", "PRAGMA soft_heap_limit is refused: it changes a setting of the whole console process", false},
		{"VACUUM", "VACUUM is refused: it rewrites the whole database file", false},
		{"VACUUM INTO '" + filepath.Join(t.TempDir(), "copy.db") + "'", "ATTACH and VACUUM INTO are refused: they open another file", false},
		{"PRAGMA writable_schema = ON", "PRAGMA writable_schema is refused: it changes how the console keeps the database file", false},
		{"PRAGMA cache_size = -1000000", "PRAGMA cache_size is refused: it would let one run take more memory", false},
		{"SELECT load_extension('x')", "Calling load_extension() is refused: it reads or writes files or loads code", false},
		{"PRAGMA vdbe_trace = 1", "PRAGMA vdbe_trace is refused: the Query tab sets only pragmas", false},
	} {
		for _, ro := range []bool{false, true} {
			if ro && tt.memberOnly {
				continue
			}
			_, err := h.Query(context.Background(), id, tt.sql, ro)
			if got := snapdeck.ErrorMessage(err); !strings.Contains(got, tt.want) {
				t.Errorf("%s (read-only %v): got %q, want %q", tt.sql, ro, got, tt.want)
			}
		}
	}
	if _, err := h.Query(context.Background(), id, "PRAGMA query_only = 0", true); !strings.Contains(snapdeck.ErrorMessage(err), "a viewer's session is read-only") {
		t.Errorf("viewer's PRAGMA query_only = 0: got %v, want a refusal", err)
	}
	if res := mustQuery(t, h, id, "PRAGMA hard_heap_limit", true); res.Rows[0][0] != "0" {
		t.Errorf("hard_heap_limit: got %s, want 0 (unset)", res.Rows[0][0])
	}
	if res := mustQuery(t, h, id, "PRAGMA integrity_check", true); res.Rows[0][0] != "ok" {
		t.Errorf("integrity_check: got %v, want ok", res.Rows)
	}
	mustQuery(t, h, id, "PRAGMA foreign_keys = 0; SELECT * FROM sqlite_dbpage WHERE pgno = 1", true)
}

// TestReplaceDrainsAWALLeftAfterClosing gives a database a write-ahead log
// holding committed rows that its file lacks, as a crash or an interrupted
// last close leaves one. Replace must move those rows into the file it
// replaces (kept here as the undo) and swap, not refuse the swap.
func TestReplaceDrainsAWALLeftAfterClosing(t *testing.T) {
	ctx := context.Background()
	h := mustHost(t)
	const id = "aaaa0042"
	if err := h.Create(ctx, id); err != nil {
		t.Fatal(err)
	}
	path := h.Path(id)
	// A crash image: the file and its log copied while a writer that never
	// checkpoints holds 50 committed rows in the log.
	w, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=wal_autocheckpoint(0)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Exec("CREATE TABLE t(n); WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < 50) INSERT INTO t SELECT i FROM s"); err != nil {
		t.Fatal(err)
	}
	file, _ := os.ReadFile(path)
	wal, err := os.ReadFile(path + "-wal")
	if err != nil || len(wal) == 0 {
		t.Fatalf("the writer left no log to copy: %v", err)
	}
	w.Close()
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+"-wal", wal, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Remove(path + "-shm")

	other := filepath.Join(filepath.Dir(path), "new.tmp")
	if err := os.WriteFile(other, file, 0o600); err != nil {
		t.Fatal(err)
	}
	undo := path + ".undo-test"
	err = h.Replace(ctx, id, other, nil, func(tmpPath, dbPath string) error {
		_, err := snapshot.InstallKeeping(tmpPath, dbPath, undo)
		return err
	})
	if err != nil {
		t.Fatalf("replace with a log left behind: %v", err)
	}
	kept, err := sql.Open("sqlite", "file:"+undo+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()
	var n int
	if err := kept.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n != 50 {
		t.Errorf("the replaced file kept %d rows (%v), want the 50 its log held", n, err)
	}
}

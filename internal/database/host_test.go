package database_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
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

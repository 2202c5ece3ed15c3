package sqlitemsg

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"
)

func TestWords(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, "CREATE TABLE t(a UNIQUE NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ sql, want string }{
		{"INSERT INTO t VALUES (1), (1)", "UNIQUE constraint failed: t.a"},
		{"INSERT INTO t VALUES (NULL)", "NOT NULL constraint failed: t.a"},
		{"SELECT * FROM missing", "no such table: missing"},
		{"SELEC 1", `near "SELEC": syntax error`},
		{"SELECT (1)) (2)", `near ")": syntax error`},
	} {
		_, err := db.ExecContext(ctx, c.sql)
		if err == nil {
			t.Fatalf("%s: no error", c.sql)
		}
		if got := Words(err); got != c.want {
			t.Errorf("%s: got %q, want %q (driver: %q)", c.sql, got, c.want, err)
		}
		// Context wrapped around the driver's error is not SQLite's.
		if got := Words(fmt.Errorf("query tab: %w", err)); got != c.want {
			t.Errorf("%s wrapped: got %q, want %q", c.sql, got, c.want)
		}
	}
	if got := Words(sql.ErrNoRows); got != sql.ErrNoRows.Error() {
		t.Errorf("not SQLite's: got %q", got)
	}
}

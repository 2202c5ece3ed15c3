package web_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestDataPlaneCommitsAreInTheHistoryBeforeTheirAnswer: a commit through
// the data plane is in the point-in-time history, at a time before its
// client hears of it, as a Query-tab commit is. Rows inserted back to
// back, a transaction over three requests and a CREATE TABLE (which
// changes no row) are each restored to the time taken right after their
// answer: each holds exactly what was answered by then (the next commit
// comes 2 ms later: the history tells commits apart to the millisecond).
// When the data
// plane only asked for a read of the WAL, the reads came up to
// pitr.DefaultReadGap after the answers and these restores missed the
// last commit.
func TestDataPlaneCommitsAreInTheHistoryBeforeTheirAnswer(t *testing.T) {
	ctx := context.Background()
	c := mustPITRConsole(t)
	d, _, db := c.goClientDB(t, "app")
	if _, err := db.Exec("CREATE TABLE t(n INTEGER)"); err != nil {
		t.Fatal(err)
	}
	type mark struct {
		at   time.Time
		rows int
		what string
	}
	var marks []mark
	// History files carry their time in whole milliseconds, and a
	// restore to a time takes the files of its millisecond: the next
	// commit comes 2 ms after a mark, so that it is told apart.
	settle := func() { time.Sleep(2 * time.Millisecond) }
	for i := 1; i <= 20; i++ {
		if _, err := db.Exec("INSERT INTO t VALUES (?)", i); err != nil {
			t.Fatal(err)
		}
		marks = append(marks, mark{time.Now(), i, fmt.Sprintf("insert %d", i)})
		settle()
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := 21; i <= 25; i++ {
		if _, err := tx.Exec("INSERT INTO t VALUES (?)", i); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	marks = append(marks, mark{time.Now(), 25, "a transaction of five inserts"})
	settle()
	if _, err := db.Exec("CREATE TABLE u(n INTEGER)"); err != nil {
		t.Fatal(err)
	}
	marks = append(marks, mark{time.Now(), -1, "CREATE TABLE u"})
	settle()
	c.syncPITR(t, d.ID)

	for k, m := range marks {
		out := filepath.Join(t.TempDir(), fmt.Sprintf("at-%d.sqlite", k))
		if err := c.pitr.RestoreTo(ctx, d.ID, m.at, out); err != nil {
			t.Fatalf("restore to just after %s: %v", m.what, err)
		}
		r, err := sql.Open("sqlite", "file:"+out+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		var rows, tables int
		err = r.QueryRow("SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM sqlite_schema WHERE name = 'u')").Scan(&rows, &tables)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case m.rows >= 0 && rows != m.rows:
			t.Fatalf("restored to %s, just after %s was answered: %d rows, want %d", m.at.Format("15:04:05.000000"), m.what, rows, m.rows)
		case m.rows < 0 && tables != 1:
			t.Fatalf("restored to %s, just after %s was answered: no table u", m.at.Format("15:04:05.000000"), m.what)
		}
	}
}

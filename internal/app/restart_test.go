package app_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/app"
	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// TestRestartAndResumeContinueTheHistory checks that a clean restart and a
// pause and resume carry point-in-time replication on from where it was:
// each writes a few pages of history, not a new copy of the whole
// database (issue 16), and a restore to a time before and after each is
// exact.
// pitrConfig is the console of the tests, unscheduled, with an hour of
// point-in-time history on the enterprise plan, replicated every 100 ms.
func pitrConfig(dir string) app.Config {
	return app.Config{DataDir: dir, Version: "test", SQLiteVersion: "3", Unscheduled: true,
		PITRWindows: map[snapdeck.Plan]time.Duration{snapdeck.PlanEnterprise: time.Hour}, PITRInterval: 100 * time.Millisecond}
}

func TestRestartAndResumeContinueTheHistory(t *testing.T) {
	ctx := context.Background()
	cfg := pitrConfig(t.TempDir())
	a, err := app.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { a.Close(ctx) }()
	made, err := a.Databases.Create(ctx, "ann@x", database.CreateRequest{Name: "ledger", Plan: snapdeck.PlanEnterprise})
	if err != nil {
		t.Fatal(err)
	}
	id := made.Database.ID
	// About 8 MiB of rows: a new full copy would be thousands of times
	// the few pages one more row takes.
	for _, sql := range []string{"CREATE TABLE t(id INTEGER PRIMARY KEY, pad BLOB)",
		"WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < 8000) INSERT INTO t(pad) SELECT randomblob(1000) FROM s"} {
		if _, err := a.Databases.Query(ctx, id, sql, false); err != nil {
			t.Fatal(err)
		}
	}
	r, err := a.Databases.Query(ctx, id, "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size", true)
	if err != nil {
		t.Fatal(err)
	}
	size, _ := strconv.ParseInt(r.Rows[0][0], 10, 64)
	type point struct {
		at   time.Time
		rows string
	}
	var points []point
	// insert adds one row, makes it restorable and notes the time after it.
	insert := func(want string) {
		t.Helper()
		if _, err := a.Databases.Query(ctx, id, "INSERT INTO t(pad) VALUES (x'01')", false); err != nil {
			t.Fatal(err)
		}
		if err := a.PITR.Sync(ctx, id); err != nil {
			t.Fatal(err)
		}
		points = append(points, point{time.Now(), want})
		time.Sleep(5 * time.Millisecond) // the next commit falls in a later millisecond
	}
	history := func() int64 {
		t.Helper()
		n, err := a.PITR.Bytes(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// continued checks that what happened since before wrote a few pages
	// of history, not a new full copy.
	continued := func(what string, before int64) {
		t.Helper()
		wrote := history() - before
		t.Logf("a %d-byte database: %s wrote %d bytes of history", size, what, wrote)
		if wrote > size/20 {
			t.Errorf("%s wrote %d bytes of history for a %d-byte database: a new full copy, not a continuation", what, wrote, size)
		}
	}
	insert("8001")
	before := history()
	a.Close(ctx)
	if a, err = app.New(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	insert("8002")
	continued("a restart", before)

	before = history()
	if _, err := a.Databases.Pause(ctx, "ann@x", id); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Databases.Resume(ctx, "ann@x", id); err != nil {
		t.Fatal(err)
	}
	insert("8003")
	continued("a pause and resume", before)

	for _, p := range []point{points[1], points[0], points[2]} {
		_, j, err := a.Snapshots.RestoreToTime(ctx, "ann@x", id, p.at)
		if err != nil {
			t.Fatal(err)
		}
		ctx30, cancel := context.WithTimeout(ctx, 30*time.Second)
		j, err = a.Jobs.Wait(ctx30, j.ID)
		cancel()
		if err != nil || j.Status != snapdeck.JobSucceeded {
			t.Fatalf("restore to %s: %+v, %v", p.at, j, err)
		}
		r, err := a.Databases.Query(ctx, id, "SELECT count(*), (SELECT integrity_check FROM pragma_integrity_check) FROM t", true)
		if err != nil || r.Rows[0][0] != p.rows || r.Rows[0][1] != "ok" {
			t.Errorf("restored to %s: got %v, %v; want %s rows, ok", p.at, r, err, p.rows)
		}
	}
}

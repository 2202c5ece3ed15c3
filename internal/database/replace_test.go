package database_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/snapshot"
)

// TestTempFilesHaveOneNamer checks that the files the snapshot engine
// names itself (the kept and the replaced file) have the names of their
// purposes, and that Recover removes a leftover of every purpose but the
// kept replaced file, which it keeps until its safety snapshot is taken.
func TestTempFilesHaveOneNamer(t *testing.T) {
	ctx := context.Background()
	e := mustEnv(t)
	d, err := e.create(ctx, "leftovers", snapdeck.PlanProfessional)
	if err != nil {
		t.Fatal(err)
	}
	path := e.dbs.Host().Path(d.ID)
	if got, want := database.TempPath(path, "undo", "x"), snapshot.UndoPath(path, "x"); got != want {
		t.Errorf("kept file: %s, the engine's %s", got, want)
	}
	if got, want := database.TempPath(path, "replaced", "x"), path+snapshot.ReplacedMarker+"x"; got != want {
		t.Errorf("replaced file: %s, the engine's %s", got, want)
	}
	purposes := database.TempPurposes()
	for _, want := range []string{"restore", "create", "load", "undo", "replaced"} {
		if !strings.Contains(strings.Join(purposes, " "), want) {
			t.Errorf("purposes %v lack %s", purposes, want)
		}
	}
	var left []string
	for _, p := range purposes {
		if p == "undo" {
			continue // a kept file with no snapshot record: TestRestoreCrashKeepsAWayBack
		}
		f := database.TempPath(path, p, "")
		if err := os.WriteFile(f, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
		left = append(left, f)
	}
	if err := e.dbs.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	for _, f := range left {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("Recover left %s", filepath.Base(f))
		}
	}
}

// TestReplaceServesBeforeItsSafetySnapshot checks that an overwrite and a
// load, like a restore, serve the new data as soon as it is swapped in and
// take the safety snapshot from the replaced file afterwards, and that the
// safety snapshot then gives the old data back.
func TestReplaceServesBeforeItsSafetySnapshot(t *testing.T) {
	for _, door := range []string{"restore", "overwrite", "load"} {
		t.Run(door, func(t *testing.T) {
			ctx := context.Background()
			e := mustEnv(t)
			d, snap := e.twoHundredRows(t, "served")
			swapped, resume := make(chan struct{}), make(chan struct{})
			var once sync.Once // the undo below is a restore too: held once only
			database.SetFaultHook(func(p string) {
				if p == door+":removing-kept" {
					time.Sleep(100 * time.Millisecond) // a slow file system: Close must wait
				}
				if p == door+":swapped" {
					once.Do(func() {
						close(swapped)
						<-resume
					})
				}
			})
			defer database.SetFaultHook(nil)
			j, err := e.replaceBy(t, door, d.ID, snap.ID)
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-swapped:
			case <-time.After(30 * time.Second): // a bound, not a wait: the swap takes milliseconds
				t.Fatalf("the %s never reached its swap point", door)
			}
			got, _ := e.dbs.Find(ctx, d.ID)
			rows := e.count(t, d.ID)
			held, _ := e.db.FindJob(ctx, j.ID)
			safety, serr := e.snapshots.FindSnapshot(ctx, d.ID, held.TargetID)
			close(resume)
			if got.Status != snapdeck.StatusRunning || rows != "100:5050" {
				t.Errorf("at the swap: %s with %s, want running with the new data 100:5050", got.Status, rows)
			}
			if serr != nil || safety.Status == snapdeck.SnapshotCompleted {
				t.Errorf("safety snapshot at the swap: %+v, %v; want one not yet completed", safety, serr)
			}
			if j = e.waitJob(t, j.ID); j.Status != snapdeck.JobSucceeded {
				t.Fatalf("%s: %s (%s)", door, j.Status, j.Error)
			}
			// The kept file goes in the background once the safety
			// snapshot is durable; Close waits for that.
			e.snapshots.Close(ctx)
			if left, _ := filepath.Glob(e.dbs.Host().Path(d.ID) + ".*-*"); len(left) != 0 {
				t.Errorf("left after the %s: %v", door, left)
			}
			_, u, err := e.snapshots.Restore(ctx, d.ID, j.TargetID, "ann@example.com")
			if err != nil {
				t.Fatal(err)
			}
			if u = e.waitJob(t, u.ID); u.Status != snapdeck.JobSucceeded || e.count(t, d.ID) != "200:20100" {
				t.Errorf("undo the %s: %s (%s), rows %s; want 200:20100", door, u.Status, u.Error, e.count(t, d.ID))
			}
		})
	}
}

// twoHundredRows creates a database whose table t holds 1..200, with a
// snapshot of it holding 1..100.
func (e *env) twoHundredRows(t *testing.T, name string) (snapdeck.Database, snapdeck.Snapshot) {
	t.Helper()
	ctx := context.Background()
	d, err := e.create(ctx, name, snapdeck.PlanProfessional)
	if err != nil {
		t.Fatal(err)
	}
	e.exec(t, d.ID, "CREATE TABLE t (n INTEGER)")
	e.exec(t, d.ID, "WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v+1 FROM s WHERE v < 100) INSERT INTO t SELECT v FROM s")
	snap, err := e.snapshots.Snapshot(ctx, d.ID, snapdeck.SnapshotOnDemand, "Taken by ann@example.com", "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	e.exec(t, d.ID, "WITH RECURSIVE s(v) AS (SELECT 101 UNION ALL SELECT v+1 FROM s WHERE v < 200) INSERT INTO t SELECT v FROM s")
	return d, snap
}

// replaceBy replaces the 200 rows of twoHundredRows with 100 through one
// door: a restore or an overwrite from snap, or a load of good.sqlite,
// which holds the same rows.
func (e *env) replaceBy(t *testing.T, door, dbID, snap string) (snapdeck.Job, error) {
	t.Helper()
	ctx := context.Background()
	switch door {
	case "restore":
		_, j, err := e.snapshots.Restore(ctx, dbID, snap, "ann@example.com")
		return j, err
	case "overwrite":
		_, j, err := e.snapshots.Overwrite(ctx, dbID, database.OverwriteSource{Snapshot: snap}, "ann@example.com")
		return j, err
	case "load":
		return e.snapshots.Load(ctx, dbID, e.upload(t, filepath.Join("..", "importfile", "testdata", "good.sqlite")), "ann@example.com")
	}
	t.Fatalf("no door %q", door)
	return snapdeck.Job{}, nil
}

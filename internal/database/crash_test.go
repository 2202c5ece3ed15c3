package database_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// The replace crash tests run TestRestoreCrashChild in a child process
// (this test binary, re-executed) that kills itself with SIGKILL at one
// named point of a restore, an overwrite or a load, then check from the
// parent what the next start finds.
const (
	crashDirEnv   = "SNAPDECK_DB_CRASH_DIR"
	crashPointEnv = "SNAPDECK_DB_CRASH_POINT"
)

// TestRestoreCrashKeepsAWayBack checks that a restore, an overwrite or a
// load stopped at any point leaves the database with its old content, or
// with the new content and a completed safety snapshot that gives the old
// one back: never with the new content and no way back. All three go
// through one replace: the safety snapshot is captured after the swap,
// from the replaced file kept for it. The named points are each door's.
func TestRestoreCrashKeepsAWayBack(t *testing.T) {
	if testing.Short() {
		t.Skip("crash tests re-execute the test binary")
	}
	for _, tc := range []struct {
		point    string
		restored bool // the swap happened before the stop
	}{
		{"restore:materialized", false},
		{"restore:swapped", true},
		{"restore:safety-captured", true},
		{"overwrite:materialized", false},
		{"overwrite:swapped", true},
		{"overwrite:safety-captured", true},
		{"load:prepared", false},
		{"load:swapped", true},
		{"load:safety-captured", true},
	} {
		t.Run(strings.ReplaceAll(tc.point, ":", "_"), func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestRestoreCrashChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashPointEnv+"="+tc.point)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child: got %v, want killed at %s; output:\n%s", err, tc.point, out)
			}

			e := envAt(t, dir)
			if err := e.dbs.Recover(ctx); err != nil {
				t.Fatalf("Recover: %v", err)
			}
			dbs, err := e.dbs.List(ctx)
			if err != nil || len(dbs) != 1 {
				t.Fatalf("databases after the crash: %v, %v; want one", dbs, err)
			}
			d := dbs[0]
			if d.Status != snapdeck.StatusRunning {
				t.Errorf("database status %s after Recover, want running", d.Status)
			}
			want := "200:20100"
			if tc.restored {
				want = "100:5050"
			}
			if got := e.count(t, d.ID); got != want {
				t.Fatalf("content after a stop at %s: %s, want %s", tc.point, got, want)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, "databases", "*.undo-*")); len(left) != 0 {
				t.Errorf("kept files left after Recover: %v", left)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, "databases", "*.sqlite.*-*")); len(left) != 0 {
				t.Errorf("temporary files left after Recover: %v", left)
			}
			door, _, _ := strings.Cut(tc.point, ":")
			prefix := "Before restore of "
			if door == "load" {
				prefix = "Before load of "
			}
			var safety []snapdeck.Snapshot
			for _, s := range e.snapshotsOf(t, d.ID, snapdeck.SnapshotOnDemand) {
				if strings.HasPrefix(s.Reason, prefix) {
					safety = append(safety, s)
				}
			}
			if !tc.restored {
				// Nothing was replaced; an interrupted safety snapshot is
				// listed as failed, never as a completed one.
				for _, s := range safety {
					if s.Status == snapdeck.SnapshotCompleted {
						t.Errorf("a restore stopped before its swap left a completed safety snapshot %+v", s)
					}
				}
				return
			}
			if len(safety) != 1 || safety[0].Status != snapdeck.SnapshotCompleted {
				t.Fatalf("safety snapshots after a stop at %s: %+v; want one, completed", tc.point, safety)
			}
			if door == "load" {
				// The Load snapshot is taken before the database serves the
				// loaded data, so a stop after the swap keeps it too.
				if loads := e.snapshotsOf(t, d.ID, snapdeck.SnapshotLoad); len(loads) != 1 || loads[0].Status != snapdeck.SnapshotCompleted {
					t.Errorf("Load snapshots after a stop at %s: %+v; want one, completed", tc.point, loads)
				}
			}
			_, j, err := e.snapshots.Restore(ctx, d.ID, safety[0].ID, "ann@example.com")
			if err != nil {
				t.Fatal(err)
			}
			if j := e.waitJob(t, j.ID); j.Status != snapdeck.JobSucceeded {
				t.Fatalf("undo: job %s (%s)", j.Status, j.Error)
			}
			if got := e.count(t, d.ID); got != "200:20100" {
				t.Errorf("after restoring the safety snapshot: %s, want the content before the restore, 200:20100", got)
			}
		})
	}
}

// TestRestoreCrashChild is the child side of TestRestoreCrashKeepsAWayBack;
// it does nothing in a normal test run.
func TestRestoreCrashChild(t *testing.T) {
	dir, point := os.Getenv(crashDirEnv), os.Getenv(crashPointEnv)
	if dir == "" {
		t.Skip("run by TestRestoreCrashKeepsAWayBack")
	}
	e := envAt(t, dir)
	d, snap := e.twoHundredRows(t, "crashy")
	database.SetFaultHook(func(p string) {
		if p == point {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	})
	door, _, _ := strings.Cut(point, ":")
	j, err := e.replaceBy(t, door, d.ID, snap.ID)
	if err != nil {
		t.Fatal(err)
	}
	e.waitJob(t, j.ID)
	time.Sleep(time.Second) // the hook kills before this ends; reaching it is the failure below
	t.Fatalf("the %s finished without reaching %s", j.Kind, point)
}

// TestRestoreEndDoesNotOverwriteTheNextOperation checks that a restore,
// whose safety snapshot is taken after its swap while the database already
// serves, does not set the database running at its end when the next
// operation has begun meanwhile.
func TestRestoreEndDoesNotOverwriteTheNextOperation(t *testing.T) {
	ctx := context.Background()
	e := mustEnv(t)
	d, err := e.create(ctx, "busy", snapdeck.PlanProfessional)
	if err != nil {
		t.Fatal(err)
	}
	e.exec(t, d.ID, "CREATE TABLE t (n INTEGER)")
	e.exec(t, d.ID, "WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v+1 FROM s WHERE v < 100) INSERT INTO t SELECT v FROM s")
	snap, err := e.snapshots.Snapshot(ctx, d.ID, snapdeck.SnapshotOnDemand, "test", "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	swapped, resume := make(chan struct{}), make(chan struct{})
	database.SetFaultHook(func(p string) {
		if p == "restore:swapped" {
			close(swapped)
			<-resume
		}
	})
	defer database.SetFaultHook(nil)
	_, first, err := e.snapshots.Restore(ctx, d.ID, snap.ID, "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	<-swapped
	// The first restore is past its swap: the database serves, and a
	// second restore begins and is held before its own swap.
	materialized, resume2 := make(chan struct{}), make(chan struct{})
	database.SetFaultHook(func(p string) {
		if p == "restore:materialized" {
			close(materialized)
			<-resume2
		}
	})
	if got, _ := e.dbs.Find(ctx, d.ID); got.Status != snapdeck.StatusRunning {
		close(resume)
		close(resume2)
		t.Fatalf("database %s after the first restore's swap, want running", got.Status)
	}
	_, second, err := e.snapshots.Restore(ctx, d.ID, snap.ID, "ann@example.com")
	if err != nil {
		close(resume)
		close(resume2)
		t.Fatal(err)
	}
	<-materialized
	close(resume)
	if j := e.waitJob(t, first.ID); j.Status != snapdeck.JobSucceeded {
		close(resume2)
		t.Fatalf("first restore: %s (%s)", j.Status, j.Error)
	}
	if got, _ := e.dbs.Find(ctx, d.ID); got.Status != snapdeck.StatusRestoring {
		t.Errorf("the first restore ended with the database %s while the second restore runs; want restoring", got.Status)
	}
	close(resume2)
	e.waitJob(t, second.ID)
}

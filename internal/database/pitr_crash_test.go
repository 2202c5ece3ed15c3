package database_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// The point-in-time crash tests run TestPITRCrashChild in a child process
// (this test binary, re-executed) that kills itself with SIGKILL, while
// writing or at a named point of a restore to a time, then check from the
// parent what the next start finds.
const pitrCrashEnv = "SNAPDECK_PITR_CRASH"

// crashChild runs the child for what and waits for its SIGKILL.
func crashChild(t *testing.T, dir, what string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPITRCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, pitrCrashEnv+"="+what)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child: got %v, want killed during %s; output:\n%s", err, what, out)
	}
}

// commitGap is the time between the child's commits: longer than the
// replication's 100 ms read of the WAL, so that a time between two
// commits tells them apart.
const commitGap = 300 * time.Millisecond

// TestPITRCrashDuringWritesKeepsTheTimeline kills the console while it
// writes: after the restart every commit older than the interval is
// restorable, and the replication goes on on the same timeline.
func TestPITRCrashDuringWritesKeepsTheTimeline(t *testing.T) {
	if testing.Short() {
		t.Skip("crash tests re-execute the test binary")
	}
	ctx := context.Background()
	dir := t.TempDir()
	crashChild(t, dir, "writes")
	// The child's log: "<rows> <unix ns>" after each commit, and
	// "kill <unix ns>" just before it died.
	f, err := os.Open(filepath.Join(dir, "commits.log"))
	if err != nil {
		t.Fatal(err)
	}
	type commit struct {
		rows int
		at   time.Time
	}
	var commits []commit
	var killed time.Time
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		a, b, _ := strings.Cut(sc.Text(), " ")
		ns, _ := strconv.ParseInt(b, 10, 64)
		if a == "kill" {
			killed = time.Unix(0, ns)
			continue
		}
		n, _ := strconv.Atoi(a)
		commits = append(commits, commit{n, time.Unix(0, ns)})
	}
	f.Close()
	if killed.IsZero() || len(commits) < 5 {
		t.Fatalf("child log: %d commits, killed at %s; want at least 5 and the kill", len(commits), killed)
	}

	e := pitrEnvAt(t, dir)
	dbs, err := e.dbs.List(ctx)
	if err != nil || len(dbs) != 1 {
		t.Fatalf("databases after the crash: %v, %v", dbs, err)
	}
	d := dbs[0]
	// Every commit the interval (100 ms) before the kill is restorable;
	// commitGap/2 after a commit is after its read from the WAL and
	// before the next commit.
	var checked int
	for i, c := range commits {
		if c.at.After(killed.Add(-commitGap)) {
			break
		}
		if i%3 != 0 && i != len(commits)-1 {
			continue // a few of them: each restore is a replace
		}
		e.restoreTo(t, d.ID, c.at.Add(commitGap/2))
		if got, want := e.rows(t, d.ID), fmt.Sprintf("%d ok", c.rows); got != want {
			t.Errorf("restored to after commit %d (%s): got %s, want %s", i+1, c.at.Format(time.StampMilli), got, want)
		}
		checked++
	}
	if checked < 2 {
		t.Fatalf("only %d commits old enough to check", checked)
	}
	// The replication goes on: a new commit is restorable, and so is the
	// first one still.
	e.exec(t, d.ID, "DELETE FROM t")
	after := e.batch(t, d.ID, 7)
	e.restoreTo(t, d.ID, commits[0].at.Add(commitGap/2))
	if got, want := e.rows(t, d.ID), fmt.Sprintf("%d ok", commits[0].rows); got != want {
		t.Errorf("restored to the first commit after the restart: got %s, want %s", got, want)
	}
	e.restoreTo(t, d.ID, after)
	if got := e.rows(t, d.ID); got != "7 ok" {
		t.Errorf("restored to a commit after the restart: got %s, want 7 ok", got)
	}
}

// TestPITRCrashDuringRestoreToTime kills the console at each point of a
// restore to a time: the database has its old content or its new one,
// and its history is whole.
func TestPITRCrashDuringRestoreToTime(t *testing.T) {
	if testing.Short() {
		t.Skip("crash tests re-execute the test binary")
	}
	for _, tc := range []struct {
		point    string
		restored bool
	}{
		{"restore-to-time:materialized", false},
		{"restore-to-time:swapped", true},
		{"restore-to-time:safety-captured", true},
	} {
		t.Run(strings.ReplaceAll(tc.point, ":", "_"), func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			crashChild(t, dir, tc.point)
			e := pitrEnvAt(t, dir)
			dbs, err := e.dbs.List(ctx)
			if err != nil || len(dbs) != 1 || dbs[0].Status != snapdeck.StatusRunning {
				t.Fatalf("databases after the crash: %+v, %v; want one, running", dbs, err)
			}
			d := dbs[0]
			want := "300 ok"
			if tc.restored {
				want = "100 ok"
			}
			if got := e.rows(t, d.ID); got != want {
				t.Fatalf("after a stop at %s: got %s, want %s", tc.point, got, want)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, "databases", "*.sqlite.*-*")); len(left) != 0 {
				t.Errorf("temporary files left after the restart: %v", left)
			}
			// The history is whole: the time the child noted after its
			// first commit still gives 100 rows, and a commit after the
			// restart is restorable (after the swap, a stop may have come
			// while the new file's base was being written).
			b, err := os.ReadFile(filepath.Join(dir, "first"))
			if err != nil {
				t.Fatal(err)
			}
			ns, _ := strconv.ParseInt(string(b), 10, 64)
			after := e.batch(t, d.ID, 5)
			e.exec(t, d.ID, "DELETE FROM t")
			e.restoreTo(t, d.ID, time.Unix(0, ns))
			if got := e.rows(t, d.ID); got != "100 ok" {
				t.Errorf("restored to the first commit after the restart: got %s, want 100 ok", got)
			}
			e.restoreTo(t, d.ID, after)
			want = "305 ok"
			if tc.restored {
				want = "105 ok"
			}
			if got := e.rows(t, d.ID); got != want {
				t.Errorf("restored to a commit after the restart: got %s, want %s", got, want)
			}
		})
	}
}

// TestPITRCrashChild is the child side of the point-in-time crash tests;
// it does nothing in a normal test run.
func TestPITRCrashChild(t *testing.T) {
	dir, what := os.Getenv(crashDirEnv), os.Getenv(pitrCrashEnv)
	if dir == "" || what == "" {
		t.Skip("run by the point-in-time crash tests")
	}
	e := pitrEnvAt(t, dir)
	d := e.ledger(t)
	if what == "writes" {
		log, err := os.Create(filepath.Join(dir, "commits.log"))
		if err != nil {
			t.Fatal(err)
		}
		// Killed in the middle of the 20th commit's gap, with the
		// replication running on its own: nothing forces a sync.
		time.AfterFunc(20*commitGap-commitGap/3, func() {
			fmt.Fprintf(log, "kill %d\n", time.Now().UnixNano())
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		})
		for i := 1; ; i++ {
			e.exec(t, d.ID, "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < 10) INSERT INTO t(n) SELECT i FROM s")
			fmt.Fprintf(log, "%d %d\n", 10*i, time.Now().UnixNano())
			time.Sleep(commitGap)
		}
	}
	first := e.batch(t, d.ID, 100)
	if err := os.WriteFile(filepath.Join(dir, "first"), []byte(strconv.FormatInt(first.UnixNano(), 10)), 0o600); err != nil {
		t.Fatal(err)
	}
	e.batch(t, d.ID, 200)
	database.SetFaultHook(func(p string) {
		if p == what {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	})
	_, j, err := e.snapshots.RestoreToTime(context.Background(), "ann@x", d.ID, first)
	if err != nil {
		t.Fatal(err)
	}
	e.waitJob(t, j.ID)
	time.Sleep(time.Second) // the hook kills before this ends; reaching it is the failure below
	t.Fatalf("the restore to a time finished without reaching %s", what)
}

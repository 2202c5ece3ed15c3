package job_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/job"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/store"

	_ "modernc.org/sqlite"
)

func mustRunner(t *testing.T) (*store.DB, *job.Runner) {
	t.Helper()
	return runnerAt(t, filepath.Join(t.TempDir(), "console.db"))
}

// runnerAt is mustRunner with its console store at path.
func runnerAt(t *testing.T, path string) (*store.DB, *job.Runner) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := job.NewRunner(db, nil)
	t.Cleanup(func() { r.Close(ctx); db.Close(ctx) })
	return db, r
}

func TestRunRecordsProgressAndOutcome(t *testing.T) {
	ctx := context.Background()
	db, r := mustRunner(t)
	j, err := r.Run(ctx, snapdeck.Job{Kind: snapdeck.JobExport, DatabaseID: "a1b2c3d4", Actor: "ann"}, func(ctx context.Context, p *job.Progress) error {
		p.Stage("Preparing export", 1000)
		p.Bytes(400, 1000)
		got, err := db.FindJob(ctx, p.Job().ID)
		if err != nil {
			return err
		}
		if got.Message != "Preparing export" || got.Status != snapdeck.JobRunning {
			t.Errorf("while running: got %q %s, want the stage message and running", got.Message, got.Status)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.FindJob(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != snapdeck.JobSucceeded || got.Percent() != 100 || got.DoneBytes != 1000 || got.FinishedAt.IsZero() {
		t.Fatalf("after success: got %+v, want succeeded at 100%%", got)
	}
}

func TestFailuresShowTheSafeMessageAndPanicsAreCaught(t *testing.T) {
	ctx := context.Background()
	db, r := mustRunner(t)
	cases := []struct {
		name string
		fn   job.Func
		want string
	}{
		{"typed error", func(context.Context, *job.Progress) error {
			return &snapdeck.Error{Code: snapdeck.Invalid, Message: "the file ends early", Err: errors.New("unexpected EOF at 1234")}
		}, "the file ends early"},
		{"untyped error", func(context.Context, *job.Progress) error { return errors.New("disk on fire") },
			snapdeck.ErrorMessage(errors.New("x"))},
		{"panic", func(context.Context, *job.Progress) error { panic("boom") }, snapdeck.ErrorMessage(errors.New("x"))},
	}
	for _, tc := range cases {
		j, err := r.Run(ctx, snapdeck.Job{Kind: snapdeck.JobLoad}, tc.fn)
		if err == nil {
			t.Errorf("%s: got nil error, want one", tc.name)
			continue
		}
		got, _ := db.FindJob(ctx, j.ID)
		if got.Status != snapdeck.JobFailed || got.Error != tc.want {
			t.Errorf("%s: got %s %q, want failed %q", tc.name, got.Status, got.Error, tc.want)
		}
	}
}

func TestCloseStopsBackgroundJobs(t *testing.T) {
	ctx := context.Background()
	db, r := mustRunner(t)
	started := make(chan struct{})
	j, err := r.Start(ctx, snapdeck.Job{Kind: snapdeck.JobRestore}, func(ctx context.Context, p *job.Progress) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	closeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := r.Close(closeCtx); err != nil {
		t.Fatalf("close: %v", err)
	}
	got, _ := db.FindJob(ctx, j.ID)
	if got.Status != snapdeck.JobFailed || got.Error == "" {
		t.Fatalf("job after close: got %s %q, want failed with a reason", got.Status, got.Error)
	}
	if _, err := r.Start(ctx, snapdeck.Job{Kind: snapdeck.JobRestore}, func(context.Context, *job.Progress) error { return nil }); snapdeck.ErrorCode(err) != snapdeck.Busy {
		t.Fatalf("start after close: got %v, want Busy", err)
	}
}

// TestWaitReturnsTheEndedJob waits for a job without polling: Wait does not
// return while the job runs, returns the recorded end when it ends, returns
// at once for a job already ended, gives up with its context, and refuses a
// job left open that this runner does not run.
func TestWaitReturnsTheEndedJob(t *testing.T) {
	ctx := context.Background()
	db, r := mustRunner(t)
	release := make(chan struct{})
	j, err := r.Start(ctx, snapdeck.Job{Kind: snapdeck.JobRestore, DatabaseID: "a1b2c3d4", Actor: "ann"}, func(ctx context.Context, p *job.Progress) error {
		p.Stage("Restoring", 10)
		<-release
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if got, err := r.Wait(short, j.ID); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("while the job runs: got %+v, %v; want the wait to end with its context", got, err)
	}
	waited := make(chan snapdeck.Job, 1)
	go func() {
		got, err := r.Wait(ctx, j.ID)
		if err != nil {
			t.Error(err)
		}
		waited <- got
	}()
	close(release)
	got := <-waited
	if got.ID != j.ID || got.Status != snapdeck.JobSucceeded || got.FinishedAt.IsZero() || got.DoneBytes != 10 {
		t.Fatalf("after the end: got %+v, want the job succeeded as recorded", got)
	}
	if again, err := r.Wait(ctx, j.ID); err != nil || again.Status != snapdeck.JobSucceeded {
		t.Fatalf("waiting for an ended job: got %+v, %v", again, err)
	}
	// A job a previous process left running: nothing here will end it.
	left := snapdeck.Job{ID: "left-open", Kind: snapdeck.JobRestore, DatabaseID: "a1b2c3d4", Status: snapdeck.JobRunning, CreatedAt: time.Now(), StartedAt: time.Now()}
	if err := db.CreateJob(ctx, &left); err != nil {
		t.Fatal(err)
	}
	var se *snapdeck.Error
	if _, err := r.Wait(ctx, left.ID); !errors.As(err, &se) || se.Code != snapdeck.Conflict {
		t.Fatalf("waiting for a job no runner runs: got %v, want a conflict", err)
	}
	if _, err := r.Wait(ctx, "no-such-job"); !errors.As(err, &se) || se.Code != snapdeck.NotFound {
		t.Fatalf("waiting for an unknown job: got %v, want not found", err)
	}
}

// TestWaitQuietWaitsForEveryRunningJob runs two jobs and a snapshot's
// verification: WaitQuiet returns with its context while either job runs,
// and once both have ended, the verification still running; at once with
// none.
func TestWaitQuietWaitsForEveryRunningJob(t *testing.T) {
	ctx := context.Background()
	_, r := mustRunner(t)
	if err := r.WaitQuiet(ctx); err != nil {
		t.Fatalf("with no job: %v, want nil at once", err)
	}
	verifying := make(chan struct{})
	t.Cleanup(func() { close(verifying) })
	if _, err := r.Start(ctx, snapdeck.Job{Kind: snapdeck.JobVerify, DatabaseID: "a1b2c3d4", Actor: "system"}, func(ctx context.Context, p *job.Progress) error {
		<-verifying
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	releases := []chan struct{}{make(chan struct{}), make(chan struct{})}
	released := 0
	// Registered after mustRunner's, so run before its Close waits for
	// the jobs: a failure below leaves none blocked.
	t.Cleanup(func() {
		for _, release := range releases[released:] {
			close(release)
		}
	})
	for _, release := range releases {
		if _, err := r.Start(ctx, snapdeck.Job{Kind: snapdeck.JobSnapshot, DatabaseID: "a1b2c3d4", Actor: "ann"}, func(ctx context.Context, p *job.Progress) error {
			<-release
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for i, release := range releases {
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		err := r.WaitQuiet(short)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("with %d jobs running: %v, want the wait to end with its context", len(releases)-i, err)
		}
		close(release)
		released++
	}
	done, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := r.WaitQuiet(done); err != nil {
		t.Fatalf("once both ended, a verification running: %v, want nil", err)
	}
}

// TestProgressDoesNotWaitForTheStore holds the console store's write lock
// while a job reports progress: Bytes returns at once (the write of
// progress runs in the background), and that write, landing once the lock
// goes, does not overwrite the job's end.
func TestProgressDoesNotWaitForTheStore(t *testing.T) {
	ctx := context.Background()
	db, r, lock := lockableRunner(t)
	const hold = 1500 * time.Millisecond
	var took time.Duration
	j, err := r.Run(ctx, snapdeck.Job{Kind: snapdeck.JobExport, DatabaseID: "a1b2c3d4", Actor: "ann"}, func(ctx context.Context, p *job.Progress) error {
		p.Stage("Preparing export", 1000)
		if err := lock(ctx, hold); err != nil {
			return err
		}
		time.Sleep(300 * time.Millisecond) // past the 250 ms between progress writes
		start := time.Now()
		p.Bytes(500, 1000)
		took = time.Since(start)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if took > hold/3 {
		t.Errorf("Bytes took %s while the store was locked for %s: it waited for the write", took, hold)
	}
	got, err := db.FindJob(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != snapdeck.JobSucceeded || got.DoneBytes != 1000 {
		t.Fatalf("after the end: got %s with %d bytes done, want succeeded with 1000", got.Status, got.DoneBytes)
	}
}

// TestStageInBackgroundDoesNotWaitForTheStore: a stage is recorded behind a store
// that is busy, without holding up the work, in order, and before the
// job's end, which no stage write overwrites.
func TestStageInBackgroundDoesNotWaitForTheStore(t *testing.T) {
	ctx := context.Background()
	db, r, lock := lockableRunner(t)
	const hold = 1500 * time.Millisecond
	var took time.Duration
	j, err := r.Run(ctx, snapdeck.Job{Kind: snapdeck.JobRestore, DatabaseID: "a1b2c3d4", Actor: "ann"}, func(ctx context.Context, p *job.Progress) error {
		if err := lock(ctx, hold); err != nil {
			return err
		}
		start := time.Now()
		p.StageInBackground("Restoring the snapshot", 1000)
		p.StageInBackground("Swapping the restored data in", 1000)
		took = time.Since(start)
		p.Stage("Restored.", 1000)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if took > hold/3 {
		t.Errorf("two stages took %s while the store was locked for %s: they waited for the writes", took, hold)
	}
	got, err := db.FindJob(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != snapdeck.JobSucceeded || got.Message != "Restored." || got.DoneBytes != 1000 {
		t.Fatalf("after the end: got %s %q with %d bytes done, want succeeded, the last stage and 1000", got.Status, got.Message, got.DoneBytes)
	}
}

// lockableRunner is mustRunner with lock, which takes the console store's
// write lock from another connection and gives it back after d.
func lockableRunner(t *testing.T) (*store.DB, *job.Runner, func(ctx context.Context, d time.Duration) error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "console.db")
	db, r := runnerAt(t, path)
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	other.SetMaxOpenConns(1)
	lock := func(ctx context.Context, d time.Duration) error {
		tx, err := other.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "CREATE TABLE held (x)"); err != nil { // takes the write lock
			return err
		}
		time.AfterFunc(d, func() { tx.Rollback() })
		return nil
	}
	return db, r, lock
}

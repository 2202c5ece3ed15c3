// Package job runs long work in the background with progress recorded in
// the store: snapshots, restores, loads, exports. Work runs on a context the
// runner owns, not the request's, so closing a browser tab does not cancel
// a restore; Close cancels it at shutdown and waits.
package job

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/store"
)

// Func is the work of a job. It reports progress through p and returns
// nil on success; an error's safe message becomes the job's Error.
type Func func(ctx context.Context, p *Progress) error

// Runner starts jobs and keeps their records current.
type Runner struct {
	db     *store.DB
	logger *slog.Logger
	now    func() time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// mu guards ended: a channel per job this runner is running, closed
	// once its end is recorded, so Wait needs no polling.
	mu    sync.Mutex
	ended map[string]chan struct{}
	// verifying holds the jobs of ended that verify a snapshot, which
	// WaitQuiet does not wait for.
	verifying map[string]bool
}

// NewRunner returns a Runner recording jobs in db.
func NewRunner(db *store.DB, logger *slog.Logger) *Runner {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Runner{db: db, logger: logger, now: time.Now, ctx: ctx, cancel: cancel, ended: map[string]chan struct{}{},
		verifying: map[string]bool{}}
}

// Close cancels running jobs and waits for them to stop.
func (r *Runner) Close(ctx context.Context) error {
	r.cancel()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Wait returns job id once it has ended, as recorded: at once for a job
// that already ended, or when the job this runner runs records its end.
// A job still open that this runner does not run (one a previous process
// left, before Recover marks it failed) is refused rather than waited for
// forever; ctx bounds the wait.
func (r *Runner) Wait(ctx context.Context, id string) (snapdeck.Job, error) {
	r.mu.Lock()
	ended, running := r.ended[id]
	r.mu.Unlock()
	if running {
		select {
		case <-ended:
		case <-ctx.Done():
			return snapdeck.Job{}, ctx.Err()
		}
	}
	j, err := r.db.FindJob(ctx, id)
	if err != nil {
		return j, err
	}
	if !j.Status.IsDone() {
		return j, snapdeck.Errorf(snapdeck.Conflict, "Job %s is %s but not run by this console, so it cannot be waited for.", id, j.Status)
	}
	return j, nil
}

// WaitQuiet returns nil once no job of this runner runs, at once when
// none does, or ctx's error when ctx ends first. Background work that can
// wait (point-in-time compactions, pitr.Quiet) gives the jobs users wait
// for the cores. Verifications of snapshots are not waited for: they are
// background work of their own, started after every snapshot and queued
// one behind another.
func (r *Runner) WaitQuiet(ctx context.Context) error {
	for {
		var one chan struct{}
		r.mu.Lock()
		for id, ended := range r.ended {
			if !r.verifying[id] {
				one = ended
				break
			}
		}
		r.mu.Unlock()
		if one == nil {
			return nil
		}
		select {
		case <-one:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Start records a job and runs fn in the background. The returned job is
// as recorded at the start.
func (r *Runner) Start(ctx context.Context, j snapdeck.Job, fn Func) (snapdeck.Job, error) {
	if err := r.record(ctx, &j); err != nil {
		return j, err
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.run(j, fn)
	}()
	return j, nil
}

// Run records a job and runs fn now, returning when it ends; for work the
// caller waits for anyway (the scheduler's snapshots) but that should show
// in the job list all the same.
func (r *Runner) Run(ctx context.Context, j snapdeck.Job, fn Func) (snapdeck.Job, error) {
	if err := r.record(ctx, &j); err != nil {
		return j, err
	}
	r.wg.Add(1)
	defer r.wg.Done()
	return r.finish(j, fn, ctx)
}

// record stores a new running job, unless the runner is shutting down:
// Close waits for the jobs it knows, so none may start after it.
func (r *Runner) record(ctx context.Context, j *snapdeck.Job) error {
	if r.ctx.Err() != nil {
		return snapdeck.Errorf(snapdeck.Busy, "The console is shutting down; try again when it is back.")
	}
	j.ID = uuid.NewString()
	j.Status = snapdeck.JobRunning
	j.StartedAt = r.now().UTC()
	j.CreatedAt = j.StartedAt
	if err := r.db.CreateJob(ctx, j); err != nil {
		return err
	}
	r.mu.Lock()
	r.ended[j.ID] = make(chan struct{})
	if j.Kind == snapdeck.JobVerify {
		r.verifying[j.ID] = true
	}
	r.mu.Unlock()
	return nil
}

func (r *Runner) run(j snapdeck.Job, fn Func) {
	_, err := r.finish(j, fn, r.ctx)
	switch {
	case err == nil:
	case errors.Is(err, context.Canceled) && r.ctx.Err() != nil:
		r.logger.Info("job stopped by the shutdown", "job_id", j.ID, "kind", j.Kind, "database_id", j.DatabaseID)
	default:
		r.logger.Warn("job failed", "job_id", j.ID, "kind", j.Kind, "database_id", j.DatabaseID, "err", err)
	}
}

func (r *Runner) finish(j snapdeck.Job, fn Func, ctx context.Context) (snapdeck.Job, error) {
	p := &Progress{runner: r, job: j}
	err := func() (err error) {
		defer func() {
			if v := recover(); v != nil {
				err = fmt.Errorf("job panicked: %v", v)
			}
		}()
		return fn(ctx, p)
	}()
	// A progress write still under way lands before the end, not after.
	p.writes.Wait()
	p.mu.Lock()
	j = p.job
	p.mu.Unlock()
	j.FinishedAt = r.now().UTC()
	if err != nil {
		j.Status = snapdeck.JobFailed
		j.Error = snapdeck.ErrorMessage(err)
		if errors.Is(err, context.Canceled) {
			j.Error = "Stopped: the console shut down before this finished."
		}
	} else {
		j.Status = snapdeck.JobSucceeded
		if j.TotalBytes > 0 {
			j.DoneBytes = j.TotalBytes
		}
	}
	// Record the end even if the job's context was cancelled.
	if uerr := r.db.UpdateJob(context.Background(), j); uerr != nil {
		r.logger.Error("record job end", "job_id", j.ID, "err", uerr)
	}
	r.mu.Lock()
	close(r.ended[j.ID])
	delete(r.ended, j.ID)
	delete(r.verifying, j.ID)
	r.mu.Unlock()
	return j, err
}

// Progress is how a job's work reports what it is doing.
type Progress struct {
	runner *Runner
	mu     sync.Mutex
	job    snapdeck.Job
	saved  time.Time
	// writing is set while the background writer runs; again, that the
	// job changed after its write began, so that it writes once more.
	// writes waits for it, and writeMu orders the forced writes with it,
	// each of the job as it stands when it runs.
	writing bool
	again   bool
	writes  sync.WaitGroup
	writeMu sync.Mutex
}

// Job returns the job as it stands.
func (p *Progress) Job() snapdeck.Job {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.job
}

// Stage starts a new stage of the work with a message and a byte total.
// It is recorded before Stage returns.
func (p *Progress) Stage(message string, total int64) {
	p.mu.Lock()
	p.job.Message, p.job.TotalBytes, p.job.DoneBytes = message, total, 0
	p.mu.Unlock()
	p.save(true)
}

// StageInBackground is Stage recorded in the background, in order with
// the other writes and before the job's end: for a stage begun just
// before a step the user waits for, when the disk is busy. A restore
// begins its swap right after writing the new file, and a store write
// then waited on its fsync behind that file's writeback, 1-175 ms on the
// benchmark machine, before the database could run again.
func (p *Progress) StageInBackground(message string, total int64) {
	p.mu.Lock()
	p.job.Message, p.job.TotalBytes, p.job.DoneBytes = message, total, 0
	p.saved = p.runner.now()
	p.background()
	p.mu.Unlock()
}

// Bytes reports progress within the stage; it writes to the store at most
// a few times a second.
func (p *Progress) Bytes(done, total int64) {
	p.mu.Lock()
	p.job.DoneBytes, p.job.TotalBytes = done, total
	p.mu.Unlock()
	p.save(false)
}

// SetSnapshot records the snapshot the job works on or produced.
func (p *Progress) SetSnapshot(id string) {
	p.mu.Lock()
	p.job.SnapshotID = id
	p.mu.Unlock()
	p.save(true)
}

// SetTarget records the job's target: the database it creates, or the
// safety snapshot it took.
func (p *Progress) SetTarget(id string) {
	p.mu.Lock()
	p.job.TargetID = id
	p.mu.Unlock()
	p.save(true)
}

// save records the job. A change of stage, snapshot or target (force) is
// written before save returns; progress within a stage at most every
// 250 ms, and in the background: a write to the console's store waits on
// its fsync, and the work reporting progress (a capture's, a restore's or
// an export's one goroutine that feeds the rest) should not wait with it.
func (p *Progress) save(force bool) {
	p.mu.Lock()
	now := p.runner.now()
	if !force && (p.writing || now.Sub(p.saved) < 250*time.Millisecond) {
		p.mu.Unlock()
		return
	}
	p.saved = now
	if !force {
		p.background()
	}
	p.mu.Unlock()
	if force {
		p.write()
	}
}

// background has the job written by the background writer, starting it
// if it is not running, or having it write once more if it is; p.mu is
// held. What the writer writes is the job as it stands then, so a change
// made while it runs is never lost.
func (p *Progress) background() {
	if p.writing {
		p.again = true
		return
	}
	p.writing = true
	p.writes.Go(func() {
		for {
			p.write()
			p.mu.Lock()
			if !p.again {
				p.writing = false
				p.mu.Unlock()
				return
			}
			p.again = false
			p.mu.Unlock()
		}
	})
}

// write records the job as it stands, after any write before it.
func (p *Progress) write() {
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	j := p.Job()
	if err := p.runner.db.UpdateJob(context.Background(), j); err != nil {
		p.runner.logger.Warn("record job progress", "job_id", j.ID, "err", err)
	}
}

// Find returns a job as last recorded, running or ended.
func (r *Runner) Find(ctx context.Context, id string) (snapdeck.Job, error) {
	return r.db.FindJob(ctx, id)
}

// FindOpen returns the jobs not yet ended, of one database or, for "",
// of every database.
func (r *Runner) FindOpen(ctx context.Context, dbID string) ([]snapdeck.Job, error) {
	return r.db.FindOpenJobs(ctx, dbID)
}

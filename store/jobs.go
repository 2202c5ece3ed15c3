package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

const jobColumns = `id, kind, database_id, snapshot_id, target_id, actor, status, done_bytes, total_bytes,
	message, error, created_at, started_at, finished_at`

func scanJob(row interface{ Scan(...any) error }) (snapdeck.Job, error) {
	var j snapdeck.Job
	var kind, status string
	var created, started, finished int64
	err := row.Scan(&j.ID, &kind, &j.DatabaseID, &j.SnapshotID, &j.TargetID, &j.Actor, &status, &j.DoneBytes, &j.TotalBytes,
		&j.Message, &j.Error, &created, &started, &finished)
	j.Kind, j.Status = snapdeck.JobKind(kind), snapdeck.JobStatus(status)
	j.CreatedAt, j.StartedAt, j.FinishedAt = fromMS(created), fromMS(started), fromMS(finished)
	return j, err
}

// CreateJob records a new job.
func (db *DB) CreateJob(ctx context.Context, j *snapdeck.Job) error {
	if j.CreatedAt.IsZero() {
		j.CreatedAt = db.now().UTC()
	}
	_, err := db.w.ExecContext(ctx, `INSERT INTO jobs (`+jobColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		j.ID, string(j.Kind), j.DatabaseID, j.SnapshotID, j.TargetID, j.Actor, string(j.Status), j.DoneBytes, j.TotalBytes,
		j.Message, j.Error, ms(j.CreatedAt), ms(j.StartedAt), ms(j.FinishedAt))
	if err != nil {
		return fmt.Errorf("record job: %w", err)
	}
	return nil
}

// UpdateJob writes a job's mutable fields.
func (db *DB) UpdateJob(ctx context.Context, j snapdeck.Job) error {
	_, err := db.w.ExecContext(ctx, `UPDATE jobs SET status = ?, done_bytes = ?, total_bytes = ?, message = ?, error = ?,
		started_at = ?, finished_at = ?, snapshot_id = ?, target_id = ? WHERE id = ?`,
		string(j.Status), j.DoneBytes, j.TotalBytes, j.Message, j.Error, ms(j.StartedAt), ms(j.FinishedAt), j.SnapshotID, j.TargetID, j.ID)
	if err != nil {
		return fmt.Errorf("update job %s: %w", j.ID, err)
	}
	return nil
}

// FindJob returns one job.
func (db *DB) FindJob(ctx context.Context, id string) (snapdeck.Job, error) {
	j, err := scanJob(db.r.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return j, &snapdeck.Error{Code: snapdeck.NotFound, Message: fmt.Sprintf("Job not found: %s", id)}
	}
	return j, err
}

// FindOpenJobs returns the unfinished jobs of a database ("" for all),
// oldest first.
func (db *DB) FindOpenJobs(ctx context.Context, databaseID string) ([]snapdeck.Job, error) {
	q := `SELECT ` + jobColumns + ` FROM jobs WHERE status IN ('queued', 'running')`
	var args []any
	if databaseID != "" {
		q += ` AND (database_id = ? OR target_id = ?)`
		args = append(args, databaseID, databaseID)
	}
	rows, err := db.r.QueryContext(ctx, q+` ORDER BY created_at`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []snapdeck.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// FailInterruptedJobs marks every job left queued or running by a crash as
// failed, and returns them so their leftovers can be cleaned up.
func (db *DB) FailInterruptedJobs(ctx context.Context) ([]snapdeck.Job, error) {
	jobs, err := db.FindOpenJobs(ctx, "")
	if err != nil {
		return nil, err
	}
	for i := range jobs {
		jobs[i].Status = snapdeck.JobFailed
		jobs[i].Error = "Interrupted: the console stopped before this finished. Nothing was changed by the unfinished part."
		jobs[i].FinishedAt = db.now().UTC()
		if err := db.UpdateJob(ctx, jobs[i]); err != nil {
			return nil, err
		}
	}
	return jobs, nil
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

const snapshotColumns = `id, database_id, type, reason, status, created_at, completed_at, size_bytes, expires_at,
	sha256, root, page_size, pages, error, verified, verified_at, verify_error`

// SnapshotRecord is a snapshot as stored, with the engine's facts needed to
// rebuild its image.
type SnapshotRecord struct {
	snapdeck.Snapshot
	PageSize int
	Pages    int64
}

func scanSnapshot(row interface{ Scan(...any) error }) (SnapshotRecord, error) {
	var s SnapshotRecord
	var typ, status string
	var created, completed, expires, verifiedAt int64
	err := row.Scan(&s.ID, &s.DatabaseID, &typ, &s.Reason, &status, &created, &completed, &s.SizeBytes, &expires,
		&s.SHA256, &s.Root, &s.PageSize, &s.Pages, &s.Error, &s.Verified, &verifiedAt, &s.VerifyError)
	s.Type, s.Status = snapdeck.SnapshotType(typ), snapdeck.SnapshotStatus(status)
	s.CreatedAt, s.CompletedAt, s.ExpiresAt, s.VerifiedAt = fromMS(created), fromMS(completed), fromMS(expires), fromMS(verifiedAt)
	return s, err
}

// CreateSnapshot records a new snapshot, usually pending.
func (db *DB) CreateSnapshot(ctx context.Context, s *SnapshotRecord) error {
	if s.CreatedAt.IsZero() {
		s.CreatedAt = db.now().UTC()
	}
	_, err := db.w.ExecContext(ctx, `INSERT INTO snapshots (`+snapshotColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.ID, s.DatabaseID, string(s.Type), s.Reason, string(s.Status), ms(s.CreatedAt), ms(s.CompletedAt), s.SizeBytes, ms(s.ExpiresAt),
		s.SHA256, s.Root, s.PageSize, s.Pages, s.Error, s.Verified, ms(s.VerifiedAt), s.VerifyError)
	if err != nil {
		return fmt.Errorf("record snapshot: %w", err)
	}
	return nil
}

// UpdateSnapshot writes every mutable field of a snapshot.
func (db *DB) UpdateSnapshot(ctx context.Context, s SnapshotRecord) error {
	res, err := db.w.ExecContext(ctx, `UPDATE snapshots SET status = ?, completed_at = ?, size_bytes = ?, expires_at = ?,
		sha256 = ?, root = ?, page_size = ?, pages = ?, error = ?, verified = ?, verified_at = ?, verify_error = ?, reason = ?
		WHERE id = ?`, string(s.Status), ms(s.CompletedAt), s.SizeBytes, ms(s.ExpiresAt), s.SHA256, s.Root, s.PageSize, s.Pages,
		s.Error, s.Verified, ms(s.VerifiedAt), s.VerifyError, s.Reason, s.ID)
	if err != nil {
		return fmt.Errorf("update snapshot %s: %w", s.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return snapshotNotFound(s.ID)
	}
	return nil
}

func snapshotNotFound(id string) error {
	return &snapdeck.Error{Code: snapdeck.NotFound, Reason: "snapshot-not-found", Message: fmt.Sprintf("Snapshot not found: %s", id)}
}

// FindSnapshot returns one snapshot.
func (db *DB) FindSnapshot(ctx context.Context, id string) (SnapshotRecord, error) {
	s, err := scanSnapshot(db.r.QueryRowContext(ctx, `SELECT `+snapshotColumns+` FROM snapshots WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return s, snapshotNotFound(id)
	}
	if err != nil {
		return s, fmt.Errorf("find snapshot %s: %w", id, err)
	}
	return s, nil
}

func snapshotWhere(f snapdeck.SnapshotFilter) (string, []any) {
	var conds []string
	var args []any
	if f.DatabaseID != "" {
		conds = append(conds, "database_id = ?")
		args = append(args, f.DatabaseID)
	}
	if f.Type != "" {
		conds = append(conds, "type = ?")
		args = append(args, string(f.Type))
	}
	if f.Status != "" {
		conds = append(conds, "status = ?")
		args = append(args, string(f.Status))
	}
	if !f.From.IsZero() {
		conds = append(conds, "created_at >= ?")
		args = append(args, ms(f.From))
	}
	if !f.To.IsZero() {
		conds = append(conds, "created_at < ?")
		args = append(args, ms(f.To))
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// FindSnapshots returns snapshots matching the filter, newest first.
func (db *DB) FindSnapshots(ctx context.Context, f snapdeck.SnapshotFilter) ([]SnapshotRecord, error) {
	where, args := snapshotWhere(f)
	q := `SELECT ` + snapshotColumns + ` FROM snapshots` + where + ` ORDER BY created_at DESC, id DESC`
	if f.Limit > 0 {
		q += ` LIMIT ? OFFSET ?`
		args = append(args, f.Limit, f.Offset)
	}
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	return scanSnapshots(rows)
}

// scanSnapshots reads every row of a query of snapshotColumns and closes it.
func scanSnapshots(rows *sql.Rows) ([]SnapshotRecord, error) {
	defer rows.Close()
	var out []SnapshotRecord
	for rows.Next() {
		s, err := scanSnapshot(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// CountSnapshots counts snapshots matching the filter (Limit ignored).
func (db *DB) CountSnapshots(ctx context.Context, f snapdeck.SnapshotFilter) (int, error) {
	where, args := snapshotWhere(f)
	var n int
	err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM snapshots`+where, args...).Scan(&n)
	return n, err
}

// LatestCompletedSnapshot returns a database's newest completed snapshot.
func (db *DB) LatestCompletedSnapshot(ctx context.Context, databaseID string) (SnapshotRecord, error) {
	s, err := scanSnapshot(db.r.QueryRowContext(ctx, `SELECT `+snapshotColumns+` FROM snapshots
		WHERE database_id = ? AND status = 'completed' ORDER BY created_at DESC, id DESC LIMIT 1`, databaseID))
	if errors.Is(err, sql.ErrNoRows) {
		return s, &snapdeck.Error{Code: snapdeck.NotFound, Message: "This database has no completed snapshot yet."}
	}
	return s, err
}

// LatestSnapshotTimes returns, per database, when its newest completed
// snapshot was taken.
func (db *DB) LatestSnapshotTimes(ctx context.Context) (map[string]time.Time, error) {
	return db.latestTimes(ctx, "")
}

// DeleteSnapshot removes a snapshot's record; its storage is reclaimed by
// the next sweep of the snapshot store.
func (db *DB) DeleteSnapshot(ctx context.Context, id string) error {
	res, err := db.w.ExecContext(ctx, `DELETE FROM snapshots WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete snapshot %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return snapshotNotFound(id)
	}
	return nil
}

// DeleteOrphanSnapshots removes the records of every snapshot whose
// database no longer exists and returns how many there were; their
// storage is reclaimed by the next sweep of the snapshot store.
func (db *DB) DeleteOrphanSnapshots(ctx context.Context) (int64, error) {
	res, err := db.w.ExecContext(ctx, `DELETE FROM snapshots WHERE database_id NOT IN (SELECT id FROM databases)`)
	if err != nil {
		return 0, fmt.Errorf("delete snapshots of deleted databases: %w", err)
	}
	return res.RowsAffected()
}

// SnapshotRoots returns the store roots of every snapshot that still has
// one: what a sweep of the snapshot store must keep.
func (db *DB) SnapshotRoots(ctx context.Context) ([]string, error) {
	rows, err := db.w.QueryContext(ctx, `SELECT DISTINCT root FROM snapshots WHERE root <> ''`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// FindUnverifiedSnapshots returns the completed snapshots whose background
// verification never finished (a stop cancelled it, or it never started),
// oldest first.
func (db *DB) FindUnverifiedSnapshots(ctx context.Context) ([]SnapshotRecord, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+snapshotColumns+` FROM snapshots
		WHERE status = 'completed' AND verified_at = 0 ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list unverified snapshots: %w", err)
	}
	return scanSnapshots(rows)
}

// FailInterruptedSnapshots marks every snapshot left pending or in progress
// by a crash as failed; they never completed, so nothing may list them so.
func (db *DB) FailInterruptedSnapshots(ctx context.Context) (int64, error) {
	res, err := db.w.ExecContext(ctx, `UPDATE snapshots SET status = 'failed', completed_at = ?,
		error = 'Interrupted: the console stopped before this snapshot completed.'
		WHERE status IN ('pending', 'in-progress')`, ms(db.now()))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

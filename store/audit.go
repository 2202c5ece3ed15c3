package store

import (
	"context"
	"fmt"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// RecordEvent appends a line to the activity log.
func (db *DB) RecordEvent(ctx context.Context, e *snapdeck.Event) error {
	if e.At.IsZero() {
		e.At = db.now().UTC()
	}
	res, err := db.w.ExecContext(ctx, `INSERT INTO audit_events (at, actor, action, database_id, snapshot_id, outcome, detail, duration_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, ms(e.At), e.Actor, e.Action, e.DatabaseID, e.SnapshotID, string(e.Outcome), e.Detail, e.Duration.Milliseconds())
	if err != nil {
		return fmt.Errorf("record event %s: %w", e.Action, err)
	}
	e.ID, err = res.LastInsertId()
	return err
}

// FindEvents returns activity-log lines, newest first.
func (db *DB) FindEvents(ctx context.Context, f snapdeck.EventFilter) ([]snapdeck.Event, error) {
	q := `SELECT id, at, actor, action, database_id, snapshot_id, outcome, detail, duration_ms FROM audit_events`
	var args []any
	if f.DatabaseID != "" {
		q += ` WHERE database_id = ?`
		args = append(args, f.DatabaseID)
	}
	q += ` ORDER BY at DESC, id DESC`
	if f.Limit > 0 {
		q += ` LIMIT ? OFFSET ?`
		args = append(args, f.Limit, f.Offset)
	}
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	defer rows.Close()
	var out []snapdeck.Event
	for rows.Next() {
		var e snapdeck.Event
		var at, dur int64
		var outcome string
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.DatabaseID, &e.SnapshotID, &outcome, &e.Detail, &dur); err != nil {
			return nil, err
		}
		e.At, e.Outcome, e.Duration = fromMS(at), snapdeck.Outcome(outcome), time.Duration(dur)*time.Millisecond
		out = append(out, e)
	}
	return out, rows.Err()
}

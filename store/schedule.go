package store

import (
	"context"
	"fmt"
	"time"
)

// LatestScheduledTimes returns, per database, when its newest completed
// Scheduled snapshot was taken: what the scheduler's catch-up compares
// with each cadence at start.
func (db *DB) LatestScheduledTimes(ctx context.Context) (map[string]time.Time, error) {
	out, err := db.latestTimes(ctx, `AND type = 'Scheduled'`)
	if err != nil {
		return nil, fmt.Errorf("latest scheduled snapshots: %w", err)
	}
	return out, nil
}

// latestTimes returns, per database, when its newest completed snapshot
// that also meets cond (an SQL condition starting with AND, or "") was
// taken.
func (db *DB) latestTimes(ctx context.Context, cond string) (map[string]time.Time, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT database_id, max(created_at) FROM snapshots
		WHERE status = 'completed' `+cond+` GROUP BY database_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var id string
		var at int64
		if err := rows.Scan(&id, &at); err != nil {
			return nil, err
		}
		out[id] = fromMS(at)
	}
	return out, rows.Err()
}

// notLatestOfLive leaves out the newest completed snapshot of every
// database that still exists: retention never deletes it.
const notLatestOfLive = ` AND NOT (s.status = 'completed'
	AND EXISTS (SELECT 1 FROM databases d WHERE d.id = s.database_id)
	AND s.id = (SELECT n.id FROM snapshots n WHERE n.database_id = s.database_id AND n.status = 'completed'
		ORDER BY n.created_at DESC, n.id DESC LIMIT 1))`

// FindExpiredSnapshots returns up to limit completed or failed snapshots
// that expired at or before now, oldest expiry first. Snapshots still being
// taken are left alone, and so is the latest completed snapshot of every
// live database.
func (db *DB) FindExpiredSnapshots(ctx context.Context, now time.Time, limit int) ([]SnapshotRecord, error) {
	return db.findSnapshotsIn(ctx, `SELECT s.id FROM snapshots s WHERE s.status IN ('completed', 'failed')
		AND s.expires_at > 0 AND s.expires_at <= ?`+notLatestOfLive+` ORDER BY s.expires_at LIMIT ?`, "expires_at", ms(now), limit)
}

// FindSupersededFreeSnapshots returns up to limit completed snapshots of
// free databases other than each one's latest completed snapshot: the free
// plan keeps only that one.
func (db *DB) FindSupersededFreeSnapshots(ctx context.Context, limit int) ([]SnapshotRecord, error) {
	// Per free database through the snapshots_database index: scanning
	// every snapshot of every plan each sweep cost 13 ms at 10,000 databases.
	return db.findSnapshotsIn(ctx, `SELECT s.id FROM snapshots s
		WHERE s.database_id IN (SELECT id FROM databases WHERE plan = 'free') AND s.status = 'completed'`+notLatestOfLive+`
		ORDER BY s.created_at LIMIT ?`, "created_at", limit)
}

// findSnapshotsIn returns the snapshots whose ids the query selects.
func (db *DB) findSnapshotsIn(ctx context.Context, ids, orderBy string, args ...any) ([]SnapshotRecord, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+snapshotColumns+` FROM snapshots WHERE id IN (`+ids+`) ORDER BY `+orderBy, args...)
	if err != nil {
		return nil, fmt.Errorf("find snapshots to delete: %w", err)
	}
	return scanSnapshots(rows)
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// SetDatabaseCredentials replaces a database's username and password hash.
func (db *DB) SetDatabaseCredentials(ctx context.Context, id, username, passwordHash string) error {
	res, err := db.w.ExecContext(ctx, `UPDATE databases SET username = ?, password_hash = ? WHERE id = ?`, username, passwordHash, id)
	if err != nil {
		return fmt.Errorf("set credentials of database %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return snapdeck.DatabaseNotFound(id)
	}
	return nil
}

// FindDatabaseCredentials returns a database's username and password hash;
// both are empty for a database that was never given credentials.
func (db *DB) FindDatabaseCredentials(ctx context.Context, id string) (username, passwordHash string, err error) {
	err = db.r.QueryRowContext(ctx, `SELECT username, password_hash FROM databases WHERE id = ?`, id).Scan(&username, &passwordHash)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", snapdeck.DatabaseNotFound(id)
	}
	if err != nil {
		return "", "", fmt.Errorf("find credentials of database %s: %w", id, err)
	}
	return username, passwordHash, nil
}

// SetPlacement records the placement an API client asked for.
func (db *DB) SetPlacement(ctx context.Context, id string, p snapdeck.Placement) error {
	res, err := db.w.ExecContext(ctx, `UPDATE databases SET cloud_provider = ?, region = ?, memory = ?, storage = ? WHERE id = ?`,
		p.CloudProvider, p.Region, p.Memory, p.Storage, id)
	if err != nil {
		return fmt.Errorf("set placement of database %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return snapdeck.DatabaseNotFound(id)
	}
	return nil
}

// FindPlacements returns the recorded placement of every database that has
// one, by database id.
func (db *DB) FindPlacements(ctx context.Context) (map[string]snapdeck.Placement, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, cloud_provider, region, memory, storage FROM databases
		WHERE cloud_provider != '' OR region != '' OR memory != '' OR storage != ''`)
	if err != nil {
		return nil, fmt.Errorf("list placements: %w", err)
	}
	defer rows.Close()
	out := map[string]snapdeck.Placement{}
	for rows.Next() {
		var id string
		var p snapdeck.Placement
		if err := rows.Scan(&id, &p.CloudProvider, &p.Region, &p.Memory, &p.Storage); err != nil {
			return nil, err
		}
		out[id] = p
	}
	return out, rows.Err()
}

// FindPlacement returns one database's recorded placement.
func (db *DB) FindPlacement(ctx context.Context, id string) (snapdeck.Placement, error) {
	var p snapdeck.Placement
	err := db.r.QueryRowContext(ctx, `SELECT cloud_provider, region, memory, storage FROM databases WHERE id = ?`, id).
		Scan(&p.CloudProvider, &p.Region, &p.Memory, &p.Storage)
	if errors.Is(err, sql.ErrNoRows) {
		return p, snapdeck.DatabaseNotFound(id)
	}
	if err != nil {
		return p, fmt.Errorf("find placement of database %s: %w", id, err)
	}
	return p, nil
}

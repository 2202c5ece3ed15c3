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

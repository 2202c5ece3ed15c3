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

// TokenRecord is one data-plane token as kept: its hash, never the token.
// internal/dbtoken turns it into the domain's Token.
type TokenRecord struct {
	ID, DatabaseID, Name, Scope string
	// Hash is the hex SHA-256 of the token.
	Hash                           string
	CreatedBy                      string
	CreatedAt, LastUsedAt, Revoked time.Time
}

const tokenColumns = `id, database_id, name, scope, token_hash, created_by, created_at, last_used_at, revoked_at`

func scanToken(row interface{ Scan(...any) error }) (TokenRecord, error) {
	var t TokenRecord
	var created, used, revoked int64
	err := row.Scan(&t.ID, &t.DatabaseID, &t.Name, &t.Scope, &t.Hash, &t.CreatedBy, &created, &used, &revoked)
	t.CreatedAt, t.LastUsedAt, t.Revoked = fromMS(created), fromMS(used), fromMS(revoked)
	return t, err
}

func tokenNotFound() error {
	return &snapdeck.Error{Code: snapdeck.NotFound, Reason: "token-not-found", Message: "No such token for this database."}
}

// CreateToken records a new token of a database; t.CreatedAt is set when
// zero. A database that does not exist is NotFound.
func (db *DB) CreateToken(ctx context.Context, t *TokenRecord) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = db.now().UTC()
	}
	_, err := db.w.ExecContext(ctx, `INSERT INTO db_tokens (id, database_id, name, scope, token_hash, created_by, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, t.ID, t.DatabaseID, t.Name, t.Scope, t.Hash, t.CreatedBy, ms(t.CreatedAt))
	switch {
	case isUniqueViolation(err):
		return snapdeck.Errorf(snapdeck.Conflict, "A token with this id already exists.")
	case err != nil && strings.Contains(err.Error(), "FOREIGN KEY constraint failed"):
		return snapdeck.DatabaseNotFound(t.DatabaseID)
	case err != nil:
		return fmt.Errorf("record token of database %s: %w", t.DatabaseID, err)
	}
	return nil
}

// FindTokenByHash returns the token with this hash, revoked or not.
func (db *DB) FindTokenByHash(ctx context.Context, hash string) (TokenRecord, error) {
	t, err := scanToken(db.r.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM db_tokens WHERE token_hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return t, tokenNotFound()
	}
	if err != nil {
		return t, fmt.Errorf("find token: %w", err)
	}
	return t, nil
}

// FindTokens lists a database's tokens that are not revoked, newest first.
func (db *DB) FindTokens(ctx context.Context, databaseID string) ([]TokenRecord, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+tokenColumns+` FROM db_tokens
		WHERE database_id = ? AND revoked_at = 0 ORDER BY created_at DESC, rowid DESC`, databaseID)
	if err != nil {
		return nil, fmt.Errorf("list tokens of database %s: %w", databaseID, err)
	}
	defer rows.Close()
	var out []TokenRecord
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeToken marks a database's token revoked and returns it. A token
// of another database, or one already revoked, is NotFound.
func (db *DB) RevokeToken(ctx context.Context, databaseID, id string) (TokenRecord, error) {
	t, err := scanToken(db.w.QueryRowContext(ctx, `UPDATE db_tokens SET revoked_at = ?
		WHERE id = ? AND database_id = ? AND revoked_at = 0 RETURNING `+tokenColumns, ms(db.now()), id, databaseID))
	if errors.Is(err, sql.ErrNoRows) {
		return t, tokenNotFound()
	}
	if err != nil {
		return t, fmt.Errorf("revoke token %s: %w", id, err)
	}
	return t, nil
}

// TouchToken records when a token was last used; an earlier time than
// the one recorded changes nothing.
func (db *DB) TouchToken(ctx context.Context, id string, at time.Time) error {
	if _, err := db.w.ExecContext(ctx, `UPDATE db_tokens SET last_used_at = max(last_used_at, ?) WHERE id = ?`, ms(at), id); err != nil {
		return fmt.Errorf("touch token %s: %w", id, err)
	}
	return nil
}

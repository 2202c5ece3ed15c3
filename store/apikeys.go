package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

const apiKeyColumns = `k.id, k.client_id, k.secret_hash, k.name, k.user_id, k.created_at, k.last_used_at, k.revoked_at,
	u.email, u.role, u.disabled`

func scanAPIKey(row interface{ Scan(...any) error }) (snapdeck.APIKey, error) {
	var k snapdeck.APIKey
	var created, used, revoked int64
	var role string
	err := row.Scan(&k.ID, &k.ClientID, &k.SecretHash, &k.Name, &k.UserID, &created, &used, &revoked,
		&k.UserEmail, &role, &k.UserDisabled)
	k.CreatedAt, k.LastUsedAt, k.RevokedAt, k.UserRole = fromMS(created), fromMS(used), fromMS(revoked), snapdeck.Role(role)
	return k, err
}

func apiKeyNotFound() error {
	return &snapdeck.Error{Code: snapdeck.NotFound, Reason: "api-key-not-found", Message: "No such API key."}
}

// CreateAPIKey records a new API key; k.ID and k.CreatedAt are set.
func (db *DB) CreateAPIKey(ctx context.Context, k *snapdeck.APIKey) error {
	if k.CreatedAt.IsZero() {
		k.CreatedAt = db.now().UTC()
	}
	res, err := db.w.ExecContext(ctx, `INSERT INTO api_keys (client_id, secret_hash, name, user_id, created_at)
		VALUES (?, ?, ?, ?, ?)`, k.ClientID, k.SecretHash, k.Name, k.UserID, ms(k.CreatedAt))
	if isUniqueViolation(err) {
		return snapdeck.Errorf(snapdeck.Conflict, "An API key with this client id already exists.")
	}
	if err != nil {
		return fmt.Errorf("record api key %s: %w", k.Name, err)
	}
	k.ID, err = res.LastInsertId()
	return err
}

// FindAPIKey returns one API key with its owner.
func (db *DB) FindAPIKey(ctx context.Context, id int64) (snapdeck.APIKey, error) {
	return db.findAPIKey(ctx, `k.id = ?`, id)
}

// FindAPIKeyByClientID returns the API key with this client id.
func (db *DB) FindAPIKeyByClientID(ctx context.Context, clientID string) (snapdeck.APIKey, error) {
	return db.findAPIKey(ctx, `k.client_id = ?`, clientID)
}

func (db *DB) findAPIKey(ctx context.Context, where string, arg any) (snapdeck.APIKey, error) {
	k, err := scanAPIKey(db.r.QueryRowContext(ctx, `SELECT `+apiKeyColumns+`
		FROM api_keys k JOIN users u ON u.id = k.user_id WHERE `+where, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return k, apiKeyNotFound()
	}
	if err != nil {
		return k, fmt.Errorf("find api key: %w", err)
	}
	return k, nil
}

// FindAPIKeys lists API keys, newest first: one user's, or everyone's when
// userID is 0.
func (db *DB) FindAPIKeys(ctx context.Context, userID int64) ([]snapdeck.APIKey, error) {
	q := `SELECT ` + apiKeyColumns + ` FROM api_keys k JOIN users u ON u.id = k.user_id`
	var args []any
	if userID != 0 {
		q += ` WHERE k.user_id = ?`
		args = append(args, userID)
	}
	rows, err := db.r.QueryContext(ctx, q+` ORDER BY k.created_at DESC, k.id DESC`, args...)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	defer rows.Close()
	var out []snapdeck.APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RevokeAPIKey marks a key revoked; revoking it again keeps the first time.
func (db *DB) RevokeAPIKey(ctx context.Context, id int64) error {
	res, err := db.w.ExecContext(ctx, `UPDATE api_keys SET revoked_at = CASE WHEN revoked_at = 0 THEN ? ELSE revoked_at END
		WHERE id = ?`, ms(db.now()), id)
	if err != nil {
		return fmt.Errorf("revoke api key %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return apiKeyNotFound()
	}
	return nil
}

// TouchAPIKey records when a key was last used.
func (db *DB) TouchAPIKey(ctx context.Context, id int64, at time.Time) error {
	if _, err := db.w.ExecContext(ctx, `UPDATE api_keys SET last_used_at = ? WHERE id = ?`, ms(at), id); err != nil {
		return fmt.Errorf("touch api key %d: %w", id, err)
	}
	return nil
}

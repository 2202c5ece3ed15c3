package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// Session is a signed-in browser's server-side record. Data is the encoded
// session values; UserID is 0 for an anonymous session.
type Session struct {
	ID        string
	UserID    int64
	Data      string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// FindSession returns a session that has not expired.
func (db *DB) FindSession(ctx context.Context, id string) (Session, error) {
	var s Session
	var uid sql.NullInt64
	var created, expires int64
	err := db.r.QueryRowContext(ctx, `SELECT id, user_id, data, created_at, expires_at FROM sessions
		WHERE id = ? AND expires_at > ?`, id, ms(db.now())).Scan(&s.ID, &uid, &s.Data, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return s, &snapdeck.Error{Code: snapdeck.NotFound, Message: "Session not found."}
	}
	s.UserID = uid.Int64
	s.CreatedAt, s.ExpiresAt = fromMS(created), fromMS(expires)
	return s, err
}

// SaveSession creates or replaces a session.
func (db *DB) SaveSession(ctx context.Context, s Session) error {
	var uid any
	if s.UserID != 0 {
		uid = s.UserID
	}
	if s.CreatedAt.IsZero() {
		s.CreatedAt = db.now()
	}
	_, err := db.w.ExecContext(ctx, `INSERT INTO sessions (id, user_id, data, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET
		user_id = excluded.user_id, data = excluded.data, expires_at = excluded.expires_at`,
		s.ID, uid, s.Data, ms(s.CreatedAt), ms(s.ExpiresAt))
	return err
}

// DeleteSession ends one session.
func (db *DB) DeleteSession(ctx context.Context, id string) error {
	_, err := db.w.ExecContext(ctx, `DELETE FROM sessions WHERE id = ?`, id)
	return err
}

// DeleteExpiredSessions removes sessions past their expiry.
func (db *DB) DeleteExpiredSessions(ctx context.Context) error {
	_, err := db.w.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, ms(db.now()))
	return err
}

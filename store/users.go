package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

const userColumns = `id, email, password_hash, role, disabled, created_at`

func scanUser(row interface{ Scan(...any) error }) (snapdeck.User, error) {
	var u snapdeck.User
	var created int64
	var role string
	err := row.Scan(&u.ID, &u.Email, &u.PasswordHash, &role, &u.Disabled, &created)
	u.Role = snapdeck.Role(role)
	u.CreatedAt = fromMS(created)
	return u, err
}

// CreateUser adds a user; the email must not be taken.
func (db *DB) CreateUser(ctx context.Context, u *snapdeck.User) error {
	if u.CreatedAt.IsZero() {
		u.CreatedAt = db.now().UTC()
	}
	res, err := db.w.ExecContext(ctx, `INSERT INTO users (email, password_hash, role, disabled, created_at)
		VALUES (?, ?, ?, ?, ?)`, u.Email, u.PasswordHash, string(u.Role), u.Disabled, ms(u.CreatedAt))
	if isUniqueViolation(err) {
		return &snapdeck.Error{Code: snapdeck.Conflict, Field: "email", Message: fmt.Sprintf("A user with the email %s already exists.", u.Email)}
	}
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	u.ID, err = res.LastInsertId()
	return err
}

// CountUsers returns how many users exist.
func (db *DB) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n)
	return n, err
}

// FindUser returns the user with the given id.
func (db *DB) FindUser(ctx context.Context, id int64) (snapdeck.User, error) {
	u, err := scanUser(db.r.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return u, notFound("user", itoa(id))
	}
	return u, err
}

// FindUserByEmail returns the user with the given email, case-insensitively.
func (db *DB) FindUserByEmail(ctx context.Context, email string) (snapdeck.User, error) {
	u, err := scanUser(db.r.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE email = ?`, email))
	if errors.Is(err, sql.ErrNoRows) {
		return u, &snapdeck.Error{Code: snapdeck.NotFound, Message: "No user with that email."}
	}
	return u, err
}

// FindUsers lists every user by email.
func (db *DB) FindUsers(ctx context.Context) ([]snapdeck.User, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY email`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var users []snapdeck.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		users = append(users, u)
	}
	return users, rows.Err()
}

// SetUserRole changes a user's role. It refuses to demote the last active
// admin, which would leave nobody able to manage users.
func (db *DB) SetUserRole(ctx context.Context, id int64, role snapdeck.Role) error {
	return db.updateUser(ctx, id, func(tx *sql.Tx, u snapdeck.User) error {
		if u.Role == snapdeck.RoleAdmin && role != snapdeck.RoleAdmin {
			if err := lastAdminGuard(ctx, tx, id); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `UPDATE users SET role = ? WHERE id = ?`, string(role), id)
		return err
	})
}

// SetUserDisabled disables or enables a user; disabling ends the user's
// sessions in the same transaction.
func (db *DB) SetUserDisabled(ctx context.Context, id int64, disabled bool) error {
	return db.updateUser(ctx, id, func(tx *sql.Tx, u snapdeck.User) error {
		if disabled && u.Role == snapdeck.RoleAdmin {
			if err := lastAdminGuard(ctx, tx, id); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET disabled = ? WHERE id = ?`, disabled, id); err != nil {
			return err
		}
		if disabled {
			_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, id)
			return err
		}
		return nil
	})
}

// SetUserPassword stores a new password hash and ends every session of the
// user, so a changed password locks out whoever knew the old one.
func (db *DB) SetUserPassword(ctx context.Context, id int64, hash string) error {
	return db.updateUser(ctx, id, func(tx *sql.Tx, u snapdeck.User) error {
		if _, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE id = ?`, hash, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, id)
		return err
	})
}

func (db *DB) updateUser(ctx context.Context, id int64, fn func(*sql.Tx, snapdeck.User) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	u, err := scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return notFound("user", itoa(id))
	}
	if err != nil {
		return err
	}
	if err := fn(tx, u); err != nil {
		return err
	}
	return tx.Commit()
}

func lastAdminGuard(ctx context.Context, tx *sql.Tx, id int64) error {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE role = 'admin' AND disabled = 0 AND id <> ?`, id).Scan(&n)
	if err != nil {
		return err
	}
	if n == 0 {
		return snapdeck.Errorf(snapdeck.Conflict, "This is the last active admin; make another user admin first.")
	}
	return nil
}

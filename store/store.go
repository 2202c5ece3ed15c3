// Package store is the console's own SQLite database: users, sessions,
// hosted databases and, as they arrive, snapshots, jobs and the audit log.
// Methods take a context and return snapdeck types and *snapdeck.Error.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is the console's store. Writes go through one connection, so they are
// serialised in the process and never meet SQLITE_BUSY from each other;
// reads use a pool and see the last committed state (WAL).
type DB struct {
	w, r   *sql.DB
	logger *slog.Logger
	now    func() time.Time
}

// Open opens (creating if needed) the store at path and applies every
// migration that has not been applied yet.
func Open(ctx context.Context, path string, logger *slog.Logger) (*DB, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	w, err := openPool(path, false)
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	r, err := openPool(path, true)
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(4)
	db := &DB{w: w, r: r, logger: logger, now: time.Now}
	if err := db.migrate(ctx); err != nil {
		db.Close(ctx)
		return nil, fmt.Errorf("migrate store %s: %w", path, err)
	}
	return db, nil
}

func openPool(path string, readOnly bool) (*sql.DB, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return db, nil
}

// SetNow replaces the clock, for tests.
func (db *DB) SetNow(now func() time.Time) { db.now = now }

// Close closes both pools.
func (db *DB) Close(ctx context.Context) error {
	return errors.Join(db.r.Close(), db.w.Close())
}

// Ping reports whether the store answers.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	return db.r.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// migrate applies the embedded migrations in order, each once, each in its
// own transaction together with the record that it ran.
func (db *DB) migrate(ctx context.Context) error {
	if _, err := db.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS migrations (
		name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT`); err != nil {
		return err
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		if err := db.applyMigration(ctx, name); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

func (db *DB) applyMigration(ctx context.Context, name string) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM migrations WHERE name = ?`, name).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	body, err := migrations.ReadFile(name)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, string(body)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO migrations (name, applied_at) VALUES (?, ?)`, name, ms(db.now())); err != nil {
		return err
	}
	return tx.Commit()
}

// Meta returns a console setting, or "" when it was never set.
func (db *DB) Meta(ctx context.Context, key string) (string, error) {
	var v string
	err := db.r.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read setting %s: %w", key, err)
	}
	return v, nil
}

// SetMeta records a console setting.
func (db *DB) SetMeta(ctx context.Context, key, value string) error {
	_, err := db.w.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("write setting %s: %w", key, err)
	}
	return nil
}

// MetaOrInit returns a setting, first storing init() under it when unset, so
// that concurrent first starts agree on one value.
func (db *DB) MetaOrInit(ctx context.Context, key string, init func() string) (string, error) {
	if _, err := db.w.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING`, key, init()); err != nil {
		return "", fmt.Errorf("initialise setting %s: %w", key, err)
	}
	var v string
	if err := db.w.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v); err != nil {
		return "", fmt.Errorf("read setting %s: %w", key, err)
	}
	return v, nil
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

func notFound(what, id string) error {
	return &snapdeck.Error{Code: snapdeck.NotFound, Message: fmt.Sprintf("No %s with id %s.", what, id)}
}

func isUniqueViolation(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

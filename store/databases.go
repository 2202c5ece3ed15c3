package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

const databaseColumns = `id, name, plan, status, schedule, size_bytes, created_at, cloud_provider, region, memory, storage`

func scanDatabase(row interface{ Scan(...any) error }) (snapdeck.Database, error) {
	var d snapdeck.Database
	var plan, status string
	var created int64
	p := &d.Placement
	err := row.Scan(&d.ID, &d.Name, &plan, &status, &d.Schedule, &d.SizeBytes, &created, &p.CloudProvider, &p.Region, &p.Memory, &p.Storage)
	d.Plan, d.Status, d.CreatedAt = snapdeck.Plan(plan), snapdeck.Status(status), fromMS(created)
	return d, err
}

// NewDatabase is a new hosted database as CreateDatabaseWith records it:
// the database, with its placement, and its credentials.
type NewDatabase struct {
	snapdeck.Database
	// Username and PasswordHash are its credentials; both "" for none.
	Username, PasswordHash string
}

// CreateDatabase records a new hosted database, with its placement and no
// credentials.
func (db *DB) CreateDatabase(ctx context.Context, d *snapdeck.Database) error {
	n := NewDatabase{Database: *d}
	err := db.CreateDatabaseWith(ctx, &n)
	*d = n.Database
	return err
}

// CreateDatabaseWith records a new hosted database with its placement and
// credentials, in one insert: all of it or nothing is recorded.
func (db *DB) CreateDatabaseWith(ctx context.Context, n *NewDatabase) error {
	d := &n.Database
	if d.CreatedAt.IsZero() {
		d.CreatedAt = db.now().UTC()
	}
	p := d.Placement
	_, err := db.w.ExecContext(ctx, `INSERT INTO databases (`+databaseColumns+`, username, password_hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.ID, d.Name, string(d.Plan), string(d.Status), d.Schedule, d.SizeBytes, ms(d.CreatedAt),
		p.CloudProvider, p.Region, p.Memory, p.Storage, n.Username, n.PasswordHash)
	if isUniqueViolation(err) {
		return snapdeck.Errorf(snapdeck.Conflict, "A database with id %s already exists.", d.ID)
	}
	if err != nil {
		return fmt.Errorf("record database %s: %w", d.ID, err)
	}
	return nil
}

// DatabaseStatus returns the status of one hosted database: the data
// plane asks it on every request, so it reads one column and nothing else.
func (db *DB) DatabaseStatus(ctx context.Context, id string) (snapdeck.Status, error) {
	var status string
	err := db.r.QueryRowContext(ctx, `SELECT status FROM databases WHERE id = ?`, id).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return "", snapdeck.DatabaseNotFound(id)
	}
	if err != nil {
		return "", fmt.Errorf("find status of database %s: %w", id, err)
	}
	return snapdeck.Status(status), nil
}

// FindDatabase returns one hosted database.
func (db *DB) FindDatabase(ctx context.Context, id string) (snapdeck.Database, error) {
	d, err := scanDatabase(db.r.QueryRowContext(ctx, `SELECT `+databaseColumns+` FROM databases WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return d, snapdeck.DatabaseNotFound(id)
	}
	if err != nil {
		return d, fmt.Errorf("find database %s: %w", id, err)
	}
	return d, nil
}

// FindDatabases lists every hosted database, newest first.
func (db *DB) FindDatabases(ctx context.Context) ([]snapdeck.Database, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+databaseColumns+` FROM databases ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	defer rows.Close()
	var out []snapdeck.Database
	for rows.Next() {
		d, err := scanDatabase(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// DatabaseUpdate names the fields UpdateDatabase changes; nil leaves a field.
type DatabaseUpdate struct {
	Name      *string
	Plan      *snapdeck.Plan
	Status    *snapdeck.Status
	Schedule  *string
	SizeBytes *int64
	// Placement replaces the recorded placement.
	Placement *snapdeck.Placement
	// From, when set, are the statuses the database may be in: in any
	// other the update is refused as Busy and changes nothing, as
	// TransitionDatabase refuses, so that an update checked against a
	// status read earlier cannot land after an operation claimed the
	// database.
	From []snapdeck.Status
}

// UpdateDatabase changes some fields of a database and returns it.
func (db *DB) UpdateDatabase(ctx context.Context, id string, u DatabaseUpdate) (snapdeck.Database, error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return snapdeck.Database{}, err
	}
	defer tx.Rollback()
	d, err := scanDatabase(tx.QueryRowContext(ctx, `SELECT `+databaseColumns+` FROM databases WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return d, snapdeck.DatabaseNotFound(id)
	}
	if err != nil {
		return d, err
	}
	if u.From != nil && !slices.Contains(u.From, d.Status) {
		return d, errBusy(d.Status)
	}
	if u.Name != nil {
		d.Name = *u.Name
	}
	if u.Plan != nil {
		d.Plan = *u.Plan
	}
	if u.Status != nil {
		d.Status = *u.Status
	}
	if u.Schedule != nil {
		d.Schedule = *u.Schedule
	}
	if u.SizeBytes != nil {
		d.SizeBytes = *u.SizeBytes
	}
	if u.Placement != nil {
		d.Placement = *u.Placement
	}
	p := d.Placement
	_, err = tx.ExecContext(ctx, `UPDATE databases SET name = ?, plan = ?, status = ?, schedule = ?, size_bytes = ?,
		cloud_provider = ?, region = ?, memory = ?, storage = ? WHERE id = ?`,
		d.Name, string(d.Plan), string(d.Status), d.Schedule, d.SizeBytes, p.CloudProvider, p.Region, p.Memory, p.Storage, id)
	if err != nil {
		return d, fmt.Errorf("update database %s: %w", id, err)
	}
	return d, tx.Commit()
}

// errBusy refuses a change to a database that an operation has claimed:
// one in status s, not among those the change may start from.
func errBusy(s snapdeck.Status) error {
	return &snapdeck.Error{Code: snapdeck.Busy, Reason: "ongoing-database-operation",
		Message: fmt.Sprintf("The database is currently undergoing an operation: %s", s)}
}

// TransitionDatabase moves a database from one of the allowed statuses to
// another in one step, so two operations cannot both claim it. A database in
// any other status gets a Busy error naming what it is doing.
func (db *DB) TransitionDatabase(ctx context.Context, id string, from []snapdeck.Status, to snapdeck.Status) (snapdeck.Database, error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return snapdeck.Database{}, err
	}
	defer tx.Rollback()
	d, err := scanDatabase(tx.QueryRowContext(ctx, `SELECT `+databaseColumns+` FROM databases WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return d, snapdeck.DatabaseNotFound(id)
	}
	if err != nil {
		return d, err
	}
	if !slices.Contains(from, d.Status) {
		return d, errBusy(d.Status)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE databases SET status = ? WHERE id = ?`, string(to), id); err != nil {
		return d, err
	}
	d.Status = to
	return d, tx.Commit()
}

// DeleteDatabase removes a database's record.
func (db *DB) DeleteDatabase(ctx context.Context, id string) error {
	res, err := db.w.ExecContext(ctx, `DELETE FROM databases WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete database %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return snapdeck.DatabaseNotFound(id)
	}
	return nil
}

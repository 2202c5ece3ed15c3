// Package database hosts the console's SQLite databases: one file each under
// the data directory, in WAL mode, with a connection pool per database for
// writers and one opened read-only for viewers.
package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/snapdeck/snapdeck/internal/bytesize"
	"github.com/snapdeck/snapdeck/internal/checkpoint"
	"github.com/snapdeck/snapdeck/internal/durable"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/sqlitemsg"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Host owns the hosted database files and every connection to them: the
// console's pools, the Query tab's per-run connections, the leases of
// long-lived sessions (lease.go) and the checkpointer of each WAL, which a
// replicator may take over (TakeOverCheckpoints). Only the snapshot
// engine's capture opens a hosted file besides, read-only. Replacing,
// pausing or deleting a database closes all of Host's connections to it
// first, its leases before its pools.
type Host struct {
	dir    string
	logger *slog.Logger

	mu    sync.Mutex
	pools map[string]*pool
	// suspended databases refuse new connections while their file is
	// being replaced.
	suspended map[string]bool
	// leases counts the open leases of every database (lease.go).
	leases int
	// ckptOwners names who took over the checkpoints of a database
	// (TakeOverCheckpoints); it outlives the database's pools.
	ckptOwners map[string]string
	// committed, when set, hears of every commit of user SQL
	// (host_checkpoint.go, OnCommit).
	committed func(ctx context.Context, id string, wait bool)
	// QueryTimeout interrupts a statement that runs longer.
	QueryTimeout time.Duration
	// MaxRows is how many rows a query shows.
	MaxRows int
	// MaxValueBytes is the largest string or blob user SQL may read or
	// make (SQLite's SQLITE_LIMIT_LENGTH on its connections).
	MaxValueBytes int
	// MaxPageBytes is how many bytes of rendered values one result page
	// holds; the rows after are left out.
	MaxPageBytes int64
}

// The memory one Query-tab run may take. A value is held twice while it is
// read: by SQLite and in the driver's copy (run scans into a cell, so
// database/sql makes no copy of its own). At 16 MiB a value that is 32 MiB a run,
// so three runs at once stay far inside the 512 MiB the console is meant to
// serve in (issue 12; TestQueryMemoryIsBounded in cmd/snapdeck measures the
// peak RSS). Nobody reads a longer value in a table cell: a cell shows
// maxCellBytes of it, and length() or substr() answer the rest. What is
// left unbounded is the width of a row: SQLite holds every column of a row
// at once, so a run selecting many near-limit values takes about twice
// the limit per column. Only a process-wide heap limit would bound
// that, and it would fail the console's own connections as well.
const (
	defaultMaxValueBytes = 16 << 20
	// A page of 1,000 rows of 8 KiB; the browser still lays out such a
	// table in about a second, and the HTML around it is bounded by
	// cellMarkupBytes.
	defaultMaxPageBytes = 8 << 20
	// What a cell shows of a long value, with its full length after it:
	// a screen or two of text, enough to recognise and copy a JSON
	// document or a paragraph.
	maxCellBytes = 4 << 10
	// The markup of one table cell in the result page is about 100 bytes
	// (views/query.templ); counting it bounds a page of many short cells
	// as well as one of long values.
	cellMarkupBytes = 100
)

type pool struct {
	rw, ro *sql.DB
	// user and userRO give each Query-tab run a connection of its own,
	// opened for it and closed after it: they keep no idle connections.
	user, userRO *sql.DB
	// lease and leaseRO give each lease a connection of its own, closed
	// when the lease ends: they keep no idle connections either.
	lease, leaseRO *sql.DB
	// leases are the open leases, guarded by Host.mu.
	leases map[*Lease]struct{}
	ckpt   *checkpoint.Checkpointer
}

// close stops the checkpointer and closes the pools, waiting for their
// connections; the last one to close checkpoints the WAL away. The leases
// must have been revoked first (Host.revokeLeases).
func (p *pool) close() error {
	p.ckpt.Close()
	return errors.Join(p.lease.Close(), p.leaseRO.Close(), p.user.Close(), p.userRO.Close(), p.ro.Close(), p.rw.Close())
}

// NewHost returns a Host for the files in dir, creating dir if needed.
func NewHost(dir string, logger *slog.Logger) (*Host, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create databases directory: %w", err)
	}
	return &Host{dir: dir, logger: logger, pools: map[string]*pool{}, suspended: map[string]bool{}, ckptOwners: map[string]string{},
		QueryTimeout: 30 * time.Second, MaxRows: 1000, MaxValueBytes: defaultMaxValueBytes, MaxPageBytes: defaultMaxPageBytes}, nil
}

// Path returns the file of a hosted database.
func (h *Host) Path(id string) string { return filepath.Join(h.dir, id+dbFileExt) }

// Dir returns the directory holding the database files.
func (h *Host) Dir() string { return h.dir }

func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	if readOnly {
		// Opened read-only by SQLite itself, not guarded by parsing SQL:
		// whatever a viewer types cannot write.
		q.Set("mode", "ro")
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
		// Commits never checkpoint: the pool's checkpointer does
		// (package checkpoint).
		q.Add("_pragma", "wal_autocheckpoint(0)")
		q.Add("_pragma", "foreign_keys(1)")
	}
	return "file:" + path + "?" + q.Encode()
}

// userDSN is dsn for the connections that run SQL a user typed. Defensive
// mode makes SQLite itself refuse what would corrupt the file from plain
// SQL (writes to sqlite_dbpage or to shadow tables, writable_schema,
// journal_mode=OFF), whatever the authorizer lets through.
func userDSN(path string, readOnly bool) string {
	return dsn(path, readOnly) + "&_defensive=1"
}

// Create makes a new, empty WAL-mode database file for id. It fails if the
// file exists.
func (h *Host) Create(ctx context.Context, id string) error {
	if !snapdeck.ValidDatabaseID(id) {
		return snapdeck.Errorf(snapdeck.Invalid, "%q is not a database id.", id)
	}
	path := h.Path(id)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, snapdeck.FileMode)
	if err != nil {
		return fmt.Errorf("create database file %s: %w", id, err)
	}
	f.Close()
	db, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return err
	}
	defer db.Close()
	// An empty file becomes a real database only once something is written;
	// setting WAL mode writes the header, so the file is valid from now on.
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("initialise database %s: %w", id, err)
	}
	if _, err := db.ExecContext(ctx, "PRAGMA user_version = 0; CREATE TABLE IF NOT EXISTS _snapdeck_probe(x); DROP TABLE _snapdeck_probe"); err != nil {
		return fmt.Errorf("initialise database %s: %w", id, err)
	}
	return durable.SyncDir(h.dir)
}

// open returns the pools of a database, opening them on first use.
func (h *Host) open(id string) (*pool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if p, ok := h.pools[id]; ok {
		return p, nil
	}
	if h.suspended[id] {
		return nil, errReplacing()
	}
	path := h.Path(id)
	if _, err := os.Stat(path); err != nil {
		return nil, &snapdeck.Error{Code: snapdeck.NotFound, Reason: "db-not-found", Message: fmt.Sprintf("The file of database %s is missing.", id), Err: err}
	}
	p := &pool{leases: map[*Lease]struct{}{}}
	var dbs []*sql.DB
	for _, c := range []struct {
		db  **sql.DB
		dsn string
	}{{&p.rw, dsn(path, false)}, {&p.ro, dsn(path, true)}, {&p.user, userDSN(path, false)}, {&p.userRO, userDSN(path, true)},
		{&p.lease, userDSN(path, false)}, {&p.leaseRO, userDSN(path, true)}} {
		db, err := sql.Open("sqlite", c.dsn)
		if err != nil {
			for _, d := range dbs {
				d.Close()
			}
			return nil, err
		}
		db.SetMaxOpenConns(4)
		*c.db = db
		dbs = append(dbs, db)
	}
	// A connection that is closed rather than pooled takes everything a
	// user left on it: transactions, temporary tables and triggers,
	// pragmas. Nothing of one run reaches the next.
	p.user.SetMaxIdleConns(0)
	p.userRO.SetMaxIdleConns(0)
	for _, db := range []*sql.DB{p.lease, p.leaseRO} {
		db.SetMaxOpenConns(maxLeasesPerDatabase)
		db.SetMaxIdleConns(0)
	}
	// Keep one console connection open: the last connection to a WAL
	// database checkpoints and removes the WAL as it closes, and that must
	// not happen inside a Query-tab run whenever it is the only one.
	if err := p.rw.Ping(); err != nil {
		for _, d := range dbs {
			d.Close()
		}
		return nil, fmt.Errorf("open database %s: %w", id, err)
	}
	p.ckpt = checkpoint.New(p.rw, h.logger)
	if _, taken := h.ckptOwners[id]; taken {
		p.ckpt.StandAside()
	}
	h.pools[id] = p
	return p, nil
}

// DB returns the read-write pool of a database, for the snapshot engine and
// tests.
func (h *Host) DB(id string) (*sql.DB, error) {
	p, err := h.open(id)
	if err != nil {
		return nil, err
	}
	return p.rw, nil
}

// CloseDatabase closes the pools of one database (when it is paused),
// waiting for their connections to be returned. Its leases are revoked
// first. The last connection to close checkpoints the WAL into the file
// and removes it; a replicator still running keeps it (its connection is
// then the last, and Litestream persists the WAL).
func (h *Host) CloseDatabase(ctx context.Context, id string) error {
	return h.closeDatabase(id, errLeasePaused)
}

// closeDatabase closes the pools of one database after revoking its leases
// with why.
func (h *Host) closeDatabase(id string, why error) error {
	h.mu.Lock()
	p, ok := h.pools[id]
	delete(h.pools, id)
	h.mu.Unlock()
	if !ok {
		return nil
	}
	h.revokeLeases(p, why)
	return p.close()
}

// Replace swaps a database's file for tmpPath, a complete, fsynced file in
// the same directory. New connections and leases are refused meanwhile,
// every lease is revoked (its open transaction rolled back), every pool is
// closed (the last connection checkpoints the WAL away), quiesced, when
// set, runs (no pool or lease is open then, and none opens: what still
// holds the file then is not the console's, Litestream), and install does
// the atomic rename; a crash at any point leaves the old or the new file.
func (h *Host) Replace(ctx context.Context, id, tmpPath string, quiesced func(), install func(tmpPath, dbPath string) error) error {
	h.mu.Lock()
	h.suspended[id] = true
	p := h.pools[id]
	delete(h.pools, id)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.suspended, id)
		h.mu.Unlock()
	}()
	// A connection of its own stays open across quiesced, so that it, not
	// one quiesced closes (Litestream's, which keeps the WAL file when it
	// closes), is the last to close: it checkpoints the WAL away and
	// removes it, as the pools' last connection does without quiesced.
	var last *sql.DB
	if quiesced != nil {
		var err error
		if last, err = openLast(ctx, h.Path(id)); err != nil {
			return fmt.Errorf("replace database %s: %w", id, err)
		}
		defer last.Close()
	}
	if p != nil {
		h.revokeLeases(p, errLeaseReplaced)
		if err := p.close(); err != nil {
			return fmt.Errorf("close database %s before replacing it: %w", id, err)
		}
	}
	if quiesced != nil {
		quiesced()
		if err := last.Close(); err != nil {
			return fmt.Errorf("close database %s before replacing it: %w", id, err)
		}
	}
	if err := h.drainWAL(ctx, id); err != nil {
		return fmt.Errorf("replace database %s: %w", id, err)
	}
	if err := install(tmpPath, h.Path(id)); err != nil {
		return fmt.Errorf("replace database %s: %w", id, err)
	}
	return nil
}

// openLast opens one connection to the database file path, idle.
func openLast(ctx context.Context, path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// drainWAL copies into the file what a closed database's write-ahead log
// still holds, and removes the log. The last connection to close does this
// itself, but not always: an interrupt left on it by a cancelled statement,
// or a crash, can leave committed frames in the log. The swap refuses a
// file with a log, rightly, since those frames belong to the file being
// replaced (a restore keeps that file as its undo), so they are moved into
// it here, on a connection of its own, while no pool can open the file.
func (h *Host) drainWAL(ctx context.Context, id string) error {
	path := h.Path(id)
	fi, err := os.Stat(path + "-wal")
	if errors.Is(err, fs.ErrNotExist) || (err == nil && fi.Size() == 0) {
		return nil
	}
	if err != nil {
		return err
	}
	db, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return err
	}
	defer db.Close()
	var busy, frames, copied int
	if err := db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &frames, &copied); err != nil {
		return fmt.Errorf("checkpoint the write-ahead log left after closing: %w", err)
	}
	if busy != 0 {
		return fmt.Errorf("checkpoint the write-ahead log left after closing: %d of %d frames copied, something still reads the file", copied, frames)
	}
	h.logger.Warn("a closed database still had a write-ahead log; copied into its file before the swap",
		"database_id", id, "frames", frames)
	return nil // the deferred Close, the last connection, removes the log
}

// Delete closes a database, revoking its leases, and removes its files.
func (h *Host) Delete(ctx context.Context, id string) error {
	if err := h.closeDatabase(id, errLeaseDeleted); err != nil {
		return err
	}
	path := h.Path(id)
	var errs []error
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove database %s: %w", id, err)
	}
	return durable.SyncDir(h.dir)
}

// Close closes every pool, revoking every lease.
func (h *Host) Close(ctx context.Context) error {
	h.mu.Lock()
	ids := make([]string, 0, len(h.pools))
	for id := range h.pools {
		ids = append(ids, id)
	}
	h.mu.Unlock()
	var errs []error
	for _, id := range ids {
		errs = append(errs, h.closeDatabase(id, errLeaseStopping))
	}
	return errors.Join(errs...)
}

// Size returns the bytes a database takes on disk, WAL included.
func (h *Host) Size(id string) int64 {
	var n int64
	for _, p := range []string{h.Path(id), h.Path(id) + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// Tables lists the user tables of a database with their row counts.
func (h *Host) Tables(ctx context.Context, id string) ([]Table, error) {
	p, err := h.open(id)
	if err != nil {
		return nil, err
	}
	rows, err := p.ro.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`+notReplicatorTable+` ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list tables of %s: %w", id, err)
	}
	var tables []Table
	for rows.Next() {
		var t Table
		if err := rows.Scan(&t.Name); err != nil {
			rows.Close()
			return nil, err
		}
		tables = append(tables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range tables {
		q := `SELECT count(*) FROM "` + strings.ReplaceAll(tables[i].Name, `"`, `""`) + `"`
		if err := p.ro.QueryRowContext(ctx, q).Scan(&tables[i].Rows); err != nil {
			// A virtual table whose module is missing cannot be counted;
			// show it without a count rather than failing the page.
			tables[i].Rows = -1
		}
	}
	return tables, nil
}

// Query runs the SQL a user typed and returns the first MaxRows rows (at
// most MaxPageBytes of them), or how many rows it changed. readOnly opens
// the database read-only. A statement running past QueryTimeout is
// interrupted. SQL errors and refusals come back as Invalid errors in plain
// words.
//
// Each run is a session of its own: it gets a connection opened for it and
// closed after it, so no transaction, temporary table or trigger, or pragma
// it leaves reaches a later run. A transaction the SQL leaves open is rolled
// back when the run ends, and the result says so (Result.RolledBack).
func (h *Host) Query(ctx context.Context, id, sqlText string, readOnly bool) (*Result, error) {
	if strings.TrimSpace(sqlText) == "" {
		return nil, snapdeck.FieldError("sql", "Type a SQL statement to run.")
	}
	p, err := h.open(id)
	if err != nil {
		return nil, err
	}
	db := p.user
	if readOnly {
		db = p.userRO
	}
	ctx, cancel := context.WithTimeout(ctx, h.QueryTimeout)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", id, err)
	}
	// Closed, not pooled (SetMaxIdleConns(0) in open): closing rolls back
	// whatever is still open and drops the session's state.
	defer conn.Close()
	policy := &queryPolicy{readOnly: readOnly}
	if err := h.guard(conn, policy); err != nil {
		return nil, fmt.Errorf("guard connection to %s: %w", id, err)
	}
	start := time.Now()
	res, err := h.run(ctx, conn, sqlText)
	rolledBack := rollBack(ctx, conn)
	if !readOnly {
		p.ckpt.Nudge()
		h.commit(ctx, id, true)
	}
	if err != nil {
		msg := sqlMessage(err, readOnly, policy.refused, h.MaxValueBytes)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			msg = fmt.Sprintf("The statement ran longer than %s and was interrupted.", h.QueryTimeout)
		}
		if rolledBack {
			msg += " " + rolledBackNote
		}
		return nil, &snapdeck.Error{Code: snapdeck.Invalid, Field: "sql", Message: msg, Err: err}
	}
	res.Duration = time.Since(start)
	res.RolledBack = rolledBack
	return res, nil
}

// rolledBackNote follows the error of a run whose transaction was rolled
// back.
const rolledBackNote = "The transaction it had opened was rolled back: nothing it changed was kept."

// guard sets the limits and the authorizer of a connection for user SQL.
func (h *Host) guard(conn *sql.Conn, policy *queryPolicy) error {
	for _, l := range [][2]int{{sqlite3.SQLITE_LIMIT_LENGTH, h.MaxValueBytes}, {sqlite3.SQLITE_LIMIT_ATTACHED, 0}} {
		if _, err := sqlite.Limit(conn, l[0], l[1]); err != nil {
			return err
		}
	}
	return conn.Raw(func(dc any) error {
		r, ok := dc.(sqlite.AuthorizerRegisterer)
		if !ok {
			return errors.New("the SQLite driver has no authorizer")
		}
		return r.RegisterAuthorizer(policy.authorize)
	})
}

// rollBack ends a transaction the user's SQL left open, and reports whether
// there was one. It runs even when the run's time is up, so it has a
// context of its own; if it fails, closing the connection rolls back all
// the same.
func rollBack(ctx context.Context, conn *sql.Conn) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	// ROLLBACK fails with "no transaction is active" when none is.
	_, err := conn.ExecContext(ctx, "ROLLBACK")
	return err == nil
}

func (h *Host) run(ctx context.Context, conn *sql.Conn, sqlText string) (*Result, error) {
	rows, err := conn.QueryContext(ctx, sqlText)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	res := &Result{Columns: cols, IsQuery: len(cols) > 0}
	cells := make([]cell, len(cols))
	ptrs := make([]any, len(cols))
	for i := range cells {
		ptrs[i] = &cells[i]
	}
	var pageBytes int64
	for rows.Next() {
		if len(res.Rows) == h.MaxRows {
			res.Truncated = true
			break
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		row := make([]string, len(cols))
		var rowBytes int64
		for i, c := range cells {
			row[i] = c.text
			rowBytes += int64(len(c.text)) + cellMarkupBytes
		}
		// The first row is always shown: its cells are cut, so it is
		// bounded by the number of columns.
		if len(res.Rows) > 0 && pageBytes+rowBytes > h.MaxPageBytes {
			res.Truncated, res.PageLimit = true, h.MaxPageBytes
			break
		}
		pageBytes += rowBytes
		res.Rows = append(res.Rows, row)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	if !res.IsQuery {
		if err := conn.QueryRowContext(ctx, "SELECT changes()").Scan(&res.RowsAffected); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// cell is the Scan destination of one value. database/sql hands a Scanner
// the driver's own value, where an *any gets a copy of every blob, so a long
// value is held once less; only its rendering, cut, is kept.
type cell struct{ text string }

func (c *cell) Scan(src any) error {
	c.text = render(src)
	return nil
}

// render shows a value as text, a long one cut to maxCellBytes with its
// full length after it.
func render(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		if len(v) > 64 {
			return fmt.Sprintf("<blob %d bytes>", len(v))
		}
		return fmt.Sprintf("x'%x'", v)
	case string:
		return cut(v, maxCellBytes)
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	case float64:
		return formatReal(v)
	default:
		return fmt.Sprint(v)
	}
}

// cut shortens s to at most n bytes, at a character boundary, and states
// the full length after it: "abc… (12,345,678 bytes)". The result never
// shares memory with a long s.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return clip(s, n) + " (" + bytesize.Grouped(int64(len(s))) + " bytes)"
}

// formatReal shows a REAL as the sqlite3 shell does (printf's "%!.15g"):
// 15 significant digits, plain notation below 1e15, and always a decimal
// point, so 1026888896.26 does not read as 1.02688889626e+09 and 2.0 does
// not read as the integer 2.
func formatReal(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	s := strconv.FormatFloat(v, 'g', 15, 64)
	if strings.Contains(s, ".") {
		return s
	}
	if i := strings.IndexByte(s, 'e'); i >= 0 {
		return s[:i] + ".0" + s[i:]
	}
	return s + ".0"
}

// sqlMessage turns a driver error into the sentence a user reads. refused
// is the authorizer's reason when it refused something.
func sqlMessage(err error, readOnly bool, refused string, maxValue int) string {
	// A refusal stops the statement it is in, and so the run: the error
	// is the refusal's, whatever code SQLite gives it.
	if refused != "" {
		return capitalize(refused) + "."
	}
	if se := (*sqlite.Error)(nil); errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_TOOBIG {
		return fmt.Sprintf("A value is larger than the %s one value may have in the Query tab, so it was not read or made. "+
			"Ask for its size with length() or for a part with substr().", bytesize.Format(int64(maxValue)))
	}
	msg := sqlitemsg.Words(err)
	if readOnly && (strings.Contains(msg, "readonly") || strings.Contains(msg, "read-only") || strings.Contains(msg, "query_only")) {
		return "This database is read-only for viewers: " + msg
	}
	return "SQLite says: " + msg
}

// capitalize upper-cases the first letter of a sentence.
func capitalize(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}

// Package database hosts the console's SQLite databases: one file each under
// the data directory, in WAL mode, with a connection pool per database for
// writers and one opened read-only for viewers.
package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/snapdeck/snapdeck/internal/checkpoint"
	"github.com/snapdeck/snapdeck/internal/durable"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"modernc.org/sqlite"
)

// Host owns the hosted database files and their connection pools.
type Host struct {
	dir    string
	logger *slog.Logger

	mu    sync.Mutex
	pools map[string]*pool
	// suspended databases refuse new connections while their file is
	// being replaced.
	suspended map[string]bool
	// QueryTimeout interrupts a statement that runs longer.
	QueryTimeout time.Duration
	// MaxRows is how many rows a query shows.
	MaxRows int
}

type pool struct {
	rw, ro *sql.DB
	ckpt   *checkpoint.Checkpointer
}

// close stops the checkpointer and closes both pools, waiting for their
// connections; the last one to close checkpoints the WAL away.
func (p *pool) close() error {
	p.ckpt.Close()
	return errors.Join(p.ro.Close(), p.rw.Close())
}

// NewHost returns a Host for the files in dir, creating dir if needed.
func NewHost(dir string, logger *slog.Logger) (*Host, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create databases directory: %w", err)
	}
	return &Host{dir: dir, logger: logger, pools: map[string]*pool{}, suspended: map[string]bool{}, QueryTimeout: 30 * time.Second, MaxRows: 1000}, nil
}

// Path returns the file of a hosted database.
func (h *Host) Path(id string) string { return filepath.Join(h.dir, id+".sqlite") }

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
		return nil, &snapdeck.Error{Code: snapdeck.Busy, Reason: "ongoing-database-operation",
			Message: "The database is being replaced (restore or load); try again in a moment."}
	}
	path := h.Path(id)
	if _, err := os.Stat(path); err != nil {
		return nil, &snapdeck.Error{Code: snapdeck.NotFound, Reason: "db-not-found", Message: fmt.Sprintf("The file of database %s is missing.", id), Err: err}
	}
	rw, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, err
	}
	rw.SetMaxOpenConns(4)
	ro, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		rw.Close()
		return nil, err
	}
	ro.SetMaxOpenConns(4)
	p := &pool{rw: rw, ro: ro, ckpt: checkpoint.New(rw, h.logger)}
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

// CloseDatabase closes the pools of one database, waiting for their
// connections to be returned. The last connection to close checkpoints the
// WAL into the file and removes it.
func (h *Host) CloseDatabase(ctx context.Context, id string) error {
	h.mu.Lock()
	p, ok := h.pools[id]
	delete(h.pools, id)
	h.mu.Unlock()
	if !ok {
		return nil
	}
	return p.close()
}

// Replace swaps a database's file for tmpPath, a complete, fsynced file in
// the same directory. New connections are refused meanwhile, every pool is
// closed (the last connection checkpoints the WAL away), and install does
// the atomic rename; a crash at any point leaves the old or the new file.
func (h *Host) Replace(ctx context.Context, id, tmpPath string, install func(tmpPath, dbPath string) error) error {
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
	if p != nil {
		if err := p.close(); err != nil {
			return fmt.Errorf("close database %s before replacing it: %w", id, err)
		}
	}
	if err := install(tmpPath, h.Path(id)); err != nil {
		return fmt.Errorf("replace database %s: %w", id, err)
	}
	return nil
}

// Delete closes a database and removes its files.
func (h *Host) Delete(ctx context.Context, id string) error {
	if err := h.CloseDatabase(ctx, id); err != nil {
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

// Close closes every pool.
func (h *Host) Close(ctx context.Context) error {
	h.mu.Lock()
	ids := make([]string, 0, len(h.pools))
	for id := range h.pools {
		ids = append(ids, id)
	}
	h.mu.Unlock()
	var errs []error
	for _, id := range ids {
		errs = append(errs, h.CloseDatabase(ctx, id))
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
	rows, err := p.ro.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
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

// Query runs the SQL a user typed and returns the first MaxRows rows, or how
// many rows it changed. readOnly opens the database read-only. A statement
// running past QueryTimeout is interrupted. SQL errors come back as Invalid
// errors with SQLite's message in plain words.
func (h *Host) Query(ctx context.Context, id, sqlText string, readOnly bool) (*Result, error) {
	if strings.TrimSpace(sqlText) == "" {
		return nil, snapdeck.FieldError("sql", "Type a SQL statement to run.")
	}
	p, err := h.open(id)
	if err != nil {
		return nil, err
	}
	db := p.rw
	if readOnly {
		db = p.ro
	}
	ctx, cancel := context.WithTimeout(ctx, h.QueryTimeout)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", id, err)
	}
	defer conn.Close()
	if err := conn.Raw(func(dc any) error {
		r, ok := dc.(sqlite.AuthorizerRegisterer)
		if !ok {
			return errors.New("the SQLite driver has no authorizer")
		}
		return r.RegisterAuthorizer(userPolicy)
	}); err != nil {
		return nil, fmt.Errorf("guard connection to %s: %w", id, err)
	}
	start := time.Now()
	res, err := h.run(ctx, conn, sqlText)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, &snapdeck.Error{Code: snapdeck.Invalid, Field: "sql",
				Message: fmt.Sprintf("The statement ran longer than %s and was interrupted.", h.QueryTimeout), Err: err}
		}
		return nil, &snapdeck.Error{Code: snapdeck.Invalid, Field: "sql", Message: sqlMessage(err, readOnly), Err: err}
	}
	res.Duration = time.Since(start)
	if !readOnly {
		p.ckpt.Nudge()
	}
	return res, nil
}

// userPolicy is the authorizer on connections that run SQL a user typed.
// A hosted database must not reach files beside it: ATTACH would read the
// console's own store (password hashes, sessions) or write anywhere the
// process can, and VACUUM INTO writes a file too. PRAGMAs that change how the
// file is kept are the console's to set, not the user's.
func userPolicy(action sqlite.AuthorizerActionCode, arg1, arg2, dbName, trigger string) sqlite.AuthorizerReturnCode {
	switch action {
	case sqlite.AuthAttach, sqlite.AuthDetach:
		return sqlite.AuthorizerDeny
	case sqlite.AuthFunction:
		if strings.EqualFold(arg2, "load_extension") || strings.EqualFold(arg2, "readfile") || strings.EqualFold(arg2, "writefile") {
			return sqlite.AuthorizerDeny
		}
	case sqlite.AuthPragma:
		switch strings.ToLower(arg1) {
		case "journal_mode", "locking_mode", "writable_schema", "query_only", "mmap_size",
			"temp_store_directory", "data_store_directory", "wal_autocheckpoint", "synchronous":
			if arg2 != "" {
				return sqlite.AuthorizerDeny
			}
		}
	}
	return sqlite.AuthorizerOK
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
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if len(res.Rows) == h.MaxRows {
			res.Truncated = true
			break
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			row[i] = render(v)
		}
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

func render(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		if len(v) > 64 {
			return fmt.Sprintf("<blob %d bytes>", len(v))
		}
		return fmt.Sprintf("x'%x'", v)
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	case float64:
		return formatReal(v)
	default:
		return fmt.Sprint(v)
	}
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

// sqlMessage turns a driver error into the sentence a user reads.
func sqlMessage(err error, readOnly bool) string {
	msg := err.Error()
	// modernc formats errors as "<context>: <result code text>: <SQLite's
	// message> (<code>)", sometimes without the context; keep SQLite's own
	// words, which come last.
	if j := strings.LastIndex(msg, " ("); j > 0 && strings.HasSuffix(msg, ")") {
		msg = msg[:j]
	}
	for _, code := range []string{"SQL logic error: ", "constraint failed: ", "database is locked: ",
		"attempt to write a readonly database: ", "interrupted: ", "database or disk is full: ", "authorization denied: "} {
		if i := strings.LastIndex(msg, code); i >= 0 && len(msg) > i+len(code) {
			msg = msg[i+len(code):]
			break
		}
	}
	if strings.Contains(msg, "not authorized") {
		return "That statement is not allowed here: a hosted database cannot attach files, load extensions or change how the console keeps it."
	}
	if readOnly && (strings.Contains(msg, "readonly") || strings.Contains(msg, "read-only") || strings.Contains(msg, "query_only")) {
		return "This database is read-only for viewers: " + msg
	}
	return "SQLite says: " + msg
}

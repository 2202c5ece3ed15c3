package importfile

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/snapdeck/snapdeck/internal/bytesize"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/sqlitemsg"
)

// sqlPageSize is the page size of databases built from SQL text. Setting
// another is refused, so that the size limit in pages holds in bytes.
const sqlPageSize = 4096

// refusedHint ends the message of a refused statement.
const refusedHint = "an import builds only its own database, so ATTACH, DETACH, VACUUM INTO, load_extension, " +
	"functions that read or write files, and PRAGMAs that change how the file is kept are refused"

// allowedPragmas may be set by SQL text: what sqlite3's .dump writes, and
// settings that stay inside the database being built. Pragmas that only
// read (no value given) are allowed whatever their name.
var allowedPragmas = map[string]bool{
	"foreign_keys": true, "writable_schema": true, "user_version": true, "application_id": true,
	"defer_foreign_keys": true, "recursive_triggers": true, "legacy_alter_table": true,
	"ignore_check_constraints": true, "encoding": true, "auto_vacuum": true, "case_sensitive_like": true,
	// These take a table or index name: they read.
	"table_info": true, "table_xinfo": true, "table_list": true, "index_list": true, "index_info": true,
	"index_xinfo": true, "foreign_key_list": true, "foreign_key_check": true,
	"integrity_check": true, "quick_check": true,
}

// fileFunctions read or write files, or load code, where they exist.
var fileFunctions = map[string]bool{
	"load_extension": true, "readfile": true, "writefile": true, "edit": true, "fts3_tokenizer": true,
}

// vtableModules are the virtual table modules SQL text may create: full
// text search and R*Tree keep their data inside the database.
var vtableModules = map[string]bool{
	"fts3": true, "fts4": true, "fts5": true, "rtree": true, "rtree_i32": true, "geopoly": true,
}

// schemaTables are the names the schema table goes by.
var schemaTables = map[string]bool{
	"sqlite_master": true, "sqlite_schema": true, "sqlite_temp_master": true, "sqlite_temp_schema": true,
}

// dumpVirtualTable is how sqlite3's .dump writes a virtual table: a row
// put straight into the schema table (under PRAGMA writable_schema=ON), as
// its shadow tables follow with their data. It is the only write to the
// schema table SQL text may make, and only for a module of vtableModules.
var dumpVirtualTable = regexp.MustCompile(`(?is)^\s*INSERT\s+INTO\s+(?:main\.)?sqlite_(?:schema|master)\s*` +
	`\(\s*type\s*,\s*name\s*,\s*tbl_name\s*,\s*rootpage\s*,\s*sql\s*\)\s*VALUES\s*` +
	`\(\s*'table'\s*,\s*'((?:[^']|'')*)'\s*,\s*'((?:[^']|'')*)'\s*,\s*0\s*,\s*'((?:[^']|'')*)'\s*\)\s*;?\s*$`)

// createVirtualTable reads the table name and module of the SQL of a
// virtual table as SQLite stores it.
var createVirtualTable = regexp.MustCompile(`(?is)^CREATE\s+VIRTUAL\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?` +
	`("(?:[^"]|"")*"|'(?:[^']|'')*'|` + "`(?:[^`]|``)*`" + `|\[[^\]]*\]|[\pL\pN_$]+)\s+USING\s+([\pL\pN_$]+)`)

// schemaWrite checks a statement that writes the schema table: it must be
// .dump's row of a virtual table whose module SQL text may create.
// Anything else is refused, with the reason for the message.
func schemaWrite(stmt string) (ok bool, why string) {
	m := dumpVirtualTable.FindStringSubmatch(stmt)
	if m == nil {
		return false, ""
	}
	name, tblName := unquote(m[1], '\''), unquote(m[2], '\'')
	v := createVirtualTable.FindStringSubmatch(unquote(m[3], '\''))
	switch {
	case v == nil:
		return false, "it puts a row into the schema table (sqlite_schema) that is not a virtual table"
	case !strings.EqualFold(name, tblName) || !strings.EqualFold(unquoteName(v[1]), name):
		return false, fmt.Sprintf("it puts a row into the schema table (sqlite_schema) whose names disagree (%q, %q)", truncate(name, 40), truncate(tblName, 40))
	case !vtableModules[strings.ToLower(v[2])]:
		return false, fmt.Sprintf("it creates a virtual table using %q through the schema table (sqlite_schema)", truncate(v[2], 40))
	}
	return true, ""
}

// unquote undoes the doubling of q inside a quoted SQL string.
func unquote(s string, q byte) string {
	return strings.ReplaceAll(s, string([]byte{q, q}), string(q))
}

// unquoteName strips the quotes of an SQL identifier.
func unquoteName(s string) string {
	if len(s) >= 2 {
		switch s[0] {
		case '"', '\'', '`':
			return unquote(s[1:len(s)-1], s[0])
		case '[':
			return s[1 : len(s)-1]
		}
	}
	return s
}

// guard is the authorizer of the connection running SQL text. It records
// why it refused, for the message.
type guard struct {
	refused string
	// schemaRow is set while the statement running is one schemaWrite
	// let through: its insert into the schema table is allowed.
	schemaRow bool
	// ddl is set while the statement running is a CREATE, DROP, ALTER,
	// ANALYZE or REINDEX: SQLite then writes the schema table itself, and
	// asks the authorizer about those writes (before it asks about the
	// statement's own action, so the order tells nothing).
	ddl bool
}

// ddlWords start the statements whose writes to the schema table are
// SQLite's own.
var ddlWords = map[string]bool{"CREATE": true, "DROP": true, "ALTER": true, "ANALYZE": true, "REINDEX": true}

// begin sets the guard for the next statement of SQL text, or refuses it
// with the reason for the message.
func (g *guard) begin(stmt string) string {
	g.ddl = ddlWords[strings.ToUpper(firstWord([]byte(stmt)))]
	ok, why := schemaWrite(stmt)
	g.schemaRow = ok
	return why
}

func (g *guard) authorize(action sqlite.AuthorizerActionCode, arg1, arg2, dbName, trigger string) sqlite.AuthorizerReturnCode {
	deny := func(why string) sqlite.AuthorizerReturnCode {
		if g.refused == "" {
			g.refused = why
		}
		return sqlite.AuthorizerDeny
	}
	switch action {
	case sqlite.AuthAttach:
		// VACUUM INTO is an ATTACH of its target file, as SQLite runs it.
		return deny(fmt.Sprintf("it opens another database file (%q) with ATTACH or VACUUM INTO", truncate(arg1, 80)))
	case sqlite.AuthDetach:
		return deny("it uses DETACH")
	case sqlite.AuthFunction:
		if fileFunctions[strings.ToLower(arg2)] {
			return deny(fmt.Sprintf("it calls %s()", strings.ToLower(arg2)))
		}
	case sqlite.AuthPragma:
		name := strings.ToLower(arg1)
		if arg2 != "" && !allowedPragmas[name] {
			return deny(fmt.Sprintf("it sets PRAGMA %s", truncate(name, 40)))
		}
	case sqlite.AuthCreateVTable:
		if !vtableModules[strings.ToLower(arg2)] {
			return deny(fmt.Sprintf("it creates a virtual table using %q", truncate(arg2, 40)))
		}
	case sqlite.AuthInsert, sqlite.AuthUpdate, sqlite.AuthDelete:
		if strings.EqualFold(arg1, "sqlite_dbpage") {
			return deny("it writes raw database pages (sqlite_dbpage)")
		}
		// SQLite's own changes to the schema (CREATE, DROP, ALTER) are
		// not authorized row by row; this is SQL writing it directly.
		if schemaTables[strings.ToLower(arg1)] && !g.ddl && !(action == sqlite.AuthInsert && g.schemaRow) {
			return deny("it writes the schema table (sqlite_schema) directly, which SQL text may do only as sqlite3's .dump does for a virtual table")
		}
	}
	return sqlite.AuthorizerOK
}

// runSQL runs SQL text from r into a new database at dstPath.
func runSQL(ctx context.Context, r io.Reader, total int64, dstPath string, lim Limits, progress Progress) (int64, error) {
	f, err := os.OpenFile(dstPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, snapdeck.FileMode)
	if err != nil {
		return 0, fmt.Errorf("import: %w", err)
	}
	f.Close()
	abs, err := filepath.Abs(dstPath)
	if err != nil {
		return 0, err
	}
	// The file is private until it is installed, so a journal in memory
	// and no fsync per statement cost nothing: one fsync comes at the end.
	// A fresh database journals almost nothing anyway.
	u := url.URL{Scheme: "file", Path: abs}
	db, err := sql.Open("sqlite", u.String()+"?_pragma=journal_mode(MEMORY)&_pragma=synchronous(OFF)"+
		"&_pragma=trusted_schema(0)&_pragma=mmap_size(0)")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("import: %w", err)
	}
	defer conn.Close()
	limit := lim.maxSize()
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA page_size = %d; PRAGMA max_page_count = %d", sqlPageSize, max(limit/sqlPageSize, 1))); err != nil {
		return 0, fmt.Errorf("import: %w", err)
	}
	for _, l := range [][2]int{{sqlite3.SQLITE_LIMIT_ATTACHED, 0}, {sqlite3.SQLITE_LIMIT_LENGTH, maxStatement}, {sqlite3.SQLITE_LIMIT_SQL_LENGTH, maxStatement}} {
		if _, err := sqlite.Limit(conn, l[0], l[1]); err != nil {
			return 0, fmt.Errorf("import: set limit: %w", err)
		}
	}
	g := &guard{}
	if err := conn.Raw(func(dc any) error {
		a, ok := dc.(sqlite.AuthorizerRegisterer)
		if !ok {
			return errors.New("the SQLite driver has no authorizer")
		}
		return a.RegisterAuthorizer(g.authorize)
	}); err != nil {
		return 0, fmt.Errorf("import: %w", err)
	}

	cr := &countingReader{r: r, total: total, progress: progress}
	sp := newSplitter(cr)
	statements := 0
	for {
		stmt, line, err := sp.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		switch {
		case errors.Is(err, errUnterminated):
			return 0, invalid(err, "the SQL text ends inside a quoted string or a comment, in the statement at line %d: it looks truncated", line)
		case errors.Is(err, errStatementTooLong):
			return 0, invalid(err, "the statement at line %d is longer than %s, more than an import runs at once", line, bytesize.Format(maxStatement))
		case err != nil:
			return 0, fmt.Errorf("import: read the upload: %w", err)
		}
		statements++
		if why := g.begin(stmt); why != "" {
			return 0, invalid(nil, "the SQL text is refused at line %d: %s; %s", line, why, refusedHint)
		}
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			return 0, sqlFailure(ctx, g, line, limit, lim.checkTimeout(), err)
		}
	}
	if statements == 0 {
		return 0, invalid(nil, "the file holds no SQL statements: %s", Accepted)
	}
	// A transaction still open means the text stopped before its COMMIT;
	// closing would silently roll back everything in it.
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		if ctx.Err() != nil {
			return 0, sqlFailure(ctx, g, 0, limit, lim.checkTimeout(), err)
		}
		return 0, invalid(err, "the SQL text ends inside a transaction it never commits: it looks truncated (sqlite3's .dump ends with COMMIT;)")
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return 0, fmt.Errorf("import: %w", err)
	}
	conn.Close()
	if err := db.Close(); err != nil {
		return 0, fmt.Errorf("import: close the new database: %w", err)
	}
	if err := syncFile(dstPath); err != nil {
		return 0, err
	}
	if err := checkIntegrity(ctx, dstPath); err != nil {
		return 0, err
	}
	fi, err := os.Stat(dstPath)
	if err != nil {
		return 0, fmt.Errorf("import: %w", err)
	}
	return fi.Size(), nil
}

// sqlFailure explains why a statement of SQL text failed.
func sqlFailure(ctx context.Context, g *guard, line int, limit int64, timeout time.Duration, err error) error {
	var se *sqlite.Error
	errors.As(err, &se)
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return invalid(err, "the SQL text ran longer than this console allows (%s) and was stopped at line %d", timeout, line)
	case ctx.Err() != nil:
		return ctx.Err()
	case g.refused != "":
		return invalid(err, "the SQL text is refused at line %d: %s; %s", line, g.refused, refusedHint)
	case se != nil && se.Code()&0xff == sqlite3.SQLITE_FULL:
		return tooLargeSQL(err, limit)
	}
	return invalid(err, "the SQL text fails at line %d: SQLite says %s", line, truncate(sqlitemsg.Words(err), 300))
}

// tooLargeSQL is the error of SQL text building a database over the limit.
func tooLargeSQL(cause error, limit int64) error {
	return &snapdeck.Error{Code: snapdeck.TooLarge, Err: cause,
		Message: fmt.Sprintf("the database this SQL text builds grows past this console's import limit of %s", bytesize.Format(limit))}
}

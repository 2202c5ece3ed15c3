package dataplane

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/snapdeck/snapdeck/internal/sqlitemsg"
)

// session runs the requests of one pipeline on a stream's connection. It
// works on the driver's connection itself (sql.Conn.Raw), not through
// database/sql, so that values keep their SQLite types: database/sql would
// convert nothing, but its Scan copies every value once more.
type session struct {
	st  *stream
	ctx context.Context // the request's, bound to the lease
	// dc is the driver's connection; q and x its query and exec sides.
	dc any
	q  driver.QueryerContext
	x  driver.ExecerContext
	// budget is what is left of the response's bytes (Config.MaxResultBytes).
	budget int
	// timeout limits each statement (Config.StatementTimeout).
	timeout time.Duration
}

// stmtError is a statement's failure as Hrana reports it.
type stmtError struct {
	msg, code string
}

func (e *stmtError) Error() string { return e.msg }

func (e *stmtError) hrana() *errorMsg { return &errorMsg{Message: e.msg, Code: e.code} }

// handle runs one stream request and returns its result.
func (s *session) handle(req streamRequest) streamResult {
	resp, err := s.dispatch(req)
	if err != nil {
		return streamResult{Type: "error", Error: s.errorOf(err)}
	}
	return streamResult{Type: "ok", Response: resp}
}

func (s *session) dispatch(req streamRequest) (any, error) {
	switch req.Type {
	case "execute":
		if req.Stmt == nil {
			return nil, protocolError("An execute request needs a stmt.")
		}
		res, err := s.execute(*req.Stmt)
		if err != nil {
			return nil, err
		}
		return executeResp{Type: "execute", Result: *res}, nil
	case "batch":
		if req.Batch == nil {
			return nil, protocolError("A batch request needs a batch.")
		}
		res, err := s.batch(*req.Batch)
		if err != nil {
			return nil, err
		}
		return batchResp{Type: "batch", Result: *res}, nil
	case "sequence":
		text, err := s.sqlOf(req.SQL, req.SQLID)
		if err != nil {
			return nil, err
		}
		return typeOnly{Type: "sequence"}, s.sequence(text)
	case "describe":
		text, err := s.sqlOf(req.SQL, req.SQLID)
		if err != nil {
			return nil, err
		}
		res, err := s.describe(text)
		if err != nil {
			return nil, err
		}
		return describeResp{Type: "describe", Result: *res}, nil
	case "store_sql":
		if req.SQLID == nil || req.SQL == nil {
			return nil, protocolError("A store_sql request needs sql_id and sql.")
		}
		if _, ok := s.st.sqls[*req.SQLID]; ok {
			return nil, protocolError(fmt.Sprintf("SQL text %d is already stored on this stream; close_sql it first.", *req.SQLID))
		}
		if len(s.st.sqls) >= maxStoredSQL {
			return nil, protocolError(fmt.Sprintf("A stream keeps at most %d SQL texts; close_sql one first.", maxStoredSQL))
		}
		s.st.sqls[*req.SQLID] = *req.SQL
		return typeOnly{Type: "store_sql"}, nil
	case "close_sql":
		if req.SQLID == nil {
			return nil, protocolError("A close_sql request needs sql_id.")
		}
		delete(s.st.sqls, *req.SQLID)
		return typeOnly{Type: "close_sql"}, nil
	case "get_autocommit":
		auto, err := s.autocommit()
		if err != nil {
			return nil, err
		}
		return autocommitResp{Type: "get_autocommit", IsAutocommit: auto}, nil
	case "close":
		s.st.closing = true
		return typeOnly{Type: "close"}, nil
	default:
		return nil, protocolError(fmt.Sprintf("Request type %q is not one this server knows (execute, batch, sequence, describe, store_sql, close_sql, get_autocommit, close).", clip(req.Type)))
	}
}

// maxStoredSQL bounds the SQL texts one stream keeps (store_sql): the
// clients store a few prepared statements, not thousands.
const maxStoredSQL = 1000

func protocolError(msg string) error { return &stmtError{msg: msg, code: "PROTOCOL_ERROR"} }

// sqlOf returns the SQL text given directly or stored with store_sql.
func (s *session) sqlOf(text *string, id *int32) (string, error) {
	switch {
	case text != nil && id != nil:
		return "", protocolError("Give sql or sql_id, not both.")
	case text != nil:
		return *text, nil
	case id != nil:
		t, ok := s.st.sqls[*id]
		if !ok {
			return "", protocolError(fmt.Sprintf("SQL text %d is not stored on this stream.", *id))
		}
		return t, nil
	}
	return "", protocolError("Give sql or sql_id.")
}

// stmtContext is the context of one statement: the request's, bound to
// the lease, with the statement time limit.
func (s *session) stmtContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, s.timeout)
}

// execute runs one statement and reads its rows.
func (s *session) execute(st stmt) (*stmtResult, error) {
	text, err := s.sqlOf(st.SQL, st.SQLID)
	if err != nil {
		return nil, err
	}
	args, err := bindArgs(st)
	if err != nil {
		return nil, err
	}
	wantRows := st.WantRows == nil || *st.WantRows
	ctx, cancel := s.stmtContext()
	defer cancel()
	s.st.lease.ForgetRefusal()
	start := time.Now()
	rows, err := s.q.QueryContext(ctx, text, args)
	if err != nil {
		return nil, s.sqlError(ctx, err)
	}
	res := &stmtResult{Rows: [][]value{}}
	names := rows.Columns()
	res.Cols = make([]col, len(names))
	typed, _ := rows.(driver.RowsColumnTypeDatabaseTypeName)
	for i := range names {
		res.Cols[i].Name = &names[i]
		if typed != nil {
			if d := typed.ColumnTypeDatabaseTypeName(i); d != "" {
				res.Cols[i].Decltype = &d
			}
		}
	}
	dest := make([]driver.Value, len(names))
	for {
		err := rows.Next(dest)
		if err == io.EOF {
			break
		}
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			rows.Close()
			return nil, s.sqlError(ctx, err)
		}
		res.RowsRead++
		if !wantRows {
			continue
		}
		row := make([]value, len(dest))
		for i, v := range dest {
			row[i] = value{v: wire(v)}
			s.budget -= row[i].size()
		}
		if s.budget < 0 {
			rows.Close()
			return nil, &stmtError{code: "RESPONSE_TOO_LARGE", msg: fmt.Sprintf(
				"The result is larger than the %d MiB one response may carry; select fewer rows or columns (LIMIT and OFFSET page through them).", s.maxMiB())}
		}
		res.Rows = append(res.Rows, row)
	}
	if err := rows.Close(); err != nil {
		return nil, s.sqlError(ctx, err)
	}
	res.QueryDurationMS = float64(time.Since(start).Microseconds()) / 1000
	if err := s.counts(ctx, res); err != nil {
		return nil, s.sqlError(ctx, err)
	}
	return res, nil
}

// counts fills in the rows a statement changed and the last rowid. SQLite's
// changes() keeps the count of the last INSERT, UPDATE or DELETE, whatever
// ran since; total_changes() tells whether this statement changed anything.
func (s *session) counts(ctx context.Context, res *stmtResult) error {
	rows, err := s.q.QueryContext(ctx, "SELECT changes(), last_insert_rowid(), total_changes()", nil)
	if err != nil {
		return err
	}
	defer rows.Close()
	v := make([]driver.Value, 3)
	if err := rows.Next(v); err != nil {
		return err
	}
	changes, _ := v[0].(int64)
	rowid, _ := v[1].(int64)
	total, _ := v[2].(int64)
	if total != s.st.totalChanges {
		res.AffectedRowCount = changes
		res.RowsWritten = changes
		s.st.totalChanges = total
		s.st.wrote = true
	}
	id := strconv.FormatInt(rowid, 10)
	res.LastInsertRowid = &id
	return nil
}

// wire turns what the driver read into one of value's types. The driver
// reads the text of a column declared DATE, DATETIME or TIMESTAMP as a
// time; it is written back as SQLite's own date and time text.
func wire(v driver.Value) any {
	switch x := v.(type) {
	case time.Time:
		if x.Location() == time.UTC {
			return x.Format("2006-01-02 15:04:05.999999999")
		}
		return x.Format("2006-01-02 15:04:05.999999999-07:00")
	case bool:
		if x {
			return int64(1)
		}
		return int64(0)
	}
	return v
}

// bindArgs turns a statement's arguments into the driver's. Named
// arguments may be given with their prefix (":a", "@a", "$a") or
// without; the driver matches them without it.
func bindArgs(st stmt) ([]driver.NamedValue, error) {
	if len(st.Args) == 0 && len(st.NamedArgs) == 0 {
		return nil, nil
	}
	args := make([]driver.NamedValue, 0, len(st.Args)+len(st.NamedArgs))
	for i, a := range st.Args {
		args = append(args, driver.NamedValue{Ordinal: i + 1, Value: a.v})
	}
	for i, a := range st.NamedArgs {
		name := a.Name
		if name != "" && strings.ContainsRune(":@$", rune(name[0])) {
			name = name[1:]
		}
		if name == "" {
			return nil, protocolError("A named argument has no name.")
		}
		// Ordinals past the positional ones: a named argument never
		// stands in for a ?NNN parameter.
		args = append(args, driver.NamedValue{Name: name, Ordinal: len(st.Args) + i + 1 + 1<<20, Value: a.Value.v})
	}
	return args, nil
}

// batch runs the steps of a batch whose conditions hold.
func (s *session) batch(b batch) (*batchResult, error) {
	res := &batchResult{StepResults: make([]*stmtResult, len(b.Steps)), StepErrors: make([]*errorMsg, len(b.Steps))}
	ran := make([]bool, len(b.Steps))
	for i, step := range b.Steps {
		if step.Condition != nil {
			ok, err := s.holds(step.Condition, i, ran, res)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
		}
		if err := s.ctx.Err(); err != nil {
			// The lease ended or the request went away: the rest of the
			// batch cannot run.
			return nil, s.sqlError(s.ctx, err)
		}
		ran[i] = true
		r, err := s.execute(step.Stmt)
		if err != nil {
			res.StepErrors[i] = s.errorOf(err)
			continue
		}
		res.StepResults[i] = r
	}
	return res, nil
}

// holds evaluates a step's condition. Steps are referred to by index and
// only earlier steps may be: a later one has not run, so it counts as
// skipped.
func (s *session) holds(c *batchCond, at int, ran []bool, res *batchResult) (bool, error) {
	switch c.Type {
	case "ok", "error":
		if c.Step == nil {
			return false, protocolError(fmt.Sprintf("A %q condition needs a step.", c.Type))
		}
		i := int(*c.Step)
		if i >= at {
			return false, protocolError(fmt.Sprintf("Step %d's condition refers to step %d, which does not run before it.", at, i))
		}
		if c.Type == "ok" {
			return ran[i] && res.StepErrors[i] == nil, nil
		}
		return ran[i] && res.StepErrors[i] != nil, nil
	case "not":
		if c.Cond == nil {
			return false, protocolError("A not condition needs a cond.")
		}
		ok, err := s.holds(c.Cond, at, ran, res)
		return !ok, err
	case "and", "or":
		all := c.Type == "and"
		for i := range c.Conds {
			ok, err := s.holds(&c.Conds[i], at, ran, res)
			if err != nil {
				return false, err
			}
			if ok != all {
				return ok, nil
			}
		}
		return all, nil
	case "is_autocommit":
		return s.autocommit()
	}
	return false, protocolError(fmt.Sprintf("Condition type %q is not one of ok, error, not, and, or, is_autocommit.", clip(c.Type)))
}

// sequence runs every statement of a text, ignoring their rows.
func (s *session) sequence(text string) error {
	ctx, cancel := s.stmtContext()
	defer cancel()
	s.st.lease.ForgetRefusal()
	if _, err := s.x.ExecContext(ctx, text, nil); err != nil {
		return s.sqlError(ctx, err)
	}
	var res stmtResult
	if err := s.counts(ctx, &res); err != nil {
		return s.sqlError(ctx, err)
	}
	return nil
}

// autocommit tells whether the stream is outside an explicit transaction.
// The driver does not expose sqlite3_get_autocommit, so it asks SQLite
// the one way plain SQL can: BEGIN fails inside a transaction, and a
// deferred BEGIN outside one takes no lock, so rolling it back leaves
// nothing changed.
func (s *session) autocommit() (bool, error) {
	ctx, cancel := s.stmtContext()
	defer cancel()
	if _, err := s.x.ExecContext(ctx, "BEGIN DEFERRED", nil); err != nil {
		if strings.Contains(err.Error(), "within a transaction") {
			return false, nil
		}
		return false, s.sqlError(ctx, err)
	}
	if _, err := s.x.ExecContext(ctx, "ROLLBACK", nil); err != nil {
		return false, s.sqlError(ctx, err)
	}
	return true, nil
}

// describe parses a statement without running it: its parameters, its
// columns, and whether it is EXPLAIN or only reads.
func (s *session) describe(text string) (*describeResult, error) {
	ctx, cancel := s.stmtContext()
	defer cancel()
	s.st.lease.ForgetRefusal()
	res := &describeResult{Params: []describeParam{}, Cols: []describeCol{}}
	ci, ok := s.dc.(interface {
		ColumnInfo(query string) ([]sqlite.ColumnInfo, error)
	})
	if !ok {
		return nil, errors.New("the SQLite driver cannot describe statements")
	}
	info, err := ci.ColumnInfo(text)
	if err != nil {
		return nil, s.sqlError(ctx, err)
	}
	for _, c := range info {
		d := describeCol{Name: c.Name}
		if c.DeclType != "" {
			dt := c.DeclType
			d.Decltype = &dt
		}
		res.Cols = append(res.Cols, d)
	}
	for _, name := range paramNames(text) {
		p := describeParam{}
		if name != "" {
			n := name
			p.Name = &n
		}
		res.Params = append(res.Params, p)
	}
	res.IsExplain = isExplain(text)
	res.IsReadonly = true
	if !res.IsExplain {
		// A statement writes when its program opens a write transaction,
		// which is what sqlite3_stmt_readonly tells from the same program.
		// EXPLAIN binds the parameters without using them: NULL does.
		names := paramNames(text)
		args := make([]driver.NamedValue, len(names))
		for i, n := range names {
			args[i] = driver.NamedValue{Ordinal: i + 1}
			if n != "" && n[0] != '?' {
				args[i].Name = n[1:]
			}
		}
		rows, err := s.q.QueryContext(ctx, "EXPLAIN "+text, args)
		if err != nil {
			return nil, s.sqlError(ctx, err)
		}
		defer rows.Close()
		cols := rows.Columns()
		v := make([]driver.Value, len(cols))
		for rows.Next(v) == nil {
			op, _ := v[1].(string)
			p2, _ := v[3].(int64)
			if (op == "Transaction" && p2 != 0) || op == "OpenWrite" || op == "VUpdate" {
				res.IsReadonly = false
			}
		}
	}
	return res, nil
}

// explainStart matches a statement that starts with EXPLAIN, after blanks
// and comments.
var explainStart = regexp.MustCompile(`^(?:\s+|--[^\n]*(?:\n|$)|/\*(?s:.*?)\*/)*(?i:explain)\b`)

// isExplain tells whether a statement is EXPLAIN or EXPLAIN QUERY PLAN.
func isExplain(text string) bool { return explainStart.MatchString(text) }

// paramNames lists a statement's parameters as SQLite numbers them: ?NNN
// takes index NNN, a bare ? the next one, and a name (:a, @a, $a) the next
// one the first time it appears. A bare ? or an index nothing names has no
// name.
func paramNames(text string) []string {
	var names []string
	index := map[string]int{}
	set := func(i int, name string) {
		for len(names) < i {
			names = append(names, "")
		}
		if name != "" {
			names[i-1] = name
		}
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			j := strings.IndexByte(text[i+1:], c)
			if j < 0 {
				return names
			}
			i += j + 1
		case c == '[':
			j := strings.IndexByte(text[i+1:], ']')
			if j < 0 {
				return names
			}
			i += j + 1
		case c == '-' && strings.HasPrefix(text[i:], "--"):
			j := strings.IndexByte(text[i:], '\n')
			if j < 0 {
				return names
			}
			i += j
		case c == '/' && strings.HasPrefix(text[i:], "/*"):
			j := strings.Index(text[i+2:], "*/")
			if j < 0 {
				return names
			}
			i += j + 3
		case c == '?':
			j := i + 1
			for j < len(text) && text[j] >= '0' && text[j] <= '9' {
				j++
			}
			if j > i+1 {
				n, err := strconv.Atoi(text[i+1 : j])
				if err == nil && n > 0 && n <= 32766 {
					set(n, "?"+text[i+1:j])
				}
			} else {
				set(len(names)+1, "")
			}
			i = j - 1
		case c == ':' || c == '@' || c == '$':
			j := i + 1
			for j < len(text) && (isIdent(text[j]) || text[j] == ':' && c == '$') {
				j++
			}
			if j == i+1 {
				continue
			}
			name := text[i:j]
			if _, ok := index[name]; !ok {
				index[name] = len(names) + 1
				set(len(names)+1, name)
			}
			i = j - 1
		}
	}
	return names
}

func isIdent(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// sqlError turns a driver error into a Hrana error: the reason the
// authorizer refused, the time limit, the end of the lease, or SQLite's
// own words with its result code.
func (s *session) sqlError(ctx context.Context, err error) error {
	var se *stmtError
	if errors.As(err, &se) {
		return se
	}
	if why := s.st.lease.Refused(); why != "" {
		return &stmtError{code: "SQLITE_AUTH", msg: strings.ToUpper(why[:1]) + why[1:] + "."}
	}
	if lerr := s.st.lease.Err(); lerr != nil {
		return leaseError(lerr)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) && s.ctx.Err() == nil {
		return &stmtError{code: "TIMEOUT", msg: fmt.Sprintf("The statement ran longer than %s and was interrupted.", s.timeout)}
	}
	if s.ctx.Err() != nil {
		return &stmtError{code: "CANCELLED", msg: "The request ended before the statement finished."}
	}
	var le *sqlite.Error
	if errors.As(err, &le) {
		if le.Code()&0xff == sqlite3.SQLITE_TOOBIG {
			return &stmtError{code: "SQLITE_TOOBIG", msg: "A value is larger than the largest one value may be on this console (SQLite's length limit)."}
		}
		return &stmtError{code: codeName(le.Code()), msg: "SQLite says: " + sqlitemsg.Words(err)}
	}
	return &stmtError{code: "SQLITE_ERROR", msg: "SQLite says: " + sqlitemsg.Words(err)}
}

// errorOf is err as a Hrana error.
func (s *session) errorOf(err error) *errorMsg {
	var se *stmtError
	if errors.As(err, &se) {
		return se.hrana()
	}
	s.st.srv.logger.Error("data plane request failed", "database_id", s.st.lease.DatabaseID(), "err", err)
	return &errorMsg{Message: "Something went wrong on our side. The details are in the server log.", Code: "INTERNAL"}
}

func (s *session) maxMiB() int { return s.st.srv.cfg.MaxResultBytes >> 20 }

// codeName is SQLite's name of a result code, as libSQL servers send it:
// SQLITE_CONSTRAINT, SQLITE_CONSTRAINT_UNIQUE and so on.
func codeName(code int) string {
	if name, ok := extendedCodes[code]; ok {
		return name
	}
	if name, ok := primaryCodes[code&0xff]; ok {
		return name
	}
	return "SQLITE_ERROR"
}

var primaryCodes = map[int]string{
	sqlite3.SQLITE_ERROR: "SQLITE_ERROR", sqlite3.SQLITE_INTERNAL: "SQLITE_INTERNAL", sqlite3.SQLITE_PERM: "SQLITE_PERM",
	sqlite3.SQLITE_ABORT: "SQLITE_ABORT", sqlite3.SQLITE_BUSY: "SQLITE_BUSY", sqlite3.SQLITE_LOCKED: "SQLITE_LOCKED",
	sqlite3.SQLITE_NOMEM: "SQLITE_NOMEM", sqlite3.SQLITE_READONLY: "SQLITE_READONLY", sqlite3.SQLITE_INTERRUPT: "SQLITE_INTERRUPT",
	sqlite3.SQLITE_IOERR: "SQLITE_IOERR", sqlite3.SQLITE_CORRUPT: "SQLITE_CORRUPT", sqlite3.SQLITE_FULL: "SQLITE_FULL",
	sqlite3.SQLITE_CANTOPEN: "SQLITE_CANTOPEN", sqlite3.SQLITE_SCHEMA: "SQLITE_SCHEMA", sqlite3.SQLITE_TOOBIG: "SQLITE_TOOBIG",
	sqlite3.SQLITE_CONSTRAINT: "SQLITE_CONSTRAINT", sqlite3.SQLITE_MISMATCH: "SQLITE_MISMATCH", sqlite3.SQLITE_MISUSE: "SQLITE_MISUSE",
	sqlite3.SQLITE_AUTH: "SQLITE_AUTH", sqlite3.SQLITE_RANGE: "SQLITE_RANGE",
}

var extendedCodes = map[int]string{
	sqlite3.SQLITE_CONSTRAINT_CHECK: "SQLITE_CONSTRAINT_CHECK", sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY: "SQLITE_CONSTRAINT_FOREIGNKEY",
	sqlite3.SQLITE_CONSTRAINT_NOTNULL: "SQLITE_CONSTRAINT_NOTNULL", sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY: "SQLITE_CONSTRAINT_PRIMARYKEY",
	sqlite3.SQLITE_CONSTRAINT_UNIQUE: "SQLITE_CONSTRAINT_UNIQUE", sqlite3.SQLITE_CONSTRAINT_TRIGGER: "SQLITE_CONSTRAINT_TRIGGER",
	sqlite3.SQLITE_READONLY_DBMOVED: "SQLITE_READONLY_DBMOVED",
}

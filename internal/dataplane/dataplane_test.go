package dataplane_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/dataplane"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

const (
	dbA = "aaaa0001"
	dbB = "bbbb0002"
)

// plane is a data plane over a real Host with two databases, and three
// tokens: "rw" and "ro" of database A, "b" of database B.
type plane struct {
	t    *testing.T
	host *database.Host
	dp   *dataplane.Server
	srv  *httptest.Server
	// status is each database's state, as the console's store would tell.
	mu     sync.Mutex
	status map[string]snapdeck.Status
	ended  chan struct{}
	// clock is the data plane's clock, moved by age.
	clock time.Time
}

func mustPlane(t *testing.T, configure ...func(*dataplane.Config)) *plane {
	t.Helper()
	ctx := context.Background()
	h, err := database.NewHost(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(ctx) })
	p := &plane{t: t, host: h, status: map[string]snapdeck.Status{}, ended: make(chan struct{}, 64)}
	for _, id := range []string{dbA, dbB} {
		if err := h.Create(ctx, id); err != nil {
			t.Fatal(err)
		}
		p.status[id] = snapdeck.StatusRunning
	}
	grants := map[string]dataplane.Grant{
		"rw": {TokenID: "t-rw", DatabaseID: dbA},
		"ro": {TokenID: "t-ro", DatabaseID: dbA, ReadOnly: true},
		"b":  {TokenID: "t-b", DatabaseID: dbB},
	}
	cfg := dataplane.Config{Host: h,
		Authenticate: func(ctx context.Context, bearer string) (dataplane.Grant, error) {
			g, ok := grants[bearer]
			if !ok {
				return dataplane.Grant{}, &snapdeck.Error{Code: snapdeck.Unauthorized, Message: "This token is not valid."}
			}
			return g, nil
		},
		Status: func(ctx context.Context, id string) (snapdeck.Status, error) {
			p.mu.Lock()
			defer p.mu.Unlock()
			return p.status[id], nil
		},
		HTTPStatus: func(c snapdeck.Code) int {
			switch c {
			case snapdeck.Unauthorized:
				return 401
			case snapdeck.NotFound:
				return 404
			case snapdeck.TooLarge:
				return 413
			}
			return 400
		},
	}
	for _, f := range configure {
		f(&cfg)
	}
	dp, err := dataplane.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dp.OnEnd(func() { p.ended <- struct{}{} })
	p.clock = time.Now()
	dp.SetClock(func() time.Time {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.clock
	})
	p.dp = dp
	p.srv = httptest.NewServer(dp)
	t.Cleanup(func() { p.srv.Close(); dp.Close(ctx) })
	return p
}

// setStatus changes a database's status, and moves the data plane's clock
// past the time it believes a status it read for an open stream.
func (p *plane) setStatus(id string, s snapdeck.Status) {
	p.mu.Lock()
	p.status[id] = s
	p.clock = p.clock.Add(dataplane.StatusTTL)
	p.mu.Unlock()
}

// answer is a pipeline's answer as a client reads it.
type answer struct {
	status  int
	Baton   *string `json:"baton"`
	BaseURL string  `json:"base_url"`
	Results []struct {
		Type     string          `json:"type"`
		Response json.RawMessage `json:"response"`
		Error    *struct {
			Message string `json:"message"`
			Code    string `json:"code"`
		} `json:"error"`
	} `json:"results"`
	// Error is the body of an answer that is not a Hrana result.
	Error string `json:"error"`
	Code  string `json:"code"`
}

// post sends a pipeline with token to path.
func (p *plane) post(token, path string, baton *string, reqs ...any) answer {
	p.t.Helper()
	body, err := json.Marshal(map[string]any{"baton": baton, "requests": reqs})
	if err != nil {
		p.t.Fatal(err)
	}
	return p.postRaw(token, path, body)
}

func (p *plane) postRaw(token, path string, body []byte) answer {
	p.t.Helper()
	req, err := http.NewRequest("POST", p.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var a answer
	if err := json.Unmarshal(raw, &a); err != nil {
		p.t.Fatalf("answer %d is not JSON: %s", resp.StatusCode, raw)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		p.t.Fatalf("Content-Type: got %q, want application/json", ct)
	}
	a.status = resp.StatusCode
	return a
}

// pipe runs requests on database A with the read-write token and wants
// every one of them to succeed.
func (p *plane) pipe(baton *string, reqs ...any) answer {
	p.t.Helper()
	a := p.post("rw", "/db/"+dbA+"/v2/pipeline", baton, reqs...)
	if a.status != 200 {
		p.t.Fatalf("pipeline: status %d: %s", a.status, a.Error)
	}
	for i, r := range a.Results {
		if r.Type != "ok" {
			p.t.Fatalf("request %d: %+v", i, r.Error)
		}
	}
	return a
}

func execute(sql string, args ...any) map[string]any {
	s := map[string]any{"sql": sql}
	if len(args) > 0 {
		s["args"] = args
	}
	return map[string]any{"type": "execute", "stmt": s}
}

func closeReq() map[string]any { return map[string]any{"type": "close"} }

// result is an execute's result.
type result struct {
	Cols []struct {
		Name     *string `json:"name"`
		Decltype *string `json:"decltype"`
	} `json:"cols"`
	Rows             [][]map[string]any `json:"rows"`
	AffectedRowCount int64              `json:"affected_row_count"`
	LastInsertRowid  *string            `json:"last_insert_rowid"`
}

func executeResult(t *testing.T, raw json.RawMessage) result {
	t.Helper()
	var r struct {
		Type   string `json:"type"`
		Result result `json:"result"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || r.Type != "execute" {
		t.Fatalf("execute response %s: %v", raw, err)
	}
	return r.Result
}

// TestValuesAreExact round-trips every kind of value through arguments
// and rows: integers at both ends of int64 as decimal strings, floats at
// their extremes, text, blobs in base64 and null.
func TestValuesAreExact(t *testing.T) {
	p := mustPlane(t)
	args := []any{
		map[string]any{"type": "integer", "value": "9223372036854775807"},
		map[string]any{"type": "integer", "value": "-9223372036854775808"},
		map[string]any{"type": "float", "value": 1.7976931348623157e308},
		map[string]any{"type": "float", "value": 5e-324},
		map[string]any{"type": "float", "value": 0.1},
		map[string]any{"type": "text", "value": "héllo \u0000 \"wörld\" 🎉"},
		map[string]any{"type": "blob", "base64": "AAH/gA"},
		map[string]any{"type": "null"},
	}
	a := p.pipe(nil, execute("SELECT ?, ?, ?, ?, ?, ?, ?, ?", args...), execute("SELECT typeof(?1), typeof(?2), typeof(?3)", args[0], args[2], args[6]), closeReq())
	got := executeResult(t, a.Results[0].Response).Rows[0]
	want := []string{
		`{"type":"integer","value":"9223372036854775807"}`,
		`{"type":"integer","value":"-9223372036854775808"}`,
		`{"type":"float","value":1.7976931348623157e+308}`,
		`{"type":"float","value":5e-324}`,
		`{"type":"float","value":0.1}`,
		`{"type":"text","value":"héllo \u0000 \"wörld\" 🎉"}`,
		`{"type":"blob","base64":"AAH/gA"}`,
		`{"type":"null"}`,
	}
	for i := range want {
		var w map[string]any
		json.Unmarshal([]byte(want[i]), &w)
		gb, _ := json.Marshal(got[i])
		wb, _ := json.Marshal(w)
		if !bytes.Equal(gb, wb) {
			t.Errorf("value %d: got %s, want %s", i, gb, wb)
		}
	}
	types := executeResult(t, a.Results[1].Response).Rows[0]
	for i, w := range []string{"integer", "real", "blob"} {
		if types[i]["value"] != w {
			t.Errorf("typeof %d: got %v, want %s", i, types[i]["value"], w)
		}
	}
	if a.Baton != nil {
		t.Errorf("baton after close: got %q, want null", *a.Baton)
	}
	if want := p.srv.URL + "/db/" + dbA + "/"; a.BaseURL != want {
		t.Errorf("base_url: got %q, want %q", a.BaseURL, want)
	}
}

// TestStatementResults checks the columns, decltypes, affected rows and
// last rowid of statements, and errors with message and code.
func TestStatementResults(t *testing.T) {
	p := mustPlane(t)
	a := p.pipe(nil,
		execute("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT UNIQUE, score REAL)"),
		execute("INSERT INTO t(name, score) VALUES ('a', 1.5), ('b', 2.5)"),
		execute("SELECT id, name, score * 2 AS double FROM t ORDER BY id"),
		execute("UPDATE t SET score = 0 WHERE name = 'zzz'"),
	)
	ins := executeResult(t, a.Results[1].Response)
	if ins.AffectedRowCount != 2 || ins.LastInsertRowid == nil || *ins.LastInsertRowid != "2" {
		t.Errorf("insert: got %d rows, rowid %v; want 2 rows, rowid 2", ins.AffectedRowCount, ins.LastInsertRowid)
	}
	sel := executeResult(t, a.Results[2].Response)
	if len(sel.Rows) != 2 || len(sel.Cols) != 3 || *sel.Cols[2].Name != "double" || sel.Cols[0].Decltype == nil || *sel.Cols[0].Decltype != "INTEGER" || sel.Cols[2].Decltype != nil {
		t.Errorf("select: got %+v", sel)
	}
	if sel.AffectedRowCount != 0 {
		t.Errorf("select: got %d affected rows, want 0 (the insert's count is not the select's)", sel.AffectedRowCount)
	}
	if up := executeResult(t, a.Results[3].Response); up.AffectedRowCount != 0 {
		t.Errorf("update of no row: got %d affected rows, want 0", up.AffectedRowCount)
	}
	b := p.post("rw", "/db/"+dbA+"/v2/pipeline", a.Baton, execute("INSERT INTO t(name) VALUES ('a')"), execute("SELECT * FROM nowhere"), execute("SELECT 1"))
	if e := b.Results[0].Error; e == nil || e.Code != "SQLITE_CONSTRAINT_UNIQUE" || !strings.Contains(e.Message, "UNIQUE constraint failed: t.name") {
		t.Errorf("constraint: got %+v, want SQLITE_CONSTRAINT_UNIQUE naming t.name", e)
	}
	if e := b.Results[1].Error; e == nil || e.Code != "SQLITE_ERROR" || !strings.Contains(e.Message, "no such table: nowhere") {
		t.Errorf("missing table: got %+v", e)
	}
	if b.Results[2].Type != "ok" {
		t.Errorf("a pipeline goes on after an error: got %+v", b.Results[2])
	}
}

// TestBatchConditions runs a batch whose steps depend on earlier ones
// through every kind of condition.
func TestBatchConditions(t *testing.T) {
	p := mustPlane(t)
	step := func(sql string, cond any) map[string]any {
		s := map[string]any{"stmt": map[string]any{"sql": sql}}
		if cond != nil {
			s["condition"] = cond
		}
		return s
	}
	ok := func(i int) any { return map[string]any{"type": "ok", "step": i} }
	fail := func(i int) any { return map[string]any{"type": "error", "step": i} }
	not := func(c any) any { return map[string]any{"type": "not", "cond": c} }
	and := func(c ...any) any { return map[string]any{"type": "and", "conds": c} }
	or := func(c ...any) any { return map[string]any{"type": "or", "conds": c} }
	auto := map[string]any{"type": "is_autocommit"}
	a := p.pipe(nil, map[string]any{"type": "batch", "batch": map[string]any{"steps": []any{
		step("SELECT 1", nil),                 // 0 runs
		step("SELECT * FROM nowhere", ok(0)),  // 1 runs, fails
		step("SELECT 2", ok(1)),               // 2 skipped
		step("SELECT 3", fail(1)),             // 3 runs
		step("SELECT 4", not(ok(2))),          // 4 runs: 2 was skipped
		step("SELECT 5", and(ok(0), fail(2))), // 5 skipped
		step("SELECT 6", or(fail(2), ok(3))),  // 6 runs
		step("SELECT 7", auto),                // 7 runs: no transaction
		step("BEGIN", nil),                    // 8
		step("SELECT 9", auto),                // 9 skipped: in a transaction
		step("ROLLBACK", not(auto)),           // 10 runs
		step("SELECT 11", and()),              // 11 runs: and of nothing holds
		step("SELECT 12", or()),               // 12 skipped
	}}})
	var r struct {
		Result struct {
			StepResults []json.RawMessage `json:"step_results"`
			StepErrors  []json.RawMessage `json:"step_errors"`
		} `json:"result"`
	}
	json.Unmarshal(a.Results[0].Response, &r)
	succeeded := "1001101110110"
	failed := "0100000000000"
	for i := range succeeded {
		gotRan := string(r.Result.StepResults[i]) != "null"
		gotFailed := string(r.Result.StepErrors[i]) != "null"
		if gotRan != (succeeded[i] == '1') || gotFailed != (failed[i] == '1') {
			t.Errorf("step %d: got result %s, error %s; want succeeded=%c failed=%c", i, r.Result.StepResults[i], r.Result.StepErrors[i], succeeded[i], failed[i])
		}
	}
	bad := p.post("rw", "/db/"+dbA+"/v2/pipeline", nil, map[string]any{"type": "batch", "batch": map[string]any{"steps": []any{step("SELECT 1", ok(0))}}})
	if e := bad.Results[0].Error; e == nil || e.Code != "PROTOCOL_ERROR" {
		t.Errorf("a step's condition on itself: got %+v, want a protocol error", bad.Results[0])
	}
}

// TestStreamRequests covers sequence, describe, store_sql, close_sql,
// get_autocommit and close, and a transaction held across requests.
func TestStreamRequests(t *testing.T) {
	p := mustPlane(t)
	a := p.pipe(nil,
		map[string]any{"type": "sequence", "sql": "CREATE TABLE t(x INTEGER, y TEXT); INSERT INTO t VALUES (1, 'a'); INSERT INTO t VALUES (2, 'b');"},
		map[string]any{"type": "store_sql", "sql_id": 7, "sql": "SELECT count(*) FROM t WHERE x >= ?"},
		map[string]any{"type": "execute", "stmt": map[string]any{"sql_id": 7, "args": []any{map[string]any{"type": "integer", "value": "2"}}}},
		map[string]any{"type": "describe", "sql": "SELECT x AS ex, y FROM t WHERE x = :x OR y = ?3"},
		map[string]any{"type": "describe", "sql": "DELETE FROM t"},
		map[string]any{"type": "describe", "sql": "EXPLAIN SELECT 1"},
		map[string]any{"type": "get_autocommit"},
		execute("BEGIN"),
		execute("DELETE FROM t"),
		map[string]any{"type": "get_autocommit"},
		map[string]any{"type": "close_sql", "sql_id": 7},
	)
	if n := executeResult(t, a.Results[2].Response).Rows[0][0]["value"]; n != "1" {
		t.Errorf("stored SQL: got count %v, want 1", n)
	}
	var d struct {
		Result struct {
			Params []struct {
				Name *string `json:"name"`
			} `json:"params"`
			Cols []struct {
				Name     string  `json:"name"`
				Decltype *string `json:"decltype"`
			} `json:"cols"`
			IsExplain  bool `json:"is_explain"`
			IsReadonly bool `json:"is_readonly"`
		} `json:"result"`
	}
	json.Unmarshal(a.Results[3].Response, &d)
	if len(d.Result.Params) != 3 || *d.Result.Params[0].Name != ":x" || d.Result.Params[1].Name != nil || *d.Result.Params[2].Name != "?3" {
		t.Errorf("describe params: got %s", a.Results[3].Response)
	}
	if len(d.Result.Cols) != 2 || d.Result.Cols[0].Name != "ex" || *d.Result.Cols[0].Decltype != "INTEGER" || !d.Result.IsReadonly || d.Result.IsExplain {
		t.Errorf("describe select: got %s", a.Results[3].Response)
	}
	json.Unmarshal(a.Results[4].Response, &d)
	if d.Result.IsReadonly {
		t.Errorf("describe delete: got read-only, want writing")
	}
	json.Unmarshal(a.Results[5].Response, &d)
	if !d.Result.IsExplain {
		t.Errorf("describe explain: got is_explain false")
	}
	for i, want := range map[int]string{6: `true`, 9: `false`} {
		if !strings.Contains(string(a.Results[i].Response), `"is_autocommit":`+want) {
			t.Errorf("get_autocommit %d: got %s, want %s", i, a.Results[i].Response, want)
		}
	}
	// The transaction lasts across requests on the stream, and its delete
	// is seen by nobody else until it commits.
	other := p.pipe(nil, execute("SELECT count(*) FROM t"), closeReq())
	if n := executeResult(t, other.Results[0].Response).Rows[0][0]["value"]; n != "2" {
		t.Errorf("another stream during the transaction: got %v rows, want 2", n)
	}
	b := p.pipe(a.Baton, map[string]any{"type": "get_autocommit"}, execute("COMMIT"), closeReq())
	if !strings.Contains(string(b.Results[0].Response), `"is_autocommit":false`) {
		t.Errorf("the transaction did not last to the next request: %s", b.Results[0].Response)
	}
	c := p.post("rw", "/db/"+dbA+"/v2/pipeline", nil, map[string]any{"type": "execute", "stmt": map[string]any{"sql_id": 7}}, execute("SELECT count(*) FROM t"), closeReq())
	if e := c.Results[0].Error; e == nil || e.Code != "PROTOCOL_ERROR" {
		t.Errorf("a stored SQL text belongs to its stream: got %+v", c.Results[0])
	}
	if n := executeResult(t, c.Results[1].Response).Rows[0][0]["value"]; n != "0" {
		t.Errorf("after commit: got %v rows, want 0", n)
	}
}

// TestBatonsAreRotatedAndUnforgeable checks that every answer gives a new
// baton, that a used, made-up or other token's baton is refused, and that
// a refused baton touches nothing.
func TestBatonsAreRotatedAndUnforgeable(t *testing.T) {
	p := mustPlane(t)
	a := p.pipe(nil, execute("CREATE TABLE t(x)"), execute("BEGIN"), execute("INSERT INTO t VALUES (1)"))
	b := p.pipe(a.Baton, execute("INSERT INTO t VALUES (2)"))
	if a.Baton == nil || b.Baton == nil || *a.Baton == *b.Baton {
		t.Fatalf("batons: got %v then %v, want two different ones", a.Baton, b.Baton)
	}
	forged := strings.Repeat("A", len(*b.Baton))
	for name, c := range map[string]struct {
		token string
		baton *string
	}{
		"used baton":          {"rw", a.Baton},
		"made-up baton":       {"rw", &forged},
		"other token's baton": {"ro", b.Baton},
	} {
		got := p.post(c.token, "/db/"+dbA+"/v2/pipeline", c.baton, execute("COMMIT"))
		if got.status != 400 || got.Code != "STREAM_EXPIRED" || got.Error == "" || got.BaseURL != p.srv.URL+"/db/"+dbA+"/" {
			t.Errorf("%s: got %d %q %q base_url %q, want 400 STREAM_EXPIRED with a message and base_url", name, got.status, got.Code, got.Error, got.BaseURL)
		}
	}
	c := p.pipe(b.Baton, execute("SELECT count(*) FROM t"), execute("ROLLBACK"), closeReq())
	if n := executeResult(t, c.Results[0].Response).Rows[0][0]["value"]; n != "2" {
		t.Errorf("the stream after refused batons: got %v rows in its transaction, want 2", n)
	}
}

// TestIdleStreamExpiresAndRollsBack checks that a stream left alone ends
// after the idle time, rolling back its open transaction.
func TestIdleStreamExpiresAndRollsBack(t *testing.T) {
	p := mustPlane(t, func(c *dataplane.Config) { c.IdleTimeout = 50 * time.Millisecond })
	p.pipe(nil, execute("CREATE TABLE t(x)"), closeReq())
	<-p.ended
	a := p.pipe(nil, execute("BEGIN"), execute("INSERT INTO t VALUES (1)"))
	select {
	case <-p.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the idle stream did not end")
	}
	got := p.post("rw", "/db/"+dbA+"/v2/pipeline", a.Baton, execute("COMMIT"))
	if got.status != 400 || got.Code != "STREAM_EXPIRED" {
		t.Errorf("expired baton: got %d %q, want 400 STREAM_EXPIRED", got.status, got.Code)
	}
	c := p.pipe(nil, execute("SELECT count(*) FROM t"), closeReq())
	if n := executeResult(t, c.Results[0].Response).Rows[0][0]["value"]; n != "0" {
		t.Errorf("after expiry: got %v rows, want 0 (rolled back)", n)
	}
}

// TestTokensAndRoutes checks the 401s (missing, wrong, another
// database's token) and that they touch nothing, the path without an id,
// and the version checks the clients make.
func TestTokensAndRoutes(t *testing.T) {
	p := mustPlane(t)
	p.pipe(nil, execute("CREATE TABLE t(x)"), closeReq())
	<-p.ended
	for name, c := range map[string]struct{ token, path string }{
		"no token":                {"", "/db/" + dbA + "/v2/pipeline"},
		"wrong token":             {"nope", "/db/" + dbA + "/v2/pipeline"},
		"another database's":      {"b", "/db/" + dbA + "/v2/pipeline"},
		"wrong token without id":  {"nope", "/db/v2/pipeline"},
		"another database's (v3)": {"b", "/db/" + dbA + "/v3/pipeline"},
	} {
		got := p.post(c.token, c.path, nil, execute("INSERT INTO t VALUES (1)"))
		if got.status != 401 || got.Error == "" || len(got.Results) != 0 {
			t.Errorf("%s: got %d %q, want 401 with an error", name, got.status, got.Error)
		}
	}
	a := p.pipe(nil, execute("SELECT count(*) FROM t"), closeReq())
	if n := executeResult(t, a.Results[0].Response).Rows[0][0]["value"]; n != "0" {
		t.Errorf("refused requests wrote: got %v rows, want 0", n)
	}
	// Without the id the token tells the database, and base_url sends
	// the client on to the database's own URL.
	b := p.post("b", "/db/v2/pipeline", nil, execute("CREATE TABLE only_b(x)"))
	if b.status != 200 || b.BaseURL != p.srv.URL+"/db/"+dbB+"/" {
		t.Fatalf("without id: got %d, base_url %q", b.status, b.BaseURL)
	}
	c := p.post("b", "/db/"+dbB+"/v3/pipeline", b.Baton, execute("SELECT count(*) FROM only_b"), closeReq())
	if c.status != 200 || c.Results[0].Type != "ok" {
		t.Errorf("v3 pipeline on the stream: got %d %+v", c.status, c.Results)
	}
	for path, want := range map[string]int{"/db/" + dbA + "/v2": 200, "/db/" + dbA + "/v3": 200, "/db/v2": 200, "/db/" + dbA + "/v3-protobuf": 404, "/db/v3-protobuf": 404} {
		resp, err := http.Get(p.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: got %d, want %d", path, resp.StatusCode, want)
		}
	}
}

// TestGuards checks the Query tab's guard on streams: a read-only token's
// writes are refused by SQLite, ATTACH by the authorizer with its reason,
// and the statement time limit, result and body sizes.
func TestGuards(t *testing.T) {
	p := mustPlane(t, func(c *dataplane.Config) {
		// Long enough for the other statements on a loaded machine under
		// the race detector; the endless one reaches it anyway.
		c.StatementTimeout = time.Second
		c.MaxResultBytes = 1 << 20
		c.MaxBodyBytes = 1 << 20
	})
	p.pipe(nil, execute("CREATE TABLE t(x)"), closeReq())
	ro := p.post("ro", "/db/"+dbA+"/v2/pipeline", nil, execute("INSERT INTO t VALUES (1)"), execute("SELECT count(*) FROM t"), closeReq())
	if e := ro.Results[0].Error; e == nil || !strings.Contains(e.Message, "readonly") {
		t.Errorf("read-only token's write: got %+v, want SQLite's refusal", ro.Results[0])
	}
	if ro.Results[1].Type != "ok" {
		t.Errorf("read-only token's read: got %+v", ro.Results[1])
	}
	attach := filepath.Join(t.TempDir(), "other.db")
	a := p.post("rw", "/db/"+dbA+"/v2/pipeline", nil,
		execute("ATTACH '"+attach+"' AS other"),
		execute("SELECT 1"),
		execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c"),
		execute("SELECT zeroblob(2000000)"),
		closeReq())
	if e := a.Results[0].Error; e == nil || e.Code != "SQLITE_AUTH" || !strings.Contains(e.Message, "ATTACH") {
		t.Errorf("attach: got %+v, want the authorizer's reason", a.Results[0])
	}
	if _, err := os.Stat(attach); err == nil {
		t.Errorf("ATTACH made %s", attach)
	}
	if a.Results[1].Type != "ok" {
		t.Errorf("the statement after a refusal is not refused: got %+v", a.Results[1])
	}
	if e := a.Results[2].Error; e == nil || e.Code != "TIMEOUT" || !strings.Contains(e.Message, "1s") {
		t.Errorf("endless statement: got %+v, want TIMEOUT", a.Results[2])
	}
	if e := a.Results[3].Error; e == nil || e.Code != "RESPONSE_TOO_LARGE" {
		t.Errorf("2 MB result: got %+v, want RESPONSE_TOO_LARGE", a.Results[3])
	}
	big := []byte(`{"baton":null,"requests":[{"type":"execute","stmt":{"sql":"SELECT '` + strings.Repeat("x", 2<<20) + `'"}}]}`)
	if got := p.postRaw("rw", "/db/"+dbA+"/v2/pipeline", big); got.status != 413 {
		t.Errorf("2 MiB body: got %d, want 413", got.status)
	}
	if got := p.postRaw("rw", "/db/"+dbA+"/v2/pipeline", []byte(`{"requests": [`)); got.status != 400 || got.Error == "" {
		t.Errorf("broken JSON: got %d %q, want 400 with an error", got.status, got.Error)
	}
}

// TestReplaceEndsStreams checks that replacing the file (what a restore
// does) ends an open stream first: its transaction is rolled back, its
// next request says why, and its commit does not land on the new file.
// While the database is restoring or paused, requests say so.
func TestReplaceEndsStreams(t *testing.T) {
	p := mustPlane(t)
	ctx := context.Background()
	p.pipe(nil, execute("CREATE TABLE t(x)"), execute("INSERT INTO t VALUES ('before')"), closeReq())
	a := p.pipe(nil, execute("BEGIN"), execute("INSERT INTO t VALUES ('from the old stream')"))

	p.setStatus(dbA, snapdeck.StatusRestoring)
	during := p.post("rw", "/db/"+dbA+"/v2/pipeline", a.Baton, execute("SELECT 1"))
	if e := during.Results[0].Error; e == nil || e.Code != "DATABASE_RESTORING" || !strings.Contains(e.Message, "restored") {
		t.Fatalf("while restoring: got %+v", during.Results)
	}
	// The replacement: a copy of the file as it was before the stream's
	// transaction.
	db, err := p.host.DB(dbA)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(p.host.Dir(), "replacement.tmp")
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", tmp); err != nil {
		t.Fatal(err)
	}
	if err := p.host.Replace(ctx, dbA, tmp, nil, func(tmpPath, dbPath string) error { return os.Rename(tmpPath, dbPath) }); err != nil {
		t.Fatal(err)
	}
	p.setStatus(dbA, snapdeck.StatusRunning)

	after := p.post("rw", "/db/"+dbA+"/v2/pipeline", during.Baton, execute("COMMIT"))
	if e := after.Results[0].Error; e == nil || e.Code != "STREAM_REVOKED" || !strings.Contains(e.Message, "replaced") {
		t.Fatalf("commit after the replace: got %+v, want STREAM_REVOKED saying the database was replaced", after.Results)
	}
	if after.Baton != nil {
		t.Errorf("the revoked stream goes on: baton %q", *after.Baton)
	}
	c := p.pipe(nil, execute("SELECT group_concat(x) FROM t"), closeReq())
	if got := executeResult(t, c.Results[0].Response).Rows[0][0]["value"]; got != "before" {
		t.Errorf("after the replace: got %v, want only 'before'", got)
	}

	p.setStatus(dbA, snapdeck.StatusPaused)
	paused := p.post("rw", "/db/"+dbA+"/v2/pipeline", nil, execute("SELECT 1"))
	if e := paused.Results[0].Error; e == nil || e.Code != "DATABASE_PAUSED" || paused.Baton != nil {
		t.Errorf("paused: got %+v baton %v", paused.Results, paused.Baton)
	}
}

// TestStreamsAreCapped checks that the lease caps bound the streams of a
// database, and that a closed stream frees its place.
func TestStreamsAreCapped(t *testing.T) {
	p := mustPlane(t)
	var batons []*string
	for i := 0; ; i++ {
		a := p.post("rw", "/db/"+dbA+"/v2/pipeline", nil, execute("SELECT 1"))
		if a.Results[0].Type != "ok" {
			if e := a.Results[0].Error; i != 16 || e.Code != "TOO_MANY_STREAMS" || !strings.Contains(e.Message, "16") {
				t.Fatalf("stream %d: got %+v, want the 17th refused with TOO_MANY_STREAMS", i+1, e)
			}
			break
		}
		batons = append(batons, a.Baton)
	}
	p.pipe(batons[0], closeReq())
	p.pipe(nil, execute("SELECT 1"), closeReq())
	// Another database has places of its own.
	if b := p.post("b", "/db/"+dbB+"/v2/pipeline", nil, execute("SELECT 1"), closeReq()); b.Results[0].Type != "ok" {
		t.Errorf("another database: got %+v", b.Results[0])
	}
}

// TestCursor runs a batch through v3/cursor: the stream's baton and
// base_url on the first line, then each step's entries.
func TestCursor(t *testing.T) {
	p := mustPlane(t)
	body := `{"baton":null,"batch":{"steps":[
		{"stmt":{"sql":"CREATE TABLE t(x TEXT)"}},
		{"stmt":{"sql":"INSERT INTO t VALUES ('a'), ('b')"}},
		{"stmt":{"sql":"SELECT x FROM t ORDER BY x"}},
		{"stmt":{"sql":"SELECT * FROM nowhere"}},
		{"condition":{"type":"ok","step":3},"stmt":{"sql":"SELECT 1"}}]}}`
	req, _ := http.NewRequest("POST", p.srv.URL+"/db/"+dbA+"/v3/cursor", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer rw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	var head struct {
		Baton   *string `json:"baton"`
		BaseURL string  `json:"base_url"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &head); err != nil || head.Baton == nil || head.BaseURL != p.srv.URL+"/db/"+dbA+"/" {
		t.Fatalf("first line: %s (%v)", lines[0], err)
	}
	var types []string
	for _, l := range lines[1:] {
		var e struct {
			Type string `json:"type"`
		}
		json.Unmarshal([]byte(l), &e)
		types = append(types, e.Type)
	}
	want := "step_begin step_end step_begin step_end step_begin row row step_end step_error"
	if got := strings.Join(types, " "); got != want {
		t.Errorf("entries: got %s, want %s\n%s", got, want, raw)
	}
	if !strings.Contains(lines[7], `"value":"b"`) || !strings.Contains(lines[len(lines)-1], "no such table") {
		t.Errorf("rows or error: %s", raw)
	}
	p.pipe(head.Baton, closeReq())
}

// TestInfinitiesAndBadValues checks the values JSON cannot carry as they
// are, and that a malformed value is refused with a message.
func TestInfinitiesAndBadValues(t *testing.T) {
	p := mustPlane(t)
	body, _ := json.Marshal(map[string]any{"baton": nil, "requests": []any{execute("SELECT 1e999, -1e999"), closeReq()}})
	req, _ := http.NewRequest("POST", p.srv.URL+"/db/"+dbA+"/v2/pipeline", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer rw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(raw), `[{"type":"float","value":9e999},{"type":"float","value":-9e999}]`) {
		t.Errorf("infinities: got %s", raw)
	}
	for _, v := range []string{`{"type":"integer","value":"12x"}`, `{"type":"integer","value":"9223372036854775808"}`, `{"type":"blob","base64":"!!"}`, `{"type":"decimal","value":"1"}`} {
		got := p.postRaw("rw", "/db/"+dbA+"/v2/pipeline", []byte(`{"baton":null,"requests":[{"type":"execute","stmt":{"sql":"SELECT ?","args":[`+v+`]}}]}`))
		if got.status != 400 || !strings.Contains(got.Error, "value") {
			t.Errorf("%s: got %d %q, want 400 saying what is wrong with the value", v, got.status, got.Error)
		}
	}
}

// TestEndedStreamTellsWhyAfterItExpired checks that a stream Host ended (a
// pause here) still answers with why once its idle time is up, rather than
// as an unknown baton, and that its transaction did not land.
func TestEndedStreamTellsWhyAfterItExpired(t *testing.T) {
	p := mustPlane(t, func(c *dataplane.Config) { c.IdleTimeout = 50 * time.Millisecond })
	p.pipe(nil, execute("CREATE TABLE t(x)"), closeReq())
	<-p.ended
	a := p.pipe(nil, execute("BEGIN"), execute("INSERT INTO t VALUES (1)"))
	if err := p.host.CloseDatabase(context.Background(), dbA); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the ended stream was not dropped after its idle time")
	}
	got := p.post("rw", "/db/"+dbA+"/v2/pipeline", a.Baton, execute("COMMIT"))
	if got.status != 400 || got.Code != "STREAM_REVOKED" || !strings.Contains(got.Error, "paused") {
		t.Errorf("the ended stream's baton: got %d %q %q, want 400 STREAM_REVOKED saying the database was paused", got.status, got.Code, got.Error)
	}
	c := p.pipe(nil, execute("SELECT count(*) FROM t"), closeReq())
	if n := executeResult(t, c.Results[0].Response).Rows[0][0]["value"]; n != "0" {
		t.Errorf("after the pause: got %v rows, want 0", n)
	}
}

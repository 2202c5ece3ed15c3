package web_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tursodatabase/libsql-client-go/libsql"

	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/dbtoken"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// mustToken issues a data plane token for database id.
func (c *console) mustToken(t testing.TB, id string, scope dbtoken.Scope) (dbtoken.Token, string) {
	t.Helper()
	tok, secret, err := c.app.Tokens.Issue(context.Background(), "admin@x", id, "test "+string(scope), scope)
	if err != nil {
		t.Fatal(err)
	}
	return tok, secret
}

// libsqlDB opens url with the Go libSQL client through database/sql.
func libsqlDB(t testing.TB, url, token string) *sql.DB {
	t.Helper()
	conn, err := libsql.NewConnector(url, libsql.WithAuthToken(token))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	return db
}

// goClientDB creates a database and returns it with a read-write token
// and the Go client on its URL.
func (c *console) goClientDB(tb testing.TB, name string) (snapdeck.Database, string, *sql.DB) {
	tb.Helper()
	out, err := c.databases.Create(context.Background(), "admin@x", database.CreateRequest{Name: name, Plan: snapdeck.PlanProfessional})
	if err != nil {
		tb.Fatal(err)
	}
	d := out.Database
	_, token := c.mustToken(tb, d.ID, dbtoken.ReadWrite)
	return d, token, libsqlDB(tb, c.srv.URL+"/db/"+d.ID+"/", token)
}

// goClientConsole starts a console with one database, a read-write token
// for it, and the Go client on its URL.
func goClientConsole(t *testing.T) (*console, snapdeck.Database, string, *sql.DB) {
	t.Helper()
	c := mustConsole(t)
	d, token, db := c.goClientDB(t, "app")
	return c, d, token, db
}

// count is SELECT count(*) of a table through db.
func count(t *testing.T, db *sql.DB, table string) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// TestGoClient runs the Go libSQL client, unchanged, through database/sql
// against the console's router: exec, query, transactions, multi-statement
// exec, LastInsertId, every kind of value at its extremes, and errors.
func TestGoClient(t *testing.T) {
	c, d, token, db := goClientConsole(t)
	ctx := context.Background()

	if _, err := db.ExecContext(ctx, "CREATE TABLE t(id INTEGER PRIMARY KEY, i INTEGER, f REAL, s TEXT, b BLOB)"); err != nil {
		t.Fatal(err)
	}
	type row struct {
		i int64
		f float64
		s string
		b []byte
	}
	rows := []row{
		{math.MaxInt64, math.MaxFloat64, "héllo, wörld 🎉", []byte{0, 1, 2, 255}},
		{math.MinInt64, math.SmallestNonzeroFloat64, "", []byte{0xff}},
		{0, -0.1, "'quoted' \"and\" \\ back", bytes.Repeat([]byte{7}, 1000)},
	}
	for n, r := range rows {
		res, err := db.ExecContext(ctx, "INSERT INTO t(i, f, s, b) VALUES (?, ?, ?, ?)", r.i, r.f, r.s, r.b)
		if err != nil {
			t.Fatal(err)
		}
		if id, _ := res.LastInsertId(); id != int64(n+1) {
			t.Errorf("LastInsertId: got %d, want %d", id, n+1)
		}
		if k, _ := res.RowsAffected(); k != 1 {
			t.Errorf("RowsAffected: got %d, want 1", k)
		}
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO t(i) VALUES (NULL)"); err != nil {
		t.Fatal(err)
	}
	q, err := db.QueryContext(ctx, "SELECT i, f, s, b FROM t WHERE i IS NOT NULL ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	var got []row
	for q.Next() {
		var r row
		if err := q.Scan(&r.i, &r.f, &r.s, &r.b); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	q.Close()
	if len(got) != len(rows) {
		t.Fatalf("got %d rows, want %d", len(got), len(rows))
	}
	for n := range rows {
		if got[n].i != rows[n].i || got[n].f != rows[n].f || got[n].s != rows[n].s || !bytes.Equal(got[n].b, rows[n].b) {
			t.Errorf("row %d: got %v, want %v", n, got[n], rows[n])
		}
	}
	var null sql.NullString
	if err := db.QueryRowContext(ctx, "SELECT s FROM t WHERE i IS NULL").Scan(&null); err != nil || null.Valid {
		t.Errorf("NULL: got %v, %v", null, err)
	}

	// Transactions: rolled back, then committed.
	before := count(t, db, "t")
	for _, commit := range []bool{false, true} {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO t(i) VALUES (42)"); err != nil {
			t.Fatal(err)
		}
		var inside int64
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&inside); err != nil || inside != before+1 {
			t.Errorf("inside the transaction: got %d, %v; want %d", inside, err, before+1)
		}
		if commit {
			err = tx.Commit()
		} else {
			err = tx.Rollback()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := count(t, db, "t"); n != before+1 {
		t.Errorf("after a rollback and a commit: got %d rows, want %d", n, before+1)
	}

	// Several statements in one Exec run as one batch in a transaction.
	res, err := db.ExecContext(ctx, "INSERT INTO t(i) VALUES (100); INSERT INTO t(i) VALUES (101); UPDATE t SET s = 'x' WHERE i IN (100, 101)")
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := res.RowsAffected(); k != 4 {
		t.Errorf("multi-statement RowsAffected: got %d, want 4", k)
	}
	// A failing statement stops the ones after it (the client makes them
	// conditional on the one before; as with sqld, each commits on its own).
	if _, err := db.ExecContext(ctx, "INSERT INTO t(i) VALUES (200); INSERT INTO nowhere VALUES (1); INSERT INTO t(i) VALUES (201)"); err == nil ||
		!strings.Contains(err.Error(), "no such table: nowhere") {
		t.Errorf("a multi-statement exec with a failing statement: got %v", err)
	}
	if n := count(t, db, "t WHERE i = 201"); n != 0 {
		t.Errorf("the statement after the failing one ran")
	}

	// Errors carry SQLite's words.
	if _, err := db.ExecContext(ctx, "INSERT INTO t(id) VALUES (1)"); err == nil || !strings.Contains(err.Error(), "UNIQUE constraint failed: t.id") {
		t.Errorf("duplicate key: got %v", err)
	}
	if _, err := db.QueryContext(ctx, "SELECT * FROM nowhere"); err == nil || !strings.Contains(err.Error(), "no such table: nowhere") {
		t.Errorf("missing table: got %v", err)
	}

	// The URL without its trailing slash reaches the same database.
	other := libsqlDB(t, c.srv.URL+"/db/"+d.ID, token)
	if n := count(t, other, "t"); n != count(t, db, "t") {
		t.Errorf("without the trailing slash: got %d rows", n)
	}
}

// pipelineStatus posts a one-statement pipeline with the headers given and
// returns the status and the answer's "error".
func pipelineStatus(t *testing.T, cl *http.Client, url string, header http.Header, sqlText string) (int, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"baton": nil, "requests": []any{map[string]any{"type": "execute", "stmt": map[string]any{"sql": sqlText}}}})
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var a struct {
		Error string `json:"error"`
	}
	json.Unmarshal(raw, &a)
	return res.StatusCode, a.Error
}

// TestDataPlaneTokens checks the contract's 401s through the router: no
// token, a wrong, revoked or other database's token, a signed-in session
// without a token; none touches the database. A valid token needs no CSRF
// token, its body may pass the console's form limit, and a read-only
// token's writes are refused by SQLite.
func TestDataPlaneTokens(t *testing.T) {
	c := mustConsole(t)
	ctx := context.Background()
	d := c.mustDatabase("app", snapdeck.PlanProfessional)
	other := c.mustDatabase("other", snapdeck.PlanProfessional)
	_, token := c.mustToken(t, d.ID, dbtoken.ReadWrite)
	_, otherToken := c.mustToken(t, other.ID, dbtoken.ReadWrite)
	revoked, revokedToken := c.mustToken(t, d.ID, dbtoken.ReadWrite)
	if err := c.app.Tokens.Revoke(ctx, "admin@x", d.ID, revoked.ID); err != nil {
		t.Fatal(err)
	}
	db := libsqlDB(t, c.srv.URL+"/db/"+d.ID+"/", token)
	if _, err := db.ExecContext(ctx, "CREATE TABLE t(x)"); err != nil {
		t.Fatal(err)
	}
	url := c.srv.URL + "/db/" + d.ID + "/v2/pipeline"
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	admin := c.newClient("admin@x")
	for name, tc := range map[string]struct {
		cl     *http.Client
		url    string
		header http.Header
	}{
		"no token":                   {http.DefaultClient, url, nil},
		"wrong token":                {http.DefaultClient, url, bearer("sdt_" + strings.Repeat("A", 43))},
		"revoked token":              {http.DefaultClient, url, bearer(revokedToken)},
		"another database's token":   {http.DefaultClient, url, bearer(otherToken)},
		"revoked token, no id":       {http.DefaultClient, c.srv.URL + "/db/v2/pipeline", bearer(revokedToken)},
		"a signed-in admin's cookie": {admin.http, url, http.Header{"X-Csrf-Token": {admin.csrf}}},
	} {
		status, msg := pipelineStatus(t, tc.cl, tc.url, tc.header, "INSERT INTO t VALUES (1)")
		if status != http.StatusUnauthorized || msg == "" {
			t.Errorf("%s: got %d %q, want 401 with an error", name, status, msg)
		}
	}
	if n := count(t, db, "t"); n != 0 {
		t.Errorf("refused requests wrote %d rows", n)
	}
	// No CSRF token, and a body beyond the console's 1 MiB form limit.
	big := strings.Repeat("x", 3<<20/2)
	if status, msg := pipelineStatus(t, http.DefaultClient, url, bearer(token), "INSERT INTO t VALUES ('"+big+"')"); status != 200 {
		t.Errorf("a 1.5 MiB pipeline: got %d %q, want 200", status, msg)
	}
	if n := count(t, db, "t"); n != 1 {
		t.Errorf("after the large insert: got %d rows, want 1", n)
	}
	_, roToken := c.mustToken(t, d.ID, dbtoken.ReadOnly)
	ro := libsqlDB(t, c.srv.URL+"/db/"+d.ID+"/", roToken)
	if _, err := ro.ExecContext(ctx, "INSERT INTO t VALUES (2)"); err == nil || !strings.Contains(err.Error(), "readonly") {
		t.Errorf("read-only token's write: got %v, want SQLite's refusal", err)
	}
	if n := count(t, ro, "t"); n != 1 {
		t.Errorf("read-only token's read: got %d rows, want 1", n)
	}
}

// TestRestoreWinsOverAGoClientTransaction holds a transaction open in the
// Go client while a restore runs: the restore completes, the content is
// the snapshot's, and the client's commit fails without landing. While
// the database is paused, statements are refused with a message that
// says so.
func TestRestoreWinsOverAGoClientTransaction(t *testing.T) {
	c, d, _, db := goClientConsole(t)
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, "CREATE TABLE t(x); INSERT INTO t VALUES ('snapshot')"); err != nil {
		t.Fatal(err)
	}
	snap, err := c.snapshots.Snapshot(ctx, d.ID, snapdeck.SnapshotOnDemand, "before", "admin@x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO t VALUES ('after the snapshot')"); err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO t VALUES ('in the open transaction')"); err != nil {
		t.Fatal(err)
	}
	_, j, err := c.snapshots.Restore(ctx, d.ID, snap.ID, "admin@x")
	if err != nil {
		t.Fatal(err)
	}
	if j, err = c.jobs.Wait(ctx, j.ID); err != nil || j.Status != snapdeck.JobSucceeded {
		t.Fatalf("restore: %v %v %s", err, j.Status, j.Error)
	}
	err = tx.Commit()
	if err == nil || !strings.Contains(err.Error(), "replaced") {
		t.Fatalf("commit after the restore: got %v, want an error saying the database was replaced", err)
	}
	var content string
	if err := db.QueryRowContext(ctx, "SELECT group_concat(x, '|') FROM t").Scan(&content); err != nil || content != "snapshot" {
		t.Errorf("after the restore: got %q, %v; want only the snapshot's row", content, err)
	}

	if _, err := c.databases.Pause(ctx, "admin@x", d.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO t VALUES ('while paused')"); err == nil || !strings.Contains(err.Error(), "paused") {
		t.Errorf("while paused: got %v, want an error saying the database is paused", err)
	}
	if _, err := c.databases.Resume(ctx, "admin@x", d.ID); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, "t"); n != 1 {
		t.Errorf("after resuming: got %d rows, want 1", n)
	}
}

// TestSnapshotsWhileAClientWrites takes snapshots while the Go client
// writes through the data plane: each completes and verifies, and a
// database made from the last passes integrity_check.
func TestSnapshotsWhileAClientWrites(t *testing.T) {
	c, d, _, db := goClientConsole(t)
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	wait := writeUntil(stop, func(int) error {
		_, err := db.ExecContext(ctx, "INSERT INTO t(v) VALUES (?); INSERT INTO t(v) VALUES (?)", strings.Repeat("a", 500), strings.Repeat("b", 500))
		return err
	})
	var snaps []snapdeck.Snapshot
	for i := 0; i < 3; i++ {
		s, err := c.snapshots.Snapshot(ctx, d.ID, snapdeck.SnapshotOnDemand, "while writing", "admin@x")
		if err != nil {
			t.Fatalf("snapshot %d: %v", i, err)
		}
		snaps = append(snaps, s)
	}
	close(stop)
	written, err := wait()
	if err != nil {
		t.Fatalf("the client's writes failed: %v", err)
	}
	if written == 0 {
		t.Fatal("the client wrote nothing while the snapshots were taken")
	}
	jobs, err := c.snapshots.FindOpenJobs(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		c.jobs.Wait(ctx, j.ID)
	}
	for i, s := range snaps {
		got, err := c.snapshots.FindSnapshot(ctx, d.ID, s.ID)
		if err != nil || got.Status != snapdeck.SnapshotCompleted || !got.Verified {
			t.Errorf("snapshot %d: status %s, verified %v (%s), %v", i, got.Status, got.Verified, got.VerifyError, err)
		}
	}
	made, err := c.databases.Create(ctx, "admin@x", database.CreateRequest{Name: "copy", Plan: snapdeck.PlanProfessional,
		FromDatabase: d.ID, FromSnapshot: snaps[len(snaps)-1].ID})
	if err != nil {
		t.Fatal(err)
	}
	if j, err := c.jobs.Wait(ctx, made.Job.ID); err != nil || j.Status != snapdeck.JobSucceeded {
		t.Fatalf("database from the snapshot: %v %s", err, j.Error)
	}
	res, err := c.databases.Query(ctx, made.Database.ID, "PRAGMA integrity_check", true)
	if err != nil || len(res.Rows) != 1 || res.Rows[0][0] != "ok" {
		t.Errorf("integrity_check of the last snapshot: got %+v, %v", res, err)
	}
}

// writeUntil calls write(0), write(1), ... on a goroutine until stop is
// closed or a call fails. The function it returns waits for the goroutine
// and says how many calls succeeded and why it stopped.
func writeUntil(stop <-chan struct{}, write func(n int) error) func() (int, error) {
	done := make(chan struct{})
	var n int
	var err error
	go func() {
		defer close(done)
		for ; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			if err = write(n); err != nil {
				return
			}
		}
	}()
	return func() (int, error) {
		<-done
		return n, err
	}
}

// TestDataPlaneMetrics checks that /metrics counts open streams, pipeline
// requests and errors.
func TestDataPlaneMetrics(t *testing.T) {
	c, d, _, db := goClientConsole(t)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	conn.ExecContext(ctx, "SELECT * FROM nowhere")
	pipelineStatus(t, http.DefaultClient, c.srv.URL+"/db/"+d.ID+"/v2/pipeline", nil, "SELECT 1")
	_, body := c.newClient("").get("/metrics")
	for _, want := range []string{
		"snapdeck_dataplane_open_streams 1",
		"snapdeck_dataplane_pipeline_requests_total 3",
		`snapdeck_dataplane_errors_total{code="SQLITE_ERROR"} 1`,
		`snapdeck_dataplane_errors_total{code="UNAUTHORIZED"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestStreamWritesAreCheckpointed writes 8 MiB through the data plane, 64
// KiB a commit, and checks that the database file takes them in: the
// streams' commits nudge the checkpointer, which copies the WAL into the
// file at most every 500 ms. Nothing else would: the console's
// connections never checkpoint on commit, so without the nudges the file
// stays as created and the WAL holds everything
// (BenchmarkDataPlaneSustainedWrites measures the WAL's size over 60 s).
func TestStreamWritesAreCheckpointed(t *testing.T) {
	c, d, _, db := goClientConsole(t)
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, "CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)"); err != nil {
		t.Fatal(err)
	}
	file := c.app.Host.Path(d.ID)
	before, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	blob := bytes.Repeat([]byte{0x5a}, 64<<10)
	for i := range 8 << 20 / len(blob) {
		if _, err := db.ExecContext(ctx, "INSERT INTO t(id, b) VALUES (?, ?)", i, blob); err != nil {
			t.Fatal(err)
		}
	}
	// The writes may all fit in one 500 ms: a checkpoint holds the next
	// one off until then.
	deadline := time.Now().Add(2 * time.Second)
	for {
		after, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if after.Size() >= before.Size()+int64(len(blob)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the database file grew from %d to %d bytes in 2 s after 8 MiB were committed: nothing was checkpointed", before.Size(), after.Size())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

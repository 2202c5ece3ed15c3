package web_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/web"
)

// importCall sends one request of the import extension.
func (a *apiClient) importCall(method, path string, header map[string]string, body []byte) apiReply {
	a.t.Helper()
	req, _ := http.NewRequest(method, a.base+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+a.token)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return callAPI(a.t, req)
}

// announce starts an upload of b.
func (a *apiClient) announce(id string, b []byte, overwrite bool) apiReply {
	a.t.Helper()
	sum := sha256.Sum256(b)
	h := map[string]string{"X-Snapdeck-Size": strconv.Itoa(len(b)), "X-Snapdeck-SHA256": hex.EncodeToString(sum[:]),
		"X-Snapdeck-Filename": "local.sqlite"}
	if overwrite {
		h["X-Snapdeck-Overwrite"] = "true"
	}
	return a.importCall(http.MethodPost, "/v1/instances/"+id+"/import", h, nil)
}

// chunk sends b[from:to] of an upload of size bytes.
func (a *apiClient) chunk(id, uid string, b []byte, from, to int) apiReply {
	a.t.Helper()
	return a.importCall(http.MethodPut, "/v1/instances/"+id+"/import/"+uid,
		map[string]string{"Content-Range": fmt.Sprintf("bytes %d-%d/%d", from, to-1, len(b))}, b[from:to])
}

// TestAPIImportResumes uploads a SQLite file in chunks, with a chunk sent
// from the wrong offset in between, then waits for the load through GET.
func TestAPIImportResumes(t *testing.T) {
	c := mustConsole(t)
	a := c.mustAPI("member@x")
	d := c.mustDatabase("pushed", snapdeck.PlanProfessional)
	file, err := os.ReadFile(goodSQLite)
	if err != nil {
		t.Fatal(err)
	}
	r := a.announce(d.ID, file, false)
	uid, _ := r.data()["upload_id"].(string)
	if r.status != http.StatusAccepted || uid == "" || r.data()["status"] != "receiving" {
		t.Fatalf("announce: got %d %s", r.status, r.raw)
	}
	third := len(file) / 3
	if r := a.chunk(d.ID, uid, file, 0, third); r.status != http.StatusOK || r.data()["received"] != float64(third) {
		t.Fatalf("first chunk: got %d %s", r.status, r.raw)
	}
	// A client that lost track sends from the wrong place: 409 with where
	// to resume, and GET says the same.
	r = a.chunk(d.ID, uid, file, 2*third, len(file))
	if r.status != http.StatusConflict || r.firstError()["reason"] != "upload-offset-mismatch" || r.header.Get("X-Snapdeck-Received") != strconv.Itoa(third) {
		t.Fatalf("chunk from the wrong offset: got %d %s", r.status, r.raw)
	}
	if r := a.importCall(http.MethodGet, "/v1/instances/"+d.ID+"/import/"+uid, nil, nil); r.data()["received"] != float64(third) {
		t.Fatalf("status: got %s", r.raw)
	}
	last := a.chunk(d.ID, uid, file, third, len(file))
	jobID, _ := last.data()["job_id"].(string)
	if last.status != http.StatusAccepted || jobID == "" {
		t.Fatalf("last chunk: got %d %s, want 202 with the load's job", last.status, last.raw)
	}
	// The upload's status follows its load job.
	c.waitJob(t, jobID)
	r = a.importCall(http.MethodGet, "/v1/instances/"+d.ID+"/import/"+uid, nil, nil)
	sid, _ := r.data()["snapshot_id"].(string)
	loads := c.loadSnapshots(t, d.ID)
	if r.data()["status"] != "loaded" || len(loads) != 1 || loads[0].ID != sid || loads[0].Reason != "push-to-cloud" {
		t.Fatalf("after the load: got %s and Load snapshots %+v; want loaded with the push-to-cloud snapshot", r.raw, loads)
	}
	if got := c.rows(t, d.ID); got != "100:5050" {
		t.Errorf("rows: got %s, want 100:5050", got)
	}
}

// TestAPIImportRefusesEarly checks what is refused before any byte is
// sent, and a file whose bytes do not match the announced SHA-256.
func TestAPIImportRefusesEarly(t *testing.T) {
	c := mustConsole(t, importLimits)
	a := c.mustAPI("member@x")
	d := c.mustDatabase("kept", snapdeck.PlanFree)
	c.exec(t, d.ID, "CREATE TABLE t (n INTEGER)")
	file, _ := os.ReadFile(goodSQLite)

	if r := a.announce(d.ID, file, false); r.status != http.StatusConflict || r.firstError()["reason"] != "database-not-empty" {
		t.Errorf("onto data without overwrite: got %d %s, want 409 database-not-empty", r.status, r.raw)
	}
	big := make([]byte, 2<<20)
	if r := a.announce(d.ID, big, true); r.status != http.StatusBadRequest || r.firstError()["reason"] != "import-too-large" {
		t.Errorf("over the limit: got %d %s, want 400 import-too-large", r.status, r.raw)
	}
	paused := c.mustDatabase("paused", snapdeck.PlanFree)
	if _, err := c.databases.Pause(context.Background(), "system", paused.ID); err != nil {
		t.Fatal(err)
	}
	if r := a.announce(paused.ID, file, true); r.status != http.StatusConflict || r.firstError()["reason"] != "ongoing-database-operation" ||
		r.firstError()["message"] != "The database is paused; push again once it is running." {
		t.Errorf("into a paused database: got %d %s, want 409 ongoing-database-operation, push again", r.status, r.raw)
	}
	if r := a.importCall(http.MethodPost, "/v1/instances/"+d.ID+"/import", nil, nil); r.status != http.StatusBadRequest || r.firstError()["field"] != "X-Snapdeck-Size" {
		t.Errorf("no size: got %d %s", r.status, r.raw)
	}
	r := a.announce(d.ID, file, true)
	uid, _ := r.data()["upload_id"].(string)
	damaged := bytes.Clone(file)
	damaged[len(damaged)/2] ^= 1
	if r := a.chunk(d.ID, uid, damaged, 0, len(damaged)); r.status != http.StatusBadRequest || r.firstError()["reason"] != "checksum-mismatch" {
		t.Errorf("damaged on the way: got %d %s, want 400 checksum-mismatch", r.status, r.raw)
	}
	if loads := c.loadSnapshots(t, d.ID); len(loads) != 0 {
		t.Errorf("Load snapshots: got %d, want none", len(loads))
	}
}

// TestAPIImportChunkStaysInsideAnnouncedSize sends chunks that do not fit
// the announced upload: each is refused with 400 and nothing is kept.
func TestAPIImportChunkStaysInsideAnnouncedSize(t *testing.T) {
	c := mustConsole(t, importLimits)
	a := c.mustAPI("member@x")
	d := c.mustDatabase("bounded", snapdeck.PlanFree)
	file := []byte("0123456789")
	big := make([]byte, 20<<20)
	cases := []struct {
		name  string
		rng   string
		body  []byte
		chunk bool // sent with chunked transfer encoding: no Content-Length
	}{
		{"ends past the announced size", "bytes 0-20971515/10", big[:20971516], false},
		{"ends past it, one byte", "bytes 0-10/10", []byte("0123456789a"), false},
		{"total differs from the announced size", "bytes 0-9/11", file, false},
		{"body shorter than its range", "bytes 0-9/10", file[:5], false},
		{"body longer than its range", "bytes 0-4/10", file, false},
		{"chunked body shorter than its range", "bytes 0-9/10", file[:5], true},
		{"chunked body longer than its range", "bytes 0-4/10", file, true},
	}
	for _, tc := range cases {
		r := a.announce(d.ID, file, true)
		uid, _ := r.data()["upload_id"].(string)
		if uid == "" {
			t.Fatalf("announce: got %d %s", r.status, r.raw)
		}
		req, _ := http.NewRequest(http.MethodPut, a.base+"/v1/instances/"+d.ID+"/import/"+uid, bytes.NewReader(tc.body))
		if tc.chunk {
			req.Body = io.NopCloser(bytes.NewReader(tc.body))
			req.ContentLength = -1
		}
		req.Header.Set("Authorization", "Bearer "+a.token)
		req.Header.Set("Content-Range", tc.rng)
		r = callAPI(t, req)
		if r.status != http.StatusBadRequest || r.firstError()["field"] != "Content-Range" {
			t.Errorf("%s: got %d %s, want 400 on Content-Range", tc.name, r.status, r.raw)
		}
		r = a.importCall(http.MethodGet, "/v1/instances/"+d.ID+"/import/"+uid, nil, nil)
		if r.data()["received"] != float64(0) || r.data()["status"] != "receiving" {
			t.Errorf("%s: after the refusal got %s, want 0 bytes received, still receiving", tc.name, r.raw)
		}
		// The whole file then still goes through, from byte 0.
		if r := a.chunk(d.ID, uid, file, 0, len(file)); r.status == http.StatusConflict {
			t.Errorf("%s: resending from 0 got %d %s", tc.name, r.status, r.raw)
		}
	}
	if loads := c.loadSnapshots(t, d.ID); len(loads) != 0 {
		t.Errorf("Load snapshots: got %d, want none (the file is not a database)", len(loads))
	}
}

// endlessSQL is the 117-byte SQL text: a recursive CTE that never
// ends.
var endlessSQL = []byte("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c;\n")

// startEndlessCheck uploads endlessSQL into database id through the API,
// with the last chunk's request cancelled by the returned function, and
// returns once the console is checking it.
func startEndlessCheck(t *testing.T, a *apiClient, id string) (uid string, leave func()) {
	t.Helper()
	r := a.announce(id, endlessSQL, true)
	uid, _ = r.data()["upload_id"].(string)
	if r.status != http.StatusAccepted {
		t.Fatalf("announce into %s: got %d %s", id, r.status, r.raw)
	}
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, a.base+"/v1/instances/"+id+"/import/"+uid, bytes.NewReader(endlessSQL))
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", len(endlessSQL)-1, len(endlessSQL)))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	}()
	a.waitUpload(id, uid, "checking", 10*time.Second)
	return uid, func() { cancel(); <-done }
}

// waitUpload polls an upload until its status is want, and fails the test
// when it is not within d.
func (a *apiClient) waitUpload(id, uid, want string, d time.Duration) apiReply {
	a.t.Helper()
	deadline := time.Now().Add(d)
	for {
		r := a.importCall(http.MethodGet, "/v1/instances/"+id+"/import/"+uid, nil, nil)
		if r.data()["status"] == want {
			return r
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("upload %s: got %s after %s, want status %s", uid, r.raw, d, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAPIImportChecksAreBounded runs the endless SQL text through
// the API: a second load into the same database is refused with 409
// before any work, through the API and the console form; one check over
// the console-wide cap is refused with 429; and a check stops when its
// client goes away.
func TestAPIImportChecksAreBounded(t *testing.T) {
	c := mustConsole(t, func(cfg *web.Config) { cfg.ImportCheckTimeout = time.Minute })
	a := c.mustAPI("member@x")
	first := c.mustDatabase("first", snapdeck.PlanFree)
	second := c.mustDatabase("second", snapdeck.PlanFree)
	third := c.mustDatabase("third", snapdeck.PlanFree)

	uid, leave := startEndlessCheck(t, a, first.ID)
	if r := a.announce(first.ID, endlessSQL, true); r.status != http.StatusConflict || r.firstError()["reason"] != "ongoing-database-operation" {
		t.Errorf("second upload into the same database: got %d %s, want 409 ongoing-database-operation", r.status, r.raw)
	}
	res, body := c.newClient("member@x").upload(first.ID, "again.sql", bytes.NewReader(endlessSQL))
	if res.StatusCode != http.StatusConflict || !strings.Contains(body, "Another file is being checked for loading into first") {
		t.Errorf("console upload into the same database: got %d, want 409 with the reason", res.StatusCode)
	}

	// The default cap is two checks at once: a third is refused at once.
	_, leaveSecond := startEndlessCheck(t, a, second.ID)
	r := a.announce(third.ID, endlessSQL, true)
	thirdUID, _ := r.data()["upload_id"].(string)
	r = a.chunk(third.ID, thirdUID, endlessSQL, 0, len(endlessSQL))
	if r.status != http.StatusTooManyRequests || r.firstError()["reason"] != "import-checks-busy" {
		t.Errorf("a third check at once: got %d %s, want 429 import-checks-busy", r.status, r.raw)
	}
	leaveSecond()

	// The client of the first check goes away: the check stops within
	// moments, not at its one-minute limit, and the database takes loads
	// again.
	left := time.Now()
	leave()
	r = a.waitUpload(first.ID, uid, "failed", 5*time.Second)
	t.Logf("the check stopped %s after its client left: %s", time.Since(left), r.data()["error"])
	if msg, _ := r.data()["error"].(string); !strings.HasPrefix(msg, "The check of the file stopped before it ended: its client went away") {
		t.Errorf("the stopped check: got %q, want it stopped because its client left", msg)
	}
	if loads := c.loadSnapshots(t, first.ID); len(loads) != 0 {
		t.Errorf("Load snapshots: got %d, want none", len(loads))
	}
	if r := a.announce(first.ID, endlessSQL, true); r.status != http.StatusAccepted {
		t.Errorf("an upload after the check stopped: got %d %s, want 202", r.status, r.raw)
	}
}

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
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
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
	if r := a.chunk(d.ID, uid, file, third, len(file)); r.status != http.StatusAccepted || r.data()["job_id"] == "" {
		t.Fatalf("last chunk: got %d %s, want 202 with the load's job", r.status, r.raw)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		r = a.importCall(http.MethodGet, "/v1/instances/"+d.ID+"/import/"+uid, nil, nil)
		if s := r.data()["status"]; s == "loaded" || s == "failed" || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
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
	if _, err := c.databases.Pause(context.Background(), paused.ID); err != nil {
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

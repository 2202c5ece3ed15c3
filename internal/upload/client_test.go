package upload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// TestClient sends the three requests to a console stand-in that checks
// what arrives and answers as docs/api.md says: the upload object, an
// error envelope with its reason and headers, or a body that is no JSON.
func TestClient(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.EscapedPath()+" "+r.Header.Get("Authorization")+" "+
			r.Header.Get(HeaderSize)+r.Header.Get(HeaderContentRange))
		switch r.Method {
		case http.MethodPost:
			w.WriteHeader(http.StatusAccepted)
			json.NewEncoder(w).Encode(map[string]any{"data": Reply{UploadID: "u1", Size: 10, Status: StatusReceiving}})
		case http.MethodPut:
			w.Header().Set(HeaderReceived, "4")
			w.WriteHeader(http.StatusConflict)
			w.Write([]byte(`{"errors":[{"message":"The console has 4 bytes","reason":"upload-offset-mismatch","status":"x"}]}`))
		case http.MethodGet:
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("<html>proxy error</html>"))
		}
	}))
	defer srv.Close()
	c := &Client{HTTP: srv.Client(), URL: srv.URL, Token: "tok"}
	ctx := context.Background()

	r, err := c.Announce(ctx, "a1b2c3d4", Announce{Size: 10, SHA256: strings.Repeat("0", 64)})
	if err != nil || r.UploadID != "u1" || r.Status != StatusReceiving {
		t.Errorf("Announce: got %+v, %v", r, err)
	}
	_, err = c.PutChunk(ctx, "a1b2c3d4", "u1", ContentRange{0, 9, 10}, strings.NewReader("0123456789"))
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusConflict || ae.Reason != ReasonOffsetMismatch || ae.Header.Get(HeaderReceived) != "4" || ae.Transient() {
		t.Errorf("PutChunk: got %#v, want a 409 offset mismatch telling 4 bytes, not transient", err)
	}
	_, err = c.Status(ctx, "a1b2c3d4", "u1")
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || !ae.Transient() || ae.Error() != "the console answered 503" {
		t.Errorf("Status: got %v, want a transient 503", err)
	}
	want := []string{
		"POST /v1/instances/a1b2c3d4/import Bearer tok 10",
		"PUT /v1/instances/a1b2c3d4/import/u1 Bearer tok bytes 0-9/10",
		"GET /v1/instances/a1b2c3d4/import/u1 Bearer tok ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// console serves a Service over HTTP the way web's handlers do, with
// faults injected into chosen chunk requests.
type console struct {
	mu    sync.Mutex
	s     *Service
	puts  int
	fault func(n int, w http.ResponseWriter, r *http.Request, s *Service) bool
}

func (c *console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	s := c.s
	c.puts += map[bool]int{true: 1}[r.Method == http.MethodPut]
	n := c.puts
	c.mu.Unlock()
	if r.Method == http.MethodPut && c.fault != nil && c.fault(n, w, r, s) {
		return
	}
	uid := strings.TrimPrefix(r.URL.Path, Path(db.ID)+"/")
	var rep Reply
	var err error
	status := http.StatusOK
	switch r.Method {
	case http.MethodPost:
		var a Announce
		if a, err = ParseAnnounce(r.Header); err == nil {
			rep, err = s.Announce(r.Context(), db, a, "key push")
		}
	case http.MethodPut:
		var started bool
		rep, started, err = s.Put(r.Context(), db.ID, uid, Chunk{Range: r.Header.Get(HeaderContentRange), Length: r.ContentLength, Body: r.Body})
		if started {
			status = http.StatusAccepted
		}
	case http.MethodGet:
		rep, err = s.Status(r.Context(), db.ID, uid)
	}
	if err != nil {
		e, _ := snapdeck.AsError(err)
		status = map[snapdeck.Code]int{snapdeck.NotFound: 404, snapdeck.Conflict: 409, snapdeck.Busy: 409, snapdeck.Invalid: 400}[e.Code]
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"message": e.Message, "reason": e.Reason}}})
		return
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"data": rep})
}

// TestSend sends a file through a chunk cut mid-way, a 503 and a restart
// of the console that forgets the upload: Send resumes from what arrived,
// retries, starts over once, and the load gets the file as it was.
func TestSend(t *testing.T) {
	e := newEnv(t)
	c := &console{s: e.s}
	c.fault = func(n int, w http.ResponseWriter, r *http.Request, s *Service) bool {
		switch n {
		case 2: // the network drops the chunk after 1000 bytes
			body := io.MultiReader(io.LimitReader(r.Body, 1000), iotest.ErrReader(io.ErrUnexpectedEOF))
			s.Put(r.Context(), db.ID, strings.TrimPrefix(r.URL.Path, Path(db.ID)+"/"), Chunk{Range: r.Header.Get(HeaderContentRange), Length: r.ContentLength, Body: body})
			panic(http.ErrAbortHandler)
		case 3:
			http.Error(w, `{"errors":[{"message":"busy","reason":"internal-error"}]}`, http.StatusServiceUnavailable)
			return true
		case 5: // the console restarts and forgets its uploads
			c.mu.Lock()
			c.s = New(Config{Loader: e.l, FindJob: e.l.FindJob, Clock: e.clock, Limits: e.s.cfg.Limits})
			t.Cleanup(func() { c.s.Close(context.Background()) })
			c.mu.Unlock()
		}
		return false
	}
	srv := httptest.NewServer(c)
	defer srv.Close()
	file := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	sum := sha256.Sum256(file)
	retry := func(what string, op func() error) error {
		var err error
		for range 5 {
			var ae *APIError
			if err = op(); err == nil || (errors.As(err, &ae) && !ae.Transient()) {
				return err
			}
		}
		return err
	}
	var restarts int
	var seen []int64
	cl := &Client{HTTP: srv.Client(), URL: srv.URL}
	up, err := cl.Send(context.Background(), db.ID, bytes.NewReader(file), Announce{Size: int64(len(file)), SHA256: hex.EncodeToString(sum[:])},
		SendOptions{ChunkSize: 10000, Retry: retry, Progress: func(n int64) { seen = append(seen, n) }, Restarted: func() { restarts++ }})
	if err != nil || up.Status != StatusLoading || up.JobID == "" {
		t.Fatalf("Send: got %+v, %v; want loading", up, err)
	}
	if !bytes.Equal(e.l.files[db.ID], file) {
		t.Errorf("the load got %d bytes, not the file sent", len(e.l.files[db.ID]))
	}
	if restarts != 1 || c.puts < 10 {
		t.Errorf("restarts %d, PUTs %d; want 1 restart and the chunks sent again", restarts, c.puts)
	}
	// Resumed from the 11000 bytes that arrived, the chunks end at 21000
	// and 31000 until the restart sends them from 0 again.
	if !slices.Equal(seen[:5], []int64{0, 10000, 21000, 31000, 0}) || seen[len(seen)-1] != int64(len(file)) {
		t.Errorf("progress %v: want 0, 10000, 21000, 31000, 0 (the restart), ..., %d", seen, len(file))
	}
	e.l.end(up.JobID, snapdeck.JobSucceeded, "snap-1", "")
	up, err = cl.Wait(context.Background(), db.ID, up, time.Millisecond, retry)
	if err != nil || up.Status != StatusLoaded || up.SnapshotID != "snap-1" {
		t.Errorf("Wait: got %+v, %v; want loaded with snap-1", up, err)
	}
}

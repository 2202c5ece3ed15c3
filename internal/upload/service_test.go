package upload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// loads stands in for database.Snapshots at the Loader seam: it keeps the
// files handed to Load (and removes them, as Load does) and the jobs it
// started, whose outcome the test decides.
type loads struct {
	dir      string
	checkErr error
	loadErr  error
	// held, when set, holds Load (the file being checked) until closed;
	// entered is told when Load begins.
	held    chan struct{}
	entered chan struct{}

	mu    sync.Mutex
	files map[string][]byte // database id -> the file Load was given
	jobs  map[string]snapdeck.Job
}

func (l *loads) CheckLoad(ctx context.Context, d snapdeck.Database, overwrite bool) error {
	return l.checkErr
}

func (l *loads) UploadDir() (string, error) { return l.dir, nil }

func (l *loads) Load(ctx context.Context, dbID string, src database.LoadSource, actor string) (snapdeck.Job, error) {
	defer os.Remove(src.Path)
	if l.held != nil {
		l.entered <- struct{}{}
		<-l.held
	}
	b, err := os.ReadFile(src.Path)
	if err != nil {
		return snapdeck.Job{}, err
	}
	if l.loadErr != nil {
		return snapdeck.Job{}, l.loadErr
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.files[dbID] = b
	j := snapdeck.Job{ID: fmt.Sprintf("job-%d", len(l.jobs)+1), Kind: snapdeck.JobLoad, DatabaseID: dbID, Actor: actor, Status: snapdeck.JobRunning}
	l.jobs[j.ID] = j
	return j, nil
}

func (l *loads) FindJob(ctx context.Context, id string) (snapdeck.Job, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	j, ok := l.jobs[id]
	if !ok {
		return j, &snapdeck.Error{Code: snapdeck.NotFound, Message: "no such job"}
	}
	return j, nil
}

// end ends job id as the load job would.
func (l *loads) end(id string, status snapdeck.JobStatus, snapshotID, msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	j := l.jobs[id]
	j.Status, j.SnapshotID, j.Error = status, snapshotID, msg
	l.jobs[id] = j
}

// env is a Service over a loads and a fake clock.
type env struct {
	s     *Service
	l     *loads
	clock *clockwork.FakeClock
	swept chan []string
}

func newEnv(t *testing.T, configure ...func(*Config)) *env {
	t.Helper()
	e := &env{l: &loads{dir: t.TempDir(), files: map[string][]byte{}, jobs: map[string]snapdeck.Job{}},
		clock: clockwork.NewFakeClockAt(time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)), swept: make(chan []string, 16)}
	cfg := Config{Loader: e.l, FindJob: e.l.FindJob, Clock: e.clock, swept: func(ids []string) { e.swept <- ids }}
	cfg.Limits.MaxSize = 1 << 20
	for _, f := range configure {
		f(&cfg)
	}
	e.s = New(cfg)
	t.Cleanup(func() { e.s.Close(context.Background()) })
	return e
}

var db = snapdeck.Database{ID: "a1b2c3d4", Name: "app", Status: snapdeck.StatusRunning}

// announce starts an upload of b into db and fails the test if refused.
func (e *env) announce(t *testing.T, b []byte) Reply {
	t.Helper()
	sum := sha256.Sum256(b)
	r, err := e.s.Announce(context.Background(), db, Announce{Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:]), Filename: "app.db"}, "key push")
	if err != nil {
		t.Fatalf("announce: %v", err)
	}
	return r
}

// put sends b[from:to] of an upload of b.
func (e *env) put(uid string, b []byte, from, to int) (Reply, bool, error) {
	return e.s.Put(context.Background(), db.ID, uid, Chunk{Range: fmt.Sprintf("bytes %d-%d/%d", from, to-1, len(b)),
		Length: int64(to - from), Body: bytes.NewReader(b[from:to])})
}

// TestStateMachine walks an upload through its states: receiving in
// chunks (one from the wrong place refused, with where to resume), then
// loading with the job the chunk that completes the file started, then
// loaded or failed as the job ends; a chunk after that writes nothing.
func TestStateMachine(t *testing.T) {
	for _, end := range []struct {
		status     snapdeck.JobStatus
		want, snap string
	}{
		{snapdeck.JobSucceeded, StatusLoaded, "snap-1"},
		{snapdeck.JobFailed, StatusFailed, ""},
	} {
		e := newEnv(t)
		file := bytes.Repeat([]byte("0123456789"), 1000)
		r := e.announce(t, file)
		if r.Status != StatusReceiving || r.Received != 0 || r.Size != int64(len(file)) || r.InstanceID != db.ID {
			t.Fatalf("announced: got %+v, want receiving 0 of %d", r, len(file))
		}
		uid := r.UploadID
		if r, started, err := e.put(uid, file, 0, 4000); err != nil || started || r.Status != StatusReceiving || r.Received != 4000 {
			t.Fatalf("first chunk: got %+v, %v, %v; want receiving 4000", r, started, err)
		}
		r, _, err := e.put(uid, file, 6000, len(file))
		if snapdeck.ErrorCode(err) != snapdeck.Conflict || r.Received != 4000 {
			t.Fatalf("chunk from the wrong place: got %+v, %v; want a conflict telling 4000 received", r, err)
		}
		r, started, err := e.put(uid, file, 4000, len(file))
		if err != nil || !started || r.Status != StatusLoading || r.JobID == "" {
			t.Fatalf("last chunk: got %+v, %v, %v; want loading with a job", r, started, err)
		}
		if got := e.l.files[db.ID]; !bytes.Equal(got, file) {
			t.Fatalf("Load was given %d bytes, want the %d sent", len(got), len(file))
		}
		e.l.end(r.JobID, end.status, "snap-1", "the swap failed")
		r, err = e.s.Status(context.Background(), db.ID, uid)
		if err != nil || r.Status != end.want || r.SnapshotID != end.snap {
			t.Errorf("job %s: got %+v, %v; want %s with snapshot %q", end.status, r, err, end.want, end.snap)
		}
		if end.want == StatusFailed && r.Error != "the swap failed" {
			t.Errorf("failed load: error %q, want the job's", r.Error)
		}
		if r, started, err := e.put(uid, file, 0, len(file)); err != nil || started || r.Status != end.want {
			t.Errorf("chunk after the load: got %+v, %v, %v; want the state, nothing started", r, started, err)
		}
	}
}

// TestFailedUploads: a file whose SHA-256 is not the announced one, and
// one the load refuses, end failed with the reason; the first is a
// refusal to record, both leave nothing behind.
func TestFailedUploads(t *testing.T) {
	e := newEnv(t)
	file := []byte("not what was announced")
	r := e.announce(t, []byte("what was announced, same len"[:len(file)]))
	_, _, err := e.put(r.UploadID, file, 0, len(file))
	if se, _ := snapdeck.AsError(err); se == nil || se.Reason != ReasonChecksumMismatch || !IsLoadRefusal(err) {
		t.Fatalf("damaged file: got %v, want a checksum-mismatch refusal", err)
	}
	if r, _ := e.s.Status(context.Background(), db.ID, r.UploadID); r.Status != StatusFailed || !strings.HasPrefix(r.Error, "checksum mismatch") {
		t.Errorf("after the mismatch: got %+v, want failed", r)
	}
	if len(e.l.files) != 0 {
		t.Errorf("Load was asked for a damaged file")
	}

	e.l.loadErr = &snapdeck.Error{Code: snapdeck.Invalid, Message: "the file ends early: it looks truncated"}
	r = e.announce(t, file)
	_, _, err = e.put(r.UploadID, file, 0, len(file))
	if se, _ := snapdeck.AsError(err); se == nil || se.Reason != "import-rejected" || se.Message != "The file ends early: it looks truncated." || IsLoadRefusal(err) {
		t.Fatalf("refused by the load: got %v, want import-rejected, recorded by the load", err)
	}
	if r, _ := e.s.Status(context.Background(), db.ID, r.UploadID); r.Status != StatusFailed || r.Error != "the file ends early: it looks truncated" {
		t.Errorf("after the refusal: got %+v, want failed with the load's reason", r)
	}
	if left, _ := os.ReadDir(e.l.dir); len(left) != 0 {
		t.Errorf("upload directory: %d files left, want none", len(left))
	}
}

// TestAnnounceRefusals: over the size limit and a busy database are
// refused before any byte, as refusals to record.
func TestAnnounceRefusals(t *testing.T) {
	e := newEnv(t)
	_, err := e.s.Announce(context.Background(), db, Announce{Size: 2 << 20, SHA256: strings.Repeat("0", 64)}, "key push")
	if se, _ := snapdeck.AsError(err); se == nil || se.Reason != "import-too-large" || !IsLoadRefusal(err) {
		t.Errorf("over the limit: got %v, want import-too-large", err)
	}
	e.l.checkErr = &snapdeck.Error{Code: snapdeck.Busy, Reason: "ongoing-database-operation", Message: "load it once it is running"}
	paused := db
	paused.Status = snapdeck.StatusPaused
	_, err = e.s.Announce(context.Background(), paused, Announce{Size: 10, SHA256: strings.Repeat("0", 64)}, "key push")
	if se, _ := snapdeck.AsError(err); se == nil || se.Message != "The database is paused; push again once it is running." || !IsLoadRefusal(err) {
		t.Errorf("paused database: got %v, want push again once it is running", err)
	}
	if left, _ := os.ReadDir(e.l.dir); len(left) != 0 {
		t.Errorf("upload directory: %d files left, want none", len(left))
	}
}

// TestChunkChecks sends chunks that do not fit the upload: each is refused
// on Content-Range, nothing of it is kept, and the file then goes through
// from byte 0.
func TestChunkChecks(t *testing.T) {
	file := []byte("0123456789")
	cases := []struct {
		name   string
		rng    string
		length int64 // -1: unknown, as with chunked transfer encoding
		body   io.Reader
	}{
		{"not a range", "bytes=0-9", 10, bytes.NewReader(file)},
		{"end before start", "bytes 5-4/10", 0, bytes.NewReader(nil)},
		{"negative start", "bytes -1-9/10", 11, bytes.NewReader(file)},
		{"over MaxChunk", fmt.Sprintf("bytes 0-%d/10", MaxChunk), MaxChunk + 1, bytes.NewReader(file)},
		{"ends past the announced size", "bytes 0-10/10", 11, bytes.NewReader([]byte("0123456789a"))},
		{"total differs from the announced size", "bytes 0-9/11", 10, bytes.NewReader(file)},
		{"length differs from the range", "bytes 0-9/10", 5, bytes.NewReader(file[:5])},
		{"body shorter than its range", "bytes 0-9/10", -1, bytes.NewReader(file[:5])},
		{"body longer than its range", "bytes 0-4/10", -1, bytes.NewReader(file)},
		{"body longer, arriving a byte at a time", "bytes 0-4/10", -1, iotest.OneByteReader(bytes.NewReader(file))},
	}
	e := newEnv(t)
	for _, tc := range cases {
		r := e.announce(t, file)
		_, _, err := e.s.Put(context.Background(), db.ID, r.UploadID, Chunk{Range: tc.rng, Length: tc.length, Body: tc.body})
		if se, _ := snapdeck.AsError(err); se == nil || se.Code != snapdeck.Invalid || se.Field != HeaderContentRange {
			t.Errorf("%s: got %v, want Invalid on Content-Range", tc.name, err)
		}
		if got, _ := e.s.Status(context.Background(), db.ID, r.UploadID); got.Received != 0 || got.Status != StatusReceiving {
			t.Errorf("%s: after the refusal got %+v, want 0 received, still receiving", tc.name, got)
		}
		if _, _, err := e.put(r.UploadID, file, 0, len(file)); err != nil {
			t.Errorf("%s: the whole file from 0: %v", tc.name, err)
		}
	}
}

// TestInterruptedChunkIsKept: what arrived of a chunk that stopped
// arriving is kept, and the upload resumes from there.
func TestInterruptedChunkIsKept(t *testing.T) {
	e := newEnv(t)
	file := bytes.Repeat([]byte("abcdefgh"), 512)
	r := e.announce(t, file)
	cut := io.MultiReader(bytes.NewReader(file[:1000]), iotest.ErrReader(io.ErrUnexpectedEOF))
	_, _, err := e.s.Put(context.Background(), db.ID, r.UploadID, Chunk{Range: fmt.Sprintf("bytes 0-%d/%d", len(file)-1, len(file)), Length: int64(len(file)), Body: cut})
	if se, _ := snapdeck.AsError(err); se == nil || se.Reason != "upload-interrupted" {
		t.Fatalf("cut chunk: got %v, want upload-interrupted", err)
	}
	if got, _ := e.s.Status(context.Background(), db.ID, r.UploadID); got.Received != 1000 {
		t.Fatalf("after the cut: %d received, want 1000", got.Received)
	}
	if r, started, err := e.put(r.UploadID, file, 1000, len(file)); err != nil || !started || r.Status != StatusLoading {
		t.Fatalf("resumed: got %+v, %v, %v; want loading", r, started, err)
	}
	if !bytes.Equal(e.l.files[db.ID], file) {
		t.Errorf("the resumed file differs from the one sent")
	}
}

// TestSweep forgets an upload nobody touched for the TTL, on the hourly
// sweep of the fake clock, and keeps one a chunk touched meanwhile, and
// one a request is using.
func TestSweep(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.TTL = 3 * time.Hour })
	file := []byte("0123456789")
	idle, touched, busy := e.announce(t, file), e.announce(t, file), e.announce(t, file)
	// Each announcement swept once, finding nothing.
	for range 3 {
		if ids := <-e.swept; len(ids) != 0 {
			t.Fatalf("sweep at an announcement forgot %v", ids)
		}
	}
	sweep := func() []string {
		t.Helper()
		e.clock.Advance(sweepEvery)
		select {
		case ids := <-e.swept:
			return ids
		case <-time.After(10 * time.Second):
			t.Fatal("no sweep within 10s of the clock passing an hour")
			return nil
		}
	}
	for h := 1; h <= 2; h++ {
		if ids := sweep(); len(ids) != 0 {
			t.Fatalf("sweep at %dh forgot %v, want none within the TTL", h, ids)
		}
	}
	if _, _, err := e.put(touched.UploadID, file, 0, 5); err != nil {
		t.Fatal(err)
	}
	sweep() // 3h: not yet past the TTL
	e.s.mu.Lock()
	u := e.s.uploads[busy.UploadID]
	e.s.mu.Unlock()
	u.mu.Lock()
	ids := sweep() // 4h
	u.mu.Unlock()
	if len(ids) != 1 || ids[0] != idle.UploadID {
		t.Fatalf("sweep past the TTL forgot %v, want only %s", ids, idle.UploadID)
	}
	if _, err := e.s.Status(context.Background(), db.ID, idle.UploadID); snapdeck.ErrorCode(err) != snapdeck.NotFound {
		t.Errorf("the forgotten upload: got %v, want not found", err)
	}
	if left, _ := filepath.Glob(filepath.Join(e.l.dir, "*")); len(left) != 2 {
		t.Errorf("upload directory: %d files, want the 2 kept uploads'", len(left))
	}
	if ids := sweep(); len(ids) != 1 || ids[0] != busy.UploadID {
		t.Errorf("sweep once the busy upload is free: forgot %v, want %s", ids, busy.UploadID)
	}
	if r, err := e.s.Status(context.Background(), db.ID, touched.UploadID); err != nil || r.Received != 5 {
		t.Errorf("the touched upload: got %+v, %v; want kept with 5 bytes", r, err)
	}
}

// TestClose removes the files of the uploads and stops the sweep.
func TestClose(t *testing.T) {
	e := newEnv(t)
	r := e.announce(t, []byte("0123456789"))
	<-e.swept
	if err := e.s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(e.l.dir); len(left) != 0 {
		t.Errorf("after Close: %d files left, want none", len(left))
	}
	if _, err := e.s.Status(context.Background(), db.ID, r.UploadID); snapdeck.ErrorCode(err) != snapdeck.NotFound {
		t.Errorf("after Close: got %v, want the upload forgotten", err)
	}
	e.clock.Advance(2 * sweepEvery)
	select {
	case ids := <-e.swept:
		t.Errorf("a sweep ran after Close: %v", ids)
	default:
	}
}

// TestOneCheckPerDatabase: while an upload into a database is being
// checked, a second one into it is refused at once (Busy), before the
// load marks the database; another database takes uploads.
func TestOneCheckPerDatabase(t *testing.T) {
	e := newEnv(t)
	e.l.held, e.l.entered = make(chan struct{}), make(chan struct{})
	file := []byte("0123456789")
	r := e.announce(t, file)
	done := make(chan error)
	go func() {
		_, _, err := e.put(r.UploadID, file, 0, len(file))
		done <- err
	}()
	<-e.l.entered
	if got, _ := e.s.Status(context.Background(), db.ID, r.UploadID); got.Status != StatusChecking {
		t.Fatalf("during the check: got %+v, want checking", got)
	}
	_, err := e.s.Announce(context.Background(), db, Announce{Size: 10, SHA256: strings.Repeat("0", 64)}, "key push")
	if se, _ := snapdeck.AsError(err); se == nil || se.Code != snapdeck.Busy || se.Reason != "ongoing-database-operation" || !IsLoadRefusal(err) {
		t.Errorf("second upload into the database: got %v, want Busy ongoing-database-operation", err)
	}
	other := db
	other.ID = "e5f6a7b8"
	if _, err := e.s.Announce(context.Background(), other, Announce{Size: 10, SHA256: strings.Repeat("0", 64)}, "key push"); err != nil {
		t.Errorf("upload into another database: %v", err)
	}
	close(e.l.held)
	if err := <-done; err != nil {
		t.Fatalf("the held check: %v", err)
	}
	if _, err := e.s.Announce(context.Background(), db, Announce{Size: 10, SHA256: strings.Repeat("0", 64)}, "key push"); err != nil {
		t.Errorf("upload once the check is over: %v", err)
	}
}

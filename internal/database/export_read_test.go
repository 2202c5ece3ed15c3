package database_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/dump"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// blobsSnapshot makes a database of about 2 MiB of random rows and a
// snapshot of it, whose verification may still run.
func blobsSnapshot(t *testing.T) (*env, snapdeck.Database, snapdeck.Snapshot) {
	t.Helper()
	ctx := context.Background()
	e := mustEnv(t)
	d, err := e.create(ctx, "blobs", snapdeck.PlanProfessional)
	if err != nil {
		t.Fatal(err)
	}
	e.exec(t, d.ID, "CREATE TABLE b (v BLOB)")
	e.exec(t, d.ID, "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM c WHERE n < 500) INSERT INTO b SELECT randomblob(4000) FROM c")
	s, err := e.snapshots.Snapshot(ctx, d.ID, snapdeck.SnapshotOnDemand, "test", "system")
	if err != nil {
		t.Fatal(err)
	}
	return e, d, s
}

// exportEnv is blobsSnapshot with the snapshot verified.
func exportEnv(t *testing.T) (*env, snapdeck.Database, snapdeck.Snapshot) {
	t.Helper()
	ctx := context.Background()
	e, d, s := blobsSnapshot(t)
	e.waitIdle(t) // its verification has ended
	s, err := e.snapshots.FindSnapshot(ctx, d.ID, s.ID)
	if err != nil || !s.Verified {
		t.Fatalf("snapshot: verified %v, %v; want a verified snapshot", s.Verified, err)
	}
	return e, d, s
}

// exportOnce prepares the snapshot's export afresh (the prepared file of
// an earlier one removed), reads it as a download does and waits for its
// job: it returns what the download read, and the first error.
func exportOnce(t *testing.T, e *env, d snapdeck.Database, s snapdeck.Snapshot) ([]byte, error) {
	t.Helper()
	prepared, _ := filepath.Glob(filepath.Join(e.dir, "tmp", "exports", "*.dump"))
	for _, f := range prepared {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	x, err := e.snapshots.Export(context.Background(), d.ID, s.ID, "ann@example.com")
	if err != nil {
		return nil, err
	}
	defer x.Close()
	var out bytes.Buffer
	_, err = io.Copy(&out, x)
	if werr := x.Wait(); err == nil {
		err = werr
	}
	return out.Bytes(), err
}

// A byte changed in a pack after the snapshot was verified fails the
// export with an error that says the snapshot is corrupt, and no .dump is
// kept for later downloads.
func TestExportOfACorruptedPackFails(t *testing.T) {
	e, d, s := exportEnv(t)
	// The export of the intact snapshot works, and keeps the store's
	// files open for the next: the corruption lands in files already open.
	out, err := exportOnce(t, e, d, s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dump.Verify(context.Background(), bytes.NewReader(out), t.TempDir(), dump.Limits{}); err != nil {
		t.Fatalf("the intact export: %v", err)
	}
	packs, _ := filepath.Glob(filepath.Join(e.dir, "snapshots", "packs", "*"))
	var biggest string
	var size int64
	for _, p := range packs {
		if fi, err := os.Stat(p); err == nil && fi.Size() > size {
			biggest, size = p, fi.Size()
		}
	}
	if size < 1<<20 {
		t.Fatalf("the largest pack has %d bytes; want the pages of the 2 MiB database", size)
	}
	f, err := os.OpenFile(biggest, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, size/3); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x10
	if _, err := f.WriteAt(b, size/3); err != nil {
		t.Fatal(err)
	}
	f.Close()

	_, err = exportOnce(t, e, d, s)
	if err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("export of a snapshot with a corrupted pack: got %v, want an error saying it is corrupt", err)
	}
	if prepared, _ := filepath.Glob(filepath.Join(e.dir, "tmp", "exports", "*.dump")); len(prepared) != 0 {
		t.Errorf("a failed export left %v in the export cache", prepared)
	}
}

// Exports keep no file open once done: the snapshot store keeps a bounded
// number of its packs open, however many exports read them.
func TestExportsLeakNoFiles(t *testing.T) {
	e, d, s := exportEnv(t)
	if _, err := exportOnce(t, e, d, s); err != nil {
		t.Fatal(err)
	}
	before := countFDs(t)
	for range 20 {
		if _, err := exportOnce(t, e, d, s); err != nil {
			t.Fatal(err)
		}
	}
	if after := countFDs(t); after > before {
		t.Errorf("%d files open after 20 more exports, %d after the first", after, before)
	}
}

// When the writers of the cached copy are all busy, the preparation
// writes through the page cache rather than wait for them: with none at
// all, every chunk goes that way, and the download and the cached copy
// are the same whole .dump.
func TestExportDoesNotWaitForItsDirectWriters(t *testing.T) {
	defer database.SetPrepWriters(0)()
	e, d, s := exportEnv(t)
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := exportOnce(t, e, d, s)
		done <- result{out, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the export did not end in 30 s: it waits for writers that are not there")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	cached, err := os.ReadFile(filepath.Join(e.dir, "tmp", "exports", s.ID+".dump"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.out, cached) {
		t.Errorf("the download read %d bytes, the cached copy holds %d that differ", len(r.out), len(cached))
	}
	if _, err := dump.Verify(context.Background(), bytes.NewReader(cached), t.TempDir(), dump.Limits{}); err != nil {
		t.Errorf("the cached copy: %v", err)
	}
}

// The export's job shows its stage and size from the start, and all of
// it done at the end.
func TestExportJobShowsItsProgress(t *testing.T) {
	ctx := context.Background()
	e, d, s := exportEnv(t)
	x, err := e.snapshots.Export(ctx, d.ID, s.ID, "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if x.JobID == "" {
		t.Fatal("a new export has no job")
	}
	j, err := e.snapshots.FindJob(ctx, x.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if j.Message != "Preparing export" || j.TotalBytes != s.SizeBytes {
		t.Errorf("the job at its start: %q, %d bytes in all; want %q, %d", j.Message, j.TotalBytes, "Preparing export", s.SizeBytes)
	}
	if _, err := io.Copy(io.Discard, x); err != nil {
		t.Fatal(err)
	}
	if err := x.Wait(); err != nil {
		t.Fatal(err)
	}
	e.waitIdle(t) // the runner records the job's end after the export's
	if j, err = e.snapshots.FindJob(ctx, x.JobID); err != nil || j.DoneBytes != s.SizeBytes || j.Status != snapdeck.JobSucceeded {
		t.Errorf("the job at its end: %s, %d of %d bytes, %v; want succeeded, all done", j.Status, j.DoneBytes, j.TotalBytes, err)
	}
}

// countFDs returns how many files this process has open.
func countFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(fds)
}

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

// blobsDatabase makes the database "blobs" in e with table b of batches
// times 500 random rows of 4,000 bytes (about 2 MiB a batch, which zstd
// cannot shrink).
func blobsDatabase(t *testing.T, e *env, batches int) snapdeck.Database {
	t.Helper()
	d, err := e.create(context.Background(), "blobs", snapdeck.PlanProfessional)
	if err != nil {
		t.Fatal(err)
	}
	e.exec(t, d.ID, "CREATE TABLE b (v BLOB)")
	for range batches {
		e.exec(t, d.ID, "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM c WHERE n < 500) INSERT INTO b SELECT randomblob(4000) FROM c")
	}
	return d
}

// blobsSnapshot makes a database of about 2 MiB of random rows and a
// snapshot of it, whose verification may still run.
func blobsSnapshot(t *testing.T) (*env, snapdeck.Database, snapdeck.Snapshot) {
	t.Helper()
	ctx := context.Background()
	e := mustEnv(t)
	d := blobsDatabase(t, e, 1)
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

// bigSnapshot makes a database of about 6 MiB of random rows, more than
// the export's cached copy may fall behind in these tests, and a
// verified snapshot of it.
func bigSnapshot(t *testing.T) (*env, snapdeck.Database, snapdeck.Snapshot) {
	t.Helper()
	ctx := context.Background()
	e := mustEnv(t)
	d := blobsDatabase(t, e, 3)
	s, err := e.snapshots.Snapshot(ctx, d.ID, snapdeck.SnapshotOnDemand, "test", "system")
	if err != nil {
		t.Fatal(err)
	}
	e.waitIdle(t)
	return e, d, s
}

// exportFiles lists the export directory.
func exportFiles(t *testing.T, e *env) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(e.dir, "tmp", "exports"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, en := range entries {
		names = append(names, en.Name())
	}
	return names
}

// The export never waits for its cached copy: with the copy's writers held
// (a disk slower than the export), the download reads the whole .dump and
// the job ends; the copy, fallen behind, is given up, not installed, and
// leaves no file. The next download prepares the export again, and with
// the writers free, that copy is kept, byte for byte what it read.
func TestExportDoesNotWaitForItsCachedCopy(t *testing.T) {
	ctx := context.Background()
	e, d, s := bigSnapshot(t)
	restoreBehind := database.SetCopyBehind(2)
	t.Cleanup(restoreBehind)
	release := database.HoldCopyWriters()
	t.Cleanup(database.ReleaseCopyWriters)
	t.Cleanup(release)

	x, err := e.snapshots.Export(ctx, d.ID, s.ID, "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		var b bytes.Buffer
		_, err := x.WriteTo(&b)
		if err == nil {
			wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			_, err = e.jobs.Wait(wctx, x.JobID)
		}
		done <- result{b.Bytes(), err}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the export did not end in 30 s: it waits for its cached copy's writers")
	}
	if r.err != nil {
		t.Fatalf("the export with its copy's writers held: %v", r.err)
	}
	if len(r.out) < 5<<20 {
		t.Fatalf("the download read %d bytes, want the whole export of more than 5 MiB", len(r.out))
	}
	if _, err := dump.Verify(ctx, bytes.NewReader(r.out), t.TempDir(), dump.Limits{}); err != nil {
		t.Fatalf("the download: %v", err)
	}
	if err := x.Wait(); snapdeck.ErrorCode(err) != snapdeck.Busy {
		t.Errorf("waiting for the export to be prepared: got %v, want a Busy error saying it is not kept", err)
	}
	if names := exportFiles(t, e); len(names) != 0 {
		t.Errorf("the export directory holds %v after a copy given up, want nothing", names)
	}

	release()
	restoreBehind()
	again, err := e.snapshots.Export(ctx, d.ID, s.ID, "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if again.Prepared() || again.JobID == "" || again.JobID == x.JobID {
		t.Fatalf("the next export: prepared %v, job %q (the first's %q); want it prepared again by a job of its own", again.Prepared(), again.JobID, x.JobID)
	}
	var b bytes.Buffer
	if _, err := again.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	if err := again.Wait(); err != nil {
		t.Fatal(err)
	}
	cached, err := os.ReadFile(filepath.Join(e.dir, "tmp", "exports", s.ID+".dump"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cached, b.Bytes()) || !bytes.Equal(cached, r.out) {
		t.Errorf("the cached copy holds %d bytes, the downloads read %d and %d: want the same .dump", len(cached), b.Len(), len(r.out))
	}
}

// Once its export's cached copy is given up, a download that fell behind
// what the preparation keeps in memory ends with an error that says so,
// rather than wait or read a torn file; and a download that starts then
// does not follow that preparation (whose start may be gone) but prepares
// the export again, and reads it whole.
func TestDownloadBehindAGivenUpCopyFails(t *testing.T) {
	ctx := context.Background()
	e, d, s := bigSnapshot(t)
	t.Cleanup(database.SetFollowWindow(2, 10*time.Second))
	t.Cleanup(database.SetCopyBehind(1))
	release := database.HoldCopyWriters()
	t.Cleanup(database.ReleaseCopyWriters)
	t.Cleanup(release)

	behind, err := e.snapshots.Export(ctx, d.ID, s.ID, "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	defer behind.Close()
	ahead, err := e.snapshots.Export(ctx, d.ID, s.ID, "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	defer ahead.Close()
	if ahead.JobID != behind.JobID {
		t.Fatalf("the second download follows job %q, want the first's %q", ahead.JobID, behind.JobID)
	}
	head := make([]byte, 4<<20)
	if _, err := io.ReadFull(ahead, head); err != nil {
		t.Fatal(err)
	}
	// The preparation is 4 MiB in and keeps 2: its copy, whose writers
	// hold at most 2 chunks and the queue 1, is given up, and it now
	// waits for ahead, up to 10 s. A download starting now prepares anew.
	late, err := e.snapshots.Export(ctx, d.ID, s.ID, "cat@example.com")
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	if late.Prepared() || late.JobID == behind.JobID {
		t.Fatalf("a download after the copy was given up: prepared %v, job %q; want a new preparation, not %q", late.Prepared(), late.JobID, behind.JobID)
	}
	var whole bytes.Buffer
	if _, err := late.WriteTo(&whole); err != nil {
		t.Fatal(err)
	}
	if _, err := dump.Verify(ctx, bytes.NewReader(whole.Bytes()), t.TempDir(), dump.Limits{}); err != nil {
		t.Fatalf("the late download: %v", err)
	}
	rest, err := io.ReadAll(ahead)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(head, rest...), whole.Bytes()) {
		t.Errorf("the download that read along read %d bytes, the late one %d: want the same .dump", len(head)+len(rest), whole.Len())
	}
	_, err = io.ReadAll(behind)
	if snapdeck.ErrorCode(err) != snapdeck.Busy || !strings.Contains(err.Error(), "fell too far behind") {
		t.Errorf("the download left behind: got %v, want a Busy error saying it fell too far behind", err)
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

package database_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/store"
)

// exportCap is the export cache size of the test below: room for two
// exports of its database (1 MB of random bytes, which zstd cannot
// shrink) but not three.
const exportCap = 2_500_000

// TestExportCacheStaysUnderItsSize prepares exports of five snapshots
// under a cap that holds two: the oldest go first, but never one that is
// being downloaded, and what was kept past the cap for a download goes
// when the download ends.
func TestExportCacheStaysUnderItsSize(t *testing.T) {
	ctx := context.Background()
	e := mustEnv(t, func(c *database.Config) { c.Snapshots.ExportCacheSize = exportCap })
	d, err := e.create(ctx, "blobs", snapdeck.PlanProfessional)
	if err != nil {
		t.Fatal(err)
	}
	e.exec(t, d.ID, "CREATE TABLE b (v BLOB)")
	e.exec(t, d.ID, "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM c WHERE n < 250) INSERT INTO b SELECT randomblob(4000) FROM c")
	var snaps []string
	for range 5 {
		s, err := e.snapshots.Snapshot(ctx, d.ID, snapdeck.SnapshotOnDemand, "test", "system")
		if err != nil {
			t.Fatal(err)
		}
		snaps = append(snaps, s.ID)
	}
	dir := filepath.Join(e.dir, "tmp", "exports")
	export := func(i int) *database.Export {
		t.Helper()
		exp, err := e.snapshots.Export(ctx, d.ID, snaps[i], "ann@example.com")
		if err != nil {
			t.Fatalf("export %d: %v", i, err)
		}
		if err := exp.Wait(); err != nil {
			t.Fatalf("export %d: %v", i, err)
		}
		return exp
	}
	// cached returns which snapshots have a prepared export, and the bytes
	// the directory takes.
	cached := func() ([]int, int64) {
		t.Helper()
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var have []int
		var used int64
		for _, en := range entries {
			fi, _ := en.Info()
			used += fi.Size()
			if i := slices.Index(snaps, en.Name()[:len(en.Name())-len(".dump")]); i >= 0 {
				have = append(have, i)
			}
		}
		slices.Sort(have)
		return have, used
	}
	check := func(step string, want ...int) {
		t.Helper()
		have, used := cached()
		if !slices.Equal(have, want) {
			t.Errorf("%s: exports of snapshots %v are kept, want %v", step, have, want)
		}
		if used > exportCap {
			t.Errorf("%s: exports take %d bytes, over the cap of %d", step, used, exportCap)
		}
	}

	first := export(0)
	size, _ := first.Seek(0, io.SeekEnd)
	first.Close()
	t.Logf("one export is %d bytes; the cap is %d", size, exportCap)
	export(1).Close()
	check("two exports", 0, 1)
	export(2).Close()
	check("a third export", 1, 2)

	// A download of 1 holds its file: 2 goes for 3 although 1 is older.
	reading := export(1)
	// Exports differ by a byte or two: their manifests' ids compress
	// differently.
	readingSize, err := reading.Seek(0, io.SeekEnd)
	if err != nil {
		t.Fatal(err)
	}
	export(3).Close()
	check("an export while 1 is downloaded", 1, 3)
	if _, err := reading.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(io.Discard, reading); err != nil || n != readingSize {
		t.Errorf("the download of 1 read %d bytes (%v), want %d", n, err, readingSize)
	}

	// With 1 and 3 both downloaded, 4 passes the cap; once the downloads
	// end, the cache is trimmed back under it.
	other := export(3)
	latest := export(4)
	if have, used := cached(); !slices.Equal(have, []int{1, 3, 4}) || used <= exportCap {
		t.Errorf("three downloads at once: exports %v (%d bytes) kept, want 1, 3 and 4, over the cap", have, used)
	}
	reading.Close()
	other.Close()
	check("after the downloads end", 3, 4)
	latest.Close()
	check("after the last download ends", 3, 4)

	// A reused export is the prepared file itself, not a new preparation.
	again := export(4)
	defer again.Close()
	if fi, err := again.Stat(); err != nil || !fi.ModTime().Equal(latest.ModTime) {
		t.Errorf("export of 4 again: modified %v (%v), want the prepared file of %v", fi.ModTime(), err, latest.ModTime)
	}
}

// TestReclaimDeletesExpiredSessions checks that the housekeeping the
// scheduler runs removes sign-in sessions past their expiry, and only
// those.
func TestReclaimDeletesExpiredSessions(t *testing.T) {
	ctx := context.Background()
	e := mustEnv(t)
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	e.db.SetNow(func() time.Time { return now })
	for _, s := range []store.Session{
		{ID: "expired", UserID: 0, Data: "x", ExpiresAt: now.Add(-time.Minute)},
		{ID: "live", UserID: 0, Data: "x", ExpiresAt: now.Add(time.Hour)},
	} {
		if err := e.db.SaveSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.snapshots.Reclaim(ctx); err != nil {
		t.Fatal(err)
	}
	// Seen from before its expiry, a session row that is still there would
	// be found.
	e.db.SetNow(func() time.Time { return now.Add(-2 * time.Hour) })
	if _, err := e.db.FindSession(ctx, "expired"); snapdeck.ErrorCode(err) != snapdeck.NotFound {
		t.Errorf("expired session after Reclaim: got %v, want it deleted", err)
	}
	if _, err := e.db.FindSession(ctx, "live"); err != nil {
		t.Errorf("live session after Reclaim: %v, want it kept", err)
	}
}

// TestTwoDownloadsShareOnePreparation starts a second download of a
// snapshot while the first may still be preparing it: the second follows
// the first's preparation (the same job) or, if that has ended, gets the
// prepared file; never a second preparation. Both read the same whole
// .dump.
func TestTwoDownloadsShareOnePreparation(t *testing.T) {
	ctx := context.Background()
	e, d, s := blobsSnapshot(t)
	first, err := e.snapshots.Export(ctx, d.ID, s.ID, "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second, err := e.snapshots.Export(ctx, d.ID, s.ID, "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if first.Prepared() || first.JobID == "" {
		t.Fatalf("the first export: prepared %v, job %q; want it followed as its job writes it", first.Prepared(), first.JobID)
	}
	if !second.Prepared() && second.JobID != first.JobID {
		t.Errorf("the second export follows job %q, want the first's %q", second.JobID, first.JobID)
	}
	read := func(exp *database.Export) []byte {
		t.Helper()
		var b bytes.Buffer
		if _, err := exp.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	a, b := read(first), read(second)
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Errorf("the two downloads read %d and %d bytes, want the same whole export", len(a), len(b))
	}
	if err := first.Wait(); err != nil {
		t.Fatal(err)
	}
	// One preparation, one file: the export directory holds only it.
	entries, err := os.ReadDir(filepath.Join(e.dir, "tmp", "exports"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != s.ID+".dump" {
		var names []string
		for _, en := range entries {
			names = append(names, en.Name())
		}
		t.Errorf("export directory holds %v, want only %s.dump", names, s.ID)
	}
}

// TestStalledDownloadDoesNotHoldUpItsExport follows the preparations of
// exports larger than what a preparation keeps in memory for its
// downloads:
//   - alone, a download that reads a MiB and stops until the job has ended:
//     the job ends without it;
//   - with another that reads along: the stalled one does not slow it;
//   - alone, a download that reads a byte at a time, each well within the
//     wait for a stalled one: the job ends without it all the same.
//
// Every download reads the whole .dump, byte for byte the prepared file
// (partly from the preparation's memory, partly from the file).
func TestStalledDownloadDoesNotHoldUpItsExport(t *testing.T) {
	ctx := context.Background()
	// A small window and a short wait, so that the test stays small and
	// quick under the race detector.
	t.Cleanup(database.SetFollowWindow(2, 200*time.Millisecond))
	e := mustEnv(t)
	// About 6 MiB that zstd cannot shrink: more than the 2 MiB the
	// preparation keeps for its downloads here.
	d := blobsDatabase(t, e, 3)
	alone, err := e.snapshots.Snapshot(ctx, d.ID, snapdeck.SnapshotOnDemand, "test", "system")
	if err != nil {
		t.Fatal(err)
	}
	e.exec(t, d.ID, "INSERT INTO b SELECT randomblob(4000)")
	along, err := e.snapshots.Snapshot(ctx, d.ID, snapdeck.SnapshotOnDemand, "test", "system")
	if err != nil {
		t.Fatal(err)
	}
	e.exec(t, d.ID, "INSERT INTO b SELECT randomblob(4000)")
	trickled, err := e.snapshots.Snapshot(ctx, d.ID, snapdeck.SnapshotOnDemand, "test", "system")
	if err != nil {
		t.Fatal(err)
	}
	e.waitIdle(t)

	export := func(s snapdeck.Snapshot, who string) *database.Export {
		t.Helper()
		x, err := e.snapshots.Export(ctx, d.ID, s.ID, who)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { x.Close() })
		if x.Prepared() {
			t.Fatal("the export is prepared already; want it followed as its job writes it")
		}
		return x
	}
	readHead := func(x *database.Export) []byte {
		t.Helper()
		head := make([]byte, 1<<20)
		if _, err := io.ReadFull(x, head); err != nil {
			t.Fatal(err)
		}
		return head
	}
	check := func(s snapdeck.Snapshot, what string, got []byte) {
		t.Helper()
		prepared, err := os.ReadFile(filepath.Join(e.dir, "tmp", "exports", s.ID+".dump"))
		if err != nil {
			t.Fatal(err)
		}
		if len(prepared) < 5<<20 {
			t.Fatalf("the export is %d bytes, want more than 5 MiB", len(prepared))
		}
		if !bytes.Equal(got, prepared) {
			t.Errorf("%s read %d bytes, not the %d of the prepared file", what, len(got), len(prepared))
		}
	}

	// Alone: the job must end while the download reads nothing.
	stalled := export(alone, "ann@example.com")
	head := readHead(stalled)
	if _, err := e.jobs.Wait(ctx, stalled.JobID); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(stalled)
	if err != nil {
		t.Fatal(err)
	}
	check(alone, "the stalled download", append(head, rest...))

	// With another download reading along, to its end, while the first
	// stalls.
	stalled = export(along, "ann@example.com")
	reading := export(along, "bob@example.com")
	head = readHead(stalled)
	var b bytes.Buffer
	if _, err := reading.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	if _, err := e.jobs.Wait(ctx, stalled.JobID); err != nil {
		t.Fatal(err)
	}
	rest, err = io.ReadAll(stalled)
	if err != nil {
		t.Fatal(err)
	}
	check(along, "the stalled download", append(head, rest...))
	check(along, "the download that read along", b.Bytes())

	// A trickle: a byte every 5 ms is progress well within a wait of a
	// second, but 4 MiB of it would take six hours.
	t.Cleanup(database.SetFollowWindow(2, time.Second))
	trickle := export(trickled, "ann@example.com")
	head = readHead(trickle)
	ended := make(chan error, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		_, err := e.jobs.Wait(wctx, trickle.JobID)
		ended <- err
	}()
	var got bytes.Buffer
	got.Write(head)
	one := make([]byte, 1)
	for waiting := true; waiting; {
		select {
		case err := <-ended:
			if err != nil {
				t.Fatalf("the export's job, with a download reading a byte every 5 ms: %v", err)
			}
			waiting = false
		case <-time.After(5 * time.Millisecond):
			if _, err := io.ReadFull(trickle, one); err != nil {
				t.Fatal(err)
			}
			got.Write(one)
		}
	}
	if _, err := got.ReadFrom(trickle); err != nil {
		t.Fatal(err)
	}
	check(trickled, "the trickling download", got.Bytes())
}

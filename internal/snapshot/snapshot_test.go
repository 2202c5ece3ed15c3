package snapshot

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/snapstore"
)

func TestCaptureAndMaterializeIncludeTheWAL(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "a.sqlite")
	db := openDB(t, path)
	insertOrders(t, db, 20000, 1)
	// Keep the last rows in the WAL only: the capture must still see them.
	if fi, err := os.Stat(path + "-wal"); err != nil || fi.Size() == 0 {
		t.Fatalf("want a non-empty WAL before capture, got %v, %v", fi, err)
	}
	want := contentDigest(t, path)
	st := openStore(t, "")
	var lastDone, lastTotal int64
	img, err := Capture(ctx, path, st, func(done, total int64) { lastDone, lastTotal = done, total })
	if err != nil {
		t.Fatalf("Capture: %v", err)
	}
	if img.Size != img.Pages*int64(img.PageSize) || lastDone != img.Size || lastTotal != img.Size {
		t.Errorf("image %+v, progress %d/%d: want size = pages × page size and progress at size", img, lastDone, lastTotal)
	}
	if img.NewBytes < img.Size {
		t.Errorf("first capture added %d bytes, want at least the image's %d", img.NewBytes, img.Size)
	}
	for _, target := range []Target{ForRestore, ForNewDatabase} {
		out := filepath.Join(dir, fmt.Sprintf("restored-%d.sqlite", target))
		if err := Materialize(ctx, st, img, out, target, nil); err != nil {
			t.Fatalf("Materialize for %d: %v", target, err)
		}
		if err := integrityCheck(ctx, out); err != nil {
			t.Errorf("materialised file for %d: %v", target, err)
		}
		if got := contentDigest(t, out); got != want {
			t.Errorf("materialised for %d: content digest %s, want %s", target, got, want)
		}
	}
	if err := Verify(ctx, st, img, t.TempDir()); err != nil {
		t.Errorf("Verify: %v", err)
	}
	r, err := OpenImage(ctx, st, img)
	if err != nil {
		t.Fatalf("OpenImage: %v", err)
	}
	h := sha256.New()
	n, err := io.Copy(h, r)
	r.Close()
	if err != nil || n != img.Size || hex.EncodeToString(h.Sum(nil)) != img.SHA256 {
		t.Errorf("OpenImage streamed %d bytes, %v, sha %x; want %d bytes with sha %s", n, err, h.Sum(nil), img.Size, img.SHA256)
	}
}

// capturedOrders creates a database of 50,000 orders and captures it into
// a new store.
func capturedOrders(t *testing.T) (path string, db *sql.DB, st *snapstore.Store, first Image) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "a.sqlite")
	db = openDB(t, path)
	insertOrders(t, db, 50000, 1)
	st = openStore(t, "")
	first, err := Capture(context.Background(), path, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	return path, db, st, first
}

func TestSecondCaptureStoresTheChange(t *testing.T) {
	ctx := context.Background()
	path, db, st, first := capturedOrders(t)
	// Change 1% of the rows in runs of 50, which rewrites about 1% of
	// the pages (a page holds about 25 rows).
	if _, err := db.Exec(`UPDATE orders SET status = 'disputed' WHERE id % 5000 < 50`); err != nil {
		t.Fatal(err)
	}
	second, err := Capture(ctx, path, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if second.Root == first.Root || second.SHA256 == first.SHA256 {
		t.Fatalf("second capture has the same root or hash as the first")
	}
	if limit := second.Size * 3 / 100; second.NewBytes > limit {
		t.Errorf("capture after a 1%% row change added %d bytes of a %d-byte image, want at most %d", second.NewBytes, second.Size, limit)
	}
	third, err := Capture(ctx, path, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if third.Root != second.Root || third.NewBytes != 0 {
		t.Errorf("capture of an unchanged database: got root %s adding %d bytes, want %s adding 0", third.Root, third.NewBytes, second.Root)
	}
}

func TestScatteredRowUpdateStoresAboutTheRows(t *testing.T) {
	ctx := context.Background()
	path, db, st, first := capturedOrders(t)
	// Every 100th row: 1% of the rows, but about a quarter of the pages.
	if _, err := db.Exec(`UPDATE orders SET amount = amount + 1 WHERE id % 100 = 0`); err != nil {
		t.Fatal(err)
	}
	want := contentDigest(t, path)
	second, err := CaptureWithBase(ctx, path, st, first.Root, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("second capture added %d bytes of %d (%.2f%%)", second.NewBytes, second.Size, 100*float64(second.NewBytes)/float64(second.Size))
	if limit := second.Size * 5 / 100; second.NewBytes > limit {
		t.Errorf("capture after updating every 100th row added %d bytes of a %d-byte image, want at most %d", second.NewBytes, second.Size, limit)
	}
	restored := filepath.Join(t.TempDir(), "restored.sqlite")
	if err := Materialize(ctx, st, second, restored, ForRestore, nil); err != nil {
		t.Fatalf("Materialize: %v", err)
	}
	if err := integrityCheck(ctx, restored); err != nil {
		t.Fatal(err)
	}
	if got := contentDigest(t, restored); got != want {
		t.Errorf("restored content digest %s, want %s", got, want)
	}
}

func TestCaptureIsConsistentUnderWriters(t *testing.T) {
	// Captures read pages the WAL may hold through SQLite and the others
	// from the file; checkpoints running meanwhile must not mix states.
	defer func(share float64) { maxWALShare = share }(maxWALShare)
	maxWALShare = 1 // read from the file even when the WAL holds most pages
	for _, tc := range []struct {
		name       string
		checkpoint bool
	}{
		{"WAL grows", false},
		{"passive checkpoints after each commit", true},
	} {
		t.Run(tc.name, func(t *testing.T) { captureUnderWriters(t, tc.checkpoint) })
	}
}

// captureUnderWriters captures three times while a writer commits, each
// commit followed by a passive checkpoint if checkpoint is set, and checks
// each image is one committed state.
func captureUnderWriters(t *testing.T, checkpoint bool) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "a.sqlite")
	db := openDB(t, path)
	insertOrders(t, db, 20000, 1)
	st := openStore(t, "")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	var commits int
	// Opened here: the writer goroutine must not call t.Fatal.
	writer := openDB(t, path)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := addOrders(writer, 50, uint64(i+2)); err != nil {
				t.Error(err)
				return
			}
			commits++
			if checkpoint {
				if _, err := writer.Exec(`PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	var imgs []Image
	for range 3 {
		img, err := Capture(ctx, path, st, nil)
		if err != nil {
			close(stop)
			wg.Wait()
			t.Fatalf("Capture under writes: %v", err)
		}
		imgs = append(imgs, img)
	}
	close(stop)
	wg.Wait()
	for i, img := range imgs {
		out := filepath.Join(dir, "restored-"+string(rune('a'+i))+".sqlite")
		if err := Materialize(ctx, st, img, out, ForRestore, nil); err != nil {
			t.Fatal(err)
		}
		if err := integrityCheck(ctx, out); err != nil {
			t.Errorf("capture %d under writes: %v", i, err)
		}
		rows, counter := rowsAndCounter(t, out)
		if rows != counter || rows%50 != 0 {
			t.Errorf("capture %d: got %d rows and counter %d, want equal multiples of 50 (one committed state)", i, rows, counter)
		}
	}
	t.Logf("%d writer commits during 3 captures", commits)
}

func TestInstall(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "a.sqlite")
	db := openDB(t, path)
	insertOrders(t, db, 2000, 1)
	st := openStore(t, "")
	img, err := Capture(ctx, path, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := contentDigest(t, path)
	insertOrders(t, db, 2000, 2)
	tmp := filepath.Join(dir, "a.sqlite.restore")
	if err := Materialize(ctx, st, img, tmp, ForRestore, nil); err != nil {
		t.Fatal(err)
	}
	// With the writer still open the WAL is not empty: installing now
	// would let SQLite replay the old WAL onto the new file.
	if err := Install(tmp, path); snapdeck.ErrorCode(err) != snapdeck.Conflict {
		t.Fatalf("Install over a live WAL: got %v, want a Conflict error", err)
	}
	db.Close()
	if err := Install(tmp, path); err != nil {
		t.Fatalf("Install: %v", err)
	}
	if err := integrityCheck(ctx, path); err != nil {
		t.Errorf("installed database: %v", err)
	}
	if got := contentDigest(t, path); got != want {
		t.Errorf("installed content digest %s, want %s", got, want)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("temporary file still there after Install: %v", err)
	}
	// The replaced file's second name goes away in the background.
	deadline := time.Now().Add(5 * time.Second)
	for {
		left, _ := filepath.Glob(path + ReplacedMarker + "*")
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replaced file still there: %v", left)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMaterializeRefusesAnExistingFileAndAMismatchedImage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "a.sqlite")
	insertOrders(t, openDB(t, path), 100, 1)
	st := openStore(t, "")
	img, err := Capture(ctx, path, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := Materialize(ctx, st, img, path, ForRestore, nil); err == nil {
		t.Errorf("Materialize over an existing file: got nil, want an error")
	}
	bad := img
	bad.SHA256 = "00" + img.SHA256[2:]
	out := filepath.Join(dir, "out.sqlite")
	if err := Materialize(ctx, st, bad, out, ForRestore, nil); err == nil {
		t.Errorf("Materialize with a wrong SHA-256: got nil, want an error")
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("failed Materialize left %s behind", out)
	}
	if _, err := Capture(ctx, filepath.Join(dir, "missing.sqlite"), st, nil); snapdeck.ErrorCode(err) != snapdeck.NotFound {
		t.Errorf("Capture of a missing file: got %v, want NotFound", err)
	}
}

// TestMaterializeWritesAnUnalignedTail restores an image whose size is not
// a multiple of the 4 KiB that writes around the page cache need (512-byte
// pages, an odd number of them): the writer must switch to the page cache
// for the tail and still produce the image byte for byte.
func TestMaterializeWritesAnUnalignedTail(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "small-pages.sqlite")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`PRAGMA page_size = 512; PRAGMA journal_mode = wal;
		CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
		WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
		INSERT INTO t(v) SELECT printf('%.300c', 'x') FROM n`); err != nil {
		t.Fatal(err)
	}
	for {
		var pages int64
		if err := db.QueryRow(`PRAGMA page_count`).Scan(&pages); err != nil {
			t.Fatal(err)
		}
		if pages%8 != 0 {
			break
		}
		if _, err := db.Exec(`INSERT INTO t(v) VALUES (printf('%.300c', 'y'))`); err != nil {
			t.Fatal(err)
		}
	}
	st := openStore(t, "")
	img, err := Capture(ctx, path, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Over 1 MiB: more than one run of pages reaches the writer.
	if img.PageSize != 512 || img.Size%4096 == 0 || img.Size < 1<<20 {
		t.Fatalf("image %+v: want 512-byte pages, over 1 MiB, not a multiple of 4 KiB", img)
	}
	out := filepath.Join(dir, "restored.sqlite")
	if err := Materialize(ctx, st, img, out, ForRestore, nil); err != nil {
		t.Fatalf("Materialize: %v", err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(data); int64(len(data)) != img.Size || hex.EncodeToString(sum[:]) != img.SHA256 {
		t.Errorf("restored %d bytes with SHA-256 %x, want %d bytes with %s", len(data), sum, img.Size, img.SHA256)
	}
	if err := integrityCheck(ctx, out); err != nil {
		t.Error(err)
	}
}

package snapshot

import (
	"context"
	"path/filepath"
	"testing"
)

// TestWALIndexPagesSkipsCheckpointedFrames checks that the wal-index tells
// the frames a checkpoint has copied apart from the rest: after a big write
// every page is in the WAL, and after a checkpoint none needs reading
// through SQLite, though the WAL file, never restarted, still holds them all.
func TestWALIndexPagesSkipsCheckpointedFrames(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a.sqlite")
	db := openDB(t, path)
	insertOrders(t, db, 20000, 1)
	var pageSize int
	var pages int64
	if err := db.QueryRowContext(ctx, "SELECT page_size FROM pragma_page_size()").Scan(&pageSize); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, "SELECT page_count FROM pragma_page_count()").Scan(&pages); err != nil {
		t.Fatal(err)
	}

	_, fromIndex, ok, err := walIndexPages(path, pageSize, pages)
	if err != nil || !ok {
		t.Fatalf("walIndexPages before the checkpoint: ok %v, %v; want a readable wal-index", ok, err)
	}
	_, fromWAL, _, err := walPages(path, pageSize, pages)
	if err != nil {
		t.Fatal(err)
	}
	if fromIndex != fromWAL || fromIndex < pages*9/10 {
		t.Errorf("before the checkpoint: wal-index says %d pages, the WAL %d, of %d; want the same, nearly all", fromIndex, fromWAL, pages)
	}

	if _, err := db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
		t.Fatal(err)
	}
	_, fromIndex, ok, err = walIndexPages(path, pageSize, pages)
	if err != nil || !ok {
		t.Fatalf("walIndexPages after the checkpoint: ok %v, %v", ok, err)
	}
	_, fromWAL, _, _ = walPages(path, pageSize, pages)
	if fromIndex != 0 || fromWAL < pages*9/10 {
		t.Errorf("after the checkpoint: wal-index says %d pages, the WAL file %d; want 0 and nearly all %d", fromIndex, fromWAL, pages)
	}

	// A commit after the checkpoint restarts the WAL: its pages, and only
	// those, are past the mark.
	if _, err := db.ExecContext(ctx, "UPDATE counter SET n = n + 1 WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	_, fromIndex, ok, err = walIndexPages(path, pageSize, pages)
	if err != nil || !ok || fromIndex == 0 || fromIndex > 4 {
		t.Errorf("after one small commit: %d pages, ok %v, %v; want 1 to 4", fromIndex, ok, err)
	}
}

// TestCaptureAfterCheckpointIsTheSameImage checks that a capture that reads
// every page from the file, because the wal-index says all frames are
// copied, gives the same image as one that reads them through SQLite.
func TestCaptureAfterCheckpointIsTheSameImage(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a.sqlite")
	db := openDB(t, path)
	insertOrders(t, db, 20000, 1)
	st := openStore(t, "")
	before, err := Capture(ctx, path, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
		t.Fatal(err)
	}
	after, err := Capture(ctx, path, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if before.SHA256 != after.SHA256 || before.Root != after.Root {
		t.Errorf("capture after the checkpoint: sha %s root %s; before it: sha %s root %s; want the same image",
			after.SHA256, after.Root, before.SHA256, before.Root)
	}
}

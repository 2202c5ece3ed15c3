package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"path/filepath"
	"testing"
	"time"
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

// TestCaptureOfAnUnchangedDatabase checks that a capture with the previous
// image as its base, with no commit since, gives that image without
// reading the database again, even after a checkpoint; and that any commit
// makes it read the database again.
func TestCaptureOfAnUnchangedDatabase(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a.sqlite")
	db := openDB(t, path)
	insertOrders(t, db, 20000, 1)
	st := openStore(t, "")
	calls := 0
	count := func(done, total int64) { calls++ }
	first, err := CaptureWithBase(ctx, path, st, "", count)
	if err != nil {
		t.Fatal(err)
	}
	if calls < 2 {
		t.Fatalf("a full capture of %d bytes reported progress %d times; the test needs more than one", first.Size, calls)
	}
	for _, step := range []struct {
		name    string
		sql     string
		changed bool
	}{
		{"nothing done", "", false},
		{"a checkpoint", "PRAGMA wal_checkpoint(PASSIVE)", false},
		{"a commit", "UPDATE counter SET n = n + 1 WHERE id = 1", true},
		{"a commit that the WAL starts over for", "PRAGMA wal_checkpoint(TRUNCATE); UPDATE counter SET n = n + 1 WHERE id = 1", true},
		{"nothing done after commits", "", false},
	} {
		if step.sql != "" {
			if _, err := db.ExecContext(ctx, step.sql); err != nil {
				t.Fatal(err)
			}
		}
		calls = 0
		img, err := CaptureWithBase(ctx, path, st, first.Root, count)
		if err != nil {
			t.Fatal(err)
		}
		if reread := calls > 1; reread != step.changed {
			t.Errorf("after %s: read the database again %v (progress reported %d times), want %v", step.name, reread, calls, step.changed)
		}
		if (img.Root != first.Root) != step.changed {
			t.Errorf("after %s: root %s, previous %s; want changed %v", step.name, img.Root, first.Root, step.changed)
		}
		if want := contentDigest(t, path); step.changed {
			out := filepath.Join(t.TempDir(), "out.sqlite")
			if err := Materialize(ctx, st, img, out, ForNewDatabase, nil); err != nil {
				t.Fatal(err)
			}
			if got := contentDigest(t, out); got != want {
				t.Errorf("after %s: image content %s, database %s", step.name, got, want)
			}
		}
		first = img
	}
}

// TestOpenImageClosedEarly checks that closing an image reader part way
// stops the read behind it and returns, and that a reader drained through
// WriteTo gives the whole image.
func TestOpenImageClosedEarly(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a.sqlite")
	db := openDB(t, path)
	insertOrders(t, db, 20000, 1)
	st := openStore(t, "")
	img, err := Capture(ctx, path, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := OpenImage(ctx, st, img)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10000)
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- r.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close of a reader read part way did not return")
	}

	r, err = OpenImage(ctx, st, img)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil || n != img.Size || hex.EncodeToString(h.Sum(nil)) != img.SHA256 {
		t.Errorf("io.Copy of the image: %d bytes, %v, sha %x; want %d bytes with sha %s", n, err, h.Sum(nil), img.Size, img.SHA256)
	}
}

// TestCaptureWithACommitDuringIt checks that a capture during which a
// writer commits is not remembered as the file's state: the next capture,
// with nothing else committed, reads the database again and holds the
// commit.
func TestCaptureWithACommitDuringIt(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a.sqlite")
	db := openDB(t, path)
	insertOrders(t, db, 20000, 1)
	st := openStore(t, "")
	first, err := Capture(ctx, path, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A commit first, so that the next capture reads the database.
	if _, err := db.ExecContext(ctx, "UPDATE counter SET n = n + 1 WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	committed := false
	faultHook = func(point string) {
		if point == "capture:read-done" && !committed {
			committed = true
			if _, err := db.ExecContext(ctx, "UPDATE counter SET n = n + 1 WHERE id = 1"); err != nil {
				t.Error(err)
			}
		}
	}
	during, err := CaptureWithBase(ctx, path, st, first.Root, nil)
	faultHook = nil
	if err != nil {
		t.Fatal(err)
	}
	if !committed || during.Root == first.Root {
		t.Fatalf("the capture did not read the database again after a commit")
	}
	calls := 0
	next, err := CaptureWithBase(ctx, path, st, during.Root, func(done, total int64) { calls++ })
	if err != nil {
		t.Fatal(err)
	}
	if next.Root == during.Root || calls < 2 {
		t.Fatalf("the capture after a commit made during the previous one took its image again (root %s, progress reported %d times)", next.Root, calls)
	}
	out := filepath.Join(t.TempDir(), "out.sqlite")
	if err := Materialize(ctx, st, next, out, ForNewDatabase, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := contentDigest(t, out), contentDigest(t, path); got != want {
		t.Errorf("image content %s, database %s", got, want)
	}
}

package snapshot

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCaptureOfAKeptFile checks the safety snapshot's capture of a file
// that InstallKeeping kept: with nothing committed since the base was
// captured it takes the base's image after checking the file's SHA-256,
// without a capture's read; after a commit it reads the file again. The
// last case is a commit that the size and time cannot show (its time set
// back to the capture's, as a write in the same clock tick leaves it): the
// hint says unchanged, and the content check catches it.
func TestCaptureOfAKeptFile(t *testing.T) {
	for _, tc := range []struct {
		name      string
		commit    bool
		timeReset bool
	}{
		{"nothing committed", false, false},
		{"a commit", true, false},
		{"a commit the size and time do not show", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			path := filepath.Join(dir, "a.sqlite")
			db := openDB(t, path)
			insertOrders(t, db, 20000, 1)
			// Everything in the file, so that closing the database
			// writes nothing more to it.
			if _, err := db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
				t.Fatal(err)
			}
			st := openStore(t, "")
			base, err := Capture(ctx, path, st, nil)
			if err != nil {
				t.Fatal(err)
			}
			captured, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if tc.commit {
				// The same size: the counter only.
				if _, err := db.ExecContext(ctx, "UPDATE counter SET n = n + 7 WHERE id = 1"); err != nil {
					t.Fatal(err)
				}
			}
			db.Close() // the last connection: the WAL goes into the file
			if tc.timeReset {
				if err := os.Chtimes(path, time.Time{}, captured.ModTime()); err != nil {
					t.Fatal(err)
				}
			}
			tmp := path + ".restore"
			if err := Materialize(ctx, st, base, tmp, ForRestore, nil); err != nil {
				t.Fatal(err)
			}
			undo := UndoPath(path, "s1")
			if _, err := InstallKeeping(tmp, path, undo); err != nil {
				t.Fatal(err)
			}
			defer ForgetFile(undo)
			now, _ := stateOf(undo)
			_, hint := keptCandidate(st, undo, base.Root, now)
			if want := !tc.commit || tc.timeReset; hint != want {
				t.Fatalf("the kept file's size and time say unchanged: %v, want %v", hint, want)
			}

			var points []string
			faultHook = func(point string) { points = append(points, point) }
			img, err := CaptureWithBase(ctx, undo, st, base.Root, nil)
			faultHook = nil
			if err != nil {
				t.Fatal(err)
			}
			read, shortcut := false, false
			for _, p := range points {
				read = read || p == "capture:read-done"
				shortcut = shortcut || p == "capture:kept-unchanged"
			}
			if read != tc.commit || shortcut == tc.commit {
				t.Errorf("capture of the kept file read it %v, took the base's image %v; want read %v", read, shortcut, tc.commit)
			}
			if (img.Root != base.Root) != tc.commit {
				t.Errorf("root %s, base %s; want a new image %v", img.Root, base.Root, tc.commit)
			}
			_, counter := rowsAndCounter(t, undo)
			out := filepath.Join(dir, "out.sqlite")
			if err := Materialize(ctx, st, img, out, ForNewDatabase, nil); err != nil {
				t.Fatal(err)
			}
			if got, want := contentDigest(t, out), contentDigest(t, undo); got != want {
				t.Errorf("safety image content %s, kept file %s", got, want)
			}
			if _, got := rowsAndCounter(t, out); got != counter {
				t.Errorf("safety image counter %d, kept file %d", got, counter)
			}
		})
	}
}

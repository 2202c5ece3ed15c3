package snapshot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/snapdeck/snapdeck/internal/dump"
	"github.com/snapdeck/snapdeck/internal/durable"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/snapstore"
)

// checkImage reads img's root and checks that img agrees with it.
func checkImage(ctx context.Context, st *snapstore.Store, img Image) (snapstore.Manifest, error) {
	m, err := st.ReadManifest(ctx, img.Root)
	if err != nil {
		return m, err
	}
	if img.SHA256 != "" && !strings.EqualFold(img.SHA256, hex.EncodeToString(m.SHA256[:])) {
		return m, &snapdeck.Error{Code: snapdeck.Internal,
			Message: fmt.Sprintf("snapshot %s records SHA-256 %s but its image has %x", img.Root, img.SHA256, m.SHA256)}
	}
	return m, nil
}

// Target says what a materialised file is for, which decides how it is
// written.
type Target int

const (
	// ForRestore is a database restored over, which its users then read
	// a page at a time: it is written around the page cache (see
	// imageWriter), which is cheaper and leaves the cache to the data
	// in use.
	ForRestore Target = iota
	// ForNewDatabase is a new database, read whole at once by its first
	// snapshot, or a file checked at once: it is written through the page
	// cache, where that reader finds it.
	ForNewDatabase
)

// Materialize writes the image to dstPath, a new file, for restore or
// create-from-snapshot. Every page is checked against its hash, and through
// the tree of page lists against the snapshot's root (snapstore.CheckPages:
// the whole image's SHA-256 is checked by Verify, once, after capture);
// the file and its directory entry are fsynced before it returns. On error
// dstPath is removed.
//
// The file's size is reserved first, so that a disk without room fails
// before anything is written; the pages are written in 1 MiB batches as
// imageWriter describes, while the store reads and checks the next batches
// on other goroutines.
func Materialize(ctx context.Context, st *snapstore.Store, img Image, dstPath string, target Target, progress Progress) error {
	return materialize(ctx, st, img, dstPath, snapstore.CheckPages, target, progress)
}

func materialize(ctx context.Context, st *snapstore.Store, img Image, dstPath string, check snapstore.Check, target Target, progress Progress) (err error) {
	m, err := checkImage(ctx, st, img)
	if err != nil {
		return fmt.Errorf("materialize: %w", err)
	}
	w, err := createImageFile(dstPath, m.Size, target == ForRestore)
	if err != nil {
		return fmt.Errorf("materialize: %w", err)
	}
	finished := false
	defer func() {
		if err != nil {
			if !finished {
				w.close()
			}
			os.Remove(dstPath)
		}
	}()
	// ReadImage reads and checks the next batches on other goroutines
	// while this one writes.
	var writeErr error
	readErr := st.ReadImagePages(ctx, img.Root, check, func(p snapstore.Pages) error {
		if writeErr = w.write(p); writeErr != nil {
			return writeErr
		}
		if progress != nil {
			progress(w.done, m.Size)
		}
		if w.done >= m.Size/2 {
			fault("materialize:half-written")
		}
		return nil
	})
	if writeErr != nil {
		return fmt.Errorf("materialize: write %s: %w", dstPath, writeErr)
	}
	if readErr != nil {
		return fmt.Errorf("materialize: %w", readErr)
	}
	if w.done != m.Size {
		return fmt.Errorf("materialize: wrote %d bytes, want %d", w.done, m.Size)
	}
	fault("materialize:before-sync")
	finished = true
	if err := w.finish(); err != nil {
		return fmt.Errorf("materialize: write %s: %w", dstPath, err)
	}
	if err := durable.SyncDir(filepath.Dir(dstPath)); err != nil {
		return fmt.Errorf("materialize: sync directory: %w", err)
	}
	return nil
}

// OpenImage streams the image, for export. Every page is checked against
// its hash and its place in the tree as it is read, and the stream ends in
// an error instead of EOF at the first mismatch. The whole image's SHA-256
// is left to the reader, which hashes the stream anyway: dump.Write checks
// it against the snapshot record, so export hashes the image once, not
// twice. Closing the reader early stops the work behind it.
func OpenImage(ctx context.Context, st *snapstore.Store, img Image) (io.ReadCloser, error) {
	if _, err := checkImage(ctx, st, img); err != nil {
		return nil, fmt.Errorf("open image: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &imageReader{runs: make(chan snapstore.Pages, imageReadAhead), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		defer close(r.runs)
		r.err = st.ReadImagePages(ctx, img.Root, snapstore.CheckPages, func(p snapstore.Pages) error {
			select {
			case r.runs <- p:
				return nil
			case <-ctx.Done():
				p.Release()
				return ctx.Err()
			}
		})
	}()
	return r, nil
}

// imageReadAhead is how many runs of pages OpenImage's reader holds ready:
// the store goes on reading and checking pages while the consumer
// compresses and hashes. With io.Pipe's hand-off each run waited until the
// consumer had copied it all, and the two took turns rather than working
// at once: 256 MiB took 1.5 s to export against 0.75 s to read and 0.57 s
// to compress and hash.
const imageReadAhead = 4

// imageReader hands over the runs of pages the store reads, in order,
// without copying them into a pipe.
type imageReader struct {
	runs   chan snapstore.Pages
	cur    snapstore.Pages
	off    int
	held   bool
	cancel context.CancelFunc
	done   chan struct{}
	err    error // set before runs is closed
}

func (r *imageReader) Read(b []byte) (int, error) {
	for !r.held || r.off == len(r.cur.Data) {
		if r.held {
			r.cur.Release()
			r.held = false
		}
		p, ok := <-r.runs
		if !ok {
			<-r.done
			if r.err != nil {
				return 0, r.err
			}
			return 0, io.EOF
		}
		r.cur, r.off, r.held = p, 0, true
	}
	n := copy(b, r.cur.Data[r.off:])
	r.off += n
	return n, nil
}

// WriteTo hands each run to w whole, saving the copy into a caller's
// buffer (io.Copy uses it).
func (r *imageReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if r.held && r.off < len(r.cur.Data) {
			n, err := w.Write(r.cur.Data[r.off:])
			total += int64(n)
			r.off += n
			if err != nil {
				return total, err
			}
		}
		if r.held {
			r.cur.Release()
			r.held = false
		}
		p, ok := <-r.runs
		if !ok {
			<-r.done
			return total, r.err
		}
		r.cur, r.off, r.held = p, 0, true
	}
}

// Close stops the reading and gives back every run still held.
func (r *imageReader) Close() error {
	r.cancel()
	if r.held {
		r.cur.Release()
		r.held = false
	}
	for p := range r.runs {
		p.Release()
	}
	<-r.done
	return nil
}

// Verify rebuilds the image into tmpDir, checks its SHA-256 (as it is
// written) and PRAGMA integrity_check, and removes the file.
func Verify(ctx context.Context, st *snapstore.Store, img Image, tmpDir string) error {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	path := filepath.Join(tmpDir, "verify-"+hex.EncodeToString(rnd[:])+".sqlite")
	defer snapdeck.RemoveDatabaseFiles(path)
	if err := materialize(ctx, st, img, path, snapstore.CheckPagesAndSum, ForNewDatabase, nil); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	// Read-only and immutable, as imports are checked: the rebuilt image
	// may say WAL mode, and nothing must be written beside it.
	problems, err := dump.IntegrityCheck(ctx, path)
	if err != nil {
		return fmt.Errorf("verify snapshot %s: %w", img.Root, err)
	}
	if len(problems) > 0 {
		return &snapdeck.Error{Code: snapdeck.Internal, Message: "the database fails its integrity check: " + strings.Join(problems, "; ")}
	}
	return nil
}

// ReplacedMarker is in the name that Install gives the file it replaces,
// until that file is removed; a crash may leave one behind, for the
// caller's recovery to remove.
const ReplacedMarker = ".replaced-"

// Install renames a materialised file over dbPath atomically; the caller
// has closed every connection to dbPath first. It refuses when dbPath still
// has a non-empty -wal (SQLite would replay the old WAL onto the new
// content and corrupt it), renames, removes the stale -wal and -shm, and
// fsyncs the directory, so that a crash at any point leaves either the old
// or the new content intact: before the rename the old file and its empty
// WAL are untouched; after it, SQLite rebuilds a stale -shm on first open.
//
// The old file gets a second name (dbPath + ReplacedMarker + a random
// suffix) before the rename, so that the rename does not free its blocks
// while the database is offline: dropping a GiB file from the page cache
// and the file system took a third of a second on the benchmark machine.
// That name is removed in the background once the new file is in place.
func Install(tmpPath, dbPath string) error {
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	old := dbPath + ReplacedMarker + hex.EncodeToString(rnd[:])
	kept, err := install(tmpPath, dbPath, old, false)
	if kept {
		go os.Remove(old)
	}
	return err
}

// UndoMarker is in the name of the replaced file InstallKeeping keeps.
const UndoMarker = ".undo-"

// UndoPath is where InstallKeeping keeps the file it replaced at dbPath,
// for the operation called id (a restore names it after its safety
// snapshot).
func UndoPath(dbPath, id string) string { return dbPath + UndoMarker + id }

// InstallKeeping is Install that keeps the replaced file, durably, at
// keepPath: its second name is fsynced before the rename, so after a crash
// at any point either dbPath still holds the old content or keepPath does.
// A restore captures its safety snapshot from keepPath after the swap,
// with the database already serving the new content, and then removes it
// (with RemoveDatabaseFiles, which takes the -wal and -shm SQLite makes
// when it opens the file). There is nothing to keep when dbPath does not
// exist; kept then says so.
func InstallKeeping(tmpPath, dbPath, keepPath string) (kept bool, err error) {
	return install(tmpPath, dbPath, keepPath, true)
}

func install(tmpPath, dbPath, old string, keepDurably bool) (kept bool, err error) {
	if fi, err := os.Stat(dbPath + "-wal"); err == nil && fi.Size() > 0 {
		return false, &snapdeck.Error{Code: snapdeck.Conflict,
			Message: "the database still has a write-ahead log; close every connection (or checkpoint it) before installing a restored file"}
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("install: %w", err)
	}
	if filepath.Dir(tmpPath) != filepath.Dir(dbPath) {
		return false, fmt.Errorf("install: %s must be in the directory of %s for an atomic rename", tmpPath, dbPath)
	}
	// Every connection to the old file is closed: so may Capture's
	// descriptor of it be, without dropping anyone's locks. What Capture
	// remembers of it goes with a kept file, whose safety snapshot may
	// then find it unchanged since the last capture (keptCandidate).
	kept = os.Link(dbPath, old) == nil // else no old file, or no hard links: the rename frees it
	if kept && keepDurably {
		keepCaptures(dbPath, old)
	}
	ForgetFile(dbPath)
	if keepDurably && !kept {
		if _, err := os.Stat(dbPath); err == nil {
			return false, fmt.Errorf("install: cannot keep the replaced file as %s (hard links are needed), so the swap would have no undo", old)
		}
	}
	if keepDurably && kept {
		fault("install:kept")
		if err := durable.SyncDir(filepath.Dir(dbPath)); err != nil {
			os.Remove(old)
			forgetCaptures(old)
			return false, fmt.Errorf("install: sync directory: %w", err)
		}
	}
	fault("install:before-rename")
	if err := os.Rename(tmpPath, dbPath); err != nil {
		if kept {
			os.Remove(old)
			forgetCaptures(old)
		}
		return false, fmt.Errorf("install: %w", err)
	}
	fault("install:renamed")
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(dbPath + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return kept, fmt.Errorf("install: %w", err)
		}
	}
	fault("install:before-dir-sync")
	if err := durable.SyncDir(filepath.Dir(dbPath)); err != nil {
		return kept, fmt.Errorf("install: sync directory: %w", err)
	}
	return kept, nil
}

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

// writebackBytes is how much Materialize writes before it asks the kernel
// to start writing it out, and writeBytes the size of its writes: measured
// on the benchmark machine, restoring 1 GiB with 128 KiB writes took about
// half as long as with 1 MiB writes (dd shows the same: 512 KiB and larger
// writes cost 2-3 times the kernel time of 256 KiB and smaller ones).
const (
	writebackBytes = 8 << 20
	writeBytes     = 128 << 10
)

// Materialize writes the image to dstPath, a new file, for restore or
// create-from-snapshot. Every page is checked against its hash and the
// whole image against its SHA-256; the file and its directory entry are
// fsynced before it returns. On error dstPath is removed.
//
// Reading from the store and writing the file run in two goroutines with
// 1 MiB batches between them, written in 128 KiB writes, and writeback to
// disk is started every 8 MiB rather than left to the final fsync, so that
// the disk works while pages are still being read and checked.
func Materialize(ctx context.Context, st *snapstore.Store, img Image, dstPath string, progress Progress) (err error) {
	m, err := checkImage(ctx, st, img)
	if err != nil {
		return fmt.Errorf("materialize: %w", err)
	}
	f, err := os.OpenFile(dstPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("materialize: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(dstPath)
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []byte, 4)
	readErr := make(chan error, 1)
	go func() {
		defer close(batches)
		readErr <- st.ReadImage(ctx, img.Root, func(b []byte) error {
			select {
			case batches <- b:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	var done, kicked int64
	var writeErr error
	for b := range batches {
		if writeErr != nil {
			continue
		}
		if writeErr = writeIn(f, b, writeBytes); writeErr != nil {
			cancel()
			continue
		}
		done += int64(len(b))
		if done-kicked >= writebackBytes {
			startWriteback(f, kicked, done-kicked)
			kicked = done
		}
		if progress != nil {
			progress(done, m.Size)
		}
		if done >= m.Size/2 {
			fault("materialize:half-written")
		}
	}
	if err := <-readErr; err != nil {
		return fmt.Errorf("materialize: %w", err)
	}
	if writeErr != nil {
		return fmt.Errorf("materialize: write %s: %w", dstPath, writeErr)
	}
	if done != m.Size {
		return fmt.Errorf("materialize: wrote %d bytes, want %d", done, m.Size)
	}
	fault("materialize:before-sync")
	if err := f.Sync(); err != nil {
		return fmt.Errorf("materialize: sync %s: %w", dstPath, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("materialize: close %s: %w", dstPath, err)
	}
	if err := durable.SyncDir(filepath.Dir(dstPath)); err != nil {
		return fmt.Errorf("materialize: sync directory: %w", err)
	}
	return nil
}

// OpenImage streams the image, for export. Every page is checked against
// its hash as it is read, and the stream ends in an error instead of EOF
// if the whole image does not match its SHA-256. Closing the reader early
// stops the work behind it.
func OpenImage(ctx context.Context, st *snapstore.Store, img Image) (io.ReadCloser, error) {
	if _, err := checkImage(ctx, st, img); err != nil {
		return nil, fmt.Errorf("open image: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	go func() {
		err := st.ReadImage(ctx, img.Root, func(b []byte) error {
			_, err := pw.Write(b)
			return err
		})
		pw.CloseWithError(err) // nil closes with EOF
	}()
	return &imageReader{PipeReader: pr, cancel: cancel}, nil
}

type imageReader struct {
	*io.PipeReader
	cancel context.CancelFunc
}

func (r *imageReader) Close() error {
	r.cancel()
	return r.PipeReader.Close()
}

// Verify rebuilds the image into tmpDir, checks its SHA-256 (as it is
// written) and PRAGMA integrity_check, and removes the file.
func Verify(ctx context.Context, st *snapstore.Store, img Image, tmpDir string) error {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	path := filepath.Join(tmpDir, "verify-"+hex.EncodeToString(rnd[:])+".sqlite")
	defer removeDatabaseFiles(path)
	if err := Materialize(ctx, st, img, path, nil); err != nil {
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

func removeDatabaseFiles(path string) {
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		os.Remove(path + suffix)
	}
}

// Install renames a materialised file over dbPath atomically; the caller
// has closed every connection to dbPath first. It refuses when dbPath still
// has a non-empty -wal (SQLite would replay the old WAL onto the new
// content and corrupt it), renames, removes the stale -wal and -shm, and
// fsyncs the directory, so that a crash at any point leaves either the old
// or the new content intact: before the rename the old file and its empty
// WAL are untouched; after it, SQLite rebuilds a stale -shm on first open.
func Install(tmpPath, dbPath string) error {
	if fi, err := os.Stat(dbPath + "-wal"); err == nil && fi.Size() > 0 {
		return &snapdeck.Error{Code: snapdeck.Conflict,
			Message: "the database still has a write-ahead log; close every connection (or checkpoint it) before installing a restored file"}
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("install: %w", err)
	}
	if filepath.Dir(tmpPath) != filepath.Dir(dbPath) {
		return fmt.Errorf("install: %s must be in the directory of %s for an atomic rename", tmpPath, dbPath)
	}
	// Every connection to the old file is closed: so may Capture's
	// descriptor of it be, without dropping anyone's locks.
	forgetDBFile(dbPath)
	fault("install:before-rename")
	if err := os.Rename(tmpPath, dbPath); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	fault("install:renamed")
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(dbPath + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("install: %w", err)
		}
	}
	fault("install:before-dir-sync")
	if err := durable.SyncDir(filepath.Dir(dbPath)); err != nil {
		return fmt.Errorf("install: sync directory: %w", err)
	}
	return nil
}

// writeIn writes b to f in writes of at most n bytes.
func writeIn(f *os.File, b []byte, n int) error {
	for len(b) > 0 {
		k := min(n, len(b))
		if _, err := f.Write(b[:k]); err != nil {
			return err
		}
		b = b[k:]
	}
	return nil
}

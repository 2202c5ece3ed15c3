package importfile

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/snapdeck/snapdeck/internal/dump"
	"github.com/snapdeck/snapdeck/internal/durable"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/sqlitemsg"
)

// headerSize is the size of the database header at the start of page 1
// (https://sqlite.org/fileformat.html#the_database_header).
const headerSize = 100

// header is what an import checks of a SQLite database header.
type header struct {
	pageSize int
	// readVersion is 1 for a rollback-journal database, 2 for WAL.
	readVersion byte
	// pages is the in-header database size, 0 when the header does not
	// vouch for it (written by a SQLite older than 3.7.0).
	pages int64
}

// parseHeader reads a database header; b starts with the SQLite magic.
func parseHeader(b []byte) header {
	ps := int(binary.BigEndian.Uint16(b[16:18]))
	if ps == 1 {
		ps = 65536 // stored as 1: 65536 does not fit in 16 bits
	}
	h := header{pageSize: ps, readVersion: b[19]}
	// The in-header size is valid only when the change counter matches the
	// version-valid-for number: older writers did not keep it.
	if binary.BigEndian.Uint32(b[24:28]) == binary.BigEndian.Uint32(b[92:96]) {
		h.pages = int64(binary.BigEndian.Uint32(b[28:32]))
	}
	return h
}

// checkHeader checks a SQLite file's header against its size.
func checkHeader(b []byte, size, limit int64) error {
	if size > limit {
		return tooLarge("the database", size, limit)
	}
	if len(b) < headerSize || size < headerSize {
		return invalid(nil, "the file ends early: it looks truncated (a SQLite database is at least one page)")
	}
	h := parseHeader(b)
	if h.pageSize < 512 || h.pageSize > 65536 || h.pageSize&(h.pageSize-1) != 0 {
		return invalid(nil, "the database header has an invalid page size (%d): SQLite pages are a power of two from 512 to 65536 bytes, so the file is damaged", h.pageSize)
	}
	if h.readVersion != 1 && h.readVersion != 2 {
		return invalid(nil, "the database header says file format %d, which this console's SQLite cannot read: the file is damaged or from a future SQLite", h.readVersion)
	}
	if size%int64(h.pageSize) != 0 {
		return invalid(nil, "the file is %d bytes, not a whole number of %d-byte pages: it looks cut short or padded", size, h.pageSize)
	}
	if pages := size / int64(h.pageSize); h.pages > pages {
		return invalid(nil, "the file ends early: it looks truncated (its header says %d pages, the file holds %d)", h.pages, pages)
	}
	return nil
}

// prepareSQLite checks an uploaded SQLite database and puts it at dstPath.
// src is the upload, open at srcPath, of size bytes; head is its first
// bytes as Detect read them, which hold the database header unless the
// file is shorter.
//
// An upload is one file: nothing next to it is read. A database in WAL
// mode is taken as its main file stands (SQLite opens it read-only and
// immutable, so it looks for no -wal); transactions still in a -wal file on
// the uploader's machine are not part of the upload, which the IMPORT
// DATABASE tab says. A file caught in the middle of a write, whose rollback
// journal would have repaired it, fails the header or integrity checks.
func prepareSQLite(ctx context.Context, src *os.File, srcPath, dstPath string, size int64, head []byte, lim Limits, progress Progress) (int64, error) {
	if err := checkHeader(head, size, lim.maxSize()); err != nil {
		return 0, err
	}
	if err := place(ctx, src, srcPath, dstPath, size, progress); err != nil {
		return 0, err
	}
	if err := checkIntegrity(ctx, dstPath); err != nil {
		return 0, err
	}
	return size, nil
}

// place moves srcPath to dstPath: a rename when both are on one file
// system, else a copy; either way the new file has the mode of a hosted
// database and is fsynced.
func place(ctx context.Context, src *os.File, srcPath, dstPath string, size int64, progress Progress) error {
	if _, err := os.Lstat(dstPath); err == nil {
		return fmt.Errorf("import: %s exists", dstPath)
	}
	if err := os.Rename(srcPath, dstPath); err == nil {
		progress(size, size)
		// The upload was private to the console until now.
		if err := os.Chmod(dstPath, snapdeck.FileMode); err != nil {
			return fmt.Errorf("import: %w", err)
		}
		return syncFile(dstPath)
	}
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	dst, err := os.OpenFile(dstPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, snapdeck.FileMode)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	defer dst.Close()
	buf := make([]byte, 1<<20)
	var done int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				return fmt.Errorf("import: write %s: %w", dstPath, err)
			}
			done += int64(n)
			progress(done, size)
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return fmt.Errorf("import: read the upload: %w", rerr)
		}
	}
	if err := dst.Sync(); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	return dst.Close()
}

// syncFile fsyncs a file and its directory.
func syncFile(path string) error {
	for _, p := range []string{path, filepath.Dir(path)} {
		if err := durable.Sync(p); err != nil {
			return fmt.Errorf("import: sync %s: %w", p, err)
		}
	}
	return nil
}

// checkIntegrity runs PRAGMA integrity_check on the database at path, as
// the .dump reader does on its image.
func checkIntegrity(ctx context.Context, path string) error {
	problems, err := dump.IntegrityCheck(ctx, path)
	if err != nil {
		return unreadable(ctx, err)
	}
	if len(problems) > 0 {
		more := ""
		if len(problems) > 1 {
			more = fmt.Sprintf(" (and %d more problems)", len(problems)-1)
		}
		return invalid(nil, "the database is damaged: SQLite's integrity check reports %s%s", truncate(problems[0], 200), more)
	}
	return nil
}

// unreadable explains a failure to read a database during its check,
// unless the caller gave up.
func unreadable(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return invalid(err, "the database is damaged: SQLite cannot read it (%s)", truncate(sqlitemsg.Words(err), 200))
}

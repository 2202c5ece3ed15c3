package dump

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	// The pure-Go SQLite driver, registered as "sqlite".
	_ "modernc.org/sqlite"
)

// headerSize is the size of the SQLite database header at the start of
// page 1 (https://sqlite.org/fileformat.html#the_database_header).
const headerSize = 100

// sqliteMagic opens every SQLite 3 database file.
const sqliteMagic = "SQLite format 3\x00"

// header is the part of a SQLite database header the dump format relies on.
type header struct {
	PageSize int
	// Version is the SQLite library version that last wrote the file,
	// e.g. "3.46.1".
	Version string
	// Pages is the in-header database size (bytes 28-31), which counts
	// only when PagesValid: the change counter (bytes 24-27) equals the
	// version-valid-for number (bytes 92-95).
	Pages      int64
	PagesValid bool
}

// parseHeader reads a database header. ok is false when b is not one.
func parseHeader(b []byte) (h header, ok bool) {
	if len(b) < headerSize || string(b[:len(sqliteMagic)]) != sqliteMagic {
		return header{}, false
	}
	// The page size is stored as a 16-bit big-endian number, with 1 meaning
	// 65536, which does not fit.
	ps := int(binary.BigEndian.Uint16(b[16:18]))
	if ps == 1 {
		ps = 65536
	}
	v := binary.BigEndian.Uint32(b[96:100])
	return header{
		PageSize:   ps,
		Version:    fmt.Sprintf("%d.%d.%d", v/1000000, v/1000%1000, v%1000),
		Pages:      int64(binary.BigEndian.Uint32(b[28:32])),
		PagesValid: binary.BigEndian.Uint32(b[24:28]) == binary.BigEndian.Uint32(b[92:96]),
	}, true
}

// validPageSize reports whether n is a page size SQLite can use.
func validPageSize(n int) bool {
	return n >= 512 && n <= 65536 && n&(n-1) == 0
}

// checkImageHeader checks an extracted image's first bytes and size against
// the SQLite file format and the manifest.
func checkImageHeader(first []byte, size int64, m Manifest) error {
	h, ok := parseHeader(first)
	if !ok {
		return invalid(nil, "database.sqlite is not a SQLite database: it does not start with the header %q", "SQLite format 3")
	}
	if !validPageSize(h.PageSize) {
		return invalid(nil, "database.sqlite has an invalid page size (%d) in its header: SQLite pages are a power of two from 512 to 65536 bytes", h.PageSize)
	}
	if h.PageSize != m.PageSize {
		return invalid(nil, "page size mismatch: manifest.json says %d bytes, the header of database.sqlite says %d", m.PageSize, h.PageSize)
	}
	if size%int64(h.PageSize) != 0 {
		return invalid(nil, "database.sqlite is %d bytes, not a whole number of %d-byte pages: it looks cut short or padded", size, h.PageSize)
	}
	// Every SQLite since 3.7.0 (2010) keeps the database's size in pages
	// in its header, and marks it valid by the matching version-valid-for
	// number; a dump's image is a whole database, so the two must agree.
	if !h.PagesValid {
		return invalid(nil, "database.sqlite's header does not give its size in pages, as every SQLite since 3.7.0 does: it was not written by snapdeck")
	}
	if want := h.Pages * int64(h.PageSize); want != size {
		return invalid(nil, "database.sqlite's header says it is %d pages of %d bytes (%d bytes), but the archive holds %d bytes", h.Pages, h.PageSize, want, size)
	}
	return nil
}

// checkIntegrity runs PRAGMA integrity_check on the database at path.
func checkIntegrity(ctx context.Context, path string) error {
	problems, err := IntegrityCheck(ctx, path)
	if err != nil {
		return integrityError(ctx, err)
	}
	if len(problems) > 0 {
		// The first problem names the damage well enough; a corrupt file can
		// list up to a hundred.
		more := ""
		if len(problems) > 1 {
			more = fmt.Sprintf(" (and %d more problems)", len(problems)-1)
		}
		return invalid(nil, "database.sqlite fails PRAGMA integrity_check: %s%s", truncate(problems[0], 200), more)
	}
	return nil
}

// IntegrityCheck runs PRAGMA integrity_check on an untrusted database file
// at path and returns the problems it reports, none when the database is
// intact. An error means SQLite could not read the file at all.
//
// The file is opened read-only and immutable: nothing can be written next to
// it (no -wal, -shm or -journal), and an image whose header says WAL mode is
// read as the complete database it is. The pragmas follow SQLite's advice for
// untrusted files: no schema-defined functions, cell sizes checked, no mmap.
// The import of plain SQLite files shares it.
func IntegrityCheck(ctx context.Context, path string) ([]string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	u := url.URL{Scheme: "file", Path: abs}
	dsn := u.String() + "?mode=ro&immutable=1" +
		"&_pragma=trusted_schema(0)&_pragma=cell_size_check(1)&_pragma=mmap_size(0)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)

	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return nil, err
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	return problems, rows.Err()
}

// integrityError turns a failure to read the database during the integrity
// check into the user's terms, unless the caller gave up.
func integrityError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	msg := err.Error()
	// modernc prefixes its messages with the result code name; the part
	// after the last colon is SQLite's own sentence.
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return invalid(err, "database.sqlite is damaged: SQLite cannot read it (%s)", truncate(msg, 200))
}

package dump

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// Manifest describes the database image in a .dump. It is stored as
// manifest.json, the archive's first entry; docs/dump-format.md documents
// each key.
type Manifest struct {
	// FormatVersion is the .dump format the file follows (FormatVersion).
	FormatVersion int `json:"format_version"`
	// DatabaseName is the name of the database the snapshot was taken of.
	DatabaseName string `json:"database_name"`
	// DatabaseID is its id, 8 lowercase hex characters.
	DatabaseID string `json:"database_id"`
	// SnapshotID is the snapshot's id, a UUID.
	SnapshotID string `json:"snapshot_id"`
	// SnapshotType is "Scheduled", "Load" or "On-demand".
	SnapshotType string `json:"snapshot_type"`
	// SnapshotTime is when the snapshot was taken, in UTC.
	SnapshotTime time.Time `json:"snapshot_time"`
	// Engine names the program and version that wrote the dump,
	// e.g. "snapdeck 1.2.3".
	Engine string `json:"engine"`
	// SQLiteVersion is the SQLite library version of the engine, e.g. "3.50.4".
	SQLiteVersion string `json:"sqlite_version"`
	// Size is the byte size of database.sqlite.
	Size int64 `json:"size"`
	// SHA256 is the hex SHA-256 of database.sqlite, lower case.
	SHA256 string `json:"sha256"`
	// PageSize is the database's page size in bytes, as in its header.
	PageSize int `json:"page_size"`
}

// encodeManifest returns the manifest.json bytes for m.
func encodeManifest(m Manifest) ([]byte, error) {
	m.SnapshotTime = m.SnapshotTime.UTC()
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// decodeManifest parses and checks manifest.json. The version is read on its
// own first, so that a newer format whose other keys changed still gets the
// "newer snapdeck" message rather than a parse error.
func decodeManifest(b []byte) (Manifest, error) {
	var v struct {
		FormatVersion *int `json:"format_version"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return Manifest{}, invalid(err, "manifest.json is not valid JSON: a .dump starts with a JSON object describing the database")
	}
	if v.FormatVersion == nil {
		return Manifest{}, invalid(nil, "manifest.json has no format_version: it is not a snapdeck dump manifest")
	}
	if n := *v.FormatVersion; n > FormatVersion {
		return Manifest{}, invalid(nil, "this dump was written by a newer snapdeck (format %d); this console reads format %d", n, FormatVersion)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return Manifest{}, invalid(err, "manifest.json has a key of the wrong type: %s", jsonField(err))
	}
	if err := checkManifest(m); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// jsonField names the key a json type error is about, for the message.
func jsonField(err error) string {
	if te, ok := err.(*json.UnmarshalTypeError); ok && te.Field != "" {
		return fmt.Sprintf("%s should be a %s", te.Field, te.Type)
	}
	if _, ok := err.(*time.ParseError); ok {
		return "snapshot_time should be an RFC 3339 time"
	}
	return "see docs/dump-format.md for the keys and their types"
}

// checkManifest checks the keys a reader relies on to validate the image.
// The descriptive keys (names, ids, times) are shown, never trusted, so they
// are not checked here; Write checks them on the way in.
func checkManifest(m Manifest) error {
	switch {
	case m.FormatVersion < 1:
		return invalid(nil, "manifest.json has format_version %d, which no snapdeck writes; this console reads format %d", m.FormatVersion, FormatVersion)
	case m.Size < 0:
		return invalid(nil, "manifest.json has a negative size (%d): it should be the byte size of database.sqlite", m.Size)
	case !isSHA256Hex(m.SHA256):
		return invalid(nil, "manifest.json has an invalid sha256 %q: it should be 64 lowercase hexadecimal digits", truncate(m.SHA256, 80))
	case !validPageSize(m.PageSize):
		return invalid(nil, "manifest.json has an invalid page_size (%d): SQLite pages are a power of two from 512 to 65536 bytes", m.PageSize)
	}
	return nil
}

// isSHA256Hex reports whether s is a lowercase hex SHA-256.
func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// truncate shortens a hostile string before it goes into a message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// invalid returns the Invalid error every rejected dump gets.
func invalid(cause error, format string, args ...any) *snapdeck.Error {
	return &snapdeck.Error{Code: snapdeck.Invalid, Message: fmt.Sprintf(format, args...), Err: cause}
}

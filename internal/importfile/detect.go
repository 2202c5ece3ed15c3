package importfile

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"github.com/snapdeck/snapdeck/internal/dump"
)

// Format is what an uploaded file holds, told by its content.
type Format string

// The formats an import accepts.
const (
	FormatDump   Format = "dump"
	FormatSQLite Format = "sqlite"
	FormatSQL    Format = "sql"
)

// Label names the format for people: "a .dump", "a SQLite database",
// "SQL text".
func (f Format) Label() string {
	switch f {
	case FormatDump:
		return "a .dump"
	case FormatSQLite:
		return "a SQLite database"
	case FormatSQL:
		return "SQL text"
	}
	return string(f)
}

// detectSize is how much of a file Detect looks at.
const detectSize = 4096

// sqliteMagic opens every SQLite 3 database file.
const sqliteMagic = "SQLite format 3\x00"

// sqlFirstWords are the words a SQL text may start with. Anything else that
// is text is some other text file, refused before it is run.
var sqlFirstWords = map[string]bool{
	"PRAGMA": true, "BEGIN": true, "CREATE": true, "INSERT": true, "REPLACE": true, "UPDATE": true,
	"DELETE": true, "DROP": true, "ALTER": true, "WITH": true, "SELECT": true, "VALUES": true,
	"ANALYZE": true, "COMMIT": true, "END": true, "SAVEPOINT": true, "RELEASE": true, "ROLLBACK": true,
	"VACUUM": true, "ATTACH": true, "DETACH": true, "REINDEX": true, "EXPLAIN": true,
}

// Detect tells the format of a file from its first bytes (Prepare passes up
// to 4 KiB). A file that is none of the accepted formats gets an Invalid
// error naming what it looks like instead, when that is known.
func Detect(prefix []byte) (Format, error) {
	switch {
	case len(prefix) == 0:
		return "", invalid(nil, "the file is empty: %s", Accepted)
	case dump.IsDump(prefix):
		return FormatDump, nil
	case bytes.HasPrefix(prefix, []byte(sqliteMagic)):
		return FormatSQLite, nil
	case bytes.HasPrefix(prefix, []byte("SQLite format")) || bytes.HasPrefix(prefix, []byte("** This file contains an SQLite 2")):
		return "", invalid(nil, "this is a database of an old SQLite version, not SQLite 3: %s", Accepted)
	case bytes.HasPrefix(prefix, []byte{0x1f, 0x8b}):
		return "", invalid(nil, "this file is gzip-compressed: decompress it first (gunzip), or %s", Accepted)
	case bytes.HasPrefix(prefix, []byte("BZh")):
		return "", invalid(nil, "this file is bzip2-compressed: decompress it first (bunzip2), or %s", Accepted)
	case bytes.HasPrefix(prefix, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return "", invalid(nil, "this file is xz-compressed: decompress it first (unxz), or %s", Accepted)
	case bytes.HasPrefix(prefix, []byte("PK\x03\x04")):
		return "", invalid(nil, "this is a zip archive: extract the database from it first, or %s", Accepted)
	case len(prefix) >= 262 && string(prefix[257:262]) == "ustar":
		return "", invalid(nil, "this is an uncompressed tar archive (a .dump is compressed with zstd: tar --zstd): %s", Accepted)
	case bytes.HasPrefix(prefix, []byte{0xff, 0xfe}) || bytes.HasPrefix(prefix, []byte{0xfe, 0xff}):
		return "", invalid(nil, "this text is UTF-16: save it as UTF-8, or %s", Accepted)
	}
	if !isText(prefix) {
		return "", invalid(nil, "this is not a file snapdeck can load (it is neither a .dump, a SQLite database nor SQL text): %s", Accepted)
	}
	word := firstWord(prefix)
	if word == "" || sqlFirstWords[strings.ToUpper(word)] {
		// No word within the prefix (a long comment, only white space):
		// running it tells whether it holds SQL.
		return FormatSQL, nil
	}
	return "", invalid(nil, "this is a text file, but not SQL: it starts with %q rather than a statement such as CREATE or INSERT; %s", truncate(word, 40), Accepted)
}

// isText reports whether b looks like UTF-8 text: valid UTF-8 (a character
// cut by the end of b allowed), without NUL or other control characters
// than white space.
func isText(b []byte) bool {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size <= 1 {
			return !utf8.FullRune(b) // a character cut by the end of the prefix
		}
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' && r != '\f' || r == 0x7f {
			return false
		}
		b = b[size:]
	}
	return true
}

// firstWord returns the first word of SQL text after white space and
// comments, or "" when the prefix ends first.
func firstWord(b []byte) string {
	s := strings.TrimPrefix(string(b), "\ufeff")
	for {
		s = strings.TrimLeft(s, " \t\r\n\f")
		switch {
		case strings.HasPrefix(s, "--"):
			i := strings.IndexByte(s, '\n')
			if i < 0 {
				return ""
			}
			s = s[i+1:]
			continue
		case strings.HasPrefix(s, "/*"):
			i := strings.Index(s[2:], "*/")
			if i < 0 {
				return ""
			}
			s = s[2+i+2:]
			continue
		}
		end := strings.IndexFunc(s, func(r rune) bool {
			return !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
		})
		if end == 0 {
			end = 1 // punctuation: a word of its own
		}
		if end < 0 {
			end = len(s)
		}
		if len(s) > 0 && end == 1 {
			_, size := utf8.DecodeRuneInString(s)
			end = size
		}
		return s[:end]
	}
}

// truncate shortens a string from a hostile file before it goes into a
// message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

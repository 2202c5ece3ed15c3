// Package sqlitemsg turns a driver error into SQLite's own sentence, the
// words a user reads after "SQLite says:".
package sqlitemsg

import (
	"errors"
	"strconv"
	"strings"

	"modernc.org/sqlite"
)

// Words is SQLite's own message of err. The driver writes
// "<result code text>: <message> (<code>)", with " (SQLITE_BUSY)" after it
// for a busy database, or only "<result code text> (<code>)" when SQLite
// has nothing to add. The result code texts (sqlite3_errstr) hold no
// colon, so the message is what follows the first ": "; it may itself
// repeat the code's words ("constraint failed: UNIQUE constraint failed:
// t.a"), which stay. Context that callers wrapped around the driver's
// error is left out. An error that is not SQLite's is returned as it is.
func Words(err error) string {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err.Error()
	}
	msg := strings.TrimSuffix(se.Error(), " (SQLITE_BUSY)")
	msg = strings.TrimSuffix(msg, " ("+strconv.Itoa(se.Code())+")")
	if _, rest, ok := strings.Cut(msg, ": "); ok && rest != "" {
		return rest
	}
	return msg
}

// Package importfile turns an uploaded file into a complete, checked SQLite
// database image, ready to replace a hosted database: a snapdeck .dump, a
// plain SQLite database file, or SQL text as `sqlite3 DB .dump` writes it.
//
// The format is told by content, never by file name (Detect). Everything is
// checked before Prepare reports success (SPEC §7): a .dump by every check of
// dump.Extract; a SQLite file by its header, its size and PRAGMA
// integrity_check; SQL text by running it into a fresh database under an
// SQLite authorizer that refuses every statement reaching another file, with
// a time and a size limit. Every refusal is a *snapdeck.Error whose message
// says, in the user's terms, what was wrong and what is accepted.
package importfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/snapdeck/snapdeck/internal/bytesize"
	"github.com/snapdeck/snapdeck/internal/dump"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// Accepted says what an import takes; every refusal ends with it.
const Accepted = "upload a snapdeck .dump, a SQLite database file, or SQL text (the output of sqlite3 DB .dump)"

// DefaultMaxSize is the size limit used when Limits.MaxSize is zero: serve's
// --max-import-size default.
const DefaultMaxSize = dump.DefaultMaxImageSize

// DefaultCheckTimeout bounds the check of one upload when
// Limits.CheckTimeout is zero: serve's --import-check-timeout default. The
// slowest check is SQL text: 124 MB of .dump INSERTs of one table ran in
// 26 s here (4.8 MB/s, two cores shared with other work), so five minutes
// cover about 1.4 GB of it; a .dump or SQLite file of the 4 GiB
// --max-import-size default is checked well within them. A statement that
// never ends, with a client that stays, holds a check slot five minutes at
// most; larger SQL text needs a larger --import-check-timeout.
const DefaultCheckTimeout = 5 * time.Minute

// Limits bounds what Prepare accepts.
type Limits struct {
	// MaxSize is the largest database image accepted, in bytes: the
	// decompressed image of a .dump, a SQLite file, or the database SQL
	// text builds. Zero means DefaultMaxSize.
	MaxSize int64
	// CheckTimeout is how long checking one upload may take, running SQL
	// text included; zero means DefaultCheckTimeout.
	CheckTimeout time.Duration
}

func (l Limits) maxSize() int64 {
	if l.MaxSize <= 0 {
		return DefaultMaxSize
	}
	return l.MaxSize
}

func (l Limits) checkTimeout() time.Duration {
	if l.CheckTimeout <= 0 {
		return DefaultCheckTimeout
	}
	return l.CheckTimeout
}

// Progress reports how many bytes of the uploaded file were processed.
type Progress func(done, total int64)

// Result describes a prepared database image.
type Result struct {
	// Format is what the upload was.
	Format Format
	// Size is the byte size of the prepared database image.
	Size int64
}

// Prepare reads the uploaded file at srcPath, checks it completely and
// writes the database it holds to dstPath, a new file, fsynced. On any
// failure dstPath does not exist afterwards. srcPath is left for the
// caller, except that a SQLite file may be renamed to dstPath rather than
// copied when both are on one file system.
func Prepare(ctx context.Context, srcPath, dstPath string, lim Limits, progress Progress) (res Result, err error) {
	if progress == nil {
		progress = func(int64, int64) {}
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, lim.checkTimeout())
	defer cancel()
	defer func() {
		// Out of time, rather than stopped by the caller: the file is
		// refused for what it costs to check.
		if err != nil && parent.Err() == nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && snapdeck.ErrorCode(err) == snapdeck.Internal {
			err = invalid(err, "checking the file took longer than this console allows (%s)", lim.checkTimeout())
		}
	}()
	f, err := os.Open(srcPath)
	if err != nil {
		return Result{}, fmt.Errorf("import: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Result{}, fmt.Errorf("import: %w", err)
	}
	prefix := make([]byte, detectSize)
	n, err := io.ReadFull(f, prefix)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return Result{}, fmt.Errorf("import: %w", err)
	}
	format, err := Detect(prefix[:n])
	if err != nil {
		return Result{}, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return Result{}, fmt.Errorf("import: %w", err)
	}
	res = Result{Format: format}
	defer func() {
		if err != nil {
			snapdeck.RemoveDatabaseFiles(dstPath)
		}
	}()
	switch format {
	case FormatDump:
		var m dump.Manifest
		m, err = dump.Extract(ctx, &countingReader{r: f, total: fi.Size(), progress: progress}, dstPath, dump.Limits{MaxImageSize: lim.maxSize()})
		if err == nil {
			// Extract keeps what it writes private; a hosted database
			// has the mode of every other.
			err = os.Chmod(dstPath, snapdeck.FileMode)
		}
		res.Size = m.Size
	case FormatSQLite:
		res.Size, err = prepareSQLite(ctx, f, srcPath, dstPath, fi.Size(), prefix[:n], lim, progress)
	case FormatSQL:
		res.Size, err = runSQL(ctx, f, fi.Size(), dstPath, lim, progress)
	}
	if err != nil {
		return Result{}, err
	}
	return res, nil
}

// countingReader reports the bytes read through it as progress.
type countingReader struct {
	r        io.Reader
	n, total int64
	progress Progress
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.progress(c.n, c.total)
	return n, err
}

// invalid returns the Invalid error every refused upload gets.
func invalid(cause error, format string, args ...any) *snapdeck.Error {
	return &snapdeck.Error{Code: snapdeck.Invalid, Message: fmt.Sprintf(format, args...), Err: cause}
}

// tooLarge returns the TooLarge error of an upload over the limit.
func tooLarge(what string, size, limit int64) *snapdeck.Error {
	return &snapdeck.Error{Code: snapdeck.TooLarge,
		Message: fmt.Sprintf("%s is %s, over this console's import limit of %s", what, bytesize.Format(size), bytesize.Format(limit))}
}

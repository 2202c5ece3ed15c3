package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/snapdeck/snapdeck/internal/bytesize"
	"github.com/snapdeck/snapdeck/internal/dump"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// dumpUsage is the help text of `snapdeck dump`.
const dumpUsage = `Usage:
  snapdeck dump inspect FILE
      print the manifest of a .dump
  snapdeck dump verify FILE [--max-size 4GiB]
      check a .dump completely, keep nothing
  snapdeck dump extract FILE [--out ./database.sqlite] [--max-size 4GiB]
      check a .dump and write its database

verify checks the compression, the archive, the manifest, the size, the
SHA-256, the SQLite header and PRAGMA integrity_check, using a temporary file
in $TMPDIR. extract does the same and keeps the database; it never overwrites
an existing file. The format is described in docs/dump-format.md.
`

// dumpCommand implements `snapdeck dump inspect|verify|extract FILE
// [--out PATH] [--max-size 4GiB]`: reading .dump files outside the console.
type dumpCommand struct{ stdout, stderr io.Writer }

// Run runs the sub-command named by args[0] on the file that follows.
func (c *dumpCommand) Run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{"dump: missing sub-command\n\n" + dumpUsage}
	}
	verb := args[0]
	fs := flag.NewFlagSet("dump "+verb, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() { fmt.Fprint(c.stderr, dumpUsage) }
	out := fs.String("out", "database.sqlite", "where extract writes the database")
	maxSize := dump.DefaultMaxImageSize
	fs.Func("max-size", "the largest database accepted, uncompressed (default "+bytesize.Format(maxSize)+")", func(s string) error {
		n, err := bytesize.Parse(s)
		if err != nil {
			return err
		}
		if n <= 0 {
			return errors.New("must be more than zero")
		}
		maxSize = n
		return nil
	})
	switch verb {
	case "inspect", "verify", "extract":
	case "help", "-h", "--help":
		fmt.Fprint(c.stdout, dumpUsage)
		return nil
	default:
		return usageError{fmt.Sprintf("dump: unknown sub-command %q\n\n%s", verb, dumpUsage)}
	}
	files, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	if len(files) != 1 {
		return usageError{fmt.Sprintf("dump %s: want one FILE, got %d\n\n%s", verb, len(files), dumpUsage)}
	}
	path, lim := files[0], dump.Limits{MaxImageSize: maxSize}

	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	switch verb {
	case "inspect":
		m, err := dump.Inspect(f)
		if err != nil {
			return dumpFileError(path, err)
		}
		printManifest(c.stdout, m)
		fmt.Fprintln(c.stdout, "\nOnly the manifest was read; 'snapdeck dump verify' checks the data.")
		return nil
	case "verify":
		m, err := dump.Verify(ctx, f, os.TempDir(), lim)
		if err != nil {
			return dumpFileError(path, err)
		}
		fmt.Fprintf(c.stdout, "ok: %s is a valid .dump (checksum, SQLite header and integrity_check passed)\n\n", path)
		printManifest(c.stdout, m)
		return nil
	default: // extract
		// Refuse early rather than after minutes of work; Extract's rename
		// would replace the file.
		if _, err := os.Lstat(*out); err == nil {
			return fmt.Errorf("%s already exists; choose another --out or remove it first", *out)
		}
		m, err := dump.Extract(ctx, f, *out, lim)
		if err != nil {
			return dumpFileError(path, err)
		}
		fmt.Fprintf(c.stdout, "extracted %s to %s (%s, sha256 %s)\n", path, *out, bytesize.Format(m.Size), m.SHA256)
		return nil
	}
}

// parseInterspersed parses flags that may come before or after the
// positional arguments ("FILE --out x" as well as "--out x FILE"), which the
// flag package alone does not allow.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

// dumpFileError names the file in a refusal. A refusal's message is the
// whole story for a user; its cause is for developers, so it is dropped.
func dumpFileError(path string, err error) error {
	if e, ok := snapdeck.AsError(err); ok && e.Code != snapdeck.Internal {
		return &snapdeck.Error{Code: e.Code, Message: path + ": " + e.Message}
	}
	return fmt.Errorf("%s: %w", path, err)
}

// printManifest writes m for people, one fact per line.
func printManifest(w io.Writer, m dump.Manifest) {
	fmt.Fprintf(w, "format      %d\n", m.FormatVersion)
	fmt.Fprintf(w, "database    %s (%s)\n", m.DatabaseName, m.DatabaseID)
	fmt.Fprintf(w, "snapshot    %s, %s, taken %s\n", m.SnapshotID, m.SnapshotType, m.SnapshotTime.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "engine      %s, SQLite %s\n", m.Engine, m.SQLiteVersion)
	fmt.Fprintf(w, "size        %d bytes (%s), page size %d\n", m.Size, bytesize.Format(m.Size), m.PageSize)
	fmt.Fprintf(w, "sha256      %s\n", m.SHA256)
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/snapdeck/snapdeck/internal/bytesize"
	"github.com/snapdeck/snapdeck/internal/dump"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// dumpCommand implements `snapdeck dump inspect|verify|extract FILE`.
type dumpCommand struct{ stdout, stderr io.Writer }

const dumpUsage = `Usage:
  snapdeck dump inspect FILE                 print the manifest
  snapdeck dump verify [--max-size 4GiB] FILE check everything: archive, checksum, SQLite integrity
  snapdeck dump extract [--out database.sqlite] [--max-size 4GiB] FILE
`

// Run runs one dump sub-command.
func (c *dumpCommand) Run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{dumpUsage}
	}
	verb, args := args[0], args[1:]
	fs := flag.NewFlagSet("snapdeck dump "+verb, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	out := fs.String("out", "database.sqlite", "where extract writes the database (never overwritten)")
	maxSize := fs.String("max-size", bytesize.Format(dump.DefaultMaxImageSize), "largest database image accepted")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() != 1 {
		return usageError{"name one .dump file\n\n" + dumpUsage}
	}
	limit, err := bytesize.Parse(*maxSize)
	if err != nil {
		return usageError{fmt.Sprintf("--max-size: %v", err)}
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	lim := dump.Limits{MaxImageSize: limit}
	var m dump.Manifest
	switch verb {
	case "inspect":
		m, err = dump.Inspect(f)
	case "verify":
		m, err = dump.Verify(ctx, f, os.TempDir(), lim)
	case "extract":
		if _, serr := os.Stat(*out); serr == nil {
			return fmt.Errorf("%s exists; choose another --out or remove it first", *out)
		}
		m, err = dump.Extract(ctx, f, *out, lim)
	default:
		return usageError{fmt.Sprintf("unknown dump command %q\n\n%s", verb, dumpUsage)}
	}
	if err != nil {
		if e, ok := snapdeck.AsError(err); ok {
			return fmt.Errorf("%s: %s", fs.Arg(0), e.Message)
		}
		return err
	}
	c.printManifest(m)
	switch verb {
	case "verify":
		fmt.Fprintln(c.stdout, "ok: archive, sizes, SHA-256 and SQLite integrity check all pass")
	case "extract":
		fmt.Fprintf(c.stdout, "ok: wrote %s (%s), verified\n", *out, bytesize.Format(m.Size))
	}
	return nil
}

func (c *dumpCommand) printManifest(m dump.Manifest) {
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	rows := [][2]string{
		{"format version", fmt.Sprint(m.FormatVersion)},
		{"database", fmt.Sprintf("%s (%s)", m.DatabaseName, m.DatabaseID)},
		{"snapshot", fmt.Sprintf("%s, %s", m.SnapshotID, m.SnapshotType)},
		{"taken", m.SnapshotTime.UTC().Format("2006-01-02 15:04:05 UTC")},
		{"engine", m.Engine},
		{"SQLite", m.SQLiteVersion},
		{"size", fmt.Sprintf("%s (%d bytes, page size %d)", bytesize.Format(m.Size), m.Size, m.PageSize)},
		{"sha256", m.SHA256},
	}
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\n", r[0], r[1])
	}
	w.Flush()
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/auth"
	"github.com/snapdeck/snapdeck/store"
)

// adminCommand is the operator's way in, run on the server itself with the
// console's data directory: `snapdeck admin reset-password [--data DIR] EMAIL`.
// It works whether the console is running or not.
type adminCommand struct {
	getenv         func(string) string
	stdout, stderr io.Writer

	dataDir string
	email   string
}

const adminUsage = `Usage:
  snapdeck admin reset-password [--data ./data] EMAIL

reset-password gives the user a new random password, prints it, and ends
every session of the user. Nothing else changes: a disabled user stays
disabled. --data is also read from SNAPDECK_DATA.
`

func (c *adminCommand) parse(args []string) error {
	if len(args) == 0 || args[0] != "reset-password" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(c.stdout, adminUsage)
			return flag.ErrHelp
		}
		return usageError{"admin: want a task\n\n" + adminUsage}
	}
	fs := flag.NewFlagSet("snapdeck admin reset-password", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() { fmt.Fprint(c.stderr, adminUsage) }
	f := &envFlags{fs: fs, getenv: c.getenv}
	f.String(&c.dataDir, "data", "./data", "data directory")
	if err := errors.Join(f.errs...); err != nil {
		return usageError{err.Error()}
	}
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if len(pos) != 1 {
		return usageError{"admin reset-password: want one EMAIL\n\n" + adminUsage}
	}
	c.email = pos[0]
	return nil
}

// Run resets the password and prints it, alone on its line, to stdout; what
// it did goes to stderr.
func (c *adminCommand) Run(ctx context.Context) error {
	path := filepath.Join(c.dataDir, "console.db")
	// Opening the store would create an empty one: a wrong --data must
	// say so instead.
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("no console store at %s (is --data right?): %w", path, err)
	}
	logger := slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	db, err := store.Open(ctx, path, logger)
	if err != nil {
		return err
	}
	defer db.Close(context.Background())
	password, u, err := auth.NewAuthenticator(db, activity.New(db, nil, logger), logger, nil).ResetPassword(ctx, c.email, "snapdeck admin reset-password")
	if err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, password)
	fmt.Fprintf(c.stderr, "New password of %s (%s) printed above; every session of the user has ended.\n", u.Email, u.Role)
	if u.Disabled {
		fmt.Fprintf(c.stderr, "The account is disabled and stays so: an admin enables it on the Users page.\n")
	}
	return nil
}

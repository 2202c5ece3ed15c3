package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/snapdeck/snapdeck/internal/auth"
	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/job"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/snapstore"
	"github.com/snapdeck/snapdeck/store"
	"github.com/snapdeck/snapdeck/web"
)

// serveCommand runs the console: `snapdeck [serve] [flags]`.
type serveCommand struct {
	getenv         func(string) string
	stdout, stderr io.Writer

	addr          string
	dataDir       string
	maxImportSize int64
	queryTimeout  time.Duration
	logLevel      string
	cadence       map[string]*time.Duration
	retention     map[string]*time.Duration
	adminEmail    string
	adminPassword string
}

// Plan defaults of SPEC §1.
var (
	defaultCadence   = map[string]time.Duration{"free": 24 * time.Hour, "professional": 24 * time.Hour, "enterprise": time.Hour}
	defaultRetention = map[string]time.Duration{"free": 7 * 24 * time.Hour, "professional": 7 * 24 * time.Hour, "enterprise": 90 * 24 * time.Hour}
)

func (c *serveCommand) parse(args []string) error {
	fs := flag.NewFlagSet("snapdeck serve", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	f := &envFlags{fs: fs, getenv: c.getenv}
	f.String(&c.addr, "addr", "127.0.0.1:8080", "address to listen on")
	f.String(&c.dataDir, "data", "./data", "data directory")
	f.Size(&c.maxImportSize, "max-import-size", 4<<30, "largest upload accepted for import")
	f.Duration(&c.queryTimeout, "query-timeout", 30*time.Second, "interrupt a Query tab statement running longer")
	f.String(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	c.cadence, c.retention = map[string]*time.Duration{}, map[string]*time.Duration{}
	for _, plan := range []string{"free", "professional", "enterprise"} {
		c.cadence[plan], c.retention[plan] = new(time.Duration), new(time.Duration)
		f.Duration(c.cadence[plan], "cadence-"+plan, defaultCadence[plan], "scheduled snapshot interval of the "+plan+" plan")
		f.Duration(c.retention[plan], "retention-"+plan, defaultRetention[plan], "how long "+plan+" snapshots are kept")
	}
	c.adminEmail, c.adminPassword = c.getenv("SNAPDECK_ADMIN_EMAIL"), c.getenv("SNAPDECK_ADMIN_PASSWORD")
	if err := errors.Join(f.errs...); err != nil {
		return usageError{err.Error()}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("serve takes no arguments, got %q", fs.Args())}
	}
	for plan, d := range c.cadence {
		if *d <= 0 {
			return usageError{fmt.Sprintf("--cadence-%s must be positive", plan)}
		}
		if *c.retention[plan] <= 0 {
			return usageError{fmt.Sprintf("--retention-%s must be positive", plan)}
		}
	}
	return nil
}

// Run serves the console until ctx is cancelled, then shuts down
// gracefully: requests in flight finish, databases and the store close.
func (c *serveCommand) Run(ctx context.Context) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return usageError{fmt.Sprintf("--log-level: %v", err)}
	}
	logger := slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: level}))

	for _, dir := range []string{c.dataDir, filepath.Join(c.dataDir, "databases"), filepath.Join(c.dataDir, "snapshots")} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("create data directory: %w", err)
		}
	}
	// tmp/ holds only work in progress; whatever is there was interrupted.
	tmp := filepath.Join(c.dataDir, "tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("clear %s: %w", tmp, err)
	}
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		return err
	}

	db, err := store.Open(ctx, filepath.Join(c.dataDir, "console.db"), logger)
	if err != nil {
		return err
	}
	defer db.Close(context.Background())
	host, err := database.NewHost(filepath.Join(c.dataDir, "databases"), logger)
	if err != nil {
		return err
	}
	host.QueryTimeout = c.queryTimeout
	defer host.Close(context.Background())
	snaps, err := snapstore.Open(ctx, filepath.Join(c.dataDir, "snapshots"), logger)
	if err != nil {
		return err
	}
	defer snaps.Close(context.Background())
	jobs := job.NewRunner(db, logger)
	// Closed before the store and files beneath it: running jobs are
	// cancelled and recorded as stopped.
	defer jobs.Close(context.Background())
	databases := database.NewManager(db, host, logger)
	policies := map[snapdeck.Plan]snapdeck.PlanPolicy{}
	for _, plan := range snapdeck.Plans {
		policies[plan] = snapdeck.PlanPolicy{Cadence: *c.cadence[string(plan)], Retention: *c.retention[string(plan)]}
	}
	if err := databases.EnableSnapshots(database.Snapshots{Store: snaps, Jobs: jobs, Policies: policies,
		TmpDir: tmp, ExportDir: filepath.Join(tmp, "exports"), Engine: "snapdeck " + version, SQLiteVersion: sqliteVersion()}); err != nil {
		return err
	}
	// Every database gets a Scheduled snapshot as soon as it exists.
	databases.OnCreate = func(ctx context.Context, d snapdeck.Database) {
		if _, _, err := databases.TakeSnapshot(context.WithoutCancel(ctx), d.ID, snapdeck.SnapshotScheduled, "Database created", "system"); err != nil {
			logger.Error("snapshot of new database", "database_id", d.ID, "err", err)
		}
	}
	if err := databases.Recover(ctx); err != nil {
		return fmt.Errorf("recover interrupted work: %w", err)
	}
	authn := auth.NewAuthenticator(db, logger, nil)
	created, generated, err := authn.EnsureAdmin(ctx, c.adminEmail, c.adminPassword)
	if err != nil {
		return err
	}

	srv, err := web.New(ctx, web.Config{Version: version}, web.Deps{Store: db, Databases: databases, Auth: authn, Logger: logger})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.addr, err)
	}
	url := "http://" + ln.Addr().String()
	fmt.Fprintf(c.stdout, "snapdeck %s is serving on %s (data in %s)\n", version, url, c.dataDir)
	if created {
		email := c.adminEmail
		if email == "" {
			email = "admin@localhost"
		}
		if generated != "" {
			fmt.Fprintf(c.stdout, "First start: sign in as %s with password %s (shown only this once)\n", email, generated)
		} else {
			fmt.Fprintf(c.stdout, "First start: sign in as %s with the password from SNAPDECK_ADMIN_PASSWORD\n", email)
		}
	}

	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

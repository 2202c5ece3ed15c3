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
	"net/url"
	"time"

	"github.com/snapdeck/snapdeck/internal/app"
	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/importfile"
	"github.com/snapdeck/snapdeck/internal/pitr"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/snapstore/s3blobs"
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
	exportTTL     time.Duration
	exportCache   int64
	logLevel      string
	cadence       map[string]*time.Duration
	retention     map[string]*time.Duration
	// pitrWindow is each plan's point-in-time window, pitrInterval how
	// soon a commit becomes restorable (SPEC §10).
	pitrWindow    map[string]*time.Duration
	pitrInterval  time.Duration
	adminEmail    string
	adminPassword string
	// snapshotWorkers bounds the scheduler's snapshots at once; notifyURL,
	// when set, receives a JSON POST when a snapshot fails or a restore ends.
	snapshotWorkers int
	notifyURL       string
	// publicURL is the console's address as its users reach it (behind a
	// TLS-terminating proxy), checked and without a trailing slash.
	publicURL string
	// importChecks bounds the uploads checked at once, importCheckTimeout
	// the time one check may take.
	importChecks       int
	importCheckTimeout time.Duration
	// snapshotStore is "" (snapshots/ in the data directory) or
	// s3://BUCKET/PREFIX, reached as s3 says.
	snapshotStore string
	s3            app.S3Config
}

func (c *serveCommand) parse(args []string) error {
	fs := flag.NewFlagSet("snapdeck serve", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	f := &envFlags{fs: fs, getenv: c.getenv}
	f.String(&c.addr, "addr", "127.0.0.1:8080", "address to listen on")
	f.String(&c.dataDir, "data", "./data", "data directory")
	f.Size(&c.maxImportSize, "max-import-size", importfile.DefaultMaxSize, "largest upload accepted for import")
	f.Duration(&c.queryTimeout, "query-timeout", 30*time.Second, "interrupt a Query tab statement running longer")
	f.Int(&c.importChecks, "import-checks", database.DefaultImportChecks, "uploads checked at once; more are refused with 429")
	f.Duration(&c.importCheckTimeout, "import-check-timeout", importfile.DefaultCheckTimeout, "refuse an upload whose check (running SQL text included) takes longer")
	f.String(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	c.cadence, c.retention = map[string]*time.Duration{}, map[string]*time.Duration{}
	for p, def := range snapdeck.DefaultPolicies() {
		plan := string(p)
		c.cadence[plan], c.retention[plan] = new(time.Duration), new(time.Duration)
		f.Duration(c.cadence[plan], "cadence-"+plan, def.Cadence, "scheduled snapshot interval of the "+plan+" plan")
		f.Duration(c.retention[plan], "retention-"+plan, def.Retention, "how long "+plan+" snapshots are kept")
	}
	c.pitrWindow = map[string]*time.Duration{}
	for p, def := range pitr.DefaultWindows {
		plan := string(p)
		c.pitrWindow[plan] = new(time.Duration)
		f.Duration(c.pitrWindow[plan], "pitr-"+plan, def, "point-in-time restore window of the "+plan+" plan; 0 turns it off")
	}
	f.Duration(&c.pitrInterval, "pitr-interval", time.Second, "how soon a commit becomes restorable to a point in time")
	f.Int(&c.snapshotWorkers, "snapshot-workers", 2, "scheduled snapshots taken at once")
	f.Duration(&c.exportTTL, "export-ttl", 24*time.Hour, "how long a prepared .dump export is kept for download")
	f.Size(&c.exportCache, "export-cache-size", database.DefaultExportCacheSize, "disk the prepared .dump exports may take; the oldest go first")
	f.String(&c.notifyURL, "notify-url", "", "webhook that receives a JSON POST when a snapshot fails or a restore ends")
	f.String(&c.publicURL, "public-url", "", "the console's address as users reach it, e.g. https://console.example.com behind a TLS proxy")
	f.String(&c.snapshotStore, "snapshot-store", "", "where snapshots are kept: empty for snapshots/ in the data directory, or s3://BUCKET/PREFIX")
	f.String(&c.s3.Endpoint, "s3-endpoint", "", "URL of the S3 server of an s3:// snapshot store, e.g. http://127.0.0.1:8333")
	f.String(&c.s3.Region, "s3-region", "us-east-1", "region of the S3 snapshot store")
	f.SizeOrAuto(&c.s3.CacheSize, "snapshot-cache-size", "disk the local cache of an s3:// snapshot store may take, or auto: the database files' size (twice with point-in-time replication) with a quarter more and 256 MiB, at most half the cache's free disk, sized again every 10 s")
	c.adminEmail, c.adminPassword = c.getenv("SNAPDECK_ADMIN_EMAIL"), c.getenv("SNAPDECK_ADMIN_PASSWORD")
	c.s3.AccessKeyID, c.s3.SecretAccessKey = c.getenv("SNAPDECK_S3_ACCESS_KEY_ID"), c.getenv("SNAPDECK_S3_SECRET_ACCESS_KEY")
	if c.s3.AccessKeyID == "" && c.s3.SecretAccessKey == "" {
		c.s3.AccessKeyID, c.s3.SecretAccessKey = c.getenv("AWS_ACCESS_KEY_ID"), c.getenv("AWS_SECRET_ACCESS_KEY")
	}
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
	if c.exportCache <= 0 {
		return usageError{"--export-cache-size must be positive"}
	}
	if c.snapshotStore != "" {
		if _, _, err := s3blobs.ParseURL(c.snapshotStore); err != nil {
			return usageError{"--snapshot-store: " + err.Error()}
		}
	}
	if c.snapshotWorkers < 1 {
		return usageError{"--snapshot-workers must be at least 1"}
	}
	if c.importChecks < 1 {
		return usageError{"--import-checks must be at least 1"}
	}
	if c.importCheckTimeout <= 0 {
		return usageError{"--import-check-timeout must be positive"}
	}
	if u, err := url.Parse(c.notifyURL); c.notifyURL != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
		return usageError{fmt.Sprintf("--notify-url %q: want an http:// or https:// URL", c.notifyURL)}
	}
	if c.publicURL != "" {
		u, err := web.ParsePublicURL(c.publicURL)
		if err != nil {
			return usageError{"--public-url " + err.Error()}
		}
		c.publicURL = u
	}
	for plan, d := range c.pitrWindow {
		if *d < 0 {
			return usageError{fmt.Sprintf("--pitr-%s must not be negative", plan)}
		}
	}
	if c.pitrInterval <= 0 {
		return usageError{"--pitr-interval must be positive"}
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

	policies := map[snapdeck.Plan]snapdeck.PlanPolicy{}
	windows := map[snapdeck.Plan]time.Duration{}
	for _, plan := range snapdeck.Plans {
		policies[plan] = snapdeck.PlanPolicy{Cadence: *c.cadence[string(plan)], Retention: *c.retention[string(plan)]}
		windows[plan] = *c.pitrWindow[string(plan)]
	}
	a, err := app.New(ctx, app.Config{DataDir: c.dataDir, Logger: logger, Version: version, SQLiteVersion: sqliteVersion(),
		QueryTimeout: c.queryTimeout, Policies: policies, SnapshotWorkers: c.snapshotWorkers, NotifyURL: c.notifyURL,
		ExportTTL: c.exportTTL, ExportCacheSize: c.exportCache, ImportChecks: c.importChecks,
		PITRWindows: windows, PITRInterval: c.pitrInterval,
		AdminEmail: c.adminEmail, AdminPassword: c.adminPassword, SnapshotStore: c.snapshotStore, S3: c.s3,
		Web: web.Config{Version: version, MaxImportSize: c.maxImportSize, PublicURL: c.publicURL, ImportCheckTimeout: c.importCheckTimeout}})
	if err != nil {
		return err
	}
	// The last thing serve does: jobs, the scheduler and every database
	// are closed, so stopping the process loses nothing.
	defer a.Close(context.Background())
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.addr, err)
	}
	url := "http://" + ln.Addr().String()
	fmt.Fprintf(c.stdout, "snapdeck %s is serving on %s (data in %s)\n", version, url, c.dataDir)
	if a.AdminCreated {
		email := c.adminEmail
		if email == "" {
			email = "admin@localhost"
		}
		if a.AdminPassword != "" {
			fmt.Fprintf(c.stdout, "First start: sign in as %s with password %s (shown only this once)\n", email, a.AdminPassword)
		} else {
			fmt.Fprintf(c.stdout, "First start: sign in as %s with the password from SNAPDECK_ADMIN_PASSWORD\n", email)
		}
	}

	hs := &http.Server{Handler: a.Web, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down: finishing requests, cancelling snapshots under way, closing databases")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

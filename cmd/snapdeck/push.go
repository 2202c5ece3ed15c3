package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"modernc.org/sqlite"

	"github.com/snapdeck/snapdeck/internal/bytesize"
	"github.com/snapdeck/snapdeck/internal/importfile"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/upload"
)

// Exit codes of push-to-cloud beyond 0 (loaded), 1 (failed) and 2 (usage),
// documented in README.md and `snapdeck push-to-cloud -h`.
const (
	// exitRefused: the database holds data and --overwrite was not given;
	// nothing was changed.
	exitRefused = 3
	// exitRejected: the file is not a SQLite database or .dump the console
	// accepts (or is over its import limit); nothing was changed.
	exitRejected = 4
	// exitAuth: the API key was refused, or may not load databases.
	exitAuth = 5
)

// exitError carries a sub-command's own exit code.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

const pushUsage = `Usage: snapdeck push-to-cloud --url URL --database ID [--overwrite] FILE

Loads FILE into database ID of the snapdeck console at URL, replacing its
data, and prints the id of the Load snapshot that ends the load. FILE is a
SQLite database (.sqlite, .db), possibly in use: a consistent copy is taken
with SQLite's backup, never a raw file copy; or a snapdeck .dump, sent as it
is. The console takes a safety snapshot before it overwrites anything.

The API key comes from SNAPDECK_CLIENT_ID and SNAPDECK_CLIENT_SECRET, or
--client-id and --client-secret (create one on the console's API keys page).
The upload sends its size and SHA-256 first, goes in chunks, and retries
failures with backoff, resuming where it stopped.

Exit codes:
  0  loaded; the Load snapshot's id is printed
  1  failed (network, console or load error); see the message
  2  wrong usage
  3  the database holds data and --overwrite was not given; nothing changed
  4  the console refused the file (not a SQLite database or .dump it accepts,
     or over its import limit); nothing changed
  5  the API key was refused, or belongs to a viewer

Flags:
`

// pushCommand is `snapdeck push-to-cloud`.
type pushCommand struct {
	getenv         func(string) string
	stdout, stderr io.Writer

	url, database          string
	clientID, clientSecret string
	overwrite              bool
	chunkSize              int64
	retries                int
	file                   string

	http   *http.Client
	client *upload.Client
	// backoff is the wait before retry n (from 0); tests shorten it.
	backoff func(n int) time.Duration
}

func (c *pushCommand) parse(args []string) error {
	fs := flag.NewFlagSet("snapdeck push-to-cloud", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprint(c.stderr, pushUsage)
		fs.PrintDefaults()
	}
	f := &envFlags{fs: fs, getenv: c.getenv}
	f.String(&c.url, "url", "", "the console's URL, e.g. https://snapdeck.example.com")
	f.String(&c.database, "database", "", "id of the database to load into (8 characters)")
	f.String(&c.clientID, "client-id", "", "API key client id")
	f.String(&c.clientSecret, "client-secret", "", "API key client secret")
	f.Bool(&c.overwrite, "overwrite", false, "replace the data of a database that already holds some")
	f.Size(&c.chunkSize, "chunk-size", 32<<20, "bytes sent per upload request")
	f.Int(&c.retries, "retries", 8, "attempts at a failing request before giving up")
	if err := errors.Join(f.errs...); err != nil {
		return usageError{err.Error()}
	}
	// Flags may follow FILE, as in the usage line's order or any other.
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	switch {
	case len(rest) != 1:
		return usageError{"push-to-cloud takes one FILE\n\n" + pushUsage}
	case c.url == "" || c.database == "":
		return usageError{"push-to-cloud needs --url and --database\n\n" + pushUsage}
	case c.clientID == "" || c.clientSecret == "":
		return usageError{"push-to-cloud needs an API key: set SNAPDECK_CLIENT_ID and SNAPDECK_CLIENT_SECRET (or --client-id and --client-secret)"}
	case c.chunkSize <= 0 || c.chunkSize > upload.MaxChunk:
		return usageError{"--chunk-size must be between 1 byte and 64MiB"}
	}
	c.file = rest[0]
	c.url = strings.TrimRight(c.url, "/")
	return nil
}

// Run pushes the file and waits for the load.
func (c *pushCommand) Run(ctx context.Context) error {
	if c.http == nil {
		c.http = &http.Client{Timeout: 10 * time.Minute}
	}
	if c.backoff == nil {
		c.backoff = func(n int) time.Duration { return min(time.Duration(500<<n)*time.Millisecond, 30*time.Second) }
	}
	c.client = &upload.Client{HTTP: c.http, URL: c.url, UserAgent: "snapdeck-push-to-cloud/" + version}
	path, cleanup, err := c.prepare(ctx)
	if err != nil {
		return err
	}
	defer cleanup()
	size, sum, err := fileDigest(path)
	if err != nil {
		return err
	}
	if err := c.authenticate(ctx); err != nil {
		return err
	}
	up, err := c.upload(ctx, path, size, sum)
	if err != nil {
		return err
	}
	return c.await(ctx, up)
}

// prepare returns the file to send: a consistent copy of a SQLite
// database, or the file itself.
func (c *pushCommand) prepare(ctx context.Context) (string, func(), error) {
	f, err := os.Open(c.file)
	if err != nil {
		return "", nil, err
	}
	prefix := make([]byte, 4096)
	n, _ := io.ReadFull(f, prefix)
	f.Close()
	format, err := importfile.Detect(prefix[:n])
	if err != nil {
		return "", nil, exitError{exitRejected, fmt.Errorf("%s: %s", c.file, snapdeck.ErrorMessage(err))}
	}
	if format != importfile.FormatSQLite {
		return c.file, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "snapdeck-push-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	cp := filepath.Join(dir, filepath.Base(c.file))
	fmt.Fprintf(c.stderr, "Taking a consistent copy of %s with SQLite's backup\n", c.file)
	if err := backupDatabase(ctx, c.file, cp); err != nil {
		cleanup()
		return "", nil, exitError{exitRejected, fmt.Errorf("copy %s: %w", c.file, err)}
	}
	return cp, cleanup, nil
}

// backupDatabase copies the live database at src to dst with SQLite's
// online backup: one step copies every page inside one read transaction,
// so the copy is the database as of one moment, whatever writers do
// meanwhile (in WAL mode they are not even held up).
func backupDatabase(ctx context.Context, src, dst string) error {
	abs, err := filepath.Abs(src)
	if err != nil {
		return err
	}
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: abs}).String()+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		b, ok := dc.(interface {
			NewBackup(dstURI string) (*sqlite.Backup, error)
		})
		if !ok {
			return errors.New("the SQLite driver has no backup API")
		}
		bk, err := b.NewBackup((&url.URL{Scheme: "file", Path: dst}).String())
		if err != nil {
			return err
		}
		for {
			more, err := bk.Step(-1)
			if err != nil {
				bk.Finish()
				return err
			}
			if !more {
				break
			}
		}
		return bk.Finish()
	})
}

// fileDigest returns a file's size and hex SHA-256.
func fileDigest(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return n, hex.EncodeToString(h.Sum(nil)), err
}

// retry runs op until it succeeds, fails for good, or c.retries attempts
// failed: network errors, 5xx and 429 are worth another try after a
// backoff (429's Retry-After when given). An expired token is renewed once.
func (c *pushCommand) retry(ctx context.Context, what string, op func() error) error {
	renewed := false
	for n := 0; ; n++ {
		err := op()
		if err == nil {
			return nil
		}
		var ae *upload.APIError
		if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized && !renewed && c.client.Token != "" {
			renewed = true
			if aerr := c.authenticate(ctx); aerr != nil {
				return aerr
			}
			n--
			continue
		}
		if (errors.As(err, &ae) && !ae.Transient()) || ctx.Err() != nil {
			return err
		}
		if n+1 >= c.retries {
			return fmt.Errorf("%s: giving up after %d attempts: %w", what, n+1, err)
		}
		wait := c.backoff(n)
		if ae != nil && ae.Status == http.StatusTooManyRequests {
			if s, perr := strconv.Atoi(ae.Header.Get("Retry-After")); perr == nil {
				wait = time.Duration(s) * time.Second
			}
		}
		fmt.Fprintf(c.stderr, "%s failed (%v); retrying in %s\n", what, err, wait.Round(time.Millisecond))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// retrier is c.retry on ctx, as the client's requests take it.
func (c *pushCommand) retrier(ctx context.Context) func(string, func() error) error {
	return func(what string, op func() error) error { return c.retry(ctx, what, op) }
}

// authenticate trades the API key for an access token.
func (c *pushCommand) authenticate(ctx context.Context) error {
	return c.retry(ctx, "sign in", func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/oauth/token",
			strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(c.clientID, c.clientSecret)
		res, err := c.http.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		if res.StatusCode == http.StatusUnauthorized {
			return exitError{exitAuth, errors.New("the console refused the API key: check SNAPDECK_CLIENT_ID and SNAPDECK_CLIENT_SECRET")}
		}
		if res.StatusCode != http.StatusOK {
			return &upload.APIError{Status: res.StatusCode, Header: res.Header}
		}
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
			return fmt.Errorf("sign in: the console sent no access token (is %s a snapdeck console?)", c.url)
		}
		c.client.Token = tok.AccessToken
		return nil
	})
}

// final turns an API refusal into the exit code it deserves.
func (c *pushCommand) final(err error) error {
	var ae *upload.APIError
	if !errors.As(err, &ae) {
		return err
	}
	switch {
	case ae.Reason == "database-not-empty":
		return exitError{exitRefused, ae}
	case ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden:
		return exitError{exitAuth, ae}
	case ae.Status == http.StatusBadRequest:
		return exitError{exitRejected, ae}
	case ae.Status == http.StatusNotFound && ae.Reason == "db-not-found":
		return fmt.Errorf("no database %s at %s: %w", c.database, c.url, ae)
	}
	return err
}

// upload sends the file, drawing its progress, and turns a refusal into
// its exit code.
func (c *pushCommand) upload(ctx context.Context, path string, size int64, sum string) (upload.Reply, error) {
	f, err := os.Open(path)
	if err != nil {
		return upload.Reply{}, err
	}
	defer f.Close()
	bar := newProgressBar(c.stderr, size)
	up, err := c.client.Send(ctx, c.database, f, upload.Announce{Size: size, SHA256: sum, Filename: filepath.Base(c.file), Overwrite: c.overwrite},
		upload.SendOptions{ChunkSize: c.chunkSize, Retry: c.retrier(ctx), Progress: bar.set,
			Restarted: func() { fmt.Fprintln(c.stderr, "The console lost the upload (restarted?); starting it again") }})
	bar.done()
	if err != nil {
		return up, c.final(err)
	}
	if up.Status == upload.StatusFailed {
		return up, exitError{exitRejected, errors.New(up.Error)}
	}
	return up, nil
}

// await waits for the load and prints the Load snapshot's id.
func (c *pushCommand) await(ctx context.Context, up upload.Reply) error {
	fmt.Fprintln(c.stderr, "Uploaded; the console is checking and loading the file")
	// A second between looks: a load takes seconds to minutes, and each
	// look counts against the key's rate limit.
	up, err := c.client.Wait(ctx, c.database, up, time.Second, c.retrier(ctx))
	if err != nil {
		return c.final(err)
	}
	switch up.Status {
	case upload.StatusLoaded:
		fmt.Fprintf(c.stderr, "Loaded %s into database %s; Load snapshot:\n", filepath.Base(c.file), c.database)
		fmt.Fprintln(c.stdout, up.SnapshotID)
		return nil
	case upload.StatusFailed:
		return fmt.Errorf("the load failed: %s", up.Error)
	}
	return fmt.Errorf("unexpected upload status %q", up.Status)
}

// progressBar shows an upload's progress: a bar redrawn in place on a
// terminal, a line every tenth otherwise (logs, CI).
type progressBar struct {
	w        io.Writer
	total    int64
	terminal bool
	start    time.Time
	lastTen  int64
	drawn    bool
}

func newProgressBar(w io.Writer, total int64) *progressBar {
	f, ok := w.(*os.File)
	return &progressBar{w: w, total: max(total, 1), terminal: ok && isatty.IsTerminal(f.Fd()), start: time.Now(), lastTen: -1}
}

func (b *progressBar) set(done int64) {
	pct := done * 100 / b.total
	if !b.terminal {
		if ten := pct / 10; ten != b.lastTen {
			b.lastTen = ten
			fmt.Fprintf(b.w, "uploaded %d%% (%s of %s)\n", pct, bytesize.Format(done), bytesize.Format(b.total))
		}
		return
	}
	const width = 30
	filled := int(done * width / b.total)
	rate := ""
	if secs := time.Since(b.start).Seconds(); secs > 0.5 {
		rate = bytesize.Format(int64(float64(done)/secs)) + "/s"
	}
	fmt.Fprintf(b.w, "\r[%s%s] %3d%%  %s / %s  %s  ", strings.Repeat("#", filled), strings.Repeat(" ", width-filled),
		pct, bytesize.Format(done), bytesize.Format(b.total), rate)
	b.drawn = true
}

func (b *progressBar) done() {
	if b.terminal && b.drawn {
		fmt.Fprintln(b.w)
	}
}

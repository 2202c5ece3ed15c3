package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startConsole runs the whole program on a free port with the given
// environment and returns its URL and a function that stops it.
func startConsole(t testing.TB, env map[string]string, args ...string) (url string, stop func() error) {
	t.Helper()
	return startConsoleLogging(t, env, io.Discard, args...)
}

// startConsoleLogging is startConsole with the program's log written to
// log.
func startConsoleLogging(t testing.TB, env map[string]string, log io.Writer, args ...string) (url string, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	getenv := func(k string) string { return env[k] }
	go func() {
		err := run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...), getenv, pw, log)
		pw.CloseWithError(io.EOF)
		done <- err
	}()
	sc := bufio.NewScanner(pr)
	var lines []string
	serving := regexp.MustCompile(`serving on (http://\S+)`)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if m := serving.FindStringSubmatch(sc.Text()); m != nil {
			url = m[1]
			break
		}
	}
	if url == "" {
		cancel()
		t.Fatalf("console did not print its URL; printed %q, run: %v", lines, <-done)
	}
	// Keep reading: the program blocks on a pipe nobody drains.
	go io.Copy(io.Discard, pr)
	waitHealthy(t, url)
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() { stop() })
	return url, stop
}

func waitHealthy(t testing.TB, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		res, err := http.Get(url + "/healthz")
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == 200 && string(b) == "ok" {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s/healthz never answered 200 ok", url)
}

func TestServeStartsAndShutsDownCleanly(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	env := map[string]string{"SNAPDECK_DATA": data, "SNAPDECK_ADMIN_EMAIL": "ann@example.com", "SNAPDECK_ADMIN_PASSWORD": "a-long-password"}
	var log syncBuffer
	url, stop := startConsoleLogging(t, env, &log)
	res, err := http.Get(url + "/databases")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := res.Request.URL.Path; got != "/login" {
		t.Errorf("anonymous /databases ended at %s, want /login", got)
	}
	if err := stop(); err != nil {
		t.Fatalf("shutdown: got %v, want nil", err)
	}
	// The last line of the log says everything is closed.
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, "msg=stopped") {
		t.Errorf("last log line: got %q, want msg=stopped", last)
	}
	for _, p := range []string{"console.db", "databases", "snapshots", "tmp"} {
		if !exists(filepath.Join(data, p)) {
			t.Errorf("data directory lacks %s", p)
		}
	}
}

func TestFirstStartPrintsGeneratedAdminPassword(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--data", data}, func(string) string { return "" }, pw, io.Discard)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var admin string
	for sc.Scan() {
		if strings.Contains(sc.Text(), "admin@localhost") {
			admin = sc.Text()
			break
		}
	}
	cancel()
	go io.Copy(io.Discard, pr)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`admin@localhost with password \S{12,}`).MatchString(admin) {
		t.Fatalf("first start printed %q, want admin@localhost with a generated password", admin)
	}
}

func TestServeFlagsAndEnvironment(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
		check   func(*serveCommand) string
	}{
		{name: "defaults", check: func(c *serveCommand) string {
			return c.addr + " " + c.dataDir + " " + c.cadence["enterprise"].String() + " " + c.retention["enterprise"].String()
		}},
		{name: "env", env: map[string]string{"SNAPDECK_ADDR": "0.0.0.0:9", "SNAPDECK_CADENCE_FREE": "4s", "SNAPDECK_MAX_IMPORT_SIZE": "1GiB"},
			check: func(c *serveCommand) string {
				return c.addr + " " + c.cadence["free"].String() + " " + itoa(c.maxImportSize)
			}},
		{name: "flag beats env", args: []string{"--addr", "127.0.0.1:1", "--retention-professional", "15s"},
			env: map[string]string{"SNAPDECK_ADDR": "0.0.0.0:9"},
			check: func(c *serveCommand) string {
				return c.addr + " " + c.retention["professional"].String()
			}},
		{name: "bad duration in env", env: map[string]string{"SNAPDECK_RETENTION_FREE": "a week"}, wantErr: "SNAPDECK_RETENTION_FREE"},
		{name: "import checks", env: map[string]string{"SNAPDECK_IMPORT_CHECKS": "3", "SNAPDECK_IMPORT_CHECK_TIMEOUT": "90s"},
			check: func(c *serveCommand) string { return itoa(int64(c.importChecks)) + " " + c.importCheckTimeout.String() }},
		{name: "no import checks", args: []string{"--import-checks", "0"}, wantErr: "--import-checks must be at least 1"},
		{name: "pitr defaults", check: func(c *serveCommand) string {
			return c.pitrWindow["free"].String() + " " + c.pitrWindow["professional"].String() + " " + c.pitrWindow["enterprise"].String() + " " + c.pitrInterval.String()
		}},
		{name: "pitr env and flag", args: []string{"--pitr-enterprise", "1h"}, env: map[string]string{"SNAPDECK_PITR_FREE": "10m", "SNAPDECK_PITR_INTERVAL": "250ms"},
			check: func(c *serveCommand) string {
				return c.pitrWindow["free"].String() + " " + c.pitrWindow["enterprise"].String() + " " + c.pitrInterval.String()
			}},
		{name: "bad pitr interval", args: []string{"--pitr-interval", "0s"}, wantErr: "--pitr-interval must be positive"},
		{name: "bad flag", args: []string{"--cadence-free", "0s"}, wantErr: "--cadence-free must be positive"},
		{name: "stray argument", args: []string{"extra"}, wantErr: "no arguments"},
	}
	want := map[string]string{
		"defaults":          "127.0.0.1:8080 ./data 1h0m0s 2160h0m0s",
		"env":               "0.0.0.0:9 4s 1073741824",
		"flag beats env":    "127.0.0.1:1 15s",
		"import checks":     "3 1m30s",
		"pitr defaults":     "0s 24h0m0s 168h0m0s 1s",
		"pitr env and flag": "10m0s 1h0m0s 250ms",
	}
	for _, tc := range cases {
		c := &serveCommand{getenv: func(k string) string { return tc.env[k] }, stdout: io.Discard, stderr: io.Discard}
		err := c.parse(tc.args)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: got error %v, want one containing %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: got error %v", tc.name, err)
			continue
		}
		if got := tc.check(c); got != want[tc.name] {
			t.Errorf("%s: got %q, want %q", tc.name, got, want[tc.name])
		}
	}
}

func TestVersionAndUnknownCommand(t *testing.T) {
	var out strings.Builder
	if err := run(context.Background(), []string{"version"}, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "snapdeck "+version) || !strings.Contains(out.String(), "SQLite 3.") {
		t.Errorf("version printed %q, want the console and SQLite versions", out.String())
	}
	err := run(context.Background(), []string{"frobnicate"}, func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || exitCode(err) != 2 {
		t.Errorf("unknown command: got %v (exit %d), want a usage error (exit 2)", err, exitCode(err))
	}
}

// syncBuffer is a strings.Builder safe for the program's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestShutdownStopsAnImportCheck stops the console while it checks the
// issue's endless SQL text for a client that is still waiting: the check
// must not hold the shutdown up (it waited for the check's time limit).
func TestShutdownStopsAnImportCheck(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	base, stop := startConsole(t, map[string]string{"SNAPDECK_DATA": data, "SNAPDECK_ADMIN_EMAIL": "ann@example.com",
		"SNAPDECK_ADMIN_PASSWORD": "a-long-password", "SNAPDECK_IMPORT_CHECK_TIMEOUT": "10m"})
	cl := signIn(t, base, "ann@example.com", "a-long-password")
	clientID, secret := cl.apiKey(t, base)
	db := cl.createDatabase(t, base, "endless")
	token := apiToken(t, base, clientID, secret)
	call := func(method, path string, header map[string]string, body []byte) (data map[string]any, status int) {
		req, _ := http.NewRequest(method, base+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return nil, 0
		}
		defer res.Body.Close()
		var reply struct {
			Data map[string]any `json:"data"`
		}
		json.NewDecoder(res.Body).Decode(&reply)
		return reply.Data, res.StatusCode
	}
	sql := []byte("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c;\n")
	sum := sha256.Sum256(sql)
	up, _ := call(http.MethodPost, "/v1/instances/"+db+"/import", map[string]string{"X-Snapdeck-Size": strconv.Itoa(len(sql)),
		"X-Snapdeck-SHA256": hex.EncodeToString(sum[:]), "X-Snapdeck-Overwrite": "true"}, nil)
	uid, _ := up["upload_id"].(string)
	if uid == "" {
		t.Fatalf("announce: got %v", up)
	}
	path := "/v1/instances/" + db + "/import/" + uid
	// The client stays: only the shutdown can stop the check.
	answered := make(chan int, 1)
	go func() {
		_, status := call(http.MethodPut, path, map[string]string{"Content-Range": fmt.Sprintf("bytes 0-%d/%d", len(sql)-1, len(sql))}, sql)
		answered <- status
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if up, _ := call(http.MethodGet, path, nil, nil); up["status"] == "checking" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the upload was never checked")
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	err := stop()
	took := time.Since(start)
	t.Logf("shutdown took %s", took)
	if err != nil {
		t.Errorf("shutdown: got %v, want nil", err)
	}
	if took > 2*time.Second {
		t.Errorf("shutdown took %s while a check ran, want at most 2s", took)
	}
	// The client that stayed is told, not given a 500.
	if status := <-answered; status != http.StatusConflict {
		t.Errorf("the upload stopped by the shutdown: got %d, want 409", status)
	}
}

// apiToken gets an API token for a key's client id and secret.
func apiToken(t *testing.T, base, id, secret string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("token: got %d, %v", res.StatusCode, err)
	}
	return tok.AccessToken
}

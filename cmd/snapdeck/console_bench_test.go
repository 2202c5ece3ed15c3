package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/bytesize"
)

// BenchmarkConsole measures what a user waits for, through the real
// program over HTTP (issue 14): a professional database filled through the
// Query tab with `INSERT ... SELECT randomblob(4000)` in batches of 16,384
// rows, then snapshots, a restore, an export and a create-from-snapshot,
// each from the request until its result is there. Every figure is also
// given as a ratio to `cp`+`sync` of the database file, or to
// `zstd -1 -T2` of it for the export, measured in the same run.
//
//	SNAPDECK_BENCH_SIZE=1GiB SNAPDECK_BENCH_DIR=/var/tmp go test ./cmd/snapdeck \
//	    -run '^$' -bench BenchmarkConsole -benchtime 1x -timeout 60m
//
// SNAPDECK_BENCH_SIZE defaults to 64MiB so that a plain -bench run is short.
func BenchmarkConsole(b *testing.B) {
	size := int64(64 << 20)
	if s := os.Getenv("SNAPDECK_BENCH_SIZE"); s != "" {
		n, err := bytesize.Parse(s)
		if err != nil {
			b.Fatalf("SNAPDECK_BENCH_SIZE: %v", err)
		}
		size = n
	}
	for range b.N {
		consoleRun(b, size)
	}
}

func consoleRun(b *testing.B, size int64) {
	dir, err := os.MkdirTemp(os.Getenv("SNAPDECK_BENCH_DIR"), "snapdeck-console-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	data := filepath.Join(dir, "data")
	env := map[string]string{"SNAPDECK_ADMIN_EMAIL": "bench@example.com", "SNAPDECK_ADMIN_PASSWORD": "bench-password-1234"}
	base, stop := startConsole(b, env, "--data", data)
	defer stop()

	u := browserSignIn(b, base, "bench@example.com", "bench-password-1234")
	api := u.apiClient(b)
	id := api.createInstance(b, "bench", "")

	// Fill through the Query tab, as users do.
	u.query(b, id, "CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)")
	const batch = 16384
	rowsWanted := size / 4096 // a row of 4,000 bytes takes about a page
	start := time.Now()
	for done := int64(0); done < rowsWanted; done += batch {
		u.query(b, id, fmt.Sprintf("WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v+1 FROM s WHERE v < %d) INSERT INTO t(b) SELECT randomblob(4000) FROM s", min(batch, rowsWanted-done)))
	}
	fill := time.Since(start)
	dbPath := filepath.Join(data, "databases", id+".sqlite")
	// The console's checkpointer copies the WAL into the file in the
	// background; the references need the whole file.
	for deadline := time.Now().Add(5 * time.Minute); fileSize(dbPath) < rowsWanted*4000; {
		if time.Now().After(deadline) {
			b.Fatalf("database file %d bytes 5 minutes after the fill", fileSize(dbPath))
		}
		time.Sleep(10 * time.Millisecond)
	}
	wal := fileSize(dbPath + "-wal")
	b.Logf("filled %s through the Query tab in %s, checkpointed after %s: file %d bytes, WAL %d bytes",
		id, fill.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), fileSize(dbPath), wal)

	// References, on the same file in the same run.
	cpSync := timeCommand(b, "sh", "-c", fmt.Sprintf("cp %s %s && sync", dbPath, filepath.Join(dir, "copy.sqlite")))
	os.Remove(filepath.Join(dir, "copy.sqlite"))
	zstdT := time.Duration(0)
	if _, err := exec.LookPath("zstd"); err == nil {
		zstdT = timeCommand(b, "zstd", "-q", "-1", "-T2", "-f", dbPath, "-o", filepath.Join(dir, "ref.zst"))
		os.Remove(filepath.Join(dir, "ref.zst"))
	}
	b.Logf("references: cp+sync %s, zstd -1 -T2 %s", cpSync.Round(time.Millisecond), zstdT.Round(time.Millisecond))
	report := func(name string, d time.Duration, ref time.Duration) {
		ratio := d.Seconds() / ref.Seconds()
		b.Logf("%-40s %8s  %.2f ×", name, d.Round(time.Millisecond), ratio)
		b.ReportMetric(d.Seconds(), name+"-s")
		b.ReportMetric(ratio, name+"-x")
	}

	first, d := api.snapshot(b, id)
	b.Logf("WAL before the first snapshot: %d bytes; after it: %d bytes", wal, fileSize(dbPath+"-wal"))
	report("capture-after-fill", d, cpSync)
	_, d = api.snapshot(b, id)
	report("capture-unchanged", d, cpSync)
	u.query(b, id, "UPDATE t SET b = randomblob(4000) WHERE id % 100 = 0")
	_, d = api.snapshot(b, id)
	report("capture-1pct-changed", d, cpSync)

	start = time.Now()
	api.do(b, "POST", "/v1/instances/"+id+"/snapshots/"+first+"/restore", nil, http.StatusAccepted, nil)
	api.waitStatus(b, id, "running")
	restore := time.Since(start)
	report("restore-to-running", restore, cpSync)
	api.waitIdle(b, id)
	report("restore-with-safety", time.Since(start), cpSync)
	if got := u.query(b, id, "SELECT count(*) FROM t WHERE id % 100 = 0"); !strings.Contains(got, fmt.Sprint(rowsWanted/100)) {
		b.Logf("after restore: %q", got)
	}

	start = time.Now()
	out := filepath.Join(dir, "export.dump")
	api.download(b, "/v1/instances/"+id+"/snapshots/"+first+"/export", out)
	export := time.Since(start)
	os.Remove(out)
	if zstdT > 0 {
		b.Logf("%-40s %8s  %.0f%% of zstd -1 -T2's speed", "export", export.Round(time.Millisecond), 100*zstdT.Seconds()/export.Seconds())
		b.ReportMetric(100*zstdT.Seconds()/export.Seconds(), "export-pct-of-zstd")
	}
	b.ReportMetric(export.Seconds(), "export-s")

	start = time.Now()
	nid := api.createInstance(b, "bench-copy", id+"/"+first)
	api.waitStatus(b, nid, "running")
	report("create-from-snapshot", time.Since(start), cpSync)
}

func timeCommand(b *testing.B, name string, args ...string) time.Duration {
	b.Helper()
	start := time.Now()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		b.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return time.Since(start)
}

// consoleUser is a signed-in browser: a cookie jar and the console's URL.
type consoleUser struct {
	base string
	c    *http.Client
}

var pageCSRF = regexp.MustCompile(`name="_csrf"[^>]*value="([^"]+)"`)

func browserSignIn(b *testing.B, base, email, password string) *consoleUser {
	b.Helper()
	jar, _ := cookiejar.New(nil)
	u := &consoleUser{base: base, c: &http.Client{Jar: jar, Timeout: 30 * time.Minute}}
	u.post(b, "/login", url.Values{"email": {email}, "password": {password}}, "/login")
	return u
}

// post submits a form the way a browser does, with the CSRF token of the
// page at from, and returns the final page.
func (u *consoleUser) post(b *testing.B, path string, form url.Values, from string) string {
	b.Helper()
	res, err := u.c.Get(u.base + from)
	if err != nil {
		b.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := pageCSRF.FindSubmatch(page)
	if m == nil {
		b.Fatalf("no _csrf field on %s", from)
	}
	form.Set("_csrf", string(m[1]))
	res, err = u.c.PostForm(u.base+path, form)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		b.Fatalf("POST %s: %d\n%s", path, res.StatusCode, body)
	}
	return string(body)
}

// query runs SQL on the Query tab and returns the result page.
func (u *consoleUser) query(b *testing.B, id, sql string) string {
	b.Helper()
	page := u.post(b, "/databases/"+id+"/query", url.Values{"sql": {sql}}, "/databases/"+id+"/query")
	if strings.Contains(page, "SQLite says") || strings.Contains(page, "not allowed") {
		b.Fatalf("query %q failed on the Query tab", sql)
	}
	return page
}

var newKey = regexp.MustCompile(`data-client-id="([^"]+)"[^>]*data-client-secret="([^"]+)"`)

// apiClient makes an API key on the console's form and signs in with it.
func (u *consoleUser) apiClient(b *testing.B) *apiClient {
	b.Helper()
	page := u.post(b, "/settings/api-keys", url.Values{"name": {"bench"}}, "/settings/api-keys")
	m := newKey.FindStringSubmatch(page)
	if m == nil {
		b.Fatal("no new API key on the page")
	}
	req, _ := http.NewRequest("POST", u.base+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(m[1], m[2])
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		b.Fatalf("token: %d, %v", res.StatusCode, err)
	}
	return &apiClient{base: u.base, token: tok.AccessToken}
}

// apiClient calls the Aura-compatible API with a bearer token.
type apiClient struct {
	base, token string
}

func (a *apiClient) do(b *testing.B, method, path string, body any, want int, out any) {
	b.Helper()
	var r io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		r = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, a.base+path, r)
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		b.Fatalf("%s %s: %d, want %d\n%s", method, path, res.StatusCode, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			b.Fatalf("%s %s: %v\n%s", method, path, err, raw)
		}
	}
}

// createInstance creates a professional database, from "instance/snapshot"
// when from is set, and returns its id.
func (a *apiClient) createInstance(b *testing.B, name, from string) string {
	b.Helper()
	body := map[string]string{"name": name, "type": "professional-db"}
	if inst, snap, ok := strings.Cut(from, "/"); ok {
		body["source_instance_id"], body["source_snapshot_id"] = inst, snap
	}
	var out struct {
		Data struct{ ID string } `json:"data"`
	}
	a.do(b, "POST", "/v1/instances", body, http.StatusAccepted, &out)
	a.waitStatus(b, out.Data.ID, "running")
	return out.Data.ID
}

// snapshot takes an On-demand snapshot and returns its id and the time
// from the call until it is completed.
func (a *apiClient) snapshot(b *testing.B, id string) (string, time.Duration) {
	b.Helper()
	start := time.Now()
	var out struct {
		Data struct {
			SnapshotID string `json:"snapshot_id"`
		} `json:"data"`
	}
	a.do(b, "POST", "/v1/instances/"+id+"/snapshots", nil, http.StatusAccepted, &out)
	for {
		var s struct {
			Data struct{ Status string } `json:"data"`
		}
		a.do(b, "GET", "/v1/instances/"+id+"/snapshots/"+out.Data.SnapshotID, nil, http.StatusOK, &s)
		switch s.Data.Status {
		case "Completed":
			return out.Data.SnapshotID, time.Since(start)
		case "Failed":
			b.Fatalf("snapshot %s failed", out.Data.SnapshotID)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (a *apiClient) waitStatus(b *testing.B, id, want string) {
	b.Helper()
	deadline := time.Now().Add(30 * time.Minute)
	for time.Now().Before(deadline) {
		var s struct {
			Data struct{ Status string } `json:"data"`
		}
		a.do(b, "GET", "/v1/instances/"+id, nil, http.StatusOK, &s)
		if s.Data.Status == want {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.Fatalf("instance %s never became %s", id, want)
}

// waitIdle waits until no snapshot of the instance is pending or in
// progress: a restore's safety snapshot ends after the swap.
func (a *apiClient) waitIdle(b *testing.B, id string) {
	b.Helper()
	day := time.Now().UTC().Format("2006-01-02")
	for {
		var list struct {
			Data []struct{ Status string } `json:"data"`
		}
		a.do(b, "GET", "/v1/instances/"+id+"/snapshots?date="+day, nil, http.StatusOK, &list)
		busy := false
		for _, s := range list.Data {
			busy = busy || s.Status == "Pending" || s.Status == "InProgress"
		}
		if !busy {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (a *apiClient) download(b *testing.B, path, out string) {
	b.Helper()
	req, _ := http.NewRequest("GET", a.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+a.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(res.Body)
		b.Fatalf("GET %s: %d\n%s", path, res.StatusCode, raw)
	}
	f, err := os.Create(out)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, res.Body); err != nil {
		b.Fatal(err)
	}
}

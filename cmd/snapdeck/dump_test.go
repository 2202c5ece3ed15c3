package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/dump"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// TestDumpCommandsOnAConsoleExport exports a snapshot from a running
// console and checks inspect, verify and extract on the file, then a
// damaged copy.
func TestDumpCommandsOnAConsoleExport(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	env := map[string]string{"SNAPDECK_DATA": data, "SNAPDECK_ADMIN_EMAIL": "ann@example.com", "SNAPDECK_ADMIN_PASSWORD": "a-long-password"}
	base, _ := startConsole(t, env)
	cl := signIn(t, base, "ann@example.com", "a-long-password")
	res := cl.post(t, base+"/databases", url.Values{"name": {"orders"}, "plan": {"professional"}})
	id := res.Request.URL.Path[len("/databases/"):]
	cl.post(t, base+"/databases/"+id+"/query", url.Values{"sql": {"CREATE TABLE t (n); INSERT INTO t VALUES (1), (2), (3)"}})
	cl.post(t, base+"/databases/"+id+"/snapshots", nil)
	sid := cl.waitCompletedSnapshot(t, base, id, "On-demand")
	dumpPath := filepath.Join(t.TempDir(), "orders.dump")
	cl.download(t, base+"/databases/"+id+"/snapshots/"+sid+"/export", dumpPath)

	var out strings.Builder
	cmd := &dumpCommand{stdout: &out, stderr: io.Discard}
	if err := cmd.Run(context.Background(), []string{"inspect", dumpPath}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "orders ("+id+")") || !strings.Contains(out.String(), sid) {
		t.Errorf("inspect printed %q; want the database and the snapshot", out.String())
	}
	out.Reset()
	if err := cmd.Run(context.Background(), []string{"verify", dumpPath}); err != nil || !strings.Contains(out.String(), "ok:") {
		t.Fatalf("verify: %v, printed %q", err, out.String())
	}
	dst := filepath.Join(t.TempDir(), "x.sqlite")
	if err := cmd.Run(context.Background(), []string{"extract", "--out", dst, dumpPath}); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Run(context.Background(), []string{"extract", "--out", dst, dumpPath}); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("extract over an existing file: got %v, want a refusal", err)
	}

	b, _ := os.ReadFile(dumpPath)
	b[len(b)/2] ^= 0xff
	bad := filepath.Join(t.TempDir(), "bad.dump")
	os.WriteFile(bad, b, 0o644)
	if err := cmd.Run(context.Background(), []string{"verify", bad}); err == nil {
		t.Fatal("verify of a damaged dump: got nil, want an error")
	}
}

// webClient is a cookie-keeping client signed in to a console.
type webClient struct {
	http *http.Client
	csrf string
}

var csrfField = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

func signIn(t *testing.T, base, email, password string) *webClient {
	t.Helper()
	jar := newJar()
	cl := &webClient{http: &http.Client{Jar: jar}}
	res, err := cl.http.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := csrfField.FindSubmatch(body)
	if m == nil {
		t.Fatal("no _csrf on the sign-in page")
	}
	cl.csrf = string(m[1])
	cl.post(t, base+"/login", url.Values{"email": {email}, "password": {password}})
	// Signed in, the session has a CSRF token of its own.
	res, err = cl.http.Get(base + "/account/password")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if m = csrfField.FindSubmatch(body); m == nil {
		t.Fatal("no _csrf once signed in")
	}
	cl.csrf = string(m[1])
	return cl
}

func (cl *webClient) post(t *testing.T, u string, form url.Values) *http.Response {
	t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("_csrf", cl.csrf)
	res, err := cl.http.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode >= 400 {
		t.Fatalf("POST %s: %d", u, res.StatusCode)
	}
	return res
}

var completedRow = regexp.MustCompile(`data-snapshot-id="([^"]+)"[^>]*data-snapshot-status="completed"[^>]*data-snapshot-type="([^"]+)"|data-snapshot-id="([^"]+)"[^>]*data-snapshot-type="([^"]+)"[^>]*data-snapshot-status="completed"`)

// waitCompletedSnapshot polls the SNAPSHOTS tab until a completed snapshot
// of the type is listed, and returns its id.
func (cl *webClient) waitCompletedSnapshot(t *testing.T, base, id, typ string) string {
	t.Helper()
	for i := 0; i < 300; i++ {
		res, err := cl.http.Get(base + "/databases/" + id + "/snapshots")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		for _, m := range completedRow.FindAllStringSubmatch(string(body), -1) {
			if m[2] == typ {
				return m[1]
			}
			if m[4] == typ {
				return m[3]
			}
		}
		waitABit()
	}
	t.Fatalf("no completed %s snapshot of %s", typ, id)
	return ""
}

func (cl *webClient) download(t *testing.T, u, dst string) {
	t.Helper()
	res, err := cl.http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %d", u, res.StatusCode)
	}
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, res.Body); err != nil {
		t.Fatal(err)
	}
}

// mustDumpFile writes a .dump of a small real database into dir and returns
// its path and the database's bytes.
func mustDumpFile(t *testing.T, dir string) (string, []byte) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src.sqlite")
	db, err := sql.Open("sqlite", src)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)",
		"INSERT INTO notes (body) VALUES ('first'), ('second'), ('third')",
	} {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(img)
	m := dump.Manifest{
		DatabaseName: "notes", DatabaseID: "a1b2c3d4", SnapshotID: "0b6a1a4e-9c1e-4c35-9a51-2f1f8f1c2d3e",
		SnapshotType: "Scheduled", SnapshotTime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Engine: "snapdeck test", Size: int64(len(img)), SHA256: hex.EncodeToString(sum[:]),
	}
	var out bytes.Buffer
	if err := dump.Write(context.Background(), &out, m, bytes.NewReader(img)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "notes.dump")
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, img
}

// runDump runs `snapdeck dump args...` and returns its output.
func runDump(args ...string) (stdout string, err error) {
	var out, errOut bytes.Buffer
	err = (&dumpCommand{stdout: &out, stderr: &errOut}).Run(context.Background(), args)
	return out.String(), err
}

func TestDumpInspectAndVerify(t *testing.T) {
	path, img := mustDumpFile(t, t.TempDir())
	sum := sha256.Sum256(img)
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"inspect", path}, []string{"database    notes (a1b2c3d4)", "Scheduled, taken 2026-01-02T03:04:05Z", hex.EncodeToString(sum[:]), "Only the manifest was read"}},
		{[]string{"verify", path}, []string{"ok: " + path + " is a valid .dump", "format      1"}},
		{[]string{"verify", path, "--max-size", "1MiB"}, []string{"ok: "}},
		{[]string{"verify", "--max-size=1MiB", path}, []string{"ok: "}},
	}
	for _, tt := range tests {
		got, err := runDump(tt.args...)
		if err != nil {
			t.Errorf("dump %v: got error %v, want none", tt.args, err)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("dump %v: got output\n%s\nwant it to contain %q", tt.args, got, w)
			}
		}
	}
}

func TestDumpExtract(t *testing.T) {
	dir := t.TempDir()
	path, img := mustDumpFile(t, dir)
	out := filepath.Join(dir, "restored.sqlite")
	if _, err := runDump("extract", path, "--out", out); err != nil {
		t.Fatalf("dump extract: got error %v, want none", err)
	}
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, img) {
		t.Fatalf("extracted database: got %d bytes (%v), want the %d bytes dumped", len(got), err, len(img))
	}
	// A second extract to the same place must not overwrite it.
	if _, err := runDump("extract", "--out", out, path); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("dump extract onto an existing file: got %v, want an 'already exists' error", err)
	}
}

func TestDumpExtractDefaultsToWorkingDirectory(t *testing.T) {
	dir := t.TempDir()
	path, _ := mustDumpFile(t, dir)
	t.Chdir(dir)
	if _, err := runDump("extract", path); err != nil {
		t.Fatalf("dump extract: got error %v, want none", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "database.sqlite")); err != nil {
		t.Errorf("default output: got %v, want ./database.sqlite", err)
	}
}

func TestDumpRefusals(t *testing.T) {
	dir := t.TempDir()
	path, _ := mustDumpFile(t, dir)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.dump")
	if err := os.WriteFile(truncated, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		args  []string
		usage bool
		want  string
	}{
		{"no sub-command", nil, true, "missing sub-command"},
		{"unknown sub-command", []string{"unpack", path}, true, `unknown sub-command "unpack"`},
		{"no file", []string{"verify"}, true, "want one FILE, got 0"},
		{"two files", []string{"verify", path, path}, true, "want one FILE, got 2"},
		{"bad size", []string{"verify", "--max-size", "lots", path}, false, `invalid size "lots"`},
		{"missing file", []string{"inspect", filepath.Join(dir, "nope.dump")}, false, "no such file"},
		{"truncated", []string{"verify", truncated}, false, truncated + ": the file ends early: it looks truncated"},
		{"over the limit", []string{"verify", "--max-size", "1KiB", path}, false, "over the limit of 1KiB"},
		{"extract truncated", []string{"extract", "--out", filepath.Join(dir, "x.sqlite"), truncated}, false, "the file ends early"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runDump(tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got error %v, want one containing %q", err, tt.want)
			}
			var ue usageError
			if isUsage := errors.As(err, &ue); isUsage != tt.usage {
				t.Errorf("usage error: got %v, want %v", isUsage, tt.usage)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "x.sqlite")); !os.IsNotExist(err) {
		t.Errorf("output of a refused extract: got %v, want no file", err)
	}
	if _, err := runDump("verify", truncated); snapdeck.ErrorCode(err) != snapdeck.Invalid {
		t.Errorf("code of a refused dump: got %q, want %q", snapdeck.ErrorCode(err), snapdeck.Invalid)
	}
}

package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
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

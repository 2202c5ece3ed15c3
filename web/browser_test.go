package web_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// mustBrowser starts a headless Chromium for one test. Outside CI a
// machine without Chromium skips the test with a message; in CI (CI=true)
// that is a failure, so browser tests can never silently stop running.
func mustBrowser(t *testing.T) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no Chromium found, and CI=true: browser tests must run in CI (install it: apt-get install -y chromium)")
		}
		t.Skip("no Chromium found: skipping browser test (install it with: apt-get install -y chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium at %s: %v", path, err)
	}
	return ctx
}

// artifactDir is where browser tests leave screenshots: SNAPDECK_ARTIFACT_DIR
// when set (CI keeps it), else a temporary directory.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SNAPDECK_ARTIFACT_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "snapdeck-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// css selects elements with a CSS selector.
func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

// screenshot saves the whole page as a PNG artifact (quality 100 asks
// Chromium for PNG rather than JPEG).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(artifactDir(t), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// TestBrowserSignInCreateDatabaseAndQuery is what a new user does first:
// sign in through the form, create a database, write and read rows in the
// Query tab, and see an SQL error in words.
func TestBrowserSignInCreateDatabaseAndQuery(t *testing.T) {
	c := mustConsole(t)
	ctx := mustBrowser(t)
	base := c.srv.URL

	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/databases"),
		chromedp.WaitVisible(css(`input[name="email"]`)),
		chromedp.SendKeys(css(`input[name="email"]`), "member@x"),
		chromedp.SendKeys(css(`input[name="password"]`), testPassword),
		chromedp.Submit(css(`input[name="password"]`)),
		chromedp.WaitVisible(css(`a[href="/databases/new"]`)),
		chromedp.Click(css(`a[href="/databases/new"]`)),
		chromedp.WaitVisible(css(`input[name="name"]`)),
		chromedp.SendKeys(css(`input[name="name"]`), "inventory"),
		chromedp.SetValue(css(`select[name="plan"]`), "professional"),
		chromedp.Submit(css(`input[name="name"]`)),
		chromedp.WaitVisible(css(`a[href$="/query"]`)),
	)
	if err != nil {
		t.Fatalf("sign in and create: %v", err)
	}
	url, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	id := url[strings.LastIndex(url, "/")+1:]
	d, err := c.databases.Find(context.Background(), id)
	if err != nil || d.Name != "inventory" || d.Plan != "professional" {
		t.Fatalf("created database at %s: got %+v, %v; want inventory on professional", url, d, err)
	}

	run := func(sql string) {
		t.Helper()
		err := chromedp.Do(ctx,
			chromedp.Navigate(base+"/databases/"+id+"/query"),
			chromedp.WaitVisible(css(`textarea[name="sql"]`)),
			chromedp.SetValue(css(`textarea[name="sql"]`), sql),
			chromedp.Submit(css(`textarea[name="sql"]`)),
			chromedp.WaitReady(css(`body`)),
		)
		if err != nil {
			t.Fatalf("run %q: %v", sql, err)
		}
	}
	run("CREATE TABLE parts (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
	run("INSERT INTO parts (name) VALUES ('bolt'), ('nut'), ('washer')")
	run("SELECT name FROM parts ORDER BY name")
	if err := chromedp.Do(ctx, chromedp.WaitVisible(css(`table td`))); err != nil {
		t.Fatalf("wait for results: %v", err)
	}
	cells, err := chromedp.Run(ctx, chromedp.Text(css(`table tbody`)))
	if err != nil {
		t.Fatalf("read results: %v", err)
	}
	for _, want := range []string{"bolt", "nut", "washer"} {
		if !strings.Contains(cells, want) {
			t.Errorf("results %q: want %s", cells, want)
		}
	}
	screenshot(t, ctx, "query-results")

	run("SELECT * FROM no_such_table")
	page, err := chromedp.Run(ctx, chromedp.Text(css(`main`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page, "no such table: no_such_table") {
		t.Errorf("after a bad query the page says %q; want the SQL error in words", page)
	}
}

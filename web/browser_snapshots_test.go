package web_test

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// signInBrowser hands the browser a session made by the sign-in form of an
// HTTP client, so tests other than the sign-in test skip the typing.
func signInBrowser(t *testing.T, ctx context.Context, c *console, email string) {
	t.Helper()
	cl := c.newClient(email)
	u, _ := url.Parse(c.srv.URL)
	for _, ck := range cl.http.Jar.Cookies(u) {
		if _, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{Name: ck.Name, Value: ck.Value, URL: c.srv.URL}); err != nil {
			t.Fatalf("set cookie %s: %v", ck.Name, err)
		}
	}
}

// docScreenshot saves a screenshot for the README when
// SNAPDECK_UPDATE_SCREENSHOTS=1, and as a test artifact always.
func docScreenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	screenshot(t, ctx, name)
	if os.Getenv("SNAPDECK_UPDATE_SCREENSHOTS") != "1" {
		return
	}
	src := filepath.Join(artifactDir(t), name+".png")
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("..", "docs", "screenshots", name+".png"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (c *console) rows(t *testing.T, id string) string {
	t.Helper()
	r, err := c.databases.Query(context.Background(), id, "SELECT count(*) || ':' || coalesce(sum(n), 0) FROM t", true)
	if err != nil {
		t.Fatal(err)
	}
	return r.Rows[0][0]
}

func (c *console) exec(t *testing.T, id, sql string) {
	t.Helper()
	if _, err := c.databases.Query(context.Background(), id, sql, false); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// TestBrowserSnapshotFlow clicks through the SNAPSHOTS tab the way a user
// does: take a snapshot and watch it complete, export it and open the file
// with tar and sqlite3, be refused restoring with a wrong word and then
// restore with RESTORE, and create a database from the snapshot.
func TestBrowserSnapshotFlow(t *testing.T) {
	c := mustConsole(t)
	ctx := mustBrowser(t)
	base := c.srv.URL
	d := c.mustDatabase("ledger", snapdeck.PlanProfessional)
	c.exec(t, d.ID, "CREATE TABLE t (n INTEGER)")
	c.exec(t, d.ID, "WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v+1 FROM s WHERE v < 100) INSERT INTO t SELECT v FROM s")
	signInBrowser(t, ctx, c, "member@x")

	done := `tr[data-snapshot-type="On-demand"][data-snapshot-status="completed"]`
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/databases"),
		chromedp.WaitVisible(css(`tr[data-database-id="`+d.ID+`"]`)),
	); err != nil {
		t.Fatal(err)
	}
	docScreenshot(t, ctx, "databases")
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/databases/"+d.ID+"/snapshots"),
		chromedp.Click(css(`[data-action="take-snapshot"]`)),
		// The list polls while the job runs and shows the row completed.
		chromedp.WaitVisible(css(done)),
	); err != nil {
		t.Fatalf("take snapshot: %v", err)
	}
	sid, err := chromedp.Run(ctx, chromedp.AttributeValue(css(done), "data-snapshot-id"))
	if err != nil || sid.Value == "" {
		t.Fatalf("snapshot id: %v %v", sid, err)
	}

	// Export through the "..." menu, into a download directory.
	downloads := t.TempDir()
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads}); err != nil {
		t.Fatal(err)
	}
	row := done
	if err := chromedp.Do(ctx,
		chromedp.Click(css(row+` [data-action="menu"]`)),
		chromedp.WaitVisible(css(row+` [data-action="export"]`)),
	); err != nil {
		t.Fatalf("open menu: %v", err)
	}
	docScreenshot(t, ctx, "snapshots-menu")
	if err := chromedp.Do(ctx, chromedp.Click(css(row+` [data-action="export"]`))); err != nil {
		t.Fatalf("export: %v", err)
	}
	dumpPath := waitForDownload(t, downloads, ".dump")
	if !strings.HasPrefix(filepath.Base(dumpPath), "ledger-") {
		t.Errorf("export name: got %s, want ledger-<UTC time>.dump", filepath.Base(dumpPath))
	}
	extract := t.TempDir()
	if out, err := exec.Command("tar", "--zstd", "-xf", dumpPath, "-C", extract).CombinedOutput(); err != nil {
		t.Fatalf("tar --zstd -xf: %v: %s", err, out)
	}
	if out, err := exec.Command("sqlite3", filepath.Join(extract, "database.sqlite"), "SELECT count(*) || ':' || sum(n) FROM t").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "100:5050" {
		t.Fatalf("sqlite3 on the export: got %q, %v; want 100:5050", out, err)
	}

	// Change the data, then try to restore with wrong words.
	c.exec(t, d.ID, "DELETE FROM t WHERE n > 3")
	restoreURL := base + "/databases/" + d.ID + "/snapshots/" + sid.Value + "/restore"
	// (The empty answer is stopped by the browser's required check; the
	// server's own refusal of it is tested in snapshots_test.go.)
	for _, word := range []string{"restore", "RESTORE "} {
		if err := chromedp.Do(ctx,
			chromedp.Navigate(restoreURL),
			chromedp.WaitVisible(css(`input[name="confirm"]`)),
			chromedp.SetValue(css(`input[name="confirm"]`), word),
			chromedp.Click(css(`button[data-action="restore"]`)),
			chromedp.WaitVisible(css(`[data-form="restore"] [role="alert"], [data-form="restore"] .text-red-700, [data-error]`)),
		); err != nil {
			t.Fatalf("restore with %q: %v", word, err)
		}
		if got := c.rows(t, d.ID); got != "3:6" {
			t.Fatalf("after refused restore with %q: got %s, want 3:6 (unchanged)", word, got)
		}
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(restoreURL),
		chromedp.WaitVisible(css(`input[name="confirm"]`)),
	); err != nil {
		t.Fatal(err)
	}
	docScreenshot(t, ctx, "restore-confirmation")
	if err := chromedp.Do(ctx,
		chromedp.SetValue(css(`input[name="confirm"]`), "RESTORE"),
		chromedp.Click(css(`button[data-action="restore"]`)),
		chromedp.WaitVisible(css(`[data-job-status="succeeded"] [data-action="next"], [data-action="next"]`)),
	); err != nil {
		t.Fatalf("restore with RESTORE: %v", err)
	}
	if got := c.rows(t, d.ID); got != "100:5050" {
		t.Fatalf("after restore: got %s, want 100:5050", got)
	}
	// The safety snapshot taken before the restore is listed.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/databases/"+d.ID+"/snapshots"),
		chromedp.WaitVisible(css(`tr[data-snapshot-id]`)),
	); err != nil {
		t.Fatal(err)
	}
	table, err := chromedp.Run(ctx, chromedp.Text(css(`[data-table="snapshots"]`)))
	if err != nil || !strings.Contains(table, "Before restore of") {
		t.Errorf("snapshots after restore: %v; want a safety snapshot \"Before restore of ...\" in %q", err, table)
	}

	// Create a database from the snapshot.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/databases/"+d.ID+"/snapshots/"+sid.Value+"/create-database"),
		chromedp.WaitVisible(css(`input[name="name"]`)),
		chromedp.SetValue(css(`input[name="name"]`), "ledger-copy"),
		chromedp.Submit(css(`input[name="name"]`)),
		chromedp.WaitVisible(css(`[data-action="next"]`)),
		chromedp.Click(css(`[data-action="next"]`)),
		chromedp.WaitVisible(css(`a[href$="/query"]`)),
	); err != nil {
		t.Fatalf("create from snapshot: %v", err)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	copyID := loc[strings.LastIndex(loc, "/")+1:]
	if copyID == d.ID {
		t.Fatalf("landed on the source database, want the new one")
	}
	if got := c.rows(t, copyID); got != "100:5050" {
		t.Fatalf("new database from snapshot: got %s, want 100:5050", got)
	}
}

// TestBrowserFreeDatabaseListsOnlyTheLatest checks a free database's tab.
func TestBrowserFreeDatabaseListsOnlyTheLatest(t *testing.T) {
	c := mustConsole(t)
	ctx := mustBrowser(t)
	d := c.mustDatabase("hobby", snapdeck.PlanFree)
	var last snapdeck.Snapshot
	for i := 0; i < 3; i++ {
		var err error
		if last, err = c.snapshots.Snapshot(context.Background(), d.ID, snapdeck.SnapshotOnDemand, "test", "system"); err != nil {
			t.Fatal(err)
		}
	}
	signInBrowser(t, ctx, c, "viewer@x")
	if err := chromedp.Do(ctx,
		chromedp.Navigate(c.srv.URL+"/databases/"+d.ID+"/snapshots"),
		chromedp.WaitVisible(css(`tr[data-snapshot-id]`)),
	); err != nil {
		t.Fatal(err)
	}
	ids, err := chromedp.Run(ctx, chromedp.AttributesAll(css(`tr[data-snapshot-id]`)))
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 || ids[0]["data-snapshot-id"] != last.ID {
		t.Fatalf("free database rows: got %v, want only %s", ids, last.ID)
	}
	note, err := chromedp.Run(ctx, chromedp.Text(css(`[data-only-latest]`)))
	if err != nil || !strings.Contains(note, "latest") {
		t.Errorf("free note: got %q, %v", note, err)
	}
	// A viewer gets neither Take snapshot nor Restore nor Export.
	html, err := chromedp.Run(ctx, chromedp.OuterHTML(css(`main`)))
	if err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{`data-action="take-snapshot"`, `data-action="restore"`, `data-action="export"`} {
		if strings.Contains(html, action) {
			t.Errorf("viewer page has %s", action)
		}
	}
}

// waitForDownload waits for a finished file with the suffix in dir.
func waitForDownload(t *testing.T, dir, suffix string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), suffix) {
				return filepath.Join(dir, e.Name())
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no %s file downloaded into %s", suffix, dir)
	return ""
}

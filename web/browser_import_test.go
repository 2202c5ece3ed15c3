package web_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// TestBrowserImportEachFormat uploads a good .dump, .sqlite and .sql from
// the IMPORT DATABASE tab the way a user does, watches the job page finish,
// and checks each made one Load snapshot; then a hostile file is refused on
// the tab with its message and changes nothing.
func TestBrowserImportEachFormat(t *testing.T) {
	c := mustConsole(t, importLimits)
	ctx := mustBrowser(t)
	d := c.mustDatabase("warehouse", snapdeck.PlanProfessional)
	signInBrowser(t, ctx, c, "member@x")
	tab := c.srv.URL + "/databases/" + d.ID + "/import"

	for i, fixture := range []string{goodDump, goodSQLite, goodSQL} {
		abs, _ := filepath.Abs(fixture)
		if err := chromedp.Do(ctx,
			chromedp.Navigate(tab),
			chromedp.WaitVisible(css(`[data-import-warning]`)),
			chromedp.SetUploadFiles(css(`input[name="dump"]`), []string{abs}),
			chromedp.Click(css(`button[data-action="import"]`)),
			// htmx sends the file with progress, then the console sends the
			// browser to the load's job page.
			chromedp.WaitVisible(css(`[data-job-kind="load"][data-job-status="succeeded"]`)),
		); err != nil {
			t.Fatalf("upload %s: %v", filepath.Base(fixture), err)
		}
		if i == 0 {
			docScreenshot(t, ctx, "import-job")
		}
		loads := c.loadSnapshots(t, d.ID)
		if len(loads) != i+1 || loads[0].Reason != "Loaded "+filepath.Base(fixture) {
			t.Fatalf("after %s: Load snapshots %+v, want %d with \"Loaded %s\" newest", filepath.Base(fixture), loads, i+1, filepath.Base(fixture))
		}
	}
	if got := c.rows(t, d.ID); got != "100:4950" {
		t.Errorf("rows after the .sql: got %s, want 100:4950", got)
	}

	before := c.fileHash(t, d.ID)
	hostile, _ := filepath.Abs(filepath.Join("..", "internal", "importfile", "testdata", "hostile", "sql-attach.sql"))
	if err := chromedp.Do(ctx,
		chromedp.Navigate(tab),
		chromedp.WaitVisible(css(`[data-import-warning]`)),
		chromedp.SetUploadFiles(css(`input[name="dump"]`), []string{hostile}),
		chromedp.Click(css(`button[data-action="import"]`)),
		chromedp.WaitVisible(css(`[data-import-error]`)),
	); err != nil {
		t.Fatalf("hostile upload: %v", err)
	}
	docScreenshot(t, ctx, "import-refused")
	msg, err := chromedp.Run(ctx, chromedp.Text(css(`[data-import-error]`)))
	if err != nil || !strings.Contains(msg, "ATTACH") || !strings.Contains(msg, "Nothing was changed") {
		t.Errorf("refusal on the tab: got %q, %v", msg, err)
	}
	if c.fileHash(t, d.ID) != before || len(c.loadSnapshots(t, d.ID)) != 3 {
		t.Errorf("the refused upload changed the database or its snapshots")
	}
}

// TestBrowserImportShowsProgressAndTheSizeLimit checks the tab's script and
// htmx settings in a browser: the upload's progress appears in the form
// while htmx sends it, and a file over --max-import-size comes back as the
// form with the limit (a 413 answer htmx must swap in, not drop).
func TestBrowserImportShowsProgressAndTheSizeLimit(t *testing.T) {
	c := mustConsole(t, importLimits)
	ctx := mustBrowser(t)
	d := c.mustDatabase("uploads", snapdeck.PlanProfessional)
	signInBrowser(t, ctx, c, "member@x")
	tab := c.srv.URL + "/databases/" + d.ID + "/import"

	// The status line is replaced by the job page once the load starts, so
	// what it said is kept in sessionStorage, which survives the navigation.
	const watch = `new MutationObserver(function () {
		var s = document.querySelector("[data-upload-status]");
		var bar = document.querySelector("[data-upload-progress]");
		if (s && s.textContent) sessionStorage.setItem("upload-status", s.textContent + (bar.hidden ? "" : " (bar shown)"));
	}).observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true})`
	abs, _ := filepath.Abs(goodSQLite)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(tab),
		chromedp.WaitVisible(css(`[data-import-warning]`)),
		chromedp.Evaluate[chromedp.Void](`sessionStorage.removeItem("upload-status")`),
		chromedp.Evaluate[chromedp.Void](watch),
		chromedp.SetUploadFiles(css(`input[name="dump"]`), []string{abs}),
		chromedp.Click(css(`button[data-action="import"]`)),
		chromedp.WaitVisible(css(`[data-job-kind="load"][data-job-status="succeeded"]`)),
	); err != nil {
		t.Fatalf("upload: %v", err)
	}
	status, err := chromedp.Run(ctx, chromedp.Evaluate[string](`sessionStorage.getItem("upload-status") || ""`))
	if err != nil || !strings.Contains(status, "Upload") || !strings.Contains(status, "(bar shown)") {
		t.Errorf("upload status seen in the form: %q, %v; want the progress shown", status, err)
	}

	big := filepath.Join(t.TempDir(), "big.sqlite")
	if err := os.WriteFile(big, make([]byte, 2<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(tab),
		chromedp.WaitVisible(css(`[data-import-warning]`)),
		chromedp.SetUploadFiles(css(`input[name="dump"]`), []string{big}),
		chromedp.Click(css(`button[data-action="import"]`)),
		chromedp.WaitVisible(css(`[data-import-error]`)),
	); err != nil {
		t.Fatalf("upload over the limit: %v", err)
	}
	msg, err := chromedp.Run(ctx, chromedp.Text(css(`[data-import-error]`)))
	if err != nil || !strings.Contains(msg, "import limit of 1MiB") || !strings.Contains(msg, "Nothing was changed") {
		t.Errorf("refusal of a file over the limit: got %q, %v", msg, err)
	}
}

package web_test

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// TestBrowserRestoreToTime clicks Restore to a point in time on the
// SNAPSHOTS tab, types the second after the first of two batches and
// RESTORE, and watches the job finish: the database holds the first batch
// only.
func TestBrowserRestoreToTime(t *testing.T) {
	c := mustPITRConsole(t)
	ctx := mustBrowser(t)
	d := c.mustDatabase("ledger", snapdeck.PlanEnterprise)
	c.exec(t, d.ID, "CREATE TABLE t (n INTEGER)")
	at := c.pitrBatch(t, d.ID, 250)
	c.pitrBatch(t, d.ID, 750)
	signInBrowser(t, ctx, c, "member@x")
	if err := chromedp.Do(ctx,
		chromedp.Navigate(c.srv.URL+"/databases/"+d.ID+"/snapshots"),
		chromedp.WaitVisible(css(`[data-pitr-from][data-pitr-to]`)),
	); err != nil {
		t.Fatalf("snapshots tab: %v", err)
	}
	docScreenshot(t, ctx, "snapshots-pitr")
	if err := chromedp.Do(ctx,
		chromedp.Click(css(`a[data-action="restore-to-time"]`)),
		chromedp.WaitVisible(css(`form[data-form="restore-to-time"] input[name="time"]`)),
		chromedp.SendKeys(css(`input[name="time"]`), at.Format("2006-01-02T15:04:05")),
		chromedp.SendKeys(css(`input[name="confirm"]`), "RESTORE"),
	); err != nil {
		t.Fatalf("restore-to-time form: %v", err)
	}
	docScreenshot(t, ctx, "restore-to-time")
	if err := chromedp.Do(ctx,
		chromedp.Click(css(`button[data-action="restore-to-time"]`)),
		chromedp.WaitVisible(css(`[data-action="next"]`)),
	); err != nil {
		t.Fatalf("restore to %s: %v", at.Format(time.RFC3339), err)
	}
	if got := c.count(t, d.ID); got != "250 ok" {
		t.Fatalf("after restore to %s: got %s, want 250 ok", at.Format(time.RFC3339), got)
	}
}

package web_test

import (
	"context"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/snapdeck/snapdeck/internal/dbtoken"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// TestBrowserMakeAndRevokeToken: on the Overview, a member makes a
// read-only token with the form, reads it from the page that shows it
// once, and revokes it with the row's button.
func TestBrowserMakeAndRevokeToken(t *testing.T) {
	c := mustConsole(t)
	ctx := mustBrowser(t)
	d := c.mustDatabase("orders", snapdeck.PlanFree)
	signInBrowser(t, ctx, c, "member@x")
	if err := chromedp.Do(ctx,
		chromedp.Navigate(c.srv.URL+"/databases/"+d.ID),
		chromedp.WaitVisible(css(`form[data-form="new-token"] input[name="name"]`)),
		chromedp.SendKeys(css(`form[data-form="new-token"] input[name="name"]`), "billing"),
		chromedp.SetValue(css(`form[data-form="new-token"] select[name="scope"]`), "read-only"),
		chromedp.Submit(css(`form[data-form="new-token"] input[name="name"]`)),
		chromedp.WaitVisible(css(`[data-token]`)),
	); err != nil {
		t.Fatalf("make a token: %v", err)
	}
	secret, err := chromedp.Run(ctx, chromedp.AttributeValue(css(`[data-token]`), "data-token"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := c.app.Tokens.Authenticate(context.Background(), secret.Value)
	if err != nil || g.DatabaseID != d.ID || g.Scope != dbtoken.ReadOnly {
		t.Fatalf("the token shown: %+v, %v", g, err)
	}
	screenshot(t, ctx, "overview-new-token")
	if err := chromedp.Do(ctx,
		chromedp.Click(css(`tr[data-token-name="billing"] form[data-form="revoke-token"] button`)),
		chromedp.WaitNotPresent(css(`tr[data-token-name="billing"]`)),
	); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if _, err := c.app.Tokens.Authenticate(context.Background(), secret.Value); snapdeck.ErrorCode(err) != snapdeck.Unauthorized {
		t.Fatalf("revoked token: %v, want Unauthorized", err)
	}
}

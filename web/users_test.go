package web_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
)

// TestUserChangesAreInTheActivityLog checks that adding a user, changing a
// role, disabling and enabling show on /activity with the admin who did
// it, the user it was done to, and whether it went through or was refused.
func TestUserChangesAreInTheActivityLog(t *testing.T) {
	c := mustConsole(t)
	admin := c.newClient("admin@x")
	admin.post("/users", url.Values{"email": {"bob@x"}, "password": {"long-enough-pw"}, "role": {"member"}}, true)
	admin.post("/users", url.Values{"email": {"eve@x"}, "password": {"short"}, "role": {"member"}}, true)
	bob, err := c.store.FindUserByEmail(context.Background(), "bob@x")
	if err != nil {
		t.Fatal(err)
	}
	me, err := c.store.FindUserByEmail(context.Background(), "admin@x")
	if err != nil {
		t.Fatal(err)
	}
	admin.post("/users/"+itoa(bob.ID)+"/role", url.Values{"role": {"viewer"}}, true)
	admin.post("/users/"+itoa(bob.ID)+"/role", url.Values{"role": {"owner"}}, true)
	admin.post("/users/"+itoa(bob.ID)+"/disable", nil, true)
	admin.post("/users/"+itoa(me.ID)+"/disable", nil, true)
	admin.post("/users/"+itoa(bob.ID)+"/enable", nil, true)

	_, body := c.newClient("viewer@x").get("/activity")
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ action, outcome, actor, detail string }
	var got []row
	doc.Find("[data-event-action]").Each(func(_ int, s *goquery.Selection) {
		if a, _ := s.Attr("data-event-action"); strings.HasPrefix(a, "user.") {
			o, _ := s.Attr("data-event-outcome")
			cells := s.Find("td")
			got = append(got, row{a, o, strings.TrimSpace(cells.Eq(1).Text()), strings.TrimSpace(cells.Eq(6).Text())})
		}
	})
	// Newest first, as the page lists them.
	want := []struct{ action, outcome, detail string }{
		{"user.enable", "ok", "bob@x"},
		{"user.disable", "refused", "admin@x: You cannot disable yourself."},
		{"user.disable", "ok", "bob@x"},
		{"user.role", "refused", "bob@x from viewer to owner: Choose a role"},
		{"user.role", "ok", "bob@x from member to viewer"},
		{"user.add", "refused", "eve@x as member: Use a password"},
		{"user.add", "ok", "bob@x as member"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d user events on /activity, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.action != w.action || g.outcome != w.outcome || g.actor != "admin@x" || !strings.HasPrefix(g.detail, w.detail) {
			t.Errorf("event %d: got %s %s by %q: %q; want %s %s by admin@x: %q...", i, g.action, g.outcome, g.actor, g.detail,
				w.action, w.outcome, w.detail)
		}
	}
}

package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func doc(t *testing.T, body string) *goquery.Document {
	t.Helper()
	d, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDatabaseListRowsCarryContractAttributes(t *testing.T) {
	c := mustConsole(t)
	d := c.mustDatabase("orders", snapdeck.PlanEnterprise)
	_, body := c.newClient("viewer@x").get("/databases")
	row := doc(t, body).Find(`[data-database-id="` + d.ID + `"]`)
	if row.Length() != 1 {
		t.Fatalf("rows with data-database-id=%s: got %d, want 1", d.ID, row.Length())
	}
	if got, _ := row.Attr("data-database-status"); got != "running" {
		t.Errorf("data-database-status: got %q, want running", got)
	}
	if !strings.Contains(row.Text(), "orders") || !strings.Contains(strings.ToLower(row.Text()), "enterprise") {
		t.Errorf("row text %q: want the name and the plan", row.Text())
	}
}

func TestQueryTabWritesForMembersAndNotForViewers(t *testing.T) {
	c := mustConsole(t)
	d := c.mustDatabase("shop", snapdeck.PlanFree)
	member := c.newClient("member@x")
	for _, sql := range []string{"CREATE TABLE items (name TEXT)", "INSERT INTO items VALUES ('pen'), ('ink')"} {
		if res, body := member.post("/databases/"+d.ID+"/query", url.Values{"sql": {sql}}, true); res.StatusCode != http.StatusOK {
			t.Fatalf("%s: got %d, want 200: %s", sql, res.StatusCode, body)
		}
	}
	_, body := member.post("/databases/"+d.ID+"/query", url.Values{"sql": {"SELECT name FROM items ORDER BY name"}}, true)
	if cells := doc(t, body).Find("td").Text(); !strings.Contains(cells, "ink") || !strings.Contains(cells, "pen") {
		t.Errorf("SELECT result cells: got %q, want ink and pen", cells)
	}

	viewer := c.newClient("viewer@x")
	res, body := viewer.post("/databases/"+d.ID+"/query", url.Values{"sql": {"DELETE FROM items"}}, true)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "read-only") {
		t.Errorf("viewer DELETE: got %d, want 400 with a read-only message", res.StatusCode)
	}
	r, err := c.databases.Query(context.Background(), d.ID, "SELECT count(*) FROM items", true)
	if err != nil || r.Rows[0][0] != "2" {
		t.Fatalf("rows after viewer DELETE: got %v, %v; want 2", r, err)
	}

	res, body = member.post("/databases/"+d.ID+"/query", url.Values{"sql": {"SELEC 1"}}, true)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "syntax error") {
		t.Errorf("bad SQL: got %d, want 400 with the syntax error in words", res.StatusCode)
	}
}

func TestSignOutEndsTheSessionOnTheServer(t *testing.T) {
	c := mustConsole(t)
	cl := c.newClient("member@x")
	// Keep the cookie as it was before signing out, as a thief would.
	u, _ := url.Parse(c.srv.URL)
	stolen := cl.http.Jar.Cookies(u)
	if res, _ := cl.post("/logout", nil, true); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: got %d, want 303", res.StatusCode)
	}
	thief := c.newClient("")
	thief.http.Jar.SetCookies(u, stolen)
	if res, _ := thief.get("/databases"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("old cookie after sign-out: got %d, want 303 to sign-in", res.StatusCode)
	}
}

func TestDisablingAUserSignsThemOut(t *testing.T) {
	c := mustConsole(t)
	member := c.newClient("member@x")
	u, err := c.store.FindUserByEmail(context.Background(), "member@x")
	if err != nil {
		t.Fatal(err)
	}
	admin := c.newClient("admin@x")
	if res, _ := admin.post("/users/"+itoa(u.ID)+"/disable", nil, true); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("disable: got %d, want 303", res.StatusCode)
	}
	if res, _ := member.get("/databases"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("disabled member: got %d, want 303 to sign-in", res.StatusCode)
	}
}

func TestSignInThrottleIsShown(t *testing.T) {
	c := mustConsole(t)
	cl := c.newClient("")
	for i := 0; i < 5; i++ {
		cl.post("/login", url.Values{"email": {"member@x"}, "password": {"wrong-password"}}, true)
	}
	res, body := cl.post("/login", url.Values{"email": {"member@x"}, "password": {testPassword}}, true)
	if res.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "Too many failed sign-ins") {
		t.Fatalf("sixth attempt: got %d, want 429 with the reason on the page", res.StatusCode)
	}
}

func TestDeleteNeedsTheExactName(t *testing.T) {
	c := mustConsole(t)
	d := c.mustDatabase("precious", snapdeck.PlanFree)
	cl := c.newClient("member@x")
	res, body := cl.post("/databases/"+d.ID+"/delete", url.Values{"confirm_name": {"Precious"}}, true)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "precious") {
		t.Fatalf("wrong name: got %d, want 400 naming the database", res.StatusCode)
	}
	if _, err := c.databases.Find(context.Background(), d.ID); err != nil {
		t.Fatalf("database after refused delete: %v", err)
	}
}

func TestChangingThePasswordEndsEverySession(t *testing.T) {
	c := mustConsole(t)
	laptop, phone := c.newClient("member@x"), c.newClient("member@x")
	res, _ := laptop.post("/account/password", url.Values{"current_password": {testPassword}, "new_password": {"a-brand-new-password"}}, true)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("change password: got %d, want 303", res.StatusCode)
	}
	for name, cl := range map[string]*client{"laptop": laptop, "phone": phone} {
		if res, _ := cl.get("/databases"); res.StatusCode != http.StatusSeeOther {
			t.Errorf("%s after the change: got %d, want 303 to sign-in", name, res.StatusCode)
		}
	}
	if _, err := c.auth.SignIn(context.Background(), "member@x", "a-brand-new-password", "127.0.0.1"); err != nil {
		t.Errorf("sign in with the new password: %v", err)
	}
}

func TestConsoleChangesAreInTheActivityLog(t *testing.T) {
	c := mustConsole(t)
	cl := c.newClient("member@x")
	res, _ := cl.post("/databases", url.Values{"name": {"books"}, "plan": {"free"}}, true)
	id := strings.TrimPrefix(res.Header.Get("Location"), "/databases/")
	cl.post("/databases/"+id+"/settings/rename", url.Values{"name": {"novels"}}, true)
	cl.post("/databases/"+id+"/delete", url.Values{"confirm_name": {"wrong"}}, true)
	cl.post("/databases/"+id+"/delete", url.Values{"confirm_name": {"novels"}}, true)
	events, err := c.store.FindEvents(context.Background(), snapdeck.EventFilter{DatabaseID: id})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := len(events) - 1; i >= 0; i-- {
		got = append(got, events[i].Action+":"+string(events[i].Outcome)+":"+events[i].Actor)
	}
	want := "database.create:ok:member@x database.update:ok:member@x database.delete:refused:member@x database.delete:ok:member@x"
	if strings.Join(got, " ") != want {
		t.Fatalf("activity: got %v, want %s", got, want)
	}
	_, body := c.newClient("viewer@x").get("/activity?database=" + id)
	if !strings.Contains(body, "database.delete") {
		t.Errorf("the activity page does not show the delete")
	}
}

package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// TestQueryTabRunsAreSessionsOfTheirOwn is issue 12's lost writes through
// the Query tab: a member's BEGIN is rolled back and the page says so, the
// admin's INSERT after it is seen by a viewer, and a viewer's BEGIN does not
// freeze what the next viewer sees.
func TestQueryTabRunsAreSessionsOfTheirOwn(t *testing.T) {
	c := mustConsole(t)
	d := c.mustDatabase("orders", snapdeck.PlanFree)
	member, admin, viewer := c.newClient("member@x"), c.newClient("admin@x"), c.newClient("viewer@x")
	path := "/databases/" + d.ID + "/query"
	run := func(cl *client, sql string) string {
		t.Helper()
		res, body := cl.post(path, url.Values{"sql": {sql}}, true)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%q: got %d, want 200", sql, res.StatusCode)
		}
		return body
	}
	run(member, "CREATE TABLE t (v)")
	body := run(member, "BEGIN; INSERT INTO t VALUES ('kept?')")
	if !strings.Contains(body, `data-rolled-back="true"`) || !strings.Contains(body, "nothing it changed was kept") || strings.Contains(body, "data-rows-affected") {
		t.Errorf("BEGIN without COMMIT: the page does not say it was rolled back:\n%s", body)
	}
	if body := run(admin, "INSERT INTO t VALUES ('admin')"); !strings.Contains(body, `data-rows-affected="1"`) {
		t.Errorf("admin's insert: got no 1 row changed")
	}
	run(viewer, "BEGIN; SELECT count(*) FROM t")
	run(admin, "INSERT INTO t VALUES ('later')")
	if body := run(viewer, "SELECT group_concat(v) FROM t"); !strings.Contains(body, "admin,later") {
		t.Errorf("viewer after the inserts: want admin,later in\n%s", body)
	}
}

package views

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/a-h/templ"

	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

const token = "tok-123"

var created = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func page(role snapdeck.Role) Page {
	return Page{
		Title: "Test",
		User:  &snapdeck.User{ID: 1, Email: "ann@example.com", Role: role},
		CSRF:  token,
		Nav:   "databases",
	}
}

func sampleDB() snapdeck.Database {
	return snapdeck.Database{ID: "a1b2c3d4", Name: "orders", Plan: snapdeck.PlanProfessional, Status: snapdeck.StatusRunning, CreatedAt: created, SizeBytes: 5 << 20}
}

// render renders c and parses it, failing the test on any error.
func render(t *testing.T, c templ.Component) *goquery.Document {
	t.Helper()
	var buf bytes.Buffer
	if err := c.Render(context.Background(), &buf); err != nil {
		t.Fatalf("render: %v", err)
	}
	doc, err := goquery.NewDocumentFromReader(&buf)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return doc
}

// checkForms asserts that every POST form carries the CSRF token.
func checkForms(t *testing.T, name string, doc *goquery.Document) {
	t.Helper()
	doc.Find("form").Each(func(_ int, f *goquery.Selection) {
		method, _ := f.Attr("method")
		action, _ := f.Attr("action")
		if !strings.EqualFold(method, "post") {
			t.Errorf("%s: form %q has method %q, want post", name, action, method)
			return
		}
		csrf := f.Find(`input[type=hidden][name=_csrf]`)
		if v, _ := csrf.Attr("value"); csrf.Length() != 1 || v != token {
			t.Errorf("%s: form %q: got %d _csrf inputs with value %q, want 1 with %q", name, action, csrf.Length(), v, token)
		}
	})
}

// form finds the POST form with the given action.
func form(t *testing.T, name string, doc *goquery.Document, action string) *goquery.Selection {
	t.Helper()
	f := doc.Find(`form[method=post][action="` + action + `"]`)
	if f.Length() != 1 {
		t.Fatalf("%s: got %d forms posting to %s, want 1", name, f.Length(), action)
	}
	return f
}

// hasFields asserts that f has a control with each name.
func hasFields(t *testing.T, name string, f *goquery.Selection, fields ...string) {
	t.Helper()
	for _, field := range fields {
		if f.Find(`[name="`+field+`"]`).Length() == 0 {
			action, _ := f.Attr("action")
			t.Errorf("%s: form %s has no field %q", name, action, field)
		}
	}
}

func TestPagesCarryCSRFAndLayout(t *testing.T) {
	db := sampleDB()
	rows := []DatabaseRow{{DB: db}}
	p := page(snapdeck.RoleAdmin)
	for name, c := range map[string]templ.Component{
		"databases":       DatabasesPage(p, rows),
		"new database":    NewDatabasePage(p, NewDatabase{}),
		"overview":        OverviewPage(p, Overview{DB: db}),
		"query":           QueryPage(p, Query{DB: db}),
		"snapshots":       SnapshotsPage(p, Snapshots{DB: db}),
		"import tab":      ImportTabPage(p, ImportTab{DB: db, MaxSize: 4 << 30}),
		"settings":        SettingsPage(p, Settings{DB: db}),
		"users":           UsersPage(p, Users{Users: []snapdeck.User{*p.User, {ID: 2, Email: "bob@example.com", Role: snapdeck.RoleViewer}}}),
		"import help":     ImportHelpPage(p, "http://127.0.0.1:8080"),
		"error":           ErrorView(p, ErrorPage{Status: 404, Message: "No such database."}),
		"login":           LoginPage(Page{CSRF: token}, Login{}),
		"error anonymous": ErrorView(Page{CSRF: token}, ErrorPage{Status: 403}),
	} {
		doc := render(t, c)
		checkForms(t, name, doc)
		if got := doc.Find("title").Text(); !strings.Contains(got, "snapdeck") {
			t.Errorf("%s: got title %q, want it to name snapdeck", name, got)
		}
		hx, _ := doc.Find("body").Attr("hx-headers")
		if hx != `{"X-CSRF-Token":"`+token+`"}` {
			t.Errorf("%s: got body hx-headers %q, want the CSRF token", name, hx)
		}
		for _, sel := range []string{`link[rel=stylesheet][href^="/static/css/app."]`, `script[src^="/static/js/htmx.min."]`, `meta[name=htmx-config]`} {
			if doc.Find(sel).Length() != 1 {
				t.Errorf("%s: no %s", name, sel)
			}
		}
		if doc.Find(`script[src^="http"], link[href^="http"]`).Length() != 0 {
			t.Errorf("%s: loads something from another host", name)
		}
		// Every input has a label.
		doc.Find("input:not([type=hidden]), select, textarea").Each(func(_ int, in *goquery.Selection) {
			id, _ := in.Attr("id")
			if id == "" || doc.Find(`label[for="`+id+`"]`).Length() == 0 {
				n, _ := in.Attr("name")
				t.Errorf("%s: control %q (id %q) has no label", name, n, id)
			}
		})
	}
}

func TestNavigation(t *testing.T) {
	for _, tc := range []struct {
		role      snapdeck.Role
		wantUsers bool
	}{
		{snapdeck.RoleAdmin, true},
		{snapdeck.RoleMember, false},
		{snapdeck.RoleViewer, false},
	} {
		p := page(tc.role)
		doc := render(t, DatabasesPage(p, nil))
		nav := doc.Find(`nav[aria-label=Main]`)
		for _, href := range []string{"/databases", "/import", "/activity", "/settings/api-keys"} {
			if nav.Find(`a[href="`+href+`"]`).Length() != 1 {
				t.Errorf("%s: nav has no link to %s", tc.role, href)
			}
		}
		if got := nav.Find(`a[href="/users"]`).Length() == 1; got != tc.wantUsers {
			t.Errorf("%s: Users link shown %v, want %v", tc.role, got, tc.wantUsers)
		}
		if got := nav.Find(`a[aria-current=page]`).Text(); got != "Databases" {
			t.Errorf("%s: got active nav %q, want Databases", tc.role, got)
		}
		menu := doc.Find(`[data-account-menu]`)
		if !strings.Contains(menu.Text(), "ann@example.com") || !strings.Contains(menu.Text(), string(tc.role)) {
			t.Errorf("%s: account menu %q lacks the email or role", tc.role, menu.Text())
		}
		form(t, string(tc.role), doc, "/logout")
	}

	// Signed out: no navigation and no account menu.
	doc := render(t, LoginPage(Page{CSRF: token}, Login{}))
	if doc.Find(`nav[aria-label=Main], [data-account-menu]`).Length() != 0 {
		t.Error("login page: shows navigation to a signed-out user")
	}
}

func TestDatabaseList(t *testing.T) {
	snap := created.Add(time.Hour)
	rows := []DatabaseRow{
		{DB: sampleDB(), LatestSnapshotAt: snap},
		{DB: snapdeck.Database{ID: "0000beef", Name: "staging", Plan: snapdeck.PlanFree, Status: snapdeck.StatusRestoring, CreatedAt: created}},
	}
	doc := render(t, DatabasesPage(page(snapdeck.RoleMember), rows))
	trs := doc.Find(`tr[data-database-id]`)
	if trs.Length() != 2 {
		t.Fatalf("got %d database rows, want 2", trs.Length())
	}
	for i, want := range rows {
		tr := trs.Eq(i)
		if id, _ := tr.Attr("data-database-id"); id != want.DB.ID {
			t.Errorf("row %d: got data-database-id %q, want %q", i, id, want.DB.ID)
		}
		if st, _ := tr.Attr("data-database-status"); st != string(want.DB.Status) {
			t.Errorf("row %d: got data-database-status %q, want %q", i, st, want.DB.Status)
		}
		if tr.Find(`a[href="/databases/`+want.DB.ID+`"]`).Text() != want.DB.Name {
			t.Errorf("row %d: no link named %q to the database", i, want.DB.Name)
		}
	}
	if got := trs.Eq(0).Text(); !strings.Contains(got, "5.0 MiB") || !strings.Contains(got, "2026-01-02 04:04 UTC") {
		t.Errorf("row 0: got %q, want the size and the latest snapshot's time", got)
	}
	if got := trs.Eq(1).Text(); !strings.Contains(got, "none") {
		t.Errorf("row 1: got %q, want latest snapshot none", got)
	}
	if doc.Find(`a[href="/databases/new"]`).Length() == 0 {
		t.Error("member: no Create database link")
	}
	// A busy database makes the partial refresh itself.
	if doc.Find(`#database-rows[hx-get="/databases"]`).Length() != 1 {
		t.Error("restoring row: the list does not poll for updates")
	}

	// The partial alone carries the same rows.
	part := render(t, DatabaseRows(page(snapdeck.RoleMember), rows))
	if part.Find(`tr[data-database-id]`).Length() != 2 || part.Find("nav").Length() != 0 {
		t.Error("DatabaseRows: want the two rows without the layout")
	}

	// Viewers get no create buttons.
	for name, doc := range map[string]*goquery.Document{
		"viewer list":  render(t, DatabasesPage(page(snapdeck.RoleViewer), rows)),
		"viewer empty": render(t, DatabasesPage(page(snapdeck.RoleViewer), nil)),
	} {
		if doc.Find(`a[href="/databases/new"]`).Length() != 0 {
			t.Errorf("%s: shows a Create database link", name)
		}
	}

	// The empty state offers to create one.
	empty := render(t, DatabasesPage(page(snapdeck.RoleAdmin), nil))
	if empty.Find(`[data-empty-state] a[href="/databases/new"]`).Length() != 1 {
		t.Error("empty list: no Create database link in the empty state")
	}
}

func TestForms(t *testing.T) {
	db := sampleDB()
	p := page(snapdeck.RoleAdmin)

	doc := render(t, LoginPage(Page{CSRF: token}, Login{Email: "ann@example.com", Next: "/databases/a1b2c3d4", Error: "Wrong email or password."}))
	f := form(t, "login", doc, "/login")
	hasFields(t, "login", f, "email", "password", "next")
	if v, _ := f.Find(`input[name=next]`).Attr("value"); v != "/databases/a1b2c3d4" {
		t.Errorf("login: got next %q, want the page to return to", v)
	}
	if !strings.Contains(f.Text(), "Wrong email or password.") {
		t.Error("login: error not shown")
	}

	doc = render(t, NewDatabasePage(p, NewDatabase{Name: "x", Plan: snapdeck.PlanEnterprise, Error: "Taken."}))
	f = form(t, "new database", doc, "/databases")
	hasFields(t, "new database", f, "name", "plan")
	var plans []string
	f.Find(`select[name=plan] option`).Each(func(_ int, o *goquery.Selection) { plans = append(plans, o.AttrOr("value", "")) })
	if strings.Join(plans, ",") != "free,professional,enterprise" {
		t.Errorf("new database: got plans %v, want free, professional, enterprise", plans)
	}
	if v, _ := f.Find(`option[selected]`).Attr("value"); v != "enterprise" {
		t.Errorf("new database: got selected plan %q, want enterprise", v)
	}

	doc = render(t, QueryPage(p, Query{DB: db, SQL: "select 1"}))
	f = form(t, "query", doc, "/databases/a1b2c3d4/query")
	hasFields(t, "query", f, "sql")
	if hx, _ := f.Attr("hx-post"); hx != "/databases/a1b2c3d4/query" {
		t.Errorf("query: got hx-post %q, want the query path", hx)
	}
	if tgt, _ := f.Attr("hx-target"); doc.Find(tgt).Length() != 1 {
		t.Errorf("query: hx-target %q matches nothing", tgt)
	}
	if got := f.Find("textarea[name=sql]").Text(); got != "select 1" {
		t.Errorf("query: got SQL %q, want it kept", got)
	}

	doc = render(t, SettingsPage(p, Settings{DB: db}))
	hasFields(t, "settings", form(t, "settings", doc, "/databases/a1b2c3d4/settings/rename"), "name")
	hasFields(t, "settings", form(t, "settings", doc, "/databases/a1b2c3d4/settings/plan"), "plan")
	del := form(t, "settings", doc, "/databases/a1b2c3d4/delete")
	hasFields(t, "settings", del, "confirm_name")
	if !strings.Contains(del.Text(), "type its name") || !strings.Contains(del.Text(), "orders") {
		t.Errorf("settings: delete form %q does not explain typing the name", del.Text())
	}

	users := []snapdeck.User{*p.User, {ID: 7, Email: "bob@example.com", Role: snapdeck.RoleViewer}, {ID: 8, Email: "cy@example.com", Role: snapdeck.RoleMember, Disabled: true}}
	doc = render(t, UsersPage(p, Users{Users: users}))
	hasFields(t, "users", form(t, "users", doc, "/users"), "email", "password", "role")
	hasFields(t, "users", form(t, "users", doc, "/users/7/role"), "role")
	form(t, "users", doc, "/users/7/disable")
	form(t, "users", doc, "/users/8/enable")
	if doc.Find(`form[action="/users/1/disable"]`).Length() != 0 {
		t.Error("users: an admin is offered to disable themselves")
	}
}

func TestViewerSettingsAreReadOnly(t *testing.T) {
	doc := render(t, SettingsPage(page(snapdeck.RoleViewer), Settings{DB: sampleDB()}))
	if doc.Find(`form[action="/databases/a1b2c3d4/delete"]`).Length() != 0 {
		t.Error("viewer: offered to delete the database")
	}
	if doc.Find(`main button[type=submit]`).Length() != 0 {
		t.Error("viewer: settings have submit buttons")
	}
}

func TestSettingsErrorNextToField(t *testing.T) {
	doc := render(t, SettingsPage(page(snapdeck.RoleMember), Settings{DB: sampleDB(), Field: "confirm_name", Error: "The name does not match."}))
	del := doc.Find(`form[action="/databases/a1b2c3d4/delete"]`)
	if !strings.Contains(del.Text(), "The name does not match.") {
		t.Error("settings: delete error not shown in the delete form")
	}
	if v, _ := del.Find(`input[name=confirm_name]`).Attr("aria-invalid"); v != "true" {
		t.Error("settings: confirm_name not marked invalid")
	}
}

func TestQueryResult(t *testing.T) {
	db := sampleDB()
	for _, tc := range []struct {
		name string
		v    Query
		want []string
		sel  string
	}{
		{"rows", Query{DB: db, Result: &database.Result{IsQuery: true, Columns: []string{"id", "name"}, Rows: [][]string{{"1", "ann"}, {"2", "NULL"}}, Duration: 3 * time.Millisecond}}, []string{"2 rows", "3 ms", "ann"}, `table[data-table=result] tbody tr`},
		{"truncated", Query{DB: db, MaxRows: 1000, Result: &database.Result{IsQuery: true, Columns: []string{"n"}, Rows: [][]string{{"1"}}, Truncated: true}}, []string{"Showing the first 1,000 rows"}, `[data-truncated]`},
		{"change", Query{DB: db, Result: &database.Result{RowsAffected: 3, Duration: 2 * time.Second}}, []string{"3 rows changed", "2.00 s"}, `[data-rows-affected="3"]`},
		{"error", Query{DB: db, Error: "no such table: nope"}, []string{"no such table: nope"}, `[data-query-error][role=alert]`},
		{"nothing yet", Query{DB: db}, []string{"Run a statement"}, `#query-result`},
	} {
		doc := render(t, QueryResult(tc.v))
		if doc.Find("#query-result").Length() != 1 {
			t.Errorf("%s: no #query-result", tc.name)
		}
		if doc.Find(tc.sel).Length() == 0 {
			t.Errorf("%s: nothing matches %s", tc.name, tc.sel)
		}
		text := doc.Text()
		for _, w := range tc.want {
			if !strings.Contains(text, w) {
				t.Errorf("%s: got %q, want it to contain %q", tc.name, text, w)
			}
		}
	}

	doc := render(t, QueryPage(page(snapdeck.RoleViewer), Query{DB: db, ReadOnly: true}))
	if !strings.Contains(doc.Find(`[data-read-only]`).Text(), "Read-only for viewers") {
		t.Error("viewer: no read-only note on the Query tab")
	}
}

func TestDatabaseTabs(t *testing.T) {
	db := sampleDB()
	doc := render(t, DatabaseTabs(db, "snapshots"))
	want := map[string]string{
		"Overview":        "/databases/a1b2c3d4",
		"Query":           "/databases/a1b2c3d4/query",
		"SNAPSHOTS":       "/databases/a1b2c3d4/snapshots",
		"IMPORT DATABASE": "/databases/a1b2c3d4/import",
		"Settings":        "/databases/a1b2c3d4/settings",
	}
	links := doc.Find("a")
	if links.Length() != len(want) {
		t.Fatalf("got %d tabs, want %d", links.Length(), len(want))
	}
	links.Each(func(_ int, a *goquery.Selection) {
		if href, _ := a.Attr("href"); want[a.Text()] != href {
			t.Errorf("tab %q: got href %q, want %q", a.Text(), href, want[a.Text()])
		}
	})
	if got := doc.Find(`a[aria-current=page]`).Text(); got != "SNAPSHOTS" {
		t.Errorf("got active tab %q, want SNAPSHOTS", got)
	}

	// Every database page shows the name, id, plan and status, then the tabs.
	p := page(snapdeck.RoleMember)
	for name, c := range map[string]templ.Component{
		"overview":  OverviewPage(p, Overview{DB: db, Tables: []database.Table{{Name: "orders", Rows: 12345}}, Connect: "/srv/data/databases/a1b2c3d4.sqlite"}),
		"snapshots": SnapshotsPage(p, Snapshots{DB: db}),
		"import":    ImportTabPage(p, ImportTab{DB: db, MaxSize: 4 << 30}),
	} {
		doc := render(t, c)
		text := doc.Text()
		for _, w := range []string{"orders", "a1b2c3d4", "Professional", "running"} {
			if !strings.Contains(text, w) {
				t.Errorf("%s: page lacks %q", name, w)
			}
		}
		if doc.Find(`[data-tabs]`).Length() != 1 {
			t.Errorf("%s: no tabs", name)
		}
	}
	doc = render(t, OverviewPage(p, Overview{DB: db, Tables: []database.Table{{Name: "orders", Rows: 12345}}, Connect: "/srv/x.sqlite",
		ConnectionURL: "https://db.example.com/db/a1b2c3d4/"}))
	if got := doc.Find(`[data-table-name=orders]`).Text(); !strings.Contains(got, "12,345") {
		t.Errorf("overview: got table row %q, want the row count 12,345", got)
	}
	// How to connect: the data-plane URL first; the file is for looking
	// at, read-only.
	if got := doc.Find(`[data-connect-command]`).Text(); got != "sqlite3 -readonly /srv/x.sqlite" {
		t.Errorf("overview: got command %q, want sqlite3 -readonly /srv/x.sqlite", got)
	}
	if href, _ := doc.Find(`[data-connect-query]`).Attr("href"); href != "/databases/"+db.ID+"/query" {
		t.Errorf("overview: Query tab link %q, want /databases/%s/query", href, db.ID)
	}
	warning := doc.Find(`[data-connect-warning]`).Text()
	for _, w := range []string{"read-only", "restore", "load", "replaces", "lost"} {
		if !strings.Contains(warning, w) {
			t.Errorf("overview: the warning about the file lacks %q: %q", w, warning)
		}
	}
	if got := doc.Find(`[data-how-to-connect] [data-connect-network]`).Text(); got != "https://db.example.com/db/a1b2c3d4/" {
		t.Errorf("overview: network address %q, want the data-plane URL", got)
	}
	doc = render(t, OverviewPage(p, Overview{DB: db}))
	if !strings.Contains(doc.Find(`[data-empty-state]`).Text(), "No tables yet") {
		t.Error("overview without tables: no empty state")
	}
}

func TestImportHelp(t *testing.T) {
	doc := render(t, ImportHelpPage(page(snapdeck.RoleMember), "https://db.example.com"))
	cmd := doc.Find(`[data-command=push-to-cloud]`).Text()
	for _, w := range []string{"snapdeck push-to-cloud --url https://db.example.com --database ID FILE", "SNAPDECK_CLIENT_ID=", "SNAPDECK_CLIENT_SECRET="} {
		if !strings.Contains(cmd, w) {
			t.Errorf("got command %q, want it to contain %q", cmd, w)
		}
	}
	if doc.Find(`main a[href="/settings/api-keys"]`).Length() == 0 {
		t.Error("no link to the API keys page")
	}
}

func TestStatusBadge(t *testing.T) {
	for _, s := range []snapdeck.Status{snapdeck.StatusCreating, snapdeck.StatusRunning, snapdeck.StatusRestoring, snapdeck.StatusLoading, snapdeck.StatusDeleting, snapdeck.StatusFailed} {
		doc := render(t, StatusBadge(s))
		if got := strings.TrimSpace(doc.Find(`[data-status]`).Text()); got != string(s) {
			t.Errorf("got badge %q, want %q", got, s)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {5 << 20, "5.0 MiB"}, {3 << 30, "3.0 GiB"}} {
		if got := humanBytes(tc.n); got != tc.want {
			t.Errorf("humanBytes(%d): got %q, want %q", tc.n, got, tc.want)
		}
	}
	if got := thousands(1234567); got != "1,234,567" {
		t.Errorf("thousands: got %q, want 1,234,567", got)
	}
}

package views

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/a-h/templ"

	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// TestPreview writes every page, with the built CSS inlined, as HTML files
// into $SNAPDECK_PREVIEW_DIR, to look at or screenshot without a server:
//
//	SNAPDECK_PREVIEW_DIR=/tmp/p go test ./views -run TestPreview
//	chromium --headless --screenshot=/tmp/p/x.png --window-size=1280,900 file:///tmp/p/databases.html
//
// Without the variable it is skipped.
func TestPreview(t *testing.T) {
	dir := os.Getenv("SNAPDECK_PREVIEW_DIR")
	if dir == "" {
		t.Skip("set SNAPDECK_PREVIEW_DIR to write page previews")
	}
	css, _ := os.ReadFile("../static/css/app.css")
	p := page(snapdeck.RoleAdmin)
	p.Flash = "Database orders created."
	p.FlashKind = "ok"
	snap := time.Now().Add(-time.Hour)
	rows := []DatabaseRow{
		{DB: sampleDB(), LatestSnapshotAt: snap},
		{DB: snapdeck.Database{ID: "0000beef", Name: "staging-app", Plan: snapdeck.PlanFree, Status: snapdeck.StatusRestoring, CreatedAt: created, SizeBytes: 81234}},
		{DB: snapdeck.Database{ID: "9f8e7d6c", Name: "analytics", Plan: snapdeck.PlanEnterprise, Status: snapdeck.StatusFailed, CreatedAt: created, SizeBytes: 3 << 30}, LatestSnapshotAt: snap},
	}
	db := sampleDB()
	res := &database.Result{IsQuery: true, Columns: []string{"id", "customer", "total", "note"}, Duration: 1200 * time.Microsecond}
	for i := 0; i < 8; i++ {
		res.Rows = append(res.Rows, []string{"1" + string(rune('0'+i)), "ann@example.com", "12.50", "NULL"})
	}
	q := p
	q.Flash = ""
	pages := map[string]templ.Component{
		"databases": DatabasesPage(p, rows),
		"empty":     DatabasesPage(q, nil),
		"new":       NewDatabasePage(q, NewDatabase{Error: "A database named orders exists already."}),
		"overview":  OverviewPage(q, Overview{DB: db, Tables: []database.Table{{Name: "orders", Rows: 12345}, {Name: "customers", Rows: 321}}, Connect: "/srv/snapdeck/data/databases/a1b2c3d4.sqlite"}),
		"query":     QueryPage(q, Query{DB: db, SQL: "SELECT * FROM orders LIMIT 8;", Result: res}),
		"queryerr":  QueryPage(q, Query{DB: db, SQL: "SELECT * FROM nope;", Error: "no such table: nope", ReadOnly: true}),
		"settings":  SettingsPage(q, Settings{DB: db, Field: "confirm_name", Error: "The name you typed does not match orders."}),
		"users":     UsersPage(q, Users{Users: []snapdeck.User{*p.User, {ID: 2, Email: "bob@example.com", Role: snapdeck.RoleViewer, CreatedAt: created}, {ID: 3, Email: "cy@example.com", Role: snapdeck.RoleMember, Disabled: true, CreatedAt: created}}}),
		"import":    ImportHelpPage(q, "http://127.0.0.1:8080"),
		"snapshots": SnapshotsPage(q, Snapshots{DB: db}),
		"importtab": ImportTabPage(q, ImportTab{DB: db, MaxSize: 4 << 30}),
		"login":     LoginPage(Page{Title: "Sign in"}, Login{Error: "Wrong email or password."}),
		"error":     ErrorView(q, ErrorPage{Status: 404, Message: "There is no database with id ffffffff."}),
	}
	link := regexp.MustCompile(`<link rel="stylesheet" href="[^"]*">`)
	for name, c := range pages {
		var buf bytes.Buffer
		if err := c.Render(context.Background(), &buf); err != nil {
			t.Fatal(err)
		}
		out := link.ReplaceAll(buf.Bytes(), []byte("<style>"+string(css)+"</style>"))
		if err := os.WriteFile(filepath.Join(dir, name+".html"), out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

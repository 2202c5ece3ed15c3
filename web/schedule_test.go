package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/store"
)

func TestScheduleOverrideForm(t *testing.T) {
	c := mustConsole(t)
	d := c.mustDatabase("orders", snapdeck.PlanEnterprise)
	cl := c.newClient("member@x")
	path := "/databases/" + d.ID + "/settings/schedule"

	res, body := cl.post(path, url.Values{"schedule": {"every day"}}, true)
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad schedule: got %d, want 400", res.StatusCode)
	}
	page := doc(t, body)
	if got := page.Find(`#settings-schedule`).AttrOr("value", ""); got != "every day" {
		t.Errorf("re-shown form holds %q, want what was typed", got)
	}
	if got := page.Find(`#settings-schedule-hint`).Text(); !strings.Contains(got, "not a valid cron expression") {
		t.Errorf("error next to the field: %q", got)
	}
	if got, _ := c.databases.Find(context.Background(), d.ID); got.Schedule != "" {
		t.Errorf("a refused schedule was stored: %q", got.Schedule)
	}

	for _, tc := range []struct{ typed, stored string }{{"30m", "30m"}, {" 0 3 * * * ", "0 3 * * *"}, {"", ""}} {
		res, _ = cl.post(path, url.Values{"schedule": {tc.typed}}, true)
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("schedule %q: got %d, want 303", tc.typed, res.StatusCode)
		}
		if got, _ := c.databases.Find(context.Background(), d.ID); got.Schedule != tc.stored {
			t.Errorf("schedule %q: stored %q, want %q", tc.typed, got.Schedule, tc.stored)
		}
	}
	_, body = cl.get("/databases/" + d.ID + "/settings")
	if hint := doc(t, body).Find(`#settings-schedule-hint`).Text(); !strings.Contains(hint, "plan's default: every 1h") {
		t.Errorf("settings hint %q, want the plan's default", hint)
	}
}

func TestDatabaseListFlagsFailingSchedulesAndShowsLatestSnapshot(t *testing.T) {
	c := mustConsole(t)
	ctx := context.Background()
	ok := c.mustDatabase("healthy", snapdeck.PlanProfessional)
	bad := c.mustDatabase("broken", snapdeck.PlanProfessional)
	snap, err := c.databases.Snapshot(ctx, ok.ID, snapdeck.SnapshotScheduled, "Database created", "system")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		rec := store.SnapshotRecord{Snapshot: snapdeck.Snapshot{ID: fmt.Sprintf("failed-%d", i), DatabaseID: bad.ID, Type: snapdeck.SnapshotScheduled,
			Reason: "Daily schedule", Status: snapdeck.SnapshotFailed, CreatedAt: time.Now().Add(time.Duration(i) * time.Second)}}
		if err := c.store.CreateSnapshot(ctx, &rec); err != nil {
			t.Fatal(err)
		}
	}
	_, body := c.newClient("viewer@x").get("/databases")
	list := doc(t, body)
	row := func(id string) *goquery.Selection { return list.Find(`[data-database-id="` + id + `"]`) }
	if row(bad.ID).Find(`[data-snapshots-failing]`).Length() != 1 {
		t.Error("the database whose scheduled snapshots keep failing is not flagged")
	}
	if row(ok.ID).Find(`[data-snapshots-failing]`).Length() != 0 {
		t.Error("the healthy database is flagged")
	}
	if got, want := row(ok.ID).Find("time").First().AttrOr("datetime", ""), snap.CreatedAt.UTC().Format(time.RFC3339); got != want {
		t.Errorf("latest snapshot column %q, want %q", got, want)
	}
}

func TestMetricsArePublic(t *testing.T) {
	c := mustConsole(t)
	res, _ := c.newClient("").get("/metrics")
	if res.StatusCode != http.StatusOK || !strings.Contains(res.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
}

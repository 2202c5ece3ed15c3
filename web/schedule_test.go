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

// TestScheduleOverrideRefusesWhatGocronWouldNotRunOrRunsTooOften: an
// override that never runs or runs more often than once a minute answers
// 400 with the form and the reason, and the old schedule stays stored.
func TestScheduleOverrideRefusesWhatGocronWouldNotRunOrRunsTooOften(t *testing.T) {
	c := mustConsole(t)
	d := c.mustDatabase("orders", snapdeck.PlanEnterprise)
	cl := c.newClient("member@x")
	path := "/databases/" + d.ID + "/settings/schedule"
	if res, _ := cl.post(path, url.Values{"schedule": {"6h"}}, true); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("schedule 6h: got %d, want 303", res.StatusCode)
	}
	cases := []struct{ typed, reason string }{
		{"0 0 30 2 *", "never runs: no date matches it"},
		{"0 0 0 31 4 *", "never runs"},
		{"*/1 * * * * *", "runs as often as every 1s: scheduled snapshots must be at least 1 minute apart"},
		{"* * * * * *", "at least 1 minute apart"},
		{"0-59/30 * * * * *", "as often as every 30s"},
		{"@every 30s", "at least 1 minute apart"},
		{"30s", "too short: scheduled snapshots must be at least 1 minute apart"},
	}
	for _, tc := range cases {
		res, body := cl.post(path, url.Values{"schedule": {tc.typed}}, true)
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("schedule %q: got %d, want 400", tc.typed, res.StatusCode)
			continue
		}
		page := doc(t, body)
		if got := page.Find(`#settings-schedule`).AttrOr("value", ""); got != tc.typed {
			t.Errorf("schedule %q: re-shown form holds %q, want what was typed", tc.typed, got)
		}
		if got := page.Find(`#settings-schedule-hint`).Text(); !strings.Contains(got, tc.reason) {
			t.Errorf("schedule %q: error next to the field %q, want it to say %q", tc.typed, got, tc.reason)
		}
		if got, _ := c.databases.Find(context.Background(), d.ID); got.Schedule != "6h" {
			t.Errorf("schedule %q: stored %q, want the old 6h kept", tc.typed, got.Schedule)
		}
	}
	// Once a minute is the shortest allowed, with five fields or six.
	for _, typed := range []string{"1m", "* * * * *", "0 * * * * *"} {
		if res, _ := cl.post(path, url.Values{"schedule": {typed}}, true); res.StatusCode != http.StatusSeeOther {
			t.Errorf("schedule %q: got %d, want 303", typed, res.StatusCode)
		}
	}
}

// TestBadStoredScheduleIsFlagged: an override an older version stored
// unchecked is flagged on the list and explained on the Settings tab.
func TestBadStoredScheduleIsFlagged(t *testing.T) {
	c := mustConsole(t)
	ok := c.mustDatabase("healthy", snapdeck.PlanProfessional)
	bad := c.mustDatabase("feb30", snapdeck.PlanProfessional)
	for id, text := range map[string]string{ok.ID: "0 3 * * *", bad.ID: "0 0 30 2 *"} {
		if _, err := c.store.UpdateDatabase(context.Background(), id, store.DatabaseUpdate{Schedule: &text}); err != nil {
			t.Fatal(err)
		}
	}
	cl := c.newClient("viewer@x")
	_, body := cl.get("/databases")
	list := doc(t, body)
	row := func(id string) *goquery.Selection { return list.Find(`[data-database-id="` + id + `"]`) }
	flag := row(bad.ID).Find(`[data-schedule-invalid]`)
	if flag.Length() != 1 || !strings.Contains(flag.Text(), "schedule invalid") || !strings.Contains(flag.AttrOr("title", ""), "never runs") {
		t.Errorf("bad schedule flag: %d elements, text %q, title %q; want one saying why", flag.Length(), flag.Text(), flag.AttrOr("title", ""))
	}
	if row(ok.ID).Find(`[data-schedule-invalid]`).Length() != 0 {
		t.Error("the database with a good override is flagged")
	}
	_, body = cl.get("/databases/" + bad.ID + "/settings")
	if note := doc(t, body).Find(`[data-card="schedule"] [data-schedule-invalid]`).Text(); !strings.Contains(note, "plan's default (every 24h)") || !strings.Contains(note, "never runs") {
		t.Errorf("settings note %q, want the plan's default and the reason", note)
	}
}

func TestDatabaseListFlagsFailingSchedulesAndShowsLatestSnapshot(t *testing.T) {
	c := mustConsole(t)
	ctx := context.Background()
	ok := c.mustDatabase("healthy", snapdeck.PlanProfessional)
	bad := c.mustDatabase("broken", snapdeck.PlanProfessional)
	snap, err := c.snapshots.Snapshot(ctx, ok.ID, snapdeck.SnapshotScheduled, "Database created", "system")
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

package main

import (
	"context"
	"database/sql"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/job"
	"github.com/snapdeck/snapdeck/internal/schedule"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/snapstore"
	"github.com/snapdeck/snapdeck/store"
)

// TestRestartWithAnotherVersionSnapshotsEveryDatabaseOnce starts the
// console, adds databases while it is stopped, then starts it again as
// another version: every database gets exactly one "System upgrade"
// snapshot naming both versions, taken before the console answers.
func TestRestartWithAnotherVersionSnapshotsEveryDatabaseOnce(t *testing.T) {
	old := version
	t.Cleanup(func() { version = old })
	data := filepath.Join(t.TempDir(), "data")
	env := map[string]string{"SNAPDECK_DATA": data, "SNAPDECK_ADMIN_EMAIL": "ann@example.com", "SNAPDECK_ADMIN_PASSWORD": "a-long-password"}

	version = "1.2.3"
	_, stop := startConsole(t, env)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	ids := createDatabases(t, data, "orders", "users", "events")

	version = "1.3.0"
	url, stop := startConsole(t, env)
	// Served: every database was snapshotted before the console listened.
	res, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), `snapdeck_snapshots_total{outcome="completed",type="Scheduled"} 3`) {
		t.Errorf("/metrics: %d, want 200 counting the 3 Scheduled snapshots; got\n%.2000s", res.StatusCode, body)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Once more with the same version: no further upgrade snapshot.
	_, stop = startConsole(t, env)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	db, err := store.Open(context.Background(), filepath.Join(data, "console.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	for _, id := range ids {
		recs, err := db.FindSnapshots(context.Background(), snapdeck.SnapshotFilter{DatabaseID: id})
		if err != nil {
			t.Fatal(err)
		}
		var upgrades []string
		for _, r := range recs {
			if strings.HasPrefix(r.Reason, "System upgrade") {
				upgrades = append(upgrades, r.Reason+" "+string(r.Type)+" "+string(r.Status))
			}
		}
		if want := "System upgrade 1.2.3 -> 1.3.0 Scheduled completed"; len(upgrades) != 1 || upgrades[0] != want {
			t.Errorf("database %s: upgrade snapshots %q, want exactly [%q]", id, upgrades, want)
		}
	}
}

// createDatabases adds running databases to a stopped console's data
// directory, as a console would, without the scheduler's hooks.
func createDatabases(t *testing.T, data string, names ...string) []string {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(data, "console.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	host, err := database.NewHost(filepath.Join(data, "databases"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close(ctx)
	snaps, err := snapstore.Open(ctx, filepath.Join(data, "snapshots"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer snaps.Close(ctx)
	jobs := job.NewRunner(db, nil)
	defer jobs.Close(ctx)
	cfg := database.Config{Store: db, Host: host, Activity: activity.New(db, nil, nil),
		Snapshots: database.SnapshotConfig{Store: snaps, Jobs: jobs, TmpDir: filepath.Join(data, "tmp"), ExportDir: filepath.Join(data, "tmp", "exports")}}
	shots, err := database.NewSnapshots(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dbs, err := database.NewDatabases(cfg, shots)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, name := range names {
		out, err := dbs.Create(ctx, "test", database.CreateRequest{Name: name, Plan: snapdeck.PlanProfessional})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, out.Database.ID)
	}
	return ids
}

func TestScheduleFlags(t *testing.T) {
	cases := []struct {
		args    []string
		env     map[string]string
		want    string
		wantErr string
	}{
		{want: "2 "},
		{args: []string{"--snapshot-workers", "4", "--notify-url", "https://hooks.example.com/snapdeck"}, want: "4 https://hooks.example.com/snapdeck"},
		{env: map[string]string{"SNAPDECK_SNAPSHOT_WORKERS": "3", "SNAPDECK_NOTIFY_URL": "http://127.0.0.1:9/x"}, want: "3 http://127.0.0.1:9/x"},
		{args: []string{"--snapshot-workers", "0"}, wantErr: "--snapshot-workers must be at least 1"},
		{args: []string{"--notify-url", "hooks.example.com"}, wantErr: "--notify-url"},
	}
	for _, tc := range cases {
		c := &serveCommand{getenv: func(k string) string { return tc.env[k] }, stdout: io.Discard, stderr: io.Discard}
		err := c.parse(tc.args)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v: got %v, want an error containing %q", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v %v: %v", tc.args, tc.env, err)
			continue
		}
		if got := itoa(int64(c.snapshotWorkers)) + " " + c.notifyURL; got != tc.want {
			t.Errorf("%v %v: got %q, want %q", tc.args, tc.env, got, tc.want)
		}
	}
}

// TestBadStoredScheduleDoesNotStopTheConsole: an override that gocron
// refuses (30 February), stored by an older version straight into
// console.db, is logged, flagged on the list, replaced by the plan's
// cadence, and the console serves; a member's refused override through
// the form then leaves the schedule that runs as it was.
func TestBadStoredScheduleDoesNotStopTheConsole(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	env := map[string]string{"SNAPDECK_DATA": data, "SNAPDECK_ADMIN_EMAIL": "ann@example.com", "SNAPDECK_ADMIN_PASSWORD": "a-long-password"}
	base, stop := startConsole(t, env)
	id := signIn(t, base, "ann@example.com", "a-long-password").createDatabase(t, base, "orders")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", filepath.Join(data, "console.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`UPDATE databases SET schedule = '0 0 30 2 *' WHERE id = ?`, id); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	var log syncBuffer
	base, _ = startConsoleLogging(t, env, &log)
	if !regexp.MustCompile(`level=WARN msg="unusable schedule override[^"]*" database_id=` + id).MatchString(log.String()) {
		t.Errorf("no WARN line naming database_id=%s; log:\n%s", id, log.String())
	}
	cl := signIn(t, base, "ann@example.com", "a-long-password")
	list := getPage(t, cl, base+"/databases")
	if flag := list.Find(`[data-database-id="` + id + `"] [data-schedule-invalid]`); flag.Length() != 1 {
		t.Errorf("the database with the bad stored schedule is not flagged on the list")
	}
	// The plan's daily cadence runs in its place.
	if next := nextSnapshot(t, cl, base, id); !onCadence(id, next, 24*time.Hour) {
		t.Errorf("next snapshot %v is not on the professional plan's daily cadence", next)
	}

	settings := base + "/databases/" + id + "/settings/schedule"
	if res, _ := cl.form(t, settings, url.Values{"schedule": {"6h"}}); res.StatusCode != http.StatusOK || res.Request.URL.Path != "/databases/"+id+"/settings" {
		t.Fatalf("schedule 6h: got %d at %s, want the Settings tab", res.StatusCode, res.Request.URL.Path)
	}
	var want time.Time
	// gocron takes the new job in its own loop: ask until it answers.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !onCadence(id, want, 6*time.Hour); {
		want = nextSnapshot(t, cl, base, id)
	}
	if !onCadence(id, want, 6*time.Hour) {
		t.Fatalf("next snapshot %v is not on the 6h override", want)
	}
	if getPage(t, cl, base+"/databases").Find(`[data-schedule-invalid]`).Length() != 0 {
		t.Error("still flagged after a good override")
	}
	for _, typed := range []string{"0 0 30 2 *", "*/1 * * * * *"} {
		res, body := cl.form(t, settings, url.Values{"schedule": {typed}})
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "scheduled snapshots") {
			t.Errorf("schedule %q: got %d, want 400 saying why", typed, res.StatusCode)
		}
		if next := nextSnapshot(t, cl, base, id); !next.Equal(want) {
			t.Errorf("after %q: next snapshot %v, want %v of the kept 6h", typed, next, want)
		}
	}
}

// onCadence reports whether at, as the console shows it (whole seconds),
// is a run of database id on an interval of every.
func onCadence(id string, at time.Time, every time.Duration) bool {
	return time.Duration(at.Unix())*time.Second%every == schedule.Offset(id, every).Truncate(time.Second)
}

// getPage gets a console page as cl and parses it.
func getPage(t *testing.T, cl *webClient, u string) *goquery.Document {
	t.Helper()
	res, err := cl.http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	page, err := goquery.NewDocumentFromReader(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return page
}

// nextSnapshot is when the Settings tab says d's next Scheduled snapshot is.
func nextSnapshot(t *testing.T, cl *webClient, base, id string) time.Time {
	t.Helper()
	at := getPage(t, cl, base+"/databases/"+id+"/settings").Find(`[data-next-snapshot]`).AttrOr("data-next-snapshot", "")
	next, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		t.Fatalf("Settings tab: next snapshot %q: %v", at, err)
	}
	return next
}

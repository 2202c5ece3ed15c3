package main

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
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
	mgr := database.NewManager(db, host, nil)
	var ids []string
	for _, name := range names {
		d, err := mgr.Create(ctx, name, snapdeck.PlanProfessional)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, d.ID)
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

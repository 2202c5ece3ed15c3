package app_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/app"
	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// events is an activity observer a test can wait on.
type events chan snapdeck.Event

func (e events) Event(ev snapdeck.Event) { e <- ev }

// lockedBuffer is a log sink safe across goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestNewWiresTheConsole builds the console as serve does and checks the
// joints the wiring makes: the first admin, a new database's "Database
// created" snapshot (the services' observer reaching the scheduler), the
// snapshot counted in /metrics (reaching metrics), and Close stopping the
// jobs and logging "stopped" last. A second start on the same data makes
// no admin.
func TestNewWiresTheConsole(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var logs lockedBuffer
	heard := make(events, 100)
	a, err := app.New(ctx, app.Config{DataDir: dir, Version: "test", SQLiteVersion: "3", Observer: heard,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if !a.AdminCreated || a.AdminPassword == "" {
		t.Fatalf("first start: got admin created %v with password %q, want admin@localhost with a generated password", a.AdminCreated, a.AdminPassword)
	}
	if _, err := a.Auth.SignIn(ctx, "admin@localhost", a.AdminPassword, "127.0.0.1"); err != nil {
		t.Fatalf("sign in as the first admin: %v", err)
	}
	out, err := a.Databases.Create(ctx, "admin@localhost", database.CreateRequest{Name: "orders", Plan: snapdeck.PlanFree})
	if err != nil {
		t.Fatal(err)
	}
	d := out.Database
	// The timeout only turns a hang into a failure.
	timeout := time.After(30 * time.Second)
	for taken := false; !taken; {
		select {
		case e := <-heard:
			taken = e.Action == string(activity.SnapshotTake) && e.DatabaseID == d.ID && e.Actor == "system" &&
				e.Outcome == snapdeck.OutcomeOK && strings.Contains(e.Detail, "Database created")
		case <-timeout:
			t.Fatal(`no "Database created" snapshot within 30s`)
		}
	}
	rec := httptest.NewRecorder()
	a.Web.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if want := `snapdeck_snapshots_total{outcome="completed",type="Scheduled"} 1`; !strings.Contains(rec.Body.String(), want) {
		t.Errorf("/metrics after the snapshot: want %s in\n%s", want, rec.Body.String())
	}
	a.Close(ctx)
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, "msg=stopped") {
		t.Errorf("last log line: got %q, want stopped", last)
	}
	var se *snapdeck.Error
	if _, err := a.Jobs.Start(ctx, snapdeck.Job{Kind: snapdeck.JobExport, DatabaseID: d.ID}, nil); !errors.As(err, &se) || se.Code != snapdeck.Busy {
		t.Errorf("a job after Close: got %v, want refused as shutting down", err)
	}

	again, err := app.New(ctx, app.Config{DataDir: dir, Version: "test", SQLiteVersion: "3"})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close(ctx)
	if again.AdminCreated || again.AdminPassword != "" {
		t.Errorf("second start: got admin created %v, want none", again.AdminCreated)
	}
	if got, err := again.Databases.Find(ctx, d.ID); err != nil || got.Status != snapdeck.StatusRunning {
		t.Errorf("second start: database %s is %+v, %v; want it running", d.ID, got, err)
	}
}

// TestPointInTimeRestoreIsWired builds the console with a window on the
// enterprise plan: a new enterprise database is replicated, /metrics shows
// its replication lag, and after a restart the replication goes on on the
// same timeline.
func TestPointInTimeRestoreIsWired(t *testing.T) {
	ctx := context.Background()
	cfg := pitrConfig(t.TempDir())
	a, err := app.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	made, err := a.Databases.Create(ctx, "ann@x", database.CreateRequest{Name: "ledger", Plan: snapdeck.PlanEnterprise})
	d := made.Database
	if err != nil {
		t.Fatal(err)
	}
	made, err = a.Databases.Create(ctx, "ann@x", database.CreateRequest{Name: "scratch", Plan: snapdeck.PlanFree})
	free := made.Database
	if err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{"CREATE TABLE t(n)", "INSERT INTO t VALUES (1), (2), (3)"} {
		if _, err := a.Databases.Query(ctx, d.ID, sql, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.PITR.Sync(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	rec := httptest.NewRecorder()
	a.Web.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	if want := `snapdeck_pitr_replication_lag_seconds{database_id="` + d.ID + `"}`; !strings.Contains(body, want) {
		t.Errorf("/metrics: want %s in\n%s", want, body)
	}
	if strings.Contains(body, `snapdeck_pitr_replication_lag_seconds{database_id="`+free.ID+`"}`) {
		t.Errorf("/metrics shows a replication lag for a free database")
	}
	a.Close(ctx)

	a, err = app.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx)
	if !a.PITR.Running(d.ID) || a.PITR.Running(free.ID) {
		t.Fatalf("after a restart: enterprise replicated %v, free %v; want true, false", a.PITR.Running(d.ID), a.PITR.Running(free.ID))
	}
	if _, err := a.Databases.Query(ctx, d.ID, "DELETE FROM t", false); err != nil {
		t.Fatal(err)
	}
	_, j, err := a.Snapshots.RestoreToTime(ctx, "ann@x", d.ID, at)
	if err != nil {
		t.Fatal(err)
	}
	ctx30, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if j, err = a.Jobs.Wait(ctx30, j.ID); err != nil || j.Status != snapdeck.JobSucceeded {
		t.Fatalf("restore to a time after a restart: %+v, %v", j, err)
	}
	r, err := a.Databases.Query(ctx, d.ID, "SELECT count(*) FROM t", true)
	if err != nil || r.Rows[0][0] != "3" {
		t.Errorf("restored to before the restart: got %v, %v; want 3 rows", r, err)
	}
}

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

package database_test

import (
	"context"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// heard is an Observer that keeps what it is told, in order.
type heard chan string

func (h heard) DatabaseCreated(_ context.Context, d snapdeck.Database) {
	h <- "created " + d.Name + " " + string(d.Status)
}

func (h heard) SnapshotEnded(s snapdeck.Snapshot, _ time.Duration) {
	h <- "snapshot " + s.Reason + " " + string(s.Status)
}

// TestServicesTellTheirObserver checks the observer given to the
// services, the one way the scheduler, metrics and the webhook hear of
// them: a database created empty or from a snapshot, running, and a
// snapshot that ended. Neither constructor builds a service without its
// dependencies.
func TestServicesTellTheirObserver(t *testing.T) {
	ctx := context.Background()
	h := make(heard, 10)
	e := mustEnv(t, func(c *database.Config) { c.Observer = h })
	expect := func(want string) {
		t.Helper()
		select {
		case got := <-h:
			if got != want {
				t.Fatalf("observer: got %q, want %q", got, want)
			}
		default:
			t.Fatalf("observer: told nothing, want %q", want)
		}
	}
	d, err := e.create(ctx, "orders", snapdeck.PlanFree)
	if err != nil {
		t.Fatal(err)
	}
	expect("created orders running")
	s, j, err := e.snapshots.TakeSnapshot(ctx, d.ID, snapdeck.SnapshotOnDemand, "before the change", "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	e.waitJob(t, j.ID)
	expect("snapshot before the change completed")
	_, j, err = e.copy(ctx, d.ID, s.ID, "copy", snapdeck.PlanFree, "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	e.waitJob(t, j.ID)
	expect("created copy running")

	for name, cfg := range map[string]database.Config{
		"no store":          {Host: e.dbs.Host()},
		"no snapshot store": {Store: e.db, Host: e.dbs.Host()},
	} {
		if s, err := database.NewSnapshots(cfg); err == nil || s != nil {
			t.Errorf("%s: got Snapshots, want an error", name)
		}
	}
	if d, err := database.NewDatabases(database.Config{Store: e.db, Host: e.dbs.Host()}, e.snapshots); err == nil || d != nil {
		t.Errorf("no activity recorder: got Databases, want an error")
	}
	if d, err := database.NewDatabases(database.Config{Store: e.db, Host: e.dbs.Host(), Activity: activity.New(e.db, nil, nil)}, nil); err == nil || d != nil {
		t.Errorf("no Snapshots: got Databases, want an error")
	}
}

package database_test

import (
	"context"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/store"
)

// credentialsAtCreation is an Observer that reads, when told of a new
// database, what the store holds of its placement and credentials.
type credentialsAtCreation struct {
	db   *store.DB
	seen chan string
}

func (o *credentialsAtCreation) DatabaseCreated(ctx context.Context, d snapdeck.Database) {
	rec, _ := o.db.FindDatabase(ctx, d.ID)
	p := rec.Placement
	user, hash, _ := o.db.FindDatabaseCredentials(ctx, d.ID)
	o.seen <- d.Name + " " + p.Region + " " + user + " " + map[bool]string{true: "hashed", false: "no password"}[hash != ""]
}

func (o *credentialsAtCreation) SnapshotEnded(snapdeck.Snapshot, time.Duration) {}

// TestCreateRecordsPlacementAndCredentialsWithTheDatabase checks that a
// database, empty or a copy, has its placement and credentials from its
// first record on: by the time anything hears of it, they are stored
// (one insert, not writes after the file exists).
func TestCreateRecordsPlacementAndCredentialsWithTheDatabase(t *testing.T) {
	ctx := context.Background()
	obs := &credentialsAtCreation{seen: make(chan string, 4)}
	e := mustEnv(t, func(c *database.Config) { c.Observer = obs })
	obs.db = e.db
	where := snapdeck.Placement{CloudProvider: "gcp", Region: "europe-west1"}
	out, err := e.dbs.Create(ctx, "ann@example.com", database.CreateRequest{Name: "orders", Plan: snapdeck.PlanFree, Placement: where})
	if err != nil {
		t.Fatal(err)
	}
	d := out.Database
	want := "orders europe-west1 snapdeck-" + d.ID + " hashed"
	if got := <-obs.seen; got != want {
		t.Errorf("empty database when created: got %q, want %q", got, want)
	}
	if ok, err := e.dbs.CheckCredentials(ctx, d.ID, out.Credentials.Username, out.Credentials.Password); !ok || err != nil {
		t.Errorf("the credentials Create returned: got %v %v, want accepted", ok, err)
	}
	s, err := e.snapshots.Snapshot(ctx, d.ID, snapdeck.SnapshotOnDemand, "test", "system")
	if err != nil {
		t.Fatal(err)
	}
	copied, err := e.dbs.Create(ctx, "ann@example.com", database.CreateRequest{Name: "copy", Plan: snapdeck.PlanFree,
		Placement: where, FromDatabase: d.ID, FromSnapshot: s.ID})
	if err != nil {
		t.Fatal(err)
	}
	// The record, before the copy's job ends, holds them already.
	user, hash, err := e.db.FindDatabaseCredentials(ctx, copied.Database.ID)
	if err != nil || user == "" || hash == "" {
		t.Errorf("copy's record: got user %q, hash %v, err %v; want its credentials", user, hash != "", err)
	}
	e.waitJob(t, copied.Job.ID)
	want = "copy europe-west1 snapdeck-" + copied.Database.ID + " hashed"
	if got := <-obs.seen; got != want {
		t.Errorf("copy when created: got %q, want %q", got, want)
	}
}

// TestOverwriteChecksItsSource checks the overwrite's rules on where the
// data comes from, whichever door asks, and that each refusal is one
// "overwrite refused" line in the activity log, with nothing changed.
func TestOverwriteChecksItsSource(t *testing.T) {
	ctx := context.Background()
	e := mustEnv(t)
	target, _ := e.snapshotOfNew(t, "target", "CREATE TABLE t (n INTEGER)", "INSERT INTO t VALUES (1)")
	other, _ := e.snapshotOfNew(t, "other", "CREATE TABLE t (n INTEGER)")
	_, third := e.snapshotOfNew(t, "third", "CREATE TABLE t (n INTEGER)", "INSERT INTO t VALUES (7), (8)")
	for _, tc := range []struct {
		name         string
		src          database.OverwriteSource
		code         snapdeck.Code
		field, cause string
	}{
		{"no source", database.OverwriteSource{}, snapdeck.Invalid, "source_instance_id", ""},
		{"unreadable request", database.OverwriteSource{BadInput: snapdeck.FieldError("body", "not JSON")}, snapdeck.Invalid, "body", ""},
		{"unknown source database", database.OverwriteSource{Database: "ffffffff"}, snapdeck.NotFound, "", "db-not-found"},
		{"source id that cannot be one", database.OverwriteSource{Database: "../x"}, snapdeck.NotFound, "source_instance_id", "db-not-found"},
		{"snapshot of another database than named", database.OverwriteSource{Database: other.ID, Snapshot: third.ID},
			snapdeck.NotFound, "source_snapshot_id", "snapshot-not-found"},
	} {
		from, _ := e.db.FindEvents(ctx, snapdeck.EventFilter{DatabaseID: target.ID})
		_, _, err := e.snapshots.Overwrite(ctx, target.ID, tc.src, "ann@example.com")
		se, _ := snapdeck.AsError(err)
		if snapdeck.ErrorCode(err) != tc.code || se == nil || (tc.field != "" && se.Field != tc.field) || (tc.cause != "" && se.Reason != tc.cause) {
			t.Errorf("%s: got %v, want %s on %q (%s)", tc.name, err, tc.code, tc.field, tc.cause)
			continue
		}
		events, _ := e.db.FindEvents(ctx, snapdeck.EventFilter{DatabaseID: target.ID})
		if len(events) != len(from)+1 || events[0].Action != "overwrite" || events[0].Outcome != snapdeck.OutcomeRefused {
			t.Errorf("%s: activity %v, want one overwrite refused more", tc.name, events[:len(events)-len(from)])
		}
	}
	if got := e.count(t, target.ID); got != "1:1" {
		t.Errorf("target after refused overwrites: got %s, want 1:1", got)
	}
	// Named as the source itself, as aura-cli sends, a snapshot of any
	// database is taken.
	d, j, err := e.snapshots.Overwrite(ctx, target.ID, database.OverwriteSource{Database: target.ID, Snapshot: third.ID}, "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if d.ID != target.ID || d.Status != snapdeck.StatusRestoring {
		t.Errorf("overwrite returned %s %s, want the target, restoring", d.ID, d.Status)
	}
	e.waitJob(t, j.ID)
	if got := e.count(t, target.ID); got != "2:15" {
		t.Errorf("target after the overwrite: got %s, want 2:15", got)
	}
}

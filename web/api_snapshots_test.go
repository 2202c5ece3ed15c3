package web_test

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/store"
)

// auraTimestamp is RFC 3339 UTC to the second, as Aura writes it.
var auraTimestamp = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

// pollSnapshot polls a snapshot the way aura-cli's --await does, until it
// is neither Pending nor InProgress, and returns it.
func (a *apiClient) pollSnapshot(id, sid string) map[string]any {
	a.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := a.do("GET", "/v1/instances/"+id+"/snapshots/"+sid, "")
		if r.status != http.StatusOK {
			a.t.Fatalf("poll snapshot %s: got %d %s", sid, r.status, r.raw)
		}
		s := r.data()
		if st := s["status"]; st != "Pending" && st != "InProgress" {
			return s
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("snapshot %s still %v after 20s", sid, s["status"])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pollInstance polls an instance while its status is one of during, as
// Aura clients do, and returns the status it ends in. Any other status
// seen on the way fails the test.
func (a *apiClient) pollInstance(id string, during ...string) string {
	a.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := checkInstance(a.t, "poll "+id, a.do("GET", "/v1/instances/"+id, ""), http.StatusOK)
		st, _ := got["status"].(string)
		waiting := false
		for _, d := range during {
			waiting = waiting || st == d
		}
		if !waiting {
			return st
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("instance %s still %s after 20s", id, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// takeSnapshot takes a snapshot through the API and waits for it.
func (a *apiClient) takeSnapshot(id string) string {
	a.t.Helper()
	r := a.do("POST", "/v1/instances/"+id+"/snapshots", "")
	sid, _ := r.data()["snapshot_id"].(string)
	if r.status != http.StatusAccepted || sid == "" {
		a.t.Fatalf("take snapshot of %s: got %d %s, want 202 with snapshot_id", id, r.status, r.raw)
	}
	if s := a.pollSnapshot(id, sid); s["status"] != "Completed" {
		a.t.Fatalf("snapshot %s ended %v, want Completed", sid, s["status"])
	}
	return sid
}

// snapshotIDs returns the snapshot ids of a list reply.
func snapshotIDs(t *testing.T, r apiReply) []string {
	t.Helper()
	list, ok := r.body["data"].([]any)
	if r.status != http.StatusOK || !ok {
		t.Fatalf("list snapshots: got %d %s, want 200 with a data array", r.status, r.raw)
	}
	var ids []string
	for _, s := range list {
		ids = append(ids, s.(map[string]any)["snapshot_id"].(string))
	}
	return ids
}

// pendingSnapshot records a snapshot that never completes.
func (c *console) pendingSnapshot(dbID string) string {
	c.t.Helper()
	now := time.Now().UTC()
	rec := store.SnapshotRecord{Snapshot: snapdeck.Snapshot{ID: uuid.NewString(), DatabaseID: dbID, Type: snapdeck.SnapshotScheduled,
		Reason: "test", Status: snapdeck.SnapshotPending, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}}
	if err := c.store.CreateSnapshot(context.Background(), &rec); err != nil {
		c.t.Fatal(err)
	}
	return rec.ID
}

func TestAPISnapshots(t *testing.T) {
	c := mustConsole(t)
	ctx := context.Background()
	a := c.mustAPI("member@x")
	d := c.mustDatabase("ledger", snapdeck.PlanProfessional)

	// aura-cli sends no body; Terraform sends {}.
	first := a.takeSnapshot(d.ID)
	r := a.do("POST", "/v1/instances/"+d.ID+"/snapshots", "{}")
	second, _ := r.data()["snapshot_id"].(string)
	if r.status != http.StatusAccepted || len(second) != 36 || len(r.data()) != 1 {
		t.Fatalf("take with {}: got %d %s, want 202 with only a UUID snapshot_id", r.status, r.raw)
	}
	s := a.pollSnapshot(d.ID, second)
	want := map[string]any{"snapshot_id": second, "instance_id": d.ID, "profile": "AdHoc", "status": "Completed", "exportable": true}
	for k, v := range want {
		if s[k] != v {
			t.Errorf("snapshot %s: got %v, want %v", k, s[k], v)
		}
	}
	if ts, _ := s["timestamp"].(string); !auraTimestamp.MatchString(ts) {
		t.Errorf("timestamp %q is not RFC 3339 UTC to the second", ts)
	}

	// A Load snapshot shows snapdeck's own profile; a failed one is not
	// exportable.
	if _, err := c.snapshots.Snapshot(ctx, d.ID, snapdeck.SnapshotLoad, "Loaded x.dump", "system"); err != nil {
		t.Fatal(err)
	}
	pending := c.pendingSnapshot(d.ID)
	profiles := map[string]bool{}
	for _, v := range a.do("GET", "/v1/instances/"+d.ID+"/snapshots", "").body["data"].([]any) {
		m := v.(map[string]any)
		profiles[m["profile"].(string)] = true
		if m["snapshot_id"] == pending && (m["status"] != "Pending" || m["exportable"] != false) {
			t.Errorf("pending snapshot listed as %v", m)
		}
	}
	if !profiles["AdHoc"] || !profiles["Load"] || !profiles["Scheduled"] {
		t.Errorf("profiles listed: %v, want AdHoc, Load and Scheduled", profiles)
	}

	// Today by default, or the day asked for; another day is empty, not null.
	today := snapshotIDs(t, a.do("GET", "/v1/instances/"+d.ID+"/snapshots", ""))
	if len(today) != 4 || !strings.Contains(strings.Join(today, " "), first) {
		t.Errorf("today's snapshots: got %v, want 4 including %s", today, first)
	}
	day := time.Now().UTC().Format(time.DateOnly)
	if got := snapshotIDs(t, a.do("GET", "/v1/instances/"+d.ID+"/snapshots?date="+day, "")); len(got) != 4 {
		t.Errorf("date=%s: got %d snapshots, want 4", day, len(got))
	}
	r = a.do("GET", "/v1/instances/"+d.ID+"/snapshots?date=2001-01-01", "")
	if got := snapshotIDs(t, r); len(got) != 0 || !strings.Contains(r.raw, `"data":[]`) {
		t.Errorf("date=2001-01-01: got %s, want an empty array", r.raw)
	}

	// A viewer's key may read, not take: a key acts with its owner's role.
	v := c.mustAPI("member@x")
	member, err := c.store.FindUserByEmail(ctx, "member@x")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.store.SetUserRole(ctx, member.ID, snapdeck.RoleViewer); err != nil {
		t.Fatal(err)
	}
	if r := v.do("GET", "/v1/instances/"+d.ID+"/snapshots/"+first, ""); r.status != http.StatusOK {
		t.Errorf("viewer get snapshot: got %d", r.status)
	}
	for _, p := range []string{"/snapshots", "/snapshots/" + first + "/restore"} {
		if r := v.do("POST", "/v1/instances/"+d.ID+p, ""); r.status != http.StatusForbidden {
			t.Errorf("viewer POST %s: got %d, want 403", p, r.status)
		}
	}
	if r := v.do("GET", "/v1/instances/"+d.ID+"/snapshots/"+first+"/export", ""); r.status != http.StatusForbidden {
		t.Errorf("viewer export: got %d, want 403", r.status)
	}
	// The key's name is the actor of what it did.
	events, err := c.store.FindEvents(ctx, snapdeck.EventFilter{DatabaseID: d.ID})
	if err != nil {
		t.Fatal(err)
	}
	taken := 0
	for _, e := range events {
		if e.Action == "snapshot.take" && e.Actor == "api key test key" && e.Outcome == snapdeck.OutcomeOK {
			taken++
		}
	}
	if taken != 2 {
		t.Errorf("snapshot.take events by the key: got %d, want 2", taken)
	}
}

func TestAPISnapshotErrors(t *testing.T) {
	c := mustConsole(t)
	ctx := context.Background()
	a := c.mustAPI("member@x")
	d := c.mustDatabase("ledger", snapdeck.PlanProfessional)
	other := c.mustDatabase("other", snapdeck.PlanProfessional)
	snap, err := c.snapshots.Snapshot(ctx, d.ID, snapdeck.SnapshotOnDemand, "test", "system")
	if err != nil {
		t.Fatal(err)
	}
	otherSnap, err := c.snapshots.Snapshot(ctx, other.ID, snapdeck.SnapshotOnDemand, "test", "system")
	if err != nil {
		t.Fatal(err)
	}
	pending := c.pendingSnapshot(d.ID)
	busy := c.mustDatabase("busy", snapdeck.PlanProfessional)
	busySnap, err := c.snapshots.Snapshot(ctx, busy.ID, snapdeck.SnapshotOnDemand, "test", "system")
	if err != nil {
		t.Fatal(err)
	}
	loading := snapdeck.StatusLoading
	if _, err := c.store.UpdateDatabase(ctx, busy.ID, store.DatabaseUpdate{Status: &loading}); err != nil {
		t.Fatal(err)
	}
	base, missing := "/v1/instances/"+d.ID, uuid.NewString()
	cases := []struct {
		method, path, body string
		status             int
		reason, field      string
	}{
		{"GET", "/v1/instances/deadbeef/snapshots", "", 404, "db-not-found", ""},
		{"GET", "/v1/instances/deadbeef/snapshots?date=nope", "", 400, "invalid-request", "date"},
		{"GET", "/v1/instances/deadbeef/snapshots/" + snap.ID, "", 404, "db-not-found", ""},
		{"POST", "/v1/instances/deadbeef/snapshots", "", 404, "db-not-found", ""},
		{"POST", "/v1/instances/deadbeef/snapshots/" + snap.ID + "/restore", "", 404, "db-not-found", ""},
		{"GET", "/v1/instances/deadbeef/snapshots/" + snap.ID + "/export", "", 404, "db-not-found", ""},
		{"POST", "/v1/instances/deadbeef/overwrite", `{"source_snapshot_id":"` + snap.ID + `"}`, 404, "db-not-found", ""},
		{"GET", base + "/snapshots?date=2026-1-2", "", 400, "invalid-request", "date"},
		{"GET", base + "/snapshots?date=2026-02-30", "", 400, "invalid-request", "date"},
		{"GET", base + "/snapshots?date=yesterday", "", 400, "invalid-request", "date"},
		{"GET", base + "/snapshots?date=2026-01-02T00:00:00Z", "", 400, "invalid-request", "date"},
		{"GET", base + "/snapshots/" + missing, "", 404, "snapshot-not-found", ""},
		{"GET", base + "/snapshots/" + otherSnap.ID, "", 404, "snapshot-not-found", ""},
		{"POST", base + "/snapshots/" + missing + "/restore", "", 404, "snapshot-not-found", ""},
		{"POST", base + "/snapshots/" + otherSnap.ID + "/restore", "", 404, "snapshot-not-found", ""},
		{"GET", base + "/snapshots/" + missing + "/export", "", 404, "snapshot-not-found", ""},
		{"POST", base + "/snapshots/" + pending + "/restore", "", 400, "snapshot-not-exportable", ""},
		{"GET", base + "/snapshots/" + pending + "/export", "", 400, "snapshot-not-exportable", ""},
		{"POST", "/v1/instances/" + busy.ID + "/snapshots", "", 409, "ongoing-database-operation", ""},
		{"POST", "/v1/instances/" + busy.ID + "/snapshots/" + busySnap.ID + "/restore", "", 409, "ongoing-database-operation", ""},
		{"POST", "/v1/instances/" + busy.ID + "/overwrite", `{"source_snapshot_id":"` + snap.ID + `"}`, 409, "ongoing-database-operation", ""},
		{"POST", "/v1/instances/" + busy.ID + "/overwrite", `{"source_instance_id":"` + d.ID + `"}`, 409, "ongoing-database-operation", ""},
		{"POST", base + "/overwrite", `{"source_instance_id":"` + busy.ID + `"}`, 409, "ongoing-database-operation", ""},
		{"POST", base + "/overwrite", "", 400, "invalid-request", ""},
		{"POST", base + "/overwrite", `{}`, 400, "invalid-request", "source_instance_id"},
		{"POST", base + "/overwrite", `{"source_instance_id":5}`, 400, "invalid-request", "source_instance_id"},
		{"POST", base + "/overwrite", `{"source_instance_id":"deadbeef"}`, 404, "db-not-found", ""},
		{"POST", base + "/overwrite", `{"source_instance_id":"nope"}`, 404, "db-not-found", "source_instance_id"},
		{"POST", base + "/overwrite", `{"source_snapshot_id":"` + missing + `"}`, 404, "snapshot-not-found", ""},
		{"POST", base + "/overwrite", `{"source_instance_id":"` + other.ID + `","source_snapshot_id":"` + snap.ID + `"}`, 404, "snapshot-not-found", "source_snapshot_id"},
		{"POST", base + "/overwrite", `{"source_instance_id":"` + d.ID + `","source_snapshot_id":"` + pending + `"}`, 400, "snapshot-not-exportable", "source_snapshot_id"},
		{"POST", "/v1/instances", `{"name":"x","type":"free-db","source_snapshot_id":"` + snap.ID + `"}`, 400, "invalid-request", "source_instance_id"},
		{"POST", "/v1/instances", `{"name":"x","type":"free-db","source_instance_id":"` + d.ID + `"}`, 400, "invalid-request", "source_snapshot_id"},
		{"POST", "/v1/instances", `{"name":"x","type":"free-db","source_instance_id":"deadbeef","source_snapshot_id":"` + snap.ID + `"}`, 404, "db-not-found", ""},
		{"POST", "/v1/instances", `{"name":"x","type":"free-db","source_instance_id":"` + d.ID + `","source_snapshot_id":"` + missing + `"}`, 404, "snapshot-not-found", ""},
		{"POST", "/v1/instances", `{"name":"x","type":"free-db","source_instance_id":"` + other.ID + `","source_snapshot_id":"` + snap.ID + `"}`, 404, "snapshot-not-found", ""},
		{"POST", "/v1/instances", `{"name":"x","type":"free-db","source_instance_id":"` + d.ID + `","source_snapshot_id":"` + pending + `"}`, 400, "snapshot-not-exportable", "source_snapshot_id"},
		{"POST", "/v1/instances", `{"name":"","type":"free-db","source_instance_id":"` + d.ID + `","source_snapshot_id":"` + snap.ID + `"}`, 400, "invalid-request", "name"},
		{"PUT", base + "/snapshots", "", 405, "method-not-allowed", ""},
		{"GET", base + "/overwrite", "", 405, "method-not-allowed", ""},
	}
	for _, tc := range cases {
		r := a.do(tc.method, tc.path, tc.body)
		e := r.firstError()
		if r.status != tc.status || e["reason"] != tc.reason || e["field"] != nilIfEmpty(tc.field) {
			t.Errorf("%s %s %.60s: got %d %s, want %d reason %s field %q", tc.method, tc.path, tc.body, r.status, r.raw, tc.status, tc.reason, tc.field)
		}
	}
	r := a.do("POST", base+"/overwrite", `{"source_snapshot_id":"`+pending+`"}`)
	if msg, _ := r.firstError()["message"].(string); !strings.HasPrefix(msg, "Source snapshot "+pending+" is not exportable") {
		t.Errorf("overwrite from a pending snapshot: message %q, want Aura's", msg)
	}
	// Nothing changed: no database was made, none left busy, no snapshot taken.
	if dbs, _ := c.databases.List(ctx); len(dbs) != 3 {
		t.Errorf("databases after refused calls: got %d, want 3", len(dbs))
	}
	for _, id := range []string{d.ID, other.ID} {
		if got, _ := c.databases.Find(ctx, id); got.Status != snapdeck.StatusRunning {
			t.Errorf("database %s after refused calls: %s, want running", id, got.Status)
		}
	}
	if n, _ := c.store.CountSnapshots(ctx, snapdeck.SnapshotFilter{}); n != 4 {
		t.Errorf("snapshots after refused calls: got %d, want 4", n)
	}
	// Refusals are in the activity log under the key's name.
	events, _ := c.store.FindEvents(ctx, snapdeck.EventFilter{DatabaseID: busy.ID})
	refused := map[string]bool{}
	for _, e := range events {
		if e.Actor == "api key test key" && e.Outcome == snapdeck.OutcomeRefused {
			refused[e.Action] = true
		}
	}
	for _, act := range []string{"snapshot.take", "restore", "overwrite"} {
		if !refused[act] {
			t.Errorf("no refused %s by the key in the activity log (have %v)", act, refused)
		}
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// TestAPIOverwritingStatus checks the instance shows Aura's "overwriting"
// while an overwrite job runs, and "restoring" while a restore does.
func TestAPIOverwritingStatus(t *testing.T) {
	c := mustConsole(t)
	ctx := context.Background()
	a := c.mustAPI("member@x")
	for kind, want := range map[snapdeck.JobKind]string{snapdeck.JobOverwrite: "overwriting", snapdeck.JobRestore: "restoring"} {
		d := c.mustDatabase(string(kind), snapdeck.PlanProfessional)
		restoring := snapdeck.StatusRestoring
		if _, err := c.store.UpdateDatabase(ctx, d.ID, store.DatabaseUpdate{Status: &restoring}); err != nil {
			t.Fatal(err)
		}
		j := snapdeck.Job{ID: uuid.NewString(), Kind: kind, DatabaseID: d.ID, Status: snapdeck.JobRunning, CreatedAt: time.Now()}
		if err := c.store.CreateJob(ctx, &j); err != nil {
			t.Fatal(err)
		}
		if got := checkInstance(t, string(kind), a.do("GET", "/v1/instances/"+d.ID, ""), http.StatusOK); got["status"] != want {
			t.Errorf("%s job: status %v, want %s", kind, got["status"], want)
		}
		r := a.do("POST", "/v1/instances/"+d.ID+"/overwrite", `{"source_instance_id":"`+d.ID+`"}`)
		if r.status != http.StatusConflict || !strings.Contains(r.firstError()["message"].(string), "undergoing an operation") {
			t.Errorf("%s job: overwrite got %d %s, want 409", kind, r.status, r.raw)
		}
	}
}

// TestAPIListShowsOverwriting checks GET /v1/instances tells overwriting
// from restoring for every database at once, as GET of each one does: only
// an open overwrite job of the database itself makes it "overwriting".
func TestAPIListShowsOverwriting(t *testing.T) {
	c := mustConsole(t)
	ctx := context.Background()
	a := c.mustAPI("member@x")
	restoring := snapdeck.StatusRestoring
	open := func(kind snapdeck.JobKind, dbID, targetID string) {
		j := snapdeck.Job{ID: uuid.NewString(), Kind: kind, DatabaseID: dbID, TargetID: targetID, Status: snapdeck.JobRunning, CreatedAt: time.Now()}
		if err := c.store.CreateJob(ctx, &j); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{}
	for _, tc := range []struct {
		name string
		kind snapdeck.JobKind // of the open job on the database, "" for none
		want string
	}{
		{"overwritten", snapdeck.JobOverwrite, "overwriting"},
		{"restored", snapdeck.JobRestore, "restoring"},
		{"target", "", "restoring"},
		{"idle", "", "running"},
	} {
		d := c.mustDatabase(tc.name, snapdeck.PlanProfessional)
		if tc.want != "running" {
			if _, err := c.store.UpdateDatabase(ctx, d.ID, store.DatabaseUpdate{Status: &restoring}); err != nil {
				t.Fatal(err)
			}
		}
		if tc.kind != "" {
			open(tc.kind, d.ID, "")
		}
		if tc.name == "target" {
			// Named as another job's target, not as the database it overwrites.
			open(snapdeck.JobOverwrite, snapdeck.NewDatabaseID(), d.ID)
		}
		want[d.ID] = tc.want
	}
	r := a.do("GET", "/v1/instances", "")
	list, _ := r.body["data"].([]any)
	if r.status != http.StatusOK || len(list) != len(want) {
		t.Fatalf("list: got %d %s, want %d instances", r.status, r.raw, len(want))
	}
	for _, v := range list {
		inst, _ := v.(map[string]any)
		id, _ := inst["id"].(string)
		if inst["status"] != want[id] {
			t.Errorf("list: %s is %v, want %s", inst["name"], inst["status"], want[id])
		}
		if got := a.do("GET", "/v1/instances/"+id, "").data()["status"]; got != want[id] {
			t.Errorf("get: %s is %v, want %s", inst["name"], got, want[id])
		}
	}
}

// TestAPISnapshotEndToEnd drives the API only, as a client that knows just
// the Aura API v1 documentation does: create, snapshot, list, restore,
// overwrite from a snapshot and from another instance, create from a
// snapshot, export, delete. Rows are written through the services.
func TestAPISnapshotEndToEnd(t *testing.T) {
	c := mustConsole(t)
	ctx := context.Background()
	a := c.mustAPI("member@x")
	tid := a.do("GET", "/v1/tenants", "").body["data"].([]any)[0].(map[string]any)["id"].(string)
	create := func(name string) string {
		inst := checkInstance(t, "create "+name, a.do("POST", "/v1/instances",
			`{"cloud_provider":"gcp","memory":"8GB","name":"`+name+`","region":"europe-west1","tenant_id":"`+tid+`","type":"professional-db","vector_optimized":false,"version":"5"}`),
			http.StatusAccepted)
		id := inst["id"].(string)
		if st := a.pollInstance(id, "creating"); st != "running" {
			t.Fatalf("create %s: ended %s, want running", name, st)
		}
		return id
	}
	// rows is count:sum of table t, the data the steps below move around.
	rows := func(id string) string { return c.rows(t, id) }

	id := create("orders")
	c.exec(t, id, "CREATE TABLE t (n INTEGER)")
	c.exec(t, id, "INSERT INTO t VALUES (1), (2)")
	sid := a.takeSnapshot(id)
	if today := snapshotIDs(t, a.do("GET", "/v1/instances/"+id+"/snapshots", "")); !strings.Contains(strings.Join(today, " "), sid) {
		t.Fatalf("today's snapshots %v do not include %s", today, sid)
	}

	// Restore: 202 restoring, then running with the snapshot's data.
	c.exec(t, id, "DELETE FROM t")
	r := checkInstance(t, "restore", a.do("POST", "/v1/instances/"+id+"/snapshots/"+sid+"/restore", ""), http.StatusAccepted)
	if r["status"] != "restoring" || r["id"] != id {
		t.Fatalf("restore: got %v, want the instance, restoring", r)
	}
	if st := a.pollInstance(id, "restoring"); st != "running" {
		t.Fatalf("after restore: %s, want running", st)
	}
	if got := rows(id); got != "2:3" {
		t.Fatalf("after restore: rows %s, want 2:3", got)
	}

	// Overwrite from its own snapshot, as aura-cli sends it; --await polls
	// until the status is no longer overwriting.
	c.exec(t, id, "INSERT INTO t VALUES (100)")
	r = checkInstance(t, "overwrite", a.do("POST", "/v1/instances/"+id+"/overwrite",
		`{"source_instance_id":"`+id+`","source_snapshot_id":"`+sid+`"}`), http.StatusAccepted)
	if r["status"] != "overwriting" {
		t.Fatalf("overwrite: status %v, want overwriting", r["status"])
	}
	if st := a.pollInstance(id, "overwriting"); st != "running" {
		t.Fatalf("after overwrite: %s, want running", st)
	}
	if got := rows(id); got != "2:3" {
		t.Fatalf("after overwrite from snapshot: rows %s, want 2:3", got)
	}

	// Overwrite from another instance's current data.
	other := create("other")
	c.exec(t, other, "CREATE TABLE t (n INTEGER)")
	c.exec(t, other, "INSERT INTO t VALUES (10), (20), (30)")
	checkInstance(t, "overwrite from instance", a.do("POST", "/v1/instances/"+id+"/overwrite", `{"source_instance_id":"`+other+`"}`), http.StatusAccepted)
	if st := a.pollInstance(id, "overwriting"); st != "running" {
		t.Fatalf("after overwrite from instance: %s, want running", st)
	}
	if got := rows(id); got != "3:60" {
		t.Fatalf("after overwrite from instance: rows %s, want 3:60", got)
	}

	// Overwrite another instance from this one's snapshot, named alone.
	checkInstance(t, "overwrite from snapshot alone", a.do("POST", "/v1/instances/"+other+"/overwrite", `{"source_snapshot_id":"`+sid+`"}`), http.StatusAccepted)
	if st := a.pollInstance(other, "overwriting"); st != "running" {
		t.Fatalf("after overwrite from a snapshot alone: %s, want running", st)
	}
	if got := rows(other); got != "2:3" {
		t.Fatalf("after overwrite from a snapshot alone: rows %s, want 2:3", got)
	}

	// Create from the snapshot, as the Terraform provider does: creating,
	// then running with the snapshot's data and credentials of its own.
	inst := checkInstance(t, "create from snapshot", a.do("POST", "/v1/instances",
		`{"name":"copy","type":"professional-db","tenant_id":"`+tid+`","source_instance_id":"`+id+`","source_snapshot_id":"`+sid+`"}`), http.StatusAccepted)
	copyID := inst["id"].(string)
	if inst["status"] != "creating" || inst["username"] == nil || inst["password"] == nil {
		t.Fatalf("create from snapshot: got %v, want creating with credentials", inst)
	}
	if st := a.pollInstance(copyID, "creating"); st != "running" {
		t.Fatalf("create from snapshot: ended %s, want running", st)
	}
	if got := rows(copyID); got != "2:3" {
		t.Fatalf("created from snapshot: rows %s, want 2:3", got)
	}
	if ok, err := c.databases.CheckCredentials(ctx, copyID, inst["username"].(string), inst["password"].(string)); !ok || err != nil {
		t.Errorf("credentials of the copy do not open it: %v", err)
	}

	// Export (snapdeck's extension): the .dump, resumable.
	exportURL := c.srv.URL + "/v1/instances/" + id + "/snapshots/" + sid + "/export"
	whole := a.download(exportURL, "", http.StatusOK)
	if !strings.HasPrefix(whole, "\x28\xb5\x2f\xfd") {
		t.Errorf("export is not zstd: starts %q", whole[:min(4, len(whole))])
	}
	if tail := a.download(exportURL, "bytes=100-", http.StatusPartialContent); tail != whole[100:] {
		t.Errorf("ranged export: got %d bytes, want the last %d", len(tail), len(whole)-100)
	}

	// Delete, then 404 for the instance and its snapshots.
	for _, del := range []string{id, other, copyID} {
		checkInstance(t, "delete", a.do("DELETE", "/v1/instances/"+del, ""), http.StatusAccepted)
		if r := a.do("GET", "/v1/instances/"+del, ""); r.status != http.StatusNotFound {
			t.Fatalf("after delete: got %d, want 404", r.status)
		}
	}
	if r := a.do("GET", "/v1/instances/"+id+"/snapshots/"+sid, ""); r.status != http.StatusNotFound || r.firstError()["reason"] != "db-not-found" {
		t.Errorf("snapshot of a deleted instance: got %d %s, want 404 db-not-found", r.status, r.raw)
	}

	// Every step is in the activity log under the key's name.
	acted := map[string]bool{}
	for _, db := range []string{id, other, copyID} {
		events, err := c.store.FindEvents(ctx, snapdeck.EventFilter{DatabaseID: db})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if e.Actor == "api key test key" && e.Outcome == snapdeck.OutcomeOK {
				acted[e.Action] = true
			}
		}
	}
	for _, act := range []string{"database.create", "snapshot.take", "restore", "overwrite", "database.create-from-snapshot", "snapshot.export", "database.delete"} {
		if !acted[act] {
			t.Errorf("no %s by the key in the activity log (have %v)", act, acted)
		}
	}
}

// download fetches a file with the client's token and checks the
// response carries a request id, the .dump type and its file name.
func (a *apiClient) download(url, rng string, want int) string {
	a.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+a.token)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		a.t.Fatalf("GET %s (Range %q): got %d %s, want %d", url, rng, res.StatusCode, b, want)
	}
	if res.Header.Get("X-Request-Id") == "" || res.Header.Get("Content-Type") != "application/zstd" {
		a.t.Errorf("export headers: %v", res.Header)
	}
	if cd := res.Header.Get("Content-Disposition"); !strings.Contains(cd, `filename="orders-`) || !strings.HasSuffix(cd, `Z.dump"`) {
		a.t.Errorf("Content-Disposition %q, want orders-<UTC time>.dump", cd)
	}
	return string(b)
}

// TestAPIOverwriteFromADeletedDatabase checks that the snapshots of a
// deleted database bring nothing back: an overwrite or a new instance from
// one is 404 and changes nothing.
func TestAPIOverwriteFromADeletedDatabase(t *testing.T) {
	ctx := context.Background()
	c := mustConsole(t)
	a := c.mustAPI("admin@x")
	gone := c.mustDatabase("gone", snapdeck.PlanProfessional)
	c.exec(t, gone.ID, "CREATE TABLE secret (n INTEGER)")
	snap, err := c.snapshots.Snapshot(ctx, gone.ID, snapdeck.SnapshotOnDemand, "test", "system")
	if err != nil {
		t.Fatal(err)
	}
	target := c.mustDatabase("target", snapdeck.PlanProfessional)
	if _, err := c.databases.Delete(ctx, "system", gone.ID, &gone.Name); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{
		`{"source_snapshot_id":"` + snap.ID + `"}`,
		`{"source_instance_id":"` + target.ID + `","source_snapshot_id":"` + snap.ID + `"}`,
	} {
		r := a.do("POST", "/v1/instances/"+target.ID+"/overwrite", body)
		if r.status != http.StatusNotFound || r.firstError()["reason"] != "snapshot-not-found" {
			t.Errorf("overwrite %s: got %d %s, want 404 snapshot-not-found", body, r.status, r.raw)
		}
	}
	if got, _ := c.databases.Find(ctx, target.ID); got.Status != snapdeck.StatusRunning {
		t.Errorf("target: got %s, want running", got.Status)
	}
	if _, err := c.databases.Query(ctx, target.ID, "SELECT * FROM secret", true); err == nil {
		t.Errorf("target holds the deleted database's table")
	}
}

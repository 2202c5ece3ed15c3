package web_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/store"
)

func TestAPITenants(t *testing.T) {
	c := mustConsole(t)
	a := c.mustAPI("member@x")
	r := a.do("GET", "/v1/tenants", "")
	list, _ := r.body["data"].([]any)
	if r.status != 200 || len(list) != 1 {
		t.Fatalf("list: got %d %s, want one tenant", r.status, r.raw)
	}
	tid, _ := list[0].(map[string]any)["id"].(string)
	if len(tid) != 36 {
		t.Fatalf("tenant id %q is not a UUID", tid)
	}
	r = a.do("GET", "/v1/tenants/"+tid, "")
	if r.status != 200 || r.data()["id"] != tid || len(r.data()["instance_configurations"].([]any)) != 3 {
		t.Fatalf("get: got %d %s", r.status, r.raw)
	}
	r = a.do("GET", "/v1/tenants/"+tid+"/metrics-integration", "")
	if ep, _ := r.data()["endpoint"].(string); r.status != 200 || !strings.HasSuffix(ep, "/metrics") {
		t.Fatalf("metrics integration: got %d %s", r.status, r.raw)
	}
	for _, p := range []string{"/v1/tenants/00000000-0000-0000-0000-000000000000", "/v1/tenants/nope/metrics-integration", "/v1/instances?tenantId=nope"} {
		if r := a.do("GET", p, ""); r.status != 404 || r.firstError()["reason"] != "tenant-not-found" {
			t.Errorf("GET %s: got %d %s, want 404 tenant-not-found", p, r.status, r.raw)
		}
	}
	// The tenant is the same after a restart: its id is kept in the store.
	if again := c.mustAPI("admin@x").do("GET", "/v1/tenants/"+tid, ""); again.status != 200 {
		t.Fatalf("tenant through another key: got %d", again.status)
	}
}

// instanceFields are the instance object's fields, which are never empty.
var instanceFields = []string{"id", "name", "status", "tenant_id", "cloud_provider", "region", "type", "memory", "storage", "connection_url", "created_at"}

func checkInstance(t *testing.T, what string, r apiReply, wantStatus int) map[string]any {
	t.Helper()
	if r.status != wantStatus {
		t.Fatalf("%s: got %d %s, want %d", what, r.status, r.raw, wantStatus)
	}
	d := r.data()
	for _, f := range instanceFields {
		if s, _ := d[f].(string); s == "" {
			t.Errorf("%s: field %s is %v, want a non-empty string", what, f, d[f])
		}
	}
	return d
}

func TestAPIInstances(t *testing.T) {
	c := mustConsole(t)
	ctx := context.Background()
	a := c.mustAPI("member@x")

	// Create, as aura-cli sends it for a professional database.
	r := a.do("POST", "/v1/instances", `{"cloud_provider":"gcp","graph_analytics_plugin":false,"memory":"8GB","name":"orders","region":"europe-west1","type":"professional-db","vector_optimized":false,"version":"5"}`)
	inst := checkInstance(t, "create", r, http.StatusAccepted)
	id := inst["id"].(string)
	want := map[string]string{"name": "orders", "type": "professional-db", "cloud_provider": "gcp", "region": "europe-west1", "memory": "8GB", "storage": "2GB"}
	for k, v := range want {
		if inst[k] != v {
			t.Errorf("create: %s is %v, want %s", k, inst[k], v)
		}
	}
	user, _ := inst["username"].(string)
	pass, _ := inst["password"].(string)
	if ok, err := c.databases.CheckCredentials(ctx, id, user, pass); !ok || err != nil {
		t.Fatalf("create reply's credentials %q/%q do not open the database: %v", user, pass, err)
	}
	if !strings.HasSuffix(inst["connection_url"].(string), "/db/"+id+"/") {
		t.Errorf("connection_url %v is not the database's data-plane URL", inst["connection_url"])
	}

	// Free with defaults: the placement falls back, never empty.
	free := checkInstance(t, "create free", a.do("POST", "/v1/instances", `{"name":"f","type":"free-db"}`), http.StatusAccepted)
	if free["cloud_provider"] != "local" || free["memory"] != "1GB" {
		t.Errorf("free defaults: got %v/%v", free["cloud_provider"], free["memory"])
	}

	got := checkInstance(t, "get", a.do("GET", "/v1/instances/"+id, ""), http.StatusOK)
	if got["username"] != nil || got["password"] != nil || got["status"] != "running" || got["memory"] != "8GB" {
		t.Errorf("get: got %v; want running, memory echoed, no credentials", got)
	}
	tid := got["tenant_id"].(string)
	r = a.do("GET", "/v1/instances?tenantId="+tid, "")
	if list, _ := r.body["data"].([]any); r.status != 200 || len(list) != 2 {
		t.Errorf("list: got %d %s, want 2 instances", r.status, r.raw)
	}

	upd := checkInstance(t, "patch", a.do("PATCH", "/v1/instances/"+id, `{"name":"orders-v2","memory":"16GB"}`), http.StatusAccepted)
	if upd["name"] != "orders-v2" || upd["memory"] != "16GB" {
		t.Errorf("patch: got name %v memory %v", upd["name"], upd["memory"])
	}

	// Pause and resume accept an empty body (aura-cli) and {} (Terraform).
	if p := checkInstance(t, "pause", a.do("POST", "/v1/instances/"+id+"/pause", ""), http.StatusAccepted); p["status"] != "paused" {
		t.Errorf("pause: status %v, want paused", p["status"])
	}
	if _, err := c.databases.Query(ctx, id, "SELECT 1", true); snapdeck.ErrorCode(err) != snapdeck.Busy {
		t.Errorf("query on a paused database: got %v, want Busy", err)
	}
	if r := a.do("POST", "/v1/instances/"+id+"/pause", "{}"); r.status != 409 || r.firstError()["reason"] != "ongoing-database-operation" {
		t.Errorf("pause twice: got %d %s, want 409", r.status, r.raw)
	}
	if p := checkInstance(t, "resume", a.do("POST", "/v1/instances/"+id+"/resume", "{}"), http.StatusAccepted); p["status"] != "running" {
		t.Errorf("resume: status %v, want running", p["status"])
	}

	del := checkInstance(t, "delete", a.do("DELETE", "/v1/instances/"+id, ""), http.StatusAccepted)
	if del["status"] != "destroying" || del["id"] != id {
		t.Errorf("delete: got %v, want the instance, destroying", del)
	}
	if r := a.do("GET", "/v1/instances/"+id, ""); r.status != 404 || r.firstError()["reason"] != "db-not-found" {
		t.Errorf("get after delete: got %d %s, want 404 db-not-found", r.status, r.raw)
	}

	// Every state-changing call is in the activity log under the key's name.
	events, err := c.store.FindEvents(ctx, snapdeck.EventFilter{DatabaseID: id})
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]bool{}
	for _, e := range events {
		if e.Actor != "api key test key" {
			t.Errorf("event %s by %q, want api key test key", e.Action, e.Actor)
		}
		actions[e.Action] = true
	}
	for _, act := range []string{"database.create", "database.update", "database.pause", "database.resume", "database.delete"} {
		if !actions[act] {
			t.Errorf("no %s event in the activity log (have %v)", act, actions)
		}
	}
}

// TestAPIActivityLogLines checks the whole line each kind of API call
// leaves in the activity log: the key's name, when, the database, the
// snapshot, the outcome and what happened or why it was refused.
func TestAPIActivityLogLines(t *testing.T) {
	c := mustConsole(t)
	ctx := context.Background()
	a := c.mustAPI("member@x")
	id := checkInstance(t, "create", a.do("POST", "/v1/instances", `{"name":"orders","type":"professional-db"}`), http.StatusAccepted)["id"].(string)
	message := func(r apiReply) string { m, _ := r.firstError()["message"].(string); return m }
	badType := message(a.do("POST", "/v1/instances", `{"name":"x","type":"huge-db"}`))
	checkInstance(t, "pause", a.do("POST", "/v1/instances/"+id+"/pause", ""), http.StatusAccepted)
	pausedAgain := message(a.do("POST", "/v1/instances/"+id+"/pause", ""))
	missing := "00000000-0000-0000-0000-000000000000"
	noSnapshot := message(a.do("POST", "/v1/instances/"+id+"/snapshots/"+missing+"/restore", ""))
	want := []snapdeck.Event{
		{Action: "database.create", DatabaseID: id, Outcome: snapdeck.OutcomeOK, Detail: "Created orders (professional-db)"},
		{Action: "database.create", Outcome: snapdeck.OutcomeRefused, Detail: badType},
		{Action: "database.pause", DatabaseID: id, Outcome: snapdeck.OutcomeOK},
		{Action: "database.pause", DatabaseID: id, Outcome: snapdeck.OutcomeRefused, Detail: pausedAgain},
		{Action: "restore", DatabaseID: id, SnapshotID: missing, Outcome: snapdeck.OutcomeRefused, Detail: noSnapshot},
	}
	events, err := c.store.FindEvents(ctx, snapdeck.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var got []snapdeck.Event
	for _, e := range slices.Backward(events) {
		if e.Actor != "api key test key" {
			continue
		}
		if e.At.IsZero() {
			t.Errorf("event %s has no time", e.Action)
		}
		got = append(got, snapdeck.Event{Action: e.Action, DatabaseID: e.DatabaseID, SnapshotID: e.SnapshotID, Outcome: e.Outcome, Detail: e.Detail})
	}
	if len(got) != len(want) {
		t.Fatalf("events by the key: got %d %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestAPIInstanceErrors(t *testing.T) {
	c := mustConsole(t)
	ctx := context.Background()
	a := c.mustAPI("member@x")
	busy := c.mustDatabase("busy", snapdeck.PlanFree)
	restoring := snapdeck.StatusRestoring
	if _, err := c.store.UpdateDatabase(ctx, busy.ID, store.DatabaseUpdate{Status: &restoring}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		method, path, body string
		status             int
		reason, field      string
	}{
		{"GET", "/v1/instances/deadbeef", "", 404, "db-not-found", ""},
		{"GET", "/v1/instances/not-an-id", "", 404, "db-not-found", ""},
		{"PATCH", "/v1/instances/deadbeef", `{"name":"x"}`, 404, "db-not-found", ""},
		{"DELETE", "/v1/instances/deadbeef", "", 404, "db-not-found", ""},
		{"POST", "/v1/instances/deadbeef/pause", "", 404, "db-not-found", ""},
		{"POST", "/v1/instances/deadbeef/resume", "", 404, "db-not-found", ""},
		{"PATCH", "/v1/instances/" + busy.ID, `{"name":"x"}`, 409, "ongoing-database-operation", ""},
		{"DELETE", "/v1/instances/" + busy.ID, "", 409, "ongoing-database-operation", ""},
		{"POST", "/v1/instances/" + busy.ID + "/pause", "", 409, "ongoing-database-operation", ""},
		{"POST", "/v1/instances/" + busy.ID + "/resume", "", 409, "ongoing-database-operation", ""},
		{"POST", "/v1/instances", "", 400, "invalid-request", ""},
		{"POST", "/v1/instances", `{"name":`, 400, "invalid-request", ""},
		{"POST", "/v1/instances", `{"name":"x"}`, 400, "invalid-request", "type"},
		{"POST", "/v1/instances", `{"name":"x","type":"business-critical"}`, 400, "invalid-request", "type"},
		{"POST", "/v1/instances", `{"name":"","type":"free-db"}`, 400, "invalid-request", "name"},
		{"POST", "/v1/instances", `{"name":"` + strings.Repeat("n", 65) + `","type":"free-db"}`, 400, "invalid-request", "name"},
		{"POST", "/v1/instances", `{"name":5,"type":"free-db"}`, 400, "invalid-request", "name"},
		{"POST", "/v1/instances", `{"name":"x","type":"free-db","memory":"` + strings.Repeat("9", 65) + `"}`, 400, "invalid-request", "memory"},
		{"POST", "/v1/instances", `{"name":"x","type":"free-db","tenant_id":"t-1"}`, 404, "tenant-not-found", ""},
		{"POST", "/v1/instances", `{"name":"x","type":"free-db","source_instance_id":"` + busy.ID + `","source_snapshot_id":"s"}`, 404, "snapshot-not-found", ""},
		{"PATCH", "/v1/instances/" + busy.ID, `{"name":""}`, 400, "invalid-request", "name"},
		{"PUT", "/v1/instances/" + busy.ID, `{}`, 405, "method-not-allowed", ""},
		{"DELETE", "/v1/instances", "", 405, "method-not-allowed", ""},
		{"GET", "/v1/nothing-here", "", 404, "not-found", ""},
	}
	for _, tc := range cases {
		r := a.do(tc.method, tc.path, tc.body)
		e := r.firstError()
		if r.status != tc.status || e["reason"] != tc.reason || (tc.field != "" && e["field"] != tc.field) {
			t.Errorf("%s %s %.40s: got %d %s, want %d reason %s field %q", tc.method, tc.path, tc.body, r.status, r.raw, tc.status, tc.reason, tc.field)
		}
	}
	if d, _ := c.databases.Find(ctx, busy.ID); d.Status != snapdeck.StatusRestoring || d.Name != "busy" {
		t.Errorf("busy database changed: %+v", d)
	}
}

// TestAPIEndToEnd drives the API only, the way an Aura client does: token,
// tenants, create, poll until running, rename, delete, poll until 404.
func TestAPIEndToEnd(t *testing.T) {
	c := mustConsole(t)
	a := c.mustAPI("member@x")
	r := a.do("GET", "/v1/tenants", "")
	tid := r.body["data"].([]any)[0].(map[string]any)["id"].(string)

	inst := checkInstance(t, "create", a.do("POST", "/v1/instances",
		`{"cloud_provider":"gcp","memory":"1GB","name":"e2e","region":"europe-west1","tenant_id":"`+tid+`","type":"free-db","version":"5"}`), http.StatusAccepted)
	id := inst["id"].(string)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := checkInstance(t, "poll", a.do("GET", "/v1/instances/"+id, ""), http.StatusOK)
		if got["status"] == "running" {
			break
		}
		if got["status"] != "creating" || time.Now().After(deadline) {
			t.Fatalf("poll: status %v, want creating then running", got["status"])
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := checkInstance(t, "rename", a.do("PATCH", "/v1/instances/"+id, `{"name":"e2e-renamed"}`), http.StatusAccepted); r["name"] != "e2e-renamed" {
		t.Fatalf("rename: got %v", r["name"])
	}
	if r := checkInstance(t, "get", a.do("GET", "/v1/instances/"+id, ""), http.StatusOK); r["name"] != "e2e-renamed" {
		t.Fatalf("after rename: got %v", r["name"])
	}
	checkInstance(t, "delete", a.do("DELETE", "/v1/instances/"+id, ""), http.StatusAccepted)
	if r := a.do("GET", "/v1/instances/"+id, ""); r.status != http.StatusNotFound {
		t.Fatalf("after delete: got %d, want 404", r.status)
	}
}

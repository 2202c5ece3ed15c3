package web_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// TestBothDoorsCreateTheSameDatabase creates a database through the
// console's form and through POST /v1/instances, empty and from a
// snapshot, and compares what each door left: the database (plan, status,
// data), its credentials, its placement and its one line in the activity
// log. Both doors make one call, database.Databases.Create.
func TestBothDoorsCreateTheSameDatabase(t *testing.T) {
	c := mustConsole(t)
	ctx := context.Background()
	cl := c.newClient("member@x")
	a := c.mustAPI("member@x")

	src := c.mustDatabase("source", snapdeck.PlanProfessional)
	c.exec(t, src.ID, "CREATE TABLE t (n INTEGER)")
	c.exec(t, src.ID, "INSERT INTO t VALUES (1), (2), (3)")
	snap, err := c.snapshots.Snapshot(ctx, src.ID, snapdeck.SnapshotOnDemand, "test", "system")
	if err != nil {
		t.Fatal(err)
	}

	// outcome is what one door's create left, with the name it was given
	// written as NAME, so the two doors compare equal.
	type outcome struct {
		plan      snapdeck.Plan
		status    snapdeck.Status
		rows      string
		username  bool
		placement snapdeck.Placement
		lines     []string
	}
	read := func(t *testing.T, from int, actor, action, name string) outcome {
		t.Helper()
		lines := c.activity.waitFor(t, from, actor, action)
		if len(lines) != 1 {
			t.Fatalf("%s: %d lines in the activity log, want 1: %+v", actor, len(lines), lines)
		}
		id := lines[0].DatabaseID
		for _, j := range mustOpenJobs(t, c, src.ID) {
			c.waitJob(t, j.ID)
		}
		d, err := c.databases.Find(ctx, id)
		if err != nil {
			t.Fatalf("%s: the created database %q: %v", actor, id, err)
		}
		user, _, err := c.store.FindDatabaseCredentials(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		o := outcome{plan: d.Plan, status: d.Status, username: user != "", placement: d.Placement}
		if action == "database.create-from-snapshot" && d.Status == snapdeck.StatusRunning {
			o.rows = c.rows(t, id)
		}
		for _, e := range lines {
			o.lines = append(o.lines, e.Action+":"+string(e.Outcome)+":"+strings.ReplaceAll(e.Detail, name, "NAME"))
		}
		return o
	}

	for _, tc := range []struct {
		name, action string
		console      func(name string) int
		api          func(name string) int
	}{
		{
			name: "empty", action: "database.create",
			console: func(name string) int {
				res, _ := cl.post("/databases", url.Values{"name": {name}, "plan": {"free"}}, true)
				return res.StatusCode
			},
			api: func(name string) int {
				return a.do("POST", "/v1/instances", `{"name":"`+name+`","type":"free-db"}`).status
			},
		},
		{
			name: "from a snapshot", action: "database.create-from-snapshot",
			console: func(name string) int {
				res, _ := cl.post("/databases/"+src.ID+"/snapshots/"+snap.ID+"/create-database",
					url.Values{"name": {name}, "plan": {"free"}}, true)
				return res.StatusCode
			},
			api: func(name string) int {
				return a.do("POST", "/v1/instances", `{"name":"`+name+`","type":"free-db","source_instance_id":"`+
					src.ID+`","source_snapshot_id":"`+snap.ID+`"}`).status
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from := c.activity.mark()
			cs := tc.console("by-console")
			console := read(t, from, "member@x", tc.action, "by-console")
			from = c.activity.mark()
			as := tc.api("by-api")
			api := read(t, from, "api key test key", tc.action, "by-api")
			if cs != 303 || as != 202 {
				t.Errorf("answered: console %d, api %d; want 303 and 202", cs, as)
			}
			if console.status != snapdeck.StatusRunning || !console.username {
				t.Errorf("console: %+v; want a running database with credentials", console)
			}
			if strings.Join(console.lines, "|") != strings.Join(api.lines, "|") || console.plan != api.plan ||
				console.status != api.status || console.rows != api.rows || console.username != api.username ||
				console.placement != api.placement {
				t.Errorf("the doors differ:\nconsole %+v\napi     %+v", console, api)
			}
		})
	}
}

// mustOpenJobs returns the jobs still open on database id.
func mustOpenJobs(t *testing.T, c *console, id string) []snapdeck.Job {
	t.Helper()
	jobs, err := c.snapshots.FindOpenJobs(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return jobs
}

// TestBothDoorsDeleteAlike deletes a database through the console's
// Settings tab and through DELETE /v1/instances/{id}, and compares the one
// line each leaves in the activity log.
func TestBothDoorsDeleteAlike(t *testing.T) {
	c := mustConsole(t)
	cl := c.newClient("member@x")
	a := c.mustAPI("member@x")
	line := func(t *testing.T, from int, actor, name string) string {
		t.Helper()
		lines := c.activity.waitFor(t, from, actor, "database.delete")
		if len(lines) != 1 {
			t.Fatalf("%s: %d lines in the activity log, want 1: %+v", actor, len(lines), lines)
		}
		e := lines[0]
		return e.Action + ":" + string(e.Outcome) + ":" + strings.ReplaceAll(e.Detail, name, "NAME")
	}
	d := c.mustDatabase("gone-by-console", snapdeck.PlanFree)
	from := c.activity.mark()
	res, _ := cl.post("/databases/"+d.ID+"/delete", url.Values{"confirm_name": {d.Name}}, true)
	console := line(t, from, "member@x", d.Name)
	d = c.mustDatabase("gone-by-api", snapdeck.PlanFree)
	from = c.activity.mark()
	r := a.do("DELETE", "/v1/instances/"+d.ID, "")
	api := line(t, from, "api key test key", d.Name)
	if res.StatusCode != 303 || r.status != 202 || r.data()["status"] != "destroying" {
		t.Errorf("answered: console %d, api %d %s; want 303, and 202 destroying", res.StatusCode, r.status, r.raw)
	}
	if console != api || console != "database.delete:ok:Deleted NAME" {
		t.Errorf("activity: console %q, api %q; want both database.delete:ok:Deleted NAME", console, api)
	}
}

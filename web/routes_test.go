package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/snapdeck/snapdeck/internal/dbtoken"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// access is what each kind of caller gets from a route.
type access struct {
	anon, viewer, member, admin int
}

var (
	// public pages answer everyone.
	public = access{200, 200, 200, 200}
	// page: signed-in users; anonymous visitors go to sign-in.
	page = access{303, 200, 200, 200}
	// adminPage: admins only.
	adminPage = access{303, 403, 403, 200}
)

// routeCase is one route of the console with a request that exercises it
// and the status each role gets. {id} and {uid} are filled in per case.
type routeCase struct {
	method, path string
	form         url.Values
	want         access
}

// routeTable lists every console route. A route registered in routes.go
// but missing here fails TestEveryRouteIsInTheTable.
func routeTable() []routeCase {
	return []routeCase{
		{"GET", "/healthz", nil, public},
		{"GET", "/metrics", nil, public},
		{"GET", "/static/*", nil, access{404, 404, 404, 404}},
		{"GET", "/login", nil, access{200, 303, 303, 303}},
		{"POST", "/login", url.Values{"email": {"nobody@x"}, "password": {"wrong-password"}}, access{401, 401, 401, 401}},
		{"POST", "/logout", nil, access{303, 303, 303, 303}},
		{"GET", "/account/password", nil, page},
		{"POST", "/account/password", url.Values{"current_password": {"wrong-password"}, "new_password": {"another-long-one"}}, access{303, 400, 400, 400}},
		{"GET", "/", nil, access{303, 303, 303, 303}},
		{"GET", "/databases", nil, page},
		{"GET", "/databases/new", nil, access{303, 403, 200, 200}},
		{"POST", "/databases", url.Values{"name": {"made"}, "plan": {"free"}}, access{303, 403, 303, 303}},
		{"GET", "/databases/{id}", nil, page},
		{"GET", "/databases/{id}/query", nil, page},
		{"POST", "/databases/{id}/query", url.Values{"sql": {"SELECT 1"}}, page},
		{"GET", "/databases/{id}/snapshots", nil, page},
		{"POST", "/databases/{id}/snapshots", nil, access{303, 403, 303, 303}},
		{"GET", "/databases/{id}/snapshots/{sid}/export", nil, access{303, 403, 200, 200}},
		{"GET", "/databases/{id}/snapshots/{sid}/restore", nil, access{303, 403, 200, 200}},
		{"POST", "/databases/{id}/snapshots/{sid}/restore", url.Values{"confirm": {"RESTORE"}}, access{303, 403, 303, 303}},
		{"GET", "/databases/{id}/snapshots/{sid}/create-database", nil, access{303, 403, 200, 200}},
		{"POST", "/databases/{id}/snapshots/{sid}/create-database", url.Values{"name": {"copy"}, "plan": {"free"}}, access{303, 403, 303, 303}},
		{"GET", "/jobs/{jid}", nil, page},
		{"GET", "/activity", nil, page},
		{"GET", "/databases/{id}/import", nil, page},
		{"POST", "/databases/{id}/import", nil, access{303, 403, 400, 400}}, // no file: the tab again, with the message
		{"GET", "/databases/{id}/settings", nil, page},
		{"POST", "/databases/{id}/settings/rename", url.Values{"name": {"renamed"}}, access{303, 403, 303, 303}},
		{"POST", "/databases/{id}/settings/plan", url.Values{"plan": {"enterprise"}}, access{303, 403, 303, 303}},
		{"POST", "/databases/{id}/settings/schedule", url.Values{"schedule": {"30m"}}, access{303, 403, 303, 303}},
		{"POST", "/databases/{id}/delete", url.Values{"confirm_name": {"{name}"}}, access{303, 403, 303, 303}},
		{"GET", "/import", nil, page},
		{"GET", "/users", nil, adminPage},
		{"POST", "/users", url.Values{"email": {"new-{role}@x"}, "password": {"long-enough-pw"}, "role": {"viewer"}}, access{303, 403, 403, 303}},
		{"POST", "/users/{uid}/role", url.Values{"role": {"member"}}, access{303, 403, 403, 303}},
		{"POST", "/users/{uid}/disable", nil, access{303, 403, 403, 303}},
		{"POST", "/users/{uid}/enable", nil, access{303, 403, 403, 303}},
		{"GET", "/settings/api-keys", nil, page},
		{"POST", "/settings/api-keys", url.Values{"name": {"ci"}}, access{303, 403, 200, 200}},
		{"POST", "/settings/api-keys/:kid/revoke", nil, access{303, 403, 404, 404}},
		{"POST", "/databases/{id}/settings/credentials", nil, access{303, 403, 303, 303}},
		{"POST", "/databases/{id}/tokens", url.Values{"name": {"app"}, "scope": {"read-only"}}, access{303, 403, 200, 200}},
		{"POST", "/databases/{id}/tokens/{tid}/revoke", nil, access{303, 403, 303, 303}},
	}
}

func TestEveryRouteIsInTheTable(t *testing.T) {
	c := mustConsole(t)
	known := map[string]bool{}
	for _, rc := range routeTable() {
		known[rc.method+" "+rc.path] = true
	}
	for _, r := range c.server.Echo().Routes() {
		path := r.Path
		for _, p := range []string{":id", ":sid", ":uid", ":jid", ":tid"} {
			path = strings.ReplaceAll(path, p, "{"+p[1:]+"}")
		}
		if strings.HasPrefix(path, "/v1") || strings.HasPrefix(path, "/oauth") || strings.HasPrefix(path, "/db/") {
			continue // the API and the data plane authenticate with tokens; their own tests cover them
		}
		if !known[r.Method+" "+path] {
			t.Errorf("route %s %s is not in routeTable: add it with the status each role gets", r.Method, path)
		}
	}
}

// TestRoutesByRoleAndCSRF walks every route as anonymous, viewer, member and
// admin, with and without _csrf. Without the token, every POST is 403 and
// changes nothing.
func TestRoutesByRoleAndCSRF(t *testing.T) {
	c := mustConsole(t)
	ctx := context.Background()
	roles := []string{"anon", "viewer", "member", "admin"}
	for _, rc := range routeTable() {
		for i, role := range roles {
			want := []int{rc.want.anon, rc.want.viewer, rc.want.member, rc.want.admin}[i]
			for _, withCSRF := range []bool{true, false} {
				if rc.method == "GET" && !withCSRF {
					continue
				}
				// A fresh database and user per case, so deletes and
				// disables do not leak into the next case.
				d := c.mustDatabase("db-"+role, snapdeck.PlanProfessional)
				// Stored directly: nobody signs in as the target, and
				// hashing a password per case would slow the walk.
				target := snapdeck.User{Email: "target-" + d.ID + "@x", PasswordHash: "unusable", Role: snapdeck.RoleAdmin}
				if err := c.store.CreateUser(ctx, &target); err != nil {
					t.Fatal(err)
				}
				email := ""
				if role != "anon" {
					email = role + "@x"
				}
				cl := c.newClient(email)
				sid, jid := "", ""
				if strings.Contains(rc.path, "{sid}") || strings.Contains(rc.path, "{jid}") {
					snap, err := c.snapshots.Snapshot(ctx, d.ID, snapdeck.SnapshotOnDemand, "route walk", "system")
					if err != nil {
						t.Fatal(err)
					}
					sid = snap.ID
					j := snapdeck.Job{ID: "job-" + snap.ID, Kind: snapdeck.JobSnapshot, DatabaseID: d.ID, Status: snapdeck.JobSucceeded}
					if err := c.store.CreateJob(ctx, &j); err != nil {
						t.Fatal(err)
					}
					jid = j.ID
				}
				tid := ""
				if strings.Contains(rc.path, "{tid}") {
					tok, _, err := c.app.Tokens.Issue(ctx, "system", d.ID, "route walk", dbtoken.ReadWrite)
					if err != nil {
						t.Fatal(err)
					}
					tid = tok.ID
				}
				path := strings.NewReplacer("{id}", d.ID, "{uid}", itoa(target.ID), "{sid}", sid, "{jid}", jid, "{tid}", tid, "*", "app.css").Replace(rc.path)
				before := snapshotState(t, c)
				var res *http.Response
				if rc.method == "GET" {
					res, _ = cl.get(path)
				} else {
					form := url.Values{}
					for k, vs := range rc.form {
						for _, v := range vs {
							form.Add(k, strings.NewReplacer("{name}", d.Name, "{role}", role+d.ID).Replace(v))
						}
					}
					res, _ = cl.post(path, form, withCSRF)
				}
				got := res.StatusCode
				expect := want
				if rc.method == "POST" && !withCSRF {
					expect = http.StatusForbidden
				}
				if got != expect {
					t.Errorf("%s %s as %s (csrf %v): got %d, want %d", rc.method, rc.path, role, withCSRF, got, expect)
				}
				if rc.method == "POST" && !withCSRF {
					if after := snapshotState(t, c); after != before {
						t.Errorf("%s %s as %s without _csrf changed state:\nbefore %s\nafter  %s", rc.method, rc.path, role, before, after)
					}
				}
			}
		}
	}
}

// snapshotState summarises what a POST could change: databases and their
// tokens, users and snapshots.
func snapshotState(t *testing.T, c *console) string {
	t.Helper()
	ctx := context.Background()
	dbs, err := c.databases.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	users, err := c.store.FindUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	snaps, err := c.store.CountSnapshots(ctx, snapdeck.SnapshotFilter{})
	if err != nil {
		t.Fatal(err)
	}
	b.WriteString("snapshots:" + itoa(int64(snaps)) + ";")
	for _, d := range dbs {
		tokens, err := c.app.Tokens.List(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(d.ID + ":" + d.Name + ":" + string(d.Plan) + ":" + itoa(int64(len(tokens))) + ";")
	}
	for _, u := range users {
		b.WriteString(u.Email + ":" + string(u.Role) + ":" + boolStr(u.Disabled) + ";")
	}
	return b.String()
}

func boolStr(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

package web_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// activityLog is the activity log's observer in tests: it keeps every line
// recorded, and lets a test wait for one without polling.
type activityLog struct {
	mu      sync.Mutex
	events  []snapdeck.Event
	changed chan struct{} // closed and replaced at every line
}

// Event keeps e and wakes the waiters.
func (l *activityLog) Event(e snapdeck.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
	close(l.changed)
	l.changed = make(chan struct{})
}

// mark returns how many lines there are so far; since reads after it.
func (l *activityLog) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

// waitFor waits until a line recorded after from by actor has the action
// last, then returns every line by actor after from.
func (l *activityLog) waitFor(t *testing.T, from int, actor, last string) []snapdeck.Event {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		l.mu.Lock()
		var mine []snapdeck.Event
		done := false
		for _, e := range l.events[from:] {
			if e.Actor == actor {
				mine = append(mine, e)
				done = done || e.Action == last
			}
		}
		changed := l.changed
		l.mu.Unlock()
		if done {
			return mine
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("no %s by %s in the activity log after 30s (have %v)", last, actor, mine)
		}
	}
}

// waitIdle waits until no job is open, background verifications included.
func (c *console) waitIdle(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		open, err := c.snapshots.FindOpenJobs(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(open) == 0 {
			return
		}
		for _, j := range open {
			if _, err := c.jobs.Wait(ctx, j.ID); err != nil {
				t.Fatalf("job %s: %v", j.ID, err)
			}
		}
	}
}

// state describes database d and the databases made from it once every
// job ended, with d's name as D so that two sides compare: its status,
// name and plan, its rows, and its completed snapshots.
func (c *console) state(t *testing.T, d snapdeck.Database) string {
	t.Helper()
	c.waitIdle(t)
	ctx := context.Background()
	dbs, err := c.databases.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range dbs {
		if o.ID != d.ID && !strings.HasPrefix(o.Name, d.Name+"-") {
			continue
		}
		line := fmt.Sprintf("%s %s %s", strings.Replace(o.Name, d.Name, "D", 1), o.Status, o.Plan)
		if o.Status == snapdeck.StatusRunning {
			if r, err := c.databases.Query(ctx, o.ID, "SELECT count(*) FROM sqlite_schema WHERE name = 't'", true); err == nil && r.Rows[0][0] == "1" {
				line += " rows " + c.rows(t, o.ID)
			}
		}
		n, _ := c.store.CountSnapshots(ctx, snapdeck.SnapshotFilter{DatabaseID: o.ID})
		out = append(out, fmt.Sprintf("%s, %d snapshots", line, n))
	}
	if len(out) == 0 {
		return "gone"
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

// TestBothDoorsRecordTheSameActivity drives each action once through the
// console and once through the API, each on a database of its own, and
// compares what each door did: the same outcome (and, refused, the same
// HTTP status), the same database state once every job ended, and the
// same lines in the activity log, one per action, with the same action
// and outcome, whoever asked and however. An action only one door offers
// (pause, resume and overwrite are the API's; the plan, the schedule, a
// credential reset and API keys the console's) is driven through that
// door and checked against the same expectations.
func TestBothDoorsRecordTheSameActivity(t *testing.T) {
	c := mustConsole(t, importLimits)
	ctx := context.Background()
	cl := c.newClient("member@x")
	a := c.mustAPI("member@x")
	apiActor := "api key test key"
	notSQLite := []byte("this is neither a .dump, a SQLite file, nor SQL text \x00\x01\x02")

	// ready makes a database holding a table and a completed snapshot.
	ready := func(name string) (snapdeck.Database, string) {
		d := c.mustDatabase(name, snapdeck.PlanProfessional)
		c.exec(t, d.ID, "CREATE TABLE t (n INTEGER)")
		c.exec(t, d.ID, "INSERT INTO t VALUES (1), (2)")
		s, err := c.snapshots.Snapshot(ctx, d.ID, snapdeck.SnapshotOnDemand, "test", "system")
		if err != nil {
			t.Fatal(err)
		}
		return d, s.ID
	}
	// A door acts on its own database d (with its completed snapshot sid)
	// and returns what it answered.
	type door func(t *testing.T, d snapdeck.Database, sid string) int
	consoleRestore := func(t *testing.T, d snapdeck.Database, sid string) int {
		res, _ := cl.post("/databases/"+d.ID+"/snapshots/"+sid+"/restore", url.Values{"confirm": {"RESTORE"}}, true)
		return res.StatusCode
	}
	apiRestore := func(t *testing.T, d snapdeck.Database, sid string) int {
		return a.do("POST", "/v1/instances/"+d.ID+"/snapshots/"+sid+"/restore", "").status
	}
	consoleTake := func(t *testing.T, d snapdeck.Database, _ string) int {
		res, _ := cl.post("/databases/"+d.ID+"/snapshots", nil, true)
		return res.StatusCode
	}
	apiTake := func(t *testing.T, d snapdeck.Database, _ string) int {
		return a.do("POST", "/v1/instances/"+d.ID+"/snapshots", "").status
	}
	apiExport := func(t *testing.T, d snapdeck.Database, sid string) int {
		req, _ := http.NewRequest(http.MethodGet, c.srv.URL+"/v1/instances/"+d.ID+"/snapshots/"+sid+"/export", nil)
		req.Header.Set("Authorization", "Bearer "+a.token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		io.Copy(io.Discard, res.Body)
		return res.StatusCode
	}
	for _, tc := range []struct {
		name    string
		console door
		api     door
		want    string // action:outcome lines, oldest first; the last action ends the case
		state   string // the database and its copies afterwards (console.state); "" leaves it unchecked
		paused  bool   // the database is paused first
		pending bool   // sid is a snapshot that never completed
		// no413 is an upload over the limit, which the API refuses with
		// 400 where the console answers 413: Aura's clients know no 413.
		no413 bool
	}{
		{
			name: "refused upload",
			console: func(t *testing.T, d snapdeck.Database, _ string) int {
				res, _ := cl.upload(d.ID, "local.sqlite", strings.NewReader(string(notSQLite)))
				return res.StatusCode
			},
			api: func(t *testing.T, d snapdeck.Database, _ string) int {
				r := a.announce(d.ID, notSQLite, true)
				uid, _ := r.data()["upload_id"].(string)
				if r.status != http.StatusAccepted {
					return r.status
				}
				return a.chunk(d.ID, uid, notSQLite, 0, len(notSQLite)).status
			},
			want: "load:refused",
		},
		{
			name: "upload over the import limit",
			console: func(t *testing.T, d snapdeck.Database, _ string) int {
				res, _ := cl.upload(d.ID, "huge.sqlite", strings.NewReader(strings.Repeat("x", 2<<20)))
				return res.StatusCode
			},
			api: func(t *testing.T, d snapdeck.Database, _ string) int {
				sum := sha256.Sum256(nil)
				return a.importCall(http.MethodPost, "/v1/instances/"+d.ID+"/import", map[string]string{
					"X-Snapdeck-Size": strconv.Itoa(2 << 20), "X-Snapdeck-SHA256": hex.EncodeToString(sum[:]),
					"X-Snapdeck-Filename": "huge.sqlite", "X-Snapdeck-Overwrite": "true"}, nil).status
			},
			want: "load:refused", no413: true,
		},
		{
			name:    "restore",
			console: consoleRestore, api: apiRestore,
			want: "restore:ok",
		},
		{
			name:    "restore of a snapshot not completed",
			console: consoleRestore, api: apiRestore,
			pending: true, want: "restore:refused",
		},
		{
			name:    "snapshot",
			console: consoleTake, api: apiTake,
			want: "snapshot.take:ok",
		},
		{
			name:    "snapshot of a paused database",
			console: consoleTake, api: apiTake,
			paused: true, want: "snapshot.take:refused",
		},
		{
			name: "create",
			console: func(t *testing.T, d snapdeck.Database, _ string) int {
				res, _ := cl.post("/databases", url.Values{"name": {d.Name + "-new"}, "plan": {"free"}}, true)
				return res.StatusCode
			},
			api: func(t *testing.T, d snapdeck.Database, _ string) int {
				return a.do("POST", "/v1/instances", `{"name":"`+d.Name+`-new","type":"free-db","cloud_provider":"gcp","region":"europe-west1","memory":"1GB","version":"5"}`).status
			},
			want: "database.create:ok",
		},
		{
			name: "create with a name too long",
			console: func(t *testing.T, d snapdeck.Database, _ string) int {
				res, _ := cl.post("/databases", url.Values{"name": {strings.Repeat("n", 65)}, "plan": {"free"}}, true)
				return res.StatusCode
			},
			api: func(t *testing.T, d snapdeck.Database, _ string) int {
				return a.do("POST", "/v1/instances", `{"name":"`+strings.Repeat("n", 65)+`","type":"free-db","cloud_provider":"gcp","region":"europe-west1","memory":"1GB","version":"5"}`).status
			},
			want: "database.create:refused",
		},
		{
			name: "create from a snapshot",
			console: func(t *testing.T, d snapdeck.Database, sid string) int {
				res, _ := cl.post("/databases/"+d.ID+"/snapshots/"+sid+"/create-database", url.Values{"name": {d.Name + "-copy"}, "plan": {"free"}}, true)
				return res.StatusCode
			},
			api: func(t *testing.T, d snapdeck.Database, sid string) int {
				return a.do("POST", "/v1/instances", `{"name":"`+d.Name+`-copy","type":"free-db","cloud_provider":"gcp","region":"europe-west1","memory":"1GB","version":"5","source_instance_id":"`+d.ID+`","source_snapshot_id":"`+sid+`"}`).status
			},
			want:  "database.create-from-snapshot:ok",
			state: "D running professional rows 2:3, 1 snapshots; D-copy running free rows 2:3, 0 snapshots",
		},
		{
			name: "rename",
			console: func(t *testing.T, d snapdeck.Database, _ string) int {
				res, _ := cl.post("/databases/"+d.ID+"/settings/rename", url.Values{"name": {d.Name + "-renamed"}}, true)
				return res.StatusCode
			},
			api: func(t *testing.T, d snapdeck.Database, _ string) int {
				return a.do("PATCH", "/v1/instances/"+d.ID, `{"name":"`+d.Name+`-renamed"}`).status
			},
			want:  "database.update:ok",
			state: "D-renamed running professional rows 2:3, 1 snapshots",
		},
		{
			name: "rename to an empty name",
			console: func(t *testing.T, d snapdeck.Database, _ string) int {
				res, _ := cl.post("/databases/"+d.ID+"/settings/rename", url.Values{"name": {"  "}}, true)
				return res.StatusCode
			},
			api: func(t *testing.T, d snapdeck.Database, _ string) int {
				return a.do("PATCH", "/v1/instances/"+d.ID, `{"name":"  "}`).status
			},
			want:  "database.update:refused",
			state: "D running professional rows 2:3, 1 snapshots",
		},
		{
			name: "plan",
			console: func(t *testing.T, d snapdeck.Database, _ string) int {
				res, _ := cl.post("/databases/"+d.ID+"/settings/plan", url.Values{"plan": {"enterprise"}}, true)
				return res.StatusCode
			},
			want:  "database.update:ok",
			state: "D running enterprise rows 2:3, 1 snapshots",
		},
		{
			name: "schedule",
			console: func(t *testing.T, d snapdeck.Database, _ string) int {
				res, _ := cl.post("/databases/"+d.ID+"/settings/schedule", url.Values{"schedule": {"2h"}}, true)
				return res.StatusCode
			},
			want: "database.settings:ok",
		},
		{
			name: "pause",
			api: func(t *testing.T, d snapdeck.Database, _ string) int {
				return a.do("POST", "/v1/instances/"+d.ID+"/pause", "").status
			},
			want:  "database.pause:ok",
			state: "D paused professional, 1 snapshots",
		},
		{
			name: "resume",
			api: func(t *testing.T, d snapdeck.Database, _ string) int {
				return a.do("POST", "/v1/instances/"+d.ID+"/resume", "").status
			},
			paused: true, want: "database.resume:ok",
			state: "D running professional rows 2:3, 1 snapshots",
		},
		{
			name: "overwrite",
			api: func(t *testing.T, d snapdeck.Database, sid string) int {
				c.exec(t, d.ID, "DELETE FROM t")
				return a.do("POST", "/v1/instances/"+d.ID+"/overwrite", `{"source_snapshot_id":"`+sid+`"}`).status
			},
			want:  "overwrite:ok",
			state: "D running professional rows 2:3, 2 snapshots",
		},
		{
			name: "restore restores",
			console: func(t *testing.T, d snapdeck.Database, sid string) int {
				c.exec(t, d.ID, "DELETE FROM t")
				return consoleRestore(t, d, sid)
			},
			api: func(t *testing.T, d snapdeck.Database, sid string) int {
				c.exec(t, d.ID, "DELETE FROM t")
				return apiRestore(t, d, sid)
			},
			want:  "restore:ok",
			state: "D running professional rows 2:3, 2 snapshots",
		},
		{
			name: "export",
			console: func(t *testing.T, d snapdeck.Database, sid string) int {
				res, _ := cl.get("/databases/" + d.ID + "/snapshots/" + sid + "/export")
				return res.StatusCode
			},
			api:   apiExport,
			want:  "snapshot.export:ok",
			state: "D running professional rows 2:3, 1 snapshots",
		},
		{
			name: "export of a snapshot not completed",
			console: func(t *testing.T, d snapdeck.Database, sid string) int {
				res, _ := cl.get("/databases/" + d.ID + "/snapshots/" + sid + "/export")
				return res.StatusCode
			},
			api:     apiExport,
			pending: true, want: "snapshot.export:refused",
		},
		{
			name: "delete",
			console: func(t *testing.T, d snapdeck.Database, _ string) int {
				res, _ := cl.post("/databases/"+d.ID+"/delete", url.Values{"confirm_name": {d.Name}}, true)
				return res.StatusCode
			},
			api: func(t *testing.T, d snapdeck.Database, _ string) int {
				return a.do("DELETE", "/v1/instances/"+d.ID, "").status
			},
			want:  "database.delete:ok",
			state: "gone",
		},
		{
			name: "credentials reset",
			console: func(t *testing.T, d snapdeck.Database, _ string) int {
				res, _ := cl.post("/databases/"+d.ID+"/settings/credentials", nil, true)
				return res.StatusCode
			},
			want:  "database.credentials.reset:ok",
			state: "D running professional rows 2:3, 1 snapshots",
		},
		{
			name: "API key create and revoke",
			console: func(t *testing.T, d snapdeck.Database, _ string) int {
				res, body := cl.post("/settings/api-keys", url.Values{"name": {d.Name}}, true)
				kid := regexp.MustCompile(`/settings/api-keys/(\d+)/revoke`).FindAllStringSubmatch(body, -1)
				if res.StatusCode != http.StatusOK || kid == nil {
					t.Fatalf("create api key: got %d", res.StatusCode)
				}
				res, _ = cl.post("/settings/api-keys/"+kid[len(kid)-1][1]+"/revoke", nil, true)
				return res.StatusCode
			},
			want: "apikey.create:ok apikey.revoke:ok",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines, states, answers := map[string]string{}, map[string]string{}, map[string]int{}
			wanted := strings.Fields(tc.want)
			last, _, _ := strings.Cut(wanted[len(wanted)-1], ":")
			for _, side := range []struct {
				name, actor string
				act         door
			}{{"console", "member@x", tc.console}, {"api", apiActor, tc.api}} {
				if side.act == nil {
					continue // the action has no such door
				}
				d, sid := ready(fmt.Sprintf("%s-%d", side.name, c.activity.mark()))
				if tc.pending {
					sid = c.pendingSnapshot(d.ID)
				}
				if tc.paused {
					if _, err := c.databases.Pause(ctx, "system", d.ID); err != nil {
						t.Fatal(err)
					}
				}
				from := c.activity.mark()
				status := side.act(t, d, sid)
				answers[side.name] = status
				var got, details []string
				for _, e := range c.activity.waitFor(t, from, side.actor, last) {
					got = append(got, e.Action+":"+string(e.Outcome))
					details = append(details, e.Detail)
				}
				lines[side.name] = strings.Join(got, " ")
				if lines[side.name] != tc.want {
					t.Errorf("%s (answered %d): got %q, want %q; details %q", side.name, status, lines[side.name], tc.want, details)
				}
				refused := strings.HasSuffix(tc.want, ":refused")
				if (status >= http.StatusBadRequest) != refused {
					t.Errorf("%s answered %d; want a refusal: %v", side.name, status, refused)
				}
				states[side.name] = c.state(t, d)
				if tc.state != "" && states[side.name] != tc.state {
					t.Errorf("%s: database afterwards %q, want %q", side.name, states[side.name], tc.state)
				}
				// Every job the action started has ended: one line per
				// action, none recorded later.
				if n := len(c.activity.waitFor(t, from, side.actor, last)); n != len(got) {
					t.Errorf("%s: %d lines once every job ended, want %d", side.name, n, len(got))
				}
			}
			if tc.console == nil || tc.api == nil {
				return
			}
			if lines["console"] != lines["api"] {
				t.Errorf("the doors differ: console %q, api %q", lines["console"], lines["api"])
			}
			if states["console"] != states["api"] {
				t.Errorf("the doors leave different databases: console %q, api %q", states["console"], states["api"])
			}
			if ac, aa := answers["console"], answers["api"]; (ac >= 400 || aa >= 400) && ac != aa && !(tc.no413 && ac == 413 && aa == 400) {
				t.Errorf("the doors refuse differently: console %d, api %d", ac, aa)
			}
		})
	}
}

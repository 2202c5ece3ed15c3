package web_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
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

// TestBothDoorsRecordTheSameActivity drives each action once through the
// console and once through the API, each on a database of its own, and
// compares the lines each door left in the activity log: one line per
// action, with the same action and outcome, whoever asked and however.
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
	for _, tc := range []struct {
		name    string
		console door
		api     door
		want    string // action:outcome lines, oldest first; the last action ends the case
		paused  bool   // the database is paused first
		pending bool   // sid is a snapshot that never completed
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
			want: "load:refused",
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
			want: "database.create-from-snapshot:ok",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := map[string]string{}
			wanted := strings.Fields(tc.want)
			last, _, _ := strings.Cut(wanted[len(wanted)-1], ":")
			for _, side := range []struct {
				name, actor string
				act         door
			}{{"console", "member@x", tc.console}, {"api", apiActor, tc.api}} {
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
				var got []string
				for _, e := range c.activity.waitFor(t, from, side.actor, last) {
					got = append(got, e.Action+":"+string(e.Outcome))
				}
				lines[side.name] = strings.Join(got, " ")
				if lines[side.name] != tc.want {
					t.Errorf("%s (answered %d): got %q, want %q", side.name, status, lines[side.name], tc.want)
				}
			}
			if lines["console"] != lines["api"] {
				t.Errorf("the doors differ: console %q, api %q", lines["console"], lines["api"])
			}
		})
	}
}

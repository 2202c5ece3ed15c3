package web_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/app"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// pitrBatch makes a batch of n rows of table t restorable, in a second of
// its own: it waits for the wall clock to enter a new second, commits,
// uploads the history at once, and returns that second. A time given to
// the second covers the whole second (SPEC §10), so the next batch, a
// second later, falls outside it.
func (c *console) pitrBatch(t *testing.T, id string, n int) time.Time {
	t.Helper()
	waitNextSecond()
	c.exec(t, id, fmt.Sprintf("WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v+1 FROM s WHERE v < %d) INSERT INTO t SELECT v FROM s", n))
	c.syncPITR(t, id)
	return time.Now().UTC().Truncate(time.Second)
}

// waitNextSecond waits for the wall clock to enter a new second. It waits
// on the clock, not on an event: to the second is the grain of the form's
// time field.
func waitNextSecond() {
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
}

// count is the number of rows in table t of database id and its
// integrity check.
func (c *console) count(t *testing.T, id string) string {
	t.Helper()
	r, err := c.databases.Query(context.Background(), id, "SELECT (SELECT count(*) FROM t) || ' ' || (SELECT integrity_check FROM pragma_integrity_check)", true)
	if err != nil {
		t.Fatal(err)
	}
	return r.Rows[0][0]
}

var jobLocation = regexp.MustCompile(`^/jobs/([^/]+)$`)

// followJob waits for the job a form's 303 leads to and checks it ended
// well.
func (c *console) followJob(t *testing.T, what string, res *http.Response, body string) snapdeck.Job {
	t.Helper()
	m := jobLocation.FindStringSubmatch(res.Header.Get("Location"))
	if res.StatusCode != http.StatusSeeOther || m == nil {
		t.Fatalf("%s: got %d to %q, want 303 to a job page\n%s", what, res.StatusCode, res.Header.Get("Location"), body)
	}
	j := c.waitJob(t, m[1])
	if j.Status != snapdeck.JobSucceeded {
		t.Fatalf("%s: job %s %s", what, j.Status, j.Error)
	}
	return j
}

var (
	pitrFromAttr = regexp.MustCompile(`data-pitr-from="([^"]+)"`)
	pitrToAttr   = regexp.MustCompile(`data-pitr-to="([^"]+)"`)
)

// pitrWindowOf reads the window the SNAPSHOTS tab shows from its contract
// attributes.
func pitrWindowOf(t *testing.T, body string) (from, to time.Time) {
	t.Helper()
	f, tt := pitrFromAttr.FindStringSubmatch(body), pitrToAttr.FindStringSubmatch(body)
	if f == nil || tt == nil {
		t.Fatalf("no data-pitr-from/data-pitr-to on the page")
	}
	from, err1 := time.Parse(time.RFC3339, f[1])
	to, err2 := time.Parse(time.RFC3339, tt[1])
	if err1 != nil || err2 != nil || !strings.HasSuffix(f[1], "Z") || !strings.HasSuffix(tt[1], "Z") {
		t.Fatalf("window %q to %q: want RFC 3339 UTC (%v, %v)", f[1], tt[1], err1, err2)
	}
	return from, to
}

// TestRestoreToTimeThroughTheForm writes three batches a second apart and
// restores through the console's form to the second of each, out of order:
// each restore holds exactly the rows committed by then, keeps a safety
// snapshot of what it replaced, and is in the activity log with the time
// asked for.
func TestRestoreToTimeThroughTheForm(t *testing.T) {
	c := mustPITRConsole(t)
	ctx := context.Background()
	d := c.mustDatabase("ledger", snapdeck.PlanEnterprise)
	c.exec(t, d.ID, "CREATE TABLE t (n INTEGER)")
	var times []time.Time
	for _, n := range []int{1000, 2000, 3000} {
		times = append(times, c.pitrBatch(t, d.ID, n))
	}
	// A restore made in the second of the last batch would be part of that
	// second's data.
	waitNextSecond()
	cl := c.newClient("member@x")
	_, tab := cl.get("/databases/" + d.ID + "/snapshots")
	from, to := pitrWindowOf(t, tab)
	if from.After(times[0]) || to.Before(times[2]) {
		t.Fatalf("window %s to %s: want it to hold %s to %s", from, to, times[0], times[2])
	}
	if !strings.Contains(tab, "Point-in-time restore: from <time datetime=\""+from.Format(time.RFC3339)+"\">"+from.Format("2006-01-02 15:04:05 UTC")+"</time> to now") {
		t.Errorf("the tab does not say \"Point-in-time restore: from %s to now\"", from.Format("2006-01-02 15:04:05 UTC"))
	}
	before, err := c.store.CountSnapshots(ctx, snapdeck.SnapshotFilter{DatabaseID: d.ID})
	if err != nil {
		t.Fatal(err)
	}
	mark := c.activity.mark()
	for i, step := range []struct {
		batch int
		form  string // how the time is typed
		want  string
	}{
		{1, "2006-01-02T15:04:05", "3000 ok"},
		{0, time.RFC3339, "1000 ok"},
		{2, "2006-01-02 15:04:05", "6000 ok"},
	} {
		typed := times[step.batch].Format(step.form)
		res, body := cl.post("/databases/"+d.ID+"/restore-to-time", url.Values{"time": {typed}, "confirm": {"RESTORE"}}, true)
		c.followJob(t, "restore to "+typed, res, body)
		if got := c.count(t, d.ID); got != step.want {
			t.Errorf("restored to %s (after batch %d): got %s, want %s", typed, step.batch+1, got, step.want)
		}
		got, err := c.store.CountSnapshots(ctx, snapdeck.SnapshotFilter{DatabaseID: d.ID})
		if err != nil {
			t.Fatal(err)
		}
		if got != before+i+1 {
			t.Errorf("after restore %d: %d snapshots, want %d (a safety snapshot each)", i+1, got, before+i+1)
		}
	}
	var asked []string
	for _, e := range c.activity.waitFor(t, mark, "member@x", "restore-to-time") {
		if e.Action == "restore-to-time" {
			asked = append(asked, e.Detail)
		}
	}
	if len(asked) != 3 || !strings.Contains(asked[0], times[1].Format(time.RFC3339)) ||
		!strings.Contains(asked[1], times[0].Format(time.RFC3339)) || !strings.Contains(asked[2], times[2].Format(time.RFC3339)) {
		t.Errorf("activity: restore-to-time lines %q, want three naming the times asked for", asked)
	}
}

// TestRestoreToTimeRefusals: a time that does not parse, outside the
// window, a wrong confirmation word, or a plan without a window each
// re-show the form with a 400 and the field at fault, and change nothing:
// no job, no snapshot, the same rows.
func TestRestoreToTimeRefusals(t *testing.T) {
	c := mustPITRConsole(t)
	ctx := context.Background()
	d := c.mustDatabase("ledger", snapdeck.PlanEnterprise)
	c.exec(t, d.ID, "CREATE TABLE t (n INTEGER)")
	at := c.pitrBatch(t, d.ID, 10)
	free := c.mustDatabase("scratch", snapdeck.PlanFree)
	c.exec(t, free.ID, "CREATE TABLE t (n INTEGER)")
	cl := c.newClient("member@x")
	mark := c.activity.mark()
	cases := 0
	for _, tc := range []struct {
		name, db, time, confirm string
		want                    string // in the re-shown form
	}{
		{"empty time", d.ID, "", "RESTORE", "Give a time in UTC"},
		{"not a time", d.ID, "yesterday", "RESTORE", `&#34;yesterday&#34; is not a time`},
		{"no seconds", d.ID, at.Format("2006-01-02T15:04"), "RESTORE", "is not a time"},
		{"impossible date", d.ID, "2026-02-30T10:00:00", "RESTORE", "is not a time"},
		{"before the window", d.ID, "2000-01-01T00:00:00", "RESTORE", "outside the point-in-time window"},
		{"in the future", d.ID, time.Now().UTC().Add(time.Hour).Format(time.RFC3339), "RESTORE", "outside the point-in-time window"},
		{"wrong word", d.ID, at.Format(time.RFC3339), "restore", "Type RESTORE in capital letters"},
		{"no word", d.ID, at.Format(time.RFC3339), "", "Type RESTORE in capital letters"},
		{"plan without a window", free.ID, at.Format(time.RFC3339), "RESTORE", "no point-in-time history"},
	} {
		beforeSnaps, err := c.store.CountSnapshots(ctx, snapdeck.SnapshotFilter{})
		if err != nil {
			t.Fatal(err)
		}
		beforeRows := c.count(t, tc.db)
		cases++
		res, body := cl.post("/databases/"+tc.db+"/restore-to-time", url.Values{"time": {tc.time}, "confirm": {tc.confirm}}, true)
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, `data-form="restore-to-time"`) || !strings.Contains(body, tc.want) {
			t.Errorf("%s: got %d (form %v, %q %v), want 400 with the form and %q", tc.name, res.StatusCode,
				strings.Contains(body, `data-form="restore-to-time"`), tc.want, strings.Contains(body, tc.want), tc.want)
		}
		if !strings.Contains(body, `value="`+html.EscapeString(tc.time)+`"`) {
			t.Errorf("%s: the time typed is not re-shown", tc.name)
		}
		jobs, err := c.snapshots.FindOpenJobs(ctx, tc.db)
		if err != nil {
			t.Fatal(err)
		}
		afterSnaps, err := c.store.CountSnapshots(ctx, snapdeck.SnapshotFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if got := c.count(t, tc.db); got != beforeRows || afterSnaps != beforeSnaps || len(jobs) != 0 {
			t.Errorf("%s: rows %s -> %s, snapshots %d -> %d, open jobs %d: want nothing changed", tc.name, beforeRows, got, beforeSnaps, afterSnaps, len(jobs))
		}
	}
	// Each refusal is one line of the activity log, refused.
	refused := 0
	for _, e := range c.activity.waitFor(t, mark, "member@x", "restore-to-time") {
		if e.Action == "restore-to-time" && e.Outcome == snapdeck.OutcomeRefused {
			refused++
		} else {
			t.Errorf("activity: unexpected %s %s (%s)", e.Action, e.Outcome, e.Detail)
		}
	}
	if refused != cases {
		t.Errorf("activity: %d refused restore-to-time lines, want %d", refused, cases)
	}
}

// TestCreateDatabaseAtTimeThroughTheForm creates a database from the
// second of the first of two batches; the source keeps both, and refusals
// create nothing.
func TestCreateDatabaseAtTimeThroughTheForm(t *testing.T) {
	c := mustPITRConsole(t)
	ctx := context.Background()
	d := c.mustDatabase("ledger", snapdeck.PlanEnterprise)
	c.exec(t, d.ID, "CREATE TABLE t (n INTEGER)")
	at := c.pitrBatch(t, d.ID, 300)
	c.pitrBatch(t, d.ID, 700)
	cl := c.newClient("member@x")
	res, body := cl.get("/databases/" + d.ID + "/create-database-at-time")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `data-form="create-database-at-time"`) || !strings.Contains(body, `name="time"`) {
		t.Fatalf("form: got %d, want the form with its time field", res.StatusCode)
	}
	dbs, err := c.databases.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		form url.Values
		want string
	}{
		{"not a time", url.Values{"time": {"noon"}, "name": {"copy"}, "plan": {"free"}}, "is not a time"},
		{"before the window", url.Values{"time": {"2000-01-01T00:00:00"}, "name": {"copy"}, "plan": {"free"}}, "outside the point-in-time window"},
		{"no name", url.Values{"time": {at.Format(time.RFC3339)}, "name": {""}, "plan": {"free"}}, "name"},
		{"no plan", url.Values{"time": {at.Format(time.RFC3339)}, "name": {"copy"}, "plan": {"gold"}}, "Choose a plan"},
	} {
		res, body := cl.post("/databases/"+d.ID+"/create-database-at-time", tc.form, true)
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, `data-form="create-database-at-time"`) || !strings.Contains(body, tc.want) {
			t.Errorf("%s: got %d, want 400 with the form and %q", tc.name, res.StatusCode, tc.want)
		}
		after, err := c.databases.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(after) != len(dbs) {
			t.Errorf("%s: %d databases, want %d: nothing created", tc.name, len(after), len(dbs))
		}
	}
	res, body = cl.post("/databases/"+d.ID+"/create-database-at-time",
		url.Values{"time": {at.Format("2006-01-02T15:04:05")}, "name": {"ledger then"}, "plan": {"professional"}}, true)
	j := c.followJob(t, "create at "+at.Format(time.RFC3339), res, body)
	if _, page := cl.get("/jobs/" + j.ID); !strings.Contains(page, "Creating database at a point in time") ||
		!strings.Contains(page, `href="/databases/`+j.TargetID+`"`) {
		t.Errorf("job page: want its title and a link to the new database")
	}
	if got := c.count(t, j.TargetID); got != "300 ok" {
		t.Errorf("new database: got %s, want 300 ok", got)
	}
	if got := c.count(t, d.ID); got != "1000 ok" {
		t.Errorf("source: got %s, want 1000 ok", got)
	}
	// The new database's page shows its credentials, once.
	if _, page := cl.get("/databases/" + j.TargetID); !strings.Contains(page, "snapdeck-"+j.TargetID) {
		t.Errorf("the new database's page does not show its credentials")
	}
	nd, err := c.databases.Find(ctx, j.TargetID)
	if err != nil || nd.Name != "ledger then" || nd.Plan != snapdeck.PlanProfessional || nd.Status != snapdeck.StatusRunning {
		t.Errorf("new database: got %+v, %v; want ledger then, professional, running", nd, err)
	}
}

// TestSnapshotsTabPITR: the tab shows the window and the buttons to
// writers; viewers see the window without buttons; a plan without a
// window says which plans have one. The database list shows the
// history's storage.
func TestSnapshotsTabPITR(t *testing.T) {
	c := mustPITRConsole(t)
	d := c.mustDatabase("ledger", snapdeck.PlanEnterprise)
	c.exec(t, d.ID, "CREATE TABLE t (n INTEGER)")
	c.pitrBatch(t, d.ID, 10)
	free := c.mustDatabase("scratch", snapdeck.PlanFree)
	for _, tc := range []struct {
		who, db      string
		window, btns bool
		want         string
	}{
		{"member@x", d.ID, true, true, "Point-in-time restore: from"},
		{"viewer@x", d.ID, true, false, "Point-in-time restore: from"},
		{"member@x", free.ID, false, false, "Enterprise (1 hour) restore to any second of their window"},
		{"viewer@x", free.ID, false, false, "No point-in-time restore"},
	} {
		res, body := c.newClient(tc.who).get("/databases/" + tc.db + "/snapshots")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: got %d", tc.who, tc.db, res.StatusCode)
		}
		if got := strings.Contains(body, "data-pitr-from="); got != tc.window {
			t.Errorf("%s on %s: window shown %v, want %v", tc.who, tc.db, got, tc.window)
		}
		if got := strings.Contains(body, `data-action="restore-to-time"`); got != tc.btns {
			t.Errorf("%s on %s: Restore to a point in time shown %v, want %v", tc.who, tc.db, got, tc.btns)
		}
		if !strings.Contains(body, tc.want) {
			t.Errorf("%s on %s: the tab does not say %q", tc.who, tc.db, tc.want)
		}
	}
	// The list shows the history's storage, as the engine counts it
	// (before or after the page: a compaction may change it meanwhile).
	cl := c.newClient("viewer@x")
	before, err := c.pitr.Bytes(context.Background(), d.ID)
	if err != nil || before <= 0 {
		t.Fatalf("history of %s: %d bytes, %v", d.ID, before, err)
	}
	_, list := cl.get("/databases")
	after, err := c.pitr.Bytes(context.Background(), d.ID)
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile(`(?s)data-database-id="` + d.ID + `".*?</tr>`).FindString(list)
	if !strings.Contains(row, fmt.Sprintf(`data-pitr-bytes="%d"`, before)) && !strings.Contains(row, fmt.Sprintf(`data-pitr-bytes="%d"`, after)) {
		t.Errorf("database list: the row of %s does not carry data-pitr-bytes=%d (or %d):\n%s", d.ID, before, after, row)
	}
	freeRow := regexp.MustCompile(`(?s)data-database-id="` + free.ID + `".*?</tr>`).FindString(list)
	if freeRow == "" || strings.Contains(freeRow, "data-pitr-bytes") {
		t.Errorf("database list: the free database's row shows point-in-time storage:\n%s", freeRow)
	}
}

// TestAPIPointInTime drives the API extensions: point-in-time gives the
// window, restore-to-time answers 202 restoring and restores exactly,
// create-at-time makes a new instance, and refusals are 400 on field time,
// 409 for a paused instance, or 403 for a viewer's key.
func TestAPIPointInTime(t *testing.T) {
	c := mustPITRConsole(t)
	d := c.mustDatabase("ledger", snapdeck.PlanEnterprise)
	c.exec(t, d.ID, "CREATE TABLE t (n INTEGER)")
	first := c.pitrBatch(t, d.ID, 400)
	c.pitrBatch(t, d.ID, 600)
	a := c.mustAPI("member@x")
	base := "/v1/instances/" + d.ID
	for _, tc := range []struct {
		path, body    string
		status        int
		reason, field string
	}{
		{"/restore-to-time", `{}`, 400, "invalid-request", "time"},
		{"/restore-to-time", `{"time":"soon"}`, 400, "invalid-request", "time"},
		{"/restore-to-time", `{"time":12}`, 400, "invalid-request", "time"},
		{"/restore-to-time", `{"time":"2000-01-01T00:00:00Z"}`, 400, "outside-pitr-window", "time"},
		{"/create-at-time", `{"name":"x","type":"free-db","time":"2000-01-01T00:00:00Z"}`, 400, "outside-pitr-window", "time"},
		{"/create-at-time", `{"name":"x","type":"gold","time":"` + first.Format(time.RFC3339) + `"}`, 400, "invalid-request", "type"},
		{"/create-at-time", `{"name":"x","type":"free-db","time":"soon"}`, 400, "invalid-request", "time"},
	} {
		r := a.do("POST", base+tc.path, tc.body)
		e := r.firstError()
		if r.status != tc.status || e["reason"] != tc.reason || e["field"] != tc.field {
			t.Errorf("%s %s: got %d %s, want %d %s on %s", tc.path, tc.body, r.status, r.raw, tc.status, tc.reason, tc.field)
		}
	}
	// A paused instance is busy for a restore, as for a snapshot restore.
	checkInstance(t, "pause", a.do("POST", base+"/pause", ""), http.StatusAccepted)
	if r := a.do("POST", base+"/restore-to-time", `{"time":"`+first.Format(time.RFC3339)+`"}`); r.status != http.StatusConflict ||
		r.firstError()["reason"] != "ongoing-database-operation" {
		t.Errorf("restore-to-time of a paused instance: got %d %s, want 409 ongoing-database-operation", r.status, r.raw)
	}
	checkInstance(t, "resume", a.do("POST", base+"/resume", ""), http.StatusAccepted)
	if got := c.count(t, d.ID); got != "1000 ok" {
		t.Fatalf("after refusals: got %s, want 1000 ok", got)
	}
	viewer := c.mustViewerAPI("demoted@x")
	for _, path := range []string{"/restore-to-time", "/create-at-time"} {
		if r := viewer.do("POST", base+path, `{"name":"x","type":"free-db","time":"`+first.Format(time.RFC3339)+`"}`); r.status != http.StatusForbidden {
			t.Errorf("viewer's key on %s: got %d %s, want 403", path, r.status, r.raw)
		}
	}
	// The window, as the tab shows it; a viewer's key may read it.
	w := viewer.do("GET", base+"/point-in-time", "")
	from, _ := time.Parse(time.RFC3339, fmt.Sprint(w.data()["from"]))
	to, _ := time.Parse(time.RFC3339, fmt.Sprint(w.data()["to"]))
	if w.status != http.StatusOK || w.data()["available"] != true || w.data()["instance_id"] != d.ID ||
		from.IsZero() || from.After(first) || to.Before(first.Add(time.Second)) {
		t.Errorf("point-in-time: got %d %s, want a window holding %s", w.status, w.raw, first.Format(time.RFC3339))
	}
	free := c.mustDatabase("scratch", snapdeck.PlanFree)
	if w := a.do("GET", "/v1/instances/"+free.ID+"/point-in-time", ""); w.status != http.StatusOK ||
		!strings.Contains(w.raw, `"available":false,"from":"","to":""`) {
		t.Errorf("point-in-time of a free instance: got %d %s, want none available", w.status, w.raw)
	}

	mark := c.activity.mark()
	r := checkInstance(t, "restore-to-time", a.do("POST", base+"/restore-to-time", `{"time":"`+first.Format(time.RFC3339)+`"}`), http.StatusAccepted)
	if r["status"] != "restoring" || r["id"] != d.ID {
		t.Fatalf("restore-to-time: got %v, want the instance, restoring", r)
	}
	c.activity.waitFor(t, mark, "api key test key", "restore-to-time")
	if st := a.pollInstance(d.ID, "restoring"); st != "running" {
		t.Fatalf("after restore-to-time: %s, want running", st)
	}
	if got := c.count(t, d.ID); got != "400 ok" {
		t.Errorf("after restore-to-time: got %s, want 400 ok", got)
	}

	mark = c.activity.mark()
	inst := checkInstance(t, "create-at-time", a.do("POST", base+"/create-at-time",
		`{"name":"ledger then","type":"professional-db","time":"`+first.In(time.FixedZone("", 2*60*60)).Format(time.RFC3339)+`"}`), http.StatusAccepted)
	id, _ := inst["id"].(string)
	if inst["status"] != "creating" || inst["name"] != "ledger then" || inst["type"] != "professional-db" || !snapdeck.ValidDatabaseID(id) ||
		inst["username"] != "snapdeck-"+id || inst["password"] == "" || inst["password"] == nil {
		t.Fatalf("create-at-time: got %v, want a new professional instance, creating, with its credentials", inst)
	}
	c.activity.waitFor(t, mark, "api key test key", "database.create-at-time")
	if st := a.pollInstance(id, "creating"); st != "running" {
		t.Fatalf("created at time: %s, want running", st)
	}
	if got := c.count(t, id); got != "400 ok" {
		t.Errorf("created at time: got %s, want 400 ok", got)
	}
}

// mustPITRConsole is mustConsole whose enterprise plan keeps an hour of
// point-in-time history and professional a day, free none, replicated
// every 100 ms.
func mustPITRConsole(t *testing.T) *console {
	t.Helper()
	c := startConsoleWith(t, func(cfg *app.Config) {
		cfg.PITRWindows = map[snapdeck.Plan]time.Duration{snapdeck.PlanProfessional: 24 * time.Hour, snapdeck.PlanEnterprise: time.Hour}
		// 100 ms: the tests wait on Sync, not on the interval, but a
		// short one keeps the replicators' own uploads out of their way.
		cfg.PITRInterval = 100 * time.Millisecond
	})
	c.t = t
	return c
}

// syncPITR makes every commit of database id so far restorable.
func (c *console) syncPITR(t *testing.T, id string) {
	t.Helper()
	if err := c.pitr.Sync(context.Background(), id); err != nil {
		t.Fatalf("sync the point-in-time history of %s: %v", id, err)
	}
}

// TestRestoreToTimeWhileAScriptWrites: one user's script inserts
// numbered rows through the Query tab as fast as it can (past what the
// history's upload keeps up with, so the reads of the WAL upload as they
// go), while another restores the database to a time taken between two of
// the script's commits. The restored database holds exactly the rows
// committed before that time, none of those committed after it and before
// the restore began, and the script's writes go on afterwards (its rows
// after the swap are numbered past those).
func TestRestoreToTimeWhileAScriptWrites(t *testing.T) {
	c := mustPITRConsole(t)
	ctx := context.Background()
	d := c.mustDatabase("ledger", snapdeck.PlanEnterprise)
	c.exec(t, d.ID, "CREATE TABLE t (n INTEGER)")
	var mu sync.Mutex
	committed, refused := 0, 0
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			// The count and the commit move together, so a time taken
			// under mu falls between two commits.
			mu.Lock()
			if _, err := c.databases.Query(ctx, d.ID, fmt.Sprintf("INSERT INTO t VALUES (%d)", committed+1), false); err != nil {
				refused++ // while the restore swaps the file
			} else {
				committed++
			}
			mu.Unlock()
		}
	}()
	time.Sleep(1500 * time.Millisecond)
	// The history tells commits apart to the millisecond (a time covers
	// its millisecond): the time is 2 ms from the commits either side.
	mu.Lock()
	time.Sleep(2 * time.Millisecond)
	at, want := time.Now().UTC(), committed
	time.Sleep(2 * time.Millisecond)
	mu.Unlock()
	time.Sleep(time.Second)
	mu.Lock()
	begun := committed
	mu.Unlock()
	_, j, err := c.snapshots.RestoreToTime(ctx, "admin@x", d.ID, at)
	if err != nil {
		t.Fatal(err)
	}
	if j = c.waitJob(t, j.ID); j.Status != snapdeck.JobSucceeded {
		t.Fatalf("restore to %s: job %s", at.Format(time.RFC3339Nano), j.Status)
	}
	mu.Lock()
	after := committed
	mu.Unlock()
	time.Sleep(300 * time.Millisecond)
	close(stop)
	<-done
	r, err := c.databases.Query(ctx, d.ID, fmt.Sprintf(
		"SELECT (SELECT count(*) FROM t WHERE n <= %d) || ' ' || (SELECT count(*) FROM t WHERE n > %d AND n <= %d) || ' ' || (SELECT integrity_check FROM pragma_integrity_check)",
		want, want, begun), true)
	if err != nil {
		t.Fatal(err)
	}
	if got, w := r.Rows[0][0], fmt.Sprintf("%d 0 ok", want); got != w {
		t.Fatalf("restored to %s, between commits %d and %d: rows up to it, rows after it until the restore began (%d), integrity: got %s, want %s",
			at.Format(time.RFC3339Nano), want, want+1, begun, got, w)
	}
	if committed <= after {
		t.Fatalf("the script committed nothing after the restore (%d commits, %d refused)", committed, refused)
	}
	t.Logf("%d commits before the time, %d when the restore began, %d by its end, %d in all; %d refused", want, begun, after, committed, refused)
}

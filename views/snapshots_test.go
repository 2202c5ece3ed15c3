package views

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/a-h/templ"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

var now = time.Date(2026, 1, 9, 12, 0, 0, 0, time.UTC)

func sampleSnapshots() []snapdeck.Snapshot {
	day := 24 * time.Hour
	return []snapdeck.Snapshot{
		{ID: "5c0ffee0-0000-4000-8000-000000000004", DatabaseID: "a1b2c3d4", Type: snapdeck.SnapshotOnDemand, Reason: "Taken by ann@example.com", Status: snapdeck.SnapshotInProgress, CreatedAt: now.Add(-20 * time.Second)},
		{ID: "5c0ffee0-0000-4000-8000-000000000003", DatabaseID: "a1b2c3d4", Type: snapdeck.SnapshotLoad, Reason: "Loaded orders.dump", Status: snapdeck.SnapshotFailed, CreatedAt: now.Add(-3 * time.Minute), Error: "disk full"},
		{ID: "5c0ffee0-0000-4000-8000-000000000002", DatabaseID: "a1b2c3d4", Type: snapdeck.SnapshotOnDemand, Reason: "Before restore of 2026-01-08 03:00:00 UTC", Status: snapdeck.SnapshotCompleted, CreatedAt: now.Add(-5 * time.Hour), SizeBytes: 5 << 20, ExpiresAt: now.Add(7*day - 5*time.Hour), VerifyError: "checksum mismatch"},
		{ID: "5c0ffee0-0000-4000-8000-000000000001", DatabaseID: "a1b2c3d4", Type: snapdeck.SnapshotScheduled, Reason: "Database created", Status: snapdeck.SnapshotCompleted, CreatedAt: now.Add(-day), SizeBytes: 4 << 20, ExpiresAt: now.Add(6 * day), Verified: true, VerifiedAt: now.Add(-day + time.Minute)},
	}
}

func sampleJob(status snapdeck.JobStatus) snapdeck.Job {
	j := snapdeck.Job{ID: "job-1", Kind: snapdeck.JobRestore, DatabaseID: "a1b2c3d4", Actor: "ann@example.com", Status: status, DoneBytes: 2 << 20, TotalBytes: 5 << 20, Message: "Copying pages", CreatedAt: now, StartedAt: now}
	if status.IsDone() {
		j.FinishedAt = now.Add(3 * time.Second)
	}
	if status == snapdeck.JobFailed {
		j.Error = "The snapshot's data is damaged."
	}
	return j
}

func sampleSnapshotsView() Snapshots {
	return Snapshots{DB: sampleDB(), Snapshots: sampleSnapshots(), Page: 1, Pages: 1, Total: 4, Retention: 7 * 24 * time.Hour, NextScheduled: now.Add(15 * time.Hour), Now: now}
}

func TestSnapshotsTab(t *testing.T) {
	v := sampleSnapshotsView()
	doc := render(t, SnapshotsPage(page(snapdeck.RoleMember), v))
	checkForms(t, "snapshots", doc)

	trs := doc.Find(`tr[data-snapshot-id]`)
	if trs.Length() != len(v.Snapshots) {
		t.Fatalf("got %d snapshot rows, want %d", trs.Length(), len(v.Snapshots))
	}
	for i, s := range v.Snapshots {
		tr := trs.Eq(i)
		for attr, want := range map[string]string{"data-snapshot-id": s.ID, "data-snapshot-type": string(s.Type), "data-snapshot-status": string(s.Status)} {
			if got, _ := tr.Attr(attr); got != want {
				t.Errorf("row %d: got %s %q, want %q", i, attr, got, want)
			}
		}
	}
	var types []string
	trs.Each(func(_ int, tr *goquery.Selection) { types = append(types, tr.AttrOr("data-snapshot-type", "")) })
	if got := strings.Join(types, ","); got != "On-demand,Load,On-demand,Scheduled" {
		t.Errorf("got types %s, want the exact labels On-demand, Load, On-demand, Scheduled", got)
	}

	text := doc.Text()
	for _, w := range []string{"Snapshots are kept for 7 days", "2026-01-10 03:00:00 UTC", "in 15 hours", "2026-01-08 12:00:00 UTC", "1 day ago", "3 minutes ago", "5.0 MiB", "Database created", "2026-01-15", "in 6 days", "4 snapshots"} {
		if !strings.Contains(text, w) {
			t.Errorf("snapshots tab lacks %q", w)
		}
	}
	if doc.Find(`[data-only-latest]`).Length() != 0 {
		t.Error("professional database: shows the free-plan note")
	}

	// Verified: a check with its time, a failure in red, pending, or nothing.
	for i, want := range []string{"", "", "failed", "ok"} {
		if got := trs.Eq(i).Find(`[data-verified]`).AttrOr("data-verified", ""); want != "" && got != want {
			t.Errorf("row %d: got verified %q, want %q", i, got, want)
		}
	}
	if got := trs.Eq(2).Find(`[data-verified=failed]`).Text(); !strings.Contains(got, "failed: checksum mismatch") {
		t.Errorf("row 2: got verified %q, want the verify error", got)
	}
	if got := trs.Eq(1).Find(`[data-snapshot-error]`).Text(); got != "disk full" {
		t.Errorf("failed row: got error %q, want disk full", got)
	}

	// Writers: Take snapshot, and Restore and the menu on completed rows only.
	hasFields(t, "snapshots", form(t, "snapshots", doc, "/databases/a1b2c3d4/snapshots"), "_csrf")
	for i, s := range v.Snapshots {
		tr := trs.Eq(i)
		completed := s.Status == snapdeck.SnapshotCompleted
		base := "/databases/a1b2c3d4/snapshots/" + s.ID
		if got := tr.Find(`a[href="` + base + `/restore"]`).Length(); got != b2i(completed) {
			t.Errorf("row %d (%s): got %d Restore links, want %d", i, s.Status, got, b2i(completed))
		}
		if got := tr.Find(`details[data-snapshot-menu] summary`).Length(); got != b2i(completed) {
			t.Errorf("row %d (%s): got %d menus, want %d", i, s.Status, got, b2i(completed))
		}
		if !completed {
			continue
		}
		if tr.Find(`details a[href="`+base+`/export"][download]`).Length() != 1 {
			t.Errorf("row %d: no Export download link in the menu", i)
		}
		if tr.Find(`details a[href="`+base+`/create-database"]`).Length() != 1 {
			t.Errorf("row %d: no Create database from snapshot link in the menu", i)
		}
	}

	// Viewers: no actions at all.
	doc = render(t, SnapshotsPage(page(snapdeck.RoleViewer), v))
	if doc.Find(`tr[data-snapshot-id]`).Length() != len(v.Snapshots) {
		t.Error("viewer: does not see the snapshots")
	}
	for _, sel := range []string{`form[action="/databases/a1b2c3d4/snapshots"]`, `[data-action=take-snapshot]`, `a[href$="/restore"]`, `a[href$="/export"]`, `a[href$="/create-database"]`, `details[data-snapshot-menu]`} {
		if n := doc.Find(sel).Length(); n != 0 {
			t.Errorf("viewer: got %d of %s, want none", n, sel)
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestSnapshotsFreeAndEmpty(t *testing.T) {
	v := sampleSnapshotsView()
	v.DB.Plan = snapdeck.PlanFree
	v.OnlyLatest = true
	v.Snapshots = v.Snapshots[3:]
	doc := render(t, SnapshotsPage(page(snapdeck.RoleMember), v))
	if got := doc.Find(`[data-only-latest]`).Text(); !strings.Contains(got, "Free databases keep only the latest snapshot; upgrade the plan to keep every snapshot within retention.") {
		t.Errorf("free database: got note %q, want the only-latest note", got)
	}
	if !strings.Contains(doc.Find(`[data-retention]`).Text(), "Snapshots are kept for 7 days") {
		t.Error("free database: no retention")
	}

	v.Snapshots = nil
	v.OnlyLatest = false
	doc = render(t, SnapshotList(page(snapdeck.RoleMember), v))
	if doc.Find(`[data-empty-state]`).Length() != 1 || doc.Find("table").Length() != 0 {
		t.Error("no snapshots: want the empty state and no table")
	}
	v.Type = snapdeck.SnapshotLoad
	doc = render(t, SnapshotList(page(snapdeck.RoleMember), v))
	if doc.Find(`[data-empty-state] a[href="/databases/a1b2c3d4/snapshots"]`).Length() != 1 {
		t.Error("no Load snapshots: no link back to every type")
	}
}

func TestSnapshotsFilterAndPages(t *testing.T) {
	v := sampleSnapshotsView()
	v.Type = snapdeck.SnapshotOnDemand
	v.Page, v.Pages = 2, 3
	doc := render(t, SnapshotsPage(page(snapdeck.RoleMember), v))
	filter := doc.Find(`[data-type-filter]`)
	for _, href := range []string{"/databases/a1b2c3d4/snapshots", "/databases/a1b2c3d4/snapshots?type=Scheduled", "/databases/a1b2c3d4/snapshots?type=Load", "/databases/a1b2c3d4/snapshots?type=On-demand"} {
		if filter.Find(`a[href="`+href+`"]`).Length() != 1 {
			t.Errorf("filter: no link to %s", href)
		}
	}
	if got := filter.Find(`a[aria-current=page]`).Text(); got != "On-demand" {
		t.Errorf("filter: got active %q, want On-demand", got)
	}
	pg := doc.Find(`[data-pagination]`)
	for _, href := range []string{"page=1&type=On-demand", "page=3&type=On-demand"} {
		if pg.Find(`a[href="/databases/a1b2c3d4/snapshots?`+href+`"]`).Length() == 0 {
			t.Errorf("pagination: no link to ?%s", href)
		}
	}
	if !strings.Contains(pg.Text(), "Page 2 of 3") {
		t.Errorf("pagination: got %q, want Page 2 of 3", pg.Text())
	}
	v.Pages = 1
	if render(t, SnapshotList(page(snapdeck.RoleMember), v)).Find(`[data-pagination]`).Length() != 0 {
		t.Error("one page: shows pagination")
	}
}

func TestSnapshotListPollsWhileJobsRun(t *testing.T) {
	v := sampleSnapshotsView()
	v.Snapshots = v.Snapshots[2:] // completed only
	v.Type = snapdeck.SnapshotScheduled
	doc := render(t, SnapshotList(page(snapdeck.RoleMember), v))
	if _, ok := doc.Find(`#snapshot-list`).Attr("hx-get"); ok {
		t.Error("nothing running: the list polls")
	}
	if doc.Find(`[data-jobs]`).Length() != 0 {
		t.Error("nothing running: shows the jobs box")
	}

	v.Jobs = []snapdeck.Job{sampleJob(snapdeck.JobRunning)}
	doc = render(t, SnapshotList(page(snapdeck.RoleMember), v))
	list := doc.Find(`#snapshot-list`)
	if got := list.AttrOr("hx-get", ""); got != "/databases/a1b2c3d4/snapshots?page=1&type=Scheduled" {
		t.Errorf("got hx-get %q, want the list's own address", got)
	}
	if list.AttrOr("hx-trigger", "") != "every 2s" || list.AttrOr("hx-swap", "") != "outerHTML" {
		t.Error("running job: the list does not replace itself every 2s")
	}
	job := doc.Find(`[data-jobs] [data-job-id=job-1]`)
	if job.Find(`a[href="/jobs/job-1"]`).Text() != "Restoring orders" {
		t.Errorf("job: got %q, want a link named Restoring orders", job.Find("a").Text())
	}
	checkProgress(t, "jobs box", job, "40")
	if doc.Find(`[data-jobs] a[data-action=refresh]`).Length() != 1 {
		t.Error("running job: no Refresh link for browsers without JavaScript")
	}
	if doc.Find(`nav[aria-label=Main]`).Length() != 0 {
		t.Error("SnapshotList: renders the layout")
	}
}

// checkProgress asserts an accessible progress bar with percent and bytes.
func checkProgress(t *testing.T, name string, s *goquery.Selection, percent string) {
	t.Helper()
	bar := s.Find(`[role=progressbar]`)
	if bar.Length() != 1 {
		t.Fatalf("%s: got %d progress bars, want 1", name, bar.Length())
	}
	if got := bar.AttrOr("aria-valuenow", ""); got != percent {
		t.Errorf("%s: got aria-valuenow %q, want %q", name, got, percent)
	}
	if bar.AttrOr("aria-label", "") == "" || bar.AttrOr("aria-valuemax", "") != "100" {
		t.Errorf("%s: progress bar without a label or range", name)
	}
	if got := s.Find(`[data-percent]`).Text(); got != percent+"%" {
		t.Errorf("%s: got percent %q, want %s%%", name, got, percent)
	}
	if got := s.Find(`[data-bytes]`).Text(); got != "2.0 MiB / 5.0 MiB" {
		t.Errorf("%s: got bytes %q, want 2.0 MiB / 5.0 MiB", name, got)
	}
}

func TestRestorePage(t *testing.T) {
	v := Restore{DB: sampleDB(), Snapshot: sampleSnapshots()[3], Confirm: "restore", Error: "Type RESTORE in capital letters to continue."}
	doc := render(t, RestorePage(page(snapdeck.RoleMember), v))
	checkForms(t, "restore", doc)
	f := form(t, "restore", doc, "/databases/a1b2c3d4/snapshots/"+v.Snapshot.ID+"/restore")
	hasFields(t, "restore", f, "confirm", "_csrf")
	in := f.Find(`input[name=confirm]`)
	if in.AttrOr("value", "") != "restore" || in.AttrOr("autocomplete", "") != "off" || in.AttrOr("aria-invalid", "") != "true" {
		t.Errorf("restore: confirm input %v does not re-show the mistake with autocomplete off", in.Nodes[0].Attr)
	}
	if !strings.Contains(f.Find(`label[for=restore-confirm]`).Text(), "Type RESTORE to confirm") {
		t.Error("restore: no Type RESTORE to confirm label")
	}
	if !strings.Contains(f.Text(), v.Error) {
		t.Error("restore: error not shown")
	}
	if _, disabled := f.Find(`button[type=submit]`).Attr("disabled"); disabled {
		t.Error("restore: the submit button is disabled")
	}
	warn := strings.Join(strings.Fields(doc.Find(`[data-restore-warning]`).Text()), " ")
	for _, w := range []string{"overwrites ALL data in database orders (a1b2c3d4)", "snapshot taken 2026-01-08 12:00:00 UTC (Scheduled, Database created)", "safety snapshot", "undone"} {
		if !strings.Contains(warn, w) {
			t.Errorf("restore: warning %q lacks %q", warn, w)
		}
	}
	if doc.Find(`a[href="/databases/a1b2c3d4/snapshots"][data-action=cancel]`).Length() != 1 {
		t.Error("restore: no Cancel link back to the tab")
	}
}

func TestCreateFromSnapshotPage(t *testing.T) {
	v := CreateFromSnapshot{DB: sampleDB(), Snapshot: sampleSnapshots()[3], Name: "orders-copy", Plan: snapdeck.PlanEnterprise, Error: "A database named orders-copy exists already."}
	doc := render(t, CreateFromSnapshotPage(page(snapdeck.RoleMember), v))
	checkForms(t, "create from snapshot", doc)
	f := form(t, "create from snapshot", doc, "/databases/a1b2c3d4/snapshots/"+v.Snapshot.ID+"/create-database")
	hasFields(t, "create from snapshot", f, "name", "plan", "_csrf")
	if f.Find(`input[name=name]`).AttrOr("value", "") != "orders-copy" {
		t.Error("create from snapshot: name not prefilled")
	}
	if f.Find(`select[name=plan] option[selected]`).AttrOr("value", "") != "enterprise" {
		t.Error("create from snapshot: plan not prefilled")
	}
	text := f.Text()
	for _, w := range []string{v.Error, "untouched", "2026-01-08 12:00:00 UTC"} {
		if !strings.Contains(text, w) {
			t.Errorf("create from snapshot: form lacks %q", w)
		}
	}
}

func TestJobProgress(t *testing.T) {
	running := JobView{Job: sampleJob(snapdeck.JobRunning), DB: sampleDB(), Next: "/databases/a1b2c3d4/snapshots", NextText: "Back to snapshots"}
	doc := render(t, JobProgress(running))
	root := doc.Find(`#job-progress`)
	if root.AttrOr("hx-get", "") != "/jobs/job-1" || root.AttrOr("hx-trigger", "") != "every 1s" || root.AttrOr("hx-swap", "") != "outerHTML" {
		t.Error("running: JobProgress does not poll /jobs/job-1 every 1s")
	}
	checkProgress(t, "running", doc.Selection, "40")
	if doc.Find(`[data-action=next]`).Length() != 0 {
		t.Error("running: shows the Next button")
	}

	var buf bytes.Buffer
	if err := JobPage(page(snapdeck.RoleMember), running).Render(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `<noscript><meta http-equiv="refresh" content="2"></noscript>`) {
		t.Error("running: JobPage has no refresh for browsers without JavaScript")
	}
	if got := render(t, JobPage(page(snapdeck.RoleMember), running)).Find("h1").Text(); got != "Restoring orders" {
		t.Errorf("got title %q, want Restoring orders", got)
	}

	done := running
	done.Job = sampleJob(snapdeck.JobSucceeded)
	doc = render(t, JobProgress(done))
	if _, ok := doc.Find(`#job-progress`).Attr("hx-get"); ok {
		t.Error("succeeded: JobProgress still polls")
	}
	if next := doc.Find(`a[data-action=next]`); next.AttrOr("href", "") != done.Next || strings.TrimSpace(next.Text()) != done.NextText {
		t.Error("succeeded: no button to Next")
	}
	buf.Reset()
	if err := JobPage(page(snapdeck.RoleMember), done).Render(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), `http-equiv="refresh"`) {
		t.Error("succeeded: JobPage still refreshes itself")
	}

	failed := running
	failed.Job = sampleJob(snapdeck.JobFailed)
	doc = render(t, JobProgress(failed))
	if _, ok := doc.Find(`#job-progress`).Attr("hx-get"); ok {
		t.Error("failed: JobProgress still polls")
	}
	if !strings.Contains(doc.Find(`[data-job-error][role=alert]`).Text(), "damaged") {
		t.Error("failed: error not shown as an alert")
	}
	if doc.Find(`[data-action=next]`).Length() != 0 {
		t.Error("failed: shows the Next button")
	}

	for _, tc := range []struct {
		job  snapdeck.Job
		want string
	}{
		{snapdeck.Job{Kind: snapdeck.JobSnapshot}, "Taking snapshot"},
		{snapdeck.Job{Kind: snapdeck.JobExport}, "Preparing export"},
		{snapdeck.Job{Kind: snapdeck.JobCreateFromSnapshot, SnapshotID: "s1"}, "Creating database from snapshot"},
		{snapdeck.Job{Kind: snapdeck.JobCreateFromSnapshot}, "Creating database at a point in time"},
		{snapdeck.Job{Kind: snapdeck.JobLoad}, "Loading"},
	} {
		if got := jobTitle(tc.job, sampleDB()); got != tc.want {
			t.Errorf("%s (snapshot %q): got title %q, want %q", tc.job.Kind, tc.job.SnapshotID, got, tc.want)
		}
	}
}

func TestActivityPage(t *testing.T) {
	v := Activity{
		Events: []snapdeck.Event{
			{ID: 2, At: now, Actor: "ann@example.com", Action: "restore", DatabaseID: "a1b2c3d4", SnapshotID: "5c0ffee0-0000-4000-8000-000000000001", Outcome: snapdeck.OutcomeOK, Detail: "Restored the snapshot of 2026-01-08 12:00:00 UTC", Duration: 2500 * time.Millisecond},
			{ID: 1, At: now.Add(-time.Hour), Actor: "bob@example.com", Action: "restore", DatabaseID: "a1b2c3d4", Outcome: snapdeck.OutcomeRefused, Detail: "Confirmation was not RESTORE"},
		},
		DatabaseID: "a1b2c3d4",
		Databases:  []snapdeck.Database{sampleDB()},
		Page:       1,
		Pages:      2,
	}
	p := page(snapdeck.RoleViewer)
	doc := render(t, ActivityPage(p, v))
	if got := doc.Find(`nav[aria-label=Main] a[aria-current=page]`).Text(); got != "Activity" {
		t.Errorf("got active nav %q, want Activity", got)
	}
	rows := doc.Find(`tr[data-event-id]`)
	if rows.Length() != 2 {
		t.Fatalf("got %d event rows, want 2", rows.Length())
	}
	first := rows.Eq(0).Text()
	for _, w := range []string{"2026-01-09 12:00:00 UTC", "ann@example.com", "restore", "orders", "5c0ffee0", "ok", "2.50 s"} {
		if !strings.Contains(first, w) {
			t.Errorf("event row: got %q, want %q in it", first, w)
		}
	}
	if rows.Eq(0).Find(`a[href="/databases/a1b2c3d4"]`).Length() != 1 {
		t.Error("event row: no link to the database")
	}
	if rows.Eq(1).AttrOr("data-event-outcome", "") != "refused" {
		t.Error("event row: outcome not carried")
	}
	f := doc.Find(`form[method=get][action="/activity"]`)
	if f.Find(`select[name=database] option[selected]`).AttrOr("value", "") != "a1b2c3d4" || f.Find(`option[value=""]`).Text() != "All databases" {
		t.Error("activity: filter does not keep the database or offer All databases")
	}
	if f.Find(`label[for=activity-database]`).Length() != 1 {
		t.Error("activity: filter has no label")
	}
	if doc.Find(`[data-pagination] a[href="/activity?database=a1b2c3d4&page=2"]`).Length() == 0 {
		t.Error("activity: no link to page 2 of the filtered log")
	}
}

func TestSnapshotFormats(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{7 * 24 * time.Hour, "7 days"},
		{24 * time.Hour, "1 day"},
		{36 * time.Hour, "1 day 12 hours"},
		{2160 * time.Hour, "90 days"},
		{time.Hour, "1 hour"},
		{30 * time.Minute, "30 minutes"},
	} {
		if got := days(tc.d); got != tc.want {
			t.Errorf("days(%v): got %q, want %q", tc.d, got, tc.want)
		}
	}
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{now.Add(-10 * time.Second), "just now"},
		{now.Add(-time.Minute), "1 minute ago"},
		{now.Add(-3 * time.Minute), "3 minutes ago"},
		{now.Add(-5 * time.Hour), "5 hours ago"},
		{now.Add(-24 * time.Hour), "1 day ago"},
		{now.Add(6 * 24 * time.Hour), "in 6 days"},
		{now.Add(15 * time.Hour), "in 15 hours"},
	} {
		if got := relative(tc.t, now); got != tc.want {
			t.Errorf("relative(%v): got %q, want %q", now.Sub(tc.t), got, tc.want)
		}
	}
}

// snapshotPreviews are the snapshot pages with sample data, for previews.
func snapshotPreviews() map[string]templ.Component {
	p := page(snapdeck.RoleMember)
	v := sampleSnapshotsView()
	v.Jobs = []snapdeck.Job{sampleJob(snapdeck.JobRunning)}
	v.Pages, v.Total = 3, 123
	free := sampleSnapshotsView()
	free.DB.Plan, free.OnlyLatest, free.Snapshots = snapdeck.PlanFree, true, free.Snapshots[3:]
	done := JobView{Job: sampleJob(snapdeck.JobSucceeded), DB: sampleDB(), Next: "/databases/a1b2c3d4/snapshots", NextText: "Back to snapshots"}
	act := Activity{Databases: []snapdeck.Database{sampleDB()}, Page: 1, Pages: 2, Events: []snapdeck.Event{
		{ID: 3, At: time.Now().Add(-2 * time.Minute), Actor: "ann@example.com", Action: "restore", DatabaseID: "a1b2c3d4", SnapshotID: "5c0ffee0-0000-4000-8000-000000000001", Outcome: snapdeck.OutcomeOK, Detail: "Restored the snapshot of 2026-01-08 12:00:00 UTC", Duration: 2500 * time.Millisecond},
		{ID: 2, At: time.Now().Add(-5 * time.Minute), Actor: "bob@example.com", Action: "restore", DatabaseID: "a1b2c3d4", Outcome: snapdeck.OutcomeRefused, Detail: "Confirmation was not RESTORE"},
		{ID: 1, At: time.Now().Add(-time.Hour), Actor: "system", Action: "snapshot.take", DatabaseID: "a1b2c3d4", SnapshotID: "5c0ffee0-0000-4000-8000-000000000002", Outcome: snapdeck.OutcomeStarted, Duration: 95 * time.Second},
	}}
	return map[string]templ.Component{
		"snapshots":        SnapshotsPage(p, v),
		"snapshots-viewer": SnapshotsPage(page(snapdeck.RoleViewer), sampleSnapshotsView()),
		"snapshots-free":   SnapshotsPage(p, free),
		"restore":          RestorePage(p, Restore{DB: sampleDB(), Snapshot: sampleSnapshots()[3], Confirm: "restore", Error: "Type RESTORE in capital letters to continue."}),
		"create-from":      CreateFromSnapshotPage(p, CreateFromSnapshot{DB: sampleDB(), Snapshot: sampleSnapshots()[3], Name: "orders-copy", Plan: snapdeck.PlanProfessional}),
		"job":              JobPage(p, JobView{Job: sampleJob(snapdeck.JobRunning), DB: sampleDB()}),
		"job-done":         JobPage(p, done),
		"job-failed":       JobPage(p, JobView{Job: sampleJob(snapdeck.JobFailed), DB: sampleDB()}),
		"activity":         ActivityPage(withNav(p, "activity"), act),
	}
}

// TestSnapshotsPreview writes the snapshot pages, like TestPreview, into
// $SNAPDECK_PREVIEW_DIR; without it, it is skipped.
func TestSnapshotsPreview(t *testing.T) {
	dir := os.Getenv("SNAPDECK_PREVIEW_DIR")
	if dir == "" {
		t.Skip("set SNAPDECK_PREVIEW_DIR to write page previews")
	}
	css, err := os.ReadFile("../static/css/app.css")
	if err != nil {
		t.Fatal(err)
	}
	link := regexp.MustCompile(`<link rel="stylesheet" href="[^"]*">`)
	for name, c := range snapshotPreviews() {
		var buf bytes.Buffer
		if err := c.Render(context.Background(), &buf); err != nil {
			t.Fatal(err)
		}
		out := link.ReplaceAll(buf.Bytes(), []byte("<style>"+string(css)+"</style>"))
		if err := os.WriteFile(filepath.Join(dir, name+".html"), out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

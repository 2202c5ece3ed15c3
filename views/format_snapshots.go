package views

import (
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/views/ui"
)

// snapshotTypes are the SNAPSHOTS tab's type filters, in the order shown.
var snapshotTypes = []snapdeck.SnapshotType{snapdeck.SnapshotScheduled, snapdeck.SnapshotLoad, snapdeck.SnapshotOnDemand}

// utcSeconds renders a time in UTC to the second; the zero time as an em dash.
func utcSeconds(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// utcDate renders the UTC day of a time; the zero time as an em dash.
func utcDate(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02")
}

// days renders a retention or cadence in days and hours: "7 days",
// "1 day 12 hours", "6 hours", "30 minutes", "15 seconds".
func days(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d >= day:
		s := plural(int64(d/day), "day", "days")
		if h := int64(d % day / time.Hour); h > 0 {
			s += " " + plural(h, "hour", "hours")
		}
		return s
	case d >= time.Hour:
		return plural(int64(d/time.Hour), "hour", "hours")
	case d >= time.Minute:
		return plural(int64(d/time.Minute), "minute", "minutes")
	default:
		return plural(max(int64(d/time.Second), 0), "second", "seconds")
	}
}

// relative renders t against now the way people say it: "just now",
// "3 minutes ago", "in 6 days".
func relative(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < 45*time.Second:
		return "just now"
	case d < 59*time.Minute+30*time.Second:
		s = plural(max(int64((d+30*time.Second)/time.Minute), 1), "minute", "minutes")
	case d < 22*time.Hour:
		s = plural(int64((d+30*time.Minute)/time.Hour), "hour", "hours")
	default:
		s = plural(int64((d+12*time.Hour)/(24*time.Hour)), "day", "days")
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

// nowOr is now, or the wall clock when the handler gave no time.
func nowOr(now time.Time) time.Time {
	if now.IsZero() {
		return time.Now()
	}
	return now
}

// retention is the tab's retention, or the plan default when the handler
// gave none.
func retention(v Snapshots) time.Duration {
	if v.Retention > 0 {
		return v.Retention
	}
	return snapdeck.DefaultPolicies()[v.DB.Plan].Retention
}

// retentionNote is the SNAPSHOTS tab's retention line.
func retentionNote(v Snapshots) string {
	r := retention(v)
	if r <= 0 {
		return ""
	}
	return "Snapshots are kept for " + days(r) + "."
}

// snapshotSummary is a snapshot's type and reason: "Scheduled, Database created".
func snapshotSummary(s snapdeck.Snapshot) string {
	if s.Reason == "" {
		return string(s.Type)
	}
	return string(s.Type) + ", " + s.Reason
}

// snapshotTone picks a badge colour for a snapshot status.
func snapshotTone(s snapdeck.SnapshotStatus) ui.Tone {
	switch s {
	case snapdeck.SnapshotCompleted:
		return ui.Success
	case snapdeck.SnapshotPending, snapdeck.SnapshotInProgress:
		return ui.Info
	case snapdeck.SnapshotFailed:
		return ui.Failure
	}
	return ui.Neutral
}

// isSnapshotBusy reports whether a snapshot is still being taken.
func isSnapshotBusy(s snapdeck.Snapshot) bool {
	return s.Status == snapdeck.SnapshotPending || s.Status == snapdeck.SnapshotInProgress
}

// unfinishedJobs are the jobs still queued or running.
func unfinishedJobs(jobs []snapdeck.Job) []snapdeck.Job {
	var out []snapdeck.Job
	for _, j := range jobs {
		if !j.Status.IsDone() {
			out = append(out, j)
		}
	}
	return out
}

// isListBusy reports whether the SNAPSHOTS list is waiting on work, so it
// asks for itself again while JavaScript is on.
func isListBusy(v Snapshots) bool {
	if len(unfinishedJobs(v.Jobs)) > 0 {
		return true
	}
	for _, s := range v.Snapshots {
		if isSnapshotBusy(s) {
			return true
		}
	}
	return false
}

// snapshotsURL is the SNAPSHOTS tab filtered by typ at page n; n < 1 and an
// empty typ are left out.
func snapshotsURL(db snapdeck.Database, typ snapdeck.SnapshotType, n int) string {
	q := url.Values{}
	if n > 0 {
		q.Set("page", strconv.Itoa(n))
	}
	if typ != "" {
		q.Set("type", string(typ))
	}
	u := dbURL(db, "snapshots")
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// currentPage is the 1-based page, at least 1.
func currentPage(n int) int { return max(n, 1) }

// snapshotURL is the path of an action on one snapshot: "restore",
// "export" or "create-database".
func snapshotURL(db snapdeck.Database, s snapdeck.Snapshot, action string) string {
	return dbURL(db, "snapshots") + "/" + s.ID + "/" + action
}

// jobURL is a job's progress page.
func jobURL(j snapdeck.Job) string { return "/jobs/" + j.ID }

// jobTitle says what a job does, as a heading.
func jobTitle(j snapdeck.Job, db snapdeck.Database) string {
	switch j.Kind {
	case snapdeck.JobRestore:
		if db.Name != "" {
			return "Restoring " + db.Name
		}
		return "Restoring"
	case snapdeck.JobOverwrite:
		if db.Name != "" {
			return "Overwriting " + db.Name
		}
		return "Overwriting"
	case snapdeck.JobSnapshot:
		return "Taking snapshot"
	case snapdeck.JobExport:
		return "Preparing export"
	case snapdeck.JobCreateFromSnapshot:
		// A copy made at a point in time has no snapshot.
		if j.SnapshotID == "" {
			return "Creating database at a point in time"
		}
		return "Creating database from snapshot"
	case snapdeck.JobLoad:
		return "Loading"
	case snapdeck.JobVerify:
		return "Verifying snapshot"
	}
	return string(j.Kind)
}

// jobSubtitle names the database a job works on.
func jobSubtitle(v JobView) string {
	if v.DB.ID == "" {
		return ""
	}
	return "Database " + v.DB.Name + " (" + v.DB.ID + ")"
}

// nextText is the label of the button that leaves a succeeded job.
func nextText(v JobView) string {
	if v.NextText != "" {
		return v.NextText
	}
	return "Continue"
}

// jobTone picks a badge colour for a job status.
func jobTone(s snapdeck.JobStatus) ui.Tone {
	switch s {
	case snapdeck.JobSucceeded:
		return ui.Success
	case snapdeck.JobRunning:
		return ui.Info
	case snapdeck.JobFailed:
		return ui.Failure
	}
	return ui.Neutral
}

// jobBytes renders a job's progress in bytes: "1.2 MiB / 5.0 MiB".
func jobBytes(j snapdeck.Job) string {
	if j.TotalBytes <= 0 {
		return humanBytes(j.DoneBytes)
	}
	return humanBytes(j.DoneBytes) + " / " + humanBytes(j.TotalBytes)
}

// jobValueText is what a screen reader says of a job's progress bar.
func jobValueText(j snapdeck.Job) string {
	if j.TotalBytes <= 0 {
		return fmt.Sprintf("%d%%, %s", j.Percent(), humanBytes(j.DoneBytes))
	}
	return fmt.Sprintf("%d%%, %s of %s", j.Percent(), humanBytes(j.DoneBytes), humanBytes(j.TotalBytes))
}

// percentWidth is the inline width of a progress bar's fill.
func percentWidth(n int) string { return "width: " + strconv.Itoa(n) + "%" }

// jobElapsed is how long a finished job ran; empty while it runs.
func jobElapsed(j snapdeck.Job) string {
	if j.StartedAt.IsZero() || j.FinishedAt.IsZero() {
		return ""
	}
	return duration(j.FinishedAt.Sub(j.StartedAt))
}

// outcomeTone picks a badge colour for an activity outcome.
func outcomeTone(o snapdeck.Outcome) ui.Tone {
	switch o {
	case snapdeck.OutcomeOK:
		return ui.Success
	case snapdeck.OutcomeFailed:
		return ui.Failure
	case snapdeck.OutcomeRefused:
		return ui.Warning
	case snapdeck.OutcomeStarted:
		return ui.Info
	}
	return ui.Neutral
}

// activityURL is the activity log filtered by database at page n.
func activityURL(databaseID string, n int) string {
	q := url.Values{}
	q.Set("page", strconv.Itoa(n))
	if databaseID != "" {
		q.Set("database", databaseID)
	}
	return "/activity?" + q.Encode()
}

// databaseOptions are the choices of the activity log's database filter.
func databaseOptions(dbs []snapdeck.Database) []ui.Option {
	opts := []ui.Option{{Value: "", Label: "All databases"}}
	for _, db := range dbs {
		opts = append(opts, ui.Option{Value: db.ID, Label: db.Name + " (" + db.ID + ")"})
	}
	return opts
}

// databaseName is the name of the database with id, or the id when it is
// not among dbs (deleted since).
func databaseName(dbs []snapdeck.Database, id string) string {
	for _, db := range dbs {
		if db.ID == id {
			return db.Name
		}
	}
	return id
}

// shortID is the first 8 characters of a snapshot or job id.
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// eventDuration renders an event's duration; zero as an em dash.
func eventDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "—"
	case d >= time.Minute:
		return fmt.Sprintf("%d min %d s", int(d/time.Minute), int(d%time.Minute/time.Second))
	}
	return duration(d)
}

// withNav is p with the top navigation entry nav marked active.
func withNav(p Page, nav string) Page {
	p.Nav = nav
	return p
}

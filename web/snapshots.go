package web

import (
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/views"
)

// snapshotsPerPage keeps the tab fast with thousands of snapshots.
const snapshotsPerPage = 50

func (s *Server) snapshotsView(c echo.Context, d snapdeck.Database) (views.Snapshots, error) {
	ctx := c.Request().Context()
	v := views.Snapshots{DB: d, Type: snapdeck.SnapshotType(c.QueryParam("type")), Now: s.deps.Now().UTC(),
		OnlyLatest: d.Plan == snapdeck.PlanFree, Retention: s.deps.Snapshots.Policy(d.Plan).Retention}
	if !v.Type.Valid() {
		v.Type = ""
	}
	v.Page, _ = strconv.Atoi(c.QueryParam("page"))
	v.Page = max(v.Page, 1)
	list, total, err := s.deps.Snapshots.FindSnapshots(ctx, snapdeck.SnapshotFilter{DatabaseID: d.ID, Type: v.Type,
		Limit: snapshotsPerPage, Offset: (v.Page - 1) * snapshotsPerPage})
	if err != nil {
		return v, err
	}
	v.Snapshots, v.Total = list, total
	v.Pages = max(1, (total+snapshotsPerPage-1)/snapshotsPerPage)
	jobs, err := s.deps.Snapshots.FindOpenJobs(ctx, d.ID)
	if err != nil {
		return v, err
	}
	for _, j := range jobs {
		if j.Kind != snapdeck.JobVerify {
			v.Jobs = append(v.Jobs, j)
		}
	}
	if s.deps.NextSnapshot != nil {
		v.NextScheduled = s.deps.NextSnapshot(d)
	}
	v.PITR, err = s.pitrView(ctx, d)
	return v, err
}

func (s *Server) snapshots(c echo.Context) error {
	d, err := s.database(c)
	if err != nil {
		return err
	}
	v, err := s.snapshotsView(c, d)
	if err != nil {
		return err
	}
	p := s.page(c, d.Name+" · Snapshots", "databases")
	if isPartial(c) {
		return render(c, http.StatusOK, views.SnapshotList(p, v))
	}
	return render(c, http.StatusOK, views.SnapshotsPage(p, v))
}

func (s *Server) takeSnapshot(c echo.Context) error {
	d, err := s.database(c)
	if err != nil {
		return err
	}
	who := actor(c)
	_, _, err = s.deps.Snapshots.TakeSnapshot(c.Request().Context(), d.ID, snapdeck.SnapshotOnDemand, "Taken by "+who, who)
	if err != nil {
		return err
	}
	if isPartial(c) {
		v, err := s.snapshotsView(c, d)
		if err != nil {
			return err
		}
		return render(c, http.StatusOK, views.SnapshotList(s.page(c, d.Name, "databases"), v))
	}
	s.flash(c, "ok", "Snapshot started; it appears in the list as it completes.")
	return c.Redirect(http.StatusSeeOther, "/databases/"+d.ID+"/snapshots")
}

// snapshot finds the database and the snapshot named in the path.
func (s *Server) snapshot(c echo.Context) (snapdeck.Database, snapdeck.Snapshot, error) {
	d, err := s.database(c)
	if err != nil {
		return d, snapdeck.Snapshot{}, err
	}
	snap, err := s.deps.Snapshots.FindSnapshot(c.Request().Context(), d.ID, c.Param("sid"))
	return d, snap, err
}

func (s *Server) exportSnapshot(c echo.Context) error {
	exp, err := s.deps.Snapshots.Export(c.Request().Context(), c.Param("id"), c.Param("sid"), actor(c))
	if err != nil {
		return err
	}
	return serveDump(c, exp)
}

// serveDump answers with a prepared export as a .dump download, and
// closes it when the download ends; the console and the API's export
// extension share it.
func serveDump(c echo.Context, exp *database.Export) error {
	defer exp.Close()
	h := c.Response().Header()
	h.Set(echo.HeaderContentDisposition, fmt.Sprintf("attachment; filename=%q", exp.Name))
	h.Set(echo.HeaderContentType, "application/zstd")
	// Downloads are never cached (Cache-Control: no-store), so a 304 is of
	// no use to anyone, and on the API it is outside SPEC §8's statuses.
	r := c.Request()
	r.Header.Del("If-None-Match")
	r.Header.Del("If-Modified-Since")
	if !exp.Prepared() && (r.Method != http.MethodGet || r.Header.Get("Range") != "") {
		// A part of the file, or its size, is known only once it is
		// whole.
		if err := exp.Wait(); err != nil {
			return err
		}
	}
	if !exp.Prepared() {
		// Streamed as it is prepared, with no length yet: the download
		// and the preparation overlap. A preparation that fails part way
		// cuts the connection, so that no client takes a short file for a
		// whole one.
		c.Response().WriteHeader(http.StatusOK)
		if _, err := io.Copy(c.Response(), exp); err != nil {
			panic(http.ErrAbortHandler) // the job's failure is logged by the job runner
		}
		return nil
	}
	// ServeContent answers Range requests, so a broken download resumes.
	// What it refuses (a Range past the end, a failed If-Match) it would
	// answer itself in text/plain; held back, it goes to errors.go.
	w := &heldRefusal{ResponseWriter: c.Response()}
	http.ServeContent(w, r, exp.Name, exp.ModTime, exp)
	if w.status != 0 {
		return &echo.HTTPError{Code: w.status}
	}
	return nil
}

// heldRefusal passes an answer through unless it is an error, whose status
// it keeps and whose body it drops, so the handler can return it as an
// error instead.
type heldRefusal struct {
	http.ResponseWriter
	status int
}

func (w *heldRefusal) WriteHeader(code int) {
	if code >= http.StatusBadRequest {
		w.status = code
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *heldRefusal) Write(b []byte) (int, error) {
	if w.status != 0 {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *heldRefusal) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) restoreForm(c echo.Context) error {
	d, snap, err := s.snapshot(c)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.RestorePage(s.page(c, "Restore "+d.Name, "databases"), views.Restore{DB: d, Snapshot: snap}))
}

// restore proceeds only on the exact text RESTORE, checked by the service
// whatever the browser did; anything else re-shows the form and changes
// nothing.
func (s *Server) restore(c echo.Context) error {
	d, snap, err := s.snapshot(c)
	if err != nil {
		return err
	}
	typed := c.FormValue("confirm")
	_, j, err := s.deps.Snapshots.RestoreTyped(c.Request().Context(), d.ID, snap.ID, typed, actor(c))
	if e, ok := snapdeck.AsError(err); ok && e.Field == "confirm" {
		return render(c, http.StatusBadRequest, views.RestorePage(s.page(c, "Restore "+d.Name, "databases"), views.Restore{
			DB: d, Snapshot: snap, Confirm: typed, Error: e.Message}))
	}
	if err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/jobs/"+j.ID)
}

func (s *Server) createFromSnapshotForm(c echo.Context) error {
	d, snap, err := s.snapshot(c)
	if err != nil {
		return err
	}
	v := views.CreateFromSnapshot{DB: d, Snapshot: snap, Plan: d.Plan,
		Name: suggestedName(fmt.Sprintf("%s-%s", d.Name, snap.CreatedAt.UTC().Format("20060102-1504")))}
	return render(c, http.StatusOK, views.CreateFromSnapshotPage(s.page(c, "Create database from snapshot", "databases"), v))
}

func (s *Server) createFromSnapshot(c echo.Context) error {
	d, snap, err := s.snapshot(c)
	if err != nil {
		return err
	}
	name, plan := c.FormValue("name"), snapdeck.Plan(c.FormValue("plan"))
	out, err := s.deps.Databases.Create(c.Request().Context(), actor(c),
		database.CreateRequest{Name: name, Plan: plan, FromDatabase: d.ID, FromSnapshot: snap.ID})
	if snapdeck.ErrorCode(err) == snapdeck.Invalid {
		return render(c, http.StatusBadRequest, views.CreateFromSnapshotPage(s.page(c, "Create database from snapshot", "databases"),
			views.CreateFromSnapshot{DB: d, Snapshot: snap, Name: name, Plan: plan, Error: snapdeck.ErrorMessage(err)}))
	}
	if err != nil {
		return err
	}
	// The new database's page shows its credentials once it is opened.
	if err := s.keepCredentials(c, out.Credentials); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/jobs/"+out.Job.ID)
}

// suggestedName is a name a create form proposes, cut to the 64
// characters a database name may have.
func suggestedName(name string) string {
	if r := []rune(name); len(r) > 64 {
		return string(r[:64])
	}
	return name
}

func (s *Server) jobPage(c echo.Context) error {
	ctx := c.Request().Context()
	j, err := s.deps.Snapshots.FindJob(ctx, c.Param("jid"))
	if err != nil {
		return err
	}
	v := views.JobView{Job: j}
	if d, err := s.deps.Databases.Find(ctx, j.DatabaseID); err == nil {
		v.DB = d
	}
	if j.Status == snapdeck.JobSucceeded {
		switch j.Kind {
		case snapdeck.JobCreateFromSnapshot:
			v.Next, v.NextText = "/databases/"+j.TargetID, "Open the new database"
		case snapdeck.JobExport:
			// The prepared file stays in the export cache: a download
			// begun later, or resumed, is served from it.
			v.Next, v.NextText = "/databases/"+j.DatabaseID+"/snapshots/"+j.SnapshotID+"/export", "Download the .dump"
		default:
			v.Next, v.NextText = "/databases/"+j.DatabaseID+"/snapshots", "Back to snapshots"
		}
	}
	if isPartial(c) {
		return render(c, http.StatusOK, views.JobProgress(v))
	}
	return render(c, http.StatusOK, views.JobPage(s.page(c, "Job", "databases"), v))
}

const eventsPerPage = 100

func (s *Server) activity(c echo.Context) error {
	ctx := c.Request().Context()
	v := views.Activity{DatabaseID: c.QueryParam("database"), Now: s.deps.Now().UTC()}
	v.Page, _ = strconv.Atoi(c.QueryParam("page"))
	v.Page = max(v.Page, 1)
	// One more than a page tells whether another page exists without a
	// count over the whole log.
	events, err := s.deps.Activity.Find(ctx, snapdeck.EventFilter{DatabaseID: v.DatabaseID, Limit: eventsPerPage + 1,
		Offset: (v.Page - 1) * eventsPerPage})
	if err != nil {
		return err
	}
	v.Pages = v.Page
	if len(events) > eventsPerPage {
		events, v.Pages = events[:eventsPerPage], v.Page+1
	}
	v.Events = events
	if v.Databases, err = s.deps.Databases.List(ctx); err != nil {
		return err
	}
	return render(c, http.StatusOK, views.ActivityPage(s.page(c, "Activity", "activity"), v))
}

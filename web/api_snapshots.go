package web

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// apiSnapshot is Aura's snapshot object.
type apiSnapshot struct {
	SnapshotID string `json:"snapshot_id"`
	InstanceID string `json:"instance_id"`
	Profile    string `json:"profile"`
	Status     string `json:"status"`
	Timestamp  string `json:"timestamp"`
	Exportable bool   `json:"exportable"`
}

// snapshotProfile maps a snapshot type to Aura's profile. Aura has no
// profile for loads; "Load" is snapdeck's own.
func snapshotProfile(t snapdeck.SnapshotType) string {
	if t == snapdeck.SnapshotOnDemand {
		return "AdHoc"
	}
	return string(t)
}

// snapshotStatus maps a snapshot status to Aura's PascalCase one.
func snapshotStatus(s snapdeck.SnapshotStatus) string {
	switch s {
	case snapdeck.SnapshotPending:
		return "Pending"
	case snapdeck.SnapshotInProgress:
		return "InProgress"
	case snapdeck.SnapshotCompleted:
		return "Completed"
	}
	return "Failed"
}

func toAPISnapshot(s snapdeck.Snapshot) apiSnapshot {
	return apiSnapshot{SnapshotID: s.ID, InstanceID: s.DatabaseID, Profile: snapshotProfile(s.Type),
		Status: snapshotStatus(s.Status), Timestamp: s.CreatedAt.UTC().Truncate(time.Second).Format(time.RFC3339),
		Exportable: s.Status == snapdeck.SnapshotCompleted}
}

// findSnapshot returns the database and the snapshot of it named in the
// path; an unknown database is db-not-found before anything else.
func (a *api) findSnapshot(c echo.Context) (snapdeck.Database, snapdeck.Snapshot, error) {
	d, err := a.findInstance(c)
	if err != nil {
		return d, snapdeck.Snapshot{}, err
	}
	s, err := a.s.deps.Snapshots.FindSnapshot(c.Request().Context(), d.ID, c.Param("sid"))
	return d, s, err
}

// listSnapshots is GET /v1/instances/{id}/snapshots: one UTC day, today
// unless date says which.
func (a *api) listSnapshots(c echo.Context) error {
	now := a.s.deps.Now().UTC()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	if q := c.QueryParam("date"); q != "" {
		t, err := time.Parse(time.DateOnly, q)
		if err != nil {
			return snapdeck.FieldError("date", "date must be a day as YYYY-MM-DD, such as 2026-01-02; got %q.", q)
		}
		day = t
	}
	d, err := a.findInstance(c)
	if err != nil {
		return err
	}
	list, _, err := a.s.deps.Snapshots.FindSnapshots(c.Request().Context(),
		snapdeck.SnapshotFilter{DatabaseID: d.ID, From: day, To: day.Add(24 * time.Hour)})
	if err != nil {
		return err
	}
	out := make([]apiSnapshot, 0, len(list))
	for _, s := range list {
		out = append(out, toAPISnapshot(s))
	}
	return data(c, http.StatusOK, out)
}

func (a *api) getSnapshot(c echo.Context) error {
	_, s, err := a.findSnapshot(c)
	if err != nil {
		return err
	}
	return data(c, http.StatusOK, toAPISnapshot(s))
}

// takeSnapshot is POST /v1/instances/{id}/snapshots. aura-cli sends no
// body and Terraform {}; neither carries anything, so it is not read.
func (a *api) takeSnapshot(c echo.Context) error {
	who := actor(c)
	s, _, err := a.s.deps.Snapshots.TakeSnapshot(c.Request().Context(), c.Param("id"), snapdeck.SnapshotOnDemand, "Taken by "+who, who)
	if err != nil {
		return err
	}
	return data(c, http.StatusAccepted, map[string]string{"snapshot_id": s.ID})
}

// restoreSnapshot is POST /v1/instances/{id}/snapshots/{sid}/restore: the
// instance answers "restoring" and serves the snapshot's data once it is
// "running" again.
func (a *api) restoreSnapshot(c echo.Context) error {
	d, _, err := a.s.deps.Snapshots.Restore(c.Request().Context(), c.Param("id"), c.Param("sid"), actor(c))
	if err != nil {
		return err
	}
	return a.reply(c, http.StatusAccepted, d)
}

// exportSnapshot is snapdeck's GET /v1/instances/{id}/snapshots/{sid}/export:
// the snapshot as a .dump file, with Range support so a broken download
// resumes.
func (a *api) exportSnapshot(c echo.Context) error {
	exp, err := a.s.deps.Snapshots.Export(c.Request().Context(), c.Param("id"), c.Param("sid"), actor(c))
	if err != nil {
		return err
	}
	return serveDump(c, exp)
}

// overwriteRequest is the body of POST /v1/instances/{id}/overwrite.
type overwriteRequest struct {
	SourceInstanceID string `json:"source_instance_id"`
	SourceSnapshotID string `json:"source_snapshot_id"`
}

// overwriteInstance is POST /v1/instances/{id}/overwrite: from a snapshot
// of any database, or from another database's current data. The instance
// answers "overwriting" until it is "running" again.
func (a *api) overwriteInstance(c echo.Context) error {
	var req overwriteRequest
	err := decodeJSON(c, &req, false)
	d, _, err := a.s.deps.Snapshots.Overwrite(c.Request().Context(), c.Param("id"),
		database.OverwriteSource{Database: req.SourceInstanceID, Snapshot: req.SourceSnapshotID, BadInput: err}, actor(c))
	if err != nil {
		return err
	}
	// The job may already be over; the reply shows the operation it began.
	inst, err := a.instance(c, d, true)
	if err != nil {
		return err
	}
	return data(c, http.StatusAccepted, inst)
}

// statusOverwriting is Aura's instance status while an overwrite runs.
const statusOverwriting = "overwriting"

// overwritten returns which of dbs are restoring because they are being
// overwritten through the API rather than restored: Aura tells the two
// apart, and aura-cli's --await waits for "overwriting" to end. It costs
// one query however many databases there are, and none when no database is
// restoring.
func (a *api) overwritten(ctx context.Context, dbs ...snapdeck.Database) (map[string]bool, error) {
	restoring := map[string]bool{}
	for _, d := range dbs {
		if d.Status == snapdeck.StatusRestoring {
			restoring[d.ID] = true
		}
	}
	if len(restoring) == 0 {
		return nil, nil
	}
	jobs, err := a.s.deps.Snapshots.FindOpenJobs(ctx, "")
	if err != nil {
		return nil, err
	}
	over := map[string]bool{}
	for _, j := range jobs {
		if j.Kind == snapdeck.JobOverwrite && restoring[j.DatabaseID] {
			over[j.DatabaseID] = true
		}
	}
	return over, nil
}

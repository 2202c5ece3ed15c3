package web

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// restoreToTimeRequest is the body of snapdeck's POST
// /v1/instances/{id}/restore-to-time.
type restoreToTimeRequest struct {
	Time string `json:"time"`
}

// restoreToTime is snapdeck's POST /v1/instances/{id}/restore-to-time: as
// the snapshot restore, with no typed confirmation, the instance answers
// "restoring" and holds its data as of the time once "running" again.
func (a *api) restoreToTime(c echo.Context) error {
	var req restoreToTimeRequest
	err := decodeJSON(c, &req, false)
	at, bad := apiPointInTime(err, req.Time)
	// The database as the restore marked it, "restoring": the job may
	// already be over, and the reply shows the operation it began.
	d, _, err := a.s.deps.Snapshots.RestoreToTimeRead(c.Request().Context(), actor(c), c.Param("id"), at, bad)
	if err != nil {
		return err
	}
	return a.reply(c, http.StatusAccepted, d)
}

// createAtTimeRequest is the body of snapdeck's POST
// /v1/instances/{id}/create-at-time: the new instance's name and type, as
// for POST /v1/instances, and the time of the source's data.
type createAtTimeRequest struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Time string `json:"time"`
}

// createAtTime is snapdeck's POST /v1/instances/{id}/create-at-time: a new
// instance holding the data of the one in the path as of the time. It
// answers 202 with the new instance and its credentials, "creating" until
// the data is in.
func (a *api) createAtTime(c echo.Context) error {
	var req createAtTimeRequest
	err := decodeJSON(c, &req, false)
	plan, ok := typePlan(req.Type)
	if err == nil && !ok {
		err = snapdeck.FieldError("type", "type must be free-db, professional-db or enterprise-db.")
	}
	at, bad := apiPointInTime(err, req.Time)
	out, err := a.s.deps.Databases.Create(c.Request().Context(), actor(c),
		database.CreateRequest{Name: req.Name, Plan: plan, FromDatabase: c.Param("id"), At: at, BadInput: bad})
	if err != nil {
		return err
	}
	return a.created(c, out)
}

// apiPointInTime reads a request's time once nothing else was wrong
// (err nil): the forms the console takes, RFC 3339 above all. What was
// wrong is the request's bad input, which the service refuses and
// records.
func apiPointInTime(err error, raw string) (time.Time, error) {
	if err != nil {
		return time.Time{}, err
	}
	return parsePointInTime("time", raw)
}

// apiPITRWindow is the body of snapdeck's GET
// /v1/instances/{id}/point-in-time: the span a restore or create at a
// time accepts, RFC 3339 UTC to the second; available false, from and to
// "", when there is none.
type apiPITRWindow struct {
	InstanceID string `json:"instance_id"`
	Available  bool   `json:"available"`
	From       string `json:"from"`
	To         string `json:"to"`
}

// pitrWindow is snapdeck's GET /v1/instances/{id}/point-in-time, what the
// SNAPSHOTS tab shows of the window.
func (a *api) pitrWindow(c echo.Context) error {
	d, err := a.findInstance(c)
	if err != nil {
		return err
	}
	from, to, ok, err := a.s.deps.Snapshots.PITRWindow(c.Request().Context(), d.ID)
	if err != nil {
		return err
	}
	w := apiPITRWindow{InstanceID: d.ID, Available: ok}
	if ok {
		w.From, w.To = from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339)
	}
	return data(c, http.StatusOK, w)
}

package web

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/views"
)

// pointInTimeLayouts are the forms a point in time is accepted in (SPEC
// §10): UTC to the second, with a T or, as people type it, a space; and
// RFC 3339 with any offset, turned into UTC.
var pointInTimeLayouts = []string{"2006-01-02T15:04:05", "2006-01-02 15:04:05", time.RFC3339}

// parsePointInTime reads the time field of a restore or create at a point
// in time. A time without an offset is UTC. What does not parse is a field
// error naming the forms that do.
func parsePointInTime(field, raw string) (time.Time, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return time.Time{}, snapdeck.FieldError(field, "Give a time in UTC, to the second, as 2006-01-02T15:04:05.")
	}
	for _, layout := range pointInTimeLayouts {
		// RFC 3339 also takes fractions of a second, which Parse accepts
		// after the seconds of any layout.
		if t, err := time.Parse(layout, raw); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, snapdeck.FieldError(field, "%q is not a time: give it in UTC as 2006-01-02T15:04:05, or in RFC 3339 as 2006-01-02T15:04:05Z.", raw)
}

// pitrView is database d's point-in-time window as the pages show it.
func (s *Server) pitrView(ctx context.Context, d snapdeck.Database) (views.PITR, error) {
	from, to, ok, err := s.deps.Snapshots.PITRWindow(ctx, d.ID)
	v := views.PITR{From: from, To: to, OK: ok, Windows: s.deps.Snapshots.PITRWindows()}
	v.Window = v.Windows[d.Plan]
	return v, err
}

// fieldErrors are the messages of err's errors about one field each, by
// field; a joined error gives one per field.
func fieldErrors(err error) map[string]string {
	out := map[string]string{}
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		if e, ok := snapdeck.AsError(err); ok {
			out[e.Field] = e.Message
		}
	}
	walk(err)
	return out
}

// databaseWithPITR finds the database named in the path and its window.
func (s *Server) databaseWithPITR(c echo.Context) (snapdeck.Database, views.PITR, error) {
	d, err := s.database(c)
	if err != nil {
		return d, views.PITR{}, err
	}
	w, err := s.pitrView(c.Request().Context(), d)
	return d, w, err
}

func (s *Server) restoreToTimeForm(c echo.Context) error {
	d, w, err := s.databaseWithPITR(c)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.RestoreToTimePage(s.page(c, "Restore "+d.Name+" to a point in time", "databases"),
		views.RestoreToTime{DB: d, PITR: w, Time: c.QueryParam("time")}))
}

// restoreToTime proceeds only on a time that parses, inside the window,
// and the exact text RESTORE, checked by the service whatever the browser
// did. Each refusal re-shows the form with a 400 on the field at fault
// and changes nothing.
func (s *Server) restoreToTime(c echo.Context) error {
	d, err := s.database(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	v := views.RestoreToTime{DB: d, Time: c.FormValue("time"), Confirm: c.FormValue("confirm")}
	at, badTime := parsePointInTime("time", v.Time)
	_, j, err := s.deps.Snapshots.RestoreToTimeTyped(ctx, actor(c), d.ID, at, badTime, v.Confirm)
	if snapdeck.ErrorCode(err) != snapdeck.Invalid {
		if err != nil {
			return err
		}
		return c.Redirect(http.StatusSeeOther, "/jobs/"+j.ID)
	}
	fields := fieldErrors(err)
	v.TimeError, v.ConfirmError = fields["time"], fields["confirm"]
	if v.TimeError == "" && v.ConfirmError == "" {
		v.TimeError = snapdeck.ErrorMessage(err)
	}
	if v.PITR, err = s.pitrView(ctx, d); err != nil {
		return err
	}
	return render(c, http.StatusBadRequest, views.RestoreToTimePage(s.page(c, "Restore "+d.Name+" to a point in time", "databases"), v))
}

func (s *Server) createAtTimeForm(c echo.Context) error {
	d, w, err := s.databaseWithPITR(c)
	if err != nil {
		return err
	}
	v := views.CreateAtTime{DB: d, PITR: w, Plan: d.Plan, Time: c.QueryParam("time"), Name: suggestedName(d.Name + "-at-time")}
	return render(c, http.StatusOK, views.CreateAtTimePage(s.page(c, "Create database at a point in time", "databases"), v))
}

// createAtTime makes a new database from the data of the one in the path
// as it was at the time asked for. A time that does not parse or is
// outside the window, or a wrong name or plan, re-shows the form with a
// 400 and creates nothing.
func (s *Server) createAtTime(c echo.Context) error {
	d, err := s.database(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	v := views.CreateAtTime{DB: d, Time: c.FormValue("time"), Name: c.FormValue("name"), Plan: snapdeck.Plan(c.FormValue("plan"))}
	at, badTime := parsePointInTime("time", v.Time)
	out, err := s.deps.Databases.Create(ctx, actor(c),
		database.CreateRequest{Name: v.Name, Plan: v.Plan, FromDatabase: d.ID, At: at, BadInput: badTime})
	if snapdeck.ErrorCode(err) != snapdeck.Invalid {
		if err != nil {
			return err
		}
		// The new database's page shows its credentials once it is opened.
		if err := s.keepCredentials(c, out.Credentials); err != nil {
			return err
		}
		return c.Redirect(http.StatusSeeOther, "/jobs/"+out.Job.ID)
	}
	if e, ok := snapdeck.AsError(err); ok && e.Field == "time" {
		v.TimeError = e.Message
	} else {
		v.Error = snapdeck.ErrorMessage(err)
	}
	if v.PITR, err = s.pitrView(ctx, d); err != nil {
		return err
	}
	return render(c, http.StatusBadRequest, views.CreateAtTimePage(s.page(c, "Create database at a point in time", "databases"), v))
}

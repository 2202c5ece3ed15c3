package web

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/snapdeck/snapdeck/internal/activity"
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
	from, to, ok, err := s.deps.Databases.PITRWindow(ctx, d.ID)
	v := views.PITR{From: from, To: to, OK: ok, Windows: s.deps.Databases.PITRWindows()}
	v.Window = v.Windows[d.Plan]
	return v, err
}

func (s *Server) restoreToTimeForm(c echo.Context) error {
	d, err := s.database(c)
	if err != nil {
		return err
	}
	w, err := s.pitrView(c.Request().Context(), d)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.RestoreToTimePage(s.page(c, "Restore "+d.Name+" to a point in time", "databases"),
		views.RestoreToTime{DB: d, PITR: w, Time: c.QueryParam("time")}))
}

// restoreToTime proceeds only on a time that parses and the exact text
// RESTORE, checked here whatever the browser did; a time outside the
// window is refused by RestoreToTime. Each refusal re-shows the form with
// the field at fault, answers 400 and changes nothing.
func (s *Server) restoreToTime(c echo.Context) error {
	d, err := s.database(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	v := views.RestoreToTime{DB: d, Time: c.FormValue("time"), Confirm: c.FormValue("confirm")}
	at, terr := parsePointInTime("time", v.Time)
	if terr != nil {
		v.TimeError = snapdeck.ErrorMessage(terr)
	}
	if v.Confirm != "RESTORE" {
		v.ConfirmError = "Type RESTORE in capital letters, exactly, to continue. Nothing was changed."
		terr = errors.Join(terr, snapdeck.FieldError("confirm", "confirmation text did not match RESTORE"))
	}
	if terr == nil {
		j, err := s.deps.Databases.RestoreToTime(ctx, currentUser(c).Email, d.ID, at)
		if snapdeck.ErrorCode(err) != snapdeck.Invalid {
			if err != nil {
				return err
			}
			return c.Redirect(http.StatusSeeOther, "/jobs/"+j.ID)
		}
		// RestoreToTime recorded its refusal.
		v.TimeError = snapdeck.ErrorMessage(err)
	} else {
		s.record(c, activity.RestoreToTime, d.ID, "", "to "+v.Time, terr)
	}
	if v.PITR, err = s.pitrView(ctx, d); err != nil {
		return err
	}
	return render(c, http.StatusBadRequest, views.RestoreToTimePage(s.page(c, "Restore "+d.Name+" to a point in time", "databases"), v))
}

func (s *Server) createAtTimeForm(c echo.Context) error {
	d, err := s.database(c)
	if err != nil {
		return err
	}
	w, err := s.pitrView(c.Request().Context(), d)
	if err != nil {
		return err
	}
	v := views.CreateAtTime{DB: d, PITR: w, Plan: d.Plan, Time: c.QueryParam("time"), Name: d.Name + "-at-time"}
	if len([]rune(v.Name)) > 64 {
		v.Name = string([]rune(v.Name)[:64])
	}
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
	at, err := parsePointInTime("time", v.Time)
	if err == nil {
		var j snapdeck.Job
		_, j, err = s.deps.Databases.CreateDatabaseAtTime(ctx, currentUser(c).Email, d.ID, at, v.Name, v.Plan)
		if snapdeck.ErrorCode(err) != snapdeck.Invalid {
			if err != nil {
				return err
			}
			return c.Redirect(http.StatusSeeOther, "/jobs/"+j.ID)
		}
		// CreateDatabaseAtTime recorded its refusal.
	} else {
		s.record(c, activity.CreateAtTime, "", "", "from database "+d.ID+" at "+v.Time, err)
	}
	if e, ok := snapdeck.AsError(err); ok && e.Field == "time" {
		v.TimeError = snapdeck.ErrorMessage(err)
	} else {
		v.Error = snapdeck.ErrorMessage(err)
	}
	if v.PITR, err = s.pitrView(ctx, d); err != nil {
		return err
	}
	return render(c, http.StatusBadRequest, views.CreateAtTimePage(s.page(c, "Create database at a point in time", "databases"), v))
}

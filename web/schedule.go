package web

import (
	"context"
	"fmt"

	"github.com/labstack/echo/v4"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/views"
)

// setSchedule sets or clears the database's schedule override; a text that
// is neither an interval nor a cron expression re-shows the form with 400.
func (s *Server) setSchedule(c echo.Context) error {
	return s.settingsChange(c, func(d snapdeck.Database) (string, error) {
		nd, err := s.deps.Scheduler.SetOverride(c.Request().Context(), actor(c), d.ID, c.FormValue("schedule"))
		if nd.Schedule == "" {
			return fmt.Sprintf("%s follows its plan's schedule again.", nd.Name), err
		}
		return fmt.Sprintf("%s is now snapshotted on its own schedule: %s.", nd.Name, nd.Schedule), err
	})
}

// settingsView is the Settings tab of d, with an error on a field if any.
// A refused schedule keeps what the user typed in its field.
func (s *Server) settingsView(c echo.Context, d snapdeck.Database, msg, field string) views.Settings {
	v := views.Settings{DB: d, Error: msg, Field: field, Schedule: views.ScheduleInfo{Text: d.Schedule, Now: s.deps.Now()}}
	if field == "schedule" {
		v.Schedule.Text = c.FormValue("schedule")
	}
	v.Schedule.PlanDefault = s.deps.Scheduler.PlanDefault(d.Plan)
	if problem := s.deps.Scheduler.OverrideProblem(d); problem != nil {
		v.Schedule.Problem = snapdeck.ErrorMessage(problem)
	}
	if s.deps.NextSnapshot != nil {
		v.Schedule.Next = s.deps.NextSnapshot(d)
	}
	return v
}

// databaseRows adds to each database when its latest completed snapshot
// was taken (one query for all), whether its Scheduled snapshots keep
// failing, and why its stored schedule override is not used, if it is not.
func (s *Server) databaseRows(ctx context.Context, dbs []snapdeck.Database) ([]views.DatabaseRow, error) {
	latest, err := s.deps.Snapshots.LatestSnapshotTimes(ctx)
	if err != nil {
		return nil, err
	}
	rows := make([]views.DatabaseRow, len(dbs))
	for i, d := range dbs {
		rows[i] = views.DatabaseRow{DB: d, LatestSnapshotAt: latest[d.ID]}
		if rows[i].Failing, err = s.deps.Scheduler.Failing(ctx, d.ID); err != nil {
			return nil, err
		}
		if problem := s.deps.Scheduler.OverrideProblem(d); problem != nil {
			rows[i].ScheduleProblem = snapdeck.ErrorMessage(problem)
		}
	}
	return rows, nil
}

// settingsPage renders the Settings tab with status.
func (s *Server) settingsPage(c echo.Context, status int, v views.Settings) error {
	return render(c, status, views.SettingsPage(s.page(c, v.DB.Name+" · Settings", "databases"), v))
}

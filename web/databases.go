package web

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/views"
)

func (s *Server) listDatabases(c echo.Context) error {
	dbs, err := s.deps.Databases.List(c.Request().Context())
	if err != nil {
		return err
	}
	rows, err := s.databaseRows(c.Request().Context(), dbs)
	if err != nil {
		return err
	}
	p := s.page(c, "Databases", "databases")
	if isPartial(c) {
		return render(c, http.StatusOK, views.DatabaseRows(p, rows))
	}
	return render(c, http.StatusOK, views.DatabasesPage(p, rows))
}

func (s *Server) newDatabase(c echo.Context) error {
	return render(c, http.StatusOK, views.NewDatabasePage(s.page(c, "New database", "databases"),
		views.NewDatabase{Plan: snapdeck.PlanFree}))
}

func (s *Server) createDatabase(c echo.Context) error {
	name, plan := c.FormValue("name"), snapdeck.Plan(c.FormValue("plan"))
	out, err := s.deps.Databases.Create(c.Request().Context(), actor(c), database.CreateRequest{Name: name, Plan: plan})
	if snapdeck.ErrorCode(err) == snapdeck.Invalid {
		return render(c, http.StatusBadRequest, views.NewDatabasePage(s.page(c, "New database", "databases"),
			views.NewDatabase{Name: name, Plan: plan, Error: snapdeck.ErrorMessage(err)}))
	}
	if err != nil {
		return err
	}
	if err := s.keepCredentials(c, out.Credentials); err != nil {
		return err
	}
	s.flash(c, "ok", fmt.Sprintf("Database %s created.", out.Database.Name))
	return c.Redirect(http.StatusSeeOther, "/databases/"+out.Database.ID)
}

// database finds the database named in the path.
func (s *Server) database(c echo.Context) (snapdeck.Database, error) {
	id := c.Param("id")
	if !snapdeck.ValidDatabaseID(id) {
		return snapdeck.Database{}, snapdeck.DatabaseNotFound(id)
	}
	return s.deps.Databases.Find(c.Request().Context(), id)
}

func (s *Server) overview(c echo.Context) error {
	d, err := s.database(c)
	if err != nil {
		return err
	}
	if cred, ok := s.takeCredentials(c, d.ID); ok {
		return s.showCredentials(c, d, cred) // once, right after they were issued
	}
	return s.overviewPage(c, http.StatusOK, d, views.Overview{})
}

// overviewPage renders database d's Overview tab: v brings what a token
// form left to show, the page fills in the rest.
func (s *Server) overviewPage(c echo.Context, status int, d snapdeck.Database, v views.Overview) error {
	ctx := c.Request().Context()
	v.DB, v.Connect, v.ConnectionURL = d, s.deps.Databases.Host().Path(d.ID), s.connectionURL(c, d.ID)
	var err error
	if d.Status == snapdeck.StatusRunning {
		if v.Tables, err = s.deps.Databases.Host().Tables(ctx, d.ID); err != nil {
			return err
		}
	}
	if v.Tokens, err = s.deps.Tokens.List(ctx, d.ID); err != nil {
		return err
	}
	return render(c, status, views.OverviewPage(s.page(c, d.Name, "databases"), v))
}

func (s *Server) queryForm(c echo.Context) error {
	d, err := s.database(c)
	if err != nil {
		return err
	}
	v := views.Query{DB: d, ReadOnly: !currentUser(c).Role.CanWrite(), MaxRows: s.deps.Databases.Host().MaxRows}
	return render(c, http.StatusOK, views.QueryPage(s.page(c, d.Name+" · Query", "databases"), v))
}

func (s *Server) query(c echo.Context) error {
	d, err := s.database(c)
	if err != nil {
		return err
	}
	v := views.Query{DB: d, SQL: c.FormValue("sql"), ReadOnly: !currentUser(c).Role.CanWrite(), MaxRows: s.deps.Databases.Host().MaxRows}
	status := http.StatusOK
	v.Result, err = s.deps.Databases.Query(c.Request().Context(), d.ID, v.SQL, v.ReadOnly)
	if err != nil {
		code := snapdeck.ErrorCode(err)
		if code != snapdeck.Invalid && code != snapdeck.Busy {
			return err
		}
		// A SQL error is an expected outcome: show it beside the query.
		status, v.Error = statusOf(code), snapdeck.ErrorMessage(err)
	}
	if isPartial(c) {
		return render(c, status, views.QueryResult(v))
	}
	return render(c, status, views.QueryPage(s.page(c, d.Name+" · Query", "databases"), v))
}

func (s *Server) settings(c echo.Context) error {
	d, err := s.database(c)
	if err != nil {
		return err
	}
	return s.settingsPage(c, http.StatusOK, s.settingsView(c, d, "", ""))
}

// settingsChange runs one Settings form and re-shows the tab with the error
// when the input is wrong.
func (s *Server) settingsChange(c echo.Context, change func(d snapdeck.Database) (string, error)) error {
	d, err := s.database(c)
	if err != nil {
		return err
	}
	msg, err := change(d)
	if e, ok := snapdeck.AsError(err); ok && e.Code == snapdeck.Invalid {
		return s.settingsPage(c, http.StatusBadRequest, s.settingsView(c, d, e.Message, e.Field))
	}
	if err != nil {
		return err
	}
	s.flash(c, "ok", msg)
	return c.Redirect(http.StatusSeeOther, "/databases/"+d.ID+"/settings")
}

func (s *Server) rename(c echo.Context) error {
	return s.settingsChange(c, func(d snapdeck.Database) (string, error) {
		name := c.FormValue("name")
		nd, err := s.deps.Databases.Update(c.Request().Context(), actor(c), d.ID, database.Changes{Name: &name})
		return fmt.Sprintf("Renamed %s to %s.", d.Name, nd.Name), err
	})
}

func (s *Server) setPlan(c echo.Context) error {
	return s.settingsChange(c, func(d snapdeck.Database) (string, error) {
		plan := snapdeck.Plan(c.FormValue("plan"))
		nd, err := s.deps.Databases.Update(c.Request().Context(), actor(c), d.ID, database.Changes{Plan: &plan})
		return fmt.Sprintf("%s is now on the %s plan.", nd.Name, nd.Plan), err
	})
}

func (s *Server) deleteDatabase(c echo.Context) error {
	d, err := s.database(c)
	if err != nil {
		return err
	}
	typed := c.FormValue("confirm_name")
	_, err = s.deps.Databases.Delete(c.Request().Context(), actor(c), d.ID, &typed)
	if e, ok := snapdeck.AsError(err); ok && e.Code == snapdeck.Invalid {
		return s.settingsPage(c, http.StatusBadRequest, s.settingsView(c, d, e.Message, e.Field))
	}
	if err != nil {
		return err
	}
	s.flash(c, "ok", fmt.Sprintf("Database %s (%s) deleted.", d.Name, d.ID))
	return c.Redirect(http.StatusSeeOther, "/databases")
}

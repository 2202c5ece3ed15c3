package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/views"
)

// credentialsKey holds freshly issued database credentials in the session
// between the action that issued them and the one page that shows them;
// showing them removes them.
const credentialsKey = "new_credentials"

// keepCredentials stashes credentials for the next page, as a flash.
func (s *Server) keepCredentials(c echo.Context, cred database.Credentials) error {
	sess, err := s.sessions.Get(c.Request(), sessionCookie)
	if err != nil {
		return err
	}
	sess.Values[credentialsKey] = map[string]any{"database_id": cred.DatabaseID, "username": cred.Username, "password": cred.Password}
	return sess.Save(c.Request(), c.Response())
}

// takeCredentials returns and forgets the stashed credentials of database
// id, if there are any.
func (s *Server) takeCredentials(c echo.Context, id string) (database.Credentials, bool) {
	sess, err := s.sessions.Get(c.Request(), sessionCookie)
	if err != nil {
		return database.Credentials{}, false
	}
	v, ok := sess.Values[credentialsKey].(map[string]any)
	if !ok || v["database_id"] != id {
		return database.Credentials{}, false
	}
	delete(sess.Values, credentialsKey)
	if err := sess.Save(c.Request(), c.Response()); err != nil {
		s.logger.Warn("forget shown credentials", "database_id", id, "err", err)
	}
	cred := database.Credentials{DatabaseID: id}
	cred.Username, _ = v["username"].(string)
	cred.Password, _ = v["password"].(string)
	return cred, cred.Password != ""
}

// showCredentials renders a database's just-issued credentials in place of
// its Overview tab, this once.
func (s *Server) showCredentials(c echo.Context, d snapdeck.Database, cred database.Credentials) error {
	v := views.Credentials{DB: d, Username: cred.Username, Password: cred.Password, ConsoleURL: s.publicURL(c)}
	return render(c, http.StatusOK, views.CredentialsPage(s.page(c, d.Name+" · Credentials", "databases"), v))
}

// resetCredentials replaces a database's password from its Settings tab
// and shows the new one on the database page.
func (s *Server) resetCredentials(c echo.Context) error {
	cred, err := s.deps.Databases.ResetCredentials(c.Request().Context(), actor(c), c.Param("id"))
	if err != nil {
		return err
	}
	if err := s.keepCredentials(c, cred); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/databases/"+cred.DatabaseID)
}

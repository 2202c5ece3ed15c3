package web

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/snapdeck/snapdeck/internal/activity"
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

// issueCredentials gives database d new credentials and keeps them for
// the database page, which shows them once.
func (s *Server) issueCredentials(c echo.Context, d snapdeck.Database) error {
	cred, err := s.deps.Databases.IssueCredentials(c.Request().Context(), d.ID)
	if err != nil {
		return err
	}
	return s.keepCredentials(c, cred)
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
	d, err := s.database(c)
	if err != nil {
		return err
	}
	if err := s.issueCredentials(c, d); err != nil {
		return err
	}
	s.record(c, activity.CredentialReset, d.ID, "", fmt.Sprintf("Reset the credentials of %s", d.Name), nil)
	return c.Redirect(http.StatusSeeOther, "/databases/"+d.ID)
}

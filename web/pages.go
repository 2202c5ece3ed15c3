package web

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/snapdeck/snapdeck/views"
)

const flashKey = "flash"

// page fills the layout data every page needs.
func (s *Server) page(c echo.Context, title, nav string) views.Page {
	p := views.Page{Title: title, User: currentUser(c), Nav: nav, Policies: s.deps.Snapshots.Policies()}
	p.CSRF, _ = c.Get(csrfKey).(string)
	if sess, err := s.sessions.Get(c.Request(), sessionCookie); err == nil {
		if f, ok := sess.Values[flashKey].(map[string]any); ok {
			p.Flash, _ = f["message"].(string)
			p.FlashKind, _ = f["kind"].(string)
			delete(sess.Values, flashKey)
			if err := sess.Save(c.Request(), c.Response()); err != nil {
				s.logger.Warn("clear flash", "err", err)
			}
		}
	}
	return p
}

// flash keeps a message for the next page the user sees.
func (s *Server) flash(c echo.Context, kind, message string) {
	sess, err := s.sessions.Get(c.Request(), sessionCookie)
	if err != nil {
		s.logger.Warn("flash", "err", err)
		return
	}
	sess.Values[flashKey] = map[string]any{"kind": kind, "message": message}
	if err := sess.Save(c.Request(), c.Response()); err != nil {
		s.logger.Warn("flash", "err", err)
	}
}

func (s *Server) home(c echo.Context) error {
	return c.Redirect(http.StatusSeeOther, "/databases")
}

// healthz answers 200 ok when the store answers.
func (s *Server) healthz(c echo.Context) error {
	if err := s.deps.Store.Ping(c.Request().Context()); err != nil {
		s.logger.Error("health check", "err", err)
		return c.String(http.StatusServiceUnavailable, "store unavailable")
	}
	return c.String(http.StatusOK, "ok")
}

func (s *Server) importHelp(c echo.Context) error {
	return render(c, http.StatusOK, views.ImportHelpPage(s.page(c, "Import", "import"), s.publicURL(c)))
}

// humanLimit formats a byte count for Echo's BodyLimit.
func humanLimit(n int64) string {
	return fmt.Sprintf("%dB", n)
}

package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/snapdeck/snapdeck/internal/auth"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/views"
)

func (s *Server) loginForm(c echo.Context) error {
	if currentUser(c) != nil {
		return c.Redirect(http.StatusSeeOther, safeNext(c.QueryParam("next")))
	}
	return render(c, http.StatusOK, views.LoginPage(s.page(c, "Sign in", ""), views.Login{Next: c.QueryParam("next")}))
}

func (s *Server) login(c echo.Context) error {
	email, next := c.FormValue("email"), c.FormValue("next")
	u, err := s.deps.Auth.SignIn(c.Request().Context(), email, c.FormValue("password"), c.RealIP())
	if err != nil {
		code := snapdeck.ErrorCode(err)
		if code != snapdeck.Unauthorized && code != snapdeck.TooMany {
			return err
		}
		if wait, ok := auth.RetryAfter(err); ok {
			c.Response().Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())))
		}
		return render(c, statusOf(code), views.LoginPage(s.page(c, "Sign in", ""),
			views.Login{Email: email, Next: next, Error: snapdeck.ErrorMessage(err)}))
	}
	sess, err := s.sessions.Get(c.Request(), sessionCookie)
	if err != nil {
		return err
	}
	// A new id on sign-in, so a session planted before it is worth nothing.
	if sess.ID != "" {
		if err := s.sessions.Delete(c.Request().Context(), sess.ID); err != nil {
			return err
		}
		sess.ID = ""
	}
	sess.Values["user_id"] = u.ID
	if err := sess.Save(c.Request(), c.Response()); err != nil {
		return err
	}
	s.logger.Info("signed in", "user", u.Email)
	return c.Redirect(http.StatusSeeOther, safeNext(next))
}

func (s *Server) logout(c echo.Context) error {
	sess, err := s.sessions.Get(c.Request(), sessionCookie)
	if err != nil {
		return err
	}
	sess.Options.MaxAge = -1
	if err := sess.Save(c.Request(), c.Response()); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/login")
}

// safeNext keeps redirects after sign-in on this console: next is used
// only when it is a local path, else the user lands on the databases list.
// Browsers drop tabs and newlines from a Location and read a backslash as a
// slash, so "/\t/evil.example" and "/\evil.example" lead to another host:
// next must be printable ASCII without backslashes, parse with no scheme,
// host or user, and its path, raw and decoded, must start with exactly one
// slash ("/%2F/evil" decodes to "//evil").
func safeNext(next string) string {
	const home = "/databases"
	if next == "" || len(next) > 2048 || strings.ContainsFunc(next, notPathChar) {
		return home
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" ||
		!strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") ||
		!strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") || strings.ContainsFunc(u.Path, notPathChar) {
		return home
	}
	return next
}

// notPathChar reports a character a local path after sign-in never has.
func notPathChar(r rune) bool {
	return r <= ' ' || r > '~' || r == '\\'
}

func (s *Server) passwordForm(c echo.Context) error {
	return render(c, http.StatusOK, views.PasswordPage(s.page(c, "Change password", ""), views.Password{}))
}

// changePassword ends every session of the user, this one too, so the next
// page is the sign-in form.
func (s *Server) changePassword(c echo.Context) error {
	u := currentUser(c)
	err := s.deps.Auth.ChangePassword(c.Request().Context(), u.ID, c.FormValue("current_password"), c.FormValue("new_password"))
	if e, ok := snapdeck.AsError(err); ok && e.Code == snapdeck.Invalid {
		return render(c, http.StatusBadRequest, views.PasswordPage(s.page(c, "Change password", ""), views.Password{Error: e.Message, Field: e.Field}))
	}
	if err != nil {
		return err
	}
	s.logger.Info("password changed", "user", u.Email)
	return c.Redirect(http.StatusSeeOther, "/login")
}

package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/snapdeck/snapdeck/internal/auth"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

const (
	csrfCookie = "snapdeck_csrf"
	csrfField  = "_csrf"
	csrfHeader = "X-CSRF-Token"
	userKey    = "user"
	csrfKey    = "csrf"
)

// isAPI reports whether a path belongs to the Aura-compatible API, which
// authenticates with bearer tokens instead of cookies and answers JSON.
func isAPI(path string) bool {
	return strings.HasPrefix(path, "/v1/") || path == "/v1" || strings.HasPrefix(path, "/oauth/")
}

// isDataPlane reports whether a path belongs to the data plane (SPEC §9),
// which authenticates with a database's bearer token, keeps no session
// and answers JSON.
func isDataPlane(path string) bool {
	return strings.HasPrefix(path, "/db/")
}

// requestLogger writes one line per request: method, path, status,
// duration, user; the data plane's at Debug unless they fail on our side.
func (s *Server) requestLogger() echo.MiddlewareFunc {
	return middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogMethod: true, LogURIPath: true, LogStatus: true, LogLatency: true, LogRequestID: true, LogError: true,
		HandleError: true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			level := slog.LevelInfo
			switch {
			case v.Status >= 500:
				level = slog.LevelError
			case isDataPlane(v.URIPath):
				// Applications send thousands of pipeline requests a
				// second; a line each would flood the console's log.
				// /metrics counts them, and failures still log.
				level = slog.LevelDebug
			}
			ctx := c.Request().Context()
			if !s.logger.Enabled(ctx, level) {
				return nil
			}
			who := ""
			if u := currentUser(c); u != nil {
				who = u.Email
			}
			attrs := []slog.Attr{
				slog.String("method", v.Method), slog.String("path", v.URIPath), slog.Int("status", v.Status),
				slog.Duration("duration", v.Latency), slog.String("user", who), slog.String("request_id", v.RequestID),
			}
			if v.Status >= 500 && v.Error != nil {
				attrs = append(attrs, slog.String("err", v.Error.Error()))
			}
			s.logger.LogAttrs(ctx, level, "request", attrs...)
			return nil
		},
	})
}

// csrf guards every state-changing console request with a token each form
// repeats in its hidden _csrf field (htmx sends it as a header). A request
// without the right value is refused with 403 before any handler runs.
//
// For a signed-in session the token is an HMAC of the session id: only the
// console can make it, and it is good for that session alone, so a token
// planted as a cookie by another service on the same host (cookies are
// shared across ports) is worth nothing. Before sign-in there is no session
// to bind to, and the sign-in form uses a double-submit token: a random
// value in an HttpOnly, SameSite=Lax cookie that the form repeats.
func (s *Server) csrf(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if isAPI(r.URL.Path) || isDataPlane(r.URL.Path) {
			return next(c)
		}
		sess, err := s.sessions.Get(r, sessionCookie)
		if err != nil {
			return err
		}
		token := ""
		if sess.ID != "" && sessionUserID(sess) != 0 {
			token = s.sessionToken(sess.ID)
		} else if ck, err := r.Cookie(csrfCookie); err == nil && len(ck.Value) >= 32 {
			token = ck.Value
		} else {
			token = auth.RandomSecret(32)
			c.SetCookie(&http.Cookie{Name: csrfCookie, Value: token, Path: "/", HttpOnly: true,
				SameSite: http.SameSiteLaxMode, Secure: s.secureCookies || r.TLS != nil})
		}
		c.Set(csrfKey, token)
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c)
		}
		sent := r.Header.Get(csrfHeader)
		if sent == "" && isMultipart(r) {
			// Reading a form field of a multipart body would read the whole
			// upload first: an upload form carries the token in its URL.
			sent = r.URL.Query().Get(csrfField)
		} else if sent == "" {
			sent = c.FormValue(csrfField)
		}
		if sent == "" || subtle.ConstantTimeCompare([]byte(sent), []byte(token)) != 1 {
			return &snapdeck.Error{Code: snapdeck.Forbidden,
				Message: "This form has expired or did not come from this console. Reload the page and try again."}
		}
		return next(c)
	}
}

// sessionToken is the CSRF token of a signed-in session: HMAC-SHA256 of
// its id under the console's CSRF key.
func (s *Server) sessionToken(sessionID string) string {
	m := hmac.New(sha256.New, s.csrfKey)
	m.Write([]byte("snapdeck csrf\x00" + sessionID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// loadUser finds the signed-in user, if any, from the session.
func (s *Server) loadUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if isAPI(c.Request().URL.Path) || isDataPlane(c.Request().URL.Path) {
			return next(c)
		}
		sess, err := s.sessions.Get(c.Request(), sessionCookie)
		if err != nil {
			return err
		}
		if id := sessionUserID(sess); id != 0 {
			u, err := s.deps.Auth.FindUser(c.Request().Context(), id)
			if err == nil && !u.Disabled {
				c.Set(userKey, &u)
			} else if err != nil && snapdeck.ErrorCode(err) != snapdeck.NotFound {
				return err
			}
		}
		return next(c)
	}
}

// currentUser returns the signed-in user, or nil.
func currentUser(c echo.Context) *snapdeck.User {
	u, _ := c.Get(userKey).(*snapdeck.User)
	return u
}

// signedIn sends anonymous visitors to the sign-in page.
func signedIn(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if currentUser(c) == nil {
			if isPartial(c) {
				c.Response().Header().Set("HX-Redirect", "/login")
				return c.NoContent(http.StatusUnauthorized)
			}
			next := c.Request().URL.RequestURI()
			if c.Request().Method != http.MethodGet {
				next = "/"
			}
			return c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(next))
		}
		return next(c)
	}
}

// writer lets through admins and members; viewers get 403.
func writer(next echo.HandlerFunc) echo.HandlerFunc {
	return signedIn(func(c echo.Context) error {
		if !currentUser(c).Role.CanWrite() {
			return &snapdeck.Error{Code: snapdeck.Forbidden, Message: "Viewers can look but not change anything. Ask an admin for the member role."}
		}
		return next(c)
	})
}

// admin lets through admins only.
func admin(next echo.HandlerFunc) echo.HandlerFunc {
	return signedIn(func(c echo.Context) error {
		if !currentUser(c).Role.IsAdmin() {
			return &snapdeck.Error{Code: snapdeck.Forbidden, Message: "Only admins manage users."}
		}
		return next(c)
	})
}

// noStore keeps pages with private data out of shared caches.
func noStore(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !strings.HasPrefix(c.Request().URL.Path, "/static/") {
			c.Response().Header().Set("Cache-Control", "no-store")
		}
		return next(c)
	}
}

// securityHeaders sets the headers every response carries.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		return next(c)
	}
}

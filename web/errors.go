package web

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/views"
)

// statusOf is the only place error codes become HTTP statuses.
func statusOf(code snapdeck.Code) int {
	switch code {
	case snapdeck.Invalid:
		return http.StatusBadRequest
	case snapdeck.Unauthorized:
		return http.StatusUnauthorized
	case snapdeck.Forbidden:
		return http.StatusForbidden
	case snapdeck.NotFound:
		return http.StatusNotFound
	case snapdeck.Conflict, snapdeck.Busy:
		return http.StatusConflict
	case snapdeck.TooMany:
		return http.StatusTooManyRequests
	case snapdeck.TooLarge:
		return http.StatusRequestEntityTooLarge
	default:
		return http.StatusInternalServerError
	}
}

// apiError is one entry of the API's error body.
type apiError struct {
	Message string `json:"message"`
	Reason  string `json:"reason"`
	Field   string `json:"field,omitempty"`
}

// handleError is Echo's HTTPErrorHandler: JSON errors for the API, an error
// page for the console. Causes are logged, never shown.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, msg, reason, field := http.StatusInternalServerError, "", "", ""
	var he *echo.HTTPError
	if errors.As(err, &he) {
		status = he.Code
		msg = http.StatusText(status)
		if m, ok := he.Message.(string); ok && status < 500 {
			msg = m
		}
		if status == http.StatusNotFound {
			msg = "There is no page at this address."
		}
		if status == http.StatusRequestEntityTooLarge {
			msg = "The request is too large."
		}
	} else {
		code := snapdeck.ErrorCode(err)
		status = statusOf(code)
		msg = snapdeck.ErrorMessage(err)
		if e, ok := snapdeck.AsError(err); ok {
			reason, field = e.Reason, e.Field
		}
	}
	if status >= 500 {
		s.logger.Error("request failed", "path", c.Request().URL.Path, "err", err)
	}
	if c.Request().Method == http.MethodHead {
		c.NoContent(status)
		return
	}
	if isAPI(c.Request().URL.Path) {
		if reason == "" {
			reason = reasonFor(status)
		}
		c.JSON(status, map[string][]apiError{"errors": {{Message: msg, Reason: reason, Field: field}}})
		return
	}
	if isPartial(c) {
		render(c, status, views.ErrorAlert(views.ErrorPage{Status: status, Message: msg}))
		return
	}
	render(c, status, views.ErrorView(s.page(c, http.StatusText(status), ""), views.ErrorPage{Status: status, Message: msg}))
}

func reasonFor(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid-request"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not-found"
	case http.StatusMethodNotAllowed:
		return "method-not-allowed"
	case http.StatusConflict:
		return "conflict"
	case http.StatusTooManyRequests:
		return "rate-limited"
	default:
		return "internal-error"
	}
}

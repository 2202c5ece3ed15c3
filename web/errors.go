package web

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/views"
)

// StatusOf is statusOf for the data plane (internal/dataplane), which
// answers its own requests: its statuses are decided here too.
func StatusOf(code snapdeck.Code) int { return statusOf(code) }

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

// apiAnswer keeps an API answer inside SPEC §8's set: 400, 401, 403, 404,
// 405, 409, 429 and 500, the only ones Aura clients handle (aura-cli
// panics on others). Anything else a handler, Echo or net/http decided
// becomes 400 when the request was at fault and 500 when we were, with a
// reason, and a field when one header is at fault, that say what it was.
func apiAnswer(status int) (apiStatus int, reason, field string) {
	switch status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound,
		http.StatusMethodNotAllowed, http.StatusConflict, http.StatusTooManyRequests, http.StatusInternalServerError:
		return status, reasonFor(status), ""
	case http.StatusRequestEntityTooLarge:
		return http.StatusBadRequest, "request-too-large", ""
	case http.StatusRequestedRangeNotSatisfiable:
		return http.StatusBadRequest, "range-not-satisfiable", "Range"
	case http.StatusPreconditionFailed:
		return http.StatusBadRequest, "precondition-failed", ""
	}
	if status >= http.StatusInternalServerError {
		return http.StatusInternalServerError, reasonFor(http.StatusInternalServerError), ""
	}
	return http.StatusBadRequest, reasonFor(http.StatusBadRequest), ""
}

// apiError is one entry of the API's error body.
type apiError struct {
	Message string `json:"message"`
	Reason  string `json:"reason"`
	Field   string `json:"field,omitempty"`
}

// entityHeaders describe a body a handler meant to send, a download's
// above all; an error answer sends another body, so they go.
var entityHeaders = []string{echo.HeaderContentDisposition, echo.HeaderContentEncoding, echo.HeaderContentLength,
	"Content-Range", "Accept-Ranges", echo.HeaderLastModified, "ETag"}

// handleError is Echo's HTTPErrorHandler: JSON errors for the API, an error
// page for the console. Causes are logged, never shown. Every answer an
// error gets, on either door, is decided here.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	r := c.Request()
	api := isAPI(r.URL.Path)
	status, msg, reason, field := http.StatusInternalServerError, "", "", ""
	var he *echo.HTTPError
	if errors.As(err, &he) {
		status = he.Code
		msg = http.StatusText(status)
		if m, ok := he.Message.(string); ok && status < 500 {
			msg = m
		}
		switch status {
		case http.StatusNotFound:
			msg = "There is no page at this address."
			if api {
				msg = fmt.Sprintf("There is no API endpoint at %s; the paths are in docs/api.md.", r.URL.Path)
			}
		case http.StatusMethodNotAllowed:
			msg = fmt.Sprintf("%s does not accept %s.", r.URL.Path, r.Method)
		case http.StatusRequestEntityTooLarge:
			msg = "The request is too large."
		case http.StatusRequestedRangeNotSatisfiable:
			msg = "The Range header asks for bytes the file does not have, or is not of the form bytes=START-END."
		case http.StatusPreconditionFailed:
			msg = "The file is not the version named in If-Match or If-Unmodified-Since; download it again from the start."
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
		s.logger.Error("request failed", "path", r.URL.Path, "err", err)
	}
	h := c.Response().Header()
	for _, k := range entityHeaders {
		if k != "Content-Range" || api || status != http.StatusRequestedRangeNotSatisfiable {
			h.Del(k)
		}
	}
	if api {
		s.apiError(c, status, apiError{Message: msg, Reason: reason, Field: field})
		return
	}
	if r.Method == http.MethodHead {
		c.NoContent(status)
		return
	}
	if isPartial(c) {
		render(c, status, views.ErrorAlert(views.ErrorPage{Status: status, Message: msg}))
		return
	}
	render(c, status, views.ErrorView(s.page(c, http.StatusText(status), ""), views.ErrorPage{Status: status, Message: msg}))
}

// apiError answers an API error in SPEC §8's shape and status set, with
// the request id every API answer carries (also on what is refused before
// the request-id middleware runs).
func (s *Server) apiError(c echo.Context, status int, e apiError) {
	status, reason, field := apiAnswer(status)
	if e.Reason == "" {
		e.Reason = reason
	}
	if e.Field == "" {
		e.Field = field
	}
	h := c.Response().Header()
	if h.Get(echo.HeaderXRequestID) == "" {
		h.Set(echo.HeaderXRequestID, uuid.NewString())
	}
	// Set, not left to c.JSON, which keeps a type a handler already set:
	// a download's application/zstd, or net/http's text/plain.
	h.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	if c.Request().Method == http.MethodHead {
		c.NoContent(status)
		return
	}
	c.JSON(status, map[string][]apiError{"errors": {e}})
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

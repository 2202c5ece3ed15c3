package web

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// TestAPIErrorMapping checks that errors.go keeps every API answer inside
// SPEC §8's statuses, whatever error reaches it: a TooLarge from the
// import's checks, statuses Echo or net/http pick themselves, untyped
// errors.
func TestAPIErrorMapping(t *testing.T) {
	s := &Server{logger: slog.New(slog.DiscardHandler)}
	e := echo.New()
	cases := []struct {
		name   string
		err    error
		status int
		reason string
		field  string
	}{
		{"TooLarge", &snapdeck.Error{Code: snapdeck.TooLarge, Message: "The file is over 8 MiB."}, 400, "request-too-large", ""},
		{"TooLarge with its reason", &snapdeck.Error{Code: snapdeck.TooLarge, Reason: "import-too-large", Message: "Too big."}, 400, "import-too-large", ""},
		{"Echo's 413", echo.ErrStatusRequestEntityTooLarge, 400, "request-too-large", ""},
		{"Echo's 415", echo.ErrUnsupportedMediaType, 400, "invalid-request", ""},
		{"net/http's 416", &echo.HTTPError{Code: http.StatusRequestedRangeNotSatisfiable}, 400, "range-not-satisfiable", "Range"},
		{"net/http's 412", &echo.HTTPError{Code: http.StatusPreconditionFailed}, 400, "precondition-failed", ""},
		{"a 422", echo.NewHTTPError(http.StatusUnprocessableEntity, "no"), 400, "invalid-request", ""},
		{"a 503", echo.ErrServiceUnavailable, 500, "internal-error", ""},
		{"Busy", &snapdeck.Error{Code: snapdeck.Busy, Reason: "ongoing-database-operation", Message: "Busy."}, 409, "ongoing-database-operation", ""},
		{"TooMany", &snapdeck.Error{Code: snapdeck.TooMany, Message: "Slow down."}, 429, "rate-limited", ""},
		{"untyped", errors.New("disk on fire"), 500, "internal-error", ""},
	}
	for _, tc := range cases {
		for _, path := range []string{"/v1/instances/abc/import", "/oauth/token"} {
			rec := httptest.NewRecorder()
			c := e.NewContext(httptest.NewRequest(http.MethodPost, path, nil), rec)
			c.Response().Header().Set(echo.HeaderContentType, "text/plain; charset=utf-8")
			s.handleError(tc.err, c)
			var body struct {
				Errors []apiError `json:"errors"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || len(body.Errors) != 1 {
				t.Errorf("%s on %s: body %q is not the API's error shape", tc.name, path, rec.Body)
				continue
			}
			got := body.Errors[0]
			if rec.Code != tc.status || got.Reason != tc.reason || got.Field != tc.field || got.Message == "" {
				t.Errorf("%s on %s: got %d %+v, want %d reason %q field %q and a message", tc.name, path, rec.Code, got, tc.status, tc.reason, tc.field)
			}
			if ct := rec.Header().Get(echo.HeaderContentType); ct != echo.MIMEApplicationJSON {
				t.Errorf("%s on %s: Content-Type %q, want application/json", tc.name, path, ct)
			}
			if rec.Header().Get(echo.HeaderXRequestID) == "" {
				t.Errorf("%s on %s: no X-Request-Id", tc.name, path)
			}
		}
	}
}

package web

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/snapdeck/snapdeck/internal/apikey"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// apiMaxBody bounds API request bodies. The largest real request, an
// instance create, is a few hundred bytes.
const apiMaxBody = 64 << 10

const apiKeyKey = "api_key"

// api serves the Aura-compatible API of SPEC §8. Console and API share
// domain calls, not handlers.
type api struct {
	s       *Server
	keys    *apikey.Manager
	limiter *apikey.Limiter
}

func (s *Server) newAPI() *api {
	l := s.deps.APILimiter
	if l == nil {
		l = apikey.NewLimiter(apikey.DefaultRate, time.Minute)
	}
	return &api{s: s, keys: s.deps.APIKeys, limiter: l}
}

// guard runs before routing for API paths: it maps aura-cli's beta prefix
// /v1beta5 onto /v1, and bounds the body. It refuses an announced oversize
// body itself, as 400: Aura clients panic on 413, which the console-wide
// limit would answer. It runs before the request-id middleware: errors.go
// gives what it refuses an id.
func (a *api) guard(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if rest, ok := strings.CutPrefix(r.URL.Path, "/v1beta5"); ok && (rest == "" || rest[0] == '/') {
			r.URL.Path, r.URL.RawPath = "/v1"+rest, ""
		}
		if !isAPI(r.URL.Path) {
			return next(c)
		}
		if r.Method == http.MethodOptions {
			// Echo would answer 204 itself, outside SPEC §8's statuses; the
			// API serves no cross-origin callers.
			return echo.ErrMethodNotAllowed
		}
		if isUpload(r) {
			return next(c) // import chunks: bounded by their handler
		}
		if r.ContentLength > apiMaxBody {
			return tooLarge()
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(c.Response(), r.Body, apiMaxBody)
		}
		return next(c)
	}
}

func tooLarge() error {
	return &snapdeck.Error{Code: snapdeck.Invalid, Reason: "request-too-large",
		Message: "The request body is larger than 64 KiB."}
}

// token is POST /oauth/token: the OAuth2 client-credentials grant, with
// the client id and secret in HTTP Basic (or, as RFC 6749 allows, in the
// form).
func (a *api) token(c echo.Context) error {
	switch gt := c.FormValue("grant_type"); gt {
	case "client_credentials":
	case "":
		return &snapdeck.Error{Code: snapdeck.Invalid, Reason: "invalid-request", Field: "grant_type",
			Message: "Send grant_type=client_credentials as a form field."}
	default:
		return &snapdeck.Error{Code: snapdeck.Invalid, Reason: "unsupported-grant-type", Field: "grant_type",
			Message: "Only grant_type=client_credentials is supported."}
	}
	id, secret, ok := c.Request().BasicAuth()
	if !ok {
		id, secret = c.FormValue("client_id"), c.FormValue("client_secret")
	}
	k, err := a.keys.Authenticate(c.Request().Context(), id, secret)
	if err != nil {
		return err
	}
	tok, ttl := a.keys.IssueToken(k)
	return c.JSON(http.StatusOK, map[string]any{
		"access_token": tok, "expires_in": int(ttl.Seconds()), "token_type": "bearer",
	})
}

// bearer authenticates an API call by its access token, then applies the
// key's rate limit.
func (a *api) bearer(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		scheme, tok, _ := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
		if !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(tok) == "" {
			return &snapdeck.Error{Code: snapdeck.Unauthorized, Reason: "unauthorized",
				Message: "Send an access token from /oauth/token as Authorization: Bearer <token>."}
		}
		k, err := a.keys.Verify(c.Request().Context(), strings.TrimSpace(tok))
		if err != nil {
			return err
		}
		if ok, wait := a.limiter.Allow(strconv.FormatInt(k.ID, 10), a.s.deps.Now()); !ok {
			secs := int(math.Ceil(wait.Seconds()))
			c.Response().Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
			return &snapdeck.Error{Code: snapdeck.TooMany, Reason: "rate-limited",
				Message: "Too many requests for this API key; retry after the time in Retry-After."}
		}
		c.Set(apiKeyKey, k)
		return next(c)
	}
}

// apiWriter lets through keys whose owner may change things: a key acts
// with its owner's current role.
func apiWriter(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !callerKey(c).UserRole.CanWrite() {
			return &snapdeck.Error{Code: snapdeck.Forbidden, Reason: "forbidden",
				Message: "This API key belongs to a viewer, who may look but not change anything."}
		}
		return next(c)
	}
}

// callerKey returns the API key of the call.
func callerKey(c echo.Context) snapdeck.APIKey {
	k, _ := c.Get(apiKeyKey).(snapdeck.APIKey)
	return k
}

// tenant returns the console's tenant id, which never changes.
func (a *api) tenant(echo.Context) (string, error) {
	return a.s.deps.APIKeys.TenantID(), nil
}

// data writes a success body in Aura's envelope.
func data(c echo.Context, status int, v any) error {
	return c.JSON(status, map[string]any{"data": v})
}

// isBodyTooLarge reports whether reading the body hit apiMaxBody.
func isBodyTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

// Package web is the console's HTTP face: Echo routes, handlers and
// middleware over the domain packages. Handlers parse, call one domain
// method and render; errors go to the one mapping in errors.go.
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/apikey"
	"github.com/snapdeck/snapdeck/internal/auth"
	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/dbtoken"
	"github.com/snapdeck/snapdeck/internal/metrics"
	"github.com/snapdeck/snapdeck/internal/schedule"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/upload"
)

// Config is what the web layer needs to know about its surroundings.
type Config struct {
	// Version is the console's version, shown in the footer and /healthz.
	Version string
	// SessionMaxAge is how long a sign-in lasts.
	SessionMaxAge time.Duration
	// MaxFormSize bounds request bodies other than uploads.
	MaxFormSize int64
	// MaxImportSize bounds uploads to the IMPORT DATABASE tab and the
	// API's import (--max-import-size); zero means 4 GiB.
	MaxImportSize int64
	// ImportCheckTimeout bounds the check of one upload, running SQL text
	// included (--import-check-timeout); zero means importfile's default.
	ImportCheckTimeout time.Duration
	// PublicURL is the console's address as its users reach it, such as
	// https://console.example.com behind a TLS-terminating proxy, checked
	// by ParsePublicURL. Absolute links use it, an https one marks the
	// cookies Secure, and client addresses are then read from
	// X-Forwarded-For as set by a proxy on a loopback or private address.
	// Empty: links follow each request, as it reached the console.
	PublicURL string
}

// ParsePublicURL checks a public URL: http or https, a host, no path
// beyond "/", no query, fragment or user. It returns it without the
// trailing slash, ready for paths to be appended.
func ParsePublicURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL: %v", raw, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%q: want an http:// or https:// URL", raw)
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("%q: the URL has no host", raw)
	case u.User != nil:
		return "", fmt.Errorf("%q: the URL must not carry a user or password", raw)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#"):
		return "", fmt.Errorf("%q: the URL must not have a query or fragment", raw)
	case u.Path != "" && u.Path != "/":
		return "", fmt.Errorf("%q: the console is served at the root of its host; drop the path %s", raw, u.Path)
	}
	return u.Scheme + "://" + u.Host, nil
}

// Deps are the domain services the handlers call.
type Deps struct {
	// Store is reached only by /healthz, to tell the store answers;
	// everything else goes through the services. It is the console's
	// *store.DB.
	Store Pinger
	// Databases and Snapshots are the database services: every action on
	// a database, through the console or the API, is one call to them,
	// which records it in the activity log.
	Databases *database.Databases
	Snapshots *database.Snapshots
	// Auth signs users in, manages them and owns the session store.
	Auth *auth.Authenticator
	// Activity is the activity log, read by /activity; only the services
	// write it.
	Activity *activity.Recorder
	// Uploads are the API's resumable uploads, loaded by Snapshots.Load.
	Uploads *upload.Service
	Logger  *slog.Logger
	Now     func() time.Time
	// NextSnapshot tells when a database's next Scheduled snapshot is
	// due; nil when no scheduler runs.
	NextSnapshot func(d snapdeck.Database) time.Time
	// Scheduler changes schedule overrides and flags databases whose
	// Scheduled snapshots keep failing.
	Scheduler *schedule.Scheduler
	// Metrics is what /metrics serves; nil serves an empty registry.
	Metrics *metrics.Metrics
	// APIKeys issues and checks the API's keys and tokens.
	APIKeys *apikey.Manager
	// APILimiter is the per-key rate limit; nil means Aura's 125 a minute.
	APILimiter *apikey.Limiter
	// Tokens issues, lists and revokes the data plane's tokens.
	Tokens *dbtoken.Service
	// DataPlane serves Hrana over HTTP under /db/ (SPEC §9); nil serves
	// nothing there.
	DataPlane http.Handler
}

// Pinger is what /healthz needs of the store: that it answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Server is the console's HTTP handler.
type Server struct {
	cfg      Config
	deps     Deps
	e        *echo.Echo
	sessions *auth.SessionStore
	logger   *slog.Logger
	// csrfKey signs the CSRF tokens of signed-in users.
	csrfKey []byte
	// secureCookies marks cookies Secure on every request, not just TLS
	// ones: the public URL is https.
	secureCookies bool
	// stop is New's ctx, done when the console shuts down: work a request
	// runs past a quick answer (an upload's check) stops with it, so that
	// shutting down does not wait for it.
	stop context.Context
}

// New builds the server and its routes. The session and CSRF keys are
// kept by auth in the store, so sign-ins survive a restart.
func New(ctx context.Context, cfg Config, deps Deps) (*Server, error) {
	if cfg.SessionMaxAge == 0 {
		cfg.SessionMaxAge = 7 * 24 * time.Hour
	}
	if cfg.MaxFormSize == 0 {
		cfg.MaxFormSize = 1 << 20
	}
	// New builds none of its dependencies: internal/app wires them once,
	// for serve and the tests alike.
	switch {
	case deps.Activity == nil:
		return nil, errors.New("web: Deps.Activity is required: /activity reads it")
	case deps.Store == nil, deps.Databases == nil, deps.Snapshots == nil, deps.Uploads == nil, deps.Auth == nil, deps.Scheduler == nil, deps.APIKeys == nil, deps.Tokens == nil:
		return nil, errors.New("web: Deps needs its Store, Databases, Snapshots, Uploads, Auth, Scheduler, APIKeys and Tokens")
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PublicURL != "" {
		u, err := ParsePublicURL(cfg.PublicURL)
		if err != nil {
			return nil, fmt.Errorf("public URL: %w", err)
		}
		cfg.PublicURL = u
	}
	secure := strings.HasPrefix(cfg.PublicURL, "https://")
	ss, err := deps.Auth.NewSessionStore(ctx, cfg.SessionMaxAge, secure)
	if err != nil {
		return nil, err
	}
	csrfKey, err := deps.Auth.StoredKey(ctx, "csrf_key")
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, deps: deps, e: echo.New(), sessions: ss, logger: deps.Logger, csrfKey: csrfKey, secureCookies: secure, stop: ctx}
	s.e.HideBanner = true
	s.e.HidePort = true
	// The client's address (sign-in throttling) is where the connection
	// comes from: headers anyone can send are not believed. Behind a proxy,
	// which the public URL tells, it is what a proxy on a loopback or
	// private address put in X-Forwarded-For.
	s.e.IPExtractor = echo.ExtractIPDirect()
	if cfg.PublicURL != "" {
		s.e.IPExtractor = echo.ExtractIPFromXFFHeader()
	}
	s.e.HTTPErrorHandler = s.handleError
	s.routes()
	return s, nil
}

// publicURL is the console's address as its users reach it, without a
// trailing slash: the public URL when one is set, else what the request
// shows (its scheme, as Echo reads it, and its Host header).
func (s *Server) publicURL(c echo.Context) string {
	if s.cfg.PublicURL != "" {
		return s.cfg.PublicURL
	}
	return fmt.Sprintf("%s://%s", c.Scheme(), c.Request().Host)
}

// ServeHTTP serves a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.e.ServeHTTP(w, r) }

// Echo returns the router, for tests that walk every route.
func (s *Server) Echo() *echo.Echo { return s.e }

// render writes a component with a status.
func render(c echo.Context, status int, comp templ.Component) error {
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	c.Response().WriteHeader(status)
	return comp.Render(c.Request().Context(), c.Response())
}

// isPartial reports whether an htmx request wants just a fragment: htmx
// sets HX-Request, and a boosted navigation wants the whole page.
func isPartial(c echo.Context) bool {
	h := c.Request().Header
	return h.Get("HX-Request") == "true" && h.Get("HX-Boosted") != "true"
}

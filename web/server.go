// Package web is the console's HTTP face: Echo routes, handlers and
// middleware over the domain packages. Handlers parse, call one domain
// method and render; errors go to the one mapping in errors.go.
package web

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/snapdeck/snapdeck/internal/apikey"
	"github.com/snapdeck/snapdeck/internal/auth"
	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/metrics"
	"github.com/snapdeck/snapdeck/internal/schedule"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/store"
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
}

// Deps are the domain services the handlers call.
type Deps struct {
	Store     *store.DB
	Databases *database.Manager
	Auth      *auth.Authenticator
	Logger    *slog.Logger
	Now       func() time.Time
	// NextSnapshot tells when a database's next Scheduled snapshot is
	// due; nil when no scheduler runs.
	NextSnapshot func(d snapdeck.Database) time.Time
	// Scheduler changes schedule overrides and flags databases whose
	// Scheduled snapshots keep failing; New makes one that is not started
	// (overrides are stored, nothing runs) when nil.
	Scheduler *schedule.Scheduler
	// Metrics is what /metrics serves; nil serves an empty registry.
	Metrics *metrics.Metrics
	// APIKeys issues and checks the API's keys and tokens; New makes one
	// over Store when nil.
	APIKeys *apikey.Manager
	// APILimiter is the per-key rate limit; nil means Aura's 125 a minute.
	APILimiter *apikey.Limiter
}

// Server is the console's HTTP handler.
type Server struct {
	cfg      Config
	deps     Deps
	e        *echo.Echo
	sessions *sessionStore
	logger   *slog.Logger
	// stop is New's ctx, done when the console shuts down: work a request
	// runs past a quick answer (an upload's check) stops with it, so that
	// shutting down does not wait for it.
	stop context.Context
}

// New builds the server and its routes. The session keys live in the store
// so sign-ins survive a restart.
func New(ctx context.Context, cfg Config, deps Deps) (*Server, error) {
	if cfg.SessionMaxAge == 0 {
		cfg.SessionMaxAge = 7 * 24 * time.Hour
	}
	if cfg.MaxFormSize == 0 {
		cfg.MaxFormSize = 1 << 20
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	ss, err := newSessionStore(ctx, deps.Store, cfg.SessionMaxAge)
	if err != nil {
		return nil, err
	}
	if deps.APIKeys == nil {
		if deps.APIKeys, err = apikey.NewManager(ctx, deps.Store, deps.Logger, deps.Now); err != nil {
			return nil, err
		}
	}
	if deps.Scheduler == nil {
		deps.Scheduler = schedule.New(schedule.Config{Store: deps.Store, Databases: deps.Databases, Logger: deps.Logger})
	}
	s := &Server{cfg: cfg, deps: deps, e: echo.New(), sessions: ss, logger: deps.Logger, stop: ctx}
	s.e.HideBanner = true
	s.e.HidePort = true
	s.e.HTTPErrorHandler = s.handleError
	s.routes()
	return s, nil
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

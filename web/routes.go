package web

import (
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/snapdeck/snapdeck/static"
)

// routes lists every route the console serves, with who may call it.
func (s *Server) routes() {
	e := s.e
	e.Pre(middleware.RemoveTrailingSlash())
	e.Use(middleware.RequestID(), s.requestLogger(), middleware.Recover(), securityHeaders, noStore,
		middleware.BodyLimit(humanLimit(s.cfg.MaxFormSize)), s.csrf, s.loadUser)

	e.GET("/static/*", echo.WrapHandler(static.Handler()))
	e.GET("/healthz", s.healthz)

	e.GET("/login", s.loginForm)
	e.POST("/login", s.login)
	e.POST("/logout", s.logout, signedIn)

	e.GET("/", s.home, signedIn)
	e.GET("/databases", s.listDatabases, signedIn)
	e.GET("/databases/new", s.newDatabase, writer)
	e.POST("/databases", s.createDatabase, writer)
	e.GET("/databases/:id", s.overview, signedIn)
	e.GET("/databases/:id/query", s.queryForm, signedIn)
	e.POST("/databases/:id/query", s.query, signedIn) // viewers run read-only
	e.GET("/databases/:id/snapshots", s.snapshots, signedIn)
	e.GET("/databases/:id/import", s.importTab, signedIn)
	e.GET("/databases/:id/settings", s.settings, signedIn)
	e.POST("/databases/:id/settings/rename", s.rename, writer)
	e.POST("/databases/:id/settings/plan", s.setPlan, writer)
	e.POST("/databases/:id/delete", s.deleteDatabase, writer)

	e.GET("/import", s.importHelp, signedIn)

	e.GET("/users", s.listUsers, admin)
	e.POST("/users", s.addUser, admin)
	e.POST("/users/:uid/role", s.setRole, admin)
	e.POST("/users/:uid/disable", s.disableUser, admin)
	e.POST("/users/:uid/enable", s.enableUser, admin)
}

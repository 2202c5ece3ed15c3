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
		middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{Limit: humanLimit(s.cfg.MaxFormSize),
			Skipper: func(c echo.Context) bool { return isUpload(c.Request()) || isDataPlane(c.Request().URL.Path) }}), s.csrf, s.loadUser)

	e.GET("/static/*", echo.WrapHandler(static.Handler()))
	e.GET("/healthz", s.healthz)
	e.GET("/metrics", s.metricsHandler())

	e.GET("/login", s.loginForm)
	e.POST("/login", s.login)
	e.POST("/logout", s.logout, signedIn)
	e.GET("/account/password", s.passwordForm, signedIn)
	e.POST("/account/password", s.changePassword, signedIn)

	e.GET("/", s.home, signedIn)
	e.GET("/databases", s.listDatabases, signedIn)
	e.GET("/databases/new", s.newDatabase, writer)
	e.POST("/databases", s.createDatabase, writer)
	e.GET("/databases/:id", s.overview, signedIn)
	e.GET("/databases/:id/query", s.queryForm, signedIn)
	e.POST("/databases/:id/query", s.query, signedIn) // viewers run read-only
	e.GET("/databases/:id/snapshots", s.snapshots, signedIn)
	e.POST("/databases/:id/snapshots", s.takeSnapshot, writer)
	e.GET("/databases/:id/snapshots/:sid/export", s.exportSnapshot, writer)
	e.GET("/databases/:id/snapshots/:sid/restore", s.restoreForm, writer)
	e.POST("/databases/:id/snapshots/:sid/restore", s.restore, writer)
	e.GET("/databases/:id/snapshots/:sid/create-database", s.createFromSnapshotForm, writer)
	e.POST("/databases/:id/snapshots/:sid/create-database", s.createFromSnapshot, writer)
	e.GET("/jobs/:jid", s.jobPage, signedIn)
	e.GET("/activity", s.activity, signedIn)
	e.GET("/databases/:id/import", s.importTab, signedIn)
	e.POST("/databases/:id/import", s.importUpload, writer) // multipart field dump, streamed
	e.GET("/databases/:id/settings", s.settings, signedIn)
	e.POST("/databases/:id/settings/rename", s.rename, writer)
	e.POST("/databases/:id/settings/plan", s.setPlan, writer)
	e.POST("/databases/:id/settings/schedule", s.setSchedule, writer)
	e.POST("/databases/:id/delete", s.deleteDatabase, writer)
	e.POST("/databases/:id/tokens", s.createToken, writer) // answers the new token, once
	e.POST("/databases/:id/tokens/:tid/revoke", s.revokeToken, writer)

	e.GET("/import", s.importHelp, signedIn)

	e.GET("/users", s.listUsers, admin)
	e.POST("/users", s.addUser, admin)
	e.POST("/users/:uid/role", s.setRole, admin)
	e.POST("/users/:uid/disable", s.disableUser, admin)
	e.POST("/users/:uid/enable", s.enableUser, admin)

	// API keys, per-database credentials, and the Aura-compatible API
	// (SPEC §8): bearer tokens instead of cookies, JSON errors.
	e.GET("/settings/api-keys", s.apiKeys, signedIn)
	e.POST("/settings/api-keys", s.createAPIKey, writer)
	e.POST("/settings/api-keys/:kid/revoke", s.revokeAPIKey, writer)
	e.POST("/databases/:id/settings/credentials", s.resetCredentials, writer)
	a := s.newAPI()
	e.Pre(a.guard)
	e.POST("/oauth/token", a.token)
	// Per route, not on a group: a group's middleware would answer 404
	// where Echo answers 405 for a known path with another method.
	v1, bearer := e.Group("/v1"), a.bearer
	v1.GET("/tenants", a.listTenants, bearer)
	v1.GET("/tenants/:tid", a.getTenant, bearer)
	v1.GET("/tenants/:tid/metrics-integration", a.metricsIntegration, bearer)
	v1.GET("/instances", a.listInstances, bearer)
	v1.POST("/instances", a.createInstance, bearer, apiWriter)
	v1.GET("/instances/:id", a.getInstance, bearer)
	v1.PATCH("/instances/:id", a.updateInstance, bearer, apiWriter)
	v1.DELETE("/instances/:id", a.deleteInstance, bearer, apiWriter)
	v1.POST("/instances/:id/pause", a.pauseInstance, bearer, apiWriter)
	v1.POST("/instances/:id/resume", a.resumeInstance, bearer, apiWriter)
	v1.POST("/instances/:id/overwrite", a.overwriteInstance, bearer, apiWriter)
	v1.GET("/instances/:id/snapshots", a.listSnapshots, bearer)
	v1.POST("/instances/:id/snapshots", a.takeSnapshot, bearer, apiWriter)
	v1.GET("/instances/:id/snapshots/:sid", a.getSnapshot, bearer)
	v1.POST("/instances/:id/snapshots/:sid/restore", a.restoreSnapshot, bearer, apiWriter)
	// snapdeck's extension: Aura has no export endpoint.
	v1.GET("/instances/:id/snapshots/:sid/export", a.exportSnapshot, bearer, apiWriter)
	// snapdeck's extension: the data plane's tokens (SPEC §9).
	v1.POST("/instances/:id/tokens", a.createToken, bearer, apiWriter)
	// The import extension used by push-to-cloud: announce, then resumable
	// chunks (docs/api.md).
	im := a.newImportAPI()
	v1.POST("/instances/:id/import", im.start, bearer, apiWriter)
	v1.GET("/instances/:id/import/:uid", im.status, bearer, apiWriter)
	v1.PUT("/instances/:id/import/:uid", im.put, bearer, apiWriter)

	// The data plane (SPEC §9): Hrana over HTTP for libSQL clients at
	// /db/<id>/v2/pipeline and the rest. A database's bearer token, no
	// session or CSRF, JSON answers; its body limit is its own.
	if s.deps.DataPlane != nil {
		e.Any("/db/*", s.dataPlane)
	}
}

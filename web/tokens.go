package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/snapdeck/snapdeck/internal/dbtoken"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/views"
)

// connectionURL is database id's data-plane URL (SPEC §9), with the
// trailing slash the clients append v2/pipeline to.
func (s *Server) connectionURL(c echo.Context, id string) string {
	return s.publicURL(c) + "/db/" + id + "/"
}

// createToken issues a token and shows it in the reply itself, never
// through a redirect: the token is not kept anywhere to show it later.
func (s *Server) createToken(c echo.Context) error {
	d, err := s.database(c)
	if err != nil {
		return err
	}
	name, scope := c.FormValue("name"), c.FormValue("scope")
	t, secret, err := s.deps.Tokens.Issue(c.Request().Context(), actor(c), d.ID, name, dbtoken.Scope(scope))
	if e, ok := snapdeck.AsError(err); ok && e.Code == snapdeck.Invalid {
		return s.overviewPage(c, http.StatusBadRequest, d,
			views.Overview{TokenName: name, TokenScope: scope, TokenError: e.Message, TokenField: e.Field})
	}
	if err != nil {
		return err
	}
	return s.overviewPage(c, http.StatusOK, d, views.Overview{NewToken: &views.NewToken{Token: t, Secret: secret}})
}

func (s *Server) revokeToken(c echo.Context) error {
	d, err := s.database(c)
	if err != nil {
		return err
	}
	if err := s.deps.Tokens.Revoke(c.Request().Context(), actor(c), d.ID, c.Param("tid")); err != nil {
		return err
	}
	s.flash(c, "ok", "Token revoked: applications using it are refused from now on.")
	return c.Redirect(http.StatusSeeOther, "/databases/"+d.ID+"#tokens")
}

// tokenRequest is the body of POST /v1/instances/{id}/tokens.
type tokenRequest struct {
	Name  string `json:"name"`
	Scope string `json:"scope"`
}

// apiToken is the reply: the token, shown only here, and where it works.
type apiToken struct {
	ID    string `json:"id"`
	Token string `json:"token"`
	URL   string `json:"url"`
	Scope string `json:"scope"`
}

// createToken is POST /v1/instances/{id}/tokens, snapdeck's extension:
// a data-plane token for the instance.
func (a *api) createToken(c echo.Context) error {
	d, err := a.findInstance(c)
	if err != nil {
		return err
	}
	var req tokenRequest
	if err := decodeJSON(c, &req, false); err != nil {
		return a.s.deps.Tokens.Unreadable(c.Request().Context(), actor(c), d.ID, err)
	}
	t, secret, err := a.s.deps.Tokens.Issue(c.Request().Context(), actor(c), d.ID, req.Name, dbtoken.Scope(req.Scope))
	if err != nil {
		return err
	}
	return data(c, http.StatusOK, apiToken{ID: t.ID, Token: secret, URL: a.s.connectionURL(c, d.ID), Scope: string(t.Scope)})
}

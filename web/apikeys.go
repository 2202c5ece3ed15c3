package web

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/views"
)

// apiKeysPage renders the API keys page with the caller's keys (everyone's
// for admins).
func (s *Server) apiKeysPage(c echo.Context, status int, v views.APIKeys) error {
	keys, err := s.deps.APIKeys.List(c.Request().Context(), *currentUser(c))
	if err != nil {
		return err
	}
	v.Keys, v.ConsoleURL = keys, s.publicURL(c)
	return render(c, status, views.APIKeysPage(s.page(c, "API keys", "api-keys"), v))
}

func (s *Server) apiKeys(c echo.Context) error {
	return s.apiKeysPage(c, http.StatusOK, views.APIKeys{})
}

// createAPIKey shows the new key's secret in the reply itself, never
// through a redirect: the secret is not kept anywhere to show it later.
func (s *Server) createAPIKey(c echo.Context) error {
	u := currentUser(c)
	name := c.FormValue("name")
	k, secret, err := s.deps.APIKeys.Create(c.Request().Context(), *u, name)
	if snapdeck.ErrorCode(err) == snapdeck.Invalid {
		return s.apiKeysPage(c, http.StatusBadRequest, views.APIKeys{Name: name, Error: snapdeck.ErrorMessage(err)})
	}
	if err != nil {
		return err
	}
	return s.apiKeysPage(c, http.StatusOK, views.APIKeys{New: &views.NewAPIKey{Key: k, Secret: secret}})
}

func (s *Server) revokeAPIKey(c echo.Context) error {
	id, err := strconv.ParseInt(c.Param("kid"), 10, 64)
	if err != nil {
		return &snapdeck.Error{Code: snapdeck.NotFound, Message: "No such API key."}
	}
	k, err := s.deps.APIKeys.Revoke(c.Request().Context(), *currentUser(c), id)
	if err != nil {
		return err
	}
	s.flash(c, "ok", fmt.Sprintf("API key %s revoked; its tokens no longer work.", k.Name))
	return c.Redirect(http.StatusSeeOther, "/settings/api-keys")
}

package web

import (
	"github.com/labstack/echo/v4"

	"github.com/snapdeck/snapdeck/internal/apikey"
)

// actor is who acts in a request: the API key, by name, or the signed-in
// user's email. The services record it in the activity log.
func actor(c echo.Context) string {
	if c.Get(apiKeyKey) != nil {
		return apikey.Actor(callerKey(c))
	}
	if u := currentUser(c); u != nil {
		return u.Email
	}
	return ""
}

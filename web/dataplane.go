package web

import (
	"github.com/labstack/echo/v4"

	"github.com/snapdeck/snapdeck/internal/dataplane"
)

// dataPlane hands a /db/ request to the data plane, telling it the public
// URL for the base_url of its answers.
func (s *Server) dataPlane(c echo.Context) error {
	r := c.Request()
	s.deps.DataPlane.ServeHTTP(c.Response(), r.WithContext(dataplane.WithPublicURL(r.Context(), s.publicURL(c))))
	return nil
}

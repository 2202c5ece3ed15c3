package web

import (
	"github.com/labstack/echo/v4"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/apikey"
)

// record writes an action that a handler still carries out itself, or
// refuses before any service is called, to the activity log through the
// services' Recorder, so its outcome follows the same rule. Everything a
// service does, it records itself.
func (s *Server) record(c echo.Context, action activity.Action, dbID, sid, detail string, err error) {
	s.deps.Activity.Record(c.Request().Context(), activity.Entry{Actor: actor(c), Action: action,
		DatabaseID: dbID, SnapshotID: sid, Detail: detail, Err: err})
}

// actor is who acts in a request: the API key, by name, or the signed-in
// user's email.
func actor(c echo.Context) string {
	if c.Get(apiKeyKey) != nil {
		return apikey.Actor(callerKey(c))
	}
	if u := currentUser(c); u != nil {
		return u.Email
	}
	return ""
}

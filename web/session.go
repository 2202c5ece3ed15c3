package web

import "github.com/gorilla/sessions"

// sessionCookie names the cookie that carries the signed session id.
const sessionCookie = "snapdeck_session"

// sessionUserID reads the signed-in user's id from session values, which
// come back from JSON as float64.
func sessionUserID(sess *sessions.Session) int64 {
	switch v := sess.Values["user_id"].(type) {
	case int64:
		return v
	case float64:
		return int64(v)
	}
	return 0
}

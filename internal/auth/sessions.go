package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/store"
)

// SessionStore is a gorilla/sessions Store whose sessions live in the
// console's store; the cookie carries only the signed session id. Ending a
// session on the server (sign-out, a password change, disabling a user)
// therefore ends it everywhere.
type SessionStore struct {
	db     *store.DB
	codecs []securecookie.Codec
	maxAge time.Duration
	// secure marks the cookie Secure on every request, not only on TLS
	// ones: the console is reached over https through a proxy.
	secure bool
}

// NewSessionStore returns the session store over the console's store; its
// signing key is kept there, so sign-ins survive a restart. secure marks
// the cookie Secure on every request.
func (a *Authenticator) NewSessionStore(ctx context.Context, maxAge time.Duration, secure bool) (*SessionStore, error) {
	db := a.db
	raw, err := a.StoredKey(ctx, "session_hash_key")
	if err != nil {
		return nil, err
	}
	codec := securecookie.New(raw, nil)
	codec.MaxAge(int(maxAge.Seconds()))
	return &SessionStore{db: db, codecs: []securecookie.Codec{codec}, maxAge: maxAge, secure: secure}, nil
}

// StoredKey returns a 32-byte secret kept in the store under name, made on
// first use, so it survives restarts: the session and CSRF keys.
func (a *Authenticator) StoredKey(ctx context.Context, name string) ([]byte, error) {
	key, err := a.db.MetaOrInit(ctx, name, func() string { return RandomSecret(32) })
	if err != nil {
		return nil, err
	}
	raw, err := base64.RawURLEncoding.DecodeString(key)
	if err != nil {
		return nil, fmt.Errorf("the key %s in the store is damaged: %w", name, err)
	}
	return raw, nil
}

// Get returns the request's session, cached for the request.
func (s *SessionStore) Get(r *http.Request, name string) (*sessions.Session, error) {
	return sessions.GetRegistry(r).Get(s, name)
}

// New loads the session named by the cookie, or starts an empty one.
func (s *SessionStore) New(r *http.Request, name string) (*sessions.Session, error) {
	sess := sessions.NewSession(s, name)
	sess.Options = &sessions.Options{Path: "/", MaxAge: int(s.maxAge.Seconds()), HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: s.secure || r.TLS != nil}
	sess.IsNew = true
	c, err := r.Cookie(name)
	if err != nil {
		return sess, nil
	}
	var id string
	if err := securecookie.DecodeMulti(name, c.Value, &id, s.codecs...); err != nil {
		return sess, nil // a stale or forged cookie is just no session
	}
	row, err := s.db.FindSession(r.Context(), id)
	if snapdeck.ErrorCode(err) == snapdeck.NotFound {
		return sess, nil
	}
	if err != nil {
		return sess, err
	}
	values := map[string]any{}
	if err := json.Unmarshal([]byte(row.Data), &values); err != nil {
		return sess, nil
	}
	for k, v := range values {
		sess.Values[k] = v
	}
	sess.ID = id
	sess.IsNew = false
	return sess, nil
}

// Delete ends a session on the server, wherever its cookie is.
func (s *SessionStore) Delete(ctx context.Context, id string) error {
	return s.db.DeleteSession(ctx, id)
}

// Save writes the session to the store and the cookie; MaxAge < 0 deletes it.
func (s *SessionStore) Save(r *http.Request, w http.ResponseWriter, sess *sessions.Session) error {
	if sess.Options.MaxAge < 0 {
		if sess.ID != "" {
			if err := s.db.DeleteSession(r.Context(), sess.ID); err != nil {
				return err
			}
		}
		http.SetCookie(w, sessions.NewCookie(sess.Name(), "", sess.Options))
		return nil
	}
	if sess.ID == "" {
		sess.ID = RandomSecret(32)
	}
	values := map[string]any{}
	for k, v := range sess.Values {
		if ks, ok := k.(string); ok {
			values[ks] = v
		}
	}
	data, err := json.Marshal(values)
	if err != nil {
		return err
	}
	var uid int64
	if v, ok := values["user_id"].(int64); ok {
		uid = v
	} else if v, ok := values["user_id"].(float64); ok {
		uid = int64(v)
	}
	row := store.Session{ID: sess.ID, UserID: uid, Data: string(data), ExpiresAt: time.Now().Add(time.Duration(sess.Options.MaxAge) * time.Second)}
	if err := s.db.SaveSession(r.Context(), row); err != nil {
		return err
	}
	encoded, err := securecookie.EncodeMulti(sess.Name(), sess.ID, s.codecs...)
	if err != nil {
		return err
	}
	http.SetCookie(w, sessions.NewCookie(sess.Name(), encoded, sess.Options))
	return nil
}

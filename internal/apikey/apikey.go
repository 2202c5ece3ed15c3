// Package apikey issues and checks the API's credentials: named API keys
// (a client id and a secret, of which only a hash is kept), the bearer
// tokens the OAuth2 client-credentials flow trades them for, and the
// per-key rate limit. It knows nothing of HTTP.
package apikey

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/auth"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/store"
)

// TokenTTL is how long an access token lasts: Aura's documented hour.
const TokenTTL = time.Hour

// touchEvery bounds how often a key's "last used" time is written, so a
// busy client does not turn every read into a store write.
const touchEvery = time.Minute

// Manager creates, lists and revokes API keys and issues and verifies
// access tokens.
type Manager struct {
	db *store.DB
	// activity records the keys created and revoked.
	activity *activity.Recorder
	tokens   *signer
	logger   *slog.Logger
	now      func() time.Time
	// tenant is the console's tenant id, made once and kept in the store.
	tenant string
}

// NewManager returns a Manager recording the keys created and revoked in
// rec. The token-signing key is kept in the store, so tokens stay valid
// across a restart of the console until they expire.
func NewManager(ctx context.Context, db *store.DB, rec *activity.Recorder, logger *slog.Logger, now func() time.Time) (*Manager, error) {
	if rec == nil {
		return nil, errors.New("apikey: NewManager needs the activity Recorder")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	key, err := db.MetaOrInit(ctx, "api_token_key", func() string { return auth.RandomSecret(32) })
	if err != nil {
		return nil, err
	}
	s, err := newSigner(key)
	if err != nil {
		return nil, err
	}
	// The tenant id is a UUID made on first start and kept, so it never
	// changes: Aura's clients store it.
	tenant, err := db.MetaOrInit(ctx, "tenant_id", uuid.NewString)
	if err != nil {
		return nil, err
	}
	return &Manager{db: db, activity: rec, tokens: s, logger: logger, now: now, tenant: tenant}, nil
}

// TenantID returns the console's one tenant id, as the API shows it.
func (m *Manager) TenantID() string { return m.tenant }

// hashSecret is how secrets are kept. A plain SHA-256 is enough: secrets
// are 32 random bytes, so there is nothing to guess, and checking stays
// cheap on every token request.
func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// validateName checks a key name: 1-64 printable characters.
func validateName(name string) error {
	if name == "" {
		return snapdeck.FieldError("name", "Give the key a name, such as the program that will use it.")
	}
	if n := len([]rune(name)); n > 64 {
		return snapdeck.FieldError("name", "The name is %d characters long; use at most 64.", n)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return snapdeck.FieldError("name", "The name may hold only printable characters.")
		}
	}
	return nil
}

// Create makes a named key for the user and returns it with its secret,
// which is not kept and cannot be shown again. Viewers may not create keys.
// The key, or the refusal, is recorded in the activity log.
func (m *Manager) Create(ctx context.Context, owner snapdeck.User, name string) (snapdeck.APIKey, string, error) {
	k, secret, err := m.create(ctx, owner, name)
	detail := ""
	if err == nil {
		detail = fmt.Sprintf("Created API key %s (%s)", k.Name, k.ClientID)
	}
	m.activity.Record(ctx, activity.Entry{Actor: owner.Email, Action: activity.APIKeyCreate, Detail: detail, Err: err})
	return k, secret, err
}

func (m *Manager) create(ctx context.Context, owner snapdeck.User, name string) (snapdeck.APIKey, string, error) {
	name = strings.TrimSpace(name)
	if !owner.Role.CanWrite() {
		return snapdeck.APIKey{}, "", &snapdeck.Error{Code: snapdeck.Forbidden,
			Message: "Viewers cannot create API keys. Ask an admin for the member role."}
	}
	if err := validateName(name); err != nil {
		return snapdeck.APIKey{}, "", err
	}
	secret := auth.RandomSecret(32)
	k := snapdeck.APIKey{ClientID: "sd_" + auth.RandomSecret(15), SecretHash: hashSecret(secret), Name: name,
		UserID: owner.ID, UserEmail: owner.Email, UserRole: owner.Role, CreatedAt: m.now().UTC()}
	if err := m.db.CreateAPIKey(ctx, &k); err != nil {
		return k, "", err
	}
	m.logger.Info("api key created", "user", owner.Email, "api_key", k.Name)
	return k, secret, nil
}

// List returns the keys a user may see: admins see everyone's, others
// their own.
func (m *Manager) List(ctx context.Context, viewer snapdeck.User) ([]snapdeck.APIKey, error) {
	if viewer.Role.IsAdmin() {
		return m.db.FindAPIKeys(ctx, 0)
	}
	return m.db.FindAPIKeys(ctx, viewer.ID)
}

// Revoke ends a key and every token issued for it. Members revoke their
// own keys, admins anyone's; another user's key is "not found" to a member,
// so ids reveal nothing. The revocation, or its refusal, is recorded in the
// activity log.
func (m *Manager) Revoke(ctx context.Context, by snapdeck.User, id int64) (snapdeck.APIKey, error) {
	k, err := m.revoke(ctx, by, id)
	detail := ""
	if err == nil {
		detail = fmt.Sprintf("Revoked API key %s (%s)", k.Name, k.ClientID)
	}
	m.activity.Record(ctx, activity.Entry{Actor: by.Email, Action: activity.APIKeyRevoke, Detail: detail, Err: err})
	return k, err
}

func (m *Manager) revoke(ctx context.Context, by snapdeck.User, id int64) (snapdeck.APIKey, error) {
	k, err := m.db.FindAPIKey(ctx, id)
	if err != nil {
		return k, err
	}
	if k.UserID != by.ID && !by.Role.IsAdmin() {
		return k, &snapdeck.Error{Code: snapdeck.NotFound, Message: "No such API key."}
	}
	if !by.Role.CanWrite() {
		return k, &snapdeck.Error{Code: snapdeck.Forbidden, Message: "Viewers cannot change API keys."}
	}
	if err := m.db.RevokeAPIKey(ctx, id); err != nil {
		return k, err
	}
	m.logger.Info("api key revoked", "user", by.Email, "api_key", k.Name)
	return k, nil
}

func unauthorized(msg string) error {
	return &snapdeck.Error{Code: snapdeck.Unauthorized, Reason: "unauthorized", Message: msg}
}

// Authenticate checks a client id and secret and returns the key. Every
// failure is the same 401, so a caller learns nothing about which part was
// wrong.
func (m *Manager) Authenticate(ctx context.Context, clientID, secret string) (snapdeck.APIKey, error) {
	bad := unauthorized("The provided credentials are invalid, expired, or revoked.")
	if clientID == "" || secret == "" {
		return snapdeck.APIKey{}, bad
	}
	k, err := m.db.FindAPIKeyByClientID(ctx, clientID)
	if snapdeck.ErrorCode(err) == snapdeck.NotFound {
		return k, bad
	}
	if err != nil {
		return k, err
	}
	if subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(k.SecretHash)) != 1 || k.IsRevoked() || k.UserDisabled {
		return k, bad
	}
	m.touch(ctx, k)
	return k, nil
}

// IssueToken returns an access token for the key and how long it lasts.
func (m *Manager) IssueToken(k snapdeck.APIKey) (string, time.Duration) {
	return m.tokens.sign(k.ID, m.now().Add(TokenTTL)), TokenTTL
}

// Verify checks a bearer token and returns its key, as stored now: a token
// dies with its key's revocation or its owner's disabling, not only at
// expiry.
func (m *Manager) Verify(ctx context.Context, token string) (snapdeck.APIKey, error) {
	id, exp, err := m.tokens.verify(token)
	if err != nil {
		return snapdeck.APIKey{}, unauthorized("The access token is not valid. Request a new one from /oauth/token.")
	}
	if !m.now().Before(exp) {
		return snapdeck.APIKey{}, unauthorized("The access token has expired. Request a new one from /oauth/token.")
	}
	k, err := m.db.FindAPIKey(ctx, id)
	if snapdeck.ErrorCode(err) == snapdeck.NotFound {
		return k, unauthorized("The access token's API key no longer exists.")
	}
	if err != nil {
		return k, err
	}
	if k.IsRevoked() {
		return k, unauthorized("The access token's API key was revoked.")
	}
	if k.UserDisabled {
		return k, unauthorized("The access token's API key belongs to a disabled user.")
	}
	m.touch(ctx, k)
	return k, nil
}

// touch records the key's use, at most once a minute. A failure only costs
// an out-of-date "last used", so it is logged, not returned.
func (m *Manager) touch(ctx context.Context, k snapdeck.APIKey) {
	now := m.now()
	if !k.LastUsedAt.IsZero() && now.Sub(k.LastUsedAt) < touchEvery {
		return
	}
	if err := m.db.TouchAPIKey(ctx, k.ID, now); err != nil {
		m.logger.Warn("record api key use", "api_key", k.Name, "err", err)
	}
}

// Actor names a key as the activity log shows who did something.
func Actor(k snapdeck.APIKey) string { return fmt.Sprintf("api key %s", k.Name) }

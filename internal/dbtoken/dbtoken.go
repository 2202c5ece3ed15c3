// Package dbtoken keeps the data plane's tokens: each lets an application
// reach one hosted database over HTTP, read-write or read-only. A token is
// shown once when it is issued and kept only as its SHA-256; Authenticate
// answers from a cache so that it costs microseconds on every pipeline
// request, and a revoke or a database's deletion empties that cache at
// once.
package dbtoken

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/store"
)

// Scope is what a token may do to its database.
type Scope string

// The scopes. A read-only token runs on read-only connections, so SQLite
// itself refuses its writes.
const (
	ReadWrite Scope = "read-write"
	ReadOnly  Scope = "read-only"
)

// Prefix starts every token, so that one found in a file or a log can be
// told for what it is.
const Prefix = "sdt_"

// secretBytes is the token's randomness: 256 bits, enough that a plain
// SHA-256 (no slow hash) keeps a stolen store from giving tokens away.
const secretBytes = 32

// tokenLen is the length of a well-formed token: the prefix and 32 bytes
// in unpadded base64url.
var tokenLen = len(Prefix) + base64.RawURLEncoding.EncodedLen(secretBytes)

// touchEvery coalesces the recording of a token's last use: a client
// sending thousands of requests a minute writes the store once a minute,
// and the list shows the exact time from memory meanwhile.
const touchEvery = time.Minute

// Grant is what an authenticated token allows: its database and scope.
// The caller refuses a grant whose DatabaseID is not the database the
// request addressed.
type Grant struct {
	TokenID, DatabaseID string
	Scope               Scope
}

// Token is a token as listed; the token itself is never kept.
type Token struct {
	ID, DatabaseID, Name string
	Scope                Scope
	// CreatedBy is who issued it: a user's email or "api key <name>".
	CreatedBy string
	// LastUsedAt is zero when it was never used.
	CreatedAt, LastUsedAt time.Time
}

// Config is every dependency of a Service.
type Config struct {
	Store    *store.DB
	Activity *activity.Recorder
	// Logger is nil for none.
	Logger *slog.Logger
	// Now is the clock; nil is time.Now. Tests move it past touchEvery.
	Now func() time.Time
}

// Service issues, lists, revokes and checks tokens.
type Service struct {
	db       *store.DB
	activity *activity.Recorder
	logger   *slog.Logger
	now      func() time.Time

	mu sync.RWMutex
	// byHash holds the tokens that authenticated since they were last
	// read from the store, by SHA-256; byID the same entries by token id.
	byHash map[[sha256.Size]byte]*entry
	byID   map[string]*entry
	// gen changes on every revoke and forget, so that a store read begun
	// before one does not put the token it read back into the cache.
	gen uint64

	touches sync.WaitGroup
	// afterRead, when set by a test, runs between a store read and the
	// cache update, where a revoke can slip in.
	afterRead func()
}

// entry is a cached valid token.
type entry struct {
	hash  [sha256.Size]byte
	grant Grant
	// lastUsed is the last use in Unix nanoseconds; written the last use
	// recorded in the store.
	lastUsed, written atomic.Int64
}

// New returns a Service over its dependencies.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Activity == nil {
		return nil, errors.New("dbtoken: a Service needs its Store and Activity")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{db: cfg.Store, activity: cfg.Activity, logger: cfg.Logger, now: cfg.Now,
		byHash: map[[sha256.Size]byte]*entry{}, byID: map[string]*entry{}}, nil
}

// Close waits for the last uses being recorded. Call it before the store
// closes, once nothing authenticates any more.
func (s *Service) Close(ctx context.Context) {
	done := make(chan struct{})
	go func() { s.touches.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// Issue makes a token for database dbID and returns it with its secret,
// which is shown this once and never kept. actor is who asked, for the
// activity log.
func (s *Service) Issue(ctx context.Context, actor, dbID, name string, scope Scope) (Token, string, error) {
	name = strings.TrimSpace(name)
	t, secret, err := s.issue(ctx, actor, dbID, name, scope)
	s.activity.Record(ctx, activity.Entry{Actor: actor, Action: activity.TokenIssue, DatabaseID: dbID,
		Detail: describe(name, scope), Err: err})
	return t, secret, err
}

// Unreadable records a token request the door could not read (a body
// that is not JSON, say) as refused, and returns why.
func (s *Service) Unreadable(ctx context.Context, actor, dbID string, why error) error {
	s.activity.Record(ctx, activity.Entry{Actor: actor, Action: activity.TokenIssue, DatabaseID: dbID, Err: why})
	return why
}

func (s *Service) issue(ctx context.Context, actor, dbID, name string, scope Scope) (Token, string, error) {
	if err := validateName(name); err != nil {
		return Token{}, "", err
	}
	if scope != ReadWrite && scope != ReadOnly {
		return Token{}, "", snapdeck.FieldError("scope", "Choose the scope %s or %s.", ReadWrite, ReadOnly)
	}
	var raw [secretBytes]byte
	var id [8]byte
	rand.Read(raw[:])
	rand.Read(id[:])
	secret := Prefix + base64.RawURLEncoding.EncodeToString(raw[:])
	sum := sha256.Sum256([]byte(secret))
	rec := store.TokenRecord{ID: hex.EncodeToString(id[:]), DatabaseID: dbID, Name: name, Scope: string(scope),
		Hash: hex.EncodeToString(sum[:]), CreatedBy: actor, CreatedAt: s.now().UTC()}
	if err := s.db.CreateToken(ctx, &rec); err != nil {
		return Token{}, "", err
	}
	s.logger.Info("database token issued", "database_id", dbID, "token_id", rec.ID, "user", actor)
	return fromRecord(rec), secret, nil
}

// validateName checks a token's name: 1-64 printable characters.
func validateName(name string) error {
	if name == "" {
		return snapdeck.FieldError("name", "Give the token a name, such as the application that will use it.")
	}
	if utf8.RuneCountInString(name) > 64 {
		return snapdeck.FieldError("name", "A token's name has at most 64 characters.")
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return snapdeck.FieldError("name", "A token's name has only printable characters.")
		}
	}
	return nil
}

// describe is the activity log's detail of a token: its name and scope,
// never the secret.
func describe(name string, scope Scope) string {
	return fmt.Sprintf("Token %q (%s)", name, scope)
}

func fromRecord(r store.TokenRecord) Token {
	return Token{ID: r.ID, DatabaseID: r.DatabaseID, Name: r.Name, Scope: Scope(r.Scope), CreatedBy: r.CreatedBy,
		CreatedAt: r.CreatedAt, LastUsedAt: r.LastUsedAt}
}

// List returns database dbID's tokens that are not revoked, newest
// first, each with its last use (from memory when it is newer than the
// store's).
func (s *Service) List(ctx context.Context, dbID string) ([]Token, error) {
	recs, err := s.db.FindTokens(ctx, dbID)
	if err != nil {
		return nil, err
	}
	out := make([]Token, len(recs))
	s.mu.RLock()
	defer s.mu.RUnlock()
	for i, r := range recs {
		out[i] = fromRecord(r)
		if e := s.byID[r.ID]; e != nil {
			if used := e.lastUsed.Load(); used > out[i].LastUsedAt.UnixNano() {
				out[i].LastUsedAt = time.Unix(0, used).UTC()
			}
		}
	}
	return out, nil
}

// Revoke revokes database dbID's token tokenID; it stops authenticating
// before Revoke returns. A token of another database is NotFound.
func (s *Service) Revoke(ctx context.Context, actor, dbID, tokenID string) error {
	rec, err := s.db.RevokeToken(ctx, dbID, tokenID)
	detail := "Token " + tokenID
	if err == nil {
		detail = describe(rec.Name, Scope(rec.Scope))
		s.mu.Lock()
		if e := s.byID[rec.ID]; e != nil {
			delete(s.byHash, e.hash)
			delete(s.byID, rec.ID)
		}
		s.gen++
		s.mu.Unlock()
		s.logger.Info("database token revoked", "database_id", dbID, "token_id", tokenID, "user", actor)
	}
	s.activity.Record(ctx, activity.Entry{Actor: actor, Action: activity.TokenRevoke, DatabaseID: dbID, Detail: detail, Err: err})
	return err
}

// Forget drops database dbID's tokens from the cache, so that none
// authenticates once the database is deleted; the store drops their
// records with the database.
func (s *Service) Forget(dbID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, e := range s.byID {
		if e.grant.DatabaseID == dbID {
			delete(s.byHash, e.hash)
			delete(s.byID, id)
		}
	}
	s.gen++
}

// Authenticate returns what the token in bearer allows. bearer is the
// Authorization header's value, with or without its "Bearer " scheme. A
// missing, malformed, wrong or revoked token is Unauthorized. The grant
// names the token's database: the caller must refuse it for any other.
func (s *Service) Authenticate(ctx context.Context, bearer string) (Grant, error) {
	token := strings.TrimSpace(bearer)
	if len(token) > 7 && strings.EqualFold(token[:7], "bearer ") {
		token = strings.TrimSpace(token[7:])
	}
	if token == "" {
		return Grant{}, unauthorized("This request has no token: send the database's token as Authorization: Bearer <token>.")
	}
	if !wellFormed(token) {
		return Grant{}, unauthorized("The token is malformed: a database token is " + Prefix + " followed by 43 characters.")
	}
	sum := sha256.Sum256([]byte(token))
	s.mu.RLock()
	e, gen := s.byHash[sum], s.gen
	s.mu.RUnlock()
	if e == nil {
		var err error
		if e, err = s.load(ctx, sum, gen); err != nil {
			return Grant{}, err
		}
	}
	s.used(e)
	return e.grant, nil
}

// wellFormed tells whether token has the shape of an issued one, so
// that garbage costs no store read.
func wellFormed(token string) bool {
	if len(token) != tokenLen || !strings.HasPrefix(token, Prefix) {
		return false
	}
	for i := len(Prefix); i < len(token); i++ {
		c := token[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// load reads a token missing from the cache from the store and caches it
// when it is valid, unless a revoke or forget ran since gen: that read
// may be older than the revoke, so it reads again and answers from the
// fresh read without caching it.
func (s *Service) load(ctx context.Context, sum [sha256.Size]byte, gen uint64) (*entry, error) {
	e, err := s.read(ctx, sum)
	if err != nil {
		return nil, err
	}
	if s.afterRead != nil {
		s.afterRead()
	}
	s.mu.Lock()
	if s.gen == gen {
		if cached := s.byHash[sum]; cached != nil {
			e = cached
		} else {
			s.byHash[sum], s.byID[e.grant.TokenID] = e, e
		}
		s.mu.Unlock()
		return e, nil
	}
	s.mu.Unlock()
	return s.read(ctx, sum)
}

// read returns the valid token with this hash from the store.
func (s *Service) read(ctx context.Context, sum [sha256.Size]byte) (*entry, error) {
	rec, err := s.db.FindTokenByHash(ctx, hex.EncodeToString(sum[:]))
	if snapdeck.ErrorCode(err) == snapdeck.NotFound || err == nil && !rec.Revoked.IsZero() {
		return nil, unauthorized("The token is wrong or was revoked.")
	}
	if err != nil {
		return nil, err
	}
	e := &entry{hash: sum, grant: Grant{TokenID: rec.ID, DatabaseID: rec.DatabaseID, Scope: Scope(rec.Scope)}}
	if !rec.LastUsedAt.IsZero() {
		e.lastUsed.Store(rec.LastUsedAt.UnixNano())
		e.written.Store(rec.LastUsedAt.UnixNano())
	}
	return e, nil
}

// used notes a use of e now, and records it in the store when the last
// recorded one is touchEvery old, off the request's path.
func (s *Service) used(e *entry) {
	now := s.now().UnixNano()
	e.lastUsed.Store(now)
	written := e.written.Load()
	if now-written < int64(touchEvery) || !e.written.CompareAndSwap(written, now) {
		return
	}
	s.touches.Add(1)
	go func() {
		defer s.touches.Done()
		if err := s.db.TouchToken(context.Background(), e.grant.TokenID, time.Unix(0, now)); err != nil {
			s.logger.Error("record token use", "database_id", e.grant.DatabaseID, "token_id", e.grant.TokenID, "err", err)
		}
	}()
}

func unauthorized(msg string) error {
	return &snapdeck.Error{Code: snapdeck.Unauthorized, Reason: "token-invalid", Message: msg}
}

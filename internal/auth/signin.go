package auth

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/store"
)

// Throttle limits: after MaxFailures failed sign-ins for one account within
// FailureWindow, further attempts are refused until the oldest ages out.
const (
	MaxFailures   = 5
	FailureWindow = 15 * time.Minute
)

// MinPasswordLength is the shortest password the console accepts.
const MinPasswordLength = 8

// Authenticator checks sign-ins against the store.
type Authenticator struct {
	db     *store.DB
	logger *slog.Logger
	now    func() time.Time
	// dummy is checked for unknown emails so a wrong email costs as much
	// time as a wrong password and does not reveal which accounts exist.
	dummy string
}

// NewAuthenticator returns an Authenticator over the store.
func NewAuthenticator(db *store.DB, logger *slog.Logger, now func() time.Time) *Authenticator {
	if now == nil {
		now = time.Now
	}
	dummy, _ := HashPassword(RandomSecret(16))
	return &Authenticator{db: db, logger: logger, now: now, dummy: dummy}
}

// SignIn returns the user whose email and password match. Wrong credentials
// and disabled users get Unauthorized; too many recent failures get TooMany
// with how long to wait.
func (a *Authenticator) SignIn(ctx context.Context, email, password string) (snapdeck.User, error) {
	email = strings.TrimSpace(email)
	now := a.now()
	failures, err := a.db.LoginFailures(ctx, email, now.Add(-FailureWindow))
	if err != nil {
		return snapdeck.User{}, fmt.Errorf("check sign-in attempts: %w", err)
	}
	if len(failures) >= MaxFailures {
		wait := failures[len(failures)-MaxFailures].Add(FailureWindow).Sub(now)
		minutes := max(1, int(math.Ceil(wait.Minutes())))
		return snapdeck.User{}, &snapdeck.Error{Code: snapdeck.TooMany,
			Message: fmt.Sprintf("Too many failed sign-ins for this account. Try again in %d minute%s.", minutes, plural(minutes))}
	}
	u, err := a.db.FindUserByEmail(ctx, email)
	ok := false
	switch {
	case err == nil:
		ok = CheckPassword(u.PasswordHash, password)
	case snapdeck.ErrorCode(err) == snapdeck.NotFound:
		CheckPassword(a.dummy, password)
	default:
		return snapdeck.User{}, err
	}
	if !ok {
		if err := a.db.RecordLoginFailure(ctx, email, now); err != nil {
			return snapdeck.User{}, err
		}
		return snapdeck.User{}, &snapdeck.Error{Code: snapdeck.Unauthorized, Message: "The email or password is wrong."}
	}
	if u.Disabled {
		return snapdeck.User{}, &snapdeck.Error{Code: snapdeck.Unauthorized, Message: "This account is disabled. Ask an admin to enable it."}
	}
	if err := a.db.ClearLoginFailures(ctx, email, now.Add(-FailureWindow)); err != nil {
		a.logger.Warn("clear sign-in failures", "user", email, "err", err)
	}
	return u, nil
}

// AddUser validates and creates a user with a hashed password.
func (a *Authenticator) AddUser(ctx context.Context, email, password string, role snapdeck.Role) (snapdeck.User, error) {
	email = strings.TrimSpace(email)
	if !strings.Contains(email, "@") || len(email) > 254 || strings.ContainsAny(email, " \t\r\n") {
		return snapdeck.User{}, snapdeck.FieldError("email", "Enter an email address such as ann@example.com.")
	}
	if len(password) < MinPasswordLength {
		return snapdeck.User{}, snapdeck.FieldError("password", "Use a password of at least %d characters.", MinPasswordLength)
	}
	if !role.Valid() {
		return snapdeck.User{}, snapdeck.FieldError("role", "Choose a role: admin, member or viewer.")
	}
	hash, err := HashPassword(password)
	if err != nil {
		return snapdeck.User{}, err
	}
	u := snapdeck.User{Email: email, PasswordHash: hash, Role: role}
	if err := a.db.CreateUser(ctx, &u); err != nil {
		return u, err
	}
	return u, nil
}

// ChangePassword sets a new password after checking the current one, and
// ends every session of the user.
func (a *Authenticator) ChangePassword(ctx context.Context, userID int64, current, next string) error {
	u, err := a.db.FindUser(ctx, userID)
	if err != nil {
		return err
	}
	if !CheckPassword(u.PasswordHash, current) {
		return snapdeck.FieldError("current_password", "The current password is wrong.")
	}
	if len(next) < MinPasswordLength {
		return snapdeck.FieldError("new_password", "Use a password of at least %d characters.", MinPasswordLength)
	}
	hash, err := HashPassword(next)
	if err != nil {
		return err
	}
	return a.db.SetUserPassword(ctx, userID, hash)
}

// EnsureAdmin creates the first admin when no user exists: from email and
// password when given, else admin@localhost with a random password. It
// returns the password it generated ("" when it created nobody or the
// password was given).
func (a *Authenticator) EnsureAdmin(ctx context.Context, email, password string) (created bool, generated string, err error) {
	n, err := a.db.CountUsers(ctx)
	if err != nil || n > 0 {
		return false, "", err
	}
	if email == "" {
		email = "admin@localhost"
	}
	if password == "" {
		generated = RandomSecret(12)
		password = generated
	}
	if _, err := a.AddUser(ctx, email, password, snapdeck.RoleAdmin); err != nil {
		return false, "", fmt.Errorf("create first admin: %w", err)
	}
	return true, generated, nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

package auth

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/store"
)

// MinPasswordLength is the shortest password the console accepts.
const MinPasswordLength = 8

// Authenticator checks sign-ins against the store.
type Authenticator struct {
	db       *store.DB
	activity *activity.Recorder
	logger   *slog.Logger
	now      func() time.Time
	// dummy is checked for unknown emails so a wrong email costs as much
	// time as a wrong password and does not reveal which accounts exist.
	dummy string
	// hashes bounds the argon2 work running at once; failures holds the
	// recent failed sign-ins by address and by account at an address.
	hashes   *hashGate
	failures *throttle
}

// NewAuthenticator returns an Authenticator over the store, recording
// sign-ins and changes to users with rec.
func NewAuthenticator(db *store.DB, rec *activity.Recorder, logger *slog.Logger, now func() time.Time) *Authenticator {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	dummy, _ := HashPassword(RandomSecret(16))
	return &Authenticator{db: db, activity: rec, logger: logger, now: now, dummy: dummy,
		hashes: newHashGate(MaxHashes, maxHashWaiters, hashWait), failures: newThrottle(maxThrottleEntries)}
}

// SignIn returns the user whose email and password match, for a client at
// addr (its IP address). Wrong credentials and disabled users get
// Unauthorized. Too many recent failures from addr, for the account or for
// any, and too many sign-ins being checked at once get TooMany with how long
// to wait (see RetryAfter). Each sign-in and refusal is recorded in the
// activity log, a lockout once, a busy console not at all.
func (a *Authenticator) SignIn(ctx context.Context, email, password, addr string) (snapdeck.User, error) {
	email = strings.TrimSpace(email)
	now := a.now()
	addr = clientAddress(addr)
	acct := accountKey(email, addr)
	// Counted as a failure before the check, in the same step as the
	// limits are checked, so that attempts running together cannot all
	// slip past a limit while their hashes run; taken back below when the
	// attempt did not fail.
	limits := []limit{{addr, MaxAddressFailures}, {acct, MaxFailures}}
	if i, wait, first := a.failures.admit(limits, now); i >= 0 {
		refusal := []struct {
			what  string // for the person refused
			scope string // for the activity log
		}{{"from your address", "from this address"}, {"for this account from your address", "for this account"}}[i]
		if first {
			a.record(ctx, email, addr, snapdeck.Errorf(snapdeck.TooMany, "throttled, %d failed sign-ins %s in %d minutes",
				limits[i].max, refusal.scope, int(FailureWindow.Minutes())))
		}
		minutes := max(1, int(math.Ceil(wait.Minutes())))
		return snapdeck.User{}, &snapdeck.Error{Code: snapdeck.TooMany, Err: retryAfter(wait),
			Message: fmt.Sprintf("Too many failed sign-ins %s. Try again in %d minute%s.", refusal.what, minutes, plural(minutes))}
	}
	u, err := a.db.FindUserByEmail(ctx, email)
	known := err == nil
	if err != nil && snapdeck.ErrorCode(err) != snapdeck.NotFound {
		a.failures.forget(addr, now)
		a.failures.forget(acct, now)
		return snapdeck.User{}, err
	}
	hash := a.dummy
	if known {
		hash = u.PasswordHash
	}
	ok := false
	if err := a.hashes.do(ctx, func() { ok = CheckPassword(hash, password) && known }); err != nil {
		a.failures.forget(addr, now)
		a.failures.forget(acct, now)
		return snapdeck.User{}, err
	}
	if !ok {
		a.record(ctx, email, addr, snapdeck.Errorf(snapdeck.Unauthorized, "wrong email or password"))
		return snapdeck.User{}, &snapdeck.Error{Code: snapdeck.Unauthorized, Message: "The email or password is wrong."}
	}
	a.failures.forget(addr, now)
	a.failures.clear(acct)
	if u.Disabled {
		a.record(ctx, email, addr, snapdeck.Errorf(snapdeck.Unauthorized, "the account is disabled"))
		return snapdeck.User{}, &snapdeck.Error{Code: snapdeck.Unauthorized, Message: "This account is disabled. Ask an admin to enable it."}
	}
	a.record(ctx, email, addr, nil)
	return u, nil
}

// record writes a sign-in from addr to the activity log, under the email
// that was typed; why, when not nil, says in the log's words why it was
// refused. It outlives the request: a client that leaves does not erase
// its attempt.
func (a *Authenticator) record(ctx context.Context, email, addr string, why error) {
	actor := email
	if len(actor) > 254 {
		actor = strings.ToValidUTF8(actor[:254], "")
	}
	if actor == "" {
		actor = "(no email)"
	}
	a.activity.Record(ctx, activity.Entry{Actor: actor, Action: activity.SignIn, Detail: "from " + addr, Err: why})
}

// hash hashes password under the hash gate.
func (a *Authenticator) hash(ctx context.Context, password string) (string, error) {
	var hash string
	var err error
	if gerr := a.hashes.do(ctx, func() { hash, err = HashPassword(password) }); gerr != nil {
		return "", gerr
	}
	return hash, err
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
	hash, err := a.hash(ctx, password)
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
	ok := false
	if err := a.hashes.do(ctx, func() { ok = CheckPassword(u.PasswordHash, current) }); err != nil {
		return err
	}
	if !ok {
		return snapdeck.FieldError("current_password", "The current password is wrong.")
	}
	if len(next) < MinPasswordLength {
		return snapdeck.FieldError("new_password", "Use a password of at least %d characters.", MinPasswordLength)
	}
	hash, err := a.hash(ctx, next)
	if err != nil {
		return err
	}
	return a.db.SetUserPassword(ctx, userID, hash)
}

// ResetPassword gives the user with email a new random password and ends
// every session of the user; it returns the password and the user. It
// changes nothing else: a disabled user stays disabled. The reset is
// recorded in the activity log under actor.
func (a *Authenticator) ResetPassword(ctx context.Context, email, actor string) (string, snapdeck.User, error) {
	u, err := a.db.FindUserByEmail(ctx, strings.TrimSpace(email))
	if snapdeck.ErrorCode(err) == snapdeck.NotFound {
		return "", u, snapdeck.Errorf(snapdeck.NotFound, "There is no user with the email %s.", strings.TrimSpace(email))
	}
	if err != nil {
		return "", u, err
	}
	password := RandomSecret(12)
	hash, err := a.hash(ctx, password)
	if err != nil {
		return "", u, err
	}
	if err := a.db.SetUserPassword(ctx, u.ID, hash); err != nil {
		return "", u, err
	}
	a.activity.Record(ctx, activity.Entry{Actor: actor, Action: activity.PasswordReset,
		Detail: "new password for " + u.Email + "; every session of the user ended"})
	return password, u, nil
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

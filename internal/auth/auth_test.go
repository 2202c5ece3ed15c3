package auth_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/auth"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/store"
)

func TestPasswordHash(t *testing.T) {
	h, err := auth.HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !auth.CheckPassword(h, "correct horse") {
		t.Error("right password: got false, want true")
	}
	if auth.CheckPassword(h, "correct horsE") {
		t.Error("wrong password: got true, want false")
	}
	if auth.CheckPassword("garbage", "x") {
		t.Error("malformed hash: got true, want false")
	}
}

// mustAuthenticator opens a store in a temporary directory and returns an
// Authenticator over it whose clock is *now.
func mustAuthenticator(t *testing.T, now *time.Time) (*auth.Authenticator, *store.DB) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "console.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(ctx) })
	return auth.NewAuthenticator(db, activity.New(db, nil, nil), nil, func() time.Time { return *now }), db
}

// A stranger's wrong passwords lock the account out of the stranger's
// address only: the user signs in from their own address meanwhile.
func TestSignInLockoutIsPerAddress(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a, _ := mustAuthenticator(t, &now)
	if _, err := a.AddUser(ctx, "ann@example.com", "s3cret-pass", snapdeck.RoleMember); err != nil {
		t.Fatal(err)
	}
	const stranger, ann = "203.0.113.9", "198.51.100.7"
	for i := 0; i < auth.MaxFailures; i++ {
		if _, err := a.SignIn(ctx, "ann@example.com", "wrong", stranger); snapdeck.ErrorCode(err) != snapdeck.Unauthorized {
			t.Fatalf("failure %d: got %v, want Unauthorized", i+1, err)
		}
		now = now.Add(time.Minute)
	}
	// The stranger's address waits now, even with the right password.
	_, err := a.SignIn(ctx, "ann@example.com", "s3cret-pass", stranger)
	if snapdeck.ErrorCode(err) != snapdeck.TooMany || !strings.Contains(snapdeck.ErrorMessage(err), "Try again in 10 minutes") {
		t.Fatalf("sixth attempt from the stranger's address: got %v, want TooMany with 10 minutes", err)
	}
	if wait, ok := auth.RetryAfter(err); !ok || wait != 10*time.Minute {
		t.Errorf("retry after: got %v %v, want 10m", wait, ok)
	}
	// Ann, from her own address, is not held up by it.
	if _, err := a.SignIn(ctx, "ANN@example.com", "s3cret-pass", ann); err != nil {
		t.Fatalf("the right password from another address: got %v, want success", err)
	}
	now = now.Add(10 * time.Minute)
	if _, err := a.SignIn(ctx, "ann@example.com", "s3cret-pass", stranger); err != nil {
		t.Fatalf("after the window: got %v, want success", err)
	}
}

// One address trying one password on many accounts is stopped too, and an
// IPv6 client is its /64.
func TestSignInThrottlesAnAddressAcrossAccounts(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a, _ := mustAuthenticator(t, &now)
	if _, err := a.AddUser(ctx, "ann@example.com", "s3cret-pass", snapdeck.RoleMember); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < auth.MaxAddressFailures; i++ {
		addr := fmt.Sprintf("2001:db8:1:2::%x", i) // one /64, a new address each time
		if _, err := a.SignIn(ctx, fmt.Sprintf("user%d@example.com", i), "guess", addr); snapdeck.ErrorCode(err) != snapdeck.Unauthorized {
			t.Fatalf("failure %d: got %v, want Unauthorized", i+1, err)
		}
	}
	_, err := a.SignIn(ctx, "ann@example.com", "s3cret-pass", "2001:db8:1:2::ffff")
	if snapdeck.ErrorCode(err) != snapdeck.TooMany || !strings.Contains(snapdeck.ErrorMessage(err), "from your address") {
		t.Fatalf("from the same /64: got %v, want TooMany from your address", err)
	}
	if _, err := a.SignIn(ctx, "ann@example.com", "s3cret-pass", "2001:db8:1:3::1"); err != nil {
		t.Fatalf("from another /64: got %v, want success", err)
	}
}

// Sign-ins, refusals and a lockout (once) are in the activity log.
func TestSignInRecordsActivity(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a, db := mustAuthenticator(t, &now)
	if _, err := a.AddUser(ctx, "ann@example.com", "s3cret-pass", snapdeck.RoleMember); err != nil {
		t.Fatal(err)
	}
	const addr = "192.0.2.1"
	a.SignIn(ctx, "ann@example.com", "s3cret-pass", addr)
	a.SignIn(ctx, "nobody@example.com", "guess", addr)
	for i := 0; i < auth.MaxFailures+2; i++ {
		a.SignIn(ctx, "ann@example.com", "wrong", addr)
	}
	events, err := db.FindEvents(ctx, snapdeck.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := len(events) - 1; i >= 0; i-- {
		e := events[i]
		if e.Action != "sign-in" {
			t.Errorf("event %d: got action %q, want sign-in", e.ID, e.Action)
		}
		got = append(got, fmt.Sprintf("%s %s %s", e.Actor, e.Outcome, e.Detail))
	}
	want := []string{
		"ann@example.com ok from 192.0.2.1",
		"nobody@example.com refused from 192.0.2.1: wrong email or password",
	}
	for i := 0; i < auth.MaxFailures; i++ {
		want = append(want, "ann@example.com refused from 192.0.2.1: wrong email or password")
	}
	want = append(want, "ann@example.com refused from 192.0.2.1: throttled, 5 failed sign-ins for this account in 15 minutes")
	if !slices.Equal(got, want) {
		t.Errorf("activity:\ngot  %q\nwant %q", got, want)
	}
}

func TestResetPassword(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a, db := mustAuthenticator(t, &now)
	u, err := a.AddUser(ctx, "ann@example.com", "s3cret-pass", snapdeck.RoleMember)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetUserDisabled(ctx, u.ID, true); err != nil {
		t.Fatal(err)
	}
	pw, _, err := a.ResetPassword(ctx, "ann@example.com", "operator")
	if err != nil || len(pw) < 12 {
		t.Fatalf("reset: got %q %v, want a new password", pw, err)
	}
	// Still disabled: a reset enables nobody.
	if _, err := a.SignIn(ctx, "ann@example.com", pw, "192.0.2.1"); !strings.Contains(snapdeck.ErrorMessage(err), "disabled") {
		t.Fatalf("disabled user with the new password: got %v, want refused as disabled", err)
	}
	if err := db.SetUserDisabled(ctx, u.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SignIn(ctx, "ann@example.com", pw, "192.0.2.1"); err != nil {
		t.Fatalf("new password: got %v, want success", err)
	}
	if _, err := a.SignIn(ctx, "ann@example.com", "s3cret-pass", "192.0.2.1"); snapdeck.ErrorCode(err) != snapdeck.Unauthorized {
		t.Fatalf("old password: got %v, want Unauthorized", err)
	}
	if _, _, err := a.ResetPassword(ctx, "bob@example.com", "operator"); snapdeck.ErrorCode(err) != snapdeck.NotFound {
		t.Fatalf("unknown email: got %v, want NotFound", err)
	}
}

func TestEnsureAdmin(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "console.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(ctx) })
	a := auth.NewAuthenticator(db, activity.New(db, nil, nil), nil, nil)
	created, pw, err := a.EnsureAdmin(ctx, "", "")
	if err != nil || !created || len(pw) < 12 {
		t.Fatalf("first start: got %v %q %v; want a generated password", created, pw, err)
	}
	if _, err := a.SignIn(ctx, "admin@localhost", pw, "127.0.0.1"); err != nil {
		t.Fatalf("sign in with generated password: %v", err)
	}
	created, _, err = a.EnsureAdmin(ctx, "", "")
	if err != nil || created {
		t.Fatalf("second start: got created=%v err=%v; want nothing created", created, err)
	}
}

// Wrong passwords sent all at once are counted as they arrive: no more
// than MaxFailures of them reach the password check, however many run
// together, and the account stays refused from that address afterwards.
func TestSignInConcurrentFailuresAreCountedBeforeTheCheck(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a, _ := mustAuthenticator(t, &now)
	if _, err := a.AddUser(ctx, "ann@example.com", "s3cret-pass", snapdeck.RoleMember); err != nil {
		t.Fatal(err)
	}
	const tries = 30
	errs := make(chan error, tries)
	var wg sync.WaitGroup
	for i := 0; i < tries; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := a.SignIn(ctx, "ann@example.com", fmt.Sprintf("wrong%d", i), "203.0.113.9")
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	checked := 0
	for err := range errs {
		switch snapdeck.ErrorCode(err) {
		case snapdeck.Unauthorized:
			checked++
		case snapdeck.TooMany:
		default:
			t.Fatalf("got %v, want Unauthorized or TooMany", err)
		}
	}
	if checked > auth.MaxFailures {
		t.Errorf("%d wrong passwords were checked at once, want at most %d", checked, auth.MaxFailures)
	}
	if _, err := a.SignIn(ctx, "ann@example.com", "s3cret-pass", "203.0.113.9"); checked == auth.MaxFailures && snapdeck.ErrorCode(err) != snapdeck.TooMany {
		t.Errorf("right password after %d failures: got %v, want TooMany", checked, err)
	}
}

package auth_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

func TestSignInThrottlesAfterFiveFailures(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "console.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(ctx) })
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a := auth.NewAuthenticator(db, nil, func() time.Time { return now })
	if _, err := a.AddUser(ctx, "ann@example.com", "s3cret-pass", snapdeck.RoleMember); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < auth.MaxFailures; i++ {
		if _, err := a.SignIn(ctx, "ann@example.com", "wrong"); snapdeck.ErrorCode(err) != snapdeck.Unauthorized {
			t.Fatalf("failure %d: got %v, want Unauthorized", i+1, err)
		}
		now = now.Add(time.Minute)
	}
	// Even the right password waits now.
	_, err = a.SignIn(ctx, "ann@example.com", "s3cret-pass")
	if snapdeck.ErrorCode(err) != snapdeck.TooMany || !strings.Contains(snapdeck.ErrorMessage(err), "Try again in 10 minutes") {
		t.Fatalf("sixth attempt: got %v, want TooMany with 10 minutes", err)
	}
	now = now.Add(10 * time.Minute)
	if _, err := a.SignIn(ctx, "ann@example.com", "s3cret-pass"); err != nil {
		t.Fatalf("after the window: got %v, want success", err)
	}
}

func TestEnsureAdmin(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "console.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(ctx) })
	a := auth.NewAuthenticator(db, nil, nil)
	created, pw, err := a.EnsureAdmin(ctx, "", "")
	if err != nil || !created || len(pw) < 12 {
		t.Fatalf("first start: got %v %q %v; want a generated password", created, pw, err)
	}
	if _, err := a.SignIn(ctx, "admin@localhost", pw); err != nil {
		t.Fatalf("sign in with generated password: %v", err)
	}
	created, _, err = a.EnsureAdmin(ctx, "", "")
	if err != nil || created {
		t.Fatalf("second start: got created=%v err=%v; want nothing created", created, err)
	}
}

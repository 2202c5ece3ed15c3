package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/auth"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/store"
)

// snapdeck admin reset-password prints a new password that signs in, ends
// the user's sessions, and reads --data or SNAPDECK_DATA.
func TestAdminResetPassword(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, filepath.Join(dir, "console.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(ctx) })
	a := auth.NewAuthenticator(db, activity.New(db, nil, nil), nil, nil)
	u, err := a.AddUser(ctx, "ann@example.com", "old-password", snapdeck.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SaveSession(ctx, store.Session{ID: "s1", UserID: u.ID, Data: "{}", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		what string
		args []string
		env  map[string]string
	}{
		{"SNAPDECK_DATA", []string{"admin", "reset-password", "ann@example.com"}, map[string]string{"SNAPDECK_DATA": dir}},
		{"--data after the email", []string{"admin", "reset-password", "ann@example.com", "--data", dir}, nil},
	} {
		var out, errOut bytes.Buffer
		if err := run(ctx, tc.args, func(k string) string { return tc.env[k] }, &out, &errOut); err != nil {
			t.Fatalf("%s: got %v, want success; stderr %q", tc.what, err, errOut.String())
		}
		password := strings.TrimSuffix(out.String(), "\n")
		if len(password) < 12 || strings.ContainsAny(password, " \n") {
			t.Fatalf("%s: stdout %q, want the new password alone", tc.what, out.String())
		}
		if _, err := a.SignIn(ctx, "ann@example.com", password, "127.0.0.1"); err != nil {
			t.Errorf("%s: sign in with the printed password: %v", tc.what, err)
		}
	}
	if _, err := a.SignIn(ctx, "ann@example.com", "old-password", "127.0.0.1"); snapdeck.ErrorCode(err) != snapdeck.Unauthorized {
		t.Errorf("old password: got %v, want Unauthorized", err)
	}
	if _, err := db.FindSession(ctx, "s1"); snapdeck.ErrorCode(err) != snapdeck.NotFound {
		t.Errorf("the user's session: got %v, want ended", err)
	}

	noEnv := func(string) string { return "" }
	var out bytes.Buffer
	err = run(ctx, []string{"admin", "reset-password", "--data", dir, "bob@example.com"}, noEnv, &out, &out)
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "no user with the email bob@example.com") {
		t.Errorf("unknown email: got %v (exit %d), want exit 1 naming the email", err, exitCode(err))
	}
	if err := run(ctx, []string{"admin", "reset-password", "--data", dir}, noEnv, &out, &out); exitCode(err) != 2 {
		t.Errorf("no email: got %v (exit %d), want a usage error", err, exitCode(err))
	}
	empty := t.TempDir()
	if err := run(ctx, []string{"admin", "reset-password", "--data", empty, "ann@example.com"}, noEnv, &out, &out); exitCode(err) != 1 {
		t.Errorf("a data directory without a console: got %v (exit %d), want exit 1", err, exitCode(err))
	}
	if _, err := os.Stat(filepath.Join(empty, "console.db")); err == nil {
		t.Error("a console store was created in the wrong data directory")
	}
}

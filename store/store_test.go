package store_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/store"
)

// mustOpen opens a store in a fresh temporary directory and closes it when
// the test ends.
func mustOpen(t *testing.T, path string) *store.DB {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "console.db")
	}
	db, err := store.Open(context.Background(), path, nil)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close(context.Background()) })
	return db
}

func TestMigrationsApplyOnceAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "console.db")
	db, err := store.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetMeta(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	db.Close(ctx)
	// Reopening must not re-run 0001 (it would fail on CREATE TABLE meta).
	db = mustOpen(t, path)
	got, err := db.Meta(ctx, "k")
	if err != nil || got != "v" {
		t.Fatalf("got %q, %v; want v, nil", got, err)
	}
}

func TestUsers(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, "")
	admin := snapdeck.User{Email: "ann@example.com", PasswordHash: "h", Role: snapdeck.RoleAdmin}
	if err := db.CreateUser(ctx, &admin); err != nil {
		t.Fatal(err)
	}
	dup := snapdeck.User{Email: "ANN@example.com", PasswordHash: "h", Role: snapdeck.RoleViewer}
	if err := db.CreateUser(ctx, &dup); snapdeck.ErrorCode(err) != snapdeck.Conflict {
		t.Fatalf("duplicate email: got %v, want Conflict", err)
	}
	got, err := db.FindUserByEmail(ctx, "Ann@Example.com")
	if err != nil || got.ID != admin.ID {
		t.Fatalf("find by email: got %+v, %v; want id %d", got, err, admin.ID)
	}
	if err := db.SetUserRole(ctx, admin.ID, snapdeck.RoleViewer); snapdeck.ErrorCode(err) != snapdeck.Conflict {
		t.Fatalf("demote last admin: got %v, want Conflict", err)
	}
	if _, err := db.FindUser(ctx, 999); snapdeck.ErrorCode(err) != snapdeck.NotFound {
		t.Fatalf("unknown user: got %v, want NotFound", err)
	}
}

func TestDisablingAUserEndsTheirSessions(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, "")
	for _, u := range []snapdeck.User{
		{Email: "a@x", PasswordHash: "h", Role: snapdeck.RoleAdmin},
		{Email: "m@x", PasswordHash: "h", Role: snapdeck.RoleMember},
	} {
		if err := db.CreateUser(ctx, &u); err != nil {
			t.Fatal(err)
		}
		if err := db.SaveSession(ctx, store.Session{ID: "s-" + u.Email, UserID: u.ID, Data: "{}", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	m, _ := db.FindUserByEmail(ctx, "m@x")
	if err := db.SetUserDisabled(ctx, m.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := db.FindSession(ctx, "s-m@x"); snapdeck.ErrorCode(err) != snapdeck.NotFound {
		t.Fatalf("disabled user's session: got %v, want NotFound", err)
	}
	if _, err := db.FindSession(ctx, "s-a@x"); err != nil {
		t.Fatalf("other user's session: got %v, want it kept", err)
	}
}

func TestDatabaseTransitionRefusesBusyDatabase(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, "")
	d := snapdeck.Database{ID: "a1b2c3d4", Name: "orders", Plan: snapdeck.PlanFree, Status: snapdeck.StatusRunning}
	if err := db.CreateDatabase(ctx, &d); err != nil {
		t.Fatal(err)
	}
	running := []snapdeck.Status{snapdeck.StatusRunning}
	if _, err := db.TransitionDatabase(ctx, d.ID, running, snapdeck.StatusRestoring); err != nil {
		t.Fatal(err)
	}
	_, err := db.TransitionDatabase(ctx, d.ID, running, snapdeck.StatusLoading)
	if e, ok := snapdeck.AsError(err); !ok || e.Code != snapdeck.Busy || e.Reason != "ongoing-database-operation" {
		t.Fatalf("second operation: got %v, want Busy ongoing-database-operation", err)
	}
	if _, err := db.FindDatabase(ctx, "ffffffff"); snapdeck.ErrorCode(err) != snapdeck.NotFound {
		t.Fatalf("unknown database: got %v, want NotFound", err)
	}
	name := "sales"
	got, err := db.UpdateDatabase(ctx, d.ID, store.DatabaseUpdate{Name: &name})
	if err != nil || got.Name != "sales" || got.Status != snapdeck.StatusRestoring {
		t.Fatalf("update: got %+v, %v", got, err)
	}
}

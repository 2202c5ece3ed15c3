package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/store"
)

func TestAPIKeysLifecycle(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, "")
	u := snapdeck.User{Email: "ann@example.com", PasswordHash: "x", Role: snapdeck.RoleMember}
	if err := db.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	k := snapdeck.APIKey{ClientID: "cid-1", SecretHash: "h", Name: "ci", UserID: u.ID}
	if err := db.CreateAPIKey(ctx, &k); err != nil {
		t.Fatal(err)
	}
	dup := snapdeck.APIKey{ClientID: "cid-1", SecretHash: "h", Name: "again", UserID: u.ID}
	if err := db.CreateAPIKey(ctx, &dup); snapdeck.ErrorCode(err) != snapdeck.Conflict {
		t.Fatalf("duplicate client id: got %v, want Conflict", err)
	}
	got, err := db.FindAPIKeyByClientID(ctx, "cid-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != k.ID || got.UserEmail != u.Email || got.UserRole != snapdeck.RoleMember || got.IsRevoked() {
		t.Fatalf("got %+v, want key %d of %s, not revoked", got, k.ID, u.Email)
	}
	used := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := db.TouchAPIKey(ctx, k.ID, used); err != nil {
		t.Fatal(err)
	}
	if err := db.RevokeAPIKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	got, err = db.FindAPIKey(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.IsRevoked() || !got.LastUsedAt.Equal(used) {
		t.Fatalf("got revoked %v, last used %v; want revoked, %v", got.RevokedAt, got.LastUsedAt, used)
	}
	if _, err := db.FindAPIKey(ctx, 999); snapdeck.ErrorCode(err) != snapdeck.NotFound {
		t.Fatalf("unknown key: got %v, want NotFound", err)
	}
	if err := db.RevokeAPIKey(ctx, 999); snapdeck.ErrorCode(err) != snapdeck.NotFound {
		t.Fatalf("revoke unknown key: got %v, want NotFound", err)
	}
	mine, err := db.FindAPIKeys(ctx, u.ID)
	if err != nil || len(mine) != 1 {
		t.Fatalf("own keys: got %d, %v; want 1", len(mine), err)
	}
	others, err := db.FindAPIKeys(ctx, u.ID+1)
	if err != nil || len(others) != 0 {
		t.Fatalf("another user's keys: got %d, %v; want 0", len(others), err)
	}
}

func TestDatabaseCredentialsAndPlacement(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, "")
	d := snapdeck.Database{ID: "a1b2c3d4", Name: "orders", Plan: snapdeck.PlanFree, Status: snapdeck.StatusRunning}
	if err := db.CreateDatabase(ctx, &d); err != nil {
		t.Fatal(err)
	}
	if u, h, err := db.FindDatabaseCredentials(ctx, d.ID); err != nil || u != "" || h != "" {
		t.Fatalf("fresh database: got %q %q %v, want empty", u, h, err)
	}
	if err := db.SetDatabaseCredentials(ctx, d.ID, "user", "hash"); err != nil {
		t.Fatal(err)
	}
	if u, h, err := db.FindDatabaseCredentials(ctx, d.ID); err != nil || u != "user" || h != "hash" {
		t.Fatalf("got %q %q %v, want user hash", u, h, err)
	}
	if err := db.SetDatabaseCredentials(ctx, "ffffffff", "u", "h"); snapdeck.ErrorCode(err) != snapdeck.NotFound {
		t.Fatalf("unknown database: got %v, want NotFound", err)
	}
	p := snapdeck.Placement{CloudProvider: "gcp", Region: "europe-west1", Memory: "8GB", Storage: "16GB"}
	if _, err := db.UpdateDatabase(ctx, d.ID, store.DatabaseUpdate{Placement: &p}); err != nil {
		t.Fatal(err)
	}
	// The lead's columns still round-trip with the new ones beside them.
	if got, err := db.FindDatabase(ctx, d.ID); err != nil || got.Name != "orders" || got.Placement != p {
		t.Fatalf("find database: got %+v %v, want orders placed at %+v", got, err, p)
	}
	// A new database's record, placement and credentials are one insert.
	n := store.NewDatabase{Database: snapdeck.Database{ID: "b1b2c3d4", Name: "ledger", Plan: snapdeck.PlanFree,
		Status: snapdeck.StatusCreating, Placement: p}, Username: "snapdeck-b1b2c3d4", PasswordHash: "sha256:x"}
	if err := db.CreateDatabaseWith(ctx, &n); err != nil {
		t.Fatal(err)
	}
	got, err := db.FindDatabase(ctx, n.ID)
	u, h, cerr := db.FindDatabaseCredentials(ctx, n.ID)
	if err != nil || cerr != nil || got.Placement != p || u != n.Username || h != n.PasswordHash || got.CreatedAt.IsZero() {
		t.Fatalf("created with: got %+v, %q %q, %v %v", got, u, h, err, cerr)
	}
	again := n
	again.Name = "twin"
	if err := db.CreateDatabaseWith(ctx, &again); snapdeck.ErrorCode(err) != snapdeck.Conflict {
		t.Fatalf("the same id again: got %v, want Conflict", err)
	}
}

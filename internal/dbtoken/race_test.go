package dbtoken

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/store"
)

// TestRevokeDuringStoreRead: a revoke that lands between an
// Authenticate's store read and its cache update wins: that Authenticate
// is refused, and the token is not cached.
func TestRevokeDuringStoreRead(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "console.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(ctx) })
	if err := db.CreateDatabase(ctx, &snapdeck.Database{ID: "aaaa0001", Name: "a", Plan: snapdeck.PlanFree, Status: snapdeck.StatusRunning}); err != nil {
		t.Fatal(err)
	}
	svc, err := New(Config{Store: db, Activity: activity.New(db, nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	tok, secret, err := svc.Issue(ctx, "ann", "aaaa0001", "app", ReadWrite)
	if err != nil {
		t.Fatal(err)
	}
	svc.afterRead = func() {
		svc.afterRead = nil
		if err := svc.Revoke(ctx, "ann", "aaaa0001", tok.ID); err != nil {
			t.Error(err)
		}
	}
	if _, err := svc.Authenticate(ctx, secret); snapdeck.ErrorCode(err) != snapdeck.Unauthorized {
		t.Fatalf("authenticate across a revoke: %v, want Unauthorized", err)
	}
	svc.mu.RLock()
	cached := len(svc.byHash) + len(svc.byID)
	svc.mu.RUnlock()
	if cached != 0 {
		t.Fatalf("%d cache entries after the revoke", cached)
	}
}

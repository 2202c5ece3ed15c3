package apikey

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/store"
)

type fixture struct {
	db     *store.DB
	m      *Manager
	now    time.Time
	member snapdeck.User
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "console.db")
	db, err := store.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(ctx) })
	f := &fixture{db: db, now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	f.member = snapdeck.User{Email: "ann@example.com", PasswordHash: "x", Role: snapdeck.RoleMember}
	if err := db.CreateUser(ctx, &f.member); err != nil {
		t.Fatal(err)
	}
	if f.m, err = NewManager(ctx, db, activity.New(db, nil, nil), nil, func() time.Time { return f.now }); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestTokenLifecycle(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	k, secret, err := f.m.Create(ctx, f.member, " ci ")
	if err != nil {
		t.Fatal(err)
	}
	if k.Name != "ci" || k.SecretHash == secret {
		t.Fatalf("got name %q and a hash equal to the secret %v; want trimmed name, hashed secret", k.Name, k.SecretHash == secret)
	}
	if _, err := f.m.Authenticate(ctx, k.ClientID, secret+"x"); snapdeck.ErrorCode(err) != snapdeck.Unauthorized {
		t.Fatalf("wrong secret: got %v, want Unauthorized", err)
	}
	if _, err := f.m.Authenticate(ctx, "nobody", secret); snapdeck.ErrorCode(err) != snapdeck.Unauthorized {
		t.Fatalf("unknown client: got %v, want Unauthorized", err)
	}
	if _, err := f.m.Authenticate(ctx, k.ClientID, secret); err != nil {
		t.Fatal(err)
	}
	token, ttl := f.m.IssueToken(k)
	if ttl != time.Hour {
		t.Fatalf("ttl: got %v, want 1h", ttl)
	}

	// A second manager over the same store is a restart: the token holds.
	again, err := NewManager(ctx, f.db, activity.New(f.db, nil, nil), nil, func() time.Time { return f.now })
	if err != nil {
		t.Fatal(err)
	}
	if got, err := again.Verify(ctx, token); err != nil || got.ID != k.ID {
		t.Fatalf("after restart: got %v %v, want key %d", got.ID, err, k.ID)
	}
	for name, bad := range map[string]string{"empty": "", "garbage": "abc", "tampered": token[:len(token)-2] + "AA", "no prefix": token[4:]} {
		if _, err := f.m.Verify(ctx, bad); snapdeck.ErrorCode(err) != snapdeck.Unauthorized {
			t.Errorf("%s token: got %v, want Unauthorized", name, err)
		}
	}
	f.now = f.now.Add(time.Hour)
	if _, err := f.m.Verify(ctx, token); snapdeck.ErrorCode(err) != snapdeck.Unauthorized {
		t.Fatalf("expired token: got %v, want Unauthorized", err)
	}
	token, _ = f.m.IssueToken(k)
	if _, err := f.m.Revoke(ctx, f.member, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Verify(ctx, token); snapdeck.ErrorCode(err) != snapdeck.Unauthorized {
		t.Fatalf("revoked key's token: got %v, want Unauthorized", err)
	}
	if _, err := f.m.Authenticate(ctx, k.ClientID, secret); snapdeck.ErrorCode(err) != snapdeck.Unauthorized {
		t.Fatalf("revoked key: got %v, want Unauthorized", err)
	}
}

func TestCreateAndRevokeRules(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	viewer := snapdeck.User{Email: "vic@example.com", PasswordHash: "x", Role: snapdeck.RoleViewer}
	other := snapdeck.User{Email: "bob@example.com", PasswordHash: "x", Role: snapdeck.RoleMember}
	for _, u := range []*snapdeck.User{&viewer, &other} {
		if err := f.db.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := f.m.Create(ctx, viewer, "x"); snapdeck.ErrorCode(err) != snapdeck.Forbidden {
		t.Fatalf("viewer creates: got %v, want Forbidden", err)
	}
	if _, _, err := f.m.Create(ctx, f.member, "  "); snapdeck.ErrorCode(err) != snapdeck.Invalid {
		t.Fatalf("blank name: got %v, want Invalid", err)
	}
	k, _, err := f.m.Create(ctx, f.member, "mine")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Revoke(ctx, other, k.ID); snapdeck.ErrorCode(err) != snapdeck.NotFound {
		t.Fatalf("another member revokes: got %v, want NotFound", err)
	}
	if keys, _ := f.m.List(ctx, other); len(keys) != 0 {
		t.Fatalf("another member lists: got %d keys, want 0", len(keys))
	}
}

func TestLimiter(t *testing.T) {
	l := NewLimiter(3, time.Minute)
	now := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 3; i++ {
		if ok, _ := l.Allow("a", now); !ok {
			t.Fatalf("request %d refused, want allowed", i+1)
		}
	}
	ok, wait := l.Allow("a", now)
	if ok || wait != 20*time.Second {
		t.Fatalf("4th request: got %v, wait %v; want refused, 20s", ok, wait)
	}
	if ok, _ := l.Allow("b", now); !ok {
		t.Fatal("another key shares the bucket")
	}
	if ok, _ := l.Allow("a", now.Add(20*time.Second)); !ok {
		t.Fatal("after the wait: refused, want allowed")
	}
}

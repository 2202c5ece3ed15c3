package dbtoken_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/dbtoken"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/store"
)

// fixture is a real store in a temporary directory with two databases.
type fixture struct {
	db    *store.DB
	svc   *dbtoken.Service
	clock atomic.Int64 // Unix nanoseconds
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "console.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(ctx) })
	for _, id := range []string{"aaaa0001", "bbbb0002"} {
		if err := db.CreateDatabase(ctx, &snapdeck.Database{ID: id, Name: "db-" + id, Plan: snapdeck.PlanFree, Status: snapdeck.StatusRunning}); err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{db: db}
	f.clock.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	f.svc = f.service(t)
	return f
}

// service builds a Service over the fixture's store and clock, with an
// empty cache.
func (f *fixture) service(t testing.TB) *dbtoken.Service {
	t.Helper()
	svc, err := dbtoken.New(dbtoken.Config{Store: f.db, Activity: activity.New(f.db, nil, nil),
		Now: func() time.Time { return time.Unix(0, f.clock.Load()).UTC() }})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func (f *fixture) advance(d time.Duration) { f.clock.Add(int64(d)) }

func (f *fixture) issue(t *testing.T, dbID, name string, scope dbtoken.Scope) (dbtoken.Token, string) {
	t.Helper()
	tok, secret, err := f.svc.Issue(context.Background(), "ann@example.com", dbID, name, scope)
	if err != nil {
		t.Fatal(err)
	}
	return tok, secret
}

func wantCode(t *testing.T, what string, err error, code snapdeck.Code) {
	t.Helper()
	if snapdeck.ErrorCode(err) != code {
		t.Fatalf("%s: got %v (%s), want %s", what, err, snapdeck.ErrorCode(err), code)
	}
}

func TestIssueListAuthenticate(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tok, secret := f.issue(t, "aaaa0001", "  billing app ", dbtoken.ReadWrite)
	if !strings.HasPrefix(secret, dbtoken.Prefix) || len(secret) != len(dbtoken.Prefix)+43 {
		t.Fatalf("secret %q: want %s and 43 characters", secret, dbtoken.Prefix)
	}
	if tok.Name != "billing app" || tok.Scope != dbtoken.ReadWrite || tok.DatabaseID != "aaaa0001" || tok.CreatedBy != "ann@example.com" {
		t.Fatalf("issued %+v", tok)
	}
	_, other := f.issue(t, "aaaa0001", "reports", dbtoken.ReadOnly)
	if other == secret {
		t.Fatal("two tokens share a secret")
	}

	list, err := f.svc.List(ctx, "aaaa0001")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "reports" || list[1].ID != tok.ID || !list[1].LastUsedAt.IsZero() {
		t.Fatalf("list %+v", list)
	}
	// Only a hash is kept.
	recs, err := f.db.FindTokens(ctx, "aaaa0001")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Hash == secret || r.Hash == other || len(r.Hash) != 64 {
			t.Fatalf("stored hash %q", r.Hash)
		}
	}

	for _, bearer := range []string{secret, "Bearer " + secret, "bearer  " + secret + " "} {
		g, err := f.svc.Authenticate(ctx, bearer)
		if err != nil {
			t.Fatalf("authenticate %q: %v", bearer, err)
		}
		if g != (dbtoken.Grant{TokenID: tok.ID, DatabaseID: "aaaa0001", Scope: dbtoken.ReadWrite}) {
			t.Fatalf("grant %+v", g)
		}
	}
	g, err := f.svc.Authenticate(ctx, "Bearer "+other)
	if err != nil || g.Scope != dbtoken.ReadOnly {
		t.Fatalf("read-only token: %+v, %v", g, err)
	}
	// A fresh service, with nothing cached, reads the token from the store.
	if g, err := f.service(t).Authenticate(ctx, secret); err != nil || g.TokenID != tok.ID {
		t.Fatalf("uncached: %+v, %v", g, err)
	}

	events, err := f.db.FindEvents(ctx, snapdeck.EventFilter{DatabaseID: "aaaa0001"})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 {
		t.Fatalf("events %+v", events)
	}
	e := events[1]
	if e.Action != string(activity.TokenIssue) || e.Actor != "ann@example.com" || e.Outcome != snapdeck.OutcomeOK ||
		!strings.Contains(e.Detail, "billing app") || !strings.Contains(e.Detail, "read-write") {
		t.Fatalf("issue event %+v", e)
	}
	for _, e := range events {
		if strings.Contains(e.Detail, secret[len(dbtoken.Prefix):]) || strings.Contains(e.Detail, other[len(dbtoken.Prefix):]) {
			t.Fatalf("the activity log holds a secret: %q", e.Detail)
		}
	}
}

func TestIssueRefuses(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name, db, tokenName string
		scope               dbtoken.Scope
		code                snapdeck.Code
		field               string
	}{
		{"no name", "aaaa0001", "  ", dbtoken.ReadWrite, snapdeck.Invalid, "name"},
		{"long name", "aaaa0001", strings.Repeat("n", 65), dbtoken.ReadWrite, snapdeck.Invalid, "name"},
		{"control character", "aaaa0001", "a\nb", dbtoken.ReadWrite, snapdeck.Invalid, "name"},
		{"no scope", "aaaa0001", "app", "", snapdeck.Invalid, "scope"},
		{"unknown scope", "aaaa0001", "app", "admin", snapdeck.Invalid, "scope"},
		{"no database", "cccc0003", "app", dbtoken.ReadOnly, snapdeck.NotFound, ""},
	} {
		_, secret, err := f.svc.Issue(ctx, "ann@example.com", tc.db, tc.tokenName, tc.scope)
		wantCode(t, tc.name, err, tc.code)
		if e, _ := snapdeck.AsError(err); e.Field != tc.field || secret != "" {
			t.Fatalf("%s: field %q, secret %q", tc.name, e.Field, secret)
		}
	}
	if _, _, err := f.svc.Issue(ctx, "ann@example.com", "aaaa0001", strings.Repeat("é", 64), dbtoken.ReadOnly); err != nil {
		t.Fatalf("64 characters: %v", err)
	}
	events, err := f.db.FindEvents(ctx, snapdeck.EventFilter{DatabaseID: "aaaa0001"})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 6 || events[1].Outcome != snapdeck.OutcomeRefused || events[1].Action != string(activity.TokenIssue) {
		t.Fatalf("events %+v", events)
	}
}

func TestAuthenticateRefuses(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, secret := f.issue(t, "aaaa0001", "app", dbtoken.ReadWrite)
	body := secret[len(dbtoken.Prefix):]
	wrong := []byte(secret)
	// Still well-formed: one character changed for another of the alphabet.
	if wrong[10] == 'A' {
		wrong[10] = 'B'
	} else {
		wrong[10] = 'A'
	}
	for _, tc := range []struct{ name, bearer string }{
		{"missing", ""},
		{"scheme only", "Bearer "},
		{"no prefix", body},
		{"other prefix", "sd1." + body},
		{"short", secret[:len(secret)-1]},
		{"long", secret + "A"},
		{"bad character", secret[:len(secret)-1] + "="},
		{"wrong", string(wrong)},
		{"random", dbtoken.Prefix + strings.Repeat("A", 43)},
	} {
		_, err := f.svc.Authenticate(ctx, tc.bearer)
		wantCode(t, tc.name, err, snapdeck.Unauthorized)
	}
}

func TestRevoke(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tok, secret := f.issue(t, "aaaa0001", "app", dbtoken.ReadOnly)
	kept, keptSecret := f.issue(t, "aaaa0001", "kept", dbtoken.ReadOnly)
	// Cached by a first use.
	if _, err := f.svc.Authenticate(ctx, secret); err != nil {
		t.Fatal(err)
	}
	// Another database cannot revoke it.
	wantCode(t, "revoke through another database", f.svc.Revoke(ctx, "ann@example.com", "bbbb0002", tok.ID), snapdeck.NotFound)
	if _, err := f.svc.Authenticate(ctx, secret); err != nil {
		t.Fatalf("after a refused revoke: %v", err)
	}
	if err := f.svc.Revoke(ctx, "bob@example.com", "aaaa0001", tok.ID); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.Authenticate(ctx, secret)
	wantCode(t, "revoked, cached before", err, snapdeck.Unauthorized)
	_, err = f.service(t).Authenticate(ctx, secret)
	wantCode(t, "revoked, uncached", err, snapdeck.Unauthorized)
	wantCode(t, "revoke again", f.svc.Revoke(ctx, "bob@example.com", "aaaa0001", tok.ID), snapdeck.NotFound)
	if g, err := f.svc.Authenticate(ctx, keptSecret); err != nil || g.TokenID != kept.ID {
		t.Fatalf("the other token: %+v, %v", g, err)
	}
	list, err := f.svc.List(ctx, "aaaa0001")
	if err != nil || len(list) != 1 || list[0].ID != kept.ID {
		t.Fatalf("list after revoke: %+v, %v", list, err)
	}
	events, err := f.db.FindEvents(ctx, snapdeck.EventFilter{DatabaseID: "aaaa0001"})
	if err != nil {
		t.Fatal(err)
	}
	e := events[1] // newest first: the refused second revoke, then this one
	if e.Action != string(activity.TokenRevoke) || e.Actor != "bob@example.com" || e.Outcome != snapdeck.OutcomeOK ||
		!strings.Contains(e.Detail, `"app"`) || !strings.Contains(e.Detail, "read-only") {
		t.Fatalf("revoke event %+v", e)
	}
	if events[0].Outcome != snapdeck.OutcomeRefused {
		t.Fatalf("second revoke %+v", events[0])
	}
}

// TestOtherDatabase: a token of one database authenticates with a grant
// that names that database, so the data plane refuses it for another.
func TestOtherDatabase(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, secretA := f.issue(t, "aaaa0001", "a", dbtoken.ReadWrite)
	_, secretB := f.issue(t, "bbbb0002", "b", dbtoken.ReadWrite)
	ga, errA := f.svc.Authenticate(ctx, secretA)
	gb, errB := f.svc.Authenticate(ctx, secretB)
	if errA != nil || errB != nil || ga.DatabaseID != "aaaa0001" || gb.DatabaseID != "bbbb0002" {
		t.Fatalf("grants %+v %v, %+v %v", ga, errA, gb, errB)
	}
	if list, _ := f.svc.List(ctx, "bbbb0002"); len(list) != 1 || list[0].Name != "b" {
		t.Fatalf("list of b: %+v", list)
	}
}

// TestDatabaseDeleted: deleting a database ends its tokens at once, in
// the cache (Forget) and in the store (they go with the database).
func TestDatabaseDeleted(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, secretA := f.issue(t, "aaaa0001", "a", dbtoken.ReadWrite)
	_, secretB := f.issue(t, "bbbb0002", "b", dbtoken.ReadWrite)
	for _, s := range []string{secretA, secretB} {
		if _, err := f.svc.Authenticate(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.db.DeleteDatabase(ctx, "aaaa0001"); err != nil {
		t.Fatal(err)
	}
	f.svc.Forget("aaaa0001")
	_, err := f.svc.Authenticate(ctx, secretA)
	wantCode(t, "deleted database, cached before", err, snapdeck.Unauthorized)
	_, err = f.service(t).Authenticate(ctx, secretA)
	wantCode(t, "deleted database, uncached", err, snapdeck.Unauthorized)
	if recs, err := f.db.FindTokens(ctx, "aaaa0001"); err != nil || len(recs) != 0 {
		t.Fatalf("tokens of the deleted database: %+v, %v", recs, err)
	}
	if _, err := f.svc.Authenticate(ctx, secretB); err != nil {
		t.Fatalf("the other database's token: %v", err)
	}
}

// TestLastUse: the list shows the exact last use, the store is written
// at most once a minute per token.
func TestLastUse(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tok, secret := f.issue(t, "aaaa0001", "app", dbtoken.ReadWrite)
	start := time.Unix(0, f.clock.Load()).UTC()
	stored := func() time.Time {
		t.Helper()
		f.svc.Close(ctx) // waits for the writes under way
		recs, err := f.db.FindTokens(ctx, "aaaa0001")
		if err != nil || len(recs) != 1 {
			t.Fatalf("%+v, %v", recs, err)
		}
		return recs[0].LastUsedAt
	}
	listed := func() time.Time {
		t.Helper()
		list, err := f.svc.List(ctx, "aaaa0001")
		if err != nil || len(list) != 1 || list[0].ID != tok.ID {
			t.Fatalf("%+v, %v", list, err)
		}
		return list[0].LastUsedAt
	}
	use := func() {
		t.Helper()
		if _, err := f.svc.Authenticate(ctx, secret); err != nil {
			t.Fatal(err)
		}
	}
	use()
	if got := stored(); !got.Equal(start) {
		t.Fatalf("first use stored %v, want %v", got, start)
	}
	f.advance(30 * time.Second)
	use()
	use()
	if got := listed(); !got.Equal(start.Add(30 * time.Second)) {
		t.Fatalf("listed %v, want %v", got, start.Add(30*time.Second))
	}
	if got := stored(); !got.Equal(start) {
		t.Fatalf("a use 30 s later wrote the store: %v", got)
	}
	f.advance(31 * time.Second)
	use()
	if got := stored(); !got.Equal(start.Add(61 * time.Second)) {
		t.Fatalf("a use 61 s after the first stored %v", got)
	}
	// A fresh service lists what the store kept.
	if list, _ := f.service(t).List(ctx, "aaaa0001"); !list[0].LastUsedAt.Equal(start.Add(61 * time.Second)) {
		t.Fatalf("fresh list %+v", list)
	}
}

// BenchmarkAuthenticate is the cost on every pipeline request: a cached
// token, its hash, and the in-memory last use.
func BenchmarkAuthenticate(b *testing.B) {
	f := newFixture(b)
	_, secret, err := f.svc.Issue(context.Background(), "ann", "aaaa0001", "bench", dbtoken.ReadWrite)
	if err != nil {
		b.Fatal(err)
	}
	ctx, bearer := context.Background(), "Bearer "+secret
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := f.svc.Authenticate(ctx, bearer); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	f.svc.Close(ctx)
}

// TestRevokeWhileInUse: while requests authenticate a token from many
// goroutines, every Authenticate that starts after Revoke returned is
// refused, whether it found the token cached or read it from the store.
func TestRevokeWhileInUse(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tok, secret := f.issue(t, "aaaa0001", "busy", dbtoken.ReadWrite)
	var revoked atomic.Bool
	late := make(chan error, 1)
	stop := make(chan struct{})
	done := make(chan struct{})
	const workers = 4
	for w := range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if w == 0 && i%4 == 0 {
					// A cache miss now and then: a store read racing the revoke.
					f.svc.Forget("aaaa0001")
				}
				after := revoked.Load()
				_, err := f.svc.Authenticate(ctx, secret)
				if after && err == nil {
					select {
					case late <- nil:
					default:
					}
					return
				}
			}
		}()
	}
	// Let the workers cache the token and use it a while.
	for range 200 {
		if _, err := f.svc.Authenticate(ctx, secret); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.svc.Revoke(ctx, "ann@example.com", "aaaa0001", tok.ID); err != nil {
		t.Fatal(err)
	}
	revoked.Store(true)
	for range 200 {
		if _, err := f.svc.Authenticate(ctx, secret); snapdeck.ErrorCode(err) != snapdeck.Unauthorized {
			t.Fatalf("after revoke: %v", err)
		}
	}
	close(stop)
	for range workers {
		<-done
	}
	select {
	case <-late:
		t.Fatal("a token authenticated after its revoke returned")
	default:
	}
}

// BenchmarkAuthenticateUncached is the reference: the same token read
// from the store by a Service with an empty cache, as after a start.
func BenchmarkAuthenticateUncached(b *testing.B) {
	f := newFixture(b)
	_, secret, err := f.svc.Issue(context.Background(), "ann", "aaaa0001", "bench", dbtoken.ReadWrite)
	if err != nil {
		b.Fatal(err)
	}
	// A use now, so that the uncached reads below find the last use
	// recent and write nothing.
	if _, err := f.svc.Authenticate(context.Background(), secret); err != nil {
		b.Fatal(err)
	}
	f.svc.Close(context.Background())
	ctx, bearer := context.Background(), "Bearer "+secret
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		svc, err := dbtoken.New(dbtoken.Config{Store: f.db, Activity: activity.New(f.db, nil, nil),
			Now: func() time.Time { return time.Unix(0, f.clock.Load()).UTC() }})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := svc.Authenticate(ctx, bearer); err != nil {
			b.Fatal(err)
		}
	}
}

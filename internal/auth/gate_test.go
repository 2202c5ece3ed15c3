package auth

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/store"
)

// 60 wrong sign-ins at once, from 60 addresses so that no throttle stops
// them first: at most MaxHashes argon2 hashes (19 MiB each) run at once,
// counted by the gate itself, and whoever cannot queue is told when to
// come back.
func TestSignInHashesAtMostMaxHashesAtOnce(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "console.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(ctx) })
	a := NewAuthenticator(db, activity.New(db, nil, nil), nil, nil)
	if _, err := a.AddUser(ctx, "ann@example.com", "s3cret-pass", snapdeck.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	a.hashes.peak.Store(0)
	const n = 60
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			email := "ann@example.com"
			if i%2 == 1 {
				email = fmt.Sprintf("random%d@example.com", i) // unknown emails hash too
			}
			_, errs[i] = a.SignIn(ctx, email, "wrong", fmt.Sprintf("192.0.2.%d", i+1))
		}()
	}
	wg.Wait()
	refused, busy := 0, 0
	for i, err := range errs {
		switch snapdeck.ErrorCode(err) {
		case snapdeck.Unauthorized:
			refused++
		case snapdeck.TooMany:
			busy++
			if wait, ok := RetryAfter(err); !ok || wait < time.Second {
				t.Errorf("sign-in %d: busy without a Retry-After: %v %v", i, wait, ok)
			}
		default:
			t.Errorf("sign-in %d: got %v, want Unauthorized or TooMany", i, err)
		}
	}
	if peak := a.hashes.peak.Load(); peak != MaxHashes {
		t.Errorf("hashes at once: got a peak of %d, want %d", peak, MaxHashes)
	}
	if refused < MaxHashes || refused+busy != n {
		t.Errorf("got %d refused and %d busy, want at least %d refused and %d in all", refused, busy, MaxHashes, n)
	}
	t.Logf("%d checked, %d told to come back", refused, busy)
}

// The gate's queue is bounded: with every slot taken and the queue full,
// the next caller is refused at once, and a queued caller runs when a slot
// frees.
func TestHashGateRefusesBeyondItsQueue(t *testing.T) {
	g := newHashGate(1, 1, time.Hour)
	hold, held := make(chan struct{}), make(chan struct{})
	done := make(chan error, 2)
	go func() { done <- g.do(context.Background(), func() { close(held); <-hold }) }()
	<-held
	go func() { done <- g.do(context.Background(), func() {}) }()
	for g.waiting.Load() != 1 {
		runtime.Gosched() // until the second caller is queued
	}
	if err := g.do(context.Background(), func() { t.Error("ran past a full queue") }); err != errBusy {
		t.Fatalf("third caller: got %v, want busy", err)
	}
	close(hold)
	for range 2 {
		if err := <-done; err != nil {
			t.Errorf("holder or queued caller: got %v, want nil", err)
		}
	}
	if err := g.do(context.Background(), func() {}); err != nil {
		t.Errorf("free slot: got %v, want nil", err)
	}
	if peak := g.peak.Load(); peak != 1 {
		t.Errorf("peak: got %d, want 1", peak)
	}
}

// Failure records stay bounded however many addresses and emails are
// tried, and expired ones go first.
func TestThrottleRecordsAreBounded(t *testing.T) {
	th := newThrottle(maxThrottleEntries)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	th.fail("old", MaxFailures, now)
	now = now.Add(FailureWindow)
	for i := range maxThrottleEntries + 500 {
		th.fail(fmt.Sprintf("random%d@example.com from 192.0.2.1", i), MaxFailures, now)
		if i == 0 && th.len() != 1 {
			t.Fatalf("after an expired entry and a new one: got %d entries, want 1", th.len())
		}
	}
	if got := th.len(); got != maxThrottleEntries {
		t.Errorf("entries: got %d, want %d", got, maxThrottleEntries)
	}
	// The least recent went, the newest stayed.
	if w, _ := th.refused("random0@example.com from 192.0.2.1", 1, now); w != 0 {
		t.Errorf("least recent entry: still refused for %v, want forgotten", w)
	}
	last := fmt.Sprintf("random%d@example.com from 192.0.2.1", maxThrottleEntries+499)
	if w, _ := th.refused(last, 1, now); w != FailureWindow {
		t.Errorf("newest entry: refused for %v, want %v", w, FailureWindow)
	}
}

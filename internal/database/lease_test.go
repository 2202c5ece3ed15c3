package database_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// mustLease opens a lease and closes it at the end of the test.
func mustLease(t *testing.T, h *database.Host, id string, readOnly bool) *database.Lease {
	t.Helper()
	l, err := h.Lease(context.Background(), id, database.LeaseOptions{ReadOnly: readOnly, Owner: t.Name()})
	if err != nil {
		t.Fatalf("lease on %s: %v", id, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// hasCode reports whether err is a snapdeck.Error with code.
func hasCode(err error, code snapdeck.Code) bool {
	var se *snapdeck.Error
	return errors.As(err, &se) && se.Code == code
}

// leaseExec runs one statement on a lease under its bound context.
func leaseExec(l *database.Lease, sqlText string) error {
	ctx, cancel := l.Bind(context.Background())
	defer cancel()
	_, err := l.Conn().ExecContext(ctx, sqlText)
	return err
}

// revokedWith checks that l has ended, revoked with an error of code whose
// words contain what.
func revokedWith(t *testing.T, l *database.Lease, code snapdeck.Code, what string) {
	t.Helper()
	select {
	case <-l.Done():
	default:
		t.Fatalf("the lease is still open; want it revoked because %s", what)
	}
	var se *snapdeck.Error
	if err := l.Err(); !errors.As(err, &se) || se.Code != code || se.Reason != "session-revoked" || !strings.Contains(se.Message, what) {
		t.Fatalf("revocation: got %v; want a %s error saying %q", err, code, what)
	}
}

// TestLeaseKeepsItsSessionAcrossRequests checks that a lease is one session:
// a transaction begun in one request is continued in the next, and what it
// has not committed is seen by nobody else.
func TestLeaseKeepsItsSessionAcrossRequests(t *testing.T) {
	h := mustHost(t)
	id := mustDatabase(t, h)
	l := mustLease(t, h, id, false)
	for _, s := range []string{"BEGIN", "INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (2)"} {
		if err := leaseExec(l, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	if n := countRows(t, h.Path(id)); n != 0 {
		t.Fatalf("rows seen before COMMIT: %d, want 0", n)
	}
	if err := leaseExec(l, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, h.Path(id)); n != 2 {
		t.Fatalf("rows after COMMIT: %d, want 2", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Err(); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("a closed lease's error: %v", err)
	}
}

// TestLeaseIsGuardedLikeTheQueryTab checks the authorizer, the limits and
// read-only opening on a lease's connection.
func TestLeaseIsGuardedLikeTheQueryTab(t *testing.T) {
	h := mustHost(t)
	id := mustDatabase(t, h)
	rw := mustLease(t, h, id, false)
	for _, s := range []string{"ATTACH DATABASE '/tmp/x.db' AS x", "PRAGMA journal_mode = DELETE", "SELECT readfile('/etc/passwd')"} {
		if err := leaseExec(rw, s); err == nil {
			t.Errorf("%s: ran on a lease", s)
		}
	}
	if err := leaseExec(rw, "SELECT zeroblob(100 * 1024 * 1024)"); err == nil {
		t.Error("a 100 MiB value was made on a lease")
	}
	ro := mustLease(t, h, id, true)
	if err := leaseExec(ro, "INSERT INTO t VALUES (1)"); err == nil || !strings.Contains(err.Error(), "readonly") {
		t.Errorf("a write on a read-only lease: %v", err)
	}
	if n := countRows(t, h.Path(id)); n != 0 {
		t.Errorf("rows: %d, want 0", n)
	}
}

// TestRestoreRevokesALeaseWithAnOpenTransaction is issue 13's data-plane
// attack: a session holds an uncommitted INSERT while a restore runs. The
// restore completes with the snapshot's content, the session is told it was
// ended by the restore, and its later COMMIT fails without landing.
func TestRestoreRevokesALeaseWithAnOpenTransaction(t *testing.T) {
	ctx := context.Background()
	e := mustEnv(t)
	d, snap := e.twoHundredRows(t, "leased")
	h := e.dbs.Host()
	l := mustLease(t, h, d.ID, false)
	for _, s := range []string{"BEGIN", "INSERT INTO t VALUES (1000000)"} {
		if err := leaseExec(l, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	_, j, err := e.snapshots.Restore(ctx, d.ID, snap.ID, "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if j = e.waitJob(t, j.ID); j.Status != snapdeck.JobSucceeded {
		t.Fatalf("restore: %s %s", j.Status, j.Error)
	}
	if got := e.count(t, d.ID); got != "100:5050" {
		t.Fatalf("after the restore: %s, want the snapshot's 100:5050", got)
	}
	revokedWith(t, l, snapdeck.Busy, "replaced")
	if err := leaseExec(l, "COMMIT"); err == nil {
		t.Fatal("the revoked lease's COMMIT succeeded")
	}
	if got := e.count(t, d.ID); got != "100:5050" {
		t.Fatalf("after the revoked COMMIT: %s, want 100:5050", got)
	}
	if n := countRows(t, h.Path(d.ID)); n != 100 {
		t.Fatalf("rows in the file: %d, want 100", n)
	}
	// A new session works on the restored file.
	l2 := mustLease(t, h, d.ID, false)
	if err := leaseExec(l2, "INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	e.waitIdle(t)
}

// TestLeaseRefusedWhileReplacing checks that Host.Replace revokes the
// leases before it installs, and refuses new ones until it is done.
func TestLeaseRefusedWhileReplacing(t *testing.T) {
	ctx := context.Background()
	h := mustHost(t)
	id := mustDatabase(t, h)
	held := mustLease(t, h, id, false)
	if err := leaseExec(held, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	err := h.Replace(ctx, id, "", nil, func(_, _ string) error {
		revokedWith(t, held, snapdeck.Busy, "replaced")
		_, err := h.Lease(ctx, id, database.LeaseOptions{Owner: "during"})
		if !hasCode(err, snapdeck.Busy) {
			t.Errorf("a lease during the swap: got %v, want a Busy refusal", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mustLease(t, h, id, false)
}

// TestLeaseCaps checks the caps per database and for the console, and that
// closing a lease makes room again.
func TestLeaseCaps(t *testing.T) {
	h := mustHost(t)
	perDB, total := database.MaxLeasesPerDatabase, database.MaxLeases
	var ids []string
	var first *database.Lease
	for len(ids)*perDB < total {
		id := mustDatabase(t, h)
		ids = append(ids, id)
		for i := range perDB {
			l := mustLease(t, h, id, i%2 == 0)
			if first == nil {
				first = l
			}
		}
	}
	_, err := h.Lease(context.Background(), ids[0], database.LeaseOptions{})
	if !hasCode(err, snapdeck.TooMany) || !strings.Contains(err.Error(), fmt.Sprintf("This database already has %d open sessions", perDB)) {
		t.Fatalf("lease past the database's cap: %v", err)
	}
	other := mustDatabase(t, h)
	_, err = h.Lease(context.Background(), other, database.LeaseOptions{})
	if !hasCode(err, snapdeck.TooMany) || !strings.Contains(err.Error(), fmt.Sprintf("The console already has %d open sessions", total)) {
		t.Fatalf("lease past the console's cap: %v", err)
	}
	first.Close()
	mustLease(t, h, other, false)
}

// TestDeletePauseAndCloseRevokeLeases checks that deleting or pausing a
// database and stopping the console each revoke the leases, saying why, and
// that a statement running under a lease does not hold them up.
func TestDeletePauseAndCloseRevokeLeases(t *testing.T) {
	ctx := context.Background()
	h := mustHost(t)
	busy := mustDatabase(t, h)
	l := mustLease(t, h, busy, false)
	if err := leaseExec(l, "BEGIN; INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() {
		// Runs for minutes unless interrupted.
		ran <- leaseExec(l, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 10000000000) SELECT count(*) FROM n")
	}()
	// Whether the statement has started or not, Delete must not wait
	// for it: the revocation interrupts it or it never runs.
	if err := h.Delete(ctx, busy); err != nil {
		t.Fatal(err)
	}
	revokedWith(t, l, snapdeck.NotFound, "deleted")
	if err := <-ran; err == nil {
		t.Fatal("the long statement was not interrupted")
	}
	if _, err := os.Stat(h.Path(busy)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the deleted file: %v", err)
	}

	paused := mustDatabase(t, h)
	lp := mustLease(t, h, paused, true)
	if err := h.CloseDatabase(ctx, paused); err != nil {
		t.Fatal(err)
	}
	revokedWith(t, lp, snapdeck.Busy, "paused")

	stopping := mustDatabase(t, h)
	ls := mustLease(t, h, stopping, false)
	if err := leaseExec(ls, "BEGIN; INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	revokedWith(t, ls, snapdeck.Busy, "stopping")
	if n := countRows(t, h.Path(stopping)); n != 0 {
		t.Fatalf("rows of the revoked transaction: %d, want 0", n)
	}
}

// TestCheckpointsCanBeTakenOver checks the seam for a replicator: while it
// owns a database's checkpoints, commits leave the database file alone, also
// after the pools are reopened; once given back, the checkpointer copies the
// WAL again.
func TestCheckpointsCanBeTakenOver(t *testing.T) {
	ctx := context.Background()
	h := mustHost(t)
	id := mustDatabase(t, h)
	giveBack, err := h.TakeOverCheckpoints(id, "replicator")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.TakeOverCheckpoints(id, "another"); !hasCode(err, snapdeck.Conflict) {
		t.Fatalf("a second owner: got %v, want a Conflict refusal", err)
	}
	write := func() {
		for range 10 {
			mustQuery(t, h, id, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 100) INSERT INTO t SELECT randomblob(1000) FROM n", false)
		}
	}
	size := func() int64 {
		fi, err := os.Stat(h.Path(id))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	for round := range 2 {
		before := size()
		write()
		// Once taken over, no checkpoint of the Host's runs
		// (Checkpointer.StandAside waits for one under way), and the
		// console's connections never checkpoint on commit.
		if after := size(); after != before {
			t.Fatalf("round %d: the database file went from %d to %d bytes while its checkpoints were taken over", round, before, after)
		}
		// Closing the pools checkpoints what is left; reopened, they
		// still leave the checkpoints to the owner.
		if err := h.CloseDatabase(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	mustQuery(t, h, id, "SELECT 1", true)
	before := size()
	giveBack()
	giveBack()
	write()
	deadline := time.Now().Add(5 * time.Second)
	for size() < before+500_000 {
		if time.Now().After(deadline) {
			t.Fatalf("database file %d bytes after 1 MB of commits (was %d): nothing was checkpointed after giving back", size(), before)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if giveBack2, err := h.TakeOverCheckpoints(id, "another"); err != nil {
		t.Fatalf("taking over given-back checkpoints: %v", err)
	} else {
		giveBack2()
	}
}

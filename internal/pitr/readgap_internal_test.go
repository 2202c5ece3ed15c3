package pitr

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"

	"github.com/snapdeck/snapdeck/internal/snapstore"
)

// TestCommitsToldWithoutWaitingShareReads: commits told without waiting
// (a lease's) are read from the WAL at most once per Tuning.ReadGap, each
// read into one LTX file, and the last of them is still read once the gap
// has passed. Read at once, each commit here had its own file.
func TestCommitsToldWithoutWaitingShareReads(t *testing.T) {
	ctx := context.Background()
	tuning := DefaultTuning
	tuning.ReadGap = 250 * time.Millisecond
	// Litestream's own reads, every MonitorInterval (capped at the
	// interval), are kept out of the count.
	tuning.MonitorInterval = time.Minute
	_, w, reps, db := startLitestream(t, Config{Interval: time.Minute, Tuning: tuning}, nil)
	txid := func() uint64 {
		t.Helper()
		pos, err := db.Pos()
		if err != nil {
			t.Fatal(err)
		}
		return uint64(pos.TXID)
	}

	before := txid()
	const commits = 40
	start := time.Now()
	for i := range commits {
		if _, err := w.Exec(`INSERT INTO t(pad) VALUES (?)`, i); err != nil {
			t.Fatal(err)
		}
		reps.Committed(ctx, replicatedID, false)
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(start)
	// The first commit is read at once, then one read per gap at most;
	// the last ones once the gap has passed.
	time.Sleep(2 * tuning.ReadGap)
	read := txid() - before
	if limit := 2 + uint64(took/tuning.ReadGap); read > limit {
		t.Fatalf("%d commits told without waiting over %s made %d LTX files; at most %d with reads %s apart", commits, took.Round(time.Millisecond), read, limit, tuning.ReadGap)
	}
	// A forced read finds nothing left: Sync would make a file otherwise.
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := txid() - before; got != read {
		t.Fatalf("the last commits were not read after the gap: a forced read made %d more LTX files", got-read)
	}
	t.Logf("%d commits over %s: %d LTX files", commits, took.Round(time.Millisecond), read)
}

// TestCommitsToldWaitingAreReadAtOnce: a commit told with wait (a
// Query-tab run's, a data-plane answer's) is read before Committed
// returns, without waiting out the read gap, and commits told at once by
// several callers are each read by the time their call returns.
func TestCommitsToldWaitingAreReadAtOnce(t *testing.T) {
	ctx := context.Background()
	tuning := DefaultTuning
	tuning.ReadGap = time.Minute
	tuning.MonitorInterval = time.Minute
	_, w, reps, db := startLitestream(t, Config{Interval: time.Minute, Tuning: tuning}, nil)
	read := func() bool {
		t.Helper()
		before, err := db.Pos()
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		after, err := db.Pos()
		if err != nil {
			t.Fatal(err)
		}
		return before == after
	}
	// A read told without waiting starts the gap.
	if _, err := w.Exec(`INSERT INTO t(pad) VALUES ('kicked')`); err != nil {
		t.Fatal(err)
	}
	reps.Committed(ctx, replicatedID, false)
	for i := 0; ; i++ {
		if _, err := w.Exec(`INSERT INTO t(pad) VALUES ('waited')`); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		reps.Committed(ctx, replicatedID, true)
		if took := time.Since(start); took > 10*time.Second {
			t.Fatalf("Committed with wait took %s", took)
		}
		if !read() {
			t.Fatalf("round %d: the commit was not read when Committed with wait returned", i)
		}
		if i == 2 {
			break
		}
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if _, err := w.Exec(`INSERT INTO t(pad) VALUES (?)`, i); err != nil {
				t.Error(err)
				return
			}
			reps.Committed(ctx, replicatedID, true)
		})
	}
	wg.Wait()
	if !read() {
		t.Fatal("after 8 commits told with wait at once, a forced read found more")
	}
}

// slowPuts is a local store whose file puts take 10 ms more each, as on a
// disk busy with a writer's checkpoints.
type slowPuts struct{ *snapstore.Local }

func (s slowPuts) PutFile(ctx context.Context, key string, f *os.File) error {
	time.Sleep(10 * time.Millisecond)
	return s.Local.PutFile(ctx, key, f)
}

// TestUploadKeepsUpWithWaitedReads: commits told with wait, one after
// another, each make an LTX file; when they come faster than the replica
// uploads files, the reads upload what waits before going on, so the
// replica is never much more than maxBacklog files behind. Left to the
// replica's own passes, a tick apart, it fell all 150 files behind.
func TestUploadKeepsUpWithWaitedReads(t *testing.T) {
	ctx := context.Background()
	// A tick of a second (uploadInterval of 4 s): the replica's own
	// passes come rarely.
	_, w, reps, db := startLitestream(t, Config{Interval: 4 * time.Second}, func(l *snapstore.Local) snapstore.Blobs { return slowPuts{l} })
	var most uint64
	for i := range 150 {
		if _, err := w.Exec(`INSERT INTO t(pad) VALUES (?)`, i); err != nil {
			t.Fatal(err)
		}
		reps.Committed(ctx, replicatedID, true)
		dpos, err := db.Pos()
		if err != nil {
			t.Fatal(err)
		}
		if r := db.Replica.Pos().TXID; r > 0 {
			most = max(most, uint64(dpos.TXID-r))
		}
	}
	if most > maxBacklog+2 {
		t.Fatalf("the replica fell %d files behind the reads of the WAL; at most %d+2 expected", most, maxBacklog)
	}
	t.Logf("the replica was at most %d files behind", most)
}

// startLitestream replicates checkpointedWriter's database, in a new
// directory, as replicatedID with cfg and a local store there (through
// wrap, when not nil), after one read of it; it returns the database's
// path, the writer, the Replicators and Litestream's DB.
func startLitestream(t *testing.T, cfg Config, wrap func(*snapstore.Local) snapstore.Blobs) (string, *sql.DB, *Replicators, *litestream.DB) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	path, w, ck := checkpointedWriter(t, dir)
	local := localBlobs(t, filepath.Join(dir, "blobs"))
	cfg.Blobs = local
	if wrap != nil {
		cfg.Blobs = wrap(local)
	}
	reps := newReplicators(t, ck, cfg)
	if err := reps.Start(ctx, replicatedID, path, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := reps.Sync(ctx, replicatedID); err != nil {
		t.Fatal(err)
	}
	reps.mu.Lock()
	db := reps.running[replicatedID].db
	reps.mu.Unlock()
	return path, w, reps, db
}

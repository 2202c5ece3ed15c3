package pitr

import (
	"bytes"
	"context"
	"database/sql"
	"net/url"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
	_ "modernc.org/sqlite"

	"github.com/snapdeck/snapdeck/internal/checkpoint"
	"github.com/snapdeck/snapdeck/internal/snapstore"
)

// countingBlobs is real blobs that count their listings (List and
// ListPrefix), each a LIST request or more on S3.
type countingBlobs struct {
	snapstore.Blobs
	lists atomic.Int64
}

func (c *countingBlobs) List(ctx context.Context, fn func(key string) error) error {
	c.lists.Add(1)
	return c.Blobs.List(ctx, fn)
}

func (c *countingBlobs) ListPrefix(ctx context.Context, prefix string, fn func(key string) error) error {
	c.lists.Add(1)
	return snapstore.ListPrefix(ctx, c.Blobs, prefix, fn)
}

// asideFor hands a writer's checkpointer over as Host does.
type asideFor struct{ ck *checkpoint.Checkpointer }

func (a asideFor) TakeOverCheckpoints(string, string) (func(), error) {
	a.ck.StandAside()
	return a.ck.Resume, nil
}

// window reads what the console shows of database id's history, as a page
// view does, and what a fresh client listing the blobs finds (the truth),
// and fails unless they agree.
func window(t *testing.T, reps *Replicators, truth snapstore.Blobs, id string) (time.Time, int64) {
	t.Helper()
	ctx := context.Background()
	earliest, ok, err := reps.Earliest(ctx, id)
	if err != nil || !ok {
		t.Fatalf("Earliest: %v, %v, %v", earliest, ok, err)
	}
	n, err := reps.Bytes(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	fresh := &Replicators{cfg: reps.cfg, clients: map[string]*Client{}, logger: reps.logger}
	fresh.cfg.Blobs = truth
	wantEarliest, _, err := fresh.Earliest(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	wantN, err := fresh.Bytes(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !earliest.Equal(wantEarliest) || n != wantN {
		t.Fatalf("window from %s, %d bytes; the blobs listed afresh say %s, %d bytes", earliest, n, wantEarliest, wantN)
	}
	return earliest, n
}

// TestWindowReadsListNothing checks that the window's start and the
// history's size, asked on every page view, list the blobs once per
// database and never again, and follow the replicator's writes.
func TestWindowReadsListNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path, w, ck := checkpointedWriter(t, dir)
	local := localBlobs(t, dir)
	blobs := &countingBlobs{Blobs: local}
	reps := newReplicators(t, ck, Config{Blobs: blobs, Interval: 100 * time.Millisecond})
	const id = "db1"
	// commits writes rows with replication on, then stops it, so that
	// only the window's reads list anything afterwards.
	commits := func(rows int) {
		t.Helper()
		if err := reps.Start(ctx, id, path, time.Hour); err != nil {
			t.Fatal(err)
		}
		for range rows {
			if _, err := w.Exec(`INSERT INTO t(pad) VALUES (randomblob(3000))`); err != nil {
				t.Fatal(err)
			}
			if err := reps.Sync(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		if err := reps.Stop(ctx, id); err != nil {
			t.Fatal(err)
		}
	}

	commits(5)
	before := blobs.lists.Load()
	earliest, n := window(t, reps, local, id)
	for range 10 {
		window(t, reps, local, id)
	}
	if got := blobs.lists.Load() - before; got > 1 {
		t.Fatalf("11 reads of the window listed the blobs %d times; want at most once", got)
	}

	// More history, written by the replicator: the window's reads see it
	// without listing.
	commits(5)
	before = blobs.lists.Load()
	earliest2, n2 := window(t, reps, local, id)
	if got := blobs.lists.Load() - before; got != 0 {
		t.Fatalf("reading the window after more history listed the blobs %d times; want none", got)
	}
	if n2 <= n || !earliest2.Equal(earliest) {
		t.Fatalf("after 5 more commits: window from %s, %d bytes; before from %s, %d bytes", earliest2, n2, earliest, n)
	}

	// Drop deletes the history: nothing is left to restore to.
	if err := reps.Drop(ctx, id, path); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := reps.Earliest(ctx, id); ok || err != nil {
		t.Fatalf("after Drop: Earliest says a history (%v, %v)", ok, err)
	}
	if n, err := reps.Bytes(ctx, id); n != 0 || err != nil {
		t.Fatalf("after Drop: %d bytes (%v); want 0", n, err)
	}
}

// TestFilesFollowDeletes checks that a client's files, once listed, lose
// the files its retention deletes (DeleteLTXFiles) and the earlier copy of
// a range written again, and that reading them lists nothing.
func TestFilesFollowDeletes(t *testing.T) {
	ctx := context.Background()
	local, err := snapstore.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	blobs := &countingBlobs{Blobs: local}
	c := NewClient(plainBlobs{blobs}, "db1", nil)
	reps := &Replicators{clients: map[string]*Client{"db1": c}}
	_, data, ts := ltxFile(t, t.TempDir(), 3)
	put := func(level int) *ltx.FileInfo {
		t.Helper()
		info, err := c.WriteLTXFile(ctx, level, 1, 1, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	// read is what a page view reads; after the first, it lists nothing.
	first := true
	read := func(what string) (time.Time, bool, int64) {
		t.Helper()
		before := blobs.lists.Load()
		earliest, ok, err := reps.Earliest(ctx, "db1")
		if err != nil {
			t.Fatal(err)
		}
		n, err := reps.Bytes(ctx, "db1")
		if err != nil {
			t.Fatal(err)
		}
		if got := blobs.lists.Load() - before; got > 0 && !first {
			t.Fatalf("%s: reading the window listed the blobs %d times; want none", what, got)
		}
		first = false
		return earliest, ok, n
	}
	snap := put(litestream.SnapshotLevel)
	l0 := put(0)
	if _, _, n := read("two files"); n != 2*int64(len(data)) {
		t.Fatalf("two files: %d bytes, want %d", n, 2*len(data))
	}
	put(0)
	if _, _, n := read("a range written again"); n != 2*int64(len(data)) {
		t.Fatalf("a range written again: %d bytes, want %d (the earlier copy is gone)", n, 2*len(data))
	}
	if err := c.DeleteLTXFiles(ctx, []*ltx.FileInfo{snap}); err != nil {
		t.Fatal(err)
	}
	earliest, ok, n := read("the snapshot deleted")
	if n != int64(len(data)) || !ok || !earliest.Equal(ts.Add(time.Millisecond)) {
		t.Fatalf("the snapshot deleted: %d bytes, earliest %s (%v); want %d bytes, the level-0 file's %s", n, earliest, ok, len(data), ts)
	}
	if err := c.DeleteLTXFiles(ctx, []*ltx.FileInfo{l0}); err != nil {
		t.Fatal(err)
	}
	if _, ok, n := read("every file deleted"); ok || n != 0 {
		t.Fatalf("every file deleted: %d bytes, a history %v; want none", n, ok)
	}
}

// localBlobs is a local snapshot store in dir/snapshots.
func localBlobs(t *testing.T, dir string) *snapstore.Local {
	t.Helper()
	local, err := snapstore.NewLocal(filepath.Join(dir, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	return local
}

// newReplicators is New(cfg) with ck's checkpointer standing aside for
// the replicators (asideFor), closed at the test's end.
func newReplicators(t *testing.T, ck *checkpoint.Checkpointer, cfg Config) *Replicators {
	t.Helper()
	cfg.Checkpoints = asideFor{ck}
	reps, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reps.Close(context.Background()) })
	return reps
}

// checkpointedWriter makes database db.sqlite in dir with table t, and
// returns its path, a writer as the console's pools open one, and the
// writer's checkpointer; both are closed at the test's end.
func checkpointedWriter(t *testing.T, dir string) (string, *sql.DB, *checkpoint.Checkpointer) {
	t.Helper()
	path := filepath.Join(dir, "db.sqlite")
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)", "wal_autocheckpoint(0)"} {
		q.Add("_pragma", p)
	}
	w, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if _, err := w.Exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, pad TEXT)`); err != nil {
		t.Fatal(err)
	}
	ck := checkpoint.New(w, nil)
	t.Cleanup(ck.Close)
	return path, w, ck
}

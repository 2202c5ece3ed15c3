package pitr

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/pagecache"
)

// dirtyPages is how many of the file at path's pages in the page cache
// are dirty.
func dirtyPages(t *testing.T, path string) uint64 {
	t.Helper()
	st, err := pagecache.Of(path)
	if errors.Is(err, pagecache.ErrUnsupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return st.Dirty
}

// TestWALWrittenBackWhileWritten: the frames commits add to a replicated
// database's WAL are sent to disk within a few writeback intervals, with
// nothing having fsynced the WAL (no checkpoint: fewer frames than
// MinCheckpointPageN, and commits at synchronous=NORMAL). Without the
// writeback the kernel leaves them dirty for half a minute
// (vm.dirty_expire_centisecs), until Litestream's checkpoint fsyncs them
// while its barrier holds every commit.
func TestWALWrittenBackWhileWritten(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path, w, ck := checkpointedWriter(t, dir)
	tuning := DefaultTuning
	tuning.MinCheckpointPageN = 100_000
	tuning.CheckpointInterval = time.Hour
	reps := newReplicators(t, ck, Config{Blobs: localBlobs(t, dir), Interval: time.Second, Tuning: tuning})
	const id = "db1"
	if err := reps.Start(ctx, id, path, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := reps.Sync(ctx, id); err != nil {
		t.Fatal(err)
	}
	// 200 commits of a 3 KiB row each: a frame or two per commit, far
	// under MinCheckpointPageN.
	for range 200 {
		if _, err := w.Exec(`INSERT INTO t(pad) VALUES (hex(randomblob(1500)))`); err != nil {
			t.Fatal(err)
		}
		reps.Committed(ctx, id, false)
	}
	wal := path + "-wal"
	if n := dirtyPages(t, wal); n == 0 {
		t.Log("the WAL had no dirty page right after the commits")
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		n := dirtyPages(t, wal)
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the WAL still has %d dirty pages 2 s after its last commit, want 0 within a few %s", n, DefaultWALWriteback)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// And the frames were not fsynced by a checkpoint meanwhile: the
	// WAL still holds them.
	fi, err := os.Stat(wal)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() < 200*1024 {
		t.Fatalf("the WAL is %d bytes: a checkpoint restarted it, the test proves nothing", fi.Size())
	}
}

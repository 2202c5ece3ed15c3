package pitr

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapstore"
)

// passingBlobs is real blobs that record, for each key put or read,
// whether the context marked it as passing through (snapstore.Passing):
// the S3 store's cache then keeps none of it.
type passingBlobs struct {
	snapstore.Blobs
	mu    sync.Mutex
	puts  map[string]bool
	reads map[string]bool
}

func (p *passingBlobs) Put(ctx context.Context, key string, data []byte) error {
	p.mu.Lock()
	p.puts[key] = snapstore.IsPassing(ctx)
	p.mu.Unlock()
	return p.Blobs.Put(ctx, key, data)
}

func (p *passingBlobs) GetRange(ctx context.Context, key string, off int64, buf []byte) error {
	p.mu.Lock()
	p.reads[key] = snapstore.IsPassing(ctx)
	p.mu.Unlock()
	return p.Blobs.(snapstore.RangeGetter).GetRange(ctx, key, off, buf)
}

// TestCompactionsPassThroughTheCache: a compaction reads the level-0
// files and puts its file as passing through (snapstore.Passing), so that
// the S3 store's cache does not keep them in place of the latest
// snapshots' packs; the replicator's own level-0 files are put as usual.
func TestCompactionsPassThroughTheCache(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path, w, ck := checkpointedWriter(t, dir)
	blobs := &passingBlobs{Blobs: localBlobs(t, dir), puts: map[string]bool{}, reads: map[string]bool{}}
	reps := newReplicators(t, ck, Config{Blobs: blobs, Interval: 100 * time.Millisecond})
	const id = "db1"
	if err := reps.Start(ctx, id, path, time.Hour); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := w.Exec(`INSERT INTO t(pad) VALUES (randomblob(3000))`); err != nil {
			t.Fatal(err)
		}
		if err := reps.Sync(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	reps.mu.Lock()
	cur := reps.running[id]
	reps.mu.Unlock()
	if !cur.wait(ctx) {
		t.Fatal("the replicator did not open the database")
	}
	reps.compactLevel(ctx, cur, compactionLevels[1], slog.New(slog.DiscardHandler))

	blobs.mu.Lock()
	defer blobs.mu.Unlock()
	count := func(m map[string]bool, level string, passing bool) (n int) {
		for key, p := range m {
			if strings.Contains(key, "/"+level+"/") && p == passing {
				n++
			}
		}
		return n
	}
	if count(blobs.puts, "l1", true) == 0 || count(blobs.puts, "l1", false) != 0 {
		t.Errorf("level-1 files put passing through: %d, not: %d; want some and none (puts %v)",
			count(blobs.puts, "l1", true), count(blobs.puts, "l1", false), blobs.puts)
	}
	if count(blobs.reads, "l0", true) == 0 || count(blobs.reads, "l0", false) != 0 {
		t.Errorf("level-0 files the compaction read passing through: %d, not: %d; want some and none (reads %v)",
			count(blobs.reads, "l0", true), count(blobs.reads, "l0", false), blobs.reads)
	}
	if count(blobs.puts, "l0", false) == 0 || count(blobs.puts, "l0", true) != 0 {
		t.Errorf("level-0 files put as usual: %d, passing through: %d; want some and none",
			count(blobs.puts, "l0", false), count(blobs.puts, "l0", true))
	}
}

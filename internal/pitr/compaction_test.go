package pitr_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/checkpoint"
	"github.com/snapdeck/snapdeck/internal/pitr"
	"github.com/snapdeck/snapdeck/internal/snapstore"
)

// TestStartCompactsNothingAtOnce starts a database's replication, writes,
// stops and starts it again (as a swap does), and finds only level-0 files
// two seconds later: Litestream's own monitors compacted every level and
// took a snapshot as soon as a database opened, the whole file written
// again into each. A run that crosses a 30-second boundary, where level 1
// compacts, is tried again.
func TestStartCompactsNothingAtOnce(t *testing.T) {
	for attempt := 1; ; attempt++ {
		began := time.Now()
		keys := startStopStart(t)
		if time.Now().Truncate(30*time.Second) != began.Truncate(30*time.Second) && attempt < 3 {
			continue
		}
		var l0 int
		for _, key := range keys {
			switch {
			case strings.Contains(key, "/l0/"):
				l0++
			default:
				t.Errorf("%s written within 2 s of a start", key)
			}
		}
		if l0 < 2 {
			t.Errorf("%d level-0 files, want the first read and the writes after the restart: %q", l0, keys)
		}
		return
	}
}

// startStopStart replicates a database, writes, restarts the replication,
// writes again, waits 2 s and returns the keys stored.
func startStopStart(t *testing.T) []string {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "db.sqlite")
	w := openWriter(t, path)
	if _, err := w.Exec(`CREATE TABLE t(n); INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	ck := checkpoint.New(w, nil)
	defer ck.Close()
	blobs, err := snapstore.NewLocal(filepath.Join(dir, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	reps, err := pitr.New(pitr.Config{Blobs: blobs, Checkpoints: checkpointsOf{ck}, Interval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer reps.Close(ctx)
	for i := range 2 {
		if err := reps.Start(ctx, testID, path, time.Hour); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Exec(`INSERT INTO t SELECT n+1 FROM t`); err != nil {
			t.Fatal(err)
		}
		if err := reps.Sync(ctx, testID); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if err := reps.Stop(ctx, testID); err != nil {
				t.Fatal(err)
			}
		}
	}
	time.Sleep(2 * time.Second)
	var keys []string
	if err := snapstore.ListPrefix(ctx, blobs, pitr.KeyPrefix, func(key string) error {
		keys = append(keys, key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}

package app

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/snapstore/s3blobs"
	"github.com/snapdeck/snapdeck/internal/snapstore/s3blobs/s3test"
)

// syncBuffer is a log the sizing goroutine and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSnapshotCacheSizeAuto checks that the S3 store's cache, with no
// size set, is sized from the database files (a quarter more and a
// margin, at most half the free disk), says so in the log at start, is
// sized again as a database grows, and that an explicit size wins.
func TestSnapshotCacheSizeAuto(t *testing.T) {
	weed := s3test.Start(t)
	ctx := context.Background()
	dataDir := t.TempDir()
	dbDir := filepath.Join(dataDir, "databases")
	if err := os.MkdirAll(dbDir, 0o750); err != nil {
		t.Fatal(err)
	}
	// Sparse files: their size is what counts, not their blocks.
	db := filepath.Join(dbDir, "a.sqlite")
	for name, size := range map[string]int64{db: 1536 << 20, filepath.Join(dbDir, "b.sqlite"): 512 << 20, filepath.Join(dbDir, "b.sqlite-wal"): 4 << 30} {
		f, err := os.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	cfg := Config{DataDir: dataDir, SnapshotStore: "s3://" + weed.Bucket + "/auto",
		S3: S3Config{Endpoint: weed.Endpoint, AccessKeyID: weed.AccessKeyID, SecretAccessKey: weed.SecretAccessKey}}
	defer func(d time.Duration) { autoCacheEvery = d }(autoCacheEvery)
	autoCacheEvery = 20 * time.Millisecond
	var log syncBuffer
	logger := slog.New(slog.NewTextHandler(&log, nil))

	// want is the size AutoSize gives images bytes of databases now.
	want := func(c *s3blobs.Cache, images int64) (int64, bool) {
		free, err := s3blobs.FreeSpace(c.Dir())
		if err != nil {
			t.Fatal(err)
		}
		return s3blobs.AutoSize(images, c.Used(), free)
	}
	near := func(got, want int64) bool { return got >= want-want/100 && got <= want+want/100 }

	st, closeStore, err := openSnapshots(ctx, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	cache := st.Blobs().(*s3blobs.Cache)
	size, bounded := want(cache, 2<<30)
	if got := cache.Limit(); !near(got, size) {
		t.Errorf("auto cache size %d for 2 GiB of databases, want %d (bounded by the disk: %v)", got, size, bounded)
	}
	if !bounded && cache.Limit() < 2<<30+2<<30/4 {
		t.Errorf("auto cache size %d does not hold 2 GiB of databases and a quarter more", cache.Limit())
	}
	if !strings.Contains(log.String(), "cache_size_from=auto") || !strings.Contains(log.String(), "database_bytes=2GiB") {
		t.Errorf("the start's log does not say how the cache was sized:\n%s", log.String())
	}
	// The database grows: the cache follows within a sizing period.
	if err := os.Truncate(db, 3<<30); err != nil {
		t.Fatal(err)
	}
	size, bounded = want(cache, 3584<<20)
	// The sizer sets the limit, then logs it: wait for both.
	resized := func() bool { return strings.Contains(log.String(), "snapshot cache resized") }
	for deadline := time.Now().Add(10 * time.Second); !near(cache.Limit(), size) || !resized(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			if !near(cache.Limit(), size) {
				t.Fatalf("auto cache size %d after a database grew to 3 GiB, want %d (bounded by the disk: %v)", cache.Limit(), size, bounded)
			}
			t.Fatalf("the resize is not in the log:\n%s", log.String())
		}
	}
	closeStore(ctx)

	// With point-in-time replication on, Litestream's files (a copy of
	// each database, first) go through the cache too: twice the files.
	cfg.PITRWindows = map[snapdeck.Plan]time.Duration{snapdeck.PlanProfessional: time.Hour}
	st, closeStore, err = openSnapshots(ctx, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	cache = st.Blobs().(*s3blobs.Cache)
	size, bounded = want(cache, 7<<30)
	if got := cache.Limit(); !near(got, size) {
		t.Errorf("auto cache size %d for 3.5 GiB of replicated databases, want %d (bounded by the disk: %v)", got, size, bounded)
	}
	closeStore(ctx)

	// An explicit size wins, and stays.
	cfg.S3.CacheSize = 64 << 20
	st, closeStore, err = openSnapshots(ctx, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore(ctx)
	cache = st.Blobs().(*s3blobs.Cache)
	time.Sleep(10 * autoCacheEvery)
	if got := cache.Limit(); got != 64<<20 {
		t.Errorf("cache size %d with --snapshot-cache-size 64MiB, want 64 MiB", got)
	}
}

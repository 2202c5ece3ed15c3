package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/snapdeck/snapdeck/internal/bytesize"
	"github.com/snapdeck/snapdeck/internal/durable"
	"github.com/snapdeck/snapdeck/internal/snapstore"
	"github.com/snapdeck/snapdeck/internal/snapstore/s3blobs"
)

// S3Config signs in to a snapshot store on S3 (Config.SnapshotStore
// s3://BUCKET/PREFIX).
type S3Config struct {
	// Endpoint is the server's URL; empty is AWS's endpoint of Region.
	Endpoint string
	// Region is us-east-1 when empty.
	Region string
	// AccessKeyID and SecretAccessKey sign every request.
	AccessKeyID, SecretAccessKey string
	// CacheSize bounds the local cache of the store's blobs (under
	// cache/snapstore/ in the data directory); zero sizes it from the
	// data (autoCacheSize), again every autoCacheEvery.
	CacheSize int64
}

// autoCacheEvery is how often a cache sized from the data is sized again
// (a variable for tests).
//
// Every 10 s: the sizing costs a listing of the databases and a statfs,
// and with a minute a database of 1 GiB filled in under a minute had its
// first capture's packs put while the cache was still sized for none
// (256 MiB), so its capture after 1% changed made 34 GETs.
var autoCacheEvery = 10 * time.Second

// cacheSizer sizes the snapshot cache from the data: the database files
// (the images of their next and latest snapshots) against the free space
// of the cache's file system (s3blobs.AutoSize).
type cacheSizer struct {
	dbDir string
	// replicated: some plan has a point-in-time window. Litestream's
	// files go through the same cache, the first of them a copy of the
	// whole database, so the files count twice: with a cache the size
	// of a 1 GiB database's files and a half, a warm restore of it
	// still made 43 GETs. (That was before the compactions' files
	// passed through it, snapstore.Passing; a point-in-time restore's
	// reads of them are still kept.)
	replicated bool
	cache      *s3blobs.Cache
	logger     *slog.Logger
}

// size works out the cache's size and the reasons for it, for the log.
func (z cacheSizer) size() (size int64, attrs []any) {
	var images int64
	var count int
	entries, err := os.ReadDir(z.dbDir)
	if err != nil {
		z.logger.Warn("snapshot cache: database files not listed; sizing from none", "err", err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".sqlite") {
			if info, err := e.Info(); err == nil {
				images += info.Size()
				count++
			}
		}
	}
	if z.replicated {
		images *= 2
	}
	used := z.cache.Used()
	free, err := s3blobs.FreeSpace(z.cache.Dir())
	if err != nil {
		free = -1
	}
	size, bounded := s3blobs.AutoSize(images, used, free)
	attrs = []any{"cache_size", bytesize.Format(size), "databases", count, "database_bytes", bytesize.Format(images), "replicated", z.replicated,
		"disk_free", bytesize.Format(max(free, 0)), "bounded_by_disk", bounded}
	return size, attrs
}

// resize sizes the cache again, logging a change.
func (z cacheSizer) resize() {
	size, attrs := z.size()
	if old := z.cache.Limit(); size != old {
		z.cache.SetLimit(size)
		z.logger.Info("snapshot cache resized (--snapshot-cache-size auto)", append(attrs, "was", bytesize.Format(old))...)
	}
}

// run sizes the cache again every autoCacheEvery until stop is closed.
func (z cacheSizer) run(stop <-chan struct{}) {
	t := time.NewTicker(autoCacheEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			z.resize()
		case <-stop:
			return
		}
	}
}

// openSnapshots opens the snapshot store cfg names: snapshots/ in the data
// directory, or an s3:// URL. On S3 it checks the
// bucket with real requests, takes the prefix's lease (refusing to start
// when another live node holds it) and keeps a local cache; close releases
// the lease after the store is closed.
func openSnapshots(ctx context.Context, cfg Config, logger *slog.Logger) (st *snapstore.Store, close func(context.Context), err error) {
	if cfg.SnapshotStore == "" {
		st, err := snapstore.Open(ctx, filepath.Join(cfg.DataDir, "snapshots"), logger)
		if err != nil {
			return nil, nil, err
		}
		return st, func(ctx context.Context) { st.Close(ctx) }, nil
	}
	bucket, prefix, err := s3blobs.ParseURL(cfg.SnapshotStore)
	if err != nil {
		return nil, nil, err
	}
	endpoint, region := cfg.S3.Endpoint, cfg.S3.Region
	if region == "" {
		region = "us-east-1"
	}
	if endpoint == "" {
		endpoint = "https://s3." + region + ".amazonaws.com"
	}
	remote, err := s3blobs.New(s3blobs.Config{Bucket: bucket, Prefix: prefix, Endpoint: endpoint, Region: region,
		AccessKeyID: cfg.S3.AccessKeyID, SecretAccessKey: cfg.S3.SecretAccessKey})
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot store %s: %w", cfg.SnapshotStore, err)
	}
	if err := remote.Check(ctx); err != nil {
		return nil, nil, fmt.Errorf("snapshot store %s: %w", cfg.SnapshotStore, err)
	}
	node, err := nodeID(cfg.DataDir)
	if err != nil {
		return nil, nil, err
	}
	host, _ := os.Hostname()
	lease, err := s3blobs.AcquireLease(ctx, remote, s3blobs.Holder{Node: node, Host: host, PID: os.Getpid()}, 0, logger)
	if err != nil {
		return nil, nil, err
	}
	release := func(ctx context.Context) {
		if err := lease.Release(ctx); err != nil {
			logger.Error("snapshot store: lease not released", "store", cfg.SnapshotStore, "err", err)
		}
	}
	auto := cfg.S3.CacheSize == 0
	size := cfg.S3.CacheSize
	if auto {
		size = math.MaxInt64 // sized below, once the cache knows what it holds
	}
	cache, err := s3blobs.NewCache(remote, filepath.Join(cfg.DataDir, "cache", "snapstore"), size, logger)
	if err != nil {
		release(context.Background())
		return nil, nil, err
	}
	cacheAttrs := []any{"cache_size", bytesize.Format(size)}
	sizingCtx, stopSizing := context.WithCancel(context.Background())
	var sizing sync.WaitGroup
	if auto {
		z := cacheSizer{dbDir: filepath.Join(cfg.DataDir, "databases"), cache: cache, logger: logger}
		for _, w := range cfg.PITRWindows {
			z.replicated = z.replicated || w > 0
		}
		size, cacheAttrs = z.size()
		cache.SetLimit(size)
		cacheAttrs = append(cacheAttrs, "cache_size_from", "auto")
		sizing.Go(func() { z.run(sizingCtx.Done()) })
	}
	stop := func() {
		stopSizing()
		sizing.Wait()
		cache.Close()
	}
	st, err = snapstore.OpenBlobs(ctx, cache, logger)
	if err != nil {
		stop()
		release(context.Background())
		return nil, nil, fmt.Errorf("snapshot store %s: %w", cfg.SnapshotStore, err)
	}
	logger.Info("snapshot store on S3", append([]any{"store", cfg.SnapshotStore, "endpoint", endpoint, "node", node}, cacheAttrs...)...)
	return st, func(ctx context.Context) {
		st.Close(ctx)
		stop()
		release(ctx)
	}, nil
}

// nodeID returns this data directory's node id, made at its first start:
// it names the node in the snapshot store's lease, and lets a node that
// restarts after a crash take its own lease back at once.
func nodeID(dataDir string) (string, error) {
	path := filepath.Join(dataDir, "node-id")
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read node id: %w", err)
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	id := hex.EncodeToString(rnd[:])
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o640); err != nil {
		return "", fmt.Errorf("write node id: %w", err)
	}
	if err := durable.Sync(tmp); err != nil {
		return "", fmt.Errorf("write node id: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("write node id: %w", err)
	}
	if err := durable.SyncDir(dataDir); err != nil {
		return "", fmt.Errorf("write node id: %w", err)
	}
	return id, nil
}

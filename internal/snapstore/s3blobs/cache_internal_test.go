package s3blobs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/snapdeck/snapdeck/internal/snapstore/s3blobs/s3test"
)

// TestColdReadsShareFetches checks that a read of blocks another read is
// fetching waits for that fetch instead of requesting them again (a cold
// restore's page readers and its read-ahead of tree leaves want the same
// runs), and that blocks read are still kept on disk, off the read's path.
func TestColdReadsShareFetches(t *testing.T) {
	blob := make([]byte, 2<<20)
	for i := range blob {
		blob[i] = byte(i * 7 / 3)
	}
	weed, ctx := s3test.Start(t), context.Background()
	remote, err := New(Config{Endpoint: weed.Endpoint, Bucket: weed.Bucket, Prefix: "shared-fetches",
		AccessKeyID: weed.AccessKeyID, SecretAccessKey: weed.SecretAccessKey})
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(ctx, "p/pack", blob); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c, err := NewCache(remote, dir, 64<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.size(ctx, "p/pack"); err != nil {
		t.Fatal(err)
	}
	// Every request slot taken: the first read claims its blocks and
	// waits for a slot.
	for range inFlight {
		c.sem <- struct{}{}
	}
	before := remote.Requests()
	first, second := make([]byte, 1000), make([]byte, 3000)
	errs := make(chan error, 2)
	go func() { errs <- c.GetRange(ctx, "p/pack", 100, first) }()
	for !c.isFetching(blockID{"p/pack", 0}) {
		runtime.Gosched()
	}
	// Block 3 is in the first read's read-ahead.
	go func() { errs <- c.GetRange(ctx, "p/pack", 3*blockSize+5, second) }()
	for c.waited.Load() == 0 {
		runtime.Gosched()
	}
	for range inFlight {
		<-c.sem
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(first, blob[100:1100]) || !bytes.Equal(second, blob[3*blockSize+5:3*blockSize+3005]) {
		t.Fatal("the reads returned other bytes than the blob's")
	}
	if got := remote.Requests().Sub(before).Get; got != 1 {
		t.Errorf("two reads of blocks in one run made %d GETs, want 1", got)
	}
	// The blocks fetched are kept on disk once the filler has run.
	c.Close()
	warm, err := NewCache(remote, dir, 64<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer warm.Close()
	before = remote.Requests()
	again := make([]byte, 3000)
	if err := warm.GetRange(ctx, "p/pack", 3*blockSize+5, again); err != nil {
		t.Fatal(err)
	}
	if got := remote.Requests().Sub(before); got.Get != 0 || !bytes.Equal(again, second) {
		t.Errorf("reading fetched blocks again after a restart made %d GETs (want 0) or returned other bytes", got.Get)
	}
}

func (c *Cache) isFetching(id blockID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.fetching[id]
	return ok
}

// TestDropForgetsAKeysBlocks: dropping a key removes its blocks from the
// index, the bytes in use and the disk, and leaves other keys' alone.
func TestDropForgetsAKeysBlocks(t *testing.T) {
	dir := t.TempDir()
	c, err := NewCache(nil, dir, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	block := make([]byte, blockSize)
	for idx := range int64(3) {
		c.store(blockID{"packs/a", idx}, block)
	}
	c.store(blockID{"packs/b", 0}, block[:10])
	c.drop("packs/a")
	c.mu.Lock()
	used, n := c.used, len(c.index)
	c.mu.Unlock()
	if used != 10+4 || n != 1 || c.lru.Len() != 1 {
		t.Errorf("after drop: %d bytes in %d blocks (%d in the LRU), want 14 in 1", used, n, c.lru.Len())
	}
	if _, err := os.Stat(filepath.Join(dir, "packs", "a"+blockDirSuffix)); !os.IsNotExist(err) {
		t.Errorf("the dropped key's directory: %v, want it gone", err)
	}
	if _, _, ok := c.load(blockID{"packs/b", 0}, 10); !ok {
		t.Errorf("the other key's block is gone")
	}
}

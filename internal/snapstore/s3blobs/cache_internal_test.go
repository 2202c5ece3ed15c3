package s3blobs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapstore"
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
		if err := c.slots.acquire(ctx, 0); err != nil {
			t.Fatal(err)
		}
	}
	before := remote.Requests()
	first, second := make([]byte, 1000), make([]byte, 3000)
	errs := make(chan error, 2)
	go func() { errs <- c.GetRange(ctx, "p/pack", 100, first) }()
	// Waited for until its last block of read-ahead is claimed, not its
	// first block: the second read, started in between, could claim
	// block 3 itself (it did under -race).
	for !c.isFetching(blockID{"p/pack", readAhead}) {
		runtime.Gosched()
	}
	// Block 3 is in the first read's read-ahead.
	go func() { errs <- c.GetRange(ctx, "p/pack", 3*blockSize+5, second) }()
	for c.waited.Load() == 0 {
		runtime.Gosched()
	}
	for range inFlight {
		c.slots.release()
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
	// The run read stays in memory for the readers after it, and goes
	// once no read has come for recentIdle: an idle cache holds none.
	c.mu.Lock()
	held := len(c.fetched)
	c.mu.Unlock()
	if held == 0 {
		t.Errorf("the run read is not in memory right after the read")
	}
	for deadline := time.Now().Add(recentIdle + 5*time.Second); ; time.Sleep(50 * time.Millisecond) {
		c.mu.Lock()
		held, n := len(c.fetched), c.recentN
		c.mu.Unlock()
		if held == 0 && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d blocks (%d bytes of runs) still in memory %s after the last read", held, n, recentIdle+5*time.Second)
		}
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
		c.store(fill{key: "packs/a", data: block, first: idx})
	}
	c.store(fill{key: "packs/b", data: block[:10]})
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

// TestExtentsHoldRuns: a run of blocks is kept in one file, each block is
// read back from it and checked against its CRC, a restart finds them
// again, a block torn on disk is not returned (its extent goes), and a run
// fetched before its key was dropped is not kept.
func TestExtentsHoldRuns(t *testing.T) {
	dir := t.TempDir()
	c, err := NewCache(nil, dir, 64<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 5*blockSize+123)
	for i := range data {
		data[i] = byte(i*13 + i/blockSize)
	}
	c.store(fill{key: "packs/a", data: data, first: 2})
	files, _ := filepath.Glob(filepath.Join(dir, "packs", "a"+blockDirSuffix, "*"))
	if len(files) != 1 {
		t.Fatalf("a run of 6 blocks is in %d files, want 1: %v", len(files), files)
	}
	check := func(c *Cache, idx int64) bool {
		t.Helper()
		i := idx - 2
		want := data[i*blockSize : min(int64(len(data)), (i+1)*blockSize)]
		got, bp, ok := c.load(blockID{"packs/a", idx}, int64(len(want)))
		if !ok {
			return false
		}
		defer blockBuffers.Put(bp)
		if !bytes.Equal(got, want) {
			t.Fatalf("block %d: other bytes than were kept", idx)
		}
		return true
	}
	for idx := int64(2); idx < 8; idx++ {
		if !check(c, idx) {
			t.Fatalf("block %d not found", idx)
		}
	}
	gen := c.gens["packs/b"]
	c.drop("packs/b")
	c.store(fill{key: "packs/b", data: data[:blockSize], gen: gen})
	if _, _, ok := c.load(blockID{"packs/b", 0}, blockSize); ok {
		t.Errorf("a run fetched before its key was dropped was kept")
	}
	c.Close()

	reopened, err := NewCache(nil, dir, 64<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer reopened.Close()
	if reopened.used != int64(len(data))+6*4 || len(reopened.index) != 6 {
		t.Errorf("after a restart: %d bytes in %d blocks, want %d in 6", reopened.used, len(reopened.index), len(data)+24)
	}
	if !check(reopened, 7) {
		t.Fatal("the last block is not found after a restart")
	}
	// A torn byte in block 4: that block is not returned, and its extent
	// goes (the others are read again from the server).
	f, err := os.OpenFile(files[0], os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{^data[2*blockSize+7]}, 2*blockSize+7); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if check(reopened, 4) {
		t.Fatal("a block with a torn byte was returned")
	}
	if _, ok := reopened.index[blockID{"packs/a", 2}]; ok || reopened.used != 0 {
		t.Errorf("the torn extent is still indexed (%d bytes in use)", reopened.used)
	}
}

// TestOnePassReusesRunBuffers: the runs a pass through an image reads
// once (a restore from a new node's empty cache) are read into buffers
// of the runs before, once those are forgotten and no read copies from
// them, rather than into new memory each; and what every read returns is
// still the blob's bytes, while other reads share the runs.
func TestOnePassReusesRunBuffers(t *testing.T) {
	weed, ctx := s3test.Start(t), snapstore.OnePass(context.Background())
	remote, err := New(Config{Endpoint: weed.Endpoint, Bucket: weed.Bucket, Prefix: "run-buffers",
		AccessKeyID: weed.AccessKeyID, SecretAccessKey: weed.SecretAccessKey})
	if err != nil {
		t.Fatal(err)
	}
	const packs, size = 4, 2 << 20
	blobs := make([][]byte, packs)
	for i := range blobs {
		blobs[i] = make([]byte, size)
		for j := range blobs[i] {
			blobs[i][j] = byte(j*31/7 + i*5)
		}
		if err := remote.Put(ctx, fmt.Sprintf("p/%d", i), blobs[i]); err != nil {
			t.Fatal(err)
		}
	}
	c, err := NewCache(remote, t.TempDir(), 64<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var allocated [3]uint64
	for round := range allocated {
		for i := range packs {
			c.drop(fmt.Sprintf("p/%d", i)) // read cold again
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		// Two readers a pack, each reading it in 128 KiB ranges from
		// its own end: they share the pack's one fetch.
		errs := make(chan error, 2*packs)
		for i := range 2 * packs {
			go func() {
				key, want := fmt.Sprintf("p/%d", i/2), blobs[i/2]
				buf := make([]byte, 128<<10)
				for k := range size / len(buf) {
					off := k * len(buf)
					if i%2 == 1 {
						off = size - (k+1)*len(buf)
					}
					if err := c.GetRange(ctx, key, int64(off), buf); err != nil {
						errs <- err
						return
					}
					if !bytes.Equal(buf, want[off:off+len(buf)]) {
						errs <- fmt.Errorf("round %d: %s at %d: other bytes than the blob's", round, key, off)
						return
					}
				}
				errs <- nil
			}()
		}
		for range 2 * packs {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		runtime.ReadMemStats(&after)
		allocated[round] = after.TotalAlloc - before.TotalAlloc
		c.forgetRecent() // as when the runs after them are read
	}
	for round := 1; round < len(allocated); round++ {
		if allocated[round] > packs*size/2 {
			t.Errorf("round %d of reading %d packs of %d MiB cold allocated %d MiB, want under %d MiB (the runs' buffers reused)",
				round+1, packs, size>>20, allocated[round]>>20, packs*size/2>>20)
		}
	}
}

// TestWarmReadOpensEachExtentOnce: a read of many blocks of one extent (a
// restore's batch from a warm cache) opens its file once, not once a
// block, and returns the bytes kept.
func TestWarmReadOpensEachExtentOnce(t *testing.T) {
	c, err := NewCache(nil, t.TempDir(), 64<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	data := make([]byte, 16*blockSize+100)
	for i := range data {
		data[i] = byte(i*7 + i/blockSize)
	}
	c.store(fill{key: "packs/a", data: data})
	c.mu.Lock()
	c.sizes["packs/a"] = int64(len(data))
	c.mu.Unlock()
	got := make([]byte, len(data)-10)
	if err := c.GetRange(context.Background(), "packs/a", 10, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data[10:]) {
		t.Fatal("the read returned other bytes than were kept")
	}
	if n := c.opens.Load(); n != 1 {
		t.Errorf("reading 17 blocks of one extent opened its file %d times, want 1", n)
	}
}

// TestSparseReadFetchesOnlyItsBlocks checks that a read marked Sparse
// within one pass through an image (a restore's read of its inner tree
// nodes, one in every 16 MiB of packs) fetches the blocks it wants and no
// more, where a read of one pass fetches the blob whole.
func TestSparseReadFetchesOnlyItsBlocks(t *testing.T) {
	weed, ctx := s3test.Start(t), context.Background()
	remote, err := New(Config{Endpoint: weed.Endpoint, Bucket: weed.Bucket, Prefix: "sparse",
		AccessKeyID: weed.AccessKeyID, SecretAccessKey: weed.SecretAccessKey})
	if err != nil {
		t.Fatal(err)
	}
	blob := make([]byte, 8<<20)
	for i := range blob {
		blob[i] = byte(i * 5 / 7)
	}
	for _, key := range []string{"p/sparse", "p/whole"} {
		if err := remote.Put(ctx, key, blob); err != nil {
			t.Fatal(err)
		}
	}
	c, err := NewCache(remote, t.TempDir(), 64<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	held := func(key string) (n int) {
		c.mu.Lock()
		defer c.mu.Unlock()
		for id := range c.fetched {
			if id.key == key {
				n++
			}
		}
		return n
	}
	pass := snapstore.OnePass(ctx)
	off := int64(3<<20 + 100)
	for key, rctx := range map[string]context.Context{"p/sparse": snapstore.Sparse(pass), "p/whole": pass} {
		if _, err := c.size(ctx, key); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 4096)
		if err := c.GetRanges(rctx, []snapstore.Range{{Key: key, Off: off, Buf: got}}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, blob[off:off+4096]) {
			t.Fatalf("%s: the read returned other bytes than the blob's", key)
		}
	}
	if n := held("p/sparse"); n != 1 {
		t.Errorf("a sparse read of 4 KiB fetched %d blocks, want 1", n)
	}
	if n := held("p/whole"); n != len(blob)/blockSize {
		t.Errorf("a read of one pass fetched %d blocks, want the whole blob's %d", n, len(blob)/blockSize)
	}
}

// TestPassingBlobsAreNotKept: blobs put and read passing through
// (snapstore.Passing: the point-in-time compactions' files) are put and
// read as usual, but not kept, and so push no pack out of a full cache: a
// compaction of 1 GiB between two captures pushed out the first one's
// packs, and the capture after 1% changed fetched its bases again (42
// GETs against 1).
func TestPassingBlobsAreNotKept(t *testing.T) {
	weed, ctx := s3test.Start(t), context.Background()
	remote, err := New(Config{Endpoint: weed.Endpoint, Bucket: weed.Bucket, Prefix: "passing",
		AccessKeyID: weed.AccessKeyID, SecretAccessKey: weed.SecretAccessKey})
	if err != nil {
		t.Fatal(err)
	}
	blob := func(n int, seed byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7/3) + seed
		}
		return b
	}
	pack, ltxPut, ltxRead := blob(2<<20, 1), blob(3<<20, 2), blob(3<<20, 3)
	if err := remote.Put(ctx, "pitr/db/l0/read.ltx", ltxRead); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// Room for the pack and one of the others, not for both.
	c, err := NewCache(remote, dir, 4<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Put(ctx, "packs/a", pack); err != nil {
		t.Fatal(err)
	}
	passing := snapstore.Passing(ctx)
	if err := c.Put(passing, "pitr/db/l1/put.ltx", ltxPut); err != nil {
		t.Fatal(err)
	}
	if _, err := c.size(ctx, "pitr/db/l0/read.ltx"); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(ltxRead))
	for off := 0; off < len(got); off += 1 << 20 { // as the compaction reads: a MiB at a time
		if err := c.GetRange(passing, "pitr/db/l0/read.ltx", int64(off), got[off:off+1<<20]); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, ltxRead) {
		t.Fatal("a blob read passing through: other bytes than the blob's")
	}
	got = make([]byte, len(ltxPut))
	if err := c.GetRange(passing, "pitr/db/l1/put.ltx", 0, got); err != nil || !bytes.Equal(got, ltxPut) {
		t.Fatalf("a blob put passing through reads back wrong (%v)", err)
	}
	c.Close() // waits for the blocks handed to the fillers to be kept

	reopened, err := NewCache(remote, dir, 4<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer reopened.Close()
	reopened.mu.Lock()
	var packBlocks, others int
	for id := range reopened.index {
		if id.key == "packs/a" {
			packBlocks++
		} else {
			others++
		}
	}
	reopened.mu.Unlock()
	if want := len(pack) / blockSize; packBlocks != want || others != 0 {
		t.Errorf("the cache holds %d of the pack's %d blocks and %d blocks of blobs passing through; want all and none",
			packBlocks, want, others)
	}
	before := remote.Requests()
	got = make([]byte, len(pack))
	if err := reopened.GetRange(ctx, "packs/a", 0, got); err != nil || !bytes.Equal(got, pack) {
		t.Fatalf("the pack reads back wrong (%v)", err)
	}
	if n := remote.Requests().Sub(before).Get; n != 0 {
		t.Errorf("reading the pack back made %d GETs, want none", n)
	}
}

package s3blobs

import (
	"bytes"
	"cmp"
	"container/list"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/snapstore"
)

// Cache is a snapstore.Blobs in front of an S3 that keeps recently used
// blocks of blobs on local disk, up to a size, and reads what it lacks
// several ranges at a time.
//
// Blobs are cached in aligned blocks of blockSize, kept in extents: one
// file holds a run of a key's blocks (a pack put, a run read), so keeping
// a pack costs one file, not one per block. Put keeps the blocks of
// what it uploads, in the background (the packs a capture writes are the
// next capture's bases and the likeliest to be restored), reads keep the
// blocks they fetched (also in the background, as many as the disk keeps
// up with; the rest stay in memory for a while and go), and the least
// recently used extents go when the cache is full. So after a
// restart the store's Open reads each pack's index from disk, a capture
// after a small change reads its bases from disk, and only a cold read
// goes to the server, in block-aligned runs: the tree leaves that lie
// every 128 KiB inside a pack come in one request per run of blocks, not
// one each.
//
// An extent file carries a CRC-32C of each of its blocks, and a block is
// used only if it matches, so a cache torn by a crash is read again from
// the server. Blobs are changed only through this Cache (the lease makes
// this node the prefix's only writer), which drops a key's blocks when it
// is put or deleted; a key the server no longer lists at Open is dropped
// too. A block fetched or put before a drop of its key is not kept after
// it (gens).
type Cache struct {
	remote *S3
	dir    string
	limit  atomic.Int64 // bytes the extents' files may take (SetLimit)
	logger *slog.Logger
	slots  *slots // bounds the range requests in flight

	fills     chan fill // blobs put, whose blocks filler keeps
	filled    chan struct{}
	reads     chan fill // runs read, whose blocks readFiller keeps
	readsDone chan struct{}
	closeOnce sync.Once

	mu       sync.Mutex
	pending  map[string][]byte         // blobs put whose blocks the filler has not kept yet
	fetched  map[blockID]fetchedBlock  // blocks of the recent runs read
	fetching map[blockID]chan struct{} // blocks being read, closed when they are in fetched
	queued   map[blockID]*waiter       // of those, the ones whose request waits for a slot
	recent   []fill                    // runs in fetched, oldest first
	recentN  int64                     // their bytes
	spare    [][]byte                  // buffers of forgotten runs, for the next ones
	idle     *time.Timer               // forgets the recent runs when no read came for a while
	waited   atomic.Int64              // reads that waited for another's fetch, for tests
	opens    atomic.Int64              // extent files opened to read blocks, for tests
	sizes    map[string]int64          // blob sizes learnt from List, Put and Stat
	gens     map[string]uint64         // per key, how often it was dropped
	lru      *list.List                // of *extent; front: most recently used
	index    map[blockID]*extent       // the extent holding each cached block
	used     int64                     // bytes of the extents' files
	seq      atomic.Uint64             // makes extent file names unique
}

type blockID struct {
	key string
	idx int64
}

// fetchedBlock is a block of a run read, and the run's buffer when it
// is kept for the next run once no read uses it.
type fetchedBlock struct {
	data []byte
	run  *runBuf
}

// runBuf is the buffer of a run read once, by one pass through an image,
// and not kept on disk: it is kept for the next run (c.spare) once
// it is out of c.fetched and every read that found a block of it has
// copied what it wanted (refs, guarded by c.mu). A cold restore of 263
// MiB read into 34 fresh buffers of 8 MiB, whose page faults and zeroing
// were a good part of the time spent receiving the responses.
type runBuf struct {
	data      []byte
	refs      int  // reads that may still copy from data, the fetching one included
	forgotten bool // no longer in c.fetched
}

// maxSpare is how many buffers of forgotten runs a cache keeps for the
// next runs: a restore forgets a run for each one it reads once it holds
// recentLimit of them, so a few are enough.
const maxSpare = 4

// newRunBuf returns a run buffer of n bytes held by the read that fetches
// it: a spare one large enough, or a new one. New ones are rounded up to
// a MiB, so that the runs of one image's packs (8 MiB and a few KiB of
// index, or that less the MiB an Open read) fit each other's buffers, and
// no larger: a new buffer is zeroed, and with buffers of maxRun the
// zeroing cost a cold restore more than the page faults it saved.
func (c *Cache) newRunBuf(n int64) *runBuf {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, b := range slices.Backward(c.spare) {
		if int64(cap(b)) >= n {
			c.spare = slices.Delete(c.spare, k, k+1)
			return &runBuf{data: b[:n], refs: 1}
		}
	}
	return &runBuf{data: make([]byte, n, (n+1<<20-1)&^(1<<20-1)), refs: 1}
}

// unref ends the use of a run's buffer by one read.
func (c *Cache) unref(runs []*runBuf) {
	if len(runs) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range runs {
		r.refs--
		c.recycleLocked(r)
	}
}

// recycleLocked keeps the buffer for the next run once it is forgotten
// and unused.
func (c *Cache) recycleLocked(r *runBuf) {
	if r.refs == 0 && r.forgotten && r.data != nil {
		if len(c.spare) == maxSpare {
			c.spare = slices.Delete(c.spare, 0, 1) // the oldest goes
		}
		c.spare = append(c.spare, r.data[:cap(r.data)])
		r.data = nil
	}
}

// extent is one file of the cache: blocks first to first+n-1 of key
// (dataLen bytes), then a CRC-32C of each block. live is how many of its
// blocks the index still finds here (a later extent may hold the others);
// none, and it goes.
type extent struct {
	key      string
	first, n int64
	dataLen  int64
	name     string // file name in the key's directory
	live     int64
	elem     *list.Element // nil once removed
}

func (e *extent) size() int64 { return e.dataLen + 4*e.n }

// blockSize is the unit of caching: each block is read whole from disk and
// checked against its CRC, so it is small enough that a capture reading the
// 1 KiB tree leaves near its changed pages (one every 128 KiB in a pack)
// does not read the packs whole from the cache (with 256 KiB blocks a
// capture after 1% changed read the whole image's worth).
const blockSize = 64 << 10

// maxGap is how many uncached blocks between two wanted ones a remote read
// fetches rather than making two requests: the tree leaves every 128 KiB
// come a run of blocks per request, not one each.
const maxGap = 4

// maxRun caps one remote read: a pack's worth, so a long cold read is
// split into requests that run in parallel. SeaweedFS here served 263 MiB
// of 8 MiB packs at 130-300 MiB/s in 1 MiB ranges and at 300-600 MiB/s in
// 4 to 8 MiB ones (each request costs about 2 ms besides its bytes).
const maxRun = 12 << 20

// bulkSpan: a read whose missing blocks of a blob span this much or more
// (a restore's batch of pages, the tree leaves below a node, which lie
// every 128 KiB through the packs) fetches the blob whole when it is no
// larger than maxRun, as a pack is: a cold restore of 263 MiB made 186
// requests of 1.4 MiB on average, split where the readers and the
// read-ahead of leaves had claimed blocks, and SeaweedFS sent 150 MiB/s
// that way, against 300-600 MiB/s in 8 MiB requests.
const bulkSpan = 1 << 20

// readAhead is how many blocks past a miss a remote read also fetches, when
// they are not cached: restores, verifications and exports read packs
// front to back, and 1 MiB costs hardly more than its round trip (about
// 220 MiB/s for 1 MiB ranges against 125 MiB/s for 256 KiB ones here).
// A read that goes on from blocks just fetched (a reader going through a
// pack) reads ahead up to maxRun.
const readAhead = 15

// inFlight is how many range requests run at once; a restore's readers
// and a capture's base reads share them. With the requests a pack each,
// SeaweedFS here sent 256 MiB of 8 MiB packs at 410-600 MiB/s two or four
// at a time, 190-330 MiB/s eight at a time (the server's threads and ours
// share two cores), and 130-330 MiB/s one at a time. Four once the slots
// went in the order a restore needs its packs (slots): ten cold restores
// of 263 MiB each with 3 and 4 (load average 8-9.5), medians 1.64 s and
// 1.42 s.
const inFlight = 4

// NewCache returns a Cache of at most limit bytes under dir in front of
// remote, keeping what an earlier run left in dir.
func NewCache(remote *S3, dir string, limit int64, logger *slog.Logger) (*Cache, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create snapshot cache directory: %w", err)
	}
	c := &Cache{remote: remote, dir: dir, logger: logger, slots: newSlots(inFlight),
		sizes: make(map[string]int64), gens: make(map[string]uint64), lru: list.New(), index: make(map[blockID]*extent),
		fills: make(chan fill, fillQueue), filled: make(chan struct{}), pending: make(map[string][]byte),
		reads: make(chan fill, readQueue), readsDone: make(chan struct{}),
		fetched: make(map[blockID]fetchedBlock), fetching: make(map[blockID]chan struct{}), queued: make(map[blockID]*waiter)}
	c.limit.Store(max(limit, 0))
	if err := c.scan(); err != nil {
		return nil, fmt.Errorf("read snapshot cache directory: %w", err)
	}
	go c.filler()
	go c.readFiller()
	return c, nil
}

// fill is a blob just put, or a run of blocks just read (data holds
// blocks first on), whose blocks a filler keeps.
type fill struct {
	key   string
	data  []byte
	first int64
	gen   uint64  // the key's generation when data was put or fetched
	run   *runBuf // data's buffer, when it is recycled
}

// readQueue is how many runs read wait for their blocks to be kept. The
// runs are kept when there is room and not when there is none: writing
// blocks a file each ran at about 65 MiB/s here, and a cold restore that
// waited for it took as long as writing its image into the cache (4.1 s of
// 4.2 s for 263 MiB), while the server sent it 3 to 6 times faster; an
// extent per run is much cheaper, but the disk may still be slower than
// the network. Up to 8 runs of at most 5 MiB are held.
const readQueue = 8

// recentLimit is how many bytes of runs read stay in memory, kept on disk
// or not, the oldest dropped first: a restore reads the tree leaves of the
// next inner nodes ahead, which fetches the pages around them too (16 MiB
// of packs a node), and its page readers find those pages here rather
// than reading them back from the cache's files. recentIdle after the
// last read they are all dropped, so an idle cache holds no memory.
const (
	recentLimit = 96 << 20
	recentIdle  = 5 * time.Second
)

// fillQueue is how many put blobs wait for their blocks to be kept: a
// capture's flushers hand over a pack and go on uploading the next, so the
// cache's writes are off the capture's path (writing them in Put made a
// first capture of 263 MiB 0.2-4 s slower). A pack put while the queue is
// full is not kept, which bounds the copies held to 8 packs: a first
// capture of 1 GiB that waited for the queue took 1.64 x minio-go's upload
// against 0.97 x without the cache, the disk taking the server's writes,
// the capture's and the cache's at once.
const fillQueue = 8

// filler keeps the blocks of put blobs, in the order they were put, until
// Close.
func (c *Cache) filler() {
	defer close(c.filled)
	for f := range c.fills {
		c.store(f)
		c.mu.Lock()
		if p, ok := c.pending[f.key]; ok && len(p) > 0 && &p[0] == &f.data[0] {
			delete(c.pending, f.key)
		}
		c.mu.Unlock()
	}
}

// readFiller keeps the blocks of runs read until Close.
func (c *Cache) readFiller() {
	defer close(c.readsDone)
	for f := range c.reads {
		c.keepRead(f)
	}
}

// keepRead writes a run read as one extent (its blocks stay in c.fetched
// while they are recent); a run whose key was put or deleted meanwhile is
// not kept.
func (c *Cache) keepRead(f fill) { c.store(f) }

// Close waits for the blocks of blobs put so far to be kept, and ends the
// cache's use: call it after the store on top is closed.
func (c *Cache) Close() {
	c.closeOnce.Do(func() {
		close(c.fills)
		close(c.reads)
	})
	<-c.filled
	<-c.readsDone
	c.mu.Lock()
	if c.idle != nil {
		c.idle.Stop()
	}
	c.mu.Unlock()
	c.goIdle()
}

// SetLimit changes the bytes the cache may take, dropping the least
// recently used extents at once when it holds more.
func (c *Cache) SetLimit(limit int64) {
	c.limit.Store(max(limit, 0))
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evictLocked()
}

// Dir returns the cache's directory.
func (c *Cache) Dir() string { return c.dir }

// Limit returns the bytes the cache may take.
func (c *Cache) Limit() int64 { return c.limit.Load() }

// Used returns the bytes the cache's files take.
func (c *Cache) Used() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}

// Remote returns the S3 behind the cache.
func (c *Cache) Remote() *S3 { return c.remote }

// blockDirSuffix ends the directory holding a key's blocks; '@' is not a
// key character, so no key's directory is another key's file.
const blockDirSuffix = "@"

func (c *Cache) keyDir(key string) string {
	return filepath.Join(c.dir, filepath.FromSlash(key)+blockDirSuffix)
}

func (c *Cache) extentPath(e *extent) string { return filepath.Join(c.keyDir(e.key), e.name) }

// parseExtentName reads an extent file's name, FIRST+N.SEQ; a name of a
// number alone is one block (a file of the cache's earlier layout, one
// block a file, which is an extent of one).
func parseExtentName(name string) (first, n int64, ok bool) {
	base, _, _ := strings.Cut(name, ".")
	f, count, plus := strings.Cut(base, "+")
	first, err := strconv.ParseInt(f, 10, 64)
	if err != nil || first < 0 {
		return 0, 0, false
	}
	n = 1
	if plus {
		if n, err = strconv.ParseInt(count, 10, 64); err != nil || n < 1 {
			return 0, 0, false
		}
	}
	return first, n, true
}

// scan rebuilds the cache's index from its directory, oldest files least
// recently used, and removes temporary files and files of the wrong size.
func (c *Cache) scan() error {
	type found struct {
		e     *extent
		mtime int64
	}
	var all []found
	// A file may go between the listing and its use: a cache still open
	// on the same directory (the store suite's reopen) renames its
	// temporary files as it keeps blocks. What is gone is skipped.
	gone := func(err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	err := filepath.WalkDir(c.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return gone(err)
		}
		if d.IsDir() {
			return nil
		}
		if strings.HasSuffix(path, ".tmp") {
			return gone(os.Remove(path))
		}
		rel, err := filepath.Rel(c.dir, path)
		if err != nil {
			return err
		}
		dir, name := filepath.Split(filepath.ToSlash(rel))
		key, ok := strings.CutSuffix(strings.TrimSuffix(dir, "/"), blockDirSuffix)
		first, n, nameOK := parseExtentName(name)
		info, ierr := d.Info()
		if !ok || !nameOK || ierr != nil {
			return nil
		}
		e := &extent{key: key, first: first, n: n, dataLen: info.Size() - 4*n, name: name}
		if e.dataLen <= (n-1)*blockSize || e.dataLen > n*blockSize {
			return gone(os.Remove(path)) // torn: not the size its name says
		}
		all = append(all, found{e, info.ModTime().UnixNano()})
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortFunc(all, func(a, b found) int { return cmp.Compare(b.mtime, a.mtime) })
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range all {
		e := f.e
		for i := range e.n {
			id := blockID{e.key, e.first + i}
			if _, ok := c.index[id]; !ok { // a newer extent has it
				c.index[id] = e
				e.live++
			}
		}
		e.elem = c.lru.PushBack(e)
		c.used += e.size()
		if e.live == 0 {
			c.removeLocked(e)
		}
	}
	c.evictLocked()
	return nil
}

// Put uploads data and hands its blocks to the filler to keep, unless
// ctx marks it as passing through (snapstore.Passing).
func (c *Cache) Put(ctx context.Context, key string, data []byte) error {
	c.drop(key)
	if err := c.remote.Put(ctx, key, data); err != nil {
		return err
	}
	c.mu.Lock()
	// Drop again: a read between the first drop and the upload's end
	// may have fetched the old content under the new gen.
	c.dropLocked(key)
	c.sizes[key] = int64(len(data))
	gen := c.gens[key]
	c.mu.Unlock()
	if snapstore.IsPassing(ctx) {
		c.logger.Debug("snapshot cache: put not kept, passing through", "key", key, "bytes", len(data))
		return nil
	}
	if len(data) > 0 && int64(len(data)) <= c.limit.Load() {
		// A copy: the caller reuses data once Put returns. Reads find it
		// in pending until its blocks are on disk.
		f := fill{key: key, data: bytes.Clone(data), gen: gen}
		c.mu.Lock()
		c.pending[key] = f.data
		c.mu.Unlock()
		select {
		case c.fills <- f:
		default:
			c.logger.Debug("snapshot cache: put not kept, the filler is behind", "key", key, "bytes", len(data))
			c.mu.Lock()
			delete(c.pending, key)
			c.mu.Unlock()
		}
	}
	return nil
}

// Get returns the whole blob, from the cache when every block is there.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, error) {
	c.mu.Lock()
	size, known := c.sizes[key]
	c.mu.Unlock()
	if known {
		buf := make([]byte, size)
		if err := c.GetRange(ctx, key, 0, buf); err == nil {
			return buf, nil
		} else if snapdeck.ErrorCode(err) == snapdeck.NotFound {
			return nil, err
		}
	}
	c.mu.Lock()
	gen := c.gens[key]
	c.mu.Unlock()
	data, err := c.remote.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.sizes[key] = int64(len(data))
	c.mu.Unlock()
	if !snapstore.IsPassing(ctx) {
		c.store(fill{key: key, data: data, gen: gen})
	}
	return data, nil
}

// Delete removes the blob and its cached blocks.
func (c *Cache) Delete(ctx context.Context, key string) error {
	c.drop(key)
	err := c.remote.Delete(ctx, key)
	// Drop again: a read between the first drop and the delete's end may
	// have fetched the blob under the new gen.
	c.drop(key)
	return err
}

// List lists the server's keys, learning their sizes; once a listing has
// run to its end, the blocks of keys it did not list are dropped.
func (c *Cache) List(ctx context.Context, fn func(key string) error) error {
	seen := make(map[string]bool)
	err := c.remote.ListSizes(ctx, func(key string, size int64) error {
		seen[key] = true
		c.mu.Lock()
		if old, ok := c.sizes[key]; ok && old != size {
			c.dropLocked(key)
		}
		c.sizes[key] = size
		c.mu.Unlock()
		return fn(key)
	})
	if err != nil {
		return err
	}
	c.mu.Lock()
	gone := make(map[string]bool)
	for id := range c.index {
		if !seen[id.key] {
			gone[id.key] = true
		}
	}
	for key := range gone {
		c.dropLocked(key)
	}
	c.mu.Unlock()
	return nil
}

// GetRange reads one range.
func (c *Cache) GetRange(ctx context.Context, key string, off int64, buf []byte) error {
	return c.GetRanges(ctx, []snapstore.Range{{Key: key, Off: off, Buf: buf}})
}

// GetRanges fills every range: blocks in the cache from disk, the others
// from the server in runs of neighbouring blocks, up to inFlight requests
// at once, kept in the cache after (unless ctx marks them as passing
// through: snapstore.Passing).
func (c *Cache) GetRanges(ctx context.Context, ranges []snapstore.Range) error {
	have := make(map[blockID][]byte)
	var pooled []*[]byte
	var held []*runBuf // the runs some of have's blocks lie in
	files := make(extentFiles)
	defer func() {
		for _, bp := range pooled {
			blockBuffers.Put(bp)
		}
		c.unref(held)
		files.close()
	}()
	for i := range ranges {
		r := &ranges[i]
		size, err := c.size(ctx, r.Key)
		if err != nil {
			return err
		}
		off := r.Off
		if off < 0 {
			off += size
		}
		if off < 0 || off+int64(len(r.Buf)) > size {
			return fmt.Errorf("get blob %s: range [%d, +%d) beyond its %d bytes", r.Key, r.Off, len(r.Buf), size)
		}
		r.Off = off
	}
	// Blocks another read is fetching are waited for rather than fetched
	// again (a restore's readers and its read-ahead of tree leaves want
	// the same runs), then looked for once more: if that read failed,
	// this one fetches them.
	order := snapstore.ReadOrder(ctx)
	for {
		missing := make(map[string][]int64) // per key, the blocks this read fetches
		var waits []chan struct{}
		for _, r := range ranges {
			size := c.knownSize(r.Key)
			for idx := r.Off / blockSize; idx*blockSize < r.Off+int64(len(r.Buf)); idx++ {
				id := blockID{r.Key, idx}
				if _, ok := have[id]; ok || slices.Contains(missing[r.Key], idx) {
					continue
				}
				data, run, wait, mine := c.claim(id)
				if run != nil {
					held = append(held, run)
				}
				switch {
				case data != nil:
					have[id] = data
				case wait != nil:
					waits = append(waits, wait)
					c.boost(id, order)
				case mine:
					missing[r.Key] = append(missing[r.Key], idx)
				default:
					if data, bp, ok := c.loadFrom(id, blockLen(size, idx), files); ok {
						have[id] = data
						pooled = append(pooled, bp)
					} else if data, run, wait, mine := c.claim(id); data != nil {
						if run != nil {
							held = append(held, run)
						}
						have[id] = data
					} else if wait != nil {
						waits = append(waits, wait)
						c.boost(id, order)
					} else if mine {
						missing[r.Key] = append(missing[r.Key], idx)
					}
				}
			}
		}
		if err := c.fetch(ctx, missing, have, &held); err != nil {
			return err
		}
		if len(waits) == 0 {
			break
		}
		c.waited.Add(1)
		for _, w := range waits {
			select {
			case <-w:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
	}
	for _, r := range ranges {
		for idx := r.Off / blockSize; idx*blockSize < r.Off+int64(len(r.Buf)); idx++ {
			data := have[blockID{r.Key, idx}]
			lo := max(r.Off, idx*blockSize)
			hi := min(r.Off+int64(len(r.Buf)), idx*blockSize+int64(len(data)))
			copy(r.Buf[lo-r.Off:hi-r.Off], data[lo-idx*blockSize:hi-idx*blockSize])
		}
	}
	return nil
}

// fetch reads the missing blocks from the server into have, in runs of
// neighbouring blocks, and keeps them; the runs whose buffers are recycled
// are added to held.
func (c *Cache) fetch(ctx context.Context, missing map[string][]int64, have map[blockID][]byte, held *[]*runBuf) error {
	type run struct {
		key    string
		lo, hi int64   // blocks [lo, hi)
		owned  []int64 // of those, the ones this read claimed
		size   int64
	}
	var runs []run
	onePass, sparse := snapstore.IsOnePass(ctx), snapstore.IsSparse(ctx)
	for key, idxs := range missing {
		slices.Sort(idxs)
		size := c.knownSize(key)
		blocks := (size + blockSize - 1) / blockSize
		if last := idxs[len(idxs)-1]; !sparse && blocks*blockSize <= maxRun && ((last-idxs[0]+1)*blockSize >= bulkSpan || onePass) {
			// A read across much of a blob, or any read of one pass
			// through an image, fetches all of it that no other read
			// has or is fetching, in one request: a cold restore read
			// the first leaves of six packs in runs of 1-2 MiB, then
			// the whole packs again.
			// The blob's free blocks are claimed at once: claimed one at
			// a time, two reads of one pack (the read-ahead of two
			// nodes whose leaves share it) took every other stretch of
			// it, and each fetched the whole span, the other's blocks
			// too.
			owned := append(slices.Clone(idxs), c.claimFree(key, blocks)...)
			slices.Sort(owned)
			// One request per stretch of claimed blocks: gaps of up to
			// maxGap blocks another read has are fetched again rather
			// than split.
			for i := 0; i < len(owned); {
				j := i + 1
				for j < len(owned) && owned[j]-owned[j-1] <= maxGap+1 {
					j++
				}
				runs = append(runs, run{key, owned[i], owned[j-1] + 1, slices.Clone(owned[i:j]), size})
				i = j
			}
			continue
		}
		for i := 0; i < len(idxs); {
			j := i + 1
			for j < len(idxs) && idxs[j]-idxs[j-1] <= maxGap+1 && (idxs[j]-idxs[i]+1)*blockSize <= maxRun {
				j++
			}
			owned := slices.Clone(idxs[i:j])
			for k := i + 1; k < j; k++ {
				for gap := idxs[k-1] + 1; gap < idxs[k]; gap++ {
					if c.claimAhead(blockID{key, gap}) {
						owned = append(owned, gap)
					}
				}
			}
			hi := idxs[j-1] + 1
			limit := int64(readAhead)
			if c.sequential(blockID{key, idxs[i] - 1}) {
				limit = max(limit, maxRun/blockSize-(hi-idxs[i]))
			}
			if sparse {
				limit = 0
			}
			for ahead := int64(0); ahead < limit && hi < blocks && (j == len(idxs) || hi < idxs[j]) && c.claimAhead(blockID{key, hi}); ahead++ {
				owned = append(owned, hi)
				hi++
			}
			lo := idxs[i]
			if hi == blocks && i == 0 && !sparse {
				// A read of a blob's end (a pack's footer, then its
				// index just before it; a root and the top nodes,
				// written last) reads ahead backwards: opening the
				// store on a new node made two requests a pack.
				for ahead := int64(0); ahead < readAhead && lo > 0 && c.claimAhead(blockID{key, lo - 1}); ahead++ {
					lo--
					owned = append(owned, lo)
				}
			}
			runs = append(runs, run{key, lo, hi, owned, size})
			i = j
		}
	}
	if len(runs) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, r := range runs {
		wg.Go(func() {
			if err := c.fetchRun(ctx, r.key, r.lo, r.hi, r.owned, r.size, &mu, have, held); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// fetchRun reads blocks [lo, hi) of key, which this read has claimed, in
// one request once a slot of c.slots is free, and hands them to the filler
// to keep. Each block is shown to other reads (and those waiting for it
// are woken) as soon as it has arrived, not when the whole run has: a
// restore's page readers check and write a pack's first pages while its
// last ones are still on the wire. The slot is freed before, and the
// files are written after, so neither the next request nor this read
// waits on the cache's disk (a cold restore wrote every block, CRC and
// all, on the request's slot).
func (c *Cache) fetchRun(ctx context.Context, key string, lo, hi int64, owned []int64, size int64, mu *sync.Mutex, have map[blockID][]byte, held *[]*runBuf) error {
	start := lo * blockSize
	n := min(size, hi*blockSize) - start
	// A run read once and not kept on disk (see the end) is read into
	// the buffer of one before, and kept for the next when the reads are
	// done with it.
	var rb *runBuf
	var buf []byte
	if n >= bulkSpan && n <= maxRun && snapstore.IsOnePass(ctx) {
		rb = c.newRunBuf(n)
		buf = rb.data
		mu.Lock()
		*held = append(*held, rb)
		mu.Unlock()
	} else {
		buf = make([]byte, n)
	}
	block := func(idx int64) []byte {
		return buf[(idx-lo)*blockSize : min(int64(len(buf)), (idx-lo+1)*blockSize)]
	}
	slices.Sort(owned)
	c.mu.Lock()
	gen := c.gens[key]
	c.mu.Unlock()
	shown := lo // blocks [lo, shown) have arrived and are in c.fetched
	show := func(filled int) {
		upto := lo + int64(filled)/blockSize
		if filled == len(buf) {
			upto = hi
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		// A key dropped while the run was read may have changed: its
		// blocks are not shown to other reads (those waiting look again
		// and fetch).
		isCurrent := c.gens[key] == gen
		for ; shown < upto; shown++ {
			id := blockID{key, shown}
			if isCurrent {
				c.fetched[id] = fetchedBlock{block(shown), rb}
			}
			if _, mine := slices.BinarySearch(owned, shown); mine {
				close(c.fetching[id])
				delete(c.fetching, id)
			}
		}
	}
	err := func() error {
		w := c.slots.enqueue(snapstore.ReadOrder(ctx))
		c.mu.Lock()
		for _, idx := range owned {
			c.queued[blockID{key, idx}] = w
		}
		c.mu.Unlock()
		err := c.slots.wait(ctx, w)
		c.mu.Lock()
		for _, idx := range owned {
			delete(c.queued, blockID{key, idx})
		}
		c.mu.Unlock()
		if err != nil {
			return err
		}
		defer c.slots.release()
		return c.remote.streamRange(ctx, key, start, buf, blockSize, show)
	}()
	if err != nil {
		c.mu.Lock()
		// The blocks shown are not in c.recent, which would forget them:
		// they go now. The others' waiters look again.
		for idx := lo; idx < hi; idx++ {
			id := blockID{key, idx}
			if idx < shown {
				if cur, ok := c.fetched[id]; ok && &cur.data[0] == &block(idx)[0] {
					delete(c.fetched, id)
				}
			} else if _, mine := slices.BinarySearch(owned, idx); mine {
				close(c.fetching[id])
				delete(c.fetching, id)
			}
		}
		if rb != nil {
			rb.forgotten = true
		}
		c.mu.Unlock()
		return err
	}
	mu.Lock()
	for idx := lo; idx < hi; idx++ {
		have[blockID{key, idx}] = buf[(idx-lo)*blockSize : min(int64(len(buf)), (idx-lo+1)*blockSize)]
	}
	mu.Unlock()
	f := fill{key: key, data: buf, first: lo, gen: gen, run: rb}
	c.mu.Lock()
	c.recent = append(c.recent, f)
	c.recentN += int64(len(buf))
	for c.recentN > recentLimit {
		old := c.recent[0]
		c.recent = c.recent[1:]
		c.recentN -= int64(len(old.data))
		c.forgetLocked(old)
	}
	if c.idle == nil {
		c.idle = time.AfterFunc(recentIdle, c.goIdle)
	} else {
		c.idle.Reset(recentIdle)
	}
	c.mu.Unlock()
	if rb != nil || snapstore.IsPassing(ctx) {
		// Read once, and from memory (c.fetched) by the readers that
		// follow: writing it to the cache's files too doubled the
		// restore's writes. Small runs are kept all the same: the tree
		// nodes and the small packs of later captures, which a restore
		// of an image with deltas reads again throughout. Blobs
		// passing through (snapstore.Passing) are not kept at all.
		return nil
	}
	select {
	case c.reads <- f:
	default: // the disk is behind: not kept
		c.logger.Debug("snapshot cache: run read not kept, the filler is behind", "key", key, "first", lo, "bytes", len(buf))
	}
	return nil
}

// forgetRecent drops every run read from memory; the buffers of the runs
// read once stay for the next runs.
func (c *Cache) forgetRecent() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.recent {
		c.forgetLocked(f)
	}
	c.recent, c.recentN = nil, 0
}

// goIdle drops every run read, and the buffers kept for the next ones.
func (c *Cache) goIdle() {
	c.forgetRecent()
	c.mu.Lock()
	c.spare = nil
	c.mu.Unlock()
}

// forgetLocked drops the blocks of a run read from c.fetched, unless
// another read has put its own there since.
func (c *Cache) forgetLocked(f fill) {
	for i := int64(0); i*blockSize < int64(len(f.data)); i++ {
		id := blockID{f.key, f.first + i}
		if cur, ok := c.fetched[id]; ok && &cur.data[0] == &f.data[i*blockSize] {
			delete(c.fetched, id)
		}
	}
	if f.run != nil {
		f.run.forgotten = true
		c.recycleLocked(f.run)
	}
}

// claim looks a block up in memory: its data when a put or a read has it
// and the filler has not written it yet (and the run's buffer, if it is
// recycled: the caller holds it until it has copied the block, and
// unrefs it); a channel to wait on when
// another read is fetching it. Otherwise, when the block is not in the
// cache's files either, the caller is to fetch it (mine; claim records
// that it is being fetched), and when it is, the caller loads it.
func (c *Cache) claim(id blockID) (data []byte, run *runBuf, wait chan struct{}, mine bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.pending[id.key]; ok && id.idx*blockSize < int64(len(p)) {
		return p[id.idx*blockSize : min(int64(len(p)), (id.idx+1)*blockSize)], nil, nil, false
	}
	if d, ok := c.fetched[id]; ok {
		if d.run != nil {
			d.run.refs++
		}
		return d.data, d.run, nil, false
	}
	if w, ok := c.fetching[id]; ok {
		return nil, nil, w, false
	}
	if _, ok := c.index[id]; ok {
		return nil, nil, nil, false
	}
	c.fetching[id] = make(chan struct{})
	return nil, nil, nil, true
}

// sequential reports whether block id was just fetched, or is being: a
// read of the block after it goes on through the blob.
func (c *Cache) sequential(id blockID) bool {
	if id.idx < 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, fetched := c.fetched[id]
	_, fetching := c.fetching[id]
	return fetched || fetching
}

// boost makes the request that is to fetch block id, while it waits for
// a slot, go no later than a read of the given order, which now waits
// for it.
func (c *Cache) boost(id blockID, order int64) {
	c.mu.Lock()
	w := c.queued[id]
	c.mu.Unlock()
	if w != nil {
		c.slots.boost(w, order)
	}
}

// claimFree claims, at once, every block of key below blocks that
// nothing has, is fetching or holds in the cache's files, and returns
// them in order.
func (c *Cache) claimFree(key string, blocks int64) []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var got []int64
	for b := range blocks {
		id := blockID{key, b}
		if p, ok := c.pending[key]; ok && b*blockSize < int64(len(p)) {
			continue
		}
		if _, ok := c.fetched[id]; ok {
			continue
		}
		if _, ok := c.fetching[id]; ok {
			continue
		}
		if _, ok := c.index[id]; ok {
			continue
		}
		c.fetching[id] = make(chan struct{})
		got = append(got, b)
	}
	return got
}

// claimAhead claims a block for a read-ahead: only when nothing has it or
// is fetching it.
func (c *Cache) claimAhead(id blockID) bool {
	_, run, _, mine := c.claim(id)
	if run != nil {
		c.unref([]*runBuf{run}) // there already: nothing to copy
	}
	return mine
}

func blockLen(size, idx int64) int64 { return min(blockSize, size-idx*blockSize) }

func (c *Cache) knownSize(key string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sizes[key]
}

// size returns a blob's size, asking the server when no List, Put or Get
// has told it.
func (c *Cache) size(ctx context.Context, key string) (int64, error) {
	c.mu.Lock()
	size, ok := c.sizes[key]
	c.mu.Unlock()
	if ok {
		return size, nil
	}
	size, err := c.remote.Size(ctx, key)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	c.sizes[key] = size
	c.mu.Unlock()
	return size, nil
}

// blockBuffers holds the buffers cached blocks are read into: a restore
// reads every block of an image once, and a fresh 256 KiB buffer each cost
// more (in zeroing and collecting) than the read.
var blockBuffers = sync.Pool{New: func() any { b := make([]byte, blockSize+4); return &b }}

// extentFiles are the extent files one read has opened, each opened once:
// a restore from the cache reads 16 blocks of an extent a batch, and
// opening the file for each cost as much CPU as reading and checking the
// blocks (os.Open 0.11 of 0.22 CPU-s in a warm restore of 263 MiB).
type extentFiles map[*extent]*os.File

func (fs extentFiles) close() {
	for _, f := range fs {
		f.Close()
	}
}

// load returns a cached block of want bytes, if it is there and whole, in
// a buffer from blockBuffers that the caller puts back.
func (c *Cache) load(id blockID, want int64) ([]byte, *[]byte, bool) {
	return c.loadFrom(id, want, nil)
}

// loadFrom is load through the files a read has open (files may be nil:
// the extent's file is opened for this block alone).
func (c *Cache) loadFrom(id blockID, want int64, files extentFiles) ([]byte, *[]byte, bool) {
	c.mu.Lock()
	e, ok := c.index[id]
	if ok {
		c.lru.MoveToFront(e.elem)
	}
	c.mu.Unlock()
	if !ok {
		return nil, nil, false
	}
	bp := blockBuffers.Get().(*[]byte)
	raw := (*bp)[:want+4]
	i := id.idx - e.first
	var err error
	if have := min(blockSize, e.dataLen-i*blockSize); have != want {
		err = fmt.Errorf("block of %d bytes, want %d", have, want)
	}
	f := files[e]
	if err == nil && f == nil {
		c.opens.Add(1)
		if f, err = os.Open(c.extentPath(e)); err == nil {
			if files != nil {
				files[e] = f
			} else {
				defer f.Close()
			}
		}
	}
	if err == nil {
		if _, err = f.ReadAt(raw[:want], i*blockSize); err == nil {
			_, err = f.ReadAt(raw[want:], e.dataLen+4*i)
		}
	}
	if err == nil && crc32.Checksum(raw[:want], castagnoli) == binary.BigEndian.Uint32(raw[want:]) {
		return raw[:want], bp, true
	}
	blockBuffers.Put(bp)
	c.logger.Warn("snapshot cache: block unreadable, reading it again", "key", id.key, "block", id.idx, "err", err)
	c.mu.Lock()
	c.removeLocked(e)
	c.mu.Unlock()
	return nil, nil, false
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// store keeps the blocks of f as one extent, unless the cache has no room
// for it or f's key was dropped since f was put or fetched. The file is
// written under a temporary name and renamed, without an fsync: an extent
// torn by a crash fails its size or CRC checks and is fetched again.
func (c *Cache) store(f fill) {
	n := (int64(len(f.data)) + blockSize - 1) / blockSize
	e := &extent{key: f.key, first: f.first, n: n, dataLen: int64(len(f.data)),
		name: fmt.Sprintf("%d+%d.%x", f.first, n, c.seq.Add(1))}
	if n == 0 || e.size() > c.limit.Load() {
		return
	}
	start := time.Now()
	path := c.extentPath(e)
	err := os.MkdirAll(filepath.Dir(path), 0o750)
	if err == nil {
		crcs := make([]byte, 4*n)
		for i := range n {
			blk := f.data[i*blockSize : min(int64(len(f.data)), (i+1)*blockSize)]
			binary.BigEndian.PutUint32(crcs[4*i:], crc32.Checksum(blk, castagnoli))
		}
		var tmp *os.File
		if tmp, err = os.CreateTemp(filepath.Dir(path), e.name+".*.tmp"); err == nil {
			if _, err = tmp.Write(f.data); err == nil {
				_, err = tmp.Write(crcs)
			}
			if cerr := tmp.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				err = os.Rename(tmp.Name(), path)
			}
			if err != nil {
				os.Remove(tmp.Name())
			}
		}
	}
	if err != nil {
		c.logger.Warn("snapshot cache: blocks not kept", "key", f.key, "first", f.first, "err", err)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gens[f.key] != f.gen {
		os.Remove(path) // dropped meanwhile: the blocks may be stale
		return
	}
	for i := range n {
		id := blockID{f.key, f.first + i}
		if old, ok := c.index[id]; ok {
			if old.live--; old.live == 0 {
				c.removeLocked(old)
			}
		}
		c.index[id] = e
		e.live++
	}
	e.elem = c.lru.PushFront(e)
	c.used += e.size()
	c.logger.Debug("snapshot cache: extent kept", "key", f.key, "first", f.first, "bytes", len(f.data), "took", time.Since(start))
	c.evictLocked()
}

func (c *Cache) evictLocked() {
	for c.used > c.limit.Load() && c.lru.Len() > 0 {
		e := c.lru.Back().Value.(*extent)
		c.logger.Debug("snapshot cache: extent evicted", "key", e.key, "first", e.first, "bytes", e.size(), "used", c.used, "limit", c.limit.Load())
		c.removeLocked(e)
	}
}

// removeLocked removes an extent, its file and the blocks the index finds
// in it.
func (c *Cache) removeLocked(e *extent) {
	if e.elem == nil {
		return
	}
	c.used -= e.size()
	c.lru.Remove(e.elem)
	e.elem = nil
	for i := range e.n {
		id := blockID{e.key, e.first + i}
		if c.index[id] == e {
			delete(c.index, id)
		}
	}
	if err := os.Remove(c.extentPath(e)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.logger.Warn("snapshot cache: extent not removed", "key", e.key, "first", e.first, "err", err)
	}
}

// drop forgets every block and the size of key.
func (c *Cache) drop(key string) {
	c.mu.Lock()
	c.dropLocked(key)
	c.mu.Unlock()
}

func (c *Cache) dropLocked(key string) {
	c.gens[key]++
	delete(c.sizes, key)
	delete(c.pending, key)
	for id := range c.fetched {
		if id.key == key {
			delete(c.fetched, id)
		}
	}
	// The key's files go with its directory, below: removeLocked would
	// remove each of them first.
	for id, e := range c.index {
		if id.key == key {
			delete(c.index, id)
			if e.elem != nil {
				c.used -= e.size()
				c.lru.Remove(e.elem)
				e.elem = nil
			}
		}
	}
	os.RemoveAll(c.keyDir(key))
}

var (
	_ snapstore.Blobs        = (*Cache)(nil)
	_ snapstore.RangeGetter  = (*Cache)(nil)
	_ snapstore.RangesGetter = (*Cache)(nil)
)

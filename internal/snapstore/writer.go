package snapstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/snapdeck/snapdeck/internal/directio"
)

// flushers is how many packs a capture writes at once while it keeps
// reading: two keep the disk busy while each waits for its pack to reach
// the disk.
const flushers = 2

// Writer adds one image to the store: pages in order, then Finish writes
// the tree and the root. Pages already stored are only referenced. New
// pieces go into packs written in the background; Finish makes every pack
// durable, and the root is written last, in a pack of its own written after
// all others are durable, so a crash never leaves a root pointing at
// missing data. A Writer is used by one goroutine.
//
// When the backend is a Batcher the packs are written through one Batch
// and made durable together in Finish; their pieces become visible to
// other writers only then, since until then they may not survive a crash.
type Writer struct {
	s        *Store
	ctx      context.Context
	pending  map[[32]byte]struct{} // new pieces of this image, not yet indexed
	cur      packBuf
	queue    chan packBuf
	wg       sync.WaitGroup
	errMu    sync.Mutex
	err      error
	newBytes int64
	pages    int64
	tree     treeBuilder
	done     bool
	// The base image: its leaves, and the page lists of a window of
	// leaves read together (a capture asks in page order).
	baseLeaves [][32]byte
	leafAt     int          // index of the window's first leaf; -1 for none
	leafWindow [][][32]byte // page hashes of each leaf in the window
	deferred   []deferredPage
	defBytes   int
	defArena   []byte // the deferred pages' data
	deltaBuf   []byte // for makeDelta, reused
	lastLeaf   bool   // AddLeaf added a partial leaf: nothing may follow

	// spare holds the buffers of this writer's written packs for its next
	// ones (packBuffer), which the pool alone did not keep: a garbage
	// collection empties it, several times in a capture of a GiB, and each
	// new buffer then costs 2,048 page faults as it is first filled.
	spare chan []byte

	batch    Batch        // nil: each pack is Put durably on its own
	stagedMu sync.Mutex   // guards staged
	staged   []stagedPack // packs in batch, indexed once it is committed
}

// deferredPage is a new page waiting for its base to be read, in a batch
// with others, so that bases lying near each other cost one read.
type deferredPage struct {
	hash [32]byte
	base [32]byte
	data []byte // a copy: the caller reuses its buffer
}

// deferBytes is how many bytes of pages wait for their bases at most.
const deferBytes = 1 << 20

// stagedPack is a pack written in a batch and not yet committed.
type stagedPack struct {
	key     string
	size    int64
	entries []entry
}

// NewWriter starts adding an image. The caller must call Finish or Abort.
// Until then Sweep waits, so that nothing this image reuses disappears.
func (s *Store) NewWriter(ctx context.Context) (*Writer, error) {
	if err := s.ensureLoaded(ctx); err != nil {
		return nil, err
	}
	s.gc.RLock()
	w := &Writer{
		s:       s,
		ctx:     ctx,
		pending: make(map[[32]byte]struct{}),
		queue:   make(chan packBuf, 1),
	}
	// A buffer for each pack that can be in flight: filling, queued, and
	// one per flusher.
	w.spare = make(chan []byte, s.flushers()+2)
	w.tree.emit = func(data []byte) ([32]byte, error) {
		h := sha256.Sum256(data)
		return h, w.add(h, KindNode, data)
	}
	if b, ok := s.blobs.(Batcher); ok {
		w.batch = b.NewBatch()
	}
	for range s.flushers() {
		w.wg.Add(1)
		go w.flusher()
	}
	return w, nil
}

// packBuffers holds the buffers of written packs for the next ones: a
// capture of a GiB fills 128 of them, and a new one costs 8 MiB of zeroing.
var packBuffers sync.Pool

// getPackBuffer returns an empty pack buffer with room for a pack and its
// index.
func getPackBuffer() []byte {
	if b, ok := packBuffers.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	packBuffersMade.Add(1)
	// Aligned, so that the pack can be written around the page cache
	// (writeTempAround).
	return directio.Buffer(0, packTarget+packTarget/32)
}

// packBuffersMade counts the pack buffers made, for a test.
var packBuffersMade atomic.Int64

// putPackBuffer gives back a buffer from getPackBuffer once its pack is
// written; one that grew elsewhere is left to the garbage collector.
func putPackBuffer(b []byte) {
	if cap(b) == packTarget+packTarget/32 {
		packBuffers.Put(&b)
	}
}

// packBuffer returns an empty pack buffer, one of this writer's written
// packs' if there is one.
func (w *Writer) packBuffer() []byte {
	select {
	case b := <-w.spare:
		return b[:0]
	default:
		return getPackBuffer()
	}
}

// recycle keeps the buffer of a written pack for this writer's next pack,
// or gives it back to the pool.
func (w *Writer) recycle(b []byte) {
	if cap(b) != packTarget+packTarget/32 {
		return
	}
	select {
	case w.spare <- b:
	default:
		putPackBuffer(b)
	}
}

func (w *Writer) flusher() {
	defer w.wg.Done()
	for p := range w.queue {
		if w.failed() != nil {
			continue // drain: a capture that failed writes nothing more
		}
		err := w.putPack(p)
		w.recycle(p.data)
		if err != nil {
			w.setErr(err)
			continue
		}
		fault("capture:pack-written")
	}
}

func (w *Writer) setErr(err error) {
	w.errMu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.errMu.Unlock()
}

func (w *Writer) failed() error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return w.err
}

// putPack writes a pack: into the batch, to be indexed when Finish has
// committed it, or durably on its own and indexed at once.
func (w *Writer) putPack(p packBuf) error {
	if w.batch == nil {
		return w.s.putPack(w.ctx, p)
	}
	entries := p.entries
	data := p.seal()
	key := newPackKey(w.s.now())
	if err := w.batch.Put(w.ctx, key, data); err != nil {
		return fmt.Errorf("write snapshot pack: %w", err)
	}
	w.stagedMu.Lock()
	w.staged = append(w.staged, stagedPack{key: key, size: int64(len(data)), entries: entries})
	w.stagedMu.Unlock()
	return nil
}

// putPack writes a pack durably and only then makes its pieces visible to
// other writers for deduplication.
func (s *Store) putPack(ctx context.Context, p packBuf) error {
	entries := p.entries
	data := p.seal()
	key := newPackKey(s.now())
	if err := s.blobs.Put(ctx, key, data); err != nil {
		return fmt.Errorf("write snapshot pack: %w", err)
	}
	s.register(key, int64(len(data)), entries)
	return nil
}

// UseBase makes root the base image of this one: a new page that differs
// from the base's page at the same number is stored as a delta against it
// (see makeDelta). Call it before the first page. Deltas only save space,
// so a base that cannot be read is logged and the image is stored without
// one.
//
// Only pieces already durable in the store serve as bases, and this
// writer holds off Sweep until its root is durable, after which the root
// reaches the bases through its deltas: a crash or a sweep never leaves a
// delta without its base.
//
// Only the leaves of the base image near changed pages are read, in
// windows of leavesPerRead leaves from the first new page of each window on:
// after a small change a capture reads a few windows, not the base's whole
// page list, and after a change spread over every leaf it reads them in
// a few hundred reads rather than one read per leaf.
func (w *Writer) UseBase(root string) {
	leaves, err := w.s.leafHashes(w.ctx, root)
	if err != nil {
		w.s.logger.Warn("snapshot store: base image unreadable, storing whole pages", "root", root, "err", err)
		return
	}
	w.baseLeaves, w.leafAt = leaves, -1
}

// isStored reports whether piece h is stored or about to be.
func (w *Writer) isStored(h [32]byte) bool {
	_, ok := w.pending[h]
	return ok || w.s.has(h)
}

// add stores a piece unless it is stored already.
func (w *Writer) add(h [32]byte, kind Kind, data []byte) error {
	if w.isStored(h) {
		return nil
	}
	return w.addNew(entry{hash: h, kind: kind}, data)
}

// addNew stores a piece the store does not hold.
func (w *Writer) addNew(e entry, data []byte) error {
	if w.cur.data == nil {
		w.cur.data = w.packBuffer()
	}
	w.pending[e.hash] = struct{}{}
	w.cur.addEntry(e, data)
	w.newBytes += int64(len(data))
	if len(w.cur.data) >= packTarget {
		return w.seal()
	}
	return nil
}

func (w *Writer) seal() error {
	if err := w.failed(); err != nil {
		return err
	}
	select {
	case w.queue <- w.cur:
	case <-w.ctx.Done():
		return w.ctx.Err()
	}
	w.cur = packBuf{}
	return nil
}

// AddPage appends the next page of the image; h must be its SHA-256.
// data is copied if it is new, so the caller may reuse it.
func (w *Writer) AddPage(h [32]byte, data []byte) error {
	if w.lastLeaf {
		return errors.New("snapshot pages added after the last leaf")
	}
	if !w.isStored(h) {
		if base, ok := w.deltaBase(w.pages, h); ok {
			w.pending[h] = struct{}{}
			// One buffer holds the copies of a batch; should it grow, the
			// earlier copies stay valid in the old one.
			if w.defArena == nil {
				w.defArena = make([]byte, 0, deferBytes+64<<10)
			}
			w.defArena = append(w.defArena, data...)
			copied := w.defArena[len(w.defArena)-len(data):]
			w.deferred = append(w.deferred, deferredPage{hash: h, base: base, data: copied})
			w.defBytes += len(data)
			if w.defBytes >= deferBytes {
				if err := w.flushDeltas(); err != nil {
					return err
				}
			}
		} else if err := w.addNew(entry{hash: h, kind: KindPage}, data); err != nil {
			return err
		}
	}
	w.pages++
	return w.tree.add(0, h)
}

// ExpectNew sizes the writer for about n new pieces, for a caller that
// expects most of its pages to be new (an image without a base): growing
// the set of pending pieces a page at a time took about a quarter of a
// CPU-second per GiB of pages, on the goroutine that adds them. Call it
// before the first page.
func (w *Writer) ExpectNew(n int) {
	if len(w.pending) == 0 && n > 0 {
		w.pending = make(map[[32]byte]struct{}, n)
	}
}

// BaseLeaves is how many leaves the base image (UseBase) has; 0 without
// one. It lists at most BaseLeaves×LeafPages pages.
func (w *Writer) BaseLeaves() int { return len(w.baseLeaves) }

// LeafPages is how many consecutive pages a leaf of an image's tree lists.
// Leaves start at page indexes that are multiples of it, so the same pages
// at the same place always make the same leaf.
const LeafPages = leafFanout

// BaseLeaf returns the hash of leaf i of the base image (UseBase), the one
// listing pages i×LeafPages on, if the base has it and it is stored. It
// only reads what UseBase set and the store's index, so it may be called
// from any goroutine while the writer's owner adds pages.
func (w *Writer) BaseLeaf(i int) ([32]byte, bool) {
	if i < 0 || i >= len(w.baseLeaves) || !w.s.has(w.baseLeaves[i]) {
		return [32]byte{}, false
	}
	return w.baseLeaves[i], true
}

// AddLeaf appends n pages at once as leaf h, a leaf of the base image
// (BaseLeaf): the caller has made sure that these pages are the ones h
// lists. The image must be at a leaf boundary, and a leaf of fewer than
// LeafPages pages can only be the last.
func (w *Writer) AddLeaf(h [32]byte, n int) error {
	if w.pages%leafFanout != 0 || n < 1 || n > leafFanout {
		return fmt.Errorf("snapshot leaf of %d pages added after %d pages", n, w.pages)
	}
	if !w.s.has(h) {
		return fmt.Errorf("snapshot leaf %x is not stored", h)
	}
	if w.lastLeaf {
		return errors.New("snapshot pages added after the last leaf")
	}
	w.lastLeaf = n < leafFanout
	w.pages += int64(n)
	return w.tree.add(1, h)
}

// AddBasePage appends data as the next page, which the caller has made
// sure is the base image's page at the same index (UseBase): it is listed
// by the base's hash for that page, without hashing data again. Where the
// base lists no stored page there, data is hashed and added as by
// AddPage. Like AddLeaf, it trusts the caller; Verify checks the image.
func (w *Writer) AddBasePage(data []byte) error {
	if w.lastLeaf {
		return errors.New("snapshot pages added after the last leaf")
	}
	h, ok := w.basePage(w.pages)
	if !ok || !w.s.has(h) {
		return w.AddPage(sha256.Sum256(data), data)
	}
	w.pages++
	return w.tree.add(0, h)
}

// basePage returns the hash the base image lists for its page at index i.
func (w *Writer) basePage(i int64) (h [32]byte, ok bool) {
	leaf := int(i / leafFanout)
	if leaf >= len(w.baseLeaves) {
		return h, false
	}
	if w.leafAt < 0 || leaf < w.leafAt || leaf >= w.leafAt+len(w.leafWindow) {
		w.readLeafWindow(leaf)
	}
	pages := w.leafWindow[leaf-w.leafAt]
	k := int(i % leafFanout)
	if k >= len(pages) {
		return h, false
	}
	return pages[k], true
}

// deltaBase returns the base image's page at index i, when the new page h
// there may be stored as a delta against it.
func (w *Writer) deltaBase(i int64, h [32]byte) (base [32]byte, ok bool) {
	base, ok = w.basePage(i)
	if !ok || base == h {
		return base, false
	}
	// A base must be durable (indexed), not a piece of this capture that a
	// crash could lose, and its chain short enough to read quickly.
	if !w.s.has(base) || w.s.depthOf(base) >= maxDeltaDepth {
		return base, false
	}
	return base, true
}

// leavesPerRead is how many leaves of the base image deltaBase reads at
// once: 64 KiB of leaves, usually one range read, listing 2,048 pages.
const leavesPerRead = 64

// readLeafWindow reads the base image's leaves from first on into the
// window. A leaf that cannot be read lists no pages: its pages are stored
// whole, and a corrupt base is for Verify to report.
func (w *Writer) readLeafWindow(first int) {
	end := min(first+leavesPerRead, len(w.baseLeaves))
	w.leafAt = first
	w.leafWindow = w.leafWindow[:0]
	pieces, err := w.s.readPieces(w.ctx, w.baseLeaves[first:end], nil)
	if err != nil {
		w.s.logger.Warn("snapshot store: base image unreadable, storing pages whole", "err", err)
	}
	for i := first; i < end; i++ {
		var pages [][32]byte
		if err == nil {
			var derr error
			if pages, derr = decodeNode(pieces[i-first], 1); derr != nil {
				w.s.logger.Warn("snapshot store: base image unreadable, storing pages whole", "err", derr)
			}
		}
		w.leafWindow = append(w.leafWindow, pages)
	}
}

// flushDeltas reads the bases of the deferred pages and stores each page
// as a delta against its base, or whole when the delta is not worth it.
func (w *Writer) flushDeltas() error {
	if len(w.deferred) == 0 {
		return nil
	}
	bases := make([][32]byte, len(w.deferred))
	for i, p := range w.deferred {
		bases[i] = p.base
	}
	basePages, err := w.s.readPieces(w.ctx, bases, nil)
	if err != nil {
		// The pages are stored whole; a corrupt base is for Verify to
		// report.
		w.s.logger.Warn("snapshot store: delta bases unreadable, storing pages whole", "err", err)
	}
	for i, p := range w.deferred {
		e := entry{hash: p.hash, kind: KindPage}
		data := p.data
		if err == nil && len(basePages[i]) == len(p.data) {
			// addNew copies the delta into the pack, so the buffer is
			// reused for the next one.
			var kind Kind
			w.deltaBuf, kind = smallerDelta(w.deltaBuf, p.data, basePages[i])
			if d := w.deltaBuf; float64(len(d)) <= maxDeltaShare*float64(len(p.data)) {
				e.kind, e.base, data = kind, p.base, d
			}
		}
		if err := w.addNew(e, data); err != nil {
			return err
		}
	}
	w.deferred, w.defBytes, w.defArena = w.deferred[:0], 0, w.defArena[:0]
	return nil
}

// Finish writes the tree and the root for manifest m, waits until all of
// it is durable, and returns the root and the bytes this image added.
func (w *Writer) Finish(m Manifest) (root string, newBytes int64, err error) {
	defer w.Abort()
	if m.Pages != w.pages {
		return "", 0, fmt.Errorf("snapshot manifest says %d pages, %d were added", m.Pages, w.pages)
	}
	if err := w.flushDeltas(); err != nil {
		return "", 0, err
	}
	depth, top, err := w.tree.finish()
	if err != nil {
		return "", 0, err
	}
	rootData := encodeRoot(m, depth, top)
	rootHash := sha256.Sum256(rootData)
	// Every pack before the root's must be durable before the root is.
	if len(w.cur.entries) > 0 {
		if err := w.seal(); err != nil {
			return "", 0, err
		}
	}
	close(w.queue)
	w.wg.Wait()
	w.done = true
	if err := w.failed(); err != nil {
		return "", 0, err
	}
	if err := w.ctx.Err(); err != nil {
		return "", 0, err
	}
	if w.batch != nil {
		fault("capture:before-commit")
		if err := w.batch.Commit(w.ctx); err != nil {
			return "", 0, fmt.Errorf("write snapshot packs: %w", err)
		}
		for _, p := range w.staged {
			w.s.register(p.key, p.size, p.entries)
		}
		w.staged = nil
	}
	fault("capture:before-root")
	if !w.s.has(rootHash) {
		var p packBuf
		p.add(rootHash, KindRoot, rootData)
		if err := w.s.putPack(w.ctx, p); err != nil {
			return "", 0, err
		}
		w.newBytes += int64(len(rootData))
	}
	fault("capture:root-written")
	return RootString(rootHash), w.newBytes, nil
}

// Abort ends an image without a root; packs already written become garbage
// for a later Sweep. Calling it after Finish does nothing.
func (w *Writer) Abort() {
	if w.s == nil {
		return
	}
	if !w.done {
		w.setErr(context.Canceled)
		close(w.queue)
		w.wg.Wait()
		w.done = true
	}
	if w.batch != nil {
		w.batch.Discard() // after a Commit, nothing is left to discard
	}
	// The flushers are done: the spare buffers go back to the pool, for
	// the next writer.
	for len(w.spare) > 0 {
		putPackBuffer(<-w.spare)
	}
	w.s.gc.RUnlock()
	w.s = nil
}
